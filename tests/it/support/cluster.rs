//! [`TestCluster`]: where the test server is and how to reach it — URLs,
//! fresh databases, `tokio_postgres` clients and the client tools (psql,
//! pg_dump) used as loaders and oracles.
//!
//! URL accessors say what they carry: [`TestCluster::url`] is TCP with the
//! password; [`TestCluster::url_no_password`] is the same without it (needs
//! `PGPASSWORD`/`.pgpass`, or fails: `scram-sha-256`);
//! [`TestCluster::socket_url`] is the unix socket with `trust` (ephemeral
//! cluster only).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

use super::local::{self, LocalServer};

/// One PostgreSQL server shared by every test of the binary.
pub struct TestCluster {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    /// Database to connect to for `CREATE DATABASE`.
    maintenance_db: String,
    socket_dir: Option<PathBuf>,
    /// Where psql and pg_dump come from (empty: `PATH`).
    tools_bin: PathBuf,
}

impl TestCluster {
    /// The server named by `DATABASE_URL`, used as is (nothing is started).
    pub fn from_database_url(url: &str) -> TestCluster {
        let config = Config::from_str(url).expect("DATABASE_URL is not a valid postgres URL");
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_owned(),
        };
        TestCluster {
            host,
            port: config.get_ports().first().copied().unwrap_or(5432),
            user: config.get_user().unwrap_or("postgres").to_owned(),
            password: config
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            maintenance_db: config.get_dbname().unwrap_or("postgres").to_owned(),
            socket_dir: None,
            tools_bin: std::env::var_os("PGKEEP_PG_TOOLS")
                .map(PathBuf::from)
                .or_else(local::newest_installed_bin)
                .unwrap_or_default(),
        }
    }

    /// The ephemeral server of this process, started on first use.
    pub fn local() -> TestCluster {
        Self::of(LocalServer::start_once())
    }

    /// A second ephemeral server, for restores into another cluster.
    pub fn second() -> TestCluster {
        Self::of(LocalServer::start_second())
    }

    fn of(server: &LocalServer) -> TestCluster {
        TestCluster {
            host: "127.0.0.1".to_owned(),
            port: server.port,
            user: local::SUPERUSER.to_owned(),
            password: Some(local::SUPERUSER_PASSWORD.to_owned()),
            maintenance_db: "postgres".to_owned(),
            socket_dir: Some(server.socket_dir().to_owned()),
            tools_bin: local::tools_bin_dir(),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The superuser's password (always set on the ephemeral cluster).
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Unix socket directory (ephemeral cluster only; `trust` auth).
    pub fn socket_dir(&self) -> Option<&Path> {
        self.socket_dir.as_deref()
    }

    /// `postgres://user:password@host:port/db` — TCP, password included.
    pub fn url(&self, db: &str) -> String {
        self.build_url(db, self.password.as_deref())
    }

    /// `postgres://user@host:port/db` — TCP, no password (scram: it must come
    /// from elsewhere, e.g. `PGPASSWORD` or `.pgpass`).
    pub fn url_no_password(&self, db: &str) -> String {
        self.build_url(db, None)
    }

    /// `postgres://user@/db?host=<socket dir>&port=N` — unix socket, `trust`.
    pub fn socket_url(&self, db: &str) -> Option<String> {
        let dir = self.socket_dir.as_ref()?.display().to_string();
        Some(format!(
            "postgres://{}@/{}?host={}&port={}",
            enc(&self.user),
            enc(db),
            enc(&dir),
            self.port
        ))
    }

    fn build_url(&self, db: &str, password: Option<&str>) -> String {
        let auth = match password {
            Some(pw) => format!("{}:{}", enc(&self.user), enc(pw)),
            None => enc(&self.user),
        };
        if self.host.starts_with('/') {
            let q = format!("host={}&port={}", enc(&self.host), self.port);
            return format!("postgres://{auth}@/{}?{q}", enc(db));
        }
        format!("postgres://{auth}@{}:{}/{}", self.host, self.port, enc(db))
    }

    /// Create a fresh, empty database (from `template0`) named after
    /// `prefix`, unique in this cluster; returns its name.
    pub async fn create_db(&self, prefix: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let clean: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{clean}_{}_{n}", std::process::id());
        // The pid is unique among live processes, so a same-named database
        // can only be a leftover of a dead run (on a shared DATABASE_URL).
        let admin = self.client(&self.maintenance_db).await;
        for sql in [
            format!("DROP DATABASE IF EXISTS \"{name}\""),
            format!("CREATE DATABASE \"{name}\" TEMPLATE template0"),
        ] {
            admin
                .batch_execute(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        }
        name
    }

    /// A connected client (NoTls, TCP with password); its connection task is
    /// spawned on the current tokio runtime.
    pub async fn client(&self, db: &str) -> Client {
        let (client, connection) = tokio_postgres::connect(&self.url(db), NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect to {db}: {e:?}"));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("test client connection error: {e}");
            }
        });
        client
    }

    /// A client tool (`psql`, `pg_dump`, `pg_restore`, ...) at least as new
    /// as the server (see [`local::tools_bin_dir`]).
    pub fn pg_tool(&self, name: &str) -> Command {
        local::pg_command(&self.tools_bin.join(name))
    }

    /// Run `sql` with psql (`ON_ERROR_STOP`); returns stdout.
    /// The first column of every row `sql` returns in `db`, as text.
    pub async fn column(&self, db: &str, sql: &str) -> Vec<String> {
        self.client(db)
            .await
            .query(sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    pub fn psql(&self, db: &str, sql: &str) -> String {
        let mut cmd = self.psql_command(db);
        cmd.arg("-c").arg(sql);
        super::run(cmd)
    }

    /// Run the SQL file `path` with psql (`ON_ERROR_STOP`); returns stdout.
    pub fn psql_file(&self, db: &str, path: impl AsRef<Path>) -> String {
        let mut cmd = self.psql_command(db);
        cmd.arg("-f").arg(path.as_ref());
        super::run(cmd)
    }

    fn psql_command(&self, db: &str) -> Command {
        let mut cmd = self.pg_tool("psql");
        cmd.args(["-v", "ON_ERROR_STOP=1", "-q", "-X", "-d"])
            .arg(self.url(db));
        cmd
    }

    /// `pg_dump --schema-only` of `db`, without the lines that differ from
    /// run to run (`\restrict` tokens, "Dumped from/by" comments).
    pub fn pg_dump_schema(&self, db: &str) -> String {
        self.pg_dump_schema_with(db, &[])
    }

    /// [`pg_dump_schema`](Self::pg_dump_schema) with more pg_dump options.
    pub fn pg_dump_schema_with(&self, db: &str, options: &[&str]) -> String {
        let mut cmd = self.pg_tool("pg_dump");
        cmd.args(["--schema-only"])
            .args(options)
            .arg("-d")
            .arg(self.url(db));
        super::run(cmd)
            .lines()
            .filter(|l| {
                !(l.starts_with("\\restrict ")
                    || l.starts_with("\\unrestrict ")
                    || l.starts_with("-- Dumped from database version")
                    || l.starts_with("-- Dumped by pg_dump version"))
            })
            .map(|l| format!("{l}\n"))
            .collect()
    }
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}
