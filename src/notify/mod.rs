//! Notifications: heartbeats and alerts to the policy's `[[notify]]`
//! targets (`http` with a body template, `slack`, `healthchecks`), from
//! `serve` and from one-shot commands given `--policy`. Delivery runs in
//! the background with a timeout and retries with backoff; it never fails
//! or delays the run it reports. A failed delivery is a warning and a
//! counter. Target URLs and headers are secrets: `${VAR}` is read when a
//! notice is sent, and no URL reaches a log or an error.

mod message;

use crate::config::env::expand_env;
use crate::config::policy::{Event, NotifyDef, NotifyKind};
use message::{body_for, slack_text};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;

pub use message::Notice;

/// How each delivery is attempted.
#[derive(Clone, Copy, Debug)]
pub struct Delivery {
    /// Per attempt.
    pub timeout: Duration,
    pub attempts: u32,
    /// Before the second attempt; doubled before each later one.
    pub backoff: Duration,
}

impl Default for Delivery {
    fn default() -> Delivery {
        Delivery {
            timeout: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// The events a target gets when its `on` is empty: a heartbeat
/// (`http`) on success, alerts (`slack`) on trouble, and the full
/// start/success/fail protocol of a ping URL (`healthchecks`).
pub fn default_events(kind: NotifyKind) -> &'static [Event] {
    match kind {
        NotifyKind::Http => &[Event::Success],
        NotifyKind::Slack => &[
            Event::Failure,
            Event::Stale,
            Event::DrillFailure,
            Event::Recovered,
        ],
        NotifyKind::Healthchecks => &[Event::Start, Event::Success, Event::Failure],
    }
}

fn wants(def: &NotifyDef, event: Event) -> bool {
    if def.on.is_empty() {
        default_events(def.kind).contains(&event)
    } else {
        def.on.contains(&event)
    }
}

/// Delivered and failed deliveries, counted across notifiers: `serve`
/// keeps one pair for its whole life, so a reload (a new notifier) does
/// not start the counts again.
#[derive(Clone, Debug, Default)]
pub struct NotifyCounters {
    failures: Arc<AtomicU64>,
    delivered: Arc<AtomicU64>,
}

/// Delivers notices to the policy's targets.
pub struct Notifier {
    targets: Vec<NotifyDef>,
    client: reqwest::Client,
    delivery: Delivery,
    pending: Mutex<JoinSet<()>>,
    failures: Arc<AtomicU64>,
    delivered: Arc<AtomicU64>,
}

impl Notifier {
    pub fn new(targets: Vec<NotifyDef>, delivery: Delivery) -> Notifier {
        Notifier::with_counters(targets, delivery, &NotifyCounters::default())
    }

    /// A notifier that counts into `counters`.
    pub fn with_counters(
        targets: Vec<NotifyDef>,
        delivery: Delivery,
        counters: &NotifyCounters,
    ) -> Notifier {
        crate::store::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(delivery.timeout)
            .user_agent(concat!("pgkeep/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Notifier {
            targets,
            client,
            delivery,
            pending: Mutex::new(JoinSet::new()),
            failures: counters.failures.clone(),
            delivered: counters.delivered.clone(),
        }
    }

    /// Whether any target wants `event`.
    pub fn wants(&self, event: Event) -> bool {
        self.targets.iter().any(|t| wants(t, event))
    }

    /// Sends `notice` to every target that wants its event, in the
    /// background: returns at once.
    pub fn send(&self, notice: &Notice) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        // Finished deliveries are reaped so the set stays small.
        while pending.try_join_next().is_some() {}
        for (i, def) in self.targets.iter().enumerate() {
            if !wants(def, notice.event) {
                continue;
            }
            let (client, def, notice) = (self.client.clone(), def.clone(), notice.clone());
            let (delivery, failures, delivered) =
                (self.delivery, self.failures.clone(), self.delivered.clone());
            pending.spawn(async move {
                match deliver(&client, &def, &notice, delivery).await {
                    Ok(()) => {
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(why) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(target_index = i + 1, kind = ?def.kind, event = ?notice.event, job = %notice.job, "notification not delivered: {why}");
                    }
                }
            });
        }
    }

    /// Waits for deliveries in flight, at most `within` (a one-shot
    /// command before it exits).
    pub async fn flush(&self, within: Duration) {
        let mut set = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return,
        };
        let all = async { while set.join_next().await.is_some() {} };
        if tokio::time::timeout(within, all).await.is_err() {
            tracing::warn!("notifications still in flight were abandoned at exit");
        }
    }

    /// Deliveries that failed after every attempt.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
}

/// One request to one target. `Err` carries a reason without the URL.
async fn deliver(
    client: &reqwest::Client,
    def: &NotifyDef,
    notice: &Notice,
    delivery: Delivery,
) -> Result<(), String> {
    let url = expand_env(&def.url, "notify url").map_err(|e| e.to_string())?;
    let url = match def.kind {
        NotifyKind::Healthchecks => match notice.event {
            Event::Start => format!("{}/start", url.trim_end_matches('/')),
            Event::Failure | Event::Stale | Event::DrillFailure => {
                format!("{}/fail", url.trim_end_matches('/'))
            }
            Event::Success | Event::Recovered => url,
        },
        _ => url,
    };
    let mut headers = Vec::with_capacity(def.headers.len());
    for (k, v) in &def.headers {
        headers.push((
            k.clone(),
            expand_env(v, "notify header").map_err(|e| e.to_string())?,
        ));
    }
    let (method, body, content_type) = match def.kind {
        NotifyKind::Http => (
            def.method.clone().unwrap_or_else(|| "POST".into()),
            body_for(def.body.as_deref(), notice),
            "application/json",
        ),
        NotifyKind::Slack => (
            "POST".into(),
            serde_json::json!({ "text": slack_text(notice) }).to_string(),
            "application/json",
        ),
        NotifyKind::Healthchecks => ("POST".into(), slack_text(notice), "text/plain"),
    };
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("method {method:?} is not an HTTP method"))?;
    let mut wait = delivery.backoff;
    let mut last = String::new();
    for attempt in 1..=delivery.attempts.max(1) {
        let mut req = client
            .request(method.clone(), &url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body.clone());
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => {
                let status = r.status();
                last = format!("HTTP {status}");
                // Only server trouble and throttling are worth another try.
                if !(status.is_server_error() || status.as_u16() == 429) {
                    return Err(last);
                }
            }
            Err(e) => last = crate::redact::redact(&e.without_url().to_string()),
        }
        if attempt < delivery.attempts {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    Err(format!(
        "{last} (after {} attempts)",
        delivery.attempts.max(1)
    ))
}

/// The notices of one run of a one-shot command (`backup --policy ...`,
/// `drill`): for a backup `start` when it begins and `success` or
/// `failure` when it ends; for other actions only a failure (for a drill,
/// `drill_failure`); then the deliveries are awaited (at most
/// [`ONE_SHOT_FLUSH`]) so the process does not exit before them.
pub struct RunNotices {
    notifier: Notifier,
    base: Notice,
    t0: std::time::Instant,
}

/// How long a one-shot command waits for its notifications at the end.
pub const ONE_SHOT_FLUSH: Duration = Duration::from_secs(20);

impl RunNotices {
    /// `None` without targets.
    pub fn start(
        targets: &[NotifyDef],
        job: &str,
        kind: &str,
        action: crate::ops::runs::Action,
    ) -> Option<RunNotices> {
        if targets.is_empty() {
            return None;
        }
        let notifier = Notifier::new(targets.to_vec(), Delivery::default());
        let base = Notice {
            event: Event::Start,
            job: job.to_string(),
            kind: kind.to_string(),
            action: action.name().to_string(),
            ts: time::OffsetDateTime::now_utc().unix_timestamp(),
            backup_id: None,
            duration_s: None,
            bytes: None,
            rows: None,
            error: None,
        };
        // `start` and `success` belong to backups (see `finish`).
        if action == crate::ops::runs::Action::Backup {
            notifier.send(&base);
        }
        Some(RunNotices {
            notifier,
            base,
            t0: std::time::Instant::now(),
        })
    }

