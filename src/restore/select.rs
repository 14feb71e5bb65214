//! What a restore leaves out, pg_restore's way: `--no-owner` (no `ALTER
//! ... OWNER TO`: objects belong to the restoring role), `--no-acl` /
//! `--no-privileges` (no `GRANT`/`REVOKE` entries, default privileges
//! included) and `--no-comments`. Applied to the table of contents before
//! anything runs; data streams are never dropped. And which sections run
//! (`--schema-only`, `--data-only`, `--section`).

use crate::catalog::{ObjectKind, Section, TocEntry};

/// Parses a `--use-list` file (`pgkeep show --list`, edited): the ids of
/// the lines left in. A line starting with `;` is a comment, as in
/// pg_restore; any other line starts with an entry id and `;`.
pub fn parse_list(text: &str) -> std::result::Result<std::collections::HashSet<u32>, String> {
    let mut ids = std::collections::HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with(';') {
            continue;
        }
        let id = t
            .split_once(';')
            .map(|(id, _)| id.trim())
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|id| id.parse::<u32>().ok())
            .ok_or_else(|| {
                format!(
                    "line {}: {:?} is neither a comment (;) nor an entry (ID; ...)",
                    n + 1,
                    t.chars().take(40).collect::<String>()
                )
            })?;
        ids.insert(id);
    }
    Ok(ids)
}

/// The kept entries whose dependencies the list leaves out, one line each.
pub fn missing_dependencies(
    toc: &[TocEntry],
    keep: &std::collections::HashSet<u32>,
) -> Vec<String> {
    let by_id: std::collections::HashMap<u32, &TocEntry> = toc.iter().map(|e| (e.id, e)).collect();
    let mut out = Vec::new();
    for e in toc.iter().filter(|e| keep.contains(&e.id)) {
        for d in e.deps.iter().filter(|d| !keep.contains(d)) {
            if let Some(dep) = by_id.get(d) {
                out.push(format!(
                    "entry {} ({} {}) depends on entry {} ({} {}), which the list leaves out",
                    e.id,
                    e.kind.label(),
                    e.name,
                    dep.id,
                    dep.kind.label(),
                    dep.name
                ));
            }
        }
    }
    out
}

/// What `-t/-n/-T/-N` select from a backup: the entries to restore and
/// the foreign keys left out because they point at a table not selected.
#[derive(Debug, Default)]
pub struct Selection {
    pub keep: std::collections::HashSet<u32>,
    /// `FK name ON table` of each foreign key skipped.
    pub skipped_foreign_keys: Vec<String>,
}

fn is_relation(kind: ObjectKind) -> bool {
    matches!(
        kind,
        ObjectKind::Table | ObjectKind::View | ObjectKind::MaterializedView | ObjectKind::Sequence
    )
}

/// Objects of no schema that `-n`/`-t` leave out, as pg_dump does.
fn database_wide(kind: ObjectKind) -> bool {
    matches!(
        kind,
        ObjectKind::Extension
            | ObjectKind::LargeObject
            | ObjectKind::LargeObjectData
            | ObjectKind::EventTrigger
            | ObjectKind::Publication
            | ObjectKind::PublicationMember
            | ObjectKind::ForeignDataWrapper
            | ObjectKind::ForeignServer
            | ObjectKind::UserMapping
            | ObjectKind::Cast
            | ObjectKind::AccessMethod
            | ObjectKind::Transform
            | ObjectKind::Language
            | ObjectKind::Subscription
    )
}

/// Entries that belong to another (data, indexes, constraints, triggers,
/// rules, policies, defaults, statistics, comments, ACLs, ...): kept with
/// what they belong to.
fn attached(kind: ObjectKind) -> bool {
    matches!(
        kind,
        ObjectKind::TableData
            | ObjectKind::Index
            | ObjectKind::IndexAttach
            | ObjectKind::PartitionAttach
            | ObjectKind::Constraint
            | ObjectKind::CheckConstraint
            | ObjectKind::ForeignKey
            | ObjectKind::Trigger
            | ObjectKind::Rule
            | ObjectKind::RowSecurity
            | ObjectKind::Policy
            | ObjectKind::Default
            | ObjectKind::SequenceOwnedBy
            | ObjectKind::SequenceSet
            | ObjectKind::Statistics
            | ObjectKind::MaterializedViewData
            | ObjectKind::Comment
            | ObjectKind::SecurityLabel
            | ObjectKind::Acl
    )
}

