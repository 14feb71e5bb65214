//! Globals: the cluster-wide objects a database's contents need, read at
//! backup time and restored only when asked. Every backup records the roles
//! its objects need (owners, grantees, policy roles, user-mapping users)
//! with their attributes, memberships, settings, comments and security
//! labels, the tablespaces its relations use, and the database's own
//! properties (owner, connection limit, comment, security labels, privileges, `ALTER DATABASE ... SET`, `ALTER
//! ROLE ... IN DATABASE ... SET`); with `all` (`backup --globals`) every
//! role and tablespace of the cluster. Password hashes only with
//! `passwords` (`--with-role-passwords`, encrypted backups only).

use super::sql::{query, quote_ident, quote_literal, RowExt};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use tokio_postgres::Client;

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Globals {
    /// Every role of the cluster (`backup --globals`), or only the needed ones.
    pub all: bool,
    pub roles: Vec<Role>,
    pub memberships: Vec<Membership>,
    pub tablespaces: Vec<Tablespace>,
    pub database: DatabaseProps,
    pub needs: RoleNeeds,
}

/// A role as `CREATE ROLE` makes it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub superuser: bool,
    pub inherit: bool,
    pub createrole: bool,
    pub createdb: bool,
    pub login: bool,
    pub replication: bool,
    pub bypassrls: bool,
    pub connlimit: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    /// The password hash (SCRAM or MD5), only with `--with-role-passwords`
    /// and only in an encrypted manifest body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<SecurityLabel>,
    /// `ALTER ROLE ... SET` settings for every database (`name=value`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<String>,
}

/// `GRANT role TO member WITH ADMIN ..., INHERIT ..., SET ...` (the
/// last two from PostgreSQL 16; absent before).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub role: String,
    pub member: String,
    pub admin: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inherit: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Tablespace {
    pub name: String,
    pub owner: String,
    pub location: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    pub acl: Vec<String>,
    pub acl_base: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<SecurityLabel>,
}

/// A security label on a shared object (`pg_shseclabel`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SecurityLabel {
    pub provider: String,
    pub label: String,
}

/// `SECURITY LABEL` statements for `on` (`ROLE name`, quoted).
fn labels_sql(on: &str, labels: &[SecurityLabel]) -> String {
    labels
        .iter()
        .map(|l| {
            format!(
                "SECURITY LABEL FOR {} ON {on} IS {};\n",
                quote_ident(&l.provider),
                quote_literal(&l.label)
            )
        })
        .collect()
}

/// The labels of a row read with [`SHARED_LABELS`]' columns.
fn labels(row: &tokio_postgres::Row) -> Result<Vec<SecurityLabel>> {
    let providers: Vec<String> = row.val("label_providers")?;
    let labels: Vec<String> = row.val("labels")?;
    Ok(providers
        .into_iter()
        .zip(labels)
        .map(|(provider, label)| SecurityLabel { provider, label })
        .collect())
}

/// What `CREATE DATABASE` does not carry, applied after it (`--create`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct DatabaseProps {
    pub owner: String,
    pub connlimit: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<SecurityLabel>,
    pub acl: Vec<String>,
    pub acl_base: Vec<String>,
    /// `ALTER DATABASE ... SET` (`name=value`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<String>,
    /// `ALTER ROLE role IN DATABASE ... SET`: (role, `name=value`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role_settings: Vec<(String, String)>,
}

/// The roles the backup's objects name, by what names them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleNeeds {
    /// Owners (left out by `--no-owner`).
    pub owners: Vec<String>,
    /// Grantees and grantors of privileges (left out by `--no-acl`).
    pub privileges: Vec<String>,
    /// Roles named by policies and user mappings (always needed).
    pub others: Vec<String>,
    /// The database's owner (needed by `--create` without `--no-owner`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub database_owner: Vec<String>,
    /// The roles of the database's privileges (`--create` without
    /// `--no-acl`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub database_privileges: Vec<String>,
}

