//! Dependencies between TOC entries, derived from `pg_depend`.
//!
//! 1. Every entry names the catalog addresses it creates (`Obj::owns`).
//!    Addresses that are internal to another (`deptype 'i'`: row types,
//!    array types, a view's `_RETURN` rule, a constraint's index, identity
//!    sequences, ...) or members of an extension (`'e'`) are given to the
//!    entry owning what they belong to, until nothing changes.
//! 2. Each `pg_depend` edge (`'n'`, `'a'`, `'i'`, partition `'P'`/`'S'`)
//!    between addresses of two different entries becomes an entry edge, as
//!    do the explicit `Obj::after` addresses. The automatic edge from a
//!    sequence to the column that owns it is ignored: `OWNED BY` is its own
//!    entry, and the column default needs the sequence first.
//!    A base type's I/O functions, which the type depends on and which
//!    depend on it, wait for the type's shell entry instead. A view on a
//!    cycle is split in two (`cycles.rs`) and the steps run again.
//! 3. An entry that depends on an entry of a later section moves to that
//!    section (a view whose `GROUP BY` relies on a primary key becomes
//!    post-data), and so on transitively.
//! 4. A `REFRESH MATERIALIZED VIEW` entry also waits for the refreshes of
//!    the materialized views its view reads (through plain views), and for
//!    the ACL, row-security and policy entries of everything it reads: the
//!    refresh runs as the view's owner and sees what that role may see.
//! 5. A foreign key that references a partitioned table waits for every
//!    `ATTACH PARTITION` of the referenced index (at any depth): the index
//!    on `ONLY parent` is invalid, and unusable, until all are attached.
//! 6. A relation's ACL entry waits for the other post-data entries on that
//!    relation (indexes, constraints, triggers, policies, foreign keys that
//!    reference it): `GRANT` takes no lock on the relation and fails with
//!    "tuple concurrently updated" when DDL rewrites the same `pg_class` row.
//! 7. Default privileges and then event triggers wait for every other
//!    post-data entry: the former would change the privileges of objects
//!    created after them (views moved to post-data), the latter would fire
//!    on the restore's own DDL.

use super::obj::{class, Obj};
use super::sql::{query, RowExt};
use super::toc::{ObjRef, ObjectKind, Section};
use crate::error::Result;
use std::collections::{BTreeSet, HashMap};
use tokio_postgres::Client;

/// One `pg_depend` row, sub-object numbers dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    pub from: ObjRef,
    pub to: ObjRef,
    pub deptype: u8,
}

const DEPEND: &str =
    "SELECT d.classid, d.objid, d.refclassid, d.refobjid, d.deptype::text AS deptype \
  FROM pg_catalog.pg_depend d \
  WHERE d.objid >= 16384 AND d.refobjid >= 16384 AND d.deptype IN ('n', 'a', 'i', 'e', 'P', 'S') \
  AND NOT (d.deptype = 'a' AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
    AND EXISTS (SELECT 1 FROM pg_catalog.pg_class s WHERE s.oid = d.objid AND s.relkind = 'S')) \
  GROUP BY 1, 2, 3, 4, 5";

pub async fn load(client: &Client) -> Result<Vec<Edge>> {
    let rows = query(client, "dependencies", DEPEND, &[]).await?;
    rows.iter()
        .map(|r| {
            let deptype: String = r.val("deptype")?;
            Ok(Edge {
                from: ObjRef {
                    classid: r.val("classid")?,
                    objid: r.val("objid")?,
                },
                to: ObjRef {
                    classid: r.val("refclassid")?,
                    objid: r.val("refobjid")?,
                },
                deptype: deptype.bytes().next().unwrap_or(b'n'),
            })
        })
        .collect()
}

/// Which entry creates each address.
fn owners(objs: &[Obj], edges: &[Edge]) -> HashMap<ObjRef, usize> {
    let mut owner = HashMap::new();
    for (i, obj) in objs.iter().enumerate() {
        for r in &obj.owns {
            owner.entry(*r).or_insert(i);
        }
    }
    loop {
        let mut changed = false;
        for e in edges.iter().filter(|e| matches!(e.deptype, b'i' | b'e')) {
            if owner.contains_key(&e.from) {
                continue;
            }
            if let Some(&i) = owner.get(&e.to) {
                owner.insert(e.from, i);
                changed = true;
            }
        }
        if !changed {
            return owner;
        }
    }
}

