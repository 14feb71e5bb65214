//! The status page: one row per job (state, last backup and its age
//! against the RPO as a coloured bar, last verify and drill, size) and per
//! job an inline SVG chart of duration and stored size over its last runs.
//! Server-rendered HTML with inline styles: no external assets, no script.

use crate::ops::status::{JobStatus, State, StatusReport, TrendPoint};
use crate::units::{format_duration, format_size};
use std::fmt::Write;
use std::time::Duration;

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn colour(state: State) -> &'static str {
    match state {
        State::Ok => "#2e7d32",
        State::Warning => "#ef6c00",
        State::Critical => "#c62828",
        State::Unknown => "#6d6d6d",
    }
}

fn when(s: &Option<crate::ops::status::Stamp>) -> String {
    s.map(|t| {
        crate::units::rfc3339(t.0)
            .map(|x| x.get(..19).unwrap_or(&x).replace('T', " "))
            .unwrap_or_default()
    })
    .unwrap_or_else(|| "never".into())
}

/// The age bar: the fraction of the RPO the newest backup's age uses.
fn age_bar(j: &JobStatus) -> String {
    let (Some(age), Some(rpo)) = (j.last_success_age_seconds, j.rpo_seconds) else {
        return match j.last_success_age_seconds {
            Some(age) => esc(&format_duration(Duration::from_secs(age))),
            None => "no backup".into(),
        };
    };
    let frac = age as f64 / rpo.max(1) as f64;
    let fill = if frac >= 1.0 {
        "#c62828"
    } else if frac >= 0.75 {
        "#ef6c00"
    } else {
        "#2e7d32"
    };
    format!(
        "<div class=\"bar\" title=\"age {age}s of RPO {rpo}s\"><div style=\"width:{:.0}%;background:{fill}\"></div></div><small>{} of {}</small>",
        (frac * 100.0).min(100.0),
        esc(&format_duration(Duration::from_secs(age))),
        esc(&format_duration(Duration::from_secs(rpo)))
    )
}

/// Duration (bars) and stored size (line) of the last runs.
fn chart(job: &str, trend: &[TrendPoint]) -> String {
    let (w, h, pad) = (360.0, 90.0, 4.0);
    let mut svg = format!(
        "<svg class=\"chart\" data-job=\"{}\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"duration and size of the last {} backups of {}\"><rect width=\"{w}\" height=\"{h}\" fill=\"#fafafa\" stroke=\"#ddd\"/>",
        esc(job),
        trend.len(),
        esc(job)
    );
    if trend.is_empty() {
        svg.push_str(
            "<text x=\"10\" y=\"50\" font-size=\"12\" fill=\"#888\">no runs yet</text></svg>",
        );
        return svg;
    }
    let n = trend.len() as f64;
    let slot = (w - 2.0 * pad) / n;
    let max_d = trend
        .iter()
        .map(|t| t.duration_seconds)
        .fold(0.0, f64::max)
        .max(0.001);
    let max_s = trend
        .iter()
        .filter_map(|t| t.size_bytes)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    for (i, t) in trend.iter().enumerate() {
        let bh = (h - 2.0 * pad) * t.duration_seconds / max_d;
        let _ = write!(
            svg,
            "<rect class=\"duration\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#90caf9\"><title>{} {:.1}s</title></rect>",
            pad + i as f64 * slot + 1.0,
            h - pad - bh,
            (slot - 2.0).max(1.0),
            bh,
            esc(&t.finished_at),
            t.duration_seconds
        );
    }
    let points: Vec<String> = trend
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let s = t.size_bytes? as f64;
            Some(format!(
                "{:.1},{:.1}",
                pad + (i as f64 + 0.5) * slot,
                h - pad - (h - 2.0 * pad) * s / max_s
            ))
        })
        .collect();
    let _ = write!(
        svg,
        "<polyline class=\"size\" fill=\"none\" stroke=\"#6a1b9a\" stroke-width=\"2\" points=\"{}\"/></svg>",
        points.join(" ")
    );
    svg
}

/// The page for `report`.
pub fn render(report: &StatusReport) -> String {
    let mut rows = String::new();
    for j in &report.jobs {
        let _ = write!(
            rows,
            "<tr class=\"job\" data-job=\"{job}\"><td><b>{job}</b><br><small>{kind}</small></td><td><span class=\"state\" style=\"background:{c}\">{state:?}</span></td><td>{last}<br><small>{id}</small></td><td>{bar}</td><td>{verify}</td><td>{drill}</td><td>{size}<br><small>{count} backups</small></td><td>{chart}</td></tr><tr><td colspan=\"8\" class=\"why\">{why}</td></tr>",
            job = esc(&j.job),
            kind = esc(&j.kind),
            c = colour(j.state),
            state = j.state,
            last = when(&j.last_success),
            id = esc(j.newest_backup_id.as_deref().unwrap_or("")),
            bar = age_bar(j),
            verify = when(&j.last_verify),
            drill = when(&j.last_drill),
            size = j.last_size_bytes.map(format_size).unwrap_or_else(|| "-".into()),
            count = j.backups,
            chart = chart(&j.job, &j.trend),
            why = esc(&j.reasons.join("; ")),
        );
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>pgkeep status: {state:?}</title><meta http-equiv=\"refresh\" content=\"60\"><style>\
body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222}}table{{border-collapse:collapse;width:100%}}\
th,td{{text-align:left;padding:.4em .6em;vertical-align:top;border-bottom:1px solid #eee}}td.why{{color:#555;font-size:.85em;border-bottom:2px solid #ddd}}\
.state{{color:#fff;padding:.15em .5em;border-radius:.3em;font-weight:bold}}\
.bar{{width:10em;height:.8em;background:#eee;border-radius:.4em;overflow:hidden}}.bar div{{height:100%}}\
</style></head><body><h1>pgkeep <span class=\"state\" style=\"background:{c}\">{state:?}</span></h1>\
<p>checked {checked} UTC &middot; pgkeep {version}</p>\
<table><thead><tr><th>job</th><th>state</th><th>last backup</th><th>age / RPO</th><th>last verify</th><th>last drill</th><th>size</th><th>duration (bars) and size (line), last runs</th></tr></thead><tbody>{rows}</tbody></table></body></html>",
        state = report.state,
        c = colour(report.state),
        checked = crate::units::rfc3339(report.checked_at.0)
            .map(|x| x.get(..19).unwrap_or(&x).replace('T', " "))
            .unwrap_or_default(),
        version = env!("CARGO_PKG_VERSION"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_charts_scale_to_their_box() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let trend = vec![
            TrendPoint {
                finished_at: "t1".into(),
                duration_seconds: 2.0,
                size_bytes: Some(100),
            },
            TrendPoint {
                finished_at: "t2".into(),
                duration_seconds: 4.0,
                size_bytes: Some(200),
            },
        ];
        let svg = chart("a<b", &trend);
        assert!(svg.contains("data-job=\"a&lt;b\""));
        assert_eq!(svg.matches("class=\"duration\"").count(), 2);
        assert!(
            svg.contains("height=\"82.0\""),
            "the longest run fills the box: {svg}"
        );
        assert!(chart("x", &[]).contains("no runs yet"));
    }
}
