//! The hash recipe evaluated on one row: which bytes go into the digest (the
//! parts, separators, NULL rendering, text or bytea input), the digest
//! itself, and how a digest is rendered and compared in the stored form
//! (hex, base64 or bytea). Column positions come from the caller's layout.

use super::copytext::Fields;
use crate::config::policy::{Input, Output, Part, Recipe};
use base64::Engine;
use sha2::{Digest, Sha256};

/// A recipe bound to column positions of a COPY row.
#[derive(Clone, Debug)]
pub struct Evaluator {
    parts: Vec<Bound>,
    separator: Vec<u8>,
    null: Vec<u8>,
    skip_nulls: bool,
    output: Output,
}

#[derive(Clone, Debug)]
enum Bound {
    Column { index: usize, input: Input },
    Literal(Vec<u8>),
}

/// A column value the recipe could not use (e.g. bytea input that is not
/// `\x` hex); the message says which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue(pub String);

impl Evaluator {
    /// Binds `recipe`; `position` maps a column name to its field index.
    pub fn new(
        recipe: &Recipe,
        mut position: impl FnMut(&str) -> Option<usize>,
    ) -> std::result::Result<Evaluator, String> {
        let mut parts = Vec::with_capacity(recipe.parts.len());
        for p in &recipe.parts {
            parts.push(match p {
                Part::Literal(l) => Bound::Literal(l.as_bytes().to_vec()),
                Part::Column { name, input } => Bound::Column {
                    index: position(name)
                        .ok_or_else(|| format!("recipe column {name:?} is not in the table"))?,
                    input: input.unwrap_or(recipe.input),
                },
            });
        }
        Ok(Evaluator {
            parts,
            separator: recipe.separator.as_bytes().to_vec(),
            null: recipe.null.as_bytes().to_vec(),
            skip_nulls: recipe.skip_nulls,
            output: recipe.output,
        })
    }

    /// Field indexes the recipe reads.
    pub fn columns(&self) -> impl Iterator<Item = usize> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Bound::Column { index, .. } => Some(*index),
            Bound::Literal(_) => None,
        })
    }

    /// The digest of a row. `scratch` is reused for bytea decoding.
    pub fn digest(
        &self,
        row: &Fields,
        scratch: &mut Vec<u8>,
    ) -> std::result::Result<[u8; 32], BadValue> {
        let mut h = Sha256::new();
        let mut first = true;
        for p in &self.parts {
            let bytes: &[u8] = match p {
                Bound::Literal(l) => l,
                Bound::Column { index, input } => match (row.get(*index), input) {
                    (None, _) if self.skip_nulls => continue,
                    (None, _) => &self.null,
                    (Some(v), Input::Text) => v,
                    (Some(v), Input::Bytea) => {
                        decode_bytea(v, scratch)
                            .map_err(|m| BadValue(format!("recipe column #{}: {m}", index + 1)))?;
                        scratch
                    }
                },
            };
            if !first {
                h.update(&self.separator);
            }
            first = false;
            h.update(bytes);
        }
        Ok(h.finalize().into())
    }

    /// A digest in the stored form (what the hash column should hold).
    pub fn render(&self, digest: &[u8; 32]) -> String {
        match self.output {
            Output::Hex => hex::encode(digest),
            Output::Base64 => base64::engine::general_purpose::STANDARD.encode(digest),
            Output::Bytea => format!("\\x{}", hex::encode(digest)),
        }
    }

    /// Whether a stored hash (the column's text) is `digest`.
    pub fn matches(&self, stored: &[u8], digest: &[u8; 32], scratch: &mut Vec<u8>) -> bool {
        scratch.clear();
        let ok = match self.output {
            Output::Hex => stored.len() == 64 && decode_hex(stored, scratch).is_ok(),
            Output::Base64 => base64::engine::general_purpose::STANDARD
                .decode_vec(stored, scratch)
                .is_ok(),
            Output::Bytea => decode_bytea(stored, scratch).is_ok(),
        };
        ok && scratch.as_slice() == digest
    }
}

/// Decodes bytea's hex text output (`\x…`) into `out` (cleared first).
pub fn decode_bytea(text: &[u8], out: &mut Vec<u8>) -> std::result::Result<(), String> {
    out.clear();
    let hex = text
        .strip_prefix(b"\\x")
        .ok_or("bytea value is not in hex output format (\\x...)")?;
    decode_hex(hex, out)
}

fn decode_hex(hex: &[u8], out: &mut Vec<u8>) -> std::result::Result<(), String> {
    if hex.len() % 2 != 0 {
        return Err("odd number of hex digits".into());
    }
    let start = out.len();
    out.resize(start + hex.len() / 2, 0);
    hex::decode_to_slice(hex, &mut out[start..]).map_err(|e| format!("not hex: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::policy::Algorithm;

    fn recipe(parts: Vec<Part>, output: Output) -> Recipe {
        Recipe {
            algorithm: Algorithm::Sha256,
            separator: "|".into(),
            null: "<null>".into(),
            skip_nulls: false,
            input: Input::Text,
            output,
            parts,
        }
    }

    fn row(text: &[u8], n: usize) -> Fields {
        let mut f = Fields::new();
        f.parse(text, &vec![true; n]).unwrap();
        f
    }

    #[test]
    fn concatenation_follows_the_recipe() {
        let parts = vec![
            Part::from_flag("a"),
            Part::from_flag("lit:v1"),
            Part::from_flag("b"),
            Part::from_flag("bytea:c"),
        ];
        let cols = ["a", "b", "c"];
        let pos = |n: &str| cols.iter().position(|c| *c == n);
        let e = Evaluator::new(&recipe(parts.clone(), Output::Hex), pos).unwrap();
        let r = row(b"x\\ty\t\\N\t\\\\x4142", 3);
        let mut s = Vec::new();
        let d = e.digest(&r, &mut s).unwrap();
        assert_eq!(d, <[u8; 32]>::from(Sha256::digest(b"x\ty|v1|<null>|AB")));
        assert!(e.matches(e.render(&d).as_bytes(), &d, &mut s));
        assert!(e.matches(e.render(&d).to_uppercase().as_bytes(), &d, &mut s));
        assert!(!e.matches(b"00", &d, &mut s));

        let mut skip = recipe(parts, Output::Base64);
        skip.skip_nulls = true;
        let e = Evaluator::new(&skip, pos).unwrap();
        let d = e.digest(&r, &mut s).unwrap();
        assert_eq!(d, <[u8; 32]>::from(Sha256::digest(b"x\ty|v1|AB")));
        assert!(e.matches(e.render(&d).as_bytes(), &d, &mut s));

        let bad = row(b"x\ty\tnot-hex", 3);
        assert!(e.digest(&bad, &mut s).is_err());
        assert!(Evaluator::new(&recipe(vec![Part::from_flag("zz")], Output::Hex), pos).is_err());
    }
}