/// Restore selection with the backup's patterns (`-t/-n/-T/-N`): the
/// relations `filter` selects, the schema-level objects of selected
/// schemas (none with `-t`), and everything attached to a kept entry
/// (its data, indexes, constraints, triggers, policies, the sequences it
/// owns, comments, ACLs). An attached entry that also depends on a
/// relation left out is left out too; a foreign key so dropped is named
/// in [`Selection::skipped_foreign_keys`]. Dependencies on anything else
/// left out are expected in the target, as with pg_restore.
pub fn by_patterns(toc: &[TocEntry], filter: &crate::catalog::Filter) -> Selection {
    use std::collections::HashSet;
    let by_id: std::collections::HashMap<u32, &TocEntry> = toc.iter().map(|e| (e.id, e)).collect();
    let mut keep: HashSet<u32> = HashSet::new();
    let mut dropped_relations: HashSet<u32> = HashSet::new();
    for e in toc {
        let schema = e.schema.as_deref().unwrap_or("");
        if is_relation(e.kind) {
            if filter.relation(schema, &e.name) {
                keep.insert(e.id);
            } else {
                dropped_relations.insert(e.id);
            }
        } else if database_wide(e.kind) {
            if filter.whole_database() {
                keep.insert(e.id);
            }
        } else if e.kind == ObjectKind::Schema {
            if filter.schema_objects(&e.name) {
                keep.insert(e.id);
            }
        } else if !attached(e.kind) && (e.schema.is_none() || filter.schema_objects(schema)) {
            // Types, functions, collations, ...: with their schema; default
            // privileges of no schema only for the whole database.
            if e.schema.is_some() || filter.whole_database() {
                keep.insert(e.id);
            }
        }
    }
    // A table's own sequences come with it, even when -t named only it.
    for e in toc.iter().filter(|e| e.kind == ObjectKind::SequenceOwnedBy) {
        if e.deps
            .iter()
            .any(|d| keep.contains(d) && by_id.get(d).is_some_and(|t| t.kind == ObjectKind::Table))
        {
            for d in &e.deps {
                if by_id.get(d).is_some_and(|t| t.kind == ObjectKind::Sequence) {
                    keep.insert(*d);
                    dropped_relations.remove(d);
                }
            }
        }
    }
    // Attached entries follow what they are attached to, until nothing
    // changes (a comment on an index, the ACL of an owned sequence).
    let mut skipped = Vec::new();
    loop {
        let mut changed = false;
        let waiting: Vec<&TocEntry> = toc
            .iter()
            .filter(|e| attached(e.kind) && !keep.contains(&e.id))
            .collect();
        for e in waiting {
            if !e.deps.iter().any(|d| keep.contains(d)) {
                continue;
            }
            if e.deps.iter().any(|d| dropped_relations.contains(d)) {
                if e.kind == ObjectKind::ForeignKey
                    && !skipped.iter().any(|s: &String| s == &e.name)
                {
                    skipped.push(e.name.clone());
                }
                continue;
            }
            keep.insert(e.id);
            changed = true;
        }
        if !changed {
            break;
        }
    }
    Selection {
        keep,
        skipped_foreign_keys: skipped,
    }
}

/// The sections a restore runs (all by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sections {
    pub pre_data: bool,
    pub data: bool,
    pub post_data: bool,
}

impl Default for Sections {
    fn default() -> Sections {
        Sections {
            pre_data: true,
            data: true,
            post_data: true,
        }
    }
}

impl Sections {
    /// From `--schema-only`, `--data-only` and `--section` (pg_restore's
    /// meanings: schema is pre-data and post-data).
    pub fn from_flags(schema_only: bool, data_only: bool, sections: &[Section]) -> Sections {
        if !sections.is_empty() {
            return Sections {
                pre_data: sections.contains(&Section::PreData),
                data: sections.contains(&Section::Data),
                post_data: sections.contains(&Section::PostData),
            };
        }
        Sections {
            pre_data: !data_only,
            data: !schema_only,
            post_data: !data_only,
        }
    }

