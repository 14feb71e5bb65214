//! `pgkeep key add | list | remove | rotate`.

use super::common::{print_json, OutputArgs, RepoArgs};
use super::secrets::{KeyArgs, NewKeyArgs};
use clap::{Args, Subcommand};
use pgkeep::crypto::{CipherKind, SecretInput};
use pgkeep::error::{Error, Result};
use pgkeep::keys::{self, KeyChange, Unlock};
use pgkeep::store::OpenMode;

#[derive(Args, Debug)]
pub struct KeyCmdArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Add a master key; existing encrypted backups are re-wrapped for it.
    Add(AddArgs),
    /// List the repository's master keys (ids and kinds; nothing secret).
    List(ListKeysArgs),
    /// Remove a master key and its wraps (refused if a backup would be left without a key).
    Remove(RemoveArgs),
    /// Replace a key: add the new one, re-wrap every backup, retire the old one.
    Rotate(RotateArgs),
}

/// What adding a key needs: the repository, a current key (to re-wrap
/// existing backups for the new one) and the new key.
#[derive(Args, Debug)]
pub struct KeyChangeArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub new: NewKeyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    #[command(flatten)]
    pub change: KeyChangeArgs,
    /// Repository default cipher: aes-256-gcm or chacha20-poly1305 (for
    /// CPUs without AES instructions, e.g. a Raspberry Pi 4).
    #[arg(long)]
    pub cipher: Option<String>,
}

#[derive(Args, Debug)]
pub struct ListKeysArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Key id (see `pgkeep key list`).
    pub key_id: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    #[command(flatten)]
    pub change: KeyChangeArgs,
    /// The key to retire (default: the one the current key matches).
    #[arg(long)]
    pub old: Option<String>,
}

pub async fn run(args: KeyCmdArgs) -> Result<()> {
    match args.command {
        KeyCommand::Add(a) => add(a).await,
        KeyCommand::List(a) => list(a).await,
        KeyCommand::Remove(a) => {
            let repo = a.repo.open(0, OpenMode::MustExist)?;
            report(keys::remove_key(&repo, &a.key_id).await?, a.output)
        }
        KeyCommand::Rotate(RotateArgs { change: mut c, old }) => {
            let job = c.repo.policy.job()?;
            c.keys.default_from(job.as_ref());
            let repo = c.repo.open_for(job.as_ref(), 0, OpenMode::MustExist)?;
            let new = c.new.input()?.ok_or_else(no_new_key)?;
            let unlock = Unlock::new(c.keys.inputs()?);
            report(
                keys::rotate_key(&repo, &unlock, old.as_deref(), &new).await?,
                c.output,
            )
        }
    }
}

fn no_new_key() -> Error {
    Error::Key(
        "no new key: give --new-key-file or --new-passphrase-file (or PGKEEP_NEW_KEY / PGKEEP_NEW_PASSPHRASE)"
            .into(),
    )
}

async fn add(
    AddArgs {
        change: mut a,
        cipher,
    }: AddArgs,
) -> Result<()> {
    let cipher = cipher
        .as_deref()
        .map(str::parse::<CipherKind>)
        .transpose()?;
    let job = a.repo.policy.job()?;
    a.keys.default_from(job.as_ref());
    let repo = a
        .repo
        .open_for(job.as_ref(), 0, OpenMode::CreateIfMissing)?;
    let mut current = a.keys.inputs()?;
    // The first key of a repository may come through the usual key options.
    let first = keys::list_keys(&repo).await?.is_empty();
    let new: SecretInput = match a.new.input()? {
        Some(n) => n,
        None if first && current.len() == 1 => current.remove(0),
        None => return Err(no_new_key()),
    };
    let change = keys::add_key(&repo, &Unlock::new(current), &new, cipher).await?;
    report(change, a.output)
}

async fn list(a: ListKeysArgs) -> Result<()> {
    let repo = a.repo.open(0, OpenMode::MustExist)?;
    let records = keys::list_keys(&repo).await?;
    let cipher = keys::read_repository_cipher(&repo).await?;
    if a.output.json {
        return print_json(&serde_json::json!({ "cipher": cipher, "keys": records }));
    }
    if records.is_empty() {
        println!("no master keys: backups are not encrypted (add one with `pgkeep key add`)");
        return Ok(());
    }
    println!(
        "cipher {}",
        cipher.map(|c| c.name()).unwrap_or("aes-256-gcm")
    );
    println!("{:<18} {:<11} created", "id", "kind");
    for r in records {
        let kind = serde_json::to_value(r.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        println!("{:<18} {:<11} {}", r.id, kind, r.created_at);
    }
    Ok(())
}

fn report(change: KeyChange, output: OutputArgs) -> Result<()> {
    if output.json {
        return print_json(&change);
    }
    if let Some(id) = &change.added {
        println!("added key {id}");
    }
    if let Some(id) = &change.removed {
        println!("removed key {id}");
    }
    println!("re-wrapped {} backup(s)", change.rewrapped.len());
    Ok(())
}