    /// Sends the outcome and waits for the deliveries.
    pub async fn finish(
        self,
        outcome: std::result::Result<&crate::ops::runs::RunFacts, &crate::error::Error>,
    ) {
        let mut n = self.base.clone();
        n.ts = time::OffsetDateTime::now_utc().unix_timestamp();
        n.duration_s = Some(self.t0.elapsed().as_secs_f64());
        match outcome {
            Ok(f) => {
                n.event = Event::Success;
                n.backup_id = f.backup_id.clone();
                n.bytes = f.bytes;
                n.rows = f.rows;
            }
            Err(e) => {
                n.event = if n.action == "drill" {
                    Event::DrillFailure
                } else {
                    Event::Failure
                };
                n.error = Some(crate::redact::redact(&e.to_string()));
            }
        }
        // A passing verify or drill is no backup heartbeat.
        if n.event != Event::Success || n.action == "backup" {
            self.notifier.send(&n);
        }
        self.notifier.flush(ONE_SHOT_FLUSH).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::policy::NotifyKind;

    /// A reload makes a new notifier: with the daemon's counters, what the
    /// old one counted stays counted.
    #[tokio::test]
    async fn counters_outlive_a_notifier() {
        let counters = NotifyCounters::default();
        let delivery = Delivery {
            timeout: Duration::from_millis(200),
            attempts: 1,
            backoff: Duration::from_millis(1),
        };
        // Nothing listens on port 1: the delivery fails.
        let target = NotifyDef {
            kind: NotifyKind::Http,
            on: vec![Event::Failure],
            url: "http://127.0.0.1:1/hook".into(),
            method: None,
            headers: Default::default(),
            body: None,
        };
        let first = Notifier::with_counters(vec![target.clone()], delivery, &counters);
        first.send(&Notice {
            event: Event::Failure,
            job: "app".into(),
            kind: "postgres".into(),
            action: "backup".into(),
            ts: 0,
            backup_id: None,
            duration_s: None,
            bytes: None,
            rows: None,
            error: None,
        });
        first.flush(Duration::from_secs(5)).await;
        assert_eq!(first.failures(), 1);
        let second = Notifier::with_counters(vec![target], delivery, &counters);
        assert_eq!((second.failures(), second.delivered()), (1, 0));
        assert_eq!(Notifier::new(vec![], delivery).failures(), 0);
    }
}
