//! What `restore --clean --if-exists` drops for a TOC entry, recorded with
//! the entry at backup time: `DROP <keyword> IF EXISTS <name>` from the name
//! the entry's object is commented under, or a statement a reader set
//! itself (user mappings, column defaults, a view's deferred definition).
//! Only objects that stand on their own get one; sub-objects (columns,
//! CHECK constraints, indexes, triggers, rules, policies, statistics) go
//! with their table. Foreign keys get one so that they go first and tables
//! drop in any order; so do column defaults, which may call a function the
//! backup drops too.

use super::obj::Obj;
use super::toc::ObjectKind;

/// The drop statement of `obj`, if it stands on its own.
pub fn statement(obj: &Obj) -> Option<String> {
    if let Some(d) = &obj.drop {
        return Some(d.clone());
    }
    let own = obj.owns.first()?;
    let (r, t) = obj.targets.first()?;
    if r != own {
        return None;
    }
    match obj.kind {
        ObjectKind::ForeignKey => {
            let (constraint, table) = split_on(&t.name)?;
            Some(format!(
                "ALTER TABLE IF EXISTS {table} DROP CONSTRAINT IF EXISTS {constraint};\n"
            ))
        }
        ObjectKind::Schema if t.name == "public" => None,
        ObjectKind::LargeObject => {
            let oid: u32 = t.name.parse().ok()?;
            Some(format!(
                "SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata WHERE oid = {oid};\n"
            ))
        }
        ObjectKind::Schema
        | ObjectKind::Extension
        | ObjectKind::Type
        | ObjectKind::Domain
        | ObjectKind::Collation
        | ObjectKind::Function
        | ObjectKind::Procedure
        | ObjectKind::Aggregate
        | ObjectKind::Sequence
        | ObjectKind::Table
        | ObjectKind::View
        | ObjectKind::MaterializedView
        | ObjectKind::EventTrigger
        | ObjectKind::Publication
        | ObjectKind::TextSearchDictionary
        | ObjectKind::TextSearchConfiguration
        | ObjectKind::ForeignDataWrapper
        | ObjectKind::ForeignServer
        | ObjectKind::Cast
        | ObjectKind::Operator
        | ObjectKind::AccessMethod
        | ObjectKind::OperatorFamily
        | ObjectKind::OperatorClass
        | ObjectKind::Conversion
        | ObjectKind::Transform
        | ObjectKind::Language
        | ObjectKind::ShellType => Some(format!("DROP {} IF EXISTS {};\n", t.keyword, t.name)),
        _ => None,
    }
}

/// `name ON table` split at the first ` ON ` outside double quotes.
fn split_on(text: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted && text[i..].starts_with(" ON ") {
            return Some((&text[..i], &text[i + 4..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::obj::{class, target};
    use crate::catalog::Section;

    fn obj(kind: ObjectKind, keyword: &'static str, name: &str) -> Obj {
        Obj::new(kind, Section::PreData, "x", String::new()).creates(class::CLASS, 1, keyword, name)
    }

    #[test]
    fn standalone_objects_drop_by_their_comment_name() {
        assert_eq!(
            statement(&obj(ObjectKind::Table, "TABLE", "app.\"Users\"")).as_deref(),
            Some("DROP TABLE IF EXISTS app.\"Users\";\n")
        );
        assert_eq!(
            statement(&obj(
                ObjectKind::Function,
                "FUNCTION",
                "app.f(integer, text)"
            ))
            .as_deref(),
            Some("DROP FUNCTION IF EXISTS app.f(integer, text);\n")
        );
        assert_eq!(
            statement(&obj(
                ObjectKind::ForeignKey,
                "CONSTRAINT",
                "\"a ON b\" ON app.\"t ON u\""
            ))
            .as_deref(),
            Some("ALTER TABLE IF EXISTS app.\"t ON u\" DROP CONSTRAINT IF EXISTS \"a ON b\";\n")
        );
        assert!(
            statement(&obj(ObjectKind::LargeObject, "LARGE OBJECT", "16400"))
                .is_some_and(|s| s.contains("oid = 16400"))
        );
    }

    #[test]
    fn sub_objects_public_and_unnamed_entries_get_none() {
        for (kind, keyword) in [
            (ObjectKind::Index, "INDEX"),
            (ObjectKind::Trigger, "TRIGGER"),
            (ObjectKind::Constraint, "CONSTRAINT"),
            (ObjectKind::Policy, "POLICY"),
        ] {
            assert_eq!(statement(&obj(kind, keyword, "a ON t")), None, "{keyword}");
        }
        assert_eq!(
            statement(&obj(ObjectKind::Schema, "SCHEMA", "public")),
            None
        );
        let plain = Obj::new(ObjectKind::Table, Section::PreData, "x", String::new());
        assert_eq!(statement(&plain), None);
        // A comment name for a sub-object only (not the entry's own address).
        let mut sub = Obj::new(ObjectKind::Table, Section::PreData, "x", String::new());
        sub.owns.push(crate::catalog::obj::oref(class::CLASS, 1));
        sub.targets.push((
            crate::catalog::obj::oref(class::CLASS, 2),
            target("INDEX", "i").unwrap(),
        ));
        assert_eq!(statement(&sub), None);
    }
}
