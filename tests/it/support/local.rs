//! An ephemeral PostgreSQL server for one test binary: `initdb` into a fresh
//! temp dir, start on a free 127.0.0.1 port with a unix socket in that dir,
//! stop (`pg_ctl stop -m immediate`) from an `atexit` hook, and reap the
//! leftovers of test binaries that died without running their hook.
//!
//! Authentication: `trust` on the socket, `scram-sha-256` over TCP, superuser
//! `postgres` with password [`SUPERUSER_PASSWORD`]; two roles the tests
//! create log in with `md5` and `password` instead ([`MD5_ROLE`],
//! [`CLEARTEXT_ROLE`]). When run as root the
//! server binaries run via `runuser -u postgres --` (they refuse root).

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const SUPERUSER: &str = "postgres";
pub const SUPERUSER_PASSWORD: &str = "pgkeep-test-secret";
const DIR_PREFIX: &str = "pgkeep-it-";
/// The OS user that runs the server binaries when we are root.
const RUN_AS_WHEN_ROOT: &str = "postgres";

/// A running server started by this process.
pub struct LocalServer {
    bin: PathBuf,
    dir: PathBuf,
    run_as: Option<&'static str>,
    pub port: u16,
}

static STARTED: OnceLock<LocalServer> = OnceLock::new();
/// A second server, for the tests that restore into another cluster
/// (globals); started only by them.
static SECOND: OnceLock<LocalServer> = OnceLock::new();

impl LocalServer {
    /// Start the (single) server of this process and register its shutdown.
    pub fn start_once() -> &'static LocalServer {
        STARTED.get_or_init(|| {
            reap_orphans();
            let server = start();
            // SAFETY: registering a plain `extern "C" fn` with no arguments.
            unsafe { libc::atexit(stop_at_exit) };
            server
        })
    }

    /// Start the second server of this process (once), stopped at exit too.
    pub fn start_second() -> &'static LocalServer {
        Self::start_once();
        SECOND.get_or_init(|| {
            let server = start();
            // SAFETY: as above.
            unsafe { libc::atexit(stop_second_at_exit) };
            server
        })
    }

    /// Directory holding the unix socket (also the server's temp dir).
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> Command {
        server_command(&self.bin.join(program), self.run_as, &self.dir)
    }

    fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-m", "immediate", "-w", "-D"])
            .arg(self.data_dir())
            .output();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

extern "C" fn stop_at_exit() {
    if let Some(server) = STARTED.get() {
        server.stop();
    }
}

extern "C" fn stop_second_at_exit() {
    if let Some(server) = SECOND.get() {
        server.stop();
    }
}

/// `PGKEEP_PG_BIN`, else the newest `/usr/lib/postgresql/<major>/bin`.
pub fn server_bin_dir() -> PathBuf {
    match std::env::var_os("PGKEEP_PG_BIN") {
        Some(dir) => PathBuf::from(dir),
        None => newest_installed_bin().expect(
            "no PostgreSQL server found: install one under /usr/lib/postgresql, \
             or set PGKEEP_PG_BIN or DATABASE_URL",
        ),
    }
}

/// Where the client tools (psql, pg_dump) come from. pg_dump refuses a
/// server newer than itself, so: `PGKEEP_PG_TOOLS`; else the server's own
/// bin dir when it ships pg_dump (same version); else the newest
/// `/usr/lib/postgresql/<major>/bin`.
pub fn tools_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PGKEEP_PG_TOOLS") {
        return PathBuf::from(dir);
    }
    let server = std::env::var_os("PGKEEP_PG_BIN").map(PathBuf::from);
    match server {
        Some(dir) if dir.join("pg_dump").is_file() => dir,
        _ => newest_installed_bin().unwrap_or_else(server_bin_dir),
    }
}

/// A command for a PostgreSQL binary. Binaries from a relocatable package
/// (`<pkg>/bin`, `<pkg>/lib/libpq.so.5`) get `LD_LIBRARY_PATH=<pkg>/lib`.
pub fn pg_command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    if let Some(lib) = program
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("lib"))
    {
        if lib.join("libpq.so.5").exists() && !lib.starts_with("/usr") {
            cmd.env("LD_LIBRARY_PATH", lib);
        }
    }
    cmd
}

/// The newest `/usr/lib/postgresql/<major>/bin`, if any is installed.
pub fn newest_installed_bin() -> Option<PathBuf> {
    fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let major: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            Some(major)
        })
        .max()
        .map(|major| PathBuf::from(format!("/usr/lib/postgresql/{major}/bin")))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn server_command(program: &Path, run_as: Option<&str>, cwd: &Path) -> Command {
    let mut cmd = pg_command(program);
    if let Some(user) = run_as {
        // runuser keeps the environment (LD_LIBRARY_PATH included).
        let mut c = Command::new("runuser");
        c.args(["-u", user, "--"]).arg(program);
        c.envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))));
        cmd = c;
    }
    cmd.current_dir(cwd);
    cmd
}

