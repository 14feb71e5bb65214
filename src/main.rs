//! The `pgkeep` binary: parse flags, set up logging and signals, call the
//! library, print, exit with a meaningful code.

mod cli;

use clap::Parser;
use cli::{Cli, Command, LogFormat};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

fn init_logging(format: LogFormat, verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("PGKEEP_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // The driver logs each statement's text at debug level; statements can
    // carry secrets (a role's password hash under `restore --globals`), so
    // its debug output never reaches pgkeep's logs, whatever PGKEEP_LOG says.
    let filter = match "tokio_postgres=info".parse() {
        Ok(d) => filter.add_directive(d),
        Err(_) => filter,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}

/// Cancels on SIGINT or SIGTERM so work can clean up before exiting.
fn watch_signals(token: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = match signal(SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::warn!("interrupted: cleaning up");
        token.cancel();
    });
}

const BLOCKING_THREADS: usize = 8;

/// Threads of the async runtime: half the cores, at least one. Everything
/// CPU-heavy (zstd, hashing, ciphers) runs on the blocking pool; the async
/// threads move bytes between sockets and buffers. Fewer of them keep a
/// COPY connection's task and the task reading its rows on one thread,
/// without a cross-thread wake-up per network read: on two cores, one
/// thread took the backup's client CPU down 18% and its wall time 15%
/// (docs/benchmarks.md). `TOKIO_WORKER_THREADS` overrides it.
fn async_threads() -> usize {
    std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)))
}

/// glibc's malloc raises its mmap threshold after the first large free and
/// then keeps freed multi-MiB frame buffers in per-thread arenas, so RSS
/// grows well past the memory budget. A fixed 1 MiB threshold returns frame
/// buffers to the OS when freed, and two arenas bound fragmentation
/// (measured in docs/benchmarks.md: peak RSS 127 → 58 MiB on 700 MB).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only changes allocator parameters; called once at
    // start-up before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

/// A closed pipe ends pgkeep quietly, as it does `cat` (`pgkeep list | head`),
/// instead of a panic on the next write.
#[cfg(unix)]
fn default_sigpipe() {
    // SAFETY: restoring the default disposition of one signal at start,
    // before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn default_sigpipe() {}

fn main() {
    default_sigpipe();
    tune_allocator();
    let cli = Cli::parse();
    init_logging(cli.log_format, cli.verbose);
    // Frames are encoded and decoded on the blocking pool: capping it bounds
    // the number of zstd contexts and frame buffers alive at once.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(async_threads())
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pgkeep: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async move {
        let cancel = CancellationToken::new();
        watch_signals(cancel.clone());
        let done = |r: pgkeep::Result<()>| r.map(|()| 0);
        match cli.command {
            Command::Backup(a) => done(cli::backup::run(a, cancel).await),
            Command::Restore(a) => done(cli::restore::run(a, cancel).await),
            Command::List(a) => done(cli::list::run(a).await),
            Command::Show(a) => done(cli::show::run(a).await),
            Command::Verify(a) => done(cli::verify::run(a, cancel).await),
            Command::Key(a) => done(cli::key::run(a).await),
            Command::Chain(a) => done(cli::chain::run(a).await),
            Command::Prune(a) => done(cli::prune::run(a).await),
            Command::Pin(a) => done(cli::prune::run_pin(a).await),
            Command::Unpin(a) => done(cli::prune::run_unpin(a).await),
            Command::Policy(a) => done(cli::policy::run(a).await),
            Command::Status(a) => cli::status::run(a).await,
            Command::Copy(a) => done(cli::copy::run(a).await),
            Command::Drill(a) => done(cli::drill::run(a, cancel).await),
            Command::Bench(a) => done(cli::bench::run(a, cancel).await),
            Command::Serve(a) => done(cli::serve::run(a, cancel).await),
            Command::Redis(a) => done(cli::redis::run(a, cancel).await),
        }
    });
    match result {
        Ok(0) => {}
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // Every error variant's message already carries its cause.
            eprintln!("pgkeep: error: {}", pgkeep::config::redact(&e.to_string()));
            std::process::exit(e.exit_code());
        }
    }
}