impl RoleNeeds {
    /// The roles a restore leaving out owners and/or privileges needs, and
    /// the database's own with `database` (`--create`).
    pub fn for_restore(&self, owners: bool, privileges: bool, database: bool) -> BTreeSet<&str> {
        let mut out: BTreeSet<&str> = self.others.iter().map(String::as_str).collect();
        if database && owners {
            out.extend(self.database_owner.iter().map(String::as_str));
        }
        if database && privileges {
            out.extend(self.database_privileges.iter().map(String::as_str));
        }
        if owners {
            out.extend(self.owners.iter().map(String::as_str));
        }
        if privileges {
            out.extend(self.privileges.iter().map(String::as_str));
        }
        out
    }
}

/// What to read beyond what the objects need.
#[derive(Clone, Copy, Debug, Default)]
pub struct GlobalsOptions {
    /// Every role and tablespace of the cluster.
    pub all: bool,
    /// Role password hashes (needs a superuser and an encrypted backup).
    pub passwords: bool,
}

const NEEDS: &str = "SELECT DISTINCT CASE WHEN d.dbid = 0 THEN 'D' || d.deptype::text ELSE d.deptype::text END AS deptype, \
  r.rolname::text AS role \
  FROM pg_catalog.pg_shdepend d JOIN pg_catalog.pg_roles r ON r.oid = d.refobjid \
  WHERE d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass \
  AND (d.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()) \
    OR (d.dbid = 0 AND d.classid = 'pg_catalog.pg_database'::pg_catalog.regclass \
      AND d.objid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))) \
  UNION SELECT 'u', m.usename::text FROM pg_catalog.pg_user_mappings m WHERE m.umuser <> 0 \
  UNION SELECT 'Do', pg_catalog.pg_get_userbyid(d.datdba)::text FROM pg_catalog.pg_database d \
    WHERE d.datname = pg_catalog.current_database() \
  ORDER BY 1, 2";

const ROLES: &str = "SELECT r.rolname::text AS name, r.rolsuper, r.rolinherit, r.rolcreaterole, \
  r.rolcreatedb, r.rolcanlogin, r.rolreplication, r.rolbypassrls, r.rolconnlimit, \
  r.rolvaliduntil::text AS valid_until, \
  pg_catalog.shobj_description(r.oid, 'pg_authid') AS comment, {labels}, \
  COALESCE((SELECT s.setconfig::text[] FROM pg_catalog.pg_db_role_setting s \
     WHERE s.setrole = r.oid AND s.setdatabase = 0), '{}') AS settings \
  FROM pg_catalog.pg_roles r WHERE r.rolname !~ '^pg_' AND ($1 OR r.rolname = ANY($2)) ORDER BY 1";

const PASSWORDS: &str = "SELECT a.rolname::text AS name, a.rolpassword AS password \
  FROM pg_catalog.pg_authid a WHERE a.rolname = ANY($1) AND a.rolpassword IS NOT NULL";

/// One row per (role, member): from 16 a membership can be granted by
/// several grantors, each with its own options; any of them gives it.
const MEMBERSHIPS: &str = "SELECT r.rolname::text AS role, m.rolname::text AS member, \
  pg_catalog.bool_or(am.admin_option) AS admin, \
  pg_catalog.bool_or((pg_catalog.to_jsonb(am)->>'inherit_option')::bool) AS inherit, \
  pg_catalog.bool_or((pg_catalog.to_jsonb(am)->>'set_option')::bool) AS set \
  FROM pg_catalog.pg_auth_members am JOIN pg_catalog.pg_roles r ON r.oid = am.roleid \
  JOIN pg_catalog.pg_roles m ON m.oid = am.member WHERE m.rolname = ANY($1) \
  GROUP BY 1, 2 ORDER BY 1, 2";

