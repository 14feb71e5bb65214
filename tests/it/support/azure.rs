//! An Azure Blob Storage API server for the tests: Azurite (npm `azurite`,
//! installed by `.ci/run`) on a free loopback port, with its data in a temp
//! dir, killed on drop. Uses the emulator's well-known development account.

use pgkeep::store::{OpenMode, Repo, RepoOptions};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const INSTALL_HINT: &str =
    "azurite-blob is required for the Azure tests: install it with `npm install -g azurite` (.ci/run does)";
pub const ACCOUNT: &str = "devstoreaccount1";
/// Azurite's published development key (not a secret).
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Azurite {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

fn find(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

impl Azurite {
    pub fn start() -> Azurite {
        let bin = find("azurite-blob").unwrap_or_else(|| panic!("{INSTALL_HINT}"));
        let dir = tempfile::tempdir().expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let log = std::fs::File::create(dir.path().join("azurite.log")).expect("log");
        let child = Command::new(bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args(["--skipApiVersionCheck", "--location"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start azurite-blob: {e}; {INSTALL_HINT}"));
        let mut a = Azurite {
            child,
            port,
            _dir: dir,
        };
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(st)) = a.child.try_wait() {
                panic!("azurite-blob exited ({st})");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "azurite did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        a.port = port;
        a
    }

    /// Creates a container (a SharedKey-signed request, made with python3's
    /// standard library, which the S3 tests need anyway).
    pub fn create_container(&self, name: &str) {
        let script = r#"
import base64, email.utils, hmac, hashlib, sys, urllib.request
port, container, acct, key = sys.argv[1:5]
date = email.utils.formatdate(usegmt=True)
ver = "2021-08-06"
sts = "PUT\n\n\n\n\napplication/octet-stream\n" + "\n" * 6 + f"x-ms-date:{date}\nx-ms-version:{ver}\n/{acct}/{acct}/{container}\nrestype:container"
sig = base64.b64encode(hmac.new(base64.b64decode(key), sts.encode(), hashlib.sha256).digest()).decode()
req = urllib.request.Request(f"http://127.0.0.1:{port}/{acct}/{container}?restype=container", method="PUT", data=b"",
    headers={"Content-Type": "application/octet-stream", "x-ms-date": date, "x-ms-version": ver, "Authorization": f"SharedKey {acct}:{sig}"})
print(urllib.request.urlopen(req).status)
"#;
        let out = Command::new("python3")
            .args(["-c", script, &self.port.to_string(), name, ACCOUNT, KEY])
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "create container: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn repo(&self, container: &str, prefix: &str) -> Repo {
        let o = RepoOptions::from_pairs([
            format!("endpoint=http://127.0.0.1:{}/{ACCOUNT}", self.port),
            format!("account={ACCOUNT}"),
            format!("access_key={KEY}"),
            "allow_http=true".into(),
            "max_retries=2".into(),
            "retry_timeout=5s".into(),
        ])
        .expect("azure options");
        Repo::open_with(
            &format!("az://{container}/{prefix}"),
            &o,
            5 << 20,
            OpenMode::MustExist,
        )
        .expect("azure repository opens")
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
