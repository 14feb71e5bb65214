//! Where the CLI gets key material: files, environment variables, or a
//! terminal prompt — never a command-line value (it would show in `ps`).
//! One reader serves the current key (`--key-file`, `PGKEEP_KEY`,
//! `--passphrase-file`, `PGKEEP_PASSPHRASE`) and a new one (`--new-...`,
//! `PGKEEP_NEW_...`).

use clap::Args;
use pgkeep::crypto::SecretInput;
use pgkeep::error::{Error, Result};
use pgkeep::keys::Unlock;
use std::future::Future;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The key that opens encrypted backups.
#[derive(Args, Debug, Clone, Default)]
pub struct KeyArgs {
    /// Master key file: 32 raw bytes or their base64. Or PGKEEP_KEY (base64).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// File holding a passphrase. Or PGKEEP_PASSPHRASE, or a prompt on a terminal.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// A key being added.
#[derive(Args, Debug, Clone, Default)]
pub struct NewKeyArgs {
    /// New master key file. Or PGKEEP_NEW_KEY (base64).
    #[arg(long, value_name = "FILE")]
    pub new_key_file: Option<PathBuf>,
    /// File holding the new passphrase. Or PGKEEP_NEW_PASSPHRASE, or a prompt.
    #[arg(long, value_name = "FILE")]
    pub new_passphrase_file: Option<PathBuf>,
}

fn read_secret_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
}

fn passphrase(mut s: String, what: &str) -> Result<SecretInput> {
    while s.ends_with('\n') || s.ends_with('\r') {
        s.pop();
    }
    if s.is_empty() {
        return Err(Error::Key(format!("{what}: empty passphrase")));
    }
    Ok(SecretInput::Passphrase(Zeroizing::new(s)))
}

/// Reads every secret given through these files and variables.
fn gather(
    key_file: Option<&Path>,
    passphrase_file: Option<&Path>,
    key_env: &str,
    pass_env: &str,
) -> Result<Vec<SecretInput>> {
    let mut out = Vec::new();
    if let Some(p) = key_file {
        let bytes = read_secret_file(p)?;
        out.push(SecretInput::parse_key(&bytes, &p.display().to_string())?);
    }
    if let Ok(v) = std::env::var(key_env) {
        let v = Zeroizing::new(v);
        out.push(SecretInput::parse_key(v.as_bytes(), key_env)?);
    }
    if let Some(p) = passphrase_file {
        let bytes = read_secret_file(p)?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::Key(format!("{}: passphrase is not UTF-8", p.display())))?;
        out.push(passphrase(text, &p.display().to_string())?);
    }
    if let Ok(v) = std::env::var(pass_env) {
        out.push(passphrase(v, pass_env)?);
    }
    Ok(out)
}

/// Asks on the terminal (twice when `confirm`); `None` without a terminal.
fn prompt(label: &str, confirm: bool) -> Result<Option<SecretInput>> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Ok(None);
    }
    let read = |p: &str| {
        rpassword::prompt_password(p)
            .map(Zeroizing::new)
            .map_err(|e| Error::Key(format!("reading the passphrase: {e}")))
    };
    let first = read(&format!("{label}: "))?;
    if confirm && *read(&format!("{label} (again): "))? != *first {
        return Err(Error::Key("the passphrases differ".into()));
    }
    passphrase(first.to_string(), "prompt").map(Some)
}

impl KeyArgs {
    /// Takes the policy job's key or passphrase file when none was given.
    pub fn default_from(&mut self, job: Option<&pgkeep::ops::job::Job>) {
        if let Some(job) = job {
            if self.key_file.is_none() && self.passphrase_file.is_none() {
                self.key_file = job.key_file.clone();
                self.passphrase_file = job.passphrase_file.clone();
            }
        }
    }

    pub fn inputs(&self) -> Result<Vec<SecretInput>> {
        gather(
            self.key_file.as_deref(),
            self.passphrase_file.as_deref(),
            "PGKEEP_KEY",
            "PGKEEP_PASSPHRASE",
        )
    }

    /// Runs `f` with the supplied keys; if it needs a key none was supplied
    /// and a terminal is attached, asks for the passphrase and runs it again.
    pub async fn with_unlock<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn(Arc<Unlock>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let unlock = Arc::new(Unlock::new(self.inputs()?));
        let empty = unlock.is_empty();
        match f(unlock).await {
            Err(Error::Key(m)) if empty => match prompt("Passphrase", false)? {
                Some(p) => f(Arc::new(Unlock::new(vec![p]))).await,
                None => Err(Error::Key(m)),
            },
            r => r,
        }
    }
}

impl NewKeyArgs {
    /// The new key, from its files or variables, else a confirmed prompt.
    pub fn input(&self) -> Result<Option<SecretInput>> {
        let mut v = gather(
            self.new_key_file.as_deref(),
            self.new_passphrase_file.as_deref(),
            "PGKEEP_NEW_KEY",
            "PGKEEP_NEW_PASSPHRASE",
        )?;
        if v.len() > 1 {
            return Err(Error::Config("give one new key, not several".into()));
        }
        match v.pop() {
            Some(s) => Ok(Some(s)),
            None => prompt("New passphrase", true),
        }
    }
}

/// Whether a backup encrypts (`backup` and `redis backup`).
#[derive(clap::Args, Debug)]
pub struct EncryptArgs {
    /// Encrypt (the default once the repository has a master key). In a
    /// repository without keys, the key given by --key-file/PGKEEP_KEY or
    /// --passphrase-file/PGKEEP_PASSPHRASE becomes its first master key.
    #[arg(long, conflicts_with = "no_encrypt")]
    pub encrypt: bool,
    /// Store plaintext frames even though the repository has keys.
    #[arg(long)]
    pub no_encrypt: bool,
    /// Cipher for this backup (default: the repository's): aes-256-gcm or chacha20-poly1305.
    #[arg(long)]
    pub cipher: Option<String>,
}

impl EncryptArgs {
    /// The library's choice; with `--encrypt`, the one key given becomes
    /// the first master key of a repository without keys.
    pub fn choice(&self, keys: &KeyArgs) -> Result<pgkeep::backup::KeyChoice> {
        let cipher = self
            .cipher
            .as_deref()
            .map(str::parse::<pgkeep::crypto::CipherKind>)
            .transpose()?;
        let encrypt = match (self.encrypt, self.no_encrypt) {
            (true, _) => pgkeep::keys::EncryptMode::On,
            (_, true) => pgkeep::keys::EncryptMode::Off,
            _ => pgkeep::keys::EncryptMode::Auto,
        };
        let mut first_key = None;
        if self.encrypt {
            let mut given = keys.inputs()?;
            if given.len() == 1 {
                first_key = Some(std::sync::Arc::new(given.remove(0)));
            }
        }
        Ok(pgkeep::backup::KeyChoice {
            encrypt,
            cipher,
            first_key,
        })
    }
}