const TABLESPACES: &str = "SELECT t.spcname::text AS name, pg_catalog.pg_get_userbyid(t.spcowner)::text AS owner, \
  pg_catalog.pg_tablespace_location(t.oid) AS location, COALESCE(t.spcoptions, '{}')::text[] AS options, \
  COALESCE(t.spcacl, pg_catalog.acldefault('t', t.spcowner))::text[] AS acl, \
  pg_catalog.acldefault('t', t.spcowner)::text[] AS acl_base, \
  pg_catalog.shobj_description(t.oid, 'pg_tablespace') AS comment, {labels} \
  FROM pg_catalog.pg_tablespace t WHERE t.spcname NOT IN ('pg_default', 'pg_global') \
  AND ($1 OR t.oid IN (SELECT c.reltablespace FROM pg_catalog.pg_class c \
    UNION SELECT d.dattablespace FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())) \
  ORDER BY 1";

const DATABASE: &str =
    "SELECT pg_catalog.pg_get_userbyid(d.datdba)::text AS owner, d.datconnlimit, \
  pg_catalog.shobj_description(d.oid, 'pg_database') AS comment, {labels}, \
  COALESCE(d.datacl, pg_catalog.acldefault('d', d.datdba))::text[] AS acl, \
  pg_catalog.acldefault('d', d.datdba)::text[] AS acl_base, \
  COALESCE((SELECT s.setconfig::text[] FROM pg_catalog.pg_db_role_setting s \
     WHERE s.setrole = 0 AND s.setdatabase = d.oid), '{}') AS settings \
  FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()";

/// The columns `label_providers` and `labels` of the shared object `{oid}`
/// of catalog `{catalog}`, in provider order.
const SHARED_LABELS: &str = "ARRAY(SELECT l.provider FROM pg_catalog.pg_shseclabel l \
  WHERE l.objoid = {oid} AND l.classoid = 'pg_catalog.{catalog}'::pg_catalog.regclass ORDER BY 1) AS label_providers, \
  ARRAY(SELECT l.label FROM pg_catalog.pg_shseclabel l \
  WHERE l.objoid = {oid} AND l.classoid = 'pg_catalog.{catalog}'::pg_catalog.regclass ORDER BY l.provider) AS labels";

/// `sql` with its `{labels}` columns for `oid` of `catalog`.
fn with_labels(sql: &str, oid: &str, catalog: &str) -> String {
    sql.replace(
        "{labels}",
        &SHARED_LABELS
            .replace("{oid}", oid)
            .replace("{catalog}", catalog),
    )
}

const ROLE_SETTINGS: &str = "SELECT r.rolname::text AS role, s.setconfig::text[] AS settings \
  FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_roles r ON r.oid = s.setrole \
  WHERE s.setdatabase = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()) \
  ORDER BY 1";

