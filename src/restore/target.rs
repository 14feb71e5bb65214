//! The restore target: creating it (`--create`), refusing a non-empty one,
//! and emptying it (`--clean`).

use crate::archive::ManifestHeader;
use crate::config::ConnSettings;
use crate::error::{Error, Result};
use crate::pg::{connect, quote_ident, Conn};

const USER_OBJECTS: &str = "
SELECT
  (SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)')
  + (SELECT count(*) FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))
  + (SELECT count(*) FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)' AND t.typtype IN ('e','d','r','m'))
  + (SELECT count(*) FROM pg_catalog.pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'public') AND n.nspname !~ '^pg_(toast|temp)')
  + (SELECT count(*) FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql')
  + (SELECT count(*) FROM pg_catalog.pg_largeobject_metadata)";

/// Counts user objects in the connected database.
pub async fn count_user_objects(conn: &Conn) -> Result<i64> {
    let row = conn
        .client
        .query_one(USER_OBJECTS, &[])
        .await
        .map_err(Error::db("inspecting the target database"))?;
    row.try_get(0)
        .map_err(Error::db("inspecting the target database"))
}

/// A connection to the target's server outside the target database (its
/// `postgres` database, else `template1`).
pub(crate) async fn admin_connection(settings: &ConnSettings) -> Result<Conn> {
    match connect(&settings.with_dbname("postgres")).await {
        Ok(c) => Ok(c),
        Err(_) => connect(&settings.with_dbname("template1")).await,
    }
}

/// Refuses a target that is the backup's own source: the same cluster (by
/// system identifier) and the same database name, unless `force`. Checked
/// before anything is created, dropped or cleaned. A target whose system
/// identifier cannot be read (no privilege on `pg_control_system()`), or a
/// backup that did not record its source's, cannot be compared: a warning.
pub async fn guard_source(
    settings: &ConnSettings,
    source: &ManifestHeader,
    force: bool,
) -> Result<()> {
    let (source_sysid, source_db) = (
        source.system_identifier.as_deref(),
        source.database.as_str(),
    );
    if settings.dbname != source_db {
        return Ok(());
    }
    let target_sysid = system_identifier(settings).await?;
    match (source_sysid, target_sysid.as_deref()) {
        (Some(a), Some(b)) if a == b => {
            if force {
                tracing::warn!(database = %source_db, "restoring over the backup's own source database (--force-source)");
                Ok(())
            } else {
                Err(Error::Refused(format!(
                    "database {source_db:?} on this cluster (system identifier {a}) is the backup's own source: a restore would overwrite it. Restore into another database or cluster, or give --force-source"
                )))
            }
        }
        (Some(_), Some(_)) => Ok(()),
        _ => {
            tracing::warn!(database = %source_db, "cannot tell whether the target is the backup's source (system identifier unreadable)");
            Ok(())
        }
    }
}

/// Refuses to restore a backup of a newer PostgreSQL major into an older
/// server unless `allow`: its DDL may use syntax and catalog features the
/// older server lacks, and a restore that fails halfway leaves a partial
/// database. A version that cannot be read is not compared.
pub async fn guard_version(admin: &Conn, source: &ManifestHeader, allow: bool) -> Result<()> {
    let Some(from) = major_of(&source.server_version) else {
        return Ok(());
    };
    let target = admin.server_version_num().await?;
    let into = u32::try_from(target / 10000).unwrap_or(0);
    if from <= into {
        return Ok(());
    }
    if allow {
        tracing::warn!(
            source = from,
            target = into,
            "restoring into an older PostgreSQL major (--allow-downgrade)"
        );
        return Ok(());
    }
    Err(Error::Refused(format!(
        "the backup comes from PostgreSQL {from} ({}) and the target server runs PostgreSQL {into}: a newer major's schema may not load into an older server. Restore into PostgreSQL {from} or newer, or give --allow-downgrade to try anyway",
        source.server_version
    )))
}

/// The major of a `server_version` string (`15.4`, `16.1 (Debian ...)`,
/// `18beta1`).
fn major_of(version: &str) -> Option<u32> {
    let digits: String = version.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The system identifier of the server `settings` names, when the role may
/// read it (`pg_control_system()`).
async fn system_identifier(settings: &ConnSettings) -> Result<Option<String>> {
    let admin = admin_connection(settings).await?;
    admin
        .client
        .query_one(
            "SELECT CASE WHEN pg_catalog.has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE') \
             THEN (SELECT s.system_identifier::text FROM pg_catalog.pg_control_system() s) END",
            &[],
        )
        .await
        .and_then(|r| r.try_get(0))
        .map_err(Error::db("reading the target's system identifier"))
}

/// Refuses a drill or benchmark server that is the backup's source cluster
/// (same system identifier) unless `allow`; and one whose identifier, or
/// the source's, is unknown, since then it cannot be told apart. Scratch
/// databases get names of their own, so even an allowed source cluster
/// never has its source database written.
pub async fn guard_cluster(
    settings: &ConnSettings,
    source: &ManifestHeader,
    allow: bool,
) -> Result<()> {
    if allow {
        return Ok(());
    }
    let target = system_identifier(settings).await?;
    match (source.system_identifier.as_deref(), target.as_deref()) {
        (Some(a), Some(b)) if a != b => Ok(()),
        (Some(a), Some(_)) => Err(Error::Refused(format!(
            "the target server is the backup's source cluster (system identifier {a}); use a staging server, or set allow_source_cluster = true in the policy's drill section"
        ))),
        (None, _) => Err(Error::Refused(
            "the backup did not record its source's system identifier (the backup role may not call pg_control_system()), so the target cannot be told apart from the source cluster; set allow_source_cluster = true if the target is a staging server".into(),
        )),
        (_, None) => Err(Error::Refused(
            "cannot read the target server's system identifier (grant EXECUTE on pg_control_system() to the drill's role), so it cannot be told apart from the source cluster; or set allow_source_cluster = true".into(),
        )),
    }
}

/// Detaches and drops the subscriptions of the database `settings` names,
/// if it exists: a database with a subscription cannot be dropped, and a
/// subscription with a slot cannot be dropped without reaching its
/// publisher (restored ones never connected).
pub(crate) async fn drop_subscriptions(settings: &ConnSettings) -> Result<()> {
    let Ok(conn) = connect(settings).await else {
        return Ok(());
    };
    let rows = conn
        .client
        .query(
            "SELECT pg_catalog.quote_ident(subname) FROM pg_catalog.pg_subscription \
             WHERE subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())",
            &[],
        )
        .await
        .map_err(Error::db("listing the database's subscriptions"))?;
    for r in rows {
        let q: String = r
            .try_get(0)
            .map_err(Error::db("listing the database's subscriptions"))?;
        conn.client
            .batch_execute(&format!(
                "ALTER SUBSCRIPTION {q} DISABLE; ALTER SUBSCRIPTION {q} SET (slot_name = NONE); DROP SUBSCRIPTION {q};"
            ))
            .await
            .map_err(Error::db(format!("dropping subscription {q}")))?;
    }
    Ok(())
}

/// Creates the target database (`--create`), dropping it first with `clean`.
pub async fn create_database(settings: &ConnSettings, encoding: &str, clean: bool) -> Result<()> {
    let admin = admin_connection(settings).await?;
    let name = &settings.dbname;
    let exists = admin
        .client
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1",
            &[name],
        )
        .await
        .map_err(Error::db("looking up the target database"))?
        .is_some();
    if exists {
        if !clean {
            return Err(Error::Refused(format!(
                "database {name:?} already exists; drop it, restore into it without --create, or add --clean to drop and recreate it"
            )));
        }
        drop_subscriptions(settings).await?;
        admin
            .client
            .batch_execute(&format!("DROP DATABASE {}", quote_ident(name)))
            .await
            .map_err(Error::db(format!("dropping database {name}")))?;
    }
    admin
        .client
        .batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE template0 ENCODING {}",
            quote_ident(name),
            crate::pg::quote_literal(encoding)
        ))
        .await
        .map_err(Error::db(format!("creating database {name}")))?;
    Ok(())
}