    pub fn runs(&self, s: Section) -> bool {
        match s {
            Section::PreData => self.pre_data,
            Section::Data => self.data,
            Section::PostData => self.post_data,
        }
    }
}

/// pg_restore's "leave out" options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Omit {
    pub owner: bool,
    pub acl: bool,
    pub comments: bool,
    /// Publications and their tables and schemas.
    pub publications: bool,
    /// `TABLESPACE` clauses: objects go to the target's default.
    pub tablespaces: bool,
    /// Subscriptions.
    pub subscriptions: bool,
    pub security_labels: bool,
}

impl Omit {
    pub fn any(&self) -> bool {
        self.owner
            || self.acl
            || self.comments
            || self.publications
            || self.tablespaces
            || self.subscriptions
            || self.security_labels
    }

    /// The entries to run, with owner statements and tablespace clauses
    /// removed when asked.
    pub fn apply(&self, toc: &[TocEntry]) -> Vec<TocEntry> {
        toc.iter()
            .filter(|e| {
                !(self.acl && matches!(e.kind, ObjectKind::Acl | ObjectKind::DefaultAcl)
                    || self.comments && e.kind == ObjectKind::Comment
                    || self.publications
                        && matches!(
                            e.kind,
                            ObjectKind::Publication | ObjectKind::PublicationMember
                        )
                    || self.subscriptions && e.kind == ObjectKind::Subscription
                    || self.security_labels && e.kind == ObjectKind::SecurityLabel)
            })
            .map(|e| {
                let mut e = e.clone();
                if self.owner {
                    e.sql = strip_owner_statements(&e.sql);
                }
                // A large object keeps its comment and labels inline.
                if self.comments || self.security_labels {
                    e.sql = strip_statements(&e.sql, |first| {
                        self.comments && first.starts_with("COMMENT ON ")
                            || self.security_labels && first.starts_with("SECURITY LABEL ")
                    });
                }
                if self.tablespaces {
                    e.sql = strip_tablespace_clauses(&e.sql);
                }
                e
            })
            .collect()
    }
}

/// Removes the `TABLESPACE name` clauses pgkeep writes at the start of a
/// line of a table's or materialized view's statement (what follows the
/// name, `;` or ` AS`, stays). As for owners, only outside quoted text.
pub fn strip_tablespace_clauses(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut state = Quote::None;
    for line in sql.split_inclusive('\n') {
        let at_top = state == Quote::None;
        state = scan(line, state);
        match line.strip_prefix("TABLESPACE ").filter(|_| at_top) {
            Some(rest) => out.push_str(&rest[identifier_len(rest)..]),
            None => out.push_str(line),
        }
    }
    out
}

/// The length of the identifier `text` starts with, as `quote_ident`
/// writes one: `"..."` with `""` inside, or a bare name.
fn identifier_len(text: &str) -> usize {
    let b = text.as_bytes();
    if b.first() == Some(&b'"') {
        let mut i = 1;
        while i < b.len() {
            if b[i] == b'"' {
                if b.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
                }
                return i + 1;
            }
            i += 1;
        }
        return b.len();
    }
    b.iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c == b'$' || **c >= 0x80)
        .count()
}

/// Removes the `ALTER ... OWNER TO ...;` statements pgkeep writes after
/// each object. Only statements count (text outside quoted text at the
/// start of a line), so a function whose body says `ALTER TABLE t OWNER TO
/// x;` keeps its body.
pub fn strip_owner_statements(sql: &str) -> String {
    strip_statements(sql, |first| {
        first.starts_with("ALTER ") && first.contains(" OWNER TO ")
    })
}

