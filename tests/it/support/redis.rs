//! A `redis-server` for the tests (the Debian package, installed by the
//! test command): a free loopback port, its own temporary directory, DEBUG
//! enabled for `DEBUG DIGEST`, killed on drop. Data goes in and facts come
//! out through `redis-cli`, the server's own client, so the tests never
//! check pgkeep's protocol code with itself.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const INSTALL_HINT: &str =
    "redis-server and redis-cli are required for the Redis tests: `apt-get install redis-server` (the test command does)";

pub struct RedisServer {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl RedisServer {
    /// Starts a server with `extra` configuration (`["--repl-diskless-sync", "yes"]`).
    pub fn start(extra: &[&str]) -> RedisServer {
        Self::start_in(tempfile::tempdir().expect("temp dir"), extra)
    }

    /// Starts a server on `rdb`, a file it loads at start (its directory
    /// and name become the server's `dir` and `dbfilename`).
    pub fn start_on(rdb: &Path) -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("dump.rdb");
        std::fs::copy(rdb, &target).expect("copy the RDB");
        Self::start_in(dir, &[])
    }

    fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> RedisServer {
        let port = free_port();
        let log = dir.path().join("redis.log");
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(dir.path())
            .args([
                "--dbfilename",
                "dump.rdb",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args([
                "--enable-debug-command",
                "yes",
                "--repl-diskless-sync-delay",
                "0",
            ])
            .arg("--logfile")
            .arg(&log)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server: {e}; {INSTALL_HINT}"));
        let mut s = RedisServer { child, port, dir };
        // Ready once PING answers (the RDB, if any, is loaded by then:
        // a loading server answers -LOADING).
        let t0 = Instant::now();
        loop {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!(
                    "redis-server exited ({st}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            let out = s.cli_output(&["PING"]);
            if out.trim() == "PONG" {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "redis-server did not start: {out}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn cli_output(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli: {e}; {INSTALL_HINT}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// One command (in database `db`); its reply as redis-cli prints it.
    pub fn cli(&self, db: u32, args: &[&str]) -> String {
        let mut all = vec!["-n".to_string(), db.to_string()];
        all.extend(args.iter().map(|s| s.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        self.cli_output(&all).trim().to_string()
    }

    /// Feeds commands (one per line, redis-cli syntax) to the server.
    pub fn load(&self, commands: &str) {
        let mut child = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-cli: {e}; {INSTALL_HINT}"));
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(commands.as_bytes())
            .expect("write commands");
        let out = child.wait_with_output().expect("redis-cli");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && !text.contains("ERR"),
            "loading failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `DEBUG DIGEST` (all databases) and `DBSIZE` of each database 0..16.
    pub fn fingerprint(&self) -> (String, Vec<u64>) {
        let digest = self.cli(0, &["DEBUG", "DIGEST"]);
        let sizes = (0..16)
            .map(|db| self.cli(db, &["DBSIZE"]).parse::<u64>().expect("DBSIZE"))
            .collect();
        (digest, sizes)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
