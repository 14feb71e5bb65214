//! Opening a connection: driver config from [`ConnSettings`], TLS chosen by
//! `sslmode`, the connection task spawned, errors mapped to a clear,
//! redacted message.

use super::tls;
use crate::config::{ConnSettings, SslMode};
use crate::error::{Error, Result};
use tokio_postgres::{CancelToken, Client};

/// A live connection and what is needed to cancel its running query.
pub struct Conn {
    pub client: Client,
    pub cancel: CancelToken,
    pub tls: tls::CancelTls,
}

impl Conn {
    /// A handle that can cancel this connection's running query from
    /// another task, even after the connection itself was dropped.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle::Driver {
            token: self.cancel.clone(),
            tls: self.tls.clone(),
        }
    }

    /// The server's `server_version_num` (150004 for 15.4).
    pub async fn server_version_num(&self) -> Result<i32> {
        self.client
            .query_one(
                "SELECT pg_catalog.current_setting('server_version_num')::int4",
                &[],
            )
            .await
            .and_then(|r| r.try_get(0))
            .map_err(Error::db("reading the server version"))
    }
}

/// Cancels a connection's running query. Dropping a COPY stream does not
/// stop the server; this does.
#[derive(Clone)]
pub enum CancelHandle {
    /// A driver connection's.
    Driver {
        token: CancelToken,
        tls: tls::CancelTls,
    },
    /// One of pgkeep's own COPY connections ([`super::wire`]).
    Wire(super::wire::CancelKey),
}

impl CancelHandle {
    pub async fn cancel(&self) {
        let (token, tls) = match self {
            CancelHandle::Wire(key) => return key.cancel().await,
            CancelHandle::Driver { token, tls } => (token, tls),
        };
        let r = match tls {
            tls::CancelTls::None => token.cancel_query(tokio_postgres::NoTls).await,
            tls::CancelTls::Rustls(t) => token.cancel_query(t.clone()).await,
        };
        if let Err(e) = r {
            tracing::debug!(error = %e, "cancel request failed");
        }
    }
}

/// Connects and spawns the connection task.
pub async fn connect(settings: &ConnSettings) -> Result<Conn> {
    let cfg = settings.to_pg_config();
    let target = settings.to_string();
    let map_err = |e: tokio_postgres::Error| Error::Connect {
        target: target.clone(),
        message: crate::config::redact(&crate::error::describe_pg(&e)),
    };
    if settings.sslmode == SslMode::Disable {
        let (client, connection) = cfg.connect(tokio_postgres::NoTls).await.map_err(map_err)?;
        spawn_connection(connection);
        let cancel = client.cancel_token();
        return Ok(Conn {
            client,
            cancel,
            tls: tls::CancelTls::None,
        });
    }
    let connector = tls::make_connector(settings)?;
    let (client, connection) = cfg.connect(connector.clone()).await.map_err(map_err)?;
    spawn_connection(connection);
    let cancel = client.cancel_token();
    Ok(Conn {
        client,
        cancel,
        tls: tls::CancelTls::Rustls(connector),
    })
}

fn spawn_connection<F>(connection: F)
where
    F: std::future::Future<Output = std::result::Result<(), tokio_postgres::Error>>
        + Send
        + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "connection closed with error");
        }
    });
}
