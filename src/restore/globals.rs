//! Globals on restore. Before anything changes, a target cluster that lacks
//! roles the backup's objects need is refused, naming them and the flags
//! that help, unless `--globals` creates them (or `--no-owner`/`--no-acl`
//! leave them out). With `--globals`, missing roles (attributes, settings,
//! comments, password hashes when the backup holds them), the memberships of
//! the roles it created and missing tablespaces are created; existing ones
//! are left as they are and reported. With `--create`, the database's own
//! properties are applied as `pg_dump --create` would.

use super::RestoreOptions;
use crate::catalog::globals::{DatabaseProps, Globals};
use crate::error::{Error, Result};
use crate::pg::Conn;
use serde::Serialize;
use std::collections::BTreeSet;

/// What `--globals` did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GlobalsReport {
    pub roles_created: Vec<String>,
    pub roles_existing: Vec<String>,
    pub tablespaces_created: Vec<String>,
    pub tablespaces_existing: Vec<String>,
}

async fn existing(conn: &Conn, sql: &str, names: &[String]) -> Result<BTreeSet<String>> {
    let rows = conn
        .client
        .query(sql, &[&names])
        .await
        .map_err(Error::db("looking up globals in the target cluster"))?;
    rows.iter()
        .map(|r| {
            r.try_get::<_, String>(0)
                .map_err(Error::db("looking up globals in the target cluster"))
        })
        .collect()
}

async fn existing_roles(conn: &Conn, names: &[String]) -> Result<BTreeSet<String>> {
    existing(
        conn,
        "SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolname = ANY($1)",
        names,
    )
    .await
}

async fn existing_tablespaces(conn: &Conn, names: &[String]) -> Result<BTreeSet<String>> {
    existing(
        conn,
        "SELECT spcname::text FROM pg_catalog.pg_tablespace WHERE spcname = ANY($1)",
        names,
    )
    .await
}