/// Drops every user object of the connected database (`--clean`): other
/// schemas entirely, the contents of `public`, extensions, large objects,
/// and resets default privileges (`ALTER DEFAULT PRIVILEGES`) to the
/// built-in ones — else objects the restore creates (extension functions,
/// tables) would get the previous contents' defaults.
///
/// Default privileges: an entry for a schema only adds grants, so revoking
/// everything it grants removes it; a global entry replaces the built-in
/// default (`acldefault`), so its grants are revoked and the built-in ones
/// granted back, after which the server deletes the entry (it equals the
/// default). Entries of roles the restoring user is not a member of cannot
/// be changed and are left as they are.
/// What `--clean` would drop in the connected database, one line per object
/// (`schema billing`, `table public.users`, `extension pgcrypto`,
/// `3 large objects`), in the order it drops them. Changes nothing.
pub async fn clean_preview(conn: &Conn) -> Result<Vec<String>> {
    let sql = r#"
SELECT 1 AS ord, 'schema ' || pg_catalog.quote_ident(nspname) AS what FROM pg_catalog.pg_namespace
  WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'public') AND nspname !~ '^pg_(toast|temp)'
UNION ALL
SELECT 2, 'extension ' || pg_catalog.quote_ident(extname) FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql'
UNION ALL
SELECT 3, CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                         WHEN 'f' THEN 'foreign table' ELSE 'table' END || ' public.' || pg_catalog.quote_ident(c.relname)
  FROM pg_catalog.pg_class c
  WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r','p','v','m','S','f')
