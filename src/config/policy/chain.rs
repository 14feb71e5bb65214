//! The `[[chain]]` section of a policy: event-store tables whose rows are
//! hash-chained per stream, and the recipe of their hashes (see
//! `docs/chain.md`).

use crate::error::{Error, Result};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;

/// One hash-chained table.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChainDef {
    /// `schema.table` (names as in the catalog, case-sensitive, unquoted).
    pub table: String,
    /// Columns identifying a stream, e.g. `["stream_type", "stream_id"]`.
    pub stream: Vec<String>,
    /// The per-stream sequence column (an integer).
    pub seq: String,
    /// The column holding the previous event's hash.
    pub prev_hash: String,
    /// The column holding this event's hash.
    pub hash: String,
    /// Sequence number of a stream's first event.
    #[serde(default = "default_first_seq")]
    pub first_seq: i64,
    /// `prev_hash` of a stream's first event; absent means SQL NULL.
    #[serde(default)]
    pub genesis: Option<String>,
    /// How the application computes `hash`.
    pub recipe: Recipe,
}

fn default_first_seq() -> i64 {
    1
}

/// The hash recipe: `digest(part₁ ‖ sep ‖ part₂ ‖ sep ‖ … ‖ partₙ)`, each
/// column part being the value's text output (what `::text` gives).
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    #[serde(default)]
    pub algorithm: Algorithm,
    /// Inserted between consecutive parts.
    #[serde(default)]
    pub separator: String,
    /// How a NULL column renders.
    #[serde(default)]
    pub null: String,
    /// NULL columns are left out with their separator (`concat_ws`).
    #[serde(default)]
    pub skip_nulls: bool,
    /// Default input of column parts.
    #[serde(default)]
    pub input: Input,
    /// How `hash` and `prev_hash` are stored.
    #[serde(default)]
    pub output: Output,
    /// Ordered parts: column names and literals.
    pub parts: Vec<Part>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    #[default]
    Sha256,
}

/// What bytes a column part contributes.
#[derive(Deserialize, Serialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Input {
    /// The value's text output, as bytes in the database encoding.
    #[default]
    Text,
    /// A `bytea` column's raw bytes (its `\x…` text output decoded).
    Bytea,
}

/// How a digest is stored in the hash columns.
#[derive(Deserialize, Serialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    /// Hex text (either case accepted).
    #[default]
    Hex,
    /// Standard base64 text with padding.
    Base64,
    /// A `bytea` column holding the raw digest.
    Bytea,
}

impl std::str::FromStr for Input {
    type Err = Error;
    fn from_str(s: &str) -> Result<Input> {
        match s {
            "text" => Ok(Input::Text),
            "bytea" => Ok(Input::Bytea),
            _ => Err(Error::Config(format!("input {s:?}: use text or bytea"))),
        }
    }
}

impl std::str::FromStr for Output {
    type Err = Error;
    fn from_str(s: &str) -> Result<Output> {
        match s {
            "hex" => Ok(Output::Hex),
            "base64" => Ok(Output::Base64),
            "bytea" => Ok(Output::Bytea),
            _ => Err(Error::Config(format!(
                "hash format {s:?}: use hex, base64 or bytea"
            ))),
        }
    }
}

/// One part of the recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// A column; `input` overrides the recipe's default.
    Column { name: String, input: Option<Input> },
    /// Fixed text.
    Literal(String),
}

impl Part {
    /// The flag syntax of `--part`: `COLUMN`, `bytea:COLUMN`, `text:COLUMN`
    /// or `lit:TEXT`.
    pub fn from_flag(s: &str) -> Part {
        if let Some(l) = s.strip_prefix("lit:") {
            Part::Literal(l.to_string())
        } else if let Some(c) = s.strip_prefix("bytea:") {
            Part::Column {
                name: c.to_string(),
                input: Some(Input::Bytea),
            }
        } else if let Some(c) = s.strip_prefix("text:") {
            Part::Column {
                name: c.to_string(),
                input: Some(Input::Text),
            }
        } else {
            Part::Column {
                name: s.to_string(),
                input: None,
            }
        }
    }
}

