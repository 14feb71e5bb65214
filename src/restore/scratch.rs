//! Scratch databases for drills and benchmarks: a fresh database with a
//! name of its own on a staging server, restored into with `--create`, and
//! dropped at the end whatever happened (a failed check, an error, an
//! interrupt), unless kept on request.

use super::target::admin_connection;
use crate::config::ConnSettings;
use crate::error::{Error, Result};
use crate::pg::quote_ident;

/// A database pgkeep creates for itself on a server.
#[derive(Clone, Debug)]
pub struct Scratch {
    /// The scratch database's connection (the server's, another dbname).
    pub settings: ConnSettings,
}

impl Scratch {
    /// `<prefix>_<tag>` on the server of `server`, lower-cased with
    /// everything but letters, digits and `_` turned into `_`, so it needs
    /// no quoting in `psql`.
    pub fn on(server: &ConnSettings, prefix: &str, tag: &str) -> Scratch {
        let name: String = format!("{prefix}_{tag}")
            .chars()
            .map(|c| match c.to_ascii_lowercase() {
                c @ ('a'..='z' | '0'..='9' | '_') => c,
                _ => '_',
            })
            .take(63)
            .collect();
        Scratch {
            settings: server.with_dbname(&name),
        }
    }

    pub fn name(&self) -> &str {
        &self.settings.dbname
    }

    /// Creates the database (refused when one of that name exists).
    pub async fn create(&self, encoding: &str) -> Result<()> {
        super::target::create_database(&self.settings, encoding, false).await
    }

    /// Drops the database if it exists, ending sessions still connected
    /// (an application's test run may leave some).
    pub async fn drop_database(&self) -> Result<()> {
        let admin = admin_connection(&self.settings).await?;
        let name = self.name();
        super::target::drop_subscriptions(&self.settings).await?;
        let version = admin.server_version_num().await?;
        let sql = if version >= 130000 {
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name))
        } else {
            admin
                .client
                .execute(
                    "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND pid <> pg_catalog.pg_backend_pid()",
                    &[&name],
                )
                .await
                .map_err(Error::db(format!("ending sessions on {name}")))?;
            format!("DROP DATABASE IF EXISTS {}", quote_ident(name))
        };
        admin
            .client
            .batch_execute(&sql)
            .await
            .map_err(Error::db(format!("dropping scratch database {name}")))
    }

    /// Drops the database, logging (never raising) a failure: for cleanup
    /// after another outcome that must stand. Returns whether it is gone.
    pub async fn drop_quietly(&self) -> bool {
        match self.drop_database().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(database = %self.name(), error = %e, "could not drop the scratch database; drop it by hand");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_need_no_quoting() {
        let server = ConnSettings::resolve_with("host=h user=u dbname=prod", &|_| None).unwrap();
        let s = Scratch::on(&server, "pgkeep_drill", "20261207T060000Z-9F3a");
        assert_eq!(s.name(), "pgkeep_drill_20261207t060000z_9f3a");
        assert_eq!(s.settings.hosts, server.hosts);
        let long = Scratch::on(&server, "p", &"x".repeat(100));
        assert_eq!(long.name().len(), 63);
    }
}
