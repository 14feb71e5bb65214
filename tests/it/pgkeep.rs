//! Helpers that drive pgkeep's library against the test cluster.

use crate::support::cluster;
use pgkeep::archive::ManifestHeader;
use pgkeep::backup::{backup, BackupOptions};
use pgkeep::config::ConnSettings;
use pgkeep::keys::Unlock;
use pgkeep::progress::Silent;
use pgkeep::restore::{restore, RestoreOptions, RestoreSummary};
use pgkeep::store::{OpenMode, Repo};
use pgkeep::verify::{verify_backup, VerifyOptions, VerifyReport};
use std::path::Path;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub fn settings(db: &str) -> ConnSettings {
    ConnSettings::resolve_with(&cluster().url(db), &|_| None).expect("test URL parses")
}

/// A fresh database with `sql` already run in it.
pub async fn db_with(prefix: &str, sql: &str) -> String {
    let db = cluster().create_db(prefix).await;
    cluster()
        .client(&db)
        .await
        .batch_execute(sql)
        .await
        .expect("setup SQL runs");
    db
}

pub fn repo(dir: &Path) -> Repo {
    Repo::open(dir.to_str().expect("utf-8 path"), OpenMode::CreateIfMissing).expect("repo opens")
}

/// Options that exercise the interesting paths on small data: tiny frames
/// (many per table) and a low split threshold (big tables in slices).
pub fn small_backup_options(db: &str) -> BackupOptions {
    let mut o = BackupOptions::new(settings(db));
    o.jobs = 3;
    o.frame_size = Some(16 * 1024);
    o.split_bytes = 128 * 1024;
    o
}

pub async fn backup_with(repo: &Repo, opts: &BackupOptions) -> pgkeep::Result<ManifestHeader> {
    backup(repo, opts, Arc::new(Silent), CancellationToken::new()).await
}

pub async fn restore_with(
    repo: &Repo,
    id: &str,
    opts: &RestoreOptions,
) -> pgkeep::Result<RestoreSummary> {
    restore(repo, id, opts, Arc::new(Silent), CancellationToken::new()).await
}

/// The full `verify` of an unencrypted backup (damage is in the report).
pub async fn verify_plain(repo: &Repo, id: &str) -> VerifyReport {
    let opts = VerifyOptions::new(Arc::new(Unlock::default()));
    verify_backup(repo, id, &opts, CancellationToken::new())
        .await
        .expect("verify runs")
}

/// Offset of the flags byte in a frame header (`docs/format.md`). Bit 0,
/// the row-boundary flag, is read by no check of an unencrypted frame's
/// contents: the frame's hash (format 3) or, in older formats, only the
/// whole-pack hash sees it flipped.
pub const FRAME_FLAGS_OFFSET: u64 = 5;

/// Offset of the first frame in pack `pack` of a backup.
pub fn first_frame_offset(m: &pgkeep::archive::Manifest, pack: u32) -> u64 {
    m.body
        .streams
        .iter()
        .flat_map(|s| &s.frames)
        .filter(|f| f.pack == pack)
        .map(|f| f.offset)
        .min()
        .expect("the pack holds a frame")
}

pub fn restore_options(db: &str) -> RestoreOptions {
    let mut o = RestoreOptions::new(settings(db));
    o.jobs = 3;
    o
}

/// `SELECT count(*)` of a table in a database of the test cluster.
pub async fn count_rows(db: &str, table: &str) -> i64 {
    cluster()
        .client(db)
        .await
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count query runs")
        .get(0)
}

/// Asserts no file under `dir` contains `secret`.
pub fn assert_secret_not_stored(dir: &Path, secret: &str) {
    let needle = secret.as_bytes();
    for f in files_under(dir) {
        let bytes = std::fs::read(&f).expect("file reads");
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "secret stored in {}",
            f.display()
        );
    }
}

/// Every file under a directory, recursively.
/// Copies every file under `from` to the same place under `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    for f in files_under(from) {
        let dest = to.join(f.strip_prefix(from).expect("under from"));
        std::fs::create_dir_all(dest.parent().expect("has a parent")).expect("mkdir");
        std::fs::copy(&f, dest).expect("file copies");
    }
}

pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Asserts the latest backup in `repo` names each object once: no two
/// entries of the same kind, schema and name, nor of the same kind and SQL
/// (two would act on one object twice, on two connections at once in a
/// parallel restore).
pub fn assert_entries_unique(repo: &str) {
    let o = crate::cli::pgkeep(&["show", "--repo", repo, "--json"]);
    assert!(o.status.success(), "{}", crate::cli::text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("show --json is JSON");
    let entries = v["entries"].as_array().expect("entries");
    assert!(!entries.is_empty(), "the backup has entries");
    let mut names = std::collections::BTreeSet::new();
    let mut sqls = std::collections::BTreeSet::new();
    for e in entries {
        let (kind, sql) = (e["kind"].to_string(), e["sql"].to_string());
        let key = (kind.clone(), e["schema"].to_string(), e["name"].to_string());
        assert!(names.insert(key.clone()), "entry twice in the TOC: {key:?}");
        assert!(
            sql == "\"\"" || sqls.insert((kind, sql.clone())),
            "SQL twice in the TOC: {key:?}: {sql}"
        );
    }
}
