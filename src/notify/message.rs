//! What a notice says: the placeholders of an `http` body template
//! (`{kind}`, `{job}`, `{action}`, `{status}`, `{ts}`, `{backup_id}`,
//! `{duration_s}`, `{bytes}`, `{rows}`, `{error}`) and the one-line text of
//! Slack messages and ping bodies.

use crate::config::policy::Event;
use serde::Serialize;

/// One thing that happened to a job.
#[derive(Clone, Debug, Serialize)]
pub struct Notice {
    pub event: Event,
    pub job: String,
    /// `postgres` or `redis`.
    pub kind: String,
    /// `backup`, `verify`, `copy`, `prune`, `drill`, or `status` (stale,
    /// recovered).
    pub action: String,
    /// Unix seconds.
    pub ts: i64,
    pub backup_id: Option<String>,
    pub duration_s: Option<f64>,
    pub bytes: Option<u64>,
    pub rows: Option<u64>,
    /// Redacted.
    pub error: Option<String>,
}

impl Notice {
    /// `start`, `success`, `failure`, `stale`, `drill_failure`, `recovered`.
    pub fn status(&self) -> &'static str {
        match self.event {
            Event::Start => "start",
            Event::Success => "success",
            Event::Failure => "failure",
            Event::Stale => "stale",
            Event::DrillFailure => "drill_failure",
            Event::Recovered => "recovered",
        }
    }

    fn placeholder(&self, name: &str) -> Option<String> {
        let opt = |v: Option<String>| v.unwrap_or_default();
        Some(match name {
            "kind" => self.kind.clone(),
            "job" => self.job.clone(),
            "action" => self.action.clone(),
            "status" => self.status().to_string(),
            "ts" => self.ts.to_string(),
            "backup_id" => opt(self.backup_id.clone()),
            "duration_s" => opt(self.duration_s.map(|d| format!("{d:.1}"))),
            "bytes" => opt(self.bytes.map(|b| b.to_string())),
            "rows" => opt(self.rows.map(|r| r.to_string())),
            "error" => opt(self.error.clone()),
            _ => return None,
        })
    }
}

/// Fills a body template. In a JSON template (starting with `{` or `[`)
/// values are escaped for a JSON string, so an error message with quotes
/// keeps the document valid; `{ts}` and numbers go in as they are. An
/// unknown `{name}` is kept as written. Without a template: the notice as
/// JSON.
pub fn body_for(template: Option<&str>, notice: &Notice) -> String {
    let Some(t) = template else {
        return serde_json::to_string(notice).unwrap_or_default();
    };
    let json = matches!(t.trim_start().chars().next(), Some('{' | '['));
    let mut out = String::with_capacity(t.len() + 64);
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_end = after.find('}');
        match name_end.and_then(|e| notice.placeholder(&after[..e]).map(|v| (e, v))) {
            Some((e, value)) => {
                if json {
                    let quoted = serde_json::to_string(&value).unwrap_or_default();
                    out.push_str(&quoted[1..quoted.len().saturating_sub(1).max(1)]);
                } else {
                    out.push_str(&value);
                }
                rest = &after[e + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A short line for people (Slack, a ping's body).
pub fn slack_text(n: &Notice) -> String {
    let what = format!("{} of {} ({})", n.action, n.job, n.kind);
    let mut facts = Vec::new();
    if let Some(id) = &n.backup_id {
        facts.push(format!("backup {id}"));
    }
    if let Some(b) = n.bytes {
        facts.push(crate::units::format_size(b));
    }
    if let Some(r) = n.rows {
        facts.push(format!("{r} rows"));
    }
    if let Some(d) = n.duration_s {
        facts.push(format!("{d:.1}s"));
    }
    let facts = if facts.is_empty() {
        String::new()
    } else {
        format!(": {}", facts.join(", "))
    };
    let error = n.error.as_deref().unwrap_or("unknown error");
    match n.event {
        Event::Start => format!("pgkeep {what} started"),
        Event::Success => format!(":white_check_mark: pgkeep {what} succeeded{facts}"),
        Event::Failure => format!(":x: pgkeep {what} FAILED: {error}"),
        Event::Stale => format!(":warning: pgkeep: {} ({}) is stale: {error}", n.job, n.kind),
        Event::DrillFailure => format!(":x: pgkeep drill of {} FAILED: {error}", n.job),
        Event::Recovered => format!(
            ":white_check_mark: pgkeep: {} ({}) recovered{facts}",
            n.job, n.kind
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn notice(error: Option<&str>) -> Notice {
        Notice {
            event: Event::Success,
            job: "app".into(),
            kind: "postgres".into(),
            action: "backup".into(),
            ts: 1_765_000_000,
            backup_id: Some("20261207T030000Z-ab12".into()),
            duration_s: Some(12.34),
            bytes: Some(1024),
            rows: Some(7),
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn the_runbook_heartbeat_body_is_filled_exactly() {
        let body = body_for(Some(r#"{"type": "{kind}", "ts": {ts}}"#), &notice(None));
        assert_eq!(body, r#"{"type": "postgres", "ts": 1765000000}"#);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["ts"], 1_765_000_000);
    }

    #[test]
    fn values_are_escaped_in_json_templates_and_unknown_names_kept() {
        let n = notice(Some("bad \"quote\"\nline"));
        let body = body_for(
            Some(r#"{"e": "{error}", "x": "{nope}", "d": {duration_s}}"#),
            &n,
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["e"], "bad \"quote\"\nline");
        assert_eq!(v["x"], "{nope}");
        assert_eq!(v["d"], 12.3);
        assert_eq!(
            body_for(Some("job={job} status={status}"), &n),
            "job=app status=success"
        );
        let whole: serde_json::Value = serde_json::from_str(&body_for(None, &n)).unwrap();
        assert_eq!(whole["backup_id"], "20261207T030000Z-ab12");
    }

    #[test]
    fn slack_lines_say_what_happened() {
        let ok = slack_text(&notice(None));
        assert!(
            ok.contains("backup of app (postgres) succeeded") && ok.contains("7 rows"),
            "{ok}"
        );
        let mut n = notice(Some("connection refused"));
        n.event = Event::Failure;
        assert!(slack_text(&n).contains("FAILED: connection refused"));
    }

    proptest! {
        /// Any template fills without a panic; a JSON template whose
        /// values are placeholders stays valid JSON whatever the error.
        #[test]
        fn templates_never_panic(t in ".{0,60}", e in ".{0,40}") {
            let n = notice(Some(&e));
            let _ = body_for(Some(&t), &n);
            let body = body_for(Some(r#"{"e": "{error}", "j": "{job}"}"#), &n);
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            prop_assert_eq!(v["e"].as_str(), Some(e.as_str()));
        }
    }
}