/// Reads the globals of the connected database; `owners` are the owners
/// the TOC names (the bootstrap superuser is in no `pg_shdepend` row).
pub async fn read(client: &Client, opts: GlobalsOptions, owners: &[&str]) -> Result<Globals> {
    let mut needs = RoleNeeds::default();
    let mut owner_set: BTreeSet<String> = owners.iter().map(|s| s.to_string()).collect();
    let mut privileges = BTreeSet::new();
    let mut others = BTreeSet::new();
    let (mut db_owner, mut db_privileges) = (BTreeSet::new(), BTreeSet::new());
    for row in query(client, "roles the objects need", NEEDS, &[]).await? {
        let role: String = row.val("role")?;
        match row.val::<String>("deptype")?.as_str() {
            "o" => owner_set.insert(role),
            "a" | "i" => privileges.insert(role),
            "Do" => db_owner.insert(role),
            d if d.starts_with('D') => db_privileges.insert(role),
            _ => others.insert(role),
        };
    }
    needs.owners = owner_set.into_iter().collect();
    needs.privileges = privileges.into_iter().collect();
    needs.others = others.into_iter().collect();
    needs.database_owner = db_owner.into_iter().collect();
    needs.database_privileges = db_privileges.into_iter().collect();
    let mut tablespaces = Vec::new();
    for row in query(
        client,
        "tablespaces",
        &with_labels(TABLESPACES, "t.oid", "pg_tablespace"),
        &[&opts.all],
    )
    .await?
    {
        tablespaces.push(Tablespace {
            name: row.val("name")?,
            owner: row.val("owner")?,
            location: row.val("location")?,
            options: row.val("options")?,
            acl: row.val("acl")?,
            acl_base: row.val("acl_base")?,
            comment: row.val("comment")?,
            labels: labels(&row)?,
        });
    }
    // The tablespaces' owners too: `--globals` creates them first.
    let mut wanted: BTreeSet<String> = needs
        .for_restore(true, true, true)
        .into_iter()
        .map(str::to_string)
        .collect();
    wanted.extend(tablespaces.iter().map(|t| t.owner.clone()));
    let wanted: Vec<String> = wanted.into_iter().collect();

    let mut roles = Vec::new();
    for row in query(
        client,
        "roles",
        &with_labels(ROLES, "r.oid", "pg_authid"),
        &[&opts.all, &wanted],
    )
    .await?
    {
        roles.push(Role {
            name: row.val("name")?,
            superuser: row.val("rolsuper")?,
            inherit: row.val("rolinherit")?,
            createrole: row.val("rolcreaterole")?,
            createdb: row.val("rolcreatedb")?,
            login: row.val("rolcanlogin")?,
            replication: row.val("rolreplication")?,
            bypassrls: row.val("rolbypassrls")?,
            connlimit: row.val("rolconnlimit")?,
            valid_until: row.val("valid_until")?,
            password: None,
            comment: row.val("comment")?,
            labels: labels(&row)?,
            settings: row.val("settings")?,
        });
    }
    let names: Vec<String> = roles.iter().map(|r| r.name.clone()).collect();
    if opts.passwords {
        let rows = client.query(PASSWORDS, &[&names]).await.map_err(|e| {
            Error::Config(format!(
                "--with-role-passwords reads pg_authid, which needs a superuser: {}",
                crate::error::describe_pg(&e)
            ))
        })?;
        for row in rows {
            let name: String = row.val("name")?;
            let hash: String = row.val("password")?;
            if let Some(r) = roles.iter_mut().find(|r| r.name == name) {
                r.password = Some(hash);
            }
        }
    }
    let mut memberships = Vec::new();
    for row in query(client, "role memberships", MEMBERSHIPS, &[&names]).await? {
        memberships.push(Membership {
            role: row.val("role")?,
            member: row.val("member")?,
            admin: row.val("admin")?,
            inherit: row.val("inherit")?,
            set: row.val("set")?,
        });
    }
    let row = query(
        client,
        "database properties",
        &with_labels(DATABASE, "d.oid", "pg_database"),
        &[],
    )
    .await?
    .into_iter()
    .next()
    .ok_or_else(|| Error::Internal("the connected database is not in pg_database".into()))?;
    let mut database = DatabaseProps {
        owner: row.val("owner")?,
        connlimit: row.val("datconnlimit")?,
        comment: row.val("comment")?,
        labels: labels(&row)?,
        acl: row.val("acl")?,
        acl_base: row.val("acl_base")?,
        settings: row.val("settings")?,
        role_settings: Vec::new(),
    };
    for row in query(client, "role settings in the database", ROLE_SETTINGS, &[]).await? {
        let role: String = row.val("role")?;
        for s in row.val::<Vec<String>>("settings")? {
            database.role_settings.push((role.clone(), s));
        }
    }
    Ok(Globals {
        all: opts.all,
        roles,
        memberships,
        tablespaces,
        database,
        needs,
    })
}

