//! Prometheus text exposition of a status report (`status --prometheus`,
//! for node_exporter's textfile collector, and `serve`'s `/metrics`), with
//! the metric names of `docs/policy.md`: labels `job` and `kind`
//! (`postgres` or `redis`). A time that is not known (no drill yet) is left
//! out rather than written as 0.

use super::status::StatusReport;
use crate::error::{Error, Result};
use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> Result<GaugeVec> {
    let g = GaugeVec::new(Opts::new(name, help), labels).map_err(prom)?;
    registry.register(Box::new(g.clone())).map_err(prom)?;
    Ok(g)
}

fn prom(e: prometheus::Error) -> Error {
    Error::Internal(format!("metrics: {e}"))
}

/// Registers the status gauges of `report` in `registry` (serve adds its
/// own counters to the same registry).
pub fn register_status(registry: &Registry, report: &StatusReport) -> Result<()> {
    let jk = &["job", "kind"];
    let last_success = gauge(
        registry,
        "pgkeep_backup_last_success_timestamp_seconds",
        "Start time of the newest complete backup (Unix seconds).",
        jk,
    )?;
    let last_failure = gauge(
        registry,
        "pgkeep_backup_last_failure_timestamp_seconds",
        "End time of the last failed backup run (Unix seconds).",
        jk,
    )?;
    let duration = gauge(
        registry,
        "pgkeep_backup_last_duration_seconds",
        "Duration of the last successful backup run.",
        jk,
    )?;
    let size = gauge(
        registry,
        "pgkeep_backup_last_size_bytes",
        "Stored size of the last successful backup.",
        jk,
    )?;
    let count = gauge(
        registry,
        "pgkeep_backups",
        "Complete backups in the repository.",
        jk,
    )?;
    let oldest = gauge(
        registry,
        "pgkeep_backup_oldest_timestamp_seconds",
        "Start time of the oldest complete backup (Unix seconds).",
        jk,
    )?;
    let rpo = gauge(
        registry,
        "pgkeep_rpo_seconds",
        "The job's recovery point objective.",
        jk,
    )?;
    let stale = gauge(
        registry,
        "pgkeep_backup_stale",
        "1 when no complete backup is within the RPO.",
        jk,
    )?;
    let verify = gauge(
        registry,
        "pgkeep_verify_last_success_timestamp_seconds",
        "End time of the last passed verify (Unix seconds).",
        jk,
    )?;
    let drill = gauge(
        registry,
        "pgkeep_drill_last_success_timestamp_seconds",
        "End time of the last passed drill (Unix seconds).",
        jk,
    )?;
    let drill_rto = gauge(
        registry,
        "pgkeep_drill_last_rto_seconds",
        "Restore time measured by the last passed drill.",
        jk,
    )?;
    let rto = gauge(
        registry,
        "pgkeep_rto_seconds",
        "The job's recovery time objective.",
        jk,
    )?;
    let lag = gauge(
        registry,
        "pgkeep_copy_lag_seconds",
        "How far the most lagging offsite copy is behind the repository.",
        jk,
    )?;
    let state = gauge(
        registry,
        "pgkeep_job_state",
        "Job state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
        jk,
    )?;
    let runs = IntCounterVec::new(
        Opts::new("pgkeep_runs_total", "Recorded runs by action and outcome."),
        &["job", "kind", "action", "outcome"],
    )
    .map_err(prom)?;
    registry.register(Box::new(runs.clone())).map_err(prom)?;
    let info = gauge(
        registry,
        "pgkeep_build_info",
        "pgkeep's version (always 1).",
        &["version"],
    )?;
    info.with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1.0);
    let ts = |t: time::OffsetDateTime| t.unix_timestamp() as f64 + f64::from(t.nanosecond()) / 1e9;
    for j in &report.jobs {
        let l = [j.job.as_str(), j.kind.as_str()];
        let set = |g: &GaugeVec, v: Option<f64>| {
            if let Some(v) = v {
                g.with_label_values(&l).set(v);
            }
        };
        set(&last_success, j.last_success.map(|s| ts(s.0)));
        set(&last_failure, j.last_failure.map(|s| ts(s.0)));
        set(&duration, j.last_duration_seconds);
        set(&size, j.last_size_bytes.map(|b| b as f64));
        set(&count, Some(j.backups as f64));
        set(&oldest, j.oldest_backup.map(|s| ts(s.0)));
        set(&rpo, j.rpo_seconds.map(|s| s as f64));
        set(&stale, Some(if j.stale { 1.0 } else { 0.0 }));
        set(&verify, j.last_verify.map(|s| ts(s.0)));
        set(&drill, j.last_drill.map(|s| ts(s.0)));
        set(&drill_rto, j.last_drill_rto_seconds);
        set(&rto, j.rto_seconds.map(|s| s as f64));
        set(
            &lag,
            j.copies
                .iter()
                .filter_map(|c| c.lag_seconds)
                .max()
                .map(|s| s as f64),
        );
        set(&state, Some(f64::from(j.state.exit_code())));
        for (key, n) in &j.runs {
            if let Some((action, outcome)) = key.split_once('/') {
                runs.with_label_values(&[&j.job, &j.kind, action, outcome])
                    .inc_by(*n);
            }
        }
    }
    Ok(())
}

/// Encodes a registry in the Prometheus text format (0.0.4).
pub fn encode(registry: &Registry) -> Result<String> {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .map_err(prom)?;
    String::from_utf8(buf).map_err(|e| Error::Internal(format!("metrics text: {e}")))
}

/// The status report as Prometheus text.
pub fn prometheus_text(report: &StatusReport) -> Result<String> {
    let registry = Registry::new();
    register_status(&registry, report)?;
    encode(&registry)
}
