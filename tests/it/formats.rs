//! Archives written by earlier builds: the format 2 repositories in
//! `tests/fixtures/archive-format2` (pgkeep at d66100e: frames of version
//! 1, a SHA-256 per pack) are verified, copied and restored by this build,
//! and a damaged pack is still caught by its whole-object hash.

use crate::pgkeep::*;
use crate::support::{assert_same_database, cluster};
use pgkeep::archive::index::{list_backup_ids, read_manifest};
use pgkeep::archive::layout;
use pgkeep::crypto::SecretInput;
use pgkeep::keys::Unlock;
use pgkeep::ops::copy::{copy, CopyOptions, Selection};
use pgkeep::progress::Silent;
use pgkeep::verify::{verify_backup, VerifyOptions};
use std::path::Path;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/archive-format2")
}

fn fixture_key() -> SecretInput {
    let bytes: [u8; 32] = std::fs::read(fixture().join("master.key"))
        .unwrap()
        .try_into()
        .expect("32 raw bytes");
    SecretInput::Raw(zeroize::Zeroizing::new(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_2_backups_verify_copy_and_restore() {
    let c = cluster();
    let source = std::fs::read_to_string(fixture().join("source.sql")).unwrap();
    let expected = db_with("fmt2_expected", &source).await;
    for (name, unlock) in [
        ("plain", Unlock::default()),
        ("sealed", Unlock::new(vec![fixture_key()])),
    ] {
        let unlock = Arc::new(unlock);
        // A copy: verify records its outcome in the repository.
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&fixture().join(name), &dir.path().join("a"));
        let a = repo(&dir.path().join("a"));
        let ids = list_backup_ids(&a).await.unwrap();
        assert_eq!(ids.len(), 1, "{name}: {ids:?}");
        let id = &ids[0];
        let m = read_manifest(&a, id, unlock.as_ref()).await.unwrap();
        assert_eq!(m.header.format_version, 2, "{name}");
        assert_eq!(m.frame_version(), 1, "{name}");
        assert!(m.body.packs.iter().all(|p| p.sha256.is_some()), "{name}");
        assert_eq!(m.header.cipher.is_some(), name == "sealed");

        let opts = VerifyOptions::new(unlock.clone());
        let r = verify_backup(&a, id, &opts, CancellationToken::new())
            .await
            .unwrap();
        assert!(r.ok && r.rows == 2000, "{name}: {r:?}");

        // Copied with the manifest read: checked against each pack's hash.
        let b = repo(&dir.path().join("b"));
        let copied = copy(
            &a,
            &b,
            &Selection::All,
            unlock.as_ref(),
            &CopyOptions::default(),
            &Silent,
        )
        .await
        .unwrap();
        assert_eq!(copied.copied.len(), 1, "{name}");
        assert!(copied.copied[0].checked_against_manifest, "{name}");

        // Restored from the copy: the same database as the source.
        let db = c.create_db(&format!("fmt2_{name}")).await;
        let mut ro = restore_options(&db);
        ro.unlock = unlock.clone();
        restore_with(&b, id, &ro).await.unwrap();
        assert_same_database(c, &expected, &db).await;

        // The row-boundary flag of an unencrypted frame flipped: format 2
        // frames' hashes leave their header out, and the pack's hash sees it.
        if name == "plain" {
            let pack = m
                .body
                .streams
                .iter()
                .flat_map(|s| &s.frames)
                .find(|f| f.len > 80)
                .unwrap();
            let path = dir
                .path()
                .join("a")
                .join(layout::pack_path(id, &m.body.packs[pack.pack as usize].name).to_string());
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[(pack.offset + FRAME_FLAGS_OFFSET) as usize] ^= 1;
            std::fs::write(&path, &bytes).unwrap();
            let r = verify_backup(&a, id, &opts, CancellationToken::new())
                .await
                .unwrap();
            assert!(!r.ok, "{r:?}");
            assert!(
                r.failures
                    .iter()
                    .any(|f| f.stream.is_none() && f.error.contains("SHA-256 of the stored object")),
                "{r:?}"
            );
        }
    }
}
