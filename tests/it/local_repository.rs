//! Local repositories are private: every file pgkeep writes is `0600` and
//! every folder `0700`; a repository copied with other modes still
//! verifies and restores.

use crate::pgkeep::*;
use crate::support::{assert_same_database, cluster};
use pgkeep::crypto::SecretInput;
use pgkeep::keys::{self, Unlock};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn dirs_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        for e in std::fs::read_dir(&out[i]).unwrap().flatten() {
            if e.path().is_dir() {
                out.push(e.path());
            }
        }
        i += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_repositories_are_private_and_copies_with_other_modes_still_read() {
    let c = cluster();
    let src = c.create_db("priv_src").await;
    c.load_kitchen_sink(&src);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let repo = repo(&root);
    // A key record too: a passphrase-wrapped key is worth guessing at.
    let key = SecretInput::Raw(zeroize::Zeroizing::new([7u8; 32]));
    keys::add_key(&repo, &Unlock::default(), &key, None)
        .await
        .unwrap();
    let header = backup_with(&repo, &small_backup_options(&src))
        .await
        .unwrap();
    let files = files_under(&root);
    assert!(files.len() >= 4, "{files:?}");
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    for d in dirs_under(&root) {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
    // A copy made by a tool that keeps no modes (or a group's umask).
    let copy = dir.path().join("copy");
    let out = std::process::Command::new("cp")
        .arg("-r")
        .arg(&root)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(out.success());
    for f in files_under(&copy) {
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    for d in dirs_under(&copy) {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let copied = crate::pgkeep::repo(&copy);
    let unlock = std::sync::Arc::new(Unlock::new(vec![SecretInput::Raw(
        zeroize::Zeroizing::new([7u8; 32]),
    )]));
    let mut vopts = pgkeep::verify::VerifyOptions::new(unlock.clone());
    vopts.jobs = 2;
    let report = pgkeep::verify::verify_backup(
        &copied,
        &header.id,
        &vopts,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(report.ok, "{:?}", report.failures);
    let dst = c.create_db("priv_dst").await;
    let mut ropts = restore_options(&dst);
    ropts.unlock = unlock;
    restore_with(&copied, &header.id, &ropts).await.unwrap();
    assert_same_database(c, &src, &dst).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    crate::storage_conformance::check(
        "local",
        pgkeep::store::Repo::open(
            root.to_str().unwrap(),
            pgkeep::store::OpenMode::CreateIfMissing,
        )
        .unwrap(),
    )
    .await;
}