/// The table form of a part: exactly one of `column` and `literal`.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PartSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    literal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<Input>,
}

impl Serialize for Part {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let spec = match self {
            Part::Column { name, input } => PartSpec {
                column: Some(name.clone()),
                literal: None,
                input: *input,
            },
            Part::Literal(l) => PartSpec {
                column: None,
                literal: Some(l.clone()),
                input: None,
            },
        };
        spec.serialize(s)
    }
}

struct PartVisitor;

impl<'de> Visitor<'de> for PartVisitor {
    type Value = Part;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a column name, { column = \"NAME\", input = \"text\"|\"bytea\" } or { literal = \"TEXT\" }")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Part, E> {
        Ok(Part::Column {
            name: v.to_string(),
            input: None,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Part, A::Error> {
        let spec = PartSpec::deserialize(de::value::MapAccessDeserializer::new(map))?;
        match (spec.column, spec.literal, spec.input) {
            (Some(name), None, input) => Ok(Part::Column { name, input }),
            (None, Some(l), None) => Ok(Part::Literal(l)),
            (None, Some(_), Some(_)) => Err(de::Error::custom("a literal part takes no `input`")),
            _ => Err(de::Error::custom(
                "a recipe part needs exactly one of `column` and `literal`",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Part {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Part, D::Error> {
        d.deserialize_any(PartVisitor)
    }
}

impl ChainDef {
    /// `(schema, table)` of [`ChainDef::table`].
    pub fn table_parts(&self) -> Option<(&str, &str)> {
        let (s, t) = self.table.split_once('.')?;
        (!s.is_empty() && !t.is_empty() && !t.contains('.')).then_some((s, t))
    }

    /// The columns the COPY stream must be ordered by: stream key, seq, then
    /// hash as a tie-breaker (so duplicates come out in a fixed order).
    pub fn order_columns(&self) -> Vec<String> {
        let mut v = self.stream.clone();
        v.push(self.seq.clone());
        v.push(self.hash.clone());
        v
    }

    /// Checks the definition; the message says what is wrong.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.table_parts().is_none() {
            return Err(format!(
                "table {:?} must be schema-qualified: \"schema.table\"",
                self.table
            ));
        }
        if self.stream.is_empty() {
            return Err("`stream` needs at least one key column".into());
        }
        let mut seen = HashSet::new();
        let named = self
            .stream
            .iter()
            .chain([&self.seq, &self.prev_hash, &self.hash]);
        for c in named {
            if c.is_empty() {
                return Err("a column name is empty".into());
            }
            if !seen.insert(c.as_str()) {
                return Err(format!(
                    "column {c:?} is used twice among stream, seq, prev_hash and hash"
                ));
            }
        }
        if self.recipe.parts.is_empty() {
            return Err("`recipe.parts` is empty".into());
        }
        let mut columns = 0;
        for p in &self.recipe.parts {
            if let Part::Column { name, .. } = p {
                if name.is_empty() {
                    return Err("a recipe column name is empty".into());
                }
                if name == &self.hash {
                    return Err(format!(
                        "the recipe cannot include the hash column {name:?} itself"
                    ));
                }
                columns += 1;
            }
        }
        if columns == 0 {
            return Err("`recipe.parts` names no column".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Policy;
    use super::*;
    use proptest::prelude::*;

    pub(crate) const EXAMPLE: &str = r#"
[[chain]]
table = "app.evt_events"
stream = ["stream_type", "stream_id"]
seq = "stream_seq"
prev_hash = "prev_hash"
hash = "hash"
genesis = ""

[chain.recipe]
separator = "|"
parts = ["prev_hash", "stream_type", "stream_id", "stream_seq", "event_type",
         { column = "payload" }, { literal = "v1" }, { column = "blob", input = "bytea" }]
"#;

    #[test]
    fn example_parses() {
        let p = Policy::parse(EXAMPLE, "t").unwrap();
        let c = &p.chain[0];
        assert_eq!(c.table_parts(), Some(("app", "evt_events")));
        assert_eq!(c.first_seq, 1);
        assert_eq!(c.genesis.as_deref(), Some(""));
        assert_eq!(c.recipe.output, Output::Hex);
        assert_eq!(c.recipe.parts.len(), 8);
        assert_eq!(c.recipe.parts[6], Part::Literal("v1".into()));
        assert_eq!(
            c.recipe.parts[7],
            Part::Column {
                name: "blob".into(),
                input: Some(Input::Bytea)
            }
        );
    }

    #[test]
    fn errors_are_clear() {
        let cases = [
            (EXAMPLE.replace("genesis", "genesys"), "genesys"),
            (
                EXAMPLE.replace("app.evt_events", "evt_events"),
                "schema-qualified",
            ),
            (
                EXAMPLE.replace("separator = \"|\"", "algorithm = \"md5\""),
                "md5",
            ),
            (
                EXAMPLE.replace(
                    "{ literal = \"v1\" }",
                    "{ literal = \"v1\", column = \"x\" }",
                ),
                "exactly one",
            ),
            (
                EXAMPLE.replace("{ literal = \"v1\" }", "{ literl = \"v1\" }"),
                "literl",
            ),
            (EXAMPLE.replace("\"stream_seq\"\n", "\"hash\"\n"), "twice"),
            (format!("{EXAMPLE}\n[retention]\nkeep = 3\n"), "retention"),
            (format!("{EXAMPLE}{EXAMPLE}"), "two [[chain]]"),
        ];
        for (text, needle) in cases {
            let e = Policy::parse(&text, "t").unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{e}");
            assert!(e.to_string().contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn part_flags() {
        assert_eq!(Part::from_flag("lit:|"), Part::Literal("|".into()));
        assert_eq!(
            Part::from_flag("bytea:b"),
            Part::Column {
                name: "b".into(),
                input: Some(Input::Bytea)
            }
        );
        assert_eq!(
            Part::from_flag("payload"),
            Part::Column {
                name: "payload".into(),
                input: None
            }
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,300}") {
            let _ = Policy::parse(&text, "t");
        }

        #[test]
        fn any_sane_definition_round_trips(
            cols in proptest::collection::hash_set("[a-z][a-z0-9_]{0,8}", 5..9),
            sep in "[|,;: ]{0,2}",
            first in -5i64..5,
            lit in "[a-zA-Z0-9 |\\\\\"']{0,6}",
        ) {
            let cols: Vec<String> = cols.into_iter().collect();
            let def = ChainDef {
                table: format!("s.{}", cols[0]),
                stream: vec![cols[0].clone(), cols[1].clone()],
                seq: cols[2].clone(),
                prev_hash: cols[3].clone(),
                hash: cols[4].clone(),
                first_seq: first,
                genesis: Some(String::new()),
                recipe: Recipe {
                    algorithm: Algorithm::Sha256,
                    separator: sep,
                    null: String::new(),
                    skip_nulls: false,
                    input: Input::Text,
                    output: Output::Base64,
                    parts: vec![
                        Part::Column { name: cols[3].clone(), input: None },
                        Part::Literal(lit),
                        Part::Column { name: cols[0].clone(), input: Some(Input::Bytea) },
                    ],
                },
            };
            let text = toml::to_string(&Wrapper { chain: vec![def.clone()] }).unwrap();
            let back = Policy::parse(&text, "t").unwrap();
            prop_assert_eq!(back.chain, vec![def]);
        }
    }

    #[derive(Serialize)]
    struct Wrapper {
        chain: Vec<ChainDef>,
    }
}