fn start() -> LocalServer {
    let bin = server_bin_dir();
    let run_as = is_root().then_some(RUN_AS_WHEN_ROOT);
    let dir = tempfile::Builder::new()
        .prefix(DIR_PREFIX)
        .tempdir()
        .expect("create temp dir")
        .keep();
    fs::write(dir.join("owner.pid"), std::process::id().to_string()).unwrap();
    let pwfile = dir.join("pwfile");
    fs::write(&pwfile, SUPERUSER_PASSWORD).unwrap();
    if let Some(user) = run_as {
        chown_to(&dir, user);
        chown_to(&pwfile, user);
    }
    let data = dir.join("data");
    let mut initdb = server_command(&bin.join("initdb"), run_as, &dir);
    initdb
        .args(["-U", SUPERUSER, "-E", "UTF8", "--locale=C", "--no-sync"])
        .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .arg("-D")
        .arg(&data);
    super::run(initdb);
    older_logins(&data);

    let log = dir.join("postgres.log");
    let mut last_err = String::new();
    for _ in 0..5 {
        let port = free_port();
        write_settings(&data, port, &dir);
        let out = server_command(&bin.join("pg_ctl"), run_as, &dir)
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .output()
            .expect("run pg_ctl start");
        if out.status.success() {
            return LocalServer {
                bin,
                dir,
                run_as,
                port,
            };
        }
        last_err = fs::read_to_string(&log).unwrap_or_default();
    }
    panic!(
        "could not start PostgreSQL in {}:\n{last_err}",
        dir.display()
    );
}

/// Settings written to `postgresql.auto.conf` (rewritten on each attempt).
/// Roles whose TCP logins use the older password methods, so the tests
/// can reach every login pgkeep's own connection speaks: [`MD5_ROLE`]
/// (`md5`) and [`CLEARTEXT_ROLE`] (`password`). Their lines come before
/// initdb's `scram-sha-256` line; the tests create the roles.
fn older_logins(data: &Path) {
    let hba = data.join("pg_hba.conf");
    let rest = fs::read_to_string(&hba).expect("read pg_hba.conf");
    let lines = format!(
        "host all {MD5_ROLE} 127.0.0.1/32 md5\nhost all {CLEARTEXT_ROLE} 127.0.0.1/32 password\n"
    );
    fs::write(&hba, lines + &rest).expect("write pg_hba.conf");
}

/// A role that logs in with `md5` over TCP (see [`older_logins`]).
pub const MD5_ROLE: &str = "pgkeep_md5_login";
/// A role that logs in with a cleartext password over TCP.
pub const CLEARTEXT_ROLE: &str = "pgkeep_cleartext_login";

fn write_settings(data: &Path, port: u16, socket_dir: &Path) {
    let conf = format!(
        "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
         fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
         max_connections = 100\nshared_buffers = 16MB\nmax_wal_size = 256MB\n\
         log_min_messages = warning\nlog_statement = none\n",
        socket_dir.display()
    );
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(data.join("postgresql.auto.conf"))
        .expect("open postgresql.auto.conf");
    f.write_all(conf.as_bytes()).unwrap();
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

fn chown_to(path: &Path, user: &str) {
    let name = std::ffi::CString::new(user).unwrap();
    // SAFETY: getpwnam with a valid C string; the result is read immediately.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(!pw.is_null(), "running as root needs an OS user {user:?}");
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let exists = unsafe { libc::kill(pid, 0) } == 0;
    exists || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Stop and delete servers of earlier test binaries that died uncleanly.
fn reap_orphans() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for dir in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        let is_ours = dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(DIR_PREFIX));
        let owner = fs::read_to_string(dir.join("owner.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        match owner {
            Some(pid) if is_ours && !process_alive(pid) => {
                kill_postmaster(&dir.join("data"));
                let _ = fs::remove_dir_all(&dir);
            }
            _ => {}
        }
    }
}

/// Immediate shutdown (SIGQUIT) of the postmaster of `data`, if running.
fn kill_postmaster(data: &Path) {
    let Some(pid) = fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next()?.trim().parse::<i32>().ok())
    else {
        return;
    };
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if !comm.trim().starts_with("postgres") {
        return;
    }
    // SAFETY: sending a signal to a pid we just identified as a postgres.
    unsafe { libc::kill(pid, libc::SIGQUIT) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}
