//! The `expect` of a drill's SQL check: `> N`, `>= N`, `= VALUE` or
//! `true`, parsed once (the policy check refuses anything else) and
//! evaluated against the first column of the check query's first row.

use std::fmt;

/// What an SQL check's value must be.
#[derive(Clone, Debug, PartialEq)]
pub enum Expect {
    /// `> N`
    Greater(f64),
    /// `>= N`
    AtLeast(f64),
    /// `= VALUE`: equal as numbers when both are numbers, else as text.
    Equals(String),
    /// `true`: a boolean true (`t`/`true`).
    True,
}

impl Expect {
    /// Parses an `expect` string; the error says what is accepted.
    pub fn parse(s: &str) -> Result<Expect, String> {
        let e = s.trim();
        let number = |t: &str| t.trim().parse::<f64>().ok().filter(|n| n.is_finite());
        let parsed = if e == "true" {
            Some(Expect::True)
        } else if let Some(rest) = e.strip_prefix(">=") {
            number(rest).map(Expect::AtLeast)
        } else if let Some(rest) = e.strip_prefix('>') {
            number(rest).map(Expect::Greater)
        } else if let Some(rest) = e.strip_prefix('=') {
            let v = rest.trim();
            (!v.is_empty()).then(|| Expect::Equals(v.to_string()))
        } else {
            None
        };
        parsed.ok_or_else(|| {
            format!("expect {s:?} is not one of \"> N\", \">= N\", \"= VALUE\", \"true\"")
        })
    }

    /// Whether `value` (the query's first column as text; `None` for NULL
    /// or no row) meets the expectation.
    pub fn holds(&self, value: Option<&str>) -> bool {
        let Some(v) = value.map(str::trim) else {
            return false;
        };
        let num = v.parse::<f64>().ok();
        match self {
            Expect::Greater(n) => num.is_some_and(|x| x > *n),
            Expect::AtLeast(n) => num.is_some_and(|x| x >= *n),
            Expect::Equals(want) => match (num, want.parse::<f64>().ok()) {
                (Some(a), Some(b)) => a == b,
                _ => v == want,
            },
            Expect::True => matches!(v, "t" | "true"),
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Greater(n) => write!(f, "> {n}"),
            Expect::AtLeast(n) => write!(f, ">= {n}"),
            Expect::Equals(v) => write!(f, "= {v}"),
            Expect::True => f.write_str("true"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_form_parses_and_holds_as_written() {
        assert_eq!(Expect::parse("> 0"), Ok(Expect::Greater(0.0)));
        assert_eq!(Expect::parse(">=10"), Ok(Expect::AtLeast(10.0)));
        assert_eq!(Expect::parse("= ok"), Ok(Expect::Equals("ok".into())));
        assert_eq!(Expect::parse(" true "), Ok(Expect::True));
        for bad in ["lots", ">", "> x", "=", "< 3", ">= inf", ""] {
            assert!(Expect::parse(bad).is_err(), "{bad}");
        }
        assert!(Expect::Greater(0.0).holds(Some("3")));
        assert!(!Expect::Greater(0.0).holds(Some("0")));
        assert!(!Expect::Greater(0.0).holds(Some("many")));
        assert!(
            !Expect::Greater(0.0).holds(None),
            "NULL or no row never holds"
        );
        assert!(Expect::AtLeast(2.0).holds(Some("2")));
        assert!(Expect::Equals("42".into()).holds(Some("42.0")));
        assert!(Expect::Equals("ok".into()).holds(Some("ok")));
        assert!(!Expect::Equals("ok".into()).holds(Some("OK")));
        assert!(Expect::True.holds(Some("t")) && !Expect::True.holds(Some("f")));
    }

    proptest! {
        /// Any string parses or is refused without a panic, and what
        /// parses prints back to itself.
        #[test]
        fn parse_never_panics_and_display_round_trips(s in ".{0,24}") {
            if let Ok(e) = Expect::parse(&s) {
                prop_assert_eq!(Expect::parse(&e.to_string()), Ok(e));
            }
        }

        #[test]
        fn numbers_compare_as_numbers(a in -1e9f64..1e9, b in -1e9f64..1e9) {
            prop_assert_eq!(Expect::Greater(b).holds(Some(&a.to_string())), a > b);
            prop_assert_eq!(Expect::AtLeast(b).holds(Some(&a.to_string())), a >= b);
        }
    }
}