impl Role {
    /// `CREATE ROLE` with every attribute, then its settings and comment.
    pub fn create_sql(&self) -> String {
        let q = quote_ident(&self.name);
        let flag = |on: bool, name: &str| {
            if on {
                format!(" {name}")
            } else {
                format!(" NO{name}")
            }
        };
        let mut sql = format!(
            "CREATE ROLE {q} WITH{}{}{}{}{}{}{} CONNECTION LIMIT {}",
            flag(self.superuser, "SUPERUSER"),
            flag(self.inherit, "INHERIT"),
            flag(self.createrole, "CREATEROLE"),
            flag(self.createdb, "CREATEDB"),
            flag(self.login, "LOGIN"),
            flag(self.replication, "REPLICATION"),
            flag(self.bypassrls, "BYPASSRLS"),
            self.connlimit
        );
        if let Some(p) = &self.password {
            sql.push_str(&format!(" PASSWORD {}", quote_literal(p)));
        }
        if let Some(v) = &self.valid_until {
            sql.push_str(&format!(" VALID UNTIL {}", quote_literal(v)));
        }
        sql.push_str(";\n");
        for s in self.settings.iter().filter_map(|s| setting_sql(s)) {
            sql.push_str(&format!("ALTER ROLE {q} SET {s};\n"));
        }
        if let Some(c) = &self.comment {
            sql.push_str(&format!("COMMENT ON ROLE {q} IS {};\n", quote_literal(c)));
        }
        sql.push_str(&labels_sql(&format!("ROLE {q}"), &self.labels));
        sql
    }
}

impl Membership {
    /// The grant for a server of `target_version` (`server_version_num`):
    /// with its INHERIT and SET options from 16 when the source had them.
    pub fn grant_sql(&self, target_version: i32) -> String {
        let (role, member) = (quote_ident(&self.role), quote_ident(&self.member));
        match (self.inherit, self.set) {
            (Some(inherit), Some(set)) if target_version >= 160000 => format!(
                "GRANT {role} TO {member} WITH ADMIN {}, INHERIT {inherit}, SET {set};\n",
                self.admin
            ),
            _ => format!(
                "GRANT {role} TO {member}{};\n",
                if self.admin { " WITH ADMIN OPTION" } else { "" }
            ),
        }
    }
}

impl Tablespace {
    /// `CREATE TABLESPACE` (which runs outside a transaction, alone).
    pub fn create_sql(&self) -> String {
        format!(
            "CREATE TABLESPACE {} OWNER {} LOCATION {}",
            quote_ident(&self.name),
            quote_ident(&self.owner),
            quote_literal(&self.location)
        )
    }

    /// Options, comment and privileges, after it was created.
    pub fn details_sql(&self) -> String {
        let q = quote_ident(&self.name);
        let mut sql = String::new();
        if !self.options.is_empty() {
            sql.push_str(&format!(
                "ALTER TABLESPACE {q} SET ({});\n",
                self.options.join(", ")
            ));
        }
        if let Some(c) = &self.comment {
            sql.push_str(&format!(
                "COMMENT ON TABLESPACE {q} IS {};\n",
                quote_literal(c)
            ));
        }
        sql.push_str(&labels_sql(&format!("TABLESPACE {q}"), &self.labels));
        sql.push_str(&super::acl::commands(
            &self.acl,
            &self.acl_base,
            &self.owner,
            &format!("TABLESPACE {q}"),
            None,
            "",
        ));
        sql
    }
}

impl DatabaseProps {
    /// What `pg_dump --create` sets on the database `name` after creating
    /// it, leaving out owner, privileges, comment or security labels as the
    /// restore does; the settings are [`settings_sql`](Self::settings_sql).
    pub fn properties_sql(
        &self,
        name: &str,
        owner: bool,
        privileges: bool,
        comment: bool,
        labels: bool,
    ) -> String {
        let q = quote_ident(name);
        let mut sql = String::new();
        if owner {
            sql.push_str(&format!(
                "ALTER DATABASE {q} OWNER TO {};\n",
                quote_ident(&self.owner)
            ));
        }
        if self.connlimit != -1 {
            sql.push_str(&format!(
                "ALTER DATABASE {q} CONNECTION LIMIT = {};\n",
                self.connlimit
            ));
        }
        if let Some(c) = self.comment.as_ref().filter(|_| comment) {
            sql.push_str(&format!(
                "COMMENT ON DATABASE {q} IS {};\n",
                quote_literal(c)
            ));
        }
        if labels {
            sql.push_str(&labels_sql(&format!("DATABASE {q}"), &self.labels));
        }
        if privileges {
            sql.push_str(&super::acl::commands(
                &self.acl,
                &self.acl_base,
                &self.owner,
                &format!("DATABASE {q}"),
                None,
                "",
            ));
        }
        sql
    }

