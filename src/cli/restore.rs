//! `pgkeep restore`.

use super::chain;
use super::common::{
    human_bytes, print_json, DbArgs, OutputArgs, ParallelArgs, RepoArgs, SelectArgs,
};
use super::secrets::KeyArgs;
use clap::Args;
use pgkeep::chain::{verify_live, StreamFilter};
use pgkeep::error::Result;
use pgkeep::pipeline::budget::MAX_READ_REQUEST;
use pgkeep::restore::{restore, RestoreOptions};
use pgkeep::store::OpenMode;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Backup id, or `latest`.
    #[arg(default_value = "latest")]
    pub backup: String,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub parallel: ParallelArgs,
    /// Drop the target's existing user objects first, all of them (with
    /// --if-exists: only what the backup holds; with --create: drop and
    /// recreate the database).
    #[arg(long)]
    pub clean: bool,
    /// With --clean: drop only what the backup holds, with IF EXISTS,
    /// instead of every user object of the target (pg_restore --if-exists).
    #[arg(long, requires = "clean")]
    pub if_exists: bool,
    /// Create the roles and tablespaces the backup holds that the target
    /// cluster lacks (existing ones are left as they are and reported).
    /// Off by default; without it a restore that needs a missing role is
    /// refused before it starts.
    #[arg(long)]
    pub globals: bool,
    /// Create the target database (named in --db) first, with the source
    /// database's properties (owner, settings, comment, privileges).
    #[arg(long)]
    pub create: bool,
    /// Restore even into the backup's own source database (same cluster and
    /// database name), which is refused otherwise.
    #[arg(long)]
    pub force_source: bool,
    /// Leave out ALTER ... OWNER TO: objects belong to the restoring role (pg_restore --no-owner).
    #[arg(long, short = 'O')]
    pub no_owner: bool,
    /// Leave out GRANT/REVOKE and default privileges (pg_restore --no-acl).
    #[arg(long, short = 'x', visible_alias = "no-privileges")]
    pub no_acl: bool,
    /// Leave out comments (pg_restore --no-comments).
    #[arg(long)]
    pub no_comments: bool,
    /// Leave out publications and their members (pg_restore --no-publications).
    #[arg(long)]
    pub no_publications: bool,
    /// Create tables and materialized views in the target's default
    /// tablespace (pg_restore --no-tablespaces).
    #[arg(long)]
    pub no_tablespaces: bool,
    /// Leave out subscriptions (pg_restore --no-subscriptions).
    #[arg(long)]
    pub no_subscriptions: bool,
    /// Leave out security labels (pg_restore --no-security-labels).
    #[arg(long)]
    pub no_security_labels: bool,
    /// Pre-data and post-data only: the schema, no rows (pg_restore --schema-only).
    #[arg(long, short = 's', conflicts_with_all = ["data_only", "section"])]
    pub schema_only: bool,
    /// Data only, into the schema already in the target; rows are added to
    /// what the tables hold (pg_restore --data-only).
    #[arg(long, short = 'a', conflicts_with = "section")]
    pub data_only: bool,
    /// Restore only the entries of this list (`pgkeep show --list`, with
    /// lines commented out by `;`), in dependency order (pg_restore -L).
    #[arg(long, short = 'L', value_name = "FILE")]
    pub use_list: Option<std::path::PathBuf>,
    /// -t/-n/-T/-N: only what the patterns select; a table comes with its
    /// data, indexes, constraints, triggers, policies, owned sequences,
    /// comments and ACLs (pg_restore -t/-n).
    #[command(flatten)]
    pub select: SelectArgs,
    /// Restore only this section (repeatable): pre-data, data, post-data.
    #[arg(long, value_parser = parse_section)]
    pub section: Vec<pgkeep::catalog::Section>,
    /// Continue an interrupted restore of the same backup into the same
    /// database: what it finished (entries, committed data units) is
    /// skipped, the rest is done (state in the target's pgkeep_restore
    /// schema, removed at the end).
    #[arg(long, conflicts_with_all = ["clean", "create", "single_transaction"])]
    pub resume: bool,
    /// Stop at the first failure: the default (pg_restore --exit-on-error).
    #[arg(long, short = 'e', conflicts_with = "continue_on_error")]
    pub exit_on_error: bool,
    /// Go on past failing statements and data loads; report every failure
    /// and their count at the end, and exit 1 (pg_restore without -e).
    #[arg(long)]
    pub continue_on_error: bool,
    /// The whole restore in one transaction: all or nothing; one
    /// connection (--jobs 1 unless given) and no --create (pg_restore -1).
    #[arg(long, short = '1', conflicts_with_all = ["continue_on_error", "create"])]
    pub single_transaction: bool,
    /// Start each table's indexes and constraints as soon as its data is
    /// loaded, while other tables still load, as pg_restore -j does. Off by
    /// default: on two cores shared with the server it measured slower
    /// (docs/benchmarks.md).
    #[arg(long, conflicts_with = "single_transaction")]
    pub overlap: bool,
    /// Restore a backup of a newer PostgreSQL major into an older server
    /// (refused otherwise).
    #[arg(long)]
    pub allow_downgrade: bool,
    /// With --clean: list what would be dropped in the target; change nothing.
    #[arg(long, requires = "clean")]
    pub dry_run: bool,
    /// After the restore, verify the policy's hash chains in the restored
    /// database; a broken chain fails the command (exit 3).
    #[arg(long, requires = "policy")]
    pub verify_chains: bool,
    /// maintenance_work_mem for index builds (default: an equal share of
    /// the server's shared_buffers per connection, 64MB to 1GB, never below
    /// the server's own setting).
    #[arg(long)]
    pub maintenance_work_mem: Option<String>,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn run(mut args: RestoreArgs, cancel: CancellationToken) -> Result<()> {
    let job = args.repo.policy.job()?;
    let job = job.as_ref();
    args.keys.default_from(job);
    // The job's database is the backup's source: a restore never goes
    // there unless named with --db.
    if job.is_some() && args.db.db.is_none() {
        return Err(pgkeep::Error::Config(
            "restore --job needs --db: the job's own database is the backup's source, and a restore never writes there unless named".into(),
        ));
    }
    let mut opts = RestoreOptions::new(args.db.resolve_for(None)?);
    opts.jobs = args.parallel.jobs_for(job);
    opts.memory = args.parallel.memory_for(job);
    opts.clean = args.clean;
    opts.create = args.create;
    opts.if_exists = args.if_exists;
    opts.globals = args.globals;
    opts.resume = args.resume;
    opts.force_source = args.force_source;
    opts.allow_downgrade = args.allow_downgrade;
    opts.single_transaction = args.single_transaction;
    opts.overlap = args.overlap;
    if args.single_transaction && args.parallel.jobs.is_none() {
        opts.jobs = 1;
    }
    if args.continue_on_error {
        opts.on_error = pgkeep::restore::OnError::Continue;
    }
    opts.sections = pgkeep::restore::select::Sections::from_flags(
        args.schema_only,
        args.data_only,
        &args.section,
    );
    if let Some(path) = &args.use_list {
        let text = std::fs::read_to_string(path).map_err(|source| pgkeep::Error::Io {
            path: path.clone(),
            source,
        })?;
        opts.only =
            Some(pgkeep::restore::select::parse_list(&text).map_err(|e| {
                pgkeep::Error::Config(format!("--use-list {}: {e}", path.display()))
            })?);
    }
    let patterns = args.select.patterns();
    if patterns != pgkeep::catalog::CatalogOptions::default() {
        opts.select = Some(patterns);
    }
    opts.omit = pgkeep::restore::select::Omit {
        owner: args.no_owner,
        acl: args.no_acl,
        comments: args.no_comments,
        publications: args.no_publications,
        tablespaces: args.no_tablespaces,
        subscriptions: args.no_subscriptions,
        security_labels: args.no_security_labels,
    };
    if let Some(m) = args.maintenance_work_mem {
        opts.maintenance_work_mem = Some(m);
    }
    let chains = match (args.repo.policy.load()?, args.verify_chains) {
        (Some(p), true) => Some(p.chain),
        _ => None,
    };
    let repo = args
        .repo
        .open_for(job, MAX_READ_REQUEST, OpenMode::MustExist)?;
    if args.dry_run {
        let dropped = args
            .keys
            .with_unlock(|unlock| {
                let mut opts = opts.clone();
                opts.unlock = unlock;
                let (repo, id) = (repo.clone(), args.backup.clone());
                async move { pgkeep::restore::clean_preview(&repo, &id, &opts).await }
            })
            .await?;
        if args.output.json {
            return print_json(
                &serde_json::json!({ "target": opts.db.to_string(), "would_drop": dropped }),
            );
        }
        if args.if_exists {
            println!(
                "--clean --if-exists would run {} drop statement(s) in {} (each skips what is not there):",
                dropped.len(),
                opts.db
            );
        } else {
            println!(
                "--clean would drop {} object(s) in {}:",
                dropped.len(),
                opts.db
            );
        }
        for d in &dropped {
            println!("  {d}");
        }
        return Ok(());
    }
    let progress: std::sync::Arc<dyn pgkeep::progress::Progress> =
        pgkeep::progress::for_stderr("restore").into();
    let s = args
        .keys
        .with_unlock(|unlock| {
            let mut opts = opts.clone();
            opts.unlock = unlock;
            let (repo, progress, cancel, id) = (
                repo.clone(),
                progress.clone(),
                cancel.clone(),
                args.backup.clone(),
            );
            async move { restore(&repo, &id, &opts, progress, cancel).await }
        })
        .await?;
    let report = match chains {
        Some(c) => Some(verify_live(&opts.db, &c, &StreamFilter::All).await?),
        None => None,
    };
    if args.output.json {
        match &report {
            Some(r) => print_json(&serde_json::json!({ "restore": s, "chains": r }))?,
            None => print_json(&s)?,
        }
    } else {
        println!(
            "restored {} into {}: {} streams, {} rows, {} in {:.1}s (pre-data {:.1}s, data {:.1}s, post-data {:.1}s); {}",
            s.backup_id,
            s.target,
            s.streams,
            s.rows,
            human_bytes(s.bytes),
            s.duration_ms as f64 / 1000.0,
            s.pre_data_ms as f64 / 1000.0,
            s.data_ms as f64 / 1000.0,
            s.post_data_ms as f64 / 1000.0,
            if s.failures.is_empty() {
                "row counts verified"
            } else {
                "row counts verified for what loaded"
            }
        );
        for fk in &s.skipped_foreign_keys {
            println!("  left out foreign key {fk}: it points at a table not selected");
        }
        if let Some(g) = &s.globals {
            let list = |v: &[String]| {
                if v.is_empty() {
                    "none".to_string()
                } else {
                    v.join(", ")
                }
            };
            println!(
                "  globals: roles created: {}; roles already there, left as they are: {}; tablespaces created: {}; already there: {}",
                list(&g.roles_created),
                list(&g.roles_existing),
                list(&g.tablespaces_created),
                list(&g.tablespaces_existing)
            );
        }
        for f in &s.failures {
            println!("  failed: {f}");
        }
        if let Some(r) = &report {
            chain::print_human(r);
        }
    }
    if !s.failures.is_empty() {
        let n = s.failures.len();
        return Err(pgkeep::Error::Incomplete(format!(
            "restore of {} finished with {n} failure{} (--continue-on-error): the target is incomplete",
            s.backup_id,
            if n == 1 { "" } else { "s" }
        )));
    }
    report.map_or(Ok(()), |r| chain::check(&r))
}

/// `--section`: pg_restore's section names.
fn parse_section(s: &str) -> std::result::Result<pgkeep::catalog::Section, String> {
    use pgkeep::catalog::Section;
    match s {
        "pre-data" => Ok(Section::PreData),
        "data" => Ok(Section::Data),
        "post-data" => Ok(Section::PostData),
        _ => Err(format!(
            "{s:?} is not a section: pre-data, data or post-data"
        )),
    }
}
