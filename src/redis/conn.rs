//! A connection to a Redis server: TCP, or TLS through rustls (`rediss`),
//! the login (`AUTH`), commands and pipelines over [`resp`](super::resp),
//! and the raw reads a snapshot transfer needs. Errors name the server
//! without its password.

use super::resp::{self, Reply};
use super::target::RedisTarget;
use crate::error::{Error, Result};
use bytes::{Buf, BytesMut};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long connecting (TCP, TLS and login) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Bytes asked of the socket at once.
const READ_SIZE: usize = 64 << 10;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One connection.
pub struct RedisConn {
    io: Box<dyn Io>,
    /// Bytes read and not yet consumed.
    buf: BytesMut,
    /// The server, for messages (no password).
    pub target: String,
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisConn({})", self.target)
    }
}

fn connect_error(t: &RedisTarget, message: impl Into<String>) -> Error {
    Error::Connect {
        target: t.to_string(),
        message: message.into(),
    }
}

impl RedisConn {
    /// Connects, logs in and selects the URL's database.
    pub async fn connect(t: &RedisTarget) -> Result<RedisConn> {
        tokio::time::timeout(CONNECT_TIMEOUT, Self::connect_inner(t))
            .await
            .map_err(|_| connect_error(t, format!("no answer within {CONNECT_TIMEOUT:?}")))?
    }

    async fn connect_inner(t: &RedisTarget) -> Result<RedisConn> {
        let tcp = tokio::net::TcpStream::connect((t.host.as_str(), t.port))
            .await
            .map_err(|e| connect_error(t, e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = if t.tls {
            let config = tls_config(t)?;
            let name = ServerName::try_from(t.host.clone())
                .map_err(|e| connect_error(t, format!("TLS server name: {e}")))?;
            let s = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(|e| connect_error(t, format!("TLS handshake: {e}")))?;
            Box::new(s)
        } else {
            Box::new(tcp)
        };
        let mut c = RedisConn {
            io,
            buf: BytesMut::with_capacity(READ_SIZE),
            target: t.to_string(),
        };
        if let Some(pw) = &t.password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(u) = &t.user {
                args.push(u.as_bytes());
            }
            args.push(pw.as_bytes());
            // The server never echoes the password in its reply.
            if let Reply::Error(e) = c.call(&args).await? {
                return Err(connect_error(t, format!("login refused: {e}")));
            }
        }
        let ping = c.call(&[b"PING"]).await?;
        if let Reply::Error(e) = ping {
            return Err(connect_error(t, e));
        }
        if t.db != 0 {
            c.command(&[b"SELECT", t.db.to_string().as_bytes()]).await?;
        }
        Ok(c)
    }

    /// Sends one command without reading its reply (pipelining).
    pub async fn send(&mut self, args: &[&[u8]]) -> Result<()> {
        let mut out = Vec::with_capacity(64);
        resp::encode(args, &mut out);
        self.io
            .write_all(&out)
            .await
            .map_err(|e| self.io_error("sending a command", e))
    }

    /// Sends commands in one write.
    pub async fn send_all(&mut self, cmds: &[Vec<&[u8]>]) -> Result<()> {
        let mut out = Vec::with_capacity(64 * cmds.len());
        for c in cmds {
            resp::encode(c, &mut out);
        }
        self.io
            .write_all(&out)
            .await
            .map_err(|e| self.io_error("sending commands", e))
    }

    /// Reads the next reply, errors included as [`Reply::Error`].
    pub async fn reply(&mut self) -> Result<Reply> {
        loop {
            match resp::parse(&self.buf) {
                Ok(Some((r, used))) => {
                    self.buf.advance(used);
                    return Ok(r);
                }
                Ok(None) => {
                    if self.fill().await? == 0 {
                        return Err(self.closed("reading a reply"));
                    }
                }
                Err(e) => {
                    return Err(Error::Redis {
                        context: format!("reply from {}", self.target),
                        message: format!("protocol error: {e}"),
                    })
                }
            }
        }
    }

    /// One command and its reply, errors included as [`Reply::Error`].
    pub async fn call(&mut self, args: &[&[u8]]) -> Result<Reply> {
        self.send(args).await?;
        self.reply().await
    }

    /// One command; an error reply becomes [`Error::Redis`].
    pub async fn command(&mut self, args: &[&[u8]]) -> Result<Reply> {
        match self.call(args).await? {
            Reply::Error(e) => Err(Error::Redis {
                context: String::from_utf8_lossy(args.first().copied().unwrap_or_default())
                    .into_owned(),
                message: e,
            }),
            r => Ok(r),
        }
    }

    /// `INFO section` as `key → value`.
    pub async fn info(&mut self, section: &str) -> Result<Vec<(String, String)>> {
        let r = self.command(&[b"INFO", section.as_bytes()]).await?;
        let text = r.text().unwrap_or_default();
        Ok(text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect())
    }

    /// Reads more bytes into the buffer; 0 at end of stream.
    pub async fn fill(&mut self) -> Result<usize> {
        self.buf.reserve(READ_SIZE);
        self.io
            .read_buf(&mut self.buf)
            .await
            .map_err(|e| self.io_error("reading", e))
    }

    /// The bytes read and not yet consumed.
    pub fn buffered(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    pub fn closed(&self, doing: &str) -> Error {
        Error::Redis {
            context: format!("{doing} from {}", self.target),
            message: "the server closed the connection".into(),
        }
    }

    fn io_error(&self, doing: &str, e: std::io::Error) -> Error {
        Error::Redis {
            context: format!("{doing} ({})", self.target),
            message: e.to_string(),
        }
    }
}

/// rustls settings of a `rediss` target: the CA file's roots (or the
/// system's), an optional client certificate.
fn tls_config(t: &RedisTarget) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match &t.tls_ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| Error::Config(format!("reading tls_ca {}: {e}", path.display())))?;
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| Error::Config(format!("tls_ca {}: {e}", path.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err(Error::Config(
                    "rediss: no CA certificates: give tls_ca=FILE (or --redis-tls-ca)".into(),
                ));
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS setup: {e}")))?
        .with_root_certificates(roots);
    match (&t.tls_cert, &t.tls_key) {
        (Some(cert), Some(key)) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<std::result::Result<_, _>>())
                .map_err(|e| Error::Config(format!("reading tls_cert {}: {e}", cert.display())))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| Error::Config(format!("reading tls_key {}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| Error::Config(format!("TLS client certificate: {e}")))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(Error::Config(
            "rediss: tls_cert and tls_key go together".into(),
        )),
    }
}
