//! Offsite copies: bytes unchanged (an encrypted backup stays encrypted and
//! the target gets its key records), hashes checked against the manifest,
//! what the target has skipped, a damaged pack never copied as a complete
//! backup; and a policy job's copy to S3 after each backup, pruned there by
//! its own retention, restorable from the copy.

use crate::cli::pgkeep_env;
use crate::pgkeep::*;
use crate::support::s3::MotoServer;
use crate::support::{assert_same_database, cluster};
use pgkeep::archive::index::list_backup_ids;
use pgkeep::archive::layout;
use pgkeep::crypto::SecretInput;
use pgkeep::keys::{self, Unlock};
use pgkeep::ops::copy::{copy, CopyOptions, Selection};
use pgkeep::progress::Silent;
use pgkeep::store::{OpenMode, Repo};
use std::path::Path;

fn key() -> SecretInput {
    SecretInput::Raw(zeroize::Zeroizing::new([9u8; 32]))
}

fn relative_files(root: &Path) -> Vec<(String, Vec<u8>)> {
    files_under(root)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
            let bytes = std::fs::read(&p).unwrap();
            (rel, bytes)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_are_byte_identical_checked_and_skipped_when_present() {
    let c = cluster();
    let src = db_with(
        "copy_src",
        "CREATE TABLE t AS SELECT g, md5(g::text) m FROM generate_series(1, 20000) g;",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (a_root, b_root) = (dir.path().join("a"), dir.path().join("b"));
    let a = repo(&a_root);
    keys::add_key(&a, &Unlock::default(), &key(), None)
        .await
        .unwrap();
    let first = backup_with(&a, &small_backup_options(&src)).await.unwrap();
    assert!(first.cipher.is_some(), "encrypted");
    let b = Repo::open(b_root.to_str().unwrap(), OpenMode::CreateIfMissing).unwrap();
    let opts = CopyOptions::default();

    // Without the key: copied, checked against the source listing's sizes.
    let r = copy(
        &a,
        &b,
        &Selection::One("latest".into()),
        &Unlock::default(),
        &opts,
        &Silent,
    )
    .await
    .unwrap();
    assert_eq!(r.copied.len(), 1);
    assert!(!r.copied[0].checked_against_manifest);
    assert_eq!(r.copied[0].keys_added.len(), 1);
    // Byte for byte what the source has (its lease and verify record aside).
    let want: Vec<(String, Vec<u8>)> = relative_files(&a_root)
        .into_iter()
        .filter(|(p, _)| !p.starts_with("runs"))
        .collect();
    assert_eq!(relative_files(&b_root), want);
    // Again: nothing to do.
    let again = copy(&a, &b, &Selection::All, &Unlock::default(), &opts, &Silent)
        .await
        .unwrap();
    assert_eq!((again.copied.len(), again.skipped.len()), (0, 1));

    // With the key: every frame's hash is checked against the manifest as
    // its pack streams through, and a damaged pack is never copied into a
    // complete backup.
    let second = backup_with(&a, &small_backup_options(&src)).await.unwrap();
    let unlock = Unlock::new(vec![key()]);
    let m = pgkeep::archive::index::read_manifest(&a, &second.id, &unlock)
        .await
        .unwrap();
    let pack = a_root.join(layout::pack_path(&second.id, &m.body.packs[0].name).as_ref());
    let mut bytes = std::fs::read(&pack).unwrap();
    let good = bytes.clone();
    bytes[100] ^= 1;
    std::fs::write(&pack, &bytes).unwrap();
    let e = copy(
        &a,
        &b,
        &Selection::One(second.id.clone()),
        &unlock,
        &opts,
        &Silent,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, pgkeep::Error::Integrity { .. }), "{e}");
    assert!(e.to_string().contains("SHA-256 mismatch"), "{e}");
    assert_eq!(
        list_backup_ids(&b).await.unwrap(),
        std::slice::from_ref(&first.id)
    );
    assert!(
        b.list_meta(&layout::backup_prefix(&second.id))
            .await
            .unwrap()
            .is_empty(),
        "nothing left of the failed copy"
    );
    std::fs::write(&pack, &good).unwrap();
    let r = copy(&a, &b, &Selection::All, &unlock, &opts, &Silent)
        .await
        .unwrap();
    assert_eq!(r.copied.len(), 1);
    assert!(r.copied[0].checked_against_manifest);
    assert_eq!(r.skipped, std::slice::from_ref(&first.id));

    // The copy restores with the same key.
    let dst = c.create_db("copy_dst").await;
    let mut ropts = restore_options(&dst);
    ropts.unlock = std::sync::Arc::new(Unlock::new(vec![key()]));
    restore_with(&b, &second.id, &ropts).await.unwrap();
    assert_same_database(c, &src, &dst).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_job_copies_each_backup_to_s3_with_its_own_retention() {
    const S3_SECRET: &str = "offsite-secret-Zx81q";
    const PASSPHRASE: &str = "policy-pass-Vw27k";
    let c = cluster();
    let src = db_with(
        "copy_policy_src",
        "CREATE TABLE t AS SELECT g FROM generate_series(1, 5000) g;",
    )
    .await;
    let moto = MotoServer::start();
    moto.create_bucket("offsite");
    let dir = tempfile::tempdir().unwrap();
    let pass_file = dir.path().join("passphrase");
    std::fs::write(&pass_file, PASSPHRASE).unwrap();
    let policy = dir.path().join("pgkeep.toml");
    std::fs::write(
        &policy,
        format!(
            r#"
[repository]
url = "{local}"
passphrase_file = "${{PASS_FILE}}"
[[database]]
name = "app"
url = "${{APP_URL}}"
retention = {{ keep_last = 5 }}
[[database.copy]]
url = "s3://offsite/app"
options = {{ endpoint = "{endpoint}", region = "us-east-1", access_key_id = "testing", secret_access_key = "${{OFFSITE_SECRET}}", allow_http = true, virtual_hosted_style = false }}
retention = {{ keep_last = 1 }}
"#,
            local = dir.path().join("repo").display(),
            endpoint = moto.endpoint()
        ),
    )
    .unwrap();
    let p = policy.to_str().unwrap();
    let url = c.url(&src);
    let pass = pass_file.to_str().unwrap();
    let env = [
        ("APP_URL", url.as_str()),
        ("OFFSITE_SECRET", S3_SECRET),
        ("PASS_FILE", pass),
        ("PGKEEP_LOG", "pgkeep=debug"),
    ];
    let mut outputs = Vec::new();
    // The job's first master key, from the policy's passphrase file.
    let o = pgkeep_env(
        &[
            "key",
            "add",
            "--policy",
            p,
            "--job",
            "app",
            "--new-passphrase-file",
            pass,
        ],
        &env,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    outputs.push(o);
    for _ in 0..2 {
        let o = pgkeep_env(
            &[
                "--log-format",
                "json",
                "-vv",
                "backup",
                "--policy",
                p,
                "--job",
                "app",
            ],
            &env,
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            out.contains("copied ") && out.contains("s3://offsite/app"),
            "{out}"
        );
        outputs.push(o);
    }
    let local_root = dir.path().join("repo/app");
    let local = Repo::open(local_root.to_str().unwrap(), OpenMode::MustExist).unwrap();
    let ids = list_backup_ids(&local).await.unwrap();
    assert_eq!(ids.len(), 2);
    let offsite = crate::support::s3::s3_repo(&moto.endpoint(), "offsite", "app");
    assert_eq!(
        list_backup_ids(&offsite).await.unwrap(),
        std::slice::from_ref(&ids[1]),
        "keep_last 1 there"
    );
    // The copy's run records are in the job's repository.
    let runs = pgkeep::ops::runs::list(&local).await.unwrap();
    assert_eq!(
        runs.iter()
            .filter(|r| r.action == pgkeep::ops::runs::Action::Copy)
            .count(),
        2
    );
    // The offsite copy is encrypted as the original and restores with the
    // same passphrase.
    let dst = c.create_db("copy_policy_dst").await;
    let o = pgkeep_env(
        &[
            "restore",
            "--repo",
            "s3://offsite/app",
            "--repo-option",
            &format!("endpoint={}", moto.endpoint()),
            "--repo-option",
            "region=us-east-1",
            "--repo-option",
            "access_key_id=testing",
            "--repo-option",
            "allow_http=true",
            "--repo-option",
            "virtual_hosted_style=false",
            "--passphrase-file",
            pass,
            "latest",
            "--db",
            &c.url(&dst),
        ],
        &[("AWS_SECRET_ACCESS_KEY", S3_SECRET)],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    outputs.push(o);
    assert_same_database(c, &src, &dst).await;
    // The S3 secret and the passphrase (through ${VAR}s) are nowhere.
    for o in &outputs {
        for secret in [S3_SECRET, PASSPHRASE] {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    for secret in [S3_SECRET, PASSPHRASE] {
        assert_secret_not_stored(&local_root, secret);
    }
    for m in offsite
        .list_meta(&object_store::path::Path::from(""))
        .await
        .unwrap()
    {
        let bytes = offsite.get(&m.location).await.unwrap();
        for secret in [S3_SECRET, PASSPHRASE] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in {}",
                m.location
            );
        }
    }
}