/// Dependencies of each entry (indexes into `objs`); moves entries to a
/// later section where their dependencies require it.
pub fn resolve(objs: &mut Vec<Obj>, edges: &[Edge]) -> Vec<BTreeSet<usize>> {
    let (mut owner, mut deps) = direct(objs, edges);
    if super::cycles::split_views(objs, &deps) {
        (owner, deps) = direct(objs, edges);
    }
    promote_sections(objs, &deps);
    chain_refreshes(objs, &owner, &mut deps);
    wait_for_index_attach(objs, &owner, &mut deps);
    grants_after_relation_ddl(objs, &mut deps);
    last_in_post_data(objs, &mut deps);
    deps
}

/// The owner of each address, and each entry's dependencies from its
/// `after` addresses and `pg_depend` (steps 1 and 2).
fn direct(objs: &[Obj], edges: &[Edge]) -> (HashMap<ObjRef, usize>, Vec<BTreeSet<usize>>) {
    let owner = owners(objs, edges);
    let mut deps = vec![BTreeSet::new(); objs.len()];
    for (i, obj) in objs.iter().enumerate() {
        deps[i].extend(
            obj.after
                .iter()
                .filter_map(|r| owner.get(r))
                .filter(|&&j| j != i),
        );
    }
    for e in edges.iter().filter(|e| e.deptype != b'e') {
        if let (Some(&a), Some(&b)) = (owner.get(&e.from), owner.get(&e.to)) {
            if a != b {
                deps[a].insert(b);
            }
        }
    }
    through_shells(objs, &owner, &mut deps);
    (owner, deps)
}

/// A base type and its I/O functions depend on each other: each function
/// that the type depends on and that depends on the type waits for the
/// type's shell entry instead (the shell is created first, the full
/// definition after the functions).
fn through_shells(objs: &[Obj], owner: &HashMap<ObjRef, usize>, deps: &mut [BTreeSet<usize>]) {
    for (t, obj) in objs.iter().enumerate() {
        if obj.kind != ObjectKind::Type {
            continue;
        }
        let Some(&shell) = obj
            .after
            .iter()
            .filter_map(|r| owner.get(r))
            .find(|&&i| objs[i].kind == ObjectKind::ShellType)
        else {
            continue;
        };
        let mutual: Vec<usize> = deps[t]
            .iter()
            .copied()
            .filter(|&f| deps[f].contains(&t))
            .collect();
        for f in mutual {
            deps[f].remove(&t);
            deps[f].insert(shell);
        }
    }
}

