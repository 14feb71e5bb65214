//! `pgkeep serve`: the scheduler daemon (see `pgkeep::serve`).

use super::secrets::KeyArgs;
use clap::Args;
use pgkeep::config::Policy;
use pgkeep::error::{Error, Result};
use pgkeep::keys::Unlock;
use pgkeep::ops::job::Job;
use pgkeep::serve::{serve, ServeOptions};
use pgkeep::units::HumanDuration;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Policy file (pgkeep.toml). SIGHUP re-reads it.
    #[arg(long, value_name = "FILE", env = "PGKEEP_POLICY")]
    pub policy: PathBuf,
    /// Listen address, instead of `[serve] listen` (default 127.0.0.1:9898).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// On SIGTERM/SIGINT, how long running jobs get to finish before they are cancelled.
    #[arg(long, default_value = "30s")]
    pub grace: HumanDuration,
    #[command(flatten)]
    pub keys: KeyArgs,
}

pub async fn run(mut args: ServeArgs, cancel: CancellationToken) -> Result<()> {
    let policy = Policy::load(&args.policy)?;
    // The repository's key files are the same for every job.
    if let Some(first) = policy.jobs().first() {
        let job = Job::resolve_repositories(&policy, first.name())?;
        args.keys.default_from(Some(&job));
    }
    let unlock = Arc::new(Unlock::new(args.keys.inputs()?));
    let reload = Arc::new(Notify::new());
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup())
            .map_err(|e| Error::Internal(format!("cannot watch SIGHUP: {e}")))?;
        let reload = reload.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::warn!("SIGHUP: reloading the policy");
                reload.notify_one();
            }
        });
    }
    let opts = ServeOptions {
        policy_path: args.policy,
        listen: args.listen,
        grace: args.grace.0,
        unlock,
        delivery: Default::default(),
    };
    serve(opts, cancel, reload).await
}