/// Refuses a target cluster without the roles this restore needs, unless
/// `--globals` will create them.
pub async fn check_roles(admin: &Conn, globals: &Globals, opts: &RestoreOptions) -> Result<()> {
    // A selection or a data-only restore names few of the roles: the
    // statements that need one say so themselves.
    if opts.selective() || !(opts.sections.pre_data || opts.sections.post_data) {
        return Ok(());
    }
    let needed: Vec<String> = globals
        .needs
        .for_restore(!opts.omit.owner, !opts.omit.acl, opts.create)
        .into_iter()
        .map(str::to_string)
        .collect();
    let have = existing_roles(admin, &needed).await?;
    let missing: Vec<&String> = needed.iter().filter(|r| !have.contains(*r)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let recorded: BTreeSet<&str> = globals.roles.iter().map(|r| r.name.as_str()).collect();
    let unknown: Vec<&str> = missing
        .iter()
        .map(|r| r.as_str())
        .filter(|r| !recorded.contains(r))
        .collect();
    if opts.globals && unknown.is_empty() {
        return Ok(());
    }
    let list = missing
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    Err(Error::Refused(format!(
        "the target cluster lacks role(s) the backup's objects need: {list}. Create them with --globals (from the backup), create them by hand, or leave owners and privileges out with --no-owner --no-acl"
    )))
}

/// `--globals`, before anything changes: what the restoring role cannot
/// create is refused here rather than halfway. A role that is not a
/// superuser cannot create superuser, replication or BYPASSRLS roles, nor
/// tablespaces.
pub async fn check_create(admin: &Conn, globals: &Globals) -> Result<()> {
    let superuser: bool = admin
        .client
        .query_one(
            "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .and_then(|r| r.try_get(0))
        .map_err(Error::db("reading the restoring role's attributes"))?;
    if superuser {
        return Ok(());
    }
    let names: Vec<String> = globals.roles.iter().map(|r| r.name.clone()).collect();
    let have = existing_roles(admin, &names).await?;
    let privileged: Vec<&str> = globals
        .roles
        .iter()
        .filter(|r| !have.contains(&r.name) && (r.superuser || r.replication || r.bypassrls))
        .map(|r| r.name.as_str())
        .collect();
    let spaces: Vec<String> = globals.tablespaces.iter().map(|t| t.name.clone()).collect();
    let have_spaces = existing_tablespaces(admin, &spaces).await?;
    let missing_spaces: Vec<&str> = spaces
        .iter()
        .filter(|t| !have_spaces.contains(*t))
        .map(String::as_str)
        .collect();
    if privileged.is_empty() && missing_spaces.is_empty() {
        return Ok(());
    }
    let mut what = Vec::new();
    if !privileged.is_empty() {
        what.push(format!(
            "role(s) with SUPERUSER, REPLICATION or BYPASSRLS: {}",
            privileged.join(", ")
        ));
    }
    if !missing_spaces.is_empty() {
        what.push(format!("tablespace(s): {}", missing_spaces.join(", ")));
    }
    Err(Error::Refused(format!(
        "--globals would create {}, which needs a superuser; restore as one, or create them first",
        what.join("; ")
    )))
}

/// `--globals`: creates the missing roles and tablespaces. The roles, their
/// settings and comments and the memberships of the roles it creates go in
/// one transaction (all or none); tablespaces, which `CREATE TABLESPACE`
/// makes outside any transaction, one by one after them.
pub async fn create(admin: &Conn, globals: &Globals) -> Result<GlobalsReport> {
    let mut report = GlobalsReport::default();
    let names: Vec<String> = globals.roles.iter().map(|r| r.name.clone()).collect();
    let have = existing_roles(admin, &names).await?;
    let mut batch = String::new();
    for role in &globals.roles {
        if have.contains(&role.name) {
            report.roles_existing.push(role.name.clone());
        } else {
            batch.push_str(&role.create_sql());
            report.roles_created.push(role.name.clone());
        }
    }
    let target = admin.server_version_num().await?;
    let holders: Vec<String> = globals.memberships.iter().map(|m| m.role.clone()).collect();
    let holders = existing_roles(admin, &holders).await?;
    for m in globals.memberships.iter().filter(|m| {
        report.roles_created.contains(&m.member)
            && (holders.contains(&m.role) || report.roles_created.contains(&m.role))
    }) {
        batch.push_str(&m.grant_sql(target));
    }
    if !batch.is_empty() {
        admin.client.batch_execute(&batch).await.map_err(Error::db(
            "creating the backup's roles (--globals; none was created)",
        ))?;
    }
    let spaces: Vec<String> = globals.tablespaces.iter().map(|t| t.name.clone()).collect();
    let have = existing_tablespaces(admin, &spaces).await?;
    for t in &globals.tablespaces {
        if have.contains(&t.name) {
            report.tablespaces_existing.push(t.name.clone());
            continue;
        }
        for sql in [t.create_sql(), t.details_sql()] {
            admin
                .client
                .batch_execute(&sql)
                .await
                .map_err(Error::db(format!("creating tablespace {}", t.name)))?;
        }
        report.tablespaces_created.push(t.name.clone());
    }
    if !report.roles_created.is_empty() {
        tracing::warn!(roles = %report.roles_created.join(", "), "roles created (--globals)");
    }
    Ok(report)
}

/// `--create`, right after creating the database: its owner, connection
/// limit, comment, security labels and privileges.
pub async fn apply_properties(
    admin: &Conn,
    globals: &Globals,
    opts: &RestoreOptions,
) -> Result<()> {
    let name = &opts.db.dbname;
    let sql = globals.database.properties_sql(
        name,
        !opts.omit.owner,
        !opts.omit.acl,
        !opts.omit.comments,
        !opts.omit.security_labels,
    );
    admin
        .client
        .batch_execute(&sql)
        .await
        .map_err(Error::db(format!(
            "setting the properties of database {name}"
        )))
}

/// `--create`, once the restore is done: `ALTER DATABASE ... SET` and the
/// per-role settings of roles the target has.
pub async fn apply_settings(admin: &Conn, globals: &Globals, opts: &RestoreOptions) -> Result<()> {
    let db = &globals.database;
    let name = &opts.db.dbname;
    let mut sql = db.settings_sql(name);
    let roles: Vec<String> = db.role_settings.iter().map(|(r, _)| r.clone()).collect();
    let have = existing_roles(admin, &roles).await?;
    for (role, setting) in &db.role_settings {
        if !have.contains(role) {
            tracing::warn!(role = %role, "role missing in the target: its settings in the database are left out");
            continue;
        }
        sql.extend(DatabaseProps::role_setting_sql(role, name, setting));
    }
    admin
        .client
        .batch_execute(&sql)
        .await
        .map_err(Error::db(format!(
            "applying the settings of database {name}"
        )))
}
