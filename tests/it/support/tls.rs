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

/// A throwaway CA (`ca.crt`), a CA that signed nothing (`other-ca.crt`)
/// and a server certificate for `localhost` (`server.crt`, `server.key`)
/// in `dir`, made with the `openssl` CLI.
pub fn make_certs(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "3650",
            "-subj",
            "/CN=pgkeep test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "other-ca.key",
            "-out",
            "other-ca.crt",
            "-days",
            "3650",
            "-subj",
            "/CN=pgkeep other CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "2",
            "-days",
            "3650",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
    );
    // A client certificate (`client.crt`, `client.key`) from the same CA.
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
            "-subj",
            "/CN=pgkeep client",
        ],
    );
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "3",
            "-days",
            "3650",
            "-extfile",
            "client.ext",
            "-out",
            "client.crt",
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
