//! TLS on the ephemeral test cluster, turned on at most once per test
//! binary by the tests that need it: a throwaway CA and a server
//! certificate for `localhost` (DNS name only, so `127.0.0.1` is a host
//! name mismatch) made with the `openssl` CLI, then `ssl = on` by
//! `ALTER SYSTEM` and a reload. Existing `host` lines of `pg_hba.conf`
//! accept TLS and plaintext alike, so every other test keeps working
//! (clients that prefer TLS now get it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::cluster;

/// Certificates a client needs to talk to the TLS-enabled cluster.
#[derive(Debug)]
pub struct TlsFiles {
    /// The CA that signed the server certificate.
    pub ca: PathBuf,
    /// A CA that signed nothing the server has.
    pub other_ca: PathBuf,
    /// The host name in the server certificate.
    pub server_name: &'static str,
}

/// Turns TLS on (once). The TLS tests never skip: they fail with a hint
/// when the cluster is not this binary's own (`DATABASE_URL`: its server
/// configuration is not ours to change) or `openssl` is missing
/// (`scripts/test.sh` installs it).
pub fn enable_tls() -> &'static TlsFiles {
    static TLS: OnceLock<TlsFiles> = OnceLock::new();
    TLS.get_or_init(setup)
}

/// A throwaway CA (`ca.crt`), a CA that signed nothing (`other-ca.crt`),
/// a server certificate for `localhost` (`server.crt`, `server.key`) and
/// a client certificate (`client.crt`, `client.key`) in `dir`, made with
/// the `openssl` CLI.
pub fn make_certs(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    self_signed(dir, "ca", "/CN=pgkeep test CA");
    self_signed(dir, "other-ca", "/CN=pgkeep other CA");
    signed(
        dir,
        "server",
        "/CN=localhost",
        "subjectAltName=DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        "2",
    );
    signed(
        dir,
        "client",
        "/CN=pgkeep client",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
        "3",
    );
}

/// A P-256 key: `-newkey` arguments of `openssl req`.
const EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// `NAME.crt` and `NAME.key`, a self-signed CA.
fn self_signed(dir: &Path, name: &str, subject: &str) {
    let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
    let mut args = vec!["req", "-x509"];
    args.extend(EC_KEY);
    args.extend([
        "-keyout", &key, "-out", &crt, "-days", "3650", "-subj", subject,
    ]);
    openssl(dir, &args);
}

/// `NAME.crt` and `NAME.key`, signed by `ca.crt` with the extensions `ext`.
fn signed(dir: &Path, name: &str, subject: &str, ext: &str, serial: &str) {
    let (key, csr, crt, ext_file) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
    );
    let mut args = vec!["req", "-new"];
    args.extend(EC_KEY);
    args.extend(["-keyout", &key, "-out", &csr, "-subj", subject]);
    openssl(dir, &args);
    std::fs::write(dir.join(&ext_file), ext).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            serial,
            "-days",
            "3650",
            "-extfile",
            &ext_file,
            "-out",
            &crt,
        ],
    );
}

fn setup() -> TlsFiles {
    let c = cluster();
    let socket_dir = c.socket_dir().expect(
        "the TLS tests configure the server: run them on the harness's own cluster (unset DATABASE_URL)",
    );
    if Command::new("openssl").arg("version").output().is_err() {
        panic!("openssl not found: install it (apt-get install openssl), or run scripts/test.sh, which does");
    }
    let dir = socket_dir.join("tls");
    make_certs(&dir);
    // The server (another OS user when we are root) must own its key, 0600.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let owner = std::fs::metadata(socket_dir).unwrap();
    for f in ["", "server.crt", "server.key"] {
        let p = dir.join(f);
        std::os::unix::fs::chown(&p, Some(owner.uid()), Some(owner.gid())).unwrap();
    }
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();

    for sql in [
        format!(
            "ALTER SYSTEM SET ssl_cert_file = '{}'",
            dir.join("server.crt").display()
        ),
        format!(
            "ALTER SYSTEM SET ssl_key_file = '{}'",
            dir.join("server.key").display()
        ),
        "ALTER SYSTEM SET ssl = on".to_owned(),
        "SELECT pg_reload_conf()".to_owned(),
    ] {
        c.psql("postgres", &sql);
    }
    // The postmaster reloads asynchronously: poll (bounded) until a new
    // connection can require TLS.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut cmd = c.pg_tool("psql");
        cmd.args([
            "-X",
            "-q",
            "-t",
            "-c",
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            "-d",
        ])
        .arg(format!("{}?sslmode=require", c.url("postgres")));
        let out = cmd.output().expect("run psql");
        if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "t" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "TLS did not come up after reload: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    TlsFiles {
        ca: dir.join("ca.crt"),
        other_ca: dir.join("other-ca.crt"),
        server_name: "localhost",
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let mut cmd = Command::new("openssl");
    cmd.args(args).current_dir(dir);
    super::run(cmd);
}