fn promote_sections(objs: &mut [Obj], deps: &[BTreeSet<usize>]) {
    loop {
        let mut changed = false;
        for i in 0..objs.len() {
            let needed = deps[i].iter().map(|&d| objs[d].section).max();
            if let Some(s) = needed.filter(|s| *s > objs[i].section) {
                objs[i].section = s;
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}

fn chain_refreshes(objs: &[Obj], owner: &HashMap<ObjRef, usize>, deps: &mut [BTreeSet<usize>]) {
    let refresh: HashMap<usize, usize> = objs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.kind == ObjectKind::MaterializedViewData)
        .filter_map(|(i, o)| {
            let view = o.after.iter().find(|r| r.classid == class::CLASS)?;
            Some((*owner.get(view)?, i))
        })
        .collect();
    // What a refresh, run as the view's owner, is subject to: privileges
    // and row security of the objects it reads.
    let mut guards: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, o) in objs.iter().enumerate() {
        if matches!(
            o.kind,
            ObjectKind::Acl | ObjectKind::RowSecurity | ObjectKind::Policy
        ) {
            for &d in &deps[i] {
                guards.entry(d).or_default().push(i);
            }
        }
    }
    for (&view, &data) in &refresh {
        let mut stack = vec![view];
        let mut seen = BTreeSet::new();
        let mut extra = BTreeSet::new();
        while let Some(d) = stack.pop() {
            if !seen.insert(d) {
                continue;
            }
            extra.extend(guards.get(&d).into_iter().flatten().copied());
            match objs[d].kind {
                ObjectKind::MaterializedView if d != view => {
                    extra.extend(refresh.get(&d).copied());
                }
                ObjectKind::View | ObjectKind::MaterializedView => {
                    stack.extend(deps[d].iter().copied())
                }
                _ => {}
            }
        }
        extra.remove(&data);
        deps[data].extend(extra);
    }
}

fn wait_for_index_attach(
    objs: &[Obj],
    owner: &HashMap<ObjRef, usize>,
    deps: &mut [BTreeSet<usize>],
) {
    // Attach entries by the entry owning the parent index, and the entry
    // owning the attached (child) index.
    let mut attaches: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
    for (i, o) in objs.iter().enumerate() {
        if o.kind != ObjectKind::IndexAttach {
            continue;
        }
        if let [parent, child] = o.after[..] {
            if let (Some(&p), Some(&c)) = (owner.get(&parent), owner.get(&child)) {
                attaches.entry(p).or_default().push((i, c));
            }
        }
    }
    for i in 0..objs.len() {
        if objs[i].kind != ObjectKind::ForeignKey {
            continue;
        }
        let mut stack: Vec<usize> = deps[i]
            .iter()
            .copied()
            .filter(|d| attaches.contains_key(d))
            .collect();
        let mut seen = BTreeSet::new();
        while let Some(p) = stack.pop() {
            if !seen.insert(p) {
                continue;
            }
            for &(attach, child) in attaches.get(&p).into_iter().flatten() {
                deps[i].insert(attach);
                stack.push(child);
            }
        }
    }
}

fn last_in_post_data(objs: &[Obj], deps: &mut [BTreeSet<usize>]) {
    let stage = |k: ObjectKind| match k {
        ObjectKind::DefaultAcl => 1,
        ObjectKind::EventTrigger => 2,
        _ => 0,
    };
    for i in 0..objs.len() {
        let mine = stage(objs[i].kind);
        if mine == 0 || objs[i].section != Section::PostData {
            continue;
        }
        // Not the entry's own comments and ACLs, which come after it.
        let before: Vec<usize> = objs
            .iter()
            .enumerate()
            .filter(|(j, o)| {
                o.section == Section::PostData && stage(o.kind) < mine && !deps[*j].contains(&i)
            })
            .map(|(j, _)| j)
            .collect();
        deps[i].extend(before);
    }
}

fn grants_after_relation_ddl(objs: &[Obj], deps: &mut [BTreeSet<usize>]) {
    let relation = |k: ObjectKind| {
        matches!(
            k,
            ObjectKind::Table
                | ObjectKind::View
                | ObjectKind::MaterializedView
                | ObjectKind::Sequence
        )
    };
    let ddl = |k: ObjectKind| {
        !matches!(
            k,
            ObjectKind::Acl
                | ObjectKind::Comment
                | ObjectKind::SecurityLabel
                | ObjectKind::MaterializedViewData
                | ObjectKind::DefaultAcl
                | ObjectKind::EventTrigger
        )
    };
    let mut touching: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, o) in objs.iter().enumerate() {
        if o.section == Section::PostData && ddl(o.kind) {
            for &d in deps[i].iter().filter(|&&d| relation(objs[d].kind)) {
                touching.entry(d).or_default().push(i);
            }
        }
    }
    for i in 0..objs.len() {
        if objs[i].kind != ObjectKind::Acl {
            continue;
        }
        let targets: Vec<usize> = deps[i]
            .iter()
            .copied()
            .filter(|&d| relation(objs[d].kind))
            .collect();
        for t in targets {
            deps[i].extend(touching.get(&t).into_iter().flatten().copied());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::obj::oref;
    use crate::catalog::toc::Section;

    fn obj(kind: ObjectKind, section: Section, owns: &[ObjRef], after: &[ObjRef]) -> Obj {
        let mut o = Obj::new(kind, section, format!("{kind:?}"), "--\n".into());
        o.owns = owns.to_vec();
        o.after = after.to_vec();
        o
    }

    fn edge(from: ObjRef, to: ObjRef, deptype: u8) -> Edge {
        Edge { from, to, deptype }
    }

    #[test]
    fn internal_objects_belong_to_their_owner() {
        let (table, rowtype, array, func) = (
            oref(class::CLASS, 100),
            oref(class::TYPE, 200),
            oref(class::TYPE, 201),
            oref(class::PROC, 300),
        );
        let mut objs = vec![
            obj(ObjectKind::Function, Section::PreData, &[func], &[]),
            obj(ObjectKind::Table, Section::PreData, &[table], &[]),
        ];
        let edges = [
            edge(array, rowtype, b'i'),
            edge(rowtype, table, b'i'),
            edge(func, array, b'n'),
        ];
        let deps = resolve(&mut objs, &edges);
        assert_eq!(deps[0], BTreeSet::from([1]));
        assert!(deps[1].is_empty());
    }

    #[test]
    fn entries_move_to_the_section_they_need() {
        let (view, rule, pk, table) = (
            oref(class::CLASS, 10),
            oref(class::REWRITE, 11),
            oref(class::CONSTRAINT, 12),
            oref(class::CLASS, 13),
        );
        let mut objs = vec![
            obj(ObjectKind::Table, Section::PreData, &[table], &[]),
            obj(ObjectKind::Constraint, Section::PostData, &[pk], &[table]),
            obj(ObjectKind::View, Section::PreData, &[view, rule], &[]),
            obj(ObjectKind::Comment, Section::PreData, &[], &[view]),
        ];
        let deps = resolve(&mut objs, &[edge(rule, pk, b'n'), edge(rule, table, b'n')]);
        assert_eq!(deps[2], BTreeSet::from([0, 1]));
        assert_eq!(objs[2].section, Section::PostData);
        assert_eq!(objs[3].section, Section::PostData);
        assert_eq!(objs[0].section, Section::PreData);
    }

    #[test]
    fn foreign_keys_wait_for_partition_index_attach() {
        let (pk, pk_index, child_index, fk) = (
            oref(class::CONSTRAINT, 1),
            oref(class::CLASS, 2),
            oref(class::CLASS, 3),
            oref(class::CONSTRAINT, 4),
        );
        let mut objs = vec![
            obj(
                ObjectKind::Constraint,
                Section::PostData,
                &[pk, pk_index],
                &[],
            ),
            obj(
                ObjectKind::Constraint,
                Section::PostData,
                &[child_index],
                &[],
            ),
            obj(
                ObjectKind::IndexAttach,
                Section::PostData,
                &[],
                &[pk_index, child_index],
            ),
            obj(ObjectKind::ForeignKey, Section::PostData, &[fk], &[]),
        ];
        let deps = resolve(&mut objs, &[edge(fk, pk_index, b'n')]);
        assert_eq!(deps[3], BTreeSet::from([0, 2]));
        assert_eq!(deps[2], BTreeSet::from([0, 1]));
    }

    #[test]
    fn refreshes_follow_other_refreshes_and_grants() {
        let (mv1, mv2, view) = (
            oref(class::CLASS, 1),
            oref(class::CLASS, 2),
            oref(class::CLASS, 3),
        );
        let mut objs = vec![
            obj(ObjectKind::MaterializedView, Section::PreData, &[mv1], &[]),
            obj(ObjectKind::View, Section::PreData, &[view], &[mv1]),
            obj(
                ObjectKind::MaterializedView,
                Section::PreData,
                &[mv2],
                &[view],
            ),
            obj(
                ObjectKind::MaterializedViewData,
                Section::PostData,
                &[],
                &[mv1],
            ),
            obj(
                ObjectKind::MaterializedViewData,
                Section::PostData,
                &[],
                &[mv2],
            ),
            obj(ObjectKind::Acl, Section::PostData, &[], &[view]),
            obj(ObjectKind::DefaultAcl, Section::PostData, &[], &[]),
        ];
        let deps = resolve(&mut objs, &[]);
        assert_eq!(deps[4], BTreeSet::from([2, 3, 5]));
        assert_eq!(deps[6], BTreeSet::from([3, 4, 5]));
    }
}