    /// `ALTER DATABASE name SET ...` for each setting.
    pub fn settings_sql(&self, name: &str) -> String {
        let q = quote_ident(name);
        self.settings
            .iter()
            .filter_map(|s| setting_sql(s))
            .map(|s| format!("ALTER DATABASE {q} SET {s};\n"))
            .collect()
    }

    /// `ALTER ROLE role IN DATABASE name SET ...` for one role's settings.
    pub fn role_setting_sql(role: &str, name: &str, setting: &str) -> Option<String> {
        Some(format!(
            "ALTER ROLE {} IN DATABASE {} SET {};\n",
            quote_ident(role),
            quote_ident(name),
            setting_sql(setting)?
        ))
    }
}

/// The value part of a `name=value` setting as `SET name TO ...` takes it:
/// list settings (`search_path` and the like) as stored, the others as a
/// literal.
pub fn setting_sql(setting: &str) -> Option<String> {
    let (name, value) = setting.split_once('=')?;
    const LISTS: [&str; 6] = [
        "search_path",
        "temp_tablespaces",
        "session_preload_libraries",
        "local_preload_libraries",
        "shared_preload_libraries",
        "unix_socket_directories",
    ];
    let value = if LISTS.contains(&name.to_ascii_lowercase().as_str()) {
        list_elements(value)
            .iter()
            .map(|e| quote_literal(e))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        quote_literal(value)
    };
    Some(format!("{} TO {value}", quote_ident(name)))
}

/// The elements of a list setting as stored (`app, "my schema"`, `""`):
/// split at commas outside double quotes, each unquoted.
fn list_elements(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur).trim().to_string()),
            c if c.is_whitespace() && !quoted && cur.is_empty() => {}
            c => cur.push(c),
        }
    }
    out.push(cur.trim_end().to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_keep_lists_and_quote_values() {
        assert_eq!(
            setting_sql("search_path=app, \"my schema\"").as_deref(),
            Some("search_path TO 'app', 'my schema'")
        );
        assert_eq!(
            setting_sql("search_path=\"\"").as_deref(),
            Some("search_path TO ''")
        );
        assert_eq!(
            setting_sql("statement_timeout=5s").as_deref(),
            Some("statement_timeout TO '5s'")
        );
        assert_eq!(
            setting_sql("work_mem=it's").as_deref(),
            Some("work_mem TO 'it''s'")
        );
        assert_eq!(setting_sql("no equals sign"), None);
    }

    #[test]
    fn needs_follow_what_the_restore_leaves_out() {
        let n = RoleNeeds {
            owners: vec!["own".into()],
            privileges: vec!["reader".into()],
            others: vec!["policy_role".into()],
            database_owner: vec!["db_owner".into()],
            database_privileges: vec!["db_reader".into()],
        };
        assert_eq!(
            n.for_restore(false, false, false)
                .into_iter()
                .collect::<Vec<_>>(),
            ["policy_role"]
        );
        assert_eq!(n.for_restore(true, true, false).len(), 3);
        assert!(n.for_restore(true, false, true).contains("db_owner"));
        assert!(!n.for_restore(false, true, true).contains("db_owner"));
        assert!(n.for_restore(false, true, true).contains("db_reader"));
    }

    #[test]
    fn memberships_carry_their_options_to_16_and_later() {
        let m = Membership {
            role: "admins".into(),
            member: "alice".into(),
            admin: false,
            inherit: Some(false),
            set: Some(true),
        };
        assert_eq!(
            m.grant_sql(170000),
            "GRANT admins TO alice WITH ADMIN false, INHERIT false, SET true;\n"
        );
        assert_eq!(m.grant_sql(150000), "GRANT admins TO alice;\n");
    }
}
