//! Progress reporting for long work: per-table bars and an overall bar on a
//! terminal (indicatif), structured log lines otherwise (tracing).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Receives progress of data streams (tables or slices of tables).
pub trait Progress: Send + Sync {
    fn begin(&self, total_bytes: u64);
    fn stream_started(&self, stream: u32, label: &str, est_bytes: u64);
    fn stream_advanced(&self, stream: u32, bytes: u64, rows: u64);
    fn stream_finished(&self, stream: u32, rows: u64, bytes: u64);
    fn end(&self);
    /// Work measured in steps rather than bytes (restore's post-data:
    /// index and constraint builds): `done` of `total` finished, `current`
    /// the step that just started, if any.
    fn step(&self, _phase: &'static str, _done: usize, _total: usize, _current: Option<&str>) {}
}

/// No output (library use, tests).
pub struct Silent;

impl Progress for Silent {
    fn begin(&self, _: u64) {}
    fn stream_started(&self, _: u32, _: &str, _: u64) {}
    fn stream_advanced(&self, _: u32, _: u64, _: u64) {}
    fn stream_finished(&self, _: u32, _: u64, _: u64) {}
    fn end(&self) {}
}

/// Picks bars on a terminal, log lines otherwise.
pub fn for_stderr(verb: &'static str) -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bars::new(verb))
    } else {
        Box::new(Logs::new(verb))
    }
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    bars: Mutex<HashMap<u32, ProgressBar>>,
    /// The bar of step-counted work (post-data), made on first use.
    steps: Mutex<Option<ProgressBar>>,
}

impl Bars {
    fn new(verb: &'static str) -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        overall.set_prefix(verb);
        Bars {
            multi,
            overall,
            bars: Mutex::new(HashMap::new()),
            steps: Mutex::new(None),
        }
    }
}

impl Progress for Bars {
    fn step(&self, phase: &'static str, done: usize, total: usize, current: Option<&str>) {
        let Ok(mut slot) = self.steps.lock() else {
            return;
        };
        let bar = slot.get_or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(total as u64));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>9} [{bar:30}] {pos}/{len} {elapsed} {msg:50!}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(phase);
            bar
        });
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        if let Some(c) = current {
            bar.set_message(c.to_string());
        }
        if done >= total {
            bar.finish_and_clear();
            self.multi.remove(bar);
            *slot = None;
        }
    }

    fn begin(&self, total_bytes: u64) {
        self.overall.set_length(total_bytes.max(1));
    }
    fn stream_started(&self, stream: u32, label: &str, est_bytes: u64) {
        let bar = self.multi.add(ProgressBar::new(est_bytes.max(1)));
        bar.set_style(
            ProgressStyle::with_template(
                "  {msg:40!} {bytes:>10} {bytes_per_sec:>12} {prefix} rows",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(label.to_string());
        if let Ok(mut m) = self.bars.lock() {
            m.insert(stream, bar);
        }
    }
    fn stream_advanced(&self, stream: u32, bytes: u64, rows: u64) {
        self.overall.inc(bytes);
        if let Ok(m) = self.bars.lock() {
            if let Some(b) = m.get(&stream) {
                b.inc(bytes);
                let total: u64 = b.prefix().parse().unwrap_or(0) + rows;
                b.set_prefix(total.to_string());
            }
        }
    }
    fn stream_finished(&self, stream: u32, _: u64, _: u64) {
        if let Ok(mut m) = self.bars.lock() {
            if let Some(b) = m.remove(&stream) {
                b.finish_and_clear();
                self.multi.remove(&b);
            }
        }
    }
    fn end(&self) {
        self.overall.finish_and_clear();
    }
}

struct Logs {
    verb: &'static str,
    started: Instant,
    total: AtomicU64,
    done: AtomicU64,
    labels: Mutex<HashMap<u32, (String, Instant)>>,
}

impl Logs {
    fn new(verb: &'static str) -> Logs {
        Logs {
            verb,
            started: Instant::now(),
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            labels: Mutex::new(HashMap::new()),
        }
    }
}

impl Progress for Logs {
    fn step(&self, phase: &'static str, done: usize, total: usize, current: Option<&str>) {
        match current {
            Some(c) => {
                tracing::info!(op = self.verb, phase, done, total, building = %c, "step started")
            }
            None if done >= total => {
                tracing::info!(op = self.verb, phase, done, total, "steps done")
            }
            None => {}
        }
    }
    fn begin(&self, total_bytes: u64) {
        self.total.store(total_bytes, Ordering::Relaxed);
    }
    fn stream_started(&self, stream: u32, label: &str, _: u64) {
        if let Ok(mut m) = self.labels.lock() {
            m.insert(stream, (label.to_string(), Instant::now()));
        }
    }
    fn stream_advanced(&self, _: u32, bytes: u64, _: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
    }
    fn stream_finished(&self, stream: u32, rows: u64, bytes: u64) {
        let entry = self.labels.lock().ok().and_then(|mut m| m.remove(&stream));
        if let Some((label, t0)) = entry {
            let secs = t0.elapsed().as_secs_f64().max(1e-6);
            tracing::info!(
                op = self.verb,
                table = %label,
                rows,
                bytes,
                mb_per_s = format!("{:.1}", bytes as f64 / secs / 1e6),
                done_bytes = self.done.load(Ordering::Relaxed),
                total_bytes = self.total.load(Ordering::Relaxed),
                "table done"
            );
        }
    }
    fn end(&self) {
        tracing::info!(
            op = self.verb,
            bytes = self.done.load(Ordering::Relaxed),
            secs = format!("{:.2}", self.started.elapsed().as_secs_f64()),
            "all data streams done"
        );
    }
}
