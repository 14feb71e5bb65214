//! `[[notify]]` targets (heartbeats and alerts) and `[serve]`. Webhook URLs
//! and tokens are secrets: printed only as their templates or redacted.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NotifyKind {
    /// Any HTTP endpoint: method, headers and a body template.
    Http,
    /// A Slack-compatible incoming webhook (`{"text": ...}`).
    Slack,
    /// A ping URL with `/start` and `/fail` (healthchecks.io and the like).
    Healthchecks,
}

/// The events a target is told about.
#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Start,
    Success,
    Failure,
    Stale,
    DrillFailure,
    Recovered,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotifyDef {
    pub kind: NotifyKind,
    #[serde(default)]
    pub on: Vec<Event>,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServeDef {
    /// Address of `/metrics`, `/health`, `/status` and the status page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Bearer token for everything but `/health`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Runs at once across all jobs (default 1: memory stays one run's
    /// budget); more wait for their turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Each scheduled run starts after a random delay of up to this much
    /// (spreads jobs that share a schedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<crate::units::HumanDuration>,
}
