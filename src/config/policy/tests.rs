use super::*;
use crate::units::{HumanDuration, Size, MIB};
use proptest::prelude::*;
use std::time::Duration;

const DESIGN: &str = include_str!("../../../tests/fixtures/policy/design.toml");

#[test]
fn the_design_example_parses_whole() {
    let p = Policy::parse(DESIGN, "design.toml").unwrap();
    assert_eq!(p.timezone(), jiff::tz::TimeZone::UTC);
    let repo = p.repository.as_ref().unwrap();
    assert_eq!(repo.options["region"], OptionValue::Str("auto".into()));
    let app = &p.database[0];
    assert_eq!(
        (app.name.as_str(), app.url.as_str()),
        ("app", "${PROD_DIRECT_URL}")
    );
    assert_eq!(app.jobs, Some(4));
    assert_eq!(app.memory, Some(Size(64 * MIB)));
    assert_eq!(app.rpo, Some(HumanDuration(Duration::from_secs(6 * 3600))));
    assert_eq!(app.schedule.as_ref().unwrap().as_str(), "0 */6 * * *");
    let keep = app.retention.as_ref().unwrap();
    assert_eq!(
        keep.describe(),
        "last 3, daily 14, weekly 8, monthly 12, within 2d"
    );
    assert_eq!(app.copy[0].retention.as_ref().unwrap().keep_daily, Some(30));
    let drill = app.drill.as_ref().unwrap();
    assert_eq!(
        drill.every,
        Some(HumanDuration(Duration::from_secs(31 * 86_400)))
    );
    assert_eq!(drill.check[0].expect, "> 0");
    assert_eq!(drill.command, ["npm", "run", "test"]);
    assert_eq!(p.redis[0].name, "cache");
    assert_eq!(p.chain.len(), 1);
    assert_eq!(p.notify.len(), 2);
    assert_eq!(
        p.notify[1].on,
        [
            Event::Failure,
            Event::Stale,
            Event::DrillFailure,
            Event::Recovered
        ]
    );
    assert_eq!(
        p.serve.as_ref().unwrap().listen.as_deref(),
        Some("127.0.0.1:9898")
    );
    assert_eq!(p.job("cache").unwrap().kind(), "redis");
    assert_eq!(
        job_repository("s3://acme-backups/prod/", "app"),
        "s3://acme-backups/prod/app"
    );
}

#[test]
fn unknown_keys_are_errors_with_the_nearest_key() {
    let text = DESIGN.replace("rpo = \"6h\"\nrto", "rpoo = \"6h\"\nrto");
    let e = Policy::parse(&text, "p.toml").unwrap_err().to_string();
    assert!(
        e.contains("unknown field `rpoo`") && e.contains("did you mean `rpo`?"),
        "{e}"
    );
    assert!(
        e.contains("p.toml line 16:") && !e.contains('\n'),
        "one line: {e}"
    );
    let e = Policy::parse("timezon = \"UTC\"", "p")
        .unwrap_err()
        .to_string();
    assert!(e.contains("did you mean `timezone`?"), "{e}");
}

#[test]
fn bad_values_are_named() {
    let cases = [
        ("timezone = \"Mars/Olympus\"", "not an IANA zone"),
        ("[repository]\nurl = \"/r\"\n[[database]]\nname = \"a b\"\nurl = \"x\"", "job name"),
        ("[repository]\nurl = \"/r\"\n[[database]]\nname = \"a\"\nurl = \"x\"\n[[redis]]\nname = \"a\"\nurl = \"y\"", "two jobs"),
        ("[[database]]\nname = \"a\"\nurl = \"x\"", "need a [repository]"),
        ("[repository]\nurl = \"/r\"\n[[database]]\nname = \"a\"\nurl = \"x\"\nschedule = \"every day\"", "schedule"),
        ("[repository]\nurl = \"/r\"\n[[database]]\nname = \"a\"\nurl = \"x\"\nrpo = \"6 weeks\"", "invalid duration"),
        ("[repository]\nurl = \"/r\"\n[[database]]\nname = \"a\"\nurl = \"x\"\nretention = { keep_daily = -5 }", "keep_daily"),
        ("[repository]\nurl = \"/r\"\n[[database]]\nname = \"a\"\nurl = \"x\"\n[database.drill]\n[[database.drill.check]]\nname = \"c\"\nsql = \"select 1\"\nexpect = \"lots\"", "expect"),
        ("[[notify]]\nkind = \"email\"\nurl = \"x\"", "unknown variant `email`"),
        ("[[notify]]\nkind = \"http\"\non = [\"sometimes\"]\nurl = \"x\"", "sometimes"),
    ];
    for (text, want) in cases {
        let e = Policy::parse(text, "p").unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

#[test]
fn a_missing_job_names_the_jobs_there_are() {
    let p = Policy::parse(DESIGN, "p").unwrap();
    let e = p.job("ap").unwrap_err().to_string();
    assert!(
        e.contains("did you mean app?") && e.contains("app, cache"),
        "{e}"
    );
}

proptest! {
    #[test]
    fn policy_text_never_panics(s in "\\PC{0,200}") {
        let _ = Policy::parse(&s, "fuzz");
    }

    /// Policies written back as TOML parse to the same policy.
    #[test]
    fn the_design_policy_round_trips_with_other_values(
        jobs in 1usize..16, keep in -1i64..40, name in "[a-z][a-z0-9_-]{0,20}",
    ) {
        let mut p = Policy::parse(DESIGN, "p").unwrap();
        p.database[0].jobs = Some(jobs);
        p.database[0].name = name.clone();
        p.redis[0].retention.as_mut().unwrap().keep_last = Some(keep);
        let text = toml::to_string(&p).unwrap();
        let back = Policy::parse(&text, "p").unwrap();
        prop_assert_eq!(back, p);
    }
}