/// Removes the statements whose first line `drop` matches. pgkeep writes
/// each statement from the start of a line; one ends at a line that ends
/// with `;` outside quoted text (string literals, quoted identifiers,
/// dollar-quoted bodies), so a statement spanning lines, or a body holding
/// `;`, is kept or removed whole.
pub fn strip_statements(sql: &str, drop: impl Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut state = Quote::None;
    let mut dropping: Option<bool> = None;
    for line in sql.split_inclusive('\n') {
        let starts = *dropping.get_or_insert_with(|| drop(line.trim_start()));
        state = scan(line, state);
        if !starts {
            out.push_str(line);
        }
        if state == Quote::None && line.trim_end().ends_with(';') {
            dropping = None;
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Quote {
    None,
    /// Inside '...' (or E'...').
    Single,
    /// Inside "...".
    Double,
    /// Inside $tag$...$tag$.
    Dollar(String),
}

/// The quoting state after `text`, starting in `state`.
fn scan(text: &str, mut state: Quote) -> Quote {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match &state {
            Quote::None => match b[i] {
                b'\'' => state = Quote::Single,
                b'"' => state = Quote::Double,
                b'-' if b.get(i + 1) == Some(&b'-') => return Quote::None,
                b'$' => {
                    // $tag$ where tag is empty or an identifier.
                    let rest = &text[i + 1..];
                    if let Some(end) = rest.find('$') {
                        let tag = &rest[..end];
                        if tag.chars().all(|c| c.is_alphanumeric() || c == '_')
                            && !tag.starts_with(|c: char| c.is_ascii_digit())
                        {
                            state = Quote::Dollar(tag.to_string());
                            i += end + 2;
                            continue;
                        }
                    }
                }
                _ => {}
            },
            Quote::Single => {
                if b[i] == b'\'' {
                    // '' is an escaped quote inside the literal.
                    if b.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    state = Quote::None;
                }
            }
            Quote::Double => {
                if b[i] == b'"' {
                    state = Quote::None;
                }
            }
            Quote::Dollar(tag) => {
                let close = format!("${tag}$");
                if text[i..].starts_with(&close) {
                    i += close.len();
                    state = Quote::None;
                    continue;
                }
            }
        }
        i += 1;
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn owner_lines_go_but_not_inside_bodies_or_literals() {
        let sql = "CREATE FUNCTION public.f() RETURNS void LANGUAGE plpgsql AS $fn$\nBEGIN\nALTER TABLE t OWNER TO x;\nEND\n$fn$;\nALTER FUNCTION public.f() OWNER TO app;\nCOMMENT ON FUNCTION public.f() IS 'one\nALTER TABLE u OWNER TO y;\n';\nALTER TABLE public.t OWNER TO app;\n";
        let out = strip_owner_statements(sql);
        assert!(
            out.contains("BEGIN\nALTER TABLE t OWNER TO x;\nEND"),
            "{out}"
        );
        assert!(!out.contains("OWNER TO app"), "{out}");
        assert!(out.contains("'one\nALTER TABLE u OWNER TO y;\n'"), "{out}");
        let plain = "CREATE SCHEMA s;\nALTER SCHEMA s OWNER TO app;\n";
        assert_eq!(strip_owner_statements(plain), "CREATE SCHEMA s;\n");
    }

    #[test]
    fn whole_statements_go_even_when_they_span_lines() {
        let sql = "SELECT pg_catalog.lo_create('7');\nCOMMENT ON LARGE OBJECT 7 IS 'two\nlines;\n';\nSECURITY LABEL FOR pgkeep ON LARGE OBJECT 7 IS 'pgkeep:x';\nALTER LARGE OBJECT 7 OWNER TO app;\n";
        let no_comments = strip_statements(sql, |l| l.starts_with("COMMENT ON "));
        assert_eq!(
            no_comments,
            "SELECT pg_catalog.lo_create('7');\nSECURITY LABEL FOR pgkeep ON LARGE OBJECT 7 IS 'pgkeep:x';\nALTER LARGE OBJECT 7 OWNER TO app;\n"
        );
        let neither = strip_statements(&no_comments, |l| l.starts_with("SECURITY LABEL "));
        assert_eq!(
            strip_owner_statements(&neither),
            "SELECT pg_catalog.lo_create('7');\n"
        );
    }

    #[test]
    fn omitted_kinds_leave_the_toc_and_data_stays() {
        use crate::catalog::Section;
        let e = |id, kind| TocEntry {
            id,
            kind,
            section: Section::PostData,
            schema: None,
            name: format!("e{id}"),
            owner: None,
            sql: "X;\nALTER TABLE a OWNER TO b;\n".into(),
            deps: vec![],
            data: None,
            drop: None,
        };
        let toc = vec![
            e(1, ObjectKind::Acl),
            e(2, ObjectKind::Comment),
            e(3, ObjectKind::TableData),
            e(4, ObjectKind::DefaultAcl),
            e(5, ObjectKind::Publication),
            e(6, ObjectKind::PublicationMember),
            e(7, ObjectKind::Subscription),
        ];
        let omit = Omit {
            owner: true,
            acl: true,
            publications: true,
            subscriptions: true,
            ..Omit::default()
        };
        let kept = omit.apply(&toc);
        assert_eq!(kept.iter().map(|e| e.id).collect::<Vec<_>>(), [2, 3]);
        assert!(kept.iter().all(|e| e.sql == "X;\n"));
        assert_eq!(
            Omit {
                comments: true,
                ..Omit::default()
            }
            .apply(&toc)
            .len(),
            6
        );
    }

    #[test]
    fn sections_follow_pg_restore() {
        let all = Sections::default();
        assert_eq!(Sections::from_flags(false, false, &[]), all);
        let schema = Sections::from_flags(true, false, &[]);
        assert!(schema.pre_data && !schema.data && schema.post_data);
        let data = Sections::from_flags(false, true, &[]);
        assert!(!data.pre_data && data.data && !data.post_data);
        let post = Sections::from_flags(false, false, &[Section::PostData]);
        assert!(!post.runs(Section::PreData) && post.runs(Section::PostData));
    }

    #[test]
    fn tablespace_clauses_go_but_not_inside_bodies() {
        let table = "CREATE TABLE public.t (\n    a integer\n)\nTABLESPACE \"fast ts\";\nALTER TABLE public.t OWNER TO app;\n";
        assert_eq!(
            strip_tablespace_clauses(table),
            "CREATE TABLE public.t (\n    a integer\n)\n;\nALTER TABLE public.t OWNER TO app;\n"
        );
        let mv = "CREATE MATERIALIZED VIEW public.m\nTABLESPACE fast AS\n SELECT 1;\n";
        assert_eq!(
            strip_tablespace_clauses(mv),
            "CREATE MATERIALIZED VIEW public.m\n AS\n SELECT 1;\n"
        );
        let body = "CREATE FUNCTION f() RETURNS int AS $$\nTABLESPACE x;\n$$ LANGUAGE sql;\n";
        assert_eq!(strip_tablespace_clauses(body), body);
    }

    #[test]
    fn lists_parse_like_pg_restores() {
        let ids = parse_list(";\n; header\n12; pre-data TABLE public t app\n;13; post-data INDEX public i app\n\n  7; data TABLE DATA public t app\n").unwrap();
        assert_eq!(ids, [12, 7].into_iter().collect());
        let e = parse_list("12; ok\nnonsense\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        // Ids are digits, as `show --list` prints them (found by fuzzing:
        // `+1` parsed as 1).
        assert!(parse_list("+1; x\n").is_err());
    }

    proptest! {
        /// A listing with some lines commented out yields exactly the
        /// ids of the lines left in, whatever the names hold.
        #[test]
        fn lists_keep_the_uncommented_ids(
            lines in proptest::collection::vec((0u32..5000, any::<bool>(), "[ -~]{0,30}"), 0..40)
        ) {
            let text: String = lines
                .iter()
                .map(|(id, commented, rest)| {
                    format!("{}{id}; pre-data TABLE s {rest}\n", if *commented { ";" } else { "" })
                })
                .collect();
            let want: std::collections::HashSet<u32> =
                lines.iter().filter(|l| !l.1).map(|l| l.0).collect();
            prop_assert_eq!(parse_list(&text).unwrap(), want);
        }

        /// Never panics; text without an owner line is unchanged.
        #[test]
        fn stripping_is_safe(s in "[ -~\\n]{0,200}") {
            let out = strip_owner_statements(&s);
            if !s.contains("OWNER TO") {
                prop_assert_eq!(out, s.clone());
            }
            let out = strip_tablespace_clauses(&s);
            if !s.contains("TABLESPACE ") {
                prop_assert_eq!(out, s);
            }
        }
    }
}
