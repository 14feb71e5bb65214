//! Encryption end to end and the fault matrix: every kind of damage or
//! tampering — bit flips in packs and manifest, truncation, deletion,
//! swapped frames, a frame spliced from another backup, wrong or missing
//! keys, a tampered header — is caught by `verify` (naming the object and
//! frame) and by `restore` before the affected table's data commits.

use crate::pgkeep::*;
use crate::support::{assert_same_database, cluster};
use pgkeep::archive::index::read_manifest;
use pgkeep::archive::{layout, Manifest};
use pgkeep::crypto::{CipherKind, SecretInput};
use pgkeep::keys::{self, Unlock};
use pgkeep::store::Repo;
use pgkeep::verify::{verify_backup, VerifyOptions, VerifyReport};
use pgkeep::Error;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

fn raw_key(byte: u8) -> SecretInput {
    SecretInput::Raw(Zeroizing::new([byte; 32]))
}

fn unlock(byte: u8) -> Arc<Unlock> {
    Arc::new(Unlock::new(vec![raw_key(byte)]))
}

/// A repository in `dir` whose one master key is the raw key `byte`.
async fn keyed_repo(dir: &Path, byte: u8, cipher: CipherKind) -> Repo {
    let r = repo(dir);
    keys::add_key(&r, &Unlock::default(), &raw_key(byte), Some(cipher))
        .await
        .expect("first key added");
    r
}

async fn verify(r: &Repo, id: &str, u: Arc<Unlock>) -> pgkeep::Result<VerifyReport> {
    verify_backup(r, id, &VerifyOptions::new(u), CancellationToken::new()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_round_trip_with_either_cipher() {
    let c = cluster();
    let src = c.create_db("enc_src").await;
    c.load_kitchen_sink(&src);
    for (n, cipher) in [CipherKind::Aes256Gcm, CipherKind::ChaCha20Poly1305]
        .into_iter()
        .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let r = keyed_repo(dir.path(), 1, cipher).await;
        let h = backup_with(&r, &small_backup_options(&src)).await.unwrap();
        assert_eq!(h.cipher, Some(cipher));
        assert_eq!(h.key_ids.len(), 1);
        // Nothing readable in the objects: a tenant name from the fixture
        // appears in no pack and not in the manifest.
        for f in files_under(dir.path()) {
            let bytes = std::fs::read(&f).unwrap();
            assert!(
                !bytes.windows(4).any(|w| w == b"acme"),
                "plaintext in {}",
                f.display()
            );
        }
        let report = verify(&r, &h.id, unlock(1)).await.unwrap();
        assert!(report.ok && report.encrypted, "{report:?}");
        assert_eq!(report.rows, h.rows);
        let dst = c.create_db(&format!("enc_dst{n}")).await;
        let mut o = restore_options(&dst);
        o.unlock = unlock(1);
        restore_with(&r, &h.id, &o).await.unwrap();
        assert_same_database(c, &src, &dst).await;
    }
}

/// Source for the fault matrix: two tables, each many frames long.
async fn fault_source() -> String {
    db_with(
        "fault_src",
        "CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance bigint);
         INSERT INTO accounts SELECT g, md5(g::text), g * 10 FROM generate_series(1, 6000) g;
         CREATE TABLE events (id int PRIMARY KEY, body text);
         INSERT INTO events SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 6000) g;
         ANALYZE;",
    )
    .await
}

struct Matrix {
    pristine: tempfile::TempDir,
    id: String,
    src: String,
    manifest: Manifest,
}

impl Matrix {
    fn pack(&self, dir: &Path, n: usize) -> PathBuf {
        let rel = layout::pack_path(&self.id, &self.manifest.body.packs[n].name);
        dir.join(rel.to_string())
    }

    fn manifest_file(&self, dir: &Path) -> PathBuf {
        dir.join(layout::manifest_path(&self.id).to_string())
    }

