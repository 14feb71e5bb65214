//! Redis backups against real `redis-server`s: snapshots of every data
//! type in both transfer forms round-trip to a second server with the same
//! `DEBUG DIGEST` and key counts; encrypted repositories; `verify` catching
//! a flipped byte; a damaged RDB (from a stub server) failing the backup; a
//! server refusing `SYNC` giving a clear error and `--method auto` falling
//! back to scan, restored with `--to`; and a snapshot several times the
//! memory budget backed up within it.

use crate::cli::{pgkeep_env, text};
use crate::memory::{assert_peak_within, run_measured};
use crate::pgkeep::assert_secret_not_stored;
use crate::support::redis::RedisServer;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::Command;

/// Data of every type in databases 0, 1 and 5, with expiries, a stream
/// with a consumer group and a pending entry, and a value of several MB.
fn fill(s: &RedisServer) {
    let big: String = (0..6_000_000u64)
        .map(|i| char::from(b'a' + ((i * 2654435761) % 26) as u8))
        .collect();
    s.load(&format!(
        "SET s hello\nSET n 12345\nINCRBY counter 7\nRPUSH l a b c d\nSADD set x y z\nSADD ints 1 2 3\n\
         ZADD z 1 a 2.5 b 3 c\nHSET h f1 v1 f2 v2\nSET ttl v EX 3600\nPEXPIRE l 7200000\n\
         XADD st 1-1 a 1\nXADD st 2-1 b 2\nXGROUP CREATE st g1 0\nXREADGROUP GROUP g1 c1 COUNT 1 STREAMS st >\n\
         SET big {big}\n\
         SELECT 1\nSET one 1\nHSET h1 a b\nSELECT 5\nZADD z5 9 nine\nSET t5 x EX 9000\nSELECT 0\n"
    ));
    s.cli(2, &["DEBUG", "POPULATE", "20000", "pop", "64"]);
}

fn show_json(repo: &str, id: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let o = pgkeep_env(&["show", id, "--repo", repo, "--json"], env);
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `pgkeep redis backup --redis URL --repo REPO --json ARGS...`
fn redis_backup(url: &str, repo: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["redis", "backup", "--redis", url, "--repo", repo, "--json"];
    all.extend(args);
    pgkeep_env(&all, &[])
}

/// `pgkeep redis restore ID --repo REPO ARGS...`
fn redis_restore(id: &str, repo: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["redis", "restore", id, "--repo", repo];
    all.extend(args);
    pgkeep_env(&all, &[])
}

/// Flips a bit in the middle of the first pack under `data`.
fn flip_a_byte(data: &Path) {
    let pack = std::fs::read_dir(data)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&pack).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&pack, bytes).unwrap();
}

fn backup_id(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kind"], "redis");
    v["id"].as_str().unwrap().to_string()
}

#[test]
fn snapshots_round_trip_in_both_transfer_forms() {
    for (diskless, encrypted) in [("no", false), ("yes", true)] {
        let src = RedisServer::start(&["--repl-diskless-sync", diskless]);
        fill(&src);
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let repo_s = repo.to_str().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, [7u8; 32]).unwrap();
        let url = src.url();
        let mut args = vec![
            "redis", "backup", "--redis", &url, "--repo", repo_s, "--json",
        ];
        let key_s = key.to_str().unwrap();
        if encrypted {
            args.extend(["--encrypt", "--key-file", key_s]);
        }
        let id = backup_id(&pgkeep_env(&args, &[]));
        let keyed: Vec<&str> = if encrypted {
            vec!["--key-file", key_s]
        } else {
            vec![]
        };
        let mut show = vec!["show", &id, "--repo", repo_s, "--json"];
        show.extend(&keyed);
        let o = pgkeep_env(&show, &[]);
        assert!(o.status.success(), "{}", text(&o));
        let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let r = &m["redis"];
        assert_eq!(r["method"], "replication");
        assert_eq!(r["rdb_magic"], "REDIS");
        assert_eq!(
            r["transfer"],
            if diskless == "yes" {
                "diskless"
            } else {
                "disk"
            }
        );
        assert_eq!(r["crc64"], r["trailer_crc"], "checksum as the file says");
        assert_eq!(r["keyspace"]["2"], 20000);
        assert_eq!(m["header"]["cipher"].is_null(), !encrypted);

        let out = dir.path().join("restored").join("dump.rdb");
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let mut restore = vec![
            "redis",
            "restore",
            &id,
            "--repo",
            repo_s,
            "--out",
            out.to_str().unwrap(),
        ];
        restore.extend(&keyed);
        let o = pgkeep_env(&restore, &[]);
        assert!(o.status.success(), "{}", text(&o));
        // A second restore onto the file is refused without --force.
        let o = pgkeep_env(&restore, &[]);
        assert!(
            !o.status.success() && text(&o).contains("--force"),
            "{}",
            text(&o)
        );
        restore.push("--force");
        let o = pgkeep_env(&restore, &[]);
        assert!(o.status.success(), "{}", text(&o));

        let copy = RedisServer::start_on(&out);
        let (want, got) = (src.fingerprint(), copy.fingerprint());
        assert_eq!(got, want, "diskless={diskless}");
        assert_eq!(want.1[..6], [11, 2, 20000, 0, 0, 2]);
        assert_eq!(
            copy.cli(0, &["XPENDING", "st", "g1"]).lines().next(),
            Some("1")
        );
        assert!(copy.cli(5, &["TTL", "t5"]).parse::<i64>().unwrap() > 8000);
        assert_eq!(copy.cli(0, &["STRLEN", "big"]), "6000000");
    }
}

