//! The `pgkeep` binary end to end: commands, exit codes, and the secret
//! check — the password never appears in any output, log or repository file.

use crate::pgkeep::assert_secret_not_stored;
use crate::support::{cluster, SUPERUSER_PASSWORD};
use std::process::{Command, Output};

pub(crate) fn pgkeep(args: &[&str]) -> Output {
    pgkeep_env(args, &[])
}

/// Runs pgkeep with extra environment variables (and none of the key
/// variables of the calling environment).
pub(crate) fn pgkeep_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgkeep"));
    cmd.args(args);
    for v in [
        "DATABASE_URL",
        "REDIS_URL",
        "PGKEEP_KEY",
        "PGKEEP_PASSPHRASE",
        "PGKEEP_NEW_KEY",
        "PGKEEP_NEW_PASSPHRASE",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("PGKEEP_KDF_PROFILE", "fast");
    cmd.envs(env.iter().copied());
    cmd.output().expect("pgkeep runs")
}

/// Runs pgkeep and fails the test unless it succeeds; returns its output.
pub(crate) fn pgkeep_ok(args: &[&str]) -> String {
    let o = pgkeep_env(args, &[]);
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    text(&o)
}

pub(crate) fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_work_and_never_print_the_password() {
    let c = cluster();
    let src = c.create_db("cli_src").await;
    c.load_kitchen_sink(&src);
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo = repo.to_str().unwrap();
    let src_url = c.url(&src);
    let mut outputs = Vec::new();

    let o = pgkeep(&[
        "backup",
        "--db",
        &src_url,
        "--repo",
        repo,
        "--jobs",
        "2",
        "-vv",
        "--log-format",
        "json",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let header: serde_json::Value = serde_json::from_slice(&o.stdout).expect("--json prints JSON");
    let id = header["id"].as_str().unwrap().to_string();
    // Off a terminal, progress is structured logs: one JSON line per table
    // with its rows and bytes, and a final summary line.
    let progress: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["fields"]["message"] == "table done")
        .collect();
    assert_eq!(
        progress.len() as u64,
        header["tables"].as_u64().unwrap() + 1,
        "one progress line per table (+ large objects):\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(progress
        .iter()
        .any(|v| v["fields"]["table"] == "app.tenants" && v["fields"]["rows"].as_u64() > Some(0)));
    outputs.push(o);

    let o = pgkeep(&["list", "--repo", repo]);
    assert!(o.status.success() && text(&o).contains(&id), "{}", text(&o));
    outputs.push(o);
    let o = pgkeep(&["show", "--repo", repo, &id, "--sql"]);
    assert!(
        o.status.success() && text(&o).contains("TABLE DATA"),
        "{}",
        text(&o)
    );
    outputs.push(o);

    let dst = c.create_db("cli_dst").await;
    let o = pgkeep(&[
        "restore",
        "--repo",
        repo,
        "latest",
        "--db",
        &c.url(&dst),
        "-vv",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    outputs.push(o);

    // verify: OK, then a pack with a flipped row-boundary flag (which no
    // check of an unencrypted frame's contents reads): the frame's hash,
    // which covers its header, fails (exit 3, the pack named in the JSON
    // report), `list` shows the recorded failure, and the quick check
    // (sizes only) still passes.
    let o = pgkeep(&["verify", "--repo", repo, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let m = pgkeep::archive::index::read_manifest(
        &crate::pgkeep::repo(std::path::Path::new(repo)),
        &id,
        &pgkeep::keys::Unlock::default(),
    )
    .await
    .unwrap();
    let pack = std::path::Path::new(repo)
        .join(pgkeep::archive::layout::pack_path(&id, &m.body.packs[0].name).to_string());
    let pristine = std::fs::read(&pack).unwrap();
    let mut flipped = pristine.clone();
    flipped[(crate::pgkeep::first_frame_offset(&m, 0) + crate::pgkeep::FRAME_FLAGS_OFFSET)
        as usize] ^= 1;
    std::fs::write(&pack, &flipped).unwrap();
    let o = pgkeep(&["verify", "--repo", repo, "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let reports: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON report");
    let failures = reports[0]["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{}", text(&o));
    let error = failures[0]["error"].as_str().unwrap();
    assert!(
        error.contains(&m.body.packs[0].name) && error.contains("SHA-256"),
        "{error}"
    );
    let o = pgkeep(&["list", "--repo", repo, "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(listed[0]["last_verified"]["ok"], false, "{}", text(&o));
    assert_eq!(listed[0]["last_verified"]["failures"], 1, "{}", text(&o));
    let o = pgkeep(&["verify", "--repo", repo, "--quick"]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(&pack, &pristine).unwrap();

    // Errors: non-empty target (exit 1, clear message), bad flag value (exit 2),
    // wrong password (exit 1) — none of them may echo the password.
    let o = pgkeep(&["restore", "--repo", repo, "--db", &c.url(&dst)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("not empty"), "{}", text(&o));
    outputs.push(o);
    let o = pgkeep(&[
        "backup",
        "--db",
        &src_url,
        "--repo",
        repo,
        "--compress",
        "lz4",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    outputs.push(o);
    let bad = format!(
        "host={} port={} user=postgres dbname={src} password={SUPERUSER_PASSWORD}x sslmode=disable",
        c.host(),
        c.port()
    );
    let o = pgkeep(&["backup", "--db", &bad, "--repo", repo]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("password authentication failed"),
        "{}",
        text(&o)
    );
    outputs.push(o);
    let sep = if src_url.contains('?') { '&' } else { '?' };
    let o = pgkeep(&[
        "backup",
        "--db",
        &format!("{src_url}{sep}bogus=1"),
        "--repo",
        repo,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    outputs.push(o);

    for o in &outputs {
        assert!(
            !text(o).contains(SUPERUSER_PASSWORD),
            "password printed:\n{}",
            text(o)
        );
    }
    assert_secret_not_stored(dir.path(), SUPERUSER_PASSWORD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_mid_backup_leaves_nothing() {
    let src = crate::pgkeep::db_with(
        "cli_sigint",
        "CREATE TABLE big (id bigint, pad text);
         INSERT INTO big SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 300000) g;",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgkeep"))
        .args([
            "backup",
            "--db",
            &cluster().url(&src),
            "--repo",
            repo.to_str().unwrap(),
        ])
        .args([
            "--jobs",
            "1",
            "--compress",
            "zstd:19",
            "--frame-size",
            "64KiB",
        ])
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pgkeep starts");
    // Wait (bounded) until the backup has started writing its pack.
    let started = std::time::Instant::now();
    while crate::pgkeep::files_under(&repo).is_empty() {
        assert!(
            started.elapsed().as_secs() < 60,
            "backup never started writing"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "backup ended before it could be interrupted"
        );
        tokio::task::yield_now().await;
    }
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert!(text(&o).contains("interrupted"), "{}", text(&o));
    // Nothing of the backup is left; its run record says it failed.
    let left = crate::pgkeep::files_under(&repo);
    let (runs, rest): (Vec<_>, Vec<_>) =
        left.iter().partition(|p| p.starts_with(repo.join("runs")));
    assert!(
        rest.is_empty(),
        "an interrupted backup leaves nothing: {rest:?}"
    );
    assert_eq!(runs.len(), 1, "{left:?}");
    let name = runs[0].file_name().unwrap().to_str().unwrap();
    assert!(name.contains("-backup-failure-"), "{name}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(runs[0]).unwrap()).unwrap();
    assert!(
        record["error"].as_str().unwrap().contains("interrupted"),
        "{record}"
    );
}

/// The secret check for encryption: backup, list, show, verify, restore,
/// key add and key rotate run with known passphrases, a known key and the
/// database password; none of them appears in any output, log line or
/// repository object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_commands_never_leak_a_secret() {
    use base64::Engine;
    const PASS: &str = "old-pass-Zq9w-4417";
    const NEW_PASS: &str = "new-pass-Kx2v-9033";
    let key = [0x5au8; 32];
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(key);
    let c = cluster();
    let src = crate::pgkeep::db_with(
        "cli_enc",
        "CREATE TABLE notes (id int PRIMARY KEY, body text);
         INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 500) g;",
    )
    .await;
    let dst = c.create_db("cli_enc_dst").await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo = repo.to_str().unwrap();
    let keydir = tempfile::tempdir().unwrap();
    let key_file = keydir.path().join("master.key");
    std::fs::write(&key_file, format!("{key_b64}\n")).unwrap();
    let key_file = key_file.to_str().unwrap();
    let log = ["-vv", "--log-format", "json"];
    let pass = [("PGKEEP_PASSPHRASE", PASS)];
    let mut outputs = Vec::new();
    let mut run = |args: Vec<&str>, env: &[(&str, &str)], ok: bool| {
        let mut all = args.clone();
        all.extend(log);
        let o = pgkeep_env(&all, env);
        assert_eq!(o.status.success(), ok, "{args:?}:\n{}", text(&o));
        if !ok {
            assert_eq!(o.status.code(), Some(2), "{args:?}:\n{}", text(&o));
        }
        let t = text(&o);
        outputs.push(o);
        t
    };
    let src_url = c.url(&src);
    run(
        vec!["backup", "--db", &src_url, "--repo", repo, "--encrypt"],
        &pass,
        true,
    );
    let listed = run(vec!["list", "--repo", repo], &[], true);
    assert!(listed.contains("aes-256-gcm"), "{listed}");
    // Without the passphrase (and no terminal to ask on): a key error, exit 2.
    let t = run(vec!["show", "--repo", repo], &[], false);
    assert!(
        t.contains("is encrypted") && t.contains("PGKEEP_PASSPHRASE"),
        "{t}"
    );
    run(vec!["show", "--repo", repo, "--sql"], &pass, true);
    run(vec!["verify", "--repo", repo], &pass, true);
    // `list` shows the recorded verification (and needs no key).
    let listed = run(vec!["list", "--repo", repo, "--json"], &[], true);
    // stdout (pretty JSON: the array closes at column 0) comes before stderr logs.
    let json_end = listed.find("\n]").expect("list --json prints an array") + 2;
    let backups: serde_json::Value = serde_json::from_str(&listed[..json_end]).unwrap();
    assert_eq!(backups[0]["last_verified"]["ok"], true, "{listed}");
    assert_eq!(backups[0]["last_verified"]["mode"], "full", "{listed}");
    run(
        vec!["restore", "--repo", repo, "--db", &c.url(&dst)],
        &pass,
        true,
    );
    run(
        vec!["key", "add", "--repo", repo, "--new-key-file", key_file],
        &pass,
        true,
    );
    run(
        vec!["key", "rotate", "--repo", repo, "--key-file", key_file],
        &[("PGKEEP_NEW_PASSPHRASE", NEW_PASS)],
        true,
    );
    let wrong = run(
        vec!["verify", "--repo", repo, "--key-file", key_file],
        &[],
        false,
    );
    assert!(wrong.contains("none of the supplied keys"), "{wrong}");
    run(
        vec!["verify", "--repo", repo],
        &[("PGKEEP_PASSPHRASE", NEW_PASS)],
        true,
    );
    run(vec!["verify", "--repo", repo], &pass, true);
    let listed = run(vec!["key", "list", "--repo", repo], &[], true);
    assert_eq!(listed.matches("passphrase").count(), 1 + 1, "{listed}");
    assert_eq!(crate::pgkeep::count_rows(&dst, "notes").await, 500);

    let key_hex = hex::encode(key);
    let secrets = [
        PASS,
        NEW_PASS,
        key_b64.as_str(),
        key_hex.as_str(),
        SUPERUSER_PASSWORD,
    ];
    for o in &outputs {
        for s in secrets {
            assert!(!text(o).contains(s), "secret printed:\n{}", text(o));
        }
    }
    for s in secrets {
        assert_secret_not_stored(dir.path(), s);
    }
    let raw = String::from_utf8_lossy(&key).into_owned();
    assert_secret_not_stored(dir.path(), &raw);
}