    /// Applies `damage` to a fresh copy of the repository and checks that
    /// verify reports it (with `expect` in the message) and, when `restore`
    /// is set, that restore fails and leaves `events` and `accounts` without
    /// any committed row of a damaged stream.
    async fn check(&self, what: &str, damage: impl FnOnce(&Path), expect: &[&str], restore: bool) {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(self.pristine.path(), dir.path());
        damage(dir.path());
        let r = repo(dir.path());
        let report = verify(&r, &self.id, unlock(1))
            .await
            .unwrap_or_else(|e| panic!("{what}: verify could not run: {e}"));
        assert!(!report.ok, "{what}: damage not detected");
        let all = report
            .failures
            .iter()
            .map(|f| f.error.clone())
            .collect::<Vec<_>>()
            .join("\n");
        for e in expect {
            assert!(all.contains(e), "{what}: {e:?} not in report:\n{all}");
        }
        if restore {
            let dst = cluster().create_db("fault_dst").await;
            let mut o = restore_options(&dst);
            o.unlock = unlock(1);
            let err = restore_with(&r, &self.id, &o).await.unwrap_err();
            // Several loaders may meet the damage: the first failure leads.
            assert!(
                matches!(
                    err.headline(),
                    Error::Integrity { .. } | Error::Format { .. } | Error::Store { .. }
                ),
                "{what}: {err}"
            );
            // The damaged table's load rolled back: no partial data. (Other
            // tables may have loaded completely, never partially.)
            for t in ["accounts", "events"] {
                let n = cluster()
                    .client(&dst)
                    .await
                    .query_opt(&format!("SELECT count(*) FROM {t}"), &[])
                    .await
                    .ok()
                    .flatten()
                    .map(|r| r.get::<_, i64>(0))
                    .unwrap_or(0);
                assert!(
                    n == 0 || n == 6000,
                    "{what}: {t} partly restored ({n} rows)"
                );
            }
        }
    }
}

