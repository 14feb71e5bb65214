//! A drill's evidence: `proof.json` (what was restored from where, every
//! check, the timings, RTO and RPO verdicts, the overall verdict) and
//! `drill.log`, written create-only into the repository under
//! `drills/<drill-id>/`; local copies named like CI artifacts; a Markdown
//! entry for a decision log; and the listing `list --drills` shows.
//! Connection strings are recorded without passwords.

use super::checks::CheckResult;
use crate::archive::layout;
use crate::error::{Error, Result};
use crate::store::Repo;
use futures::{stream, StreamExt};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The overall result of a drill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every check, RTO and RPO held.
    Passed,
    /// A check failed, RTO or RPO was missed, or integrity failed.
    Failed,
    /// An error stopped the drill before its checks were done.
    Error,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Error => "error",
        }
    }
}

/// The backup a drill restored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofBackup {
    pub id: String,
    /// SHA-256 of the manifest object as stored.
    pub manifest_sha256: String,
    pub finished_at: String,
    /// The source, without its password.
    pub source: String,
    pub server_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_identifier: Option<String>,
    pub rows: u64,
    pub plain_bytes: u64,
}

/// Where the time went, milliseconds: from backup selection to checks done.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    /// Choosing the backup, holding it, reading and checking its manifest,
    /// checking the target.
    pub fetch_and_verify_ms: u64,
    pub pre_data_ms: u64,
    /// Every frame's hash and tag are checked as it loads.
    pub data_ms: u64,
    pub post_data_ms: u64,
    pub checks_ms: u64,
    /// The restore time objective's measure: all of the above.
    pub rto_ms: u64,
}

/// An objective and how the drill measured against it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// The policy's objective in seconds; absent when it sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective_seconds: Option<u64>,
    pub measured_seconds: f64,
    /// `met`, `missed`, `not set`, or `not measured` (a stopped drill).
    pub verdict: String,
}

impl Objective {
    pub fn new(objective: Option<std::time::Duration>, measured_seconds: f64) -> Objective {
        let verdict = match objective {
            None => "not set",
            Some(o) if measured_seconds <= o.as_secs_f64() => "met",
            Some(_) => "missed",
        };
        Objective {
            objective_seconds: objective.map(|o| o.as_secs()),
            measured_seconds,
            verdict: verdict.into(),
        }
    }

    pub fn missed(&self) -> bool {
        self.verdict == "missed"
    }
}

/// A table's rows in the copy (the key tables: `non_empty` ones and the
/// largest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRows {
    pub table: String,
    pub rows: i64,
}

/// `drills/<drill-id>/proof.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proof {
    pub drill_id: String,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    pub backup: ProofBackup,
    /// The target server, without its password.
    pub target: String,
    pub scratch_database: String,
    /// Whether the scratch database was dropped (kept with `--keep`).
    pub scratch_dropped: bool,
    pub pgkeep_version: String,
    pub host: String,
    pub started_at: String,
    pub finished_at: String,
    pub timings: Timings,
    pub rto: Objective,
    pub rpo: Objective,
    pub checks: Vec<CheckResult>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_tables: Vec<TableRows>,
    /// What stopped the drill (verdict `error`), redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Proof {
    /// The checks that failed, by name.
    pub fn failed_checks(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| !c.passed())
            .map(|c| c.name.as_str())
            .collect()
    }

    /// A `DRILL-<date>` entry for a decision log.
    pub fn markdown(&self) -> String {
        let date = self.started_at.get(..10).unwrap_or(&self.started_at);
        let secs = |ms: u64| format!("{:.1} s", ms as f64 / 1000.0);
        let t = &self.timings;
        let objective = |o: &Objective| match o.objective_seconds {
            Some(s) => format!(
                "objective {}: {}",
                crate::units::format_duration(std::time::Duration::from_secs(s)),
                o.verdict
            ),
            None => "no objective set".into(),
        };
        let mut out = format!("## DRILL-{date}\n\n");
        out.push_str(&format!("- **Date:** {}\n", self.started_at));
        out.push_str(&format!(
            "- **Backup:** `{}` (finished {}, manifest sha256 `{}`), {} rows; age {} ({})\n",
            self.backup.id,
            self.backup.finished_at,
            self.backup
                .manifest_sha256
                .get(..16)
                .unwrap_or(&self.backup.manifest_sha256),
            self.backup.rows,
            crate::units::format_duration(std::time::Duration::from_secs_f64(
                self.rpo.measured_seconds.max(0.0)
            )),
            objective(&self.rpo)
        ));
        out.push_str(&format!(
            "- **Restore duration:** {} (fetch and verify {}, pre-data {}, data {}, post-data {}, checks {}); RTO {}\n",
            secs(t.rto_ms),
            secs(t.fetch_and_verify_ms),
            secs(t.pre_data_ms),
            secs(t.data_ms),
            secs(t.post_data_ms),
            secs(t.checks_ms),
            objective(&self.rto)
        ));
        if !self.key_tables.is_empty() {
            out.push_str("- **Row counts (key tables):**\n\n  | table | rows |\n  |---|---:|\n");
            for k in &self.key_tables {
                out.push_str(&format!("  | {} | {} |\n", k.table, k.rows));
            }
            out.push('\n');
        }
        out.push_str("- **Checks:**\n");
        for c in &self.checks {
            out.push_str(&format!(
                "  - [{}] {}: {}{}\n",
                if c.passed() { "x" } else { " " },
                c.name,
                c.value,
                c.details
                    .first()
                    .map(|d| format!(" — {d}"))
                    .unwrap_or_default()
            ));
        }
        out.push_str(&format!(
            "- **Verdict:** {}\n",
            self.verdict.name().to_uppercase()
        ));
        let mut notes = format!(
            "drill `{}` by pgkeep {} on {}; target {}, scratch database {} ({})",
            self.drill_id,
            self.pgkeep_version,
            self.host,
            self.target,
            self.scratch_database,
            if self.scratch_dropped {
                "dropped"
            } else {
                "kept"
            }
        );
        if let Some(e) = &self.error {
            notes.push_str(&format!("; stopped by: {e}"));
        }
        out.push_str(&format!("- **Notes:** {notes}\n"));
        out
    }
}

