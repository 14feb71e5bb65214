//! What `serve` adds to `/metrics` beside the status gauges of
//! `ops::metrics`: run durations (histogram), bytes and rows moved,
//! skipped runs, notification deliveries, and the process metrics of the
//! Prometheus client.

use crate::error::{Error, Result};
use crate::notify::Notice;
use crate::ops::job::Job;
use crate::ops::runs::Action;
use crate::ops::status::StatusReport;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

fn prom(e: prometheus::Error) -> Error {
    Error::Internal(format!("metrics: {e}"))
}

pub struct DaemonMetrics {
    registry: Registry,
    duration: HistogramVec,
    bytes: IntCounterVec,
    rows: IntCounterVec,
    skipped: IntCounterVec,
    notify_failed: IntCounter,
    notify_delivered: IntCounter,
}

impl DaemonMetrics {
    pub fn new() -> Result<DaemonMetrics> {
        let registry = Registry::new();
        let labels = &["job", "kind", "action"];
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "pgkeep_run_duration_seconds",
                "Duration of the runs this serve process started.",
            )
            .buckets(vec![
                1.0,
                5.0,
                15.0,
                60.0,
                300.0,
                900.0,
                3600.0,
                4.0 * 3600.0,
                12.0 * 3600.0,
            ]),
            &["job", "kind", "action", "outcome"],
        )
        .map_err(prom)?;
        let bytes = IntCounterVec::new(
            Opts::new(
                "pgkeep_run_bytes_total",
                "Bytes stored, copied or checked by this process's successful runs.",
            ),
            labels,
        )
        .map_err(prom)?;
        let rows = IntCounterVec::new(
            Opts::new(
                "pgkeep_run_rows_total",
                "Rows backed up or checked by this process's successful runs.",
            ),
            labels,
        )
        .map_err(prom)?;
        let skipped = IntCounterVec::new(
            Opts::new(
                "pgkeep_runs_skipped_total",
                "Scheduled runs skipped because a run of the job was still going.",
            ),
            labels,
        )
        .map_err(prom)?;
        let notify_failed = IntCounter::new(
            "pgkeep_notify_failures_total",
            "Notifications not delivered after every attempt.",
        )
        .map_err(prom)?;
        let notify_delivered =
            IntCounter::new("pgkeep_notify_delivered_total", "Notifications delivered.")
                .map_err(prom)?;
        registry
            .register(Box::new(duration.clone()))
            .map_err(prom)?;
        registry.register(Box::new(bytes.clone())).map_err(prom)?;
        registry.register(Box::new(rows.clone())).map_err(prom)?;
        registry.register(Box::new(skipped.clone())).map_err(prom)?;
        registry
            .register(Box::new(notify_failed.clone()))
            .map_err(prom)?;
        registry
            .register(Box::new(notify_delivered.clone()))
            .map_err(prom)?;
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .map_err(prom)?;
        Ok(DaemonMetrics {
            registry,
            duration,
            bytes,
            rows,
            skipped,
            notify_failed,
            notify_delivered,
        })
    }

    pub fn observe(&self, job: &Job, action: Action, seconds: f64, n: &Notice, ok: bool) {
        let outcome = if ok { "success" } else { "failure" };
        self.duration
            .with_label_values(&[&job.name, job.kind, action.name(), outcome])
            .observe(seconds);
        if ok {
            let l = [job.name.as_str(), job.kind, action.name()];
            self.bytes
                .with_label_values(&l)
                .inc_by(n.bytes.unwrap_or(0));
            self.rows.with_label_values(&l).inc_by(n.rows.unwrap_or(0));
        }
    }

    /// Starts the skip counter of each scheduled task at 0, so the series
    /// exists before the first skip and `increase()` sees that one too.
    pub fn scheduled(&self, job: &Job, action: Action) {
        self.skipped
            .with_label_values(&[&job.name, job.kind, action.name()]);
    }

    pub fn skipped(&self, job: &Job, action: Action) {
        self.skipped
            .with_label_values(&[&job.name, job.kind, action.name()])
            .inc();
    }

    /// The whole `/metrics` text: the status gauges of `report`, then this
    /// process's counters (notification counters brought up to date).
    pub fn text(&self, report: &StatusReport, delivered: u64, failed: u64) -> Result<String> {
        bump_to(&self.notify_delivered, delivered);
        bump_to(&self.notify_failed, failed);
        let status = Registry::new();
        crate::ops::metrics::register_status(&status, report)?;
        let mut families = status.gather();
        families.extend(self.registry.gather());
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&families, &mut buf)
            .map_err(prom)?;
        String::from_utf8(buf).map_err(|e| Error::Internal(format!("metrics text: {e}")))
    }
}

/// Raises a counter to `total`, the notifiers' count (which a reload
/// keeps: `serve` hands every notifier the same counters).
fn bump_to(c: &IntCounter, total: u64) {
    let now = c.get();
    if total > now {
        c.inc_by(total - now);
    }
}