UNION ALL
SELECT 4, CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END || ' ' || p.oid::regprocedure::text
  FROM pg_catalog.pg_proc p WHERE p.pronamespace = 'public'::regnamespace
UNION ALL
SELECT 5, 'type public.' || pg_catalog.quote_ident(t.typname) FROM pg_catalog.pg_type t
  WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e','d','r','c','m')
    AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_catalog.pg_class WHERE oid = t.typrelid) = 'c')
UNION ALL
SELECT 6, count(*) || ' large object(s)' FROM pg_catalog.pg_largeobject_metadata HAVING count(*) > 0
ORDER BY 1, 2"#;
    let rows = conn
        .client
        .query(sql, &[])
        .await
        .map_err(Error::db("listing what --clean would drop"))?;
    rows.iter()
        .map(|r| {
            r.try_get::<_, String>(1)
                .map_err(Error::db("listing what --clean would drop"))
        })
        .collect()
}

pub async fn clean_database(conn: &Conn) -> Result<()> {
    let sql = r#"
DO $pgkeep_clean$
DECLARE r record; g record; alter_default text;
BEGIN
  FOR r IN SELECT nspname FROM pg_catalog.pg_namespace
           WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'public') AND nspname !~ '^pg_(toast|temp)'
  LOOP EXECUTE format('DROP SCHEMA %I CASCADE', r.nspname); END LOOP;
  FOR r IN SELECT extname FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql'
  LOOP EXECUTE format('DROP EXTENSION IF EXISTS %I CASCADE', r.extname); END LOOP;
  FOR r IN SELECT c.relname, c.relkind FROM pg_catalog.pg_class c
           WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r','p','v','m','S','f')
  LOOP
    EXECUTE format('DROP %s IF EXISTS public.%I CASCADE',
      CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                     WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, r.relname);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS sig, p.prokind FROM pg_catalog.pg_proc p
           WHERE p.pronamespace = 'public'::regnamespace
  LOOP
    EXECUTE format('DROP %s IF EXISTS %s CASCADE',
      CASE r.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, r.sig);
  END LOOP;
  FOR r IN SELECT t.typname FROM pg_catalog.pg_type t
           WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e','d','r','c','m')
             AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_catalog.pg_class WHERE oid = t.typrelid) = 'c')
  LOOP EXECUTE format('DROP TYPE IF EXISTS public.%I CASCADE', r.typname); END LOOP;
  PERFORM pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata;
  FOR r IN SELECT d.defaclrole::regrole::text AS role, d.defaclnamespace AS nsp, d.defaclacl AS acl,
                  CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS'
                                       WHEN 'T' THEN 'TYPES' WHEN 'n' THEN 'SCHEMAS' WHEN 'L' THEN 'LARGE OBJECTS' END AS objs,
                  CASE WHEN d.defaclnamespace = 0 THEN pg_catalog.acldefault(
                         CASE d.defaclobjtype WHEN 'S' THEN 's'::"char" ELSE d.defaclobjtype END, d.defaclrole) END AS builtin
           FROM pg_catalog.pg_default_acl d
           WHERE pg_catalog.pg_has_role(d.defaclrole, 'MEMBER')
  LOOP
    CONTINUE WHEN r.objs IS NULL;
    alter_default := format('ALTER DEFAULT PRIVILEGES FOR ROLE %s', r.role)
      || CASE WHEN r.nsp <> 0 THEN format(' IN SCHEMA %s', r.nsp::regnamespace) ELSE '' END;
    FOR g IN SELECT DISTINCT a.grantee FROM pg_catalog.aclexplode(r.acl) a
    LOOP
      EXECUTE format('%s REVOKE ALL ON %s FROM %s', alter_default, r.objs,
        CASE g.grantee WHEN 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END);
    END LOOP;
    FOR g IN SELECT a.grantee, string_agg(a.privilege_type, ', ') AS privs
             FROM pg_catalog.aclexplode(r.builtin) a GROUP BY a.grantee
    LOOP
      EXECUTE format('%s GRANT %s ON %s TO %s', alter_default, g.privs, r.objs,
        CASE g.grantee WHEN 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END);
    END LOOP;
  END LOOP;
END
$pgkeep_clean$"#;
    conn.client
        .batch_execute(sql)
        .await
        .map_err(Error::db("cleaning the target database (--clean)"))
}

#[cfg(test)]
mod tests {
    use super::major_of;

    #[test]
    fn majors_read_from_server_version_strings() {
        assert_eq!(major_of("15.20 (Debian 15.20-0+deb12u1)"), Some(15));
        assert_eq!(major_of("18beta1"), Some(18));
        assert_eq!(major_of("9.6.24"), Some(9));
        assert_eq!(major_of(""), None);
    }
}