/// Writes the proof and the log into the repository, create-only.
pub async fn store(repo: &Repo, proof: &Proof, log: &str) -> Result<()> {
    let json = pretty(proof)?;
    repo.put_new(
        &layout::drill_log_path(&proof.drill_id),
        log.as_bytes().to_vec(),
    )
    .await?;
    // The proof last: a drill with a proof has its log too.
    repo.put_new(&layout::drill_proof_path(&proof.drill_id), json)
        .await
}

/// The short result CI pipelines read (`restore-result-<ts>.json`).
#[derive(Serialize)]
struct ResultFile<'a> {
    verdict: Verdict,
    drill_id: &'a str,
    backup_id: &'a str,
    rto_seconds: f64,
    rto: &'a str,
    rpo: &'a str,
    checks: usize,
    failed: Vec<&'a str>,
}

/// Writes local copies into `dir`: `restore-proof-<drill-id>.json`,
/// `restore-result-<drill-id>.json` and `restore-test-<drill-id>.log`
/// (the id starts with the drill's time). Returns their paths.
pub fn write_local(dir: &Path, proof: &Proof, log: &str) -> Result<Vec<PathBuf>> {
    // The drill id: its time, and a suffix that keeps two drills of one
    // second apart.
    let ts = &proof.drill_id;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let result = ResultFile {
        verdict: proof.verdict,
        drill_id: &proof.drill_id,
        backup_id: &proof.backup.id,
        rto_seconds: proof.timings.rto_ms as f64 / 1000.0,
        rto: &proof.rto.verdict,
        rpo: &proof.rpo.verdict,
        checks: proof.checks.len(),
        failed: proof.failed_checks(),
    };
    let files = [
        (format!("restore-proof-{ts}.json"), pretty(proof)?),
        (format!("restore-result-{ts}.json"), pretty(&result)?),
        (format!("restore-test-{ts}.log"), log.as_bytes().to_vec()),
    ];
    let mut out = Vec::new();
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(io(&path))?;
        out.push(path);
    }
    Ok(out)
}

fn pretty<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(v).map_err(|e| Error::Internal(format!("json: {e}")))
}

/// Reads one drill's proof (`None` when it has none or it is unreadable).
pub async fn read(repo: &Repo, drill_id: &str) -> Result<Option<Proof>> {
    Ok(repo
        .get_opt(&layout::drill_proof_path(drill_id))
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Every drill with a proof, oldest first (by start time).
pub async fn list(repo: &Repo) -> Result<Vec<Proof>> {
    let mut ids: Vec<String> = repo
        .list_dirs(&layout::drills_prefix())
        .await?
        .into_iter()
        .filter(|d| layout::is_backup_id(d))
        .collect();
    ids.sort();
    let proofs: Vec<Result<Option<Proof>>> = stream::iter(ids)
        .map(|id| async move { read(repo, &id).await })
        .buffered(16)
        .collect()
        .await;
    let mut out = Vec::new();
    for p in proofs {
        if let Some(p) = p? {
            out.push(p);
        }
    }
    // Ids tell the second; several drills may start within one.
    let at = |p: &Proof| {
        time::OffsetDateTime::parse(
            &p.started_at,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()
    };
    out.sort_by(|a, b| at(a).cmp(&at(b)).then(a.drill_id.cmp(&b.drill_id)));
    Ok(out)
}
