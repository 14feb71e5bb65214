//! Dependency cycles that pg_dump breaks by splitting an object in two, not
//! by dropping a dependency: a view on a cycle (a function returning the
//! view's row type that the view reads, say) is created as a placeholder
//! with typed NULL columns, and defined in post-data by `CREATE OR REPLACE
//! VIEW`, which carries the view's `_RETURN` rule and so its dependencies.
//! `--clean` undoes the definition by putting the placeholder back before
//! it drops the rest, as pg_dump does.
//! (A column default is always its own entry, see `tables.rs`, so a function
//! used by the default of a table it reads forms no cycle.)

use super::obj::Obj;
use super::sql::quote_literal;
use super::toc::{ObjectKind, Section};
use std::collections::BTreeSet;

/// Splits every view that can reach itself through `deps`. Returns whether
/// any was split (the dependencies must then be resolved again).
pub fn split_views(objs: &mut Vec<Obj>, deps: &[BTreeSet<usize>]) -> bool {
    let cyclic: Vec<usize> = (0..objs.len())
        .filter(|&i| objs[i].split.is_some() && on_cycle(i, deps))
        .collect();
    for &i in &cyclic {
        let view = &mut objs[i];
        let Some(split) = view.split.take() else {
            continue;
        };
        let Some(qname) = view.targets.first().map(|(_, t)| t.name.clone()) else {
            continue;
        };
        tracing::debug!(view = %view.name, "view on a dependency cycle: placeholder first, definition in post-data");
        view.owns.retain(|r| *r != split.rule);
        view.sql = split.placeholder;
        let mut definition = Obj::new(
            ObjectKind::Rule,
            Section::PostData,
            format!("{} _RETURN", view.name),
            split.definition,
        );
        definition.schema = view.schema.clone();
        definition.owner = view.owner.clone();
        definition.owns.push(split.rule);
        // Undone by putting the placeholder back, where the view exists.
        definition.drop = Some(format!(
            "DO $pgkeep$BEGIN IF pg_catalog.to_regclass({}) IS NOT NULL THEN EXECUTE {}; END IF; END$pgkeep$;\n",
            quote_literal(&qname),
            quote_literal(&split.reset)
        ));
        if let Some(own) = view.owns.first() {
            definition.after.push(*own);
        }
        objs.push(definition);
    }
    !cyclic.is_empty()
}

/// Whether `start` is reachable from one of its own dependencies.
fn on_cycle(start: usize, deps: &[BTreeSet<usize>]) -> bool {
    let mut seen = vec![false; deps.len()];
    let mut stack: Vec<usize> = deps[start].iter().copied().collect();
    while let Some(i) = stack.pop() {
        if i == start {
            return true;
        }
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        stack.extend(deps[i].iter().copied());
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::obj::{class, oref, ViewSplit};

    fn view(name: &str, oid: u32) -> Obj {
        let mut v = Obj::new(ObjectKind::View, Section::PreData, name, "full".into()).creates(
            class::CLASS,
            oid,
            "VIEW",
            name.to_string(),
        );
        let rule = oref(class::REWRITE, oid + 1);
        v.owns.push(rule);
        v.split = Some(ViewSplit {
            placeholder: "placeholder".into(),
            definition: "definition".into(),
            reset: "CREATE OR REPLACE VIEW placeholder".into(),
            rule,
        });
        v
    }

    #[test]
    fn only_views_on_a_cycle_are_split() {
        let f = Obj::new(ObjectKind::Function, Section::PreData, "f", "f".into());
        let mut objs = vec![view("cyclic", 100), f, view("plain", 200)];
        // cyclic -> f -> cyclic; plain -> f.
        let deps = vec![
            BTreeSet::from([1]),
            BTreeSet::from([0]),
            BTreeSet::from([1]),
        ];
        assert!(split_views(&mut objs, &deps));
        assert_eq!(objs.len(), 4);
        assert_eq!(objs[0].sql, "placeholder");
        assert!(!objs[0].owns.contains(&oref(class::REWRITE, 101)));
        assert_eq!(objs[2].sql, "full", "a view on no cycle keeps its SQL");
        let def = &objs[3];
        assert_eq!(
            (def.kind, def.section),
            (ObjectKind::Rule, Section::PostData)
        );
        assert_eq!(def.sql, "definition");
        assert_eq!(def.owns, [oref(class::REWRITE, 101)]);
        assert_eq!(def.after, [oref(class::CLASS, 100)]);
        assert!(
            def.drop
                .as_deref()
                .is_some_and(|d| d.contains("to_regclass('cyclic')")
                    && d.contains("EXECUTE 'CREATE OR REPLACE VIEW placeholder'")),
            "{:?}",
            def.drop
        );
        let again = vec![BTreeSet::new(); objs.len()];
        assert!(!split_views(&mut objs, &again), "nothing left to split");
    }
}