fn rewrite(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    f(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

/// Edits the manifest's public header JSON and recomputes the trailing
/// checksum, as an attacker who understands the format would.
pub(crate) fn tamper_header(path: &Path, from: &str, to: &str) {
    rewrite(path, |bytes| {
        let hl = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let header = String::from_utf8(bytes[16..16 + hl].to_vec()).unwrap();
        assert!(header.contains(from), "{from} not in header");
        let header = header.replacen(from, to, 1);
        let mut out = bytes[..12].to_vec();
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&bytes[16 + hl..bytes.len() - 32]);
        let d = Sha256::digest(&out);
        out.extend_from_slice(&d);
        *bytes = out;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix_every_damage_is_detected() {
    let src = fault_source().await;
    let pristine = tempfile::tempdir().unwrap();
    let r = keyed_repo(pristine.path(), 1, CipherKind::Aes256Gcm).await;
    let mut opts = small_backup_options(&src);
    opts.jobs = 1; // one pack: frame positions are predictable
    opts.split_bytes = u64::MAX;
    let id = backup_with(&r, &opts).await.unwrap().id;
    let other_id = backup_with(&r, &opts).await.unwrap().id;
    let manifest = read_manifest(&r, &id, &unlock(1)).await.unwrap();
    assert!(manifest.body.streams.iter().all(|s| s.frames.len() >= 4));
    let m = Matrix {
        pristine,
        id,
        src,
        manifest,
    };
    let pack_len = std::fs::metadata(m.pack(m.pristine.path(), 0))
        .unwrap()
        .len() as usize;
    let manifest_len = std::fs::metadata(m.manifest_file(m.pristine.path()))
        .unwrap()
        .len() as usize;

    // Bit flips at random positions of the pack (seeded: reproducible).
    // Every one is caught, and named by object and frame.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    for i in 0..40 {
        let pos = rng.random_range(0..pack_len);
        let bit = rng.random_range(0..8u8);
        let pack = m.manifest.body.packs[0].name.clone();
        m.check(
            &format!("pack bit flip at {pos}"),
            |d| rewrite(&m.pack(d, 0), |b| b[pos] ^= 1 << bit),
            &[&pack, "frame "],
            i < 4,
        )
        .await;
    }
    // Bit flips anywhere in the manifest, header and body alike.
    for _ in 0..30 {
        let pos = rng.random_range(0..manifest_len);
        let bit = rng.random_range(0..8u8);
        m.check(
            &format!("manifest bit flip at {pos}"),
            |d| rewrite(&m.manifest_file(d), |b| b[pos] ^= 1 << bit),
            &["manifest"],
            false,
        )
        .await;
    }
    m.check(
        "truncated pack",
        |d| rewrite(&m.pack(d, 0), |b| b.truncate(b.len() - 100)),
        &["pack-", "truncated"],
        true,
    )
    .await;
    // Cut to nothing: stores refuse a read that starts past the end, which
    // must still be reported as damage (exit 3), not as a failed request.
    m.check(
        "pack truncated to zero bytes",
        |d| rewrite(&m.pack(d, 0), |b| b.clear()),
        &["pack-", "truncated"],
        true,
    )
    .await;
    // Damage no frame check sees: bytes after the last frame. Only the
    // pack's size (verify reads each pack once, front to back) catches it;
    // restore reads frames only.
    let pack0 = m.manifest.body.packs[0].name.clone();
    m.check(
        "bytes appended to a pack",
        |d| rewrite(&m.pack(d, 0), |b| b.extend_from_slice(b"appended")),
        &[&pack0, "bytes appended"],
        false,
    )
    .await;
    m.check(
        "deleted pack",
        |d| std::fs::remove_file(m.pack(d, 0)).unwrap(),
        &["pack-"],
        true,
    )
    .await;
    // Two frames of one stream swapped in place (lengths differ, so every
    // later offset moves too).
    let s = &m.manifest.body.streams[0];
    let (a, b) = (s.frames[1].clone(), s.frames[2].clone());
    m.check(
        "swapped frames",
        |d| {
            rewrite(&m.pack(d, 0), |bytes| {
                let fa = bytes[a.offset as usize..(a.offset + a.len as u64) as usize].to_vec();
                let fb = bytes[b.offset as usize..(b.offset + b.len as u64) as usize].to_vec();
                let mut out = bytes[..a.offset as usize].to_vec();
                out.extend_from_slice(&fb);
                out.extend_from_slice(&fa);
                out.extend_from_slice(&bytes[(b.offset + b.len as u64) as usize..]);
                *bytes = out;
            })
        },
        &["frame "],
        true,
    )
    .await;
    // A frame spliced in from another backup of the same data, at the same
    // stream and index (same size, valid on its own).
    let other = read_manifest(&r, &other_id, &unlock(1)).await.unwrap();
    let theirs = other.body.streams[0].frames[1].clone();
    let their_pack = m.pristine.path().join(
        layout::pack_path(&other_id, &other.body.packs[theirs.pack as usize].name).to_string(),
    );
    let theirs_bytes = std::fs::read(&their_pack).unwrap()
        [theirs.offset as usize..(theirs.offset + theirs.len as u64) as usize]
        .to_vec();
    let ours = m.manifest.body.streams[0].frames[1].clone();
    m.check(
        "frame spliced from another backup",
        |d| {
            rewrite(&m.pack(d, 0), |bytes| {
                let mut out = bytes[..ours.offset as usize].to_vec();
                out.extend_from_slice(&theirs_bytes);
                out.extend_from_slice(&bytes[(ours.offset + ours.len as u64) as usize..]);
                *bytes = out;
            })
        },
        &["frame 1 of stream"],
        true,
    )
    .await;
    // The header's cipher or key id changed (checksum recomputed).
    m.check(
        "cipher tampered",
        |d| {
            tamper_header(
                &m.manifest_file(d),
                "\"aes-256-gcm\"",
                "\"chacha20-poly1305\"",
            )
        },
        &["manifest"],
        true,
    )
    .await;
    let key_id = m.manifest.header.key_ids[0].clone();
    let forged = format!(
        "{}{}",
        &key_id[..15],
        if key_id.ends_with('0') { '1' } else { '0' }
    );
    m.check(
        "key id tampered",
        |d| {
            tamper_header(
                &m.manifest_file(d),
                &format!("\"key_ids\":[\"{key_id}\"]"),
                &format!("\"key_ids\":[\"{forged}\"]"),
            )
        },
        &["key ids disagree"],
        true,
    )
    .await;
    // Relabelled consistently in both places: no key matches any more.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(m.pristine.path(), dir.path());
    for _ in 0..2 {
        tamper_header(
            &m.manifest_file(dir.path()),
            &format!("\"{key_id}\""),
            &format!("\"{forged}\""),
        );
    }
    let e = verify(&repo(dir.path()), &m.id, unlock(1))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Key(_)), "{e}");
    // Wrong key, and no key at all: clear key errors (exit code 2), from
    // verify and restore alike, before any data moves.
    for (what, u) in [
        ("wrong key", unlock(2)),
        ("no key", Arc::new(Unlock::default())),
    ] {
        let e = verify(&r, &m.id, u.clone()).await.unwrap_err();
        assert!(matches!(e, Error::Key(_)), "{what}: {e}");
        let dst = cluster().create_db("fault_dst").await;
        let mut o = restore_options(&dst);
        o.unlock = u;
        let e = restore_with(&r, &m.id, &o).await.unwrap_err();
        assert!(matches!(e, Error::Key(_)), "{what}: {e}");
        assert_eq!(e.exit_code(), 2);
    }
    // And the pristine copy still verifies and restores.
    let report = verify(&r, &m.id, unlock(1)).await.unwrap();
    assert!(report.ok, "{report:?}");
    let dst = cluster().create_db("fault_ok").await;
    let mut o = restore_options(&dst);
    o.unlock = unlock(1);
    restore_with(&r, &m.id, &o).await.unwrap();
    assert_eq!(count_rows(&dst, "events").await, 6000);
    assert_eq!(count_rows(&m.src, "events").await, 6000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_rewrites_no_data_object_and_retires_the_old_key() {
    std::env::set_var("PGKEEP_KDF_PROFILE", "fast");
    let src = fault_source().await;
    let dir = tempfile::tempdir().unwrap();
    let r = repo(dir.path());
    let pass = |s: &str| SecretInput::Passphrase(Zeroizing::new(s.to_string()));
    keys::add_key(&r, &Unlock::default(), &pass("old passphrase"), None)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(
            backup_with(&r, &small_backup_options(&src))
                .await
                .unwrap()
                .id,
        );
    }
    let packs_before = pack_digests(dir.path());
    let old = Arc::new(Unlock::new(vec![pass("old passphrase")]));
    let change = keys::rotate_key(&r, &old, None, &raw_key(7)).await.unwrap();
    assert_eq!(change.rewrapped.len(), 2);
    assert_eq!(
        pack_digests(dir.path()),
        packs_before,
        "a pack object changed"
    );
    for id in &ids {
        assert!(verify(&r, id, unlock(7)).await.unwrap().ok);
        let e = verify(&r, id, old.clone()).await.unwrap_err();
        assert!(matches!(e, Error::Key(_)), "{e}");
    }
    assert_eq!(keys::list_keys(&r).await.unwrap().len(), 1);
    // A new backup wraps only to the new key.
    let h = backup_with(&r, &small_backup_options(&src)).await.unwrap();
    assert_eq!(h.key_ids, vec![change.added.clone().unwrap()]);
    // Removing the last key of a backup is refused.
    let e = keys::remove_key(&r, &h.key_ids[0]).await.unwrap_err();
    assert!(e.to_string().contains("only key"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_finished_rotation_leaves_every_backup_readable() {
    let src = fault_source().await;
    let dir = tempfile::tempdir().unwrap();
    let r = keyed_repo(dir.path(), 1, CipherKind::ChaCha20Poly1305).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            backup_with(&r, &small_backup_options(&src))
                .await
                .unwrap()
                .id,
        );
    }
    // Simulate a rotation killed at each step boundary: after the new key
    // is added and one backup re-wrapped; after all are re-wrapped; after
    // the old record is deleted but before its wraps are dropped.
    keys::add_key(&r, &unlock(1), &raw_key(2), None)
        .await
        .unwrap();
    // Undo the re-wrap of the last backup, as if the run died before it.
    let m = dir.path().join(layout::manifest_path(&ids[2]).to_string());
    let bytes = std::fs::read(&m).unwrap();
    let h = Manifest::decode_header(&bytes, "m").unwrap();
    let only_old = Manifest::rewrap(&bytes, "m", h.wrapped_keys[..1].to_vec()).unwrap();
    std::fs::write(&m, only_old).unwrap();
    for id in &ids {
        let either = verify(&r, id, unlock(1)).await.unwrap().ok
            || verify(&r, id, unlock(2)).await.unwrap().ok;
        assert!(either, "{id} unreadable mid-rotation");
    }
    // The old key's record deleted, wraps not yet dropped: still readable.
    let old_id = h.key_ids[0].clone();
    std::fs::remove_file(dir.path().join(layout::key_path(&old_id).to_string())).unwrap();
    for id in &ids {
        assert!(verify(&r, id, unlock(1)).await.unwrap().ok, "{id}");
    }
}

fn pack_digests(dir: &Path) -> Vec<(PathBuf, String)> {
    files_under(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/data/"))
        .map(|p| {
            let d = hex::encode(Sha256::digest(std::fs::read(&p).unwrap()));
            (p, d)
        })
        .collect()
}