#[test]
fn verify_catches_a_flipped_byte_in_a_redis_backup() {
    let src = RedisServer::start(&[]);
    fill(&src);
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo_s = repo.to_str().unwrap();
    let url = src.url();
    let id = backup_id(&pgkeep_env(
        &[
            "redis", "backup", "--redis", &url, "--repo", repo_s, "--json",
        ],
        &[],
    ));
    let o = pgkeep_env(&["verify", &id, "--repo", repo_s], &[]);
    assert!(o.status.success(), "{}", text(&o));
    // An offsite copy holds the same backup, restorable from there.
    let offsite = dir.path().join("offsite");
    let offsite_s = offsite.to_str().unwrap();
    let o = pgkeep_env(&["copy", &id, "--repo", repo_s, "--to", offsite_s], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let copied = dir.path().join("copied.rdb");
    let o = redis_restore(&id, offsite_s, &["--out", copied.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        RedisServer::start_on(&copied).fingerprint(),
        src.fingerprint()
    );
    std::fs::remove_file(&copied).unwrap();
    flip_a_byte(&repo.join("backups").join(&id).join("data"));
    let o = pgkeep_env(&["verify", &id, "--repo", repo_s], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    // The damaged backup is not written out as an RDB file either.
    let out = dir.path().join("dump.rdb");
    let o = redis_restore(&id, repo_s, &["--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no temporary file left beside the two repositories"
    );
}

/// A stub server: answers the handful of commands a backup sends, then
/// sends `rdb` as the snapshot (`$<len>`).
fn stub_server(rdb: Vec<u8>) -> (u16, std::thread::JoinHandle<()>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        loop {
            // *N then N bulk strings.
            let mut line = String::new();
            if r.read_line(&mut line).unwrap() == 0 {
                return;
            }
            let n: usize = line.trim()[1..].parse().unwrap();
            let mut args = Vec::new();
            for _ in 0..n {
                let mut len = String::new();
                r.read_line(&mut len).unwrap();
                let len: usize = len.trim()[1..].parse().unwrap();
                let mut buf = vec![0; len + 2];
                r.read_exact(&mut buf).unwrap();
                args.push(String::from_utf8_lossy(&buf[..len]).to_uppercase());
            }
            let reply: Vec<u8> = match (args[0].as_str(), args.get(1).map(String::as_str)) {
                ("PING", _) => b"+PONG\r\n".to_vec(),
                ("INFO", Some(section)) => {
                    let body = match section {
                        "SERVER" => "# Server\r\nredis_version:7.2.0\r\n",
                        "REPLICATION" => "# Replication\r\nrole:master\r\n",
                        _ => "# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n",
                    };
                    format!("${}\r\n{body}\r\n", body.len()).into_bytes()
                }
                ("REPLCONF", _) => b"+OK\r\n".to_vec(),
                ("SYNC", _) => {
                    let mut v = format!("\n\n${}\r\n", rdb.len()).into_bytes();
                    v.extend_from_slice(&rdb);
                    w.write_all(&v).unwrap();
                    return;
                }
                _ => b"-ERR unknown\r\n".to_vec(),
            };
            w.write_all(&reply).unwrap();
        }
    });
    (port, h)
}

#[test]
fn a_snapshot_whose_crc_does_not_match_fails_the_backup() {
    // A real RDB from a real server, one byte of its body changed.
    let src = RedisServer::start(&[]);
    src.load("SET k some-value\n");
    src.cli(0, &["SAVE"]);
    let mut rdb = std::fs::read(src.dir.path().join("dump.rdb")).unwrap();
    let at = rdb.len() - 20;
    rdb[at] ^= 0x01;
    let (port, server) = stub_server(rdb);
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let url = format!("redis://127.0.0.1:{port}");
    let o = pgkeep_env(
        &[
            "redis",
            "backup",
            "--redis",
            &url,
            "--repo",
            repo.to_str().unwrap(),
            "--method",
            "replication",
        ],
        &[],
    );
    server.join().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("RDB checksum mismatch"), "{}", text(&o));
    let o = pgkeep_env(&["list", "--repo", repo.to_str().unwrap(), "--json"], &[]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn a_server_that_refuses_sync_is_named_and_auto_falls_back_to_scan() {
    let secret = "apppw-Secret-42";
    let src = RedisServer::start(&[]);
    fill(&src);
    src.cli(
        0,
        &[
            "ACL",
            "SETUSER",
            "app",
            "on",
            &format!(">{secret}"),
            "~*",
            "&*",
            "+@all",
            "-sync",
            "-psync",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo_s = repo.to_str().unwrap();
    let url = format!("redis://app:{secret}@127.0.0.1:{}", src.port);
    // The password comes from REDIS_URL, never a flag.
    let env = [("REDIS_URL", url.as_str())];
    let o = pgkeep_env(
        &[
            "redis",
            "backup",
            "--repo",
            repo_s,
            "--method",
            "replication",
        ],
        &env,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = text(&o);
    assert!(
        err.contains("refused SYNC") && err.contains("--method scan"),
        "{err}"
    );
    assert!(!err.contains(secret));

    let o = pgkeep_env(&["redis", "backup", "--repo", repo_s, "--json"], &env);
    assert!(!text(&o).contains(secret));
    let id = backup_id(&o);
    let m = show_json(repo_s, &id, &[]);
    assert_eq!(m["redis"]["method"], "scan");
    assert_eq!(m["header"]["rows"], 20000 + 11 + 2 + 2);

    let target = RedisServer::start(&[]);
    let to = target.url();
    let o = redis_restore(&id, repo_s, &["--to", &to]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(target.fingerprint(), src.fingerprint());
    assert!(target.cli(0, &["PTTL", "ttl"]).parse::<i64>().unwrap() > 3_000_000);
    // Again: the keys exist now.
    let o = redis_restore(&id, repo_s, &["--to", &to]);
    assert!(
        !o.status.success() && text(&o).contains("--replace"),
        "{}",
        text(&o)
    );
    let o = redis_restore(&id, repo_s, &["--to", &to, "--replace"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(target.fingerprint(), src.fingerprint());
    // An RDB restore of a scan backup says what to do instead.
    let o = redis_restore(
        &id,
        repo_s,
        &["--out", dir.path().join("x.rdb").to_str().unwrap()],
    );
    assert!(text(&o).contains("--to URL"), "{}", text(&o));
    assert_secret_not_stored(&repo, secret);
}

#[test]
fn a_snapshot_several_times_the_budget_backs_up_within_it() {
    // ~160 MB of RDB (compression off): five times a 32 MiB budget.
    let src = RedisServer::start(&["--rdbcompression", "no", "--repl-diskless-sync", "yes"]);
    src.cli(0, &["DEBUG", "POPULATE", "160000", "k", "1000"]);
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let budget_mib = 32u64;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgkeep"));
    cmd.args(["redis", "backup", "--redis", &src.url(), "--repo"])
        .arg(&repo)
        .args(["--memory", &format!("{budget_mib}MiB")])
        .env_remove("REDIS_URL");
    let (status, stderr, peak, elapsed) = run_measured(&mut cmd);
    assert!(status.success(), "{stderr}");
    let o = pgkeep_env(&["list", "--repo", repo.to_str().unwrap(), "--json"], &[]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let plain = list[0]["plain_bytes"].as_u64().unwrap();
    assert!(
        plain > 4 * (budget_mib << 20),
        "the snapshot is {plain} bytes"
    );
    assert_peak_within("redis snapshot", plain, peak, elapsed, budget_mib);
}

#[test]
fn rediss_verifies_the_server_against_the_given_ca_with_a_client_certificate() {
    let certs = tempfile::tempdir().unwrap();
    crate::support::tls::make_certs(certs.path());
    let file = |f: &str| certs.path().join(f).to_str().unwrap().to_string();
    let tls_port = crate::support::redis::free_port().to_string();
    let (cert, key, ca) = (file("server.crt"), file("server.key"), file("ca.crt"));
    let src = RedisServer::start(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "yes",
    ]);
    fill(&src);
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo_s = repo.to_str().unwrap();
    let url = format!("rediss://localhost:{tls_port}");
    // The server asks for a client certificate.
    let o = redis_backup(&url, repo_s, &["--redis-tls-ca", &ca]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let (client_cert, client_key) = (file("client.crt"), file("client.key"));
    let tls = [
        "--redis-tls-ca",
        &ca,
        "--redis-tls-cert",
        &client_cert,
        "--redis-tls-key",
        &client_key,
    ];
    let o = redis_backup(&url, repo_s, &tls);
    let id = backup_id(&o);
    let out = dir.path().join("dump.rdb");
    let o = redis_restore(&id, repo_s, &["--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(RedisServer::start_on(&out).fingerprint(), src.fingerprint());
    // A CA that did not sign the server's certificate: refused.
    let other = file("other-ca.crt");
    let o = redis_backup(
        &url,
        repo_s,
        &[
            "--redis-tls-ca",
            &other,
            "--redis-tls-cert",
            &client_cert,
            "--redis-tls-key",
            &client_key,
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("TLS handshake"), "{}", text(&o));
}

#[test]
fn a_redis_drill_loads_the_backup_into_a_scratch_server_and_stores_its_proof() {
    let src = RedisServer::start(&[]);
    fill(&src);
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let policy = dir.path().join("pgkeep.toml");
    std::fs::write(
        &policy,
        format!(
            "[repository]\nurl = \"{}\"\n[[redis]]\nname = \"cache\"\nurl = \"${{CACHE_URL}}\"\nrpo = \"1h\"\nrto = \"5m\"\n",
            repo.display()
        ),
    )
    .unwrap();
    let policy_s = policy.to_str().unwrap();
    let url = src.url();
    let env = [("CACHE_URL", url.as_str())];
    let job = ["--policy", policy_s, "--job", "cache"];
    let o = pgkeep_env(&[&["redis", "backup", "--digest"][..], &job].concat(), &env);
    assert!(o.status.success(), "{}", text(&o));
    let o = pgkeep_env(&[&["redis", "drill"][..], &job, &["--json"]].concat(), &env);
    assert!(o.status.success(), "{}", text(&o));
    let proof: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(proof["verdict"], "passed", "{proof}");
    let checks: Vec<(&str, &str)> = proof["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        checks,
        [
            ("keys per database", "passed"),
            ("DEBUG DIGEST", "passed"),
            ("RTO", "passed"),
            ("RPO", "passed")
        ]
    );
    assert_eq!(proof["checks"][0]["value"], "4 databases, 20015 keys");
    assert_eq!(
        proof["checks"][1]["value"],
        src.cli(0, &["DEBUG", "DIGEST"])
    );
    assert!(proof["timings"]["data_ms"].as_u64().unwrap() > 0);
    assert_eq!(proof["scratch_dropped"], true);
    let scratch = proof["scratch_database"].as_str().unwrap();
    assert!(!Path::new(scratch).exists(), "{scratch} removed");
    let drill_id = proof["drill_id"].as_str().unwrap();
    assert!(repo
        .join("cache/drills")
        .join(drill_id)
        .join("proof.json")
        .is_file());
    let o = pgkeep_env(&[&["list", "--drills"][..], &job].concat(), &env);
    assert!(
        text(&o).contains(drill_id) && text(&o).contains("passed"),
        "{}",
        text(&o)
    );

    // A damaged backup fails the drill (exit 3), and the scratch is gone.
    let id = proof["backup"]["id"].as_str().unwrap();
    flip_a_byte(&repo.join("cache/backups").join(id).join("data"));
    let o = pgkeep_env(&[&["redis", "drill"][..], &job, &["--json"]].concat(), &env);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let proof: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(proof["verdict"], "failed");
    assert_eq!(proof["checks"][0]["name"], "restore integrity");
    assert!(!Path::new(proof["scratch_database"].as_str().unwrap()).exists());
    // A database job is not a Redis drill.
    let o = pgkeep_env(&["redis", "drill", "--policy", policy_s], &env);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
