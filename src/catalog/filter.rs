//! Object selection like pg_dump's `-n/-N/-t/-T`: patterns with `*` and `?`
//! wildcards, optionally `schema.name` for tables, case-folded unless quoted.

use super::CatalogOptions;
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Char(char),
    Any,
    One,
}

/// One name pattern (a part of a dotted pattern).
#[derive(Clone, Debug, PartialEq)]
struct Pattern(Vec<Tok>);

impl Pattern {
    fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        glob(&self.0, &name)
    }
}

fn glob(pat: &[Tok], name: &[char]) -> bool {
    match pat.split_first() {
        None => name.is_empty(),
        Some((Tok::Any, rest)) => (0..=name.len()).any(|i| glob(rest, &name[i..])),
        Some((Tok::One, rest)) => !name.is_empty() && glob(rest, &name[1..]),
        Some((Tok::Char(c), rest)) => name.first() == Some(c) && glob(rest, &name[1..]),
    }
}

/// Splits a pattern on unquoted dots; folds unquoted letters to lower case.
fn parse(text: &str) -> Result<Vec<Pattern>> {
    let mut parts = vec![Vec::new()];
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        let cur = parts
            .last_mut()
            .ok_or_else(|| Error::Internal("pattern".into()))?;
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push(Tok::Char('"'));
            }
            (_, '"') => quoted = !quoted,
            (true, c) => cur.push(Tok::Char(c)),
            (false, '.') => parts.push(Vec::new()),
            (false, '*') => cur.push(Tok::Any),
            (false, '?') => cur.push(Tok::One),
            (false, c) => cur.extend(c.to_lowercase().map(Tok::Char)),
        }
    }
    if quoted {
        return Err(Error::Config(format!(
            "unterminated quote in pattern {text:?}"
        )));
    }
    Ok(parts.into_iter().map(Pattern).collect())
}

fn schema_pattern(text: &str) -> Result<Pattern> {
    let mut parts = parse(text)?;
    match parts.len() {
        1 => Ok(parts.remove(0)),
        _ => Err(Error::Config(format!(
            "schema pattern {text:?} must not contain a dot"
        ))),
    }
}

/// A table pattern: optional schema part and name part.
fn table_pattern(text: &str) -> Result<(Option<Pattern>, Pattern)> {
    let mut parts = parse(text)?;
    match parts.len() {
        1 => Ok((None, parts.remove(0))),
        2 => {
            let name = parts.remove(1);
            Ok((Some(parts.remove(0)), name))
        }
        _ => Err(Error::Config(format!(
            "table pattern {text:?} must be name or schema.name"
        ))),
    }
}

/// The compiled [`CatalogOptions`].
#[derive(Clone, Debug, Default)]
pub struct Filter {
    schemas: Vec<Pattern>,
    exclude_schemas: Vec<Pattern>,
    tables: Vec<(Option<Pattern>, Pattern)>,
    exclude_tables: Vec<(Option<Pattern>, Pattern)>,
}

fn any_table(pats: &[(Option<Pattern>, Pattern)], schema: &str, name: &str) -> bool {
    pats.iter()
        .any(|(s, n)| s.as_ref().is_none_or(|s| s.matches(schema)) && n.matches(name))
}

impl Filter {
    pub fn new(opts: &CatalogOptions) -> Result<Filter> {
        let schemas = |v: &[String]| {
            v.iter()
                .map(|s| schema_pattern(s))
                .collect::<Result<Vec<_>>>()
        };
        let tables = |v: &[String]| {
            v.iter()
                .map(|s| table_pattern(s))
                .collect::<Result<Vec<_>>>()
        };
        Ok(Filter {
            schemas: schemas(&opts.schemas)?,
            exclude_schemas: schemas(&opts.exclude_schemas)?,
            tables: tables(&opts.tables)?,
            exclude_tables: tables(&opts.exclude_tables)?,
        })
    }

    /// Whether schema-level objects (schemas, types, functions, ...) of this
    /// schema are dumped. None are when tables were selected with `-t`.
    pub fn schema_objects(&self, schema: &str) -> bool {
        self.tables.is_empty() && self.schema(schema)
    }

    fn schema(&self, schema: &str) -> bool {
        (self.schemas.is_empty() || self.schemas.iter().any(|p| p.matches(schema)))
            && !self.exclude_schemas.iter().any(|p| p.matches(schema))
    }

    /// Whether a relation is dumped (before ownership rules for sequences).
    pub fn relation(&self, schema: &str, name: &str) -> bool {
        let selected = if self.tables.is_empty() {
            self.schema(schema)
        } else {
            any_table(&self.tables, schema, name)
        };
        selected && !any_table(&self.exclude_tables, schema, name)
    }

    /// Whether database-wide objects (large objects, event triggers,
    /// publications) are dumped: only without `-n`/`-t`.
    pub fn whole_database(&self) -> bool {
        self.tables.is_empty() && self.schemas.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(schemas: &[&str], xs: &[&str], tables: &[&str], xt: &[&str]) -> Filter {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
        Filter::new(&CatalogOptions {
            schemas: v(schemas),
            exclude_schemas: v(xs),
            tables: v(tables),
            exclude_tables: v(xt),
        })
        .unwrap()
    }

    #[test]
    fn wildcards_and_case_folding() {
        let f = opts(&["App*"], &[], &[], &["app_x.audit?"]);
        assert!(f.schema_objects("app_x"));
        assert!(!f.schema_objects("App_x"));
        assert!(f.relation("app_x", "film"));
        assert!(!f.relation("app_x", "audit1"));
        assert!(f.relation("app_x", "audit12"));
        assert!(!f.relation("public", "film"));
        assert!(!f.whole_database());
    }

    #[test]
    fn table_patterns_select_only_tables() {
        let f = opts(&["ignored"], &[], &["\"Mixed\".t*", "film"], &[]);
        assert!(f.relation("Mixed", "tx"));
        assert!(!f.relation("mixed", "tx"));
        assert!(f.relation("any", "film"));
        assert!(!f.schema_objects("public"));
    }

    #[test]
    fn quoted_dots_and_errors() {
        let f = opts(&[], &[], &["\"a.b\".\"C\"\"d\""], &[]);
        assert!(f.relation("a.b", "C\"d"));
        assert!(Filter::new(&CatalogOptions {
            tables: vec!["a.b.c".into()],
            ..Default::default()
        })
        .is_err());
        let all = opts(&[], &["pub*"], &[], &[]);
        assert!(!all.schema_objects("public"));
        assert!(all.schema_objects("app"));
        assert!(all.whole_database());
    }
}
