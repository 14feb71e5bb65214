//! `${VAR}` in policy strings: read from the environment when the value is
//! used, never when the policy is printed, and never written anywhere. A
//! value that came from the environment is a secret: callers print the
//! template (`${PROD_DIRECT_URL}`), not the expansion.

use crate::error::{Error, Result};

/// Expands every `${NAME}` in `template` from `env`. `NAME` is letters,
/// digits and `_`; a `$` not followed by `{` is kept as it is. An unset
/// variable is an error naming the variable (and `what` uses it), never a
/// value.
pub fn expand(template: &str, what: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| Error::Config(format!("{what}: unterminated ${{ in a policy value")))?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::Config(format!(
                "{what}: ${{...}} must name an environment variable (letters, digits, _)"
            )));
        }
        let value = env(name).ok_or_else(|| {
            Error::Config(format!("{what}: environment variable {name} is not set"))
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands from the process environment.
pub fn expand_env(template: &str, what: &str) -> Result<String> {
    expand(template, what, &|k| std::env::var(k).ok())
}

/// The variables `${NAME}` in `template` names, in order (malformed
/// references are left to [`expand`] to report).
pub fn names(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else { break };
        out.push(after[..end].to_string());
        rest = &after[end + 1..];
    }
    out
}

/// Whether a value takes anything from the environment.
pub fn uses_env(template: &str) -> bool {
    template.contains("${")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "DB_URL" => Some("postgres://u:s3cret@h/db".into()),
            "TOKEN" => Some("t0k".into()),
            _ => None,
        }
    }

    #[test]
    fn names_lists_the_variables_a_value_reads() {
        assert_eq!(names("postgres://${U}:${P}@h/${DB}"), ["U", "P", "DB"]);
        assert!(names("plain").is_empty());
        assert!(names("${unterminated").is_empty());
    }

    #[test]
    fn variables_expand_and_unset_ones_are_named_not_shown() {
        assert_eq!(
            expand("${DB_URL}", "x", &env).unwrap(),
            "postgres://u:s3cret@h/db"
        );
        assert_eq!(
            expand("Bearer ${TOKEN}!", "x", &env).unwrap(),
            "Bearer t0k!"
        );
        assert_eq!(expand("cost $5", "x", &env).unwrap(), "cost $5");
        let e = expand("${NOPE}", "database app url", &env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("NOPE is not set") && e.contains("database app url"),
            "{e}"
        );
        assert!(expand("${DB_URL", "x", &env).is_err());
        assert!(expand("${A B}", "x", &env).is_err());
        assert!(uses_env("${X}") && !uses_env("plain"));
    }

    proptest! {
        #[test]
        fn expansion_never_panics_and_errors_never_hold_values(s in "\\PC{0,40}") {
            if let Err(e) = expand(&s, "x", &env) {
                let e = e.to_string();
                prop_assert!(!e.contains("s3cret") && !e.contains("t0k"));
            }
        }
    }
}
