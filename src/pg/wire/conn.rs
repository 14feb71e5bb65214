//! pgkeep's own connection for the COPY-out sessions of a backup: the
//! socket (TCP or Unix), TLS negotiation per `sslmode`, the startup and the
//! login (cleartext, MD5, SCRAM-SHA-256), simple queries, `COPY ... TO
//! STDOUT` read straight from the read buffer, and the cancel request.
//! Only what a worker session needs; everything else uses the driver.

use super::message::{self, ProtocolError, ServerError, Span, COPY_DATA};
use crate::config::{ConnSettings, SslMode};
use crate::error::{Error, Result};
use bytes::{Buf, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::{self, sasl};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes asked of the socket at once.
const READ_SIZE: usize = 256 << 10;
/// How long a cancel request may take before it is given up.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(10);
/// `connect_timeout` when the settings give none (as the driver's).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Why a step failed, before it gets its context.
#[derive(Debug)]
enum Fault {
    Io(std::io::Error),
    Protocol(ProtocolError),
    Server(ServerError),
    /// The connection is unusable: a COPY was left unfinished.
    Broken,
    /// pgkeep cannot go on with what the server asks or offers.
    Refused(&'static str),
}

impl From<std::io::Error> for Fault {
    fn from(e: std::io::Error) -> Fault {
        Fault::Io(e)
    }
}

impl From<ProtocolError> for Fault {
    fn from(e: ProtocolError) -> Fault {
        Fault::Protocol(e)
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                f.write_str("the server closed the connection")
            }
            Fault::Io(e) => write!(f, "connection error: {e}"),
            Fault::Protocol(e) => write!(f, "protocol error: {e}"),
            Fault::Server(e) => e.fmt(f),
            Fault::Broken => f.write_str("connection left in the middle of a COPY"),
            Fault::Refused(why) => f.write_str(why),
        }
    }
}

impl Fault {
    fn into_error(self, context: &str) -> Error {
        Error::Wire {
            context: context.to_string(),
            code: match &self {
                Fault::Server(e) => Some(e.code.clone()),
                _ => None,
            },
            message: crate::config::redact(&self.to_string()),
        }
    }
}

/// Where a connection goes.
#[derive(Clone, Debug)]
enum Addr {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

/// The TLS a connection asks for.
#[derive(Clone)]
enum Tls {
    Off,
    Prefer(Arc<ClientConfig>),
    Require(Arc<ClientConfig>),
}

/// What cancelling a connection's running query needs: where it went,
/// whether it used TLS, and its key.
#[derive(Clone)]
pub struct CancelKey {
    addr: Addr,
    tls: Tls,
    process_id: i32,
    secret: i32,
}

impl CancelKey {
    /// Asks the server to cancel the query; failures are only logged (the
    /// caller is already ending the connection).
    pub async fn cancel(&self) {
        let r = tokio::time::timeout(CANCEL_TIMEOUT, async {
            let (mut io, _) = open(&self.addr, &self.tls).await?;
            let mut b = BytesMut::new();
            frontend::cancel_request(self.process_id, self.secret, &mut b);
            io.write_all(&b).await?;
            io.flush().await?;
            // The server closes the connection once it has the request.
            let mut end = [0u8; 1];
            let _ = io.read(&mut end).await;
            Ok::<(), Fault>(())
        })
        .await;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "cancel request failed"),
            Err(_) => tracing::debug!("cancel request timed out"),
        }
    }
}

/// One connection.
pub struct WireConn {
    io: Box<dyn Io>,
    /// Bytes read and not yet consumed.
    buf: BytesMut,
    /// A message being written.
    out: BytesMut,
    key: CancelKey,
    /// A COPY was dropped before its end: nothing more can be sent.
    broken: bool,
}

impl std::fmt::Debug for WireConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WireConn(pid {})", self.key.process_id)
    }
}

/// The addresses to try, in order: each host with its port (one port for
/// all, one each, or 5432), a `/` host being a Unix socket directory.
fn addresses(settings: &ConnSettings) -> Vec<Addr> {
    let hosts: Vec<String> = if settings.hosts.is_empty() {
        vec!["localhost".into()]
    } else {
        settings.hosts.clone()
    };
    hosts
        .into_iter()
        .enumerate()
        .map(|(i, host)| {
            let port = match settings.ports.as_slice() {
                [] => 5432,
                [p] => *p,
                ps => ps.get(i).copied().unwrap_or(5432),
            };
            if host.starts_with('/') {
                Addr::Unix(PathBuf::from(host).join(format!(".s.PGSQL.{port}")))
            } else {
                Addr::Tcp { host, port }
            }
        })
        .collect()
}

/// Opens the socket and negotiates TLS. Returns the stream and whether it
/// is encrypted. Unix sockets never use TLS (as libpq).
async fn open(addr: &Addr, tls: &Tls) -> std::result::Result<(Box<dyn Io>, bool), Fault> {
    let (host, port) = match addr {
        Addr::Unix(path) => {
            let s = tokio::net::UnixStream::connect(path).await?;
            return Ok((Box::new(s), false));
        }
        Addr::Tcp { host, port } => (host, *port),
    };
    let mut tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
    let _ = tcp.set_nodelay(true);
    let (config, required) = match tls {
        Tls::Off => return Ok((Box::new(tcp), false)),
        Tls::Prefer(c) => (c.clone(), false),
        Tls::Require(c) => (c.clone(), true),
    };
    let mut b = BytesMut::new();
    frontend::ssl_request(&mut b);
    tcp.write_all(&b).await?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await?;
    match answer[0] {
        b'S' => {
            let name = ServerName::try_from(host.clone()).map_err(|e| {
                Fault::Protocol(ProtocolError::Malformed(
                    'S',
                    format!("TLS server name: {e}"),
                ))
            })?;
            let s = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok((Box::new(s), true))
        }
        b'N' if !required => Ok((Box::new(tcp), false)),
        b'N' => Err(Fault::Refused(
            "the server does not support TLS, and sslmode requires it",
        )),
        other => Err(Fault::Protocol(ProtocolError::Malformed(
            'S',
            format!("unexpected answer {other:#04x} to the TLS request"),
        ))),
    }
}

impl WireConn {
    /// Connects and logs in, trying each host in turn within
    /// `connect_timeout`.
    pub async fn connect(settings: &ConnSettings) -> Result<WireConn> {
        let tls = match settings.sslmode {
            SslMode::Disable => Tls::Off,
            SslMode::Allow | SslMode::Prefer => {
                Tls::Prefer(Arc::new(crate::pg::tls::client_config(settings)?))
            }
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                Tls::Require(Arc::new(crate::pg::tls::client_config(settings)?))
            }
        };
        let limit = settings.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let mut last = String::from("no host to connect to");
        for addr in addresses(settings) {
            match tokio::time::timeout(limit, Self::connect_to(settings, addr, &tls)).await {
                Ok(Ok(c)) => return Ok(c),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = format!("no answer within {limit:?}"),
            }
        }
        Err(Error::Connect {
            target: settings.to_string(),
            message: crate::config::redact(&last),
        })
    }

    async fn connect_to(
        settings: &ConnSettings,
        addr: Addr,
        tls: &Tls,
    ) -> std::result::Result<WireConn, Fault> {
        let (io, encrypted) = open(&addr, tls).await?;
        let used = match (encrypted, tls) {
            (true, Tls::Prefer(c) | Tls::Require(c)) => Tls::Require(c.clone()),
            _ => Tls::Off,
        };
        let mut conn = WireConn {
            io,
            buf: BytesMut::with_capacity(READ_SIZE),
            out: BytesMut::new(),
            key: CancelKey {
                addr,
                tls: used,
                process_id: 0,
                secret: 0,
            },
            broken: false,
        };
        conn.startup(settings).await?;
        Ok(conn)
    }

    async fn startup(&mut self, settings: &ConnSettings) -> std::result::Result<(), Fault> {
        let app = settings.application_name.as_deref().unwrap_or("pgkeep");
        let mut params = vec![
            ("user", settings.user.as_str()),
            ("database", settings.dbname.as_str()),
            ("application_name", app),
            ("client_encoding", "UTF8"),
        ];
        if let Some(o) = &settings.options {
            params.push(("options", o.as_str()));
        }
        frontend::startup_message(params, &mut self.out)?;
        self.send().await?;
        self.login(settings).await?;
        loop {
            match self.reply().await? {
                Message::BackendKeyData(k) => {
                    self.key.process_id = k.process_id();
                    self.key.secret = k.secret_key();
                }
                Message::ReadyForQuery(_) => return Ok(()),
                Message::ParameterStatus(_) | Message::NoticeResponse(_) => {}
                _ => return Err(unexpected("the startup")),
            }
        }
    }

    /// The authentication exchange, up to `AuthenticationOk`.
    async fn login(&mut self, settings: &ConnSettings) -> std::result::Result<(), Fault> {
        let password = || {
            settings.password().map(str::as_bytes).ok_or(Fault::Refused(
                "the server asks for a password and none was given (password=, PGPASSWORD or ~/.pgpass)",
            ))
        };
        match self.reply().await? {
            Message::AuthenticationOk => return Ok(()),
            Message::AuthenticationCleartextPassword => {
                frontend::password_message(password()?, &mut self.out)?;
            }
            Message::AuthenticationMd5Password(b) => {
                let hash =
                    authentication::md5_hash(settings.user.as_bytes(), password()?, b.salt());
                frontend::password_message(hash.as_bytes(), &mut self.out)?;
            }
            Message::AuthenticationSasl(b) => {
                if !b.mechanisms().any(|m| Ok(m == sasl::SCRAM_SHA_256))? {
                    return Err(Fault::Refused(
                        "the server offers no SASL mechanism pgkeep supports (SCRAM-SHA-256)",
                    ));
                }
                return self.scram(password()?).await;
            }
            _ => {
                return Err(Fault::Refused(
                    "the server asks for an authentication method pgkeep does not support",
                ))
            }
        }
        self.send().await?;
        self.expect_auth_ok().await
    }

    /// SCRAM-SHA-256. The client says it does not bind the exchange to
    /// the TLS channel, which servers accept; the driver's own connections
    /// do bind (docs/security.md).
    async fn scram(&mut self, password: &[u8]) -> std::result::Result<(), Fault> {
        let mut scram = sasl::ScramSha256::new(password, sasl::ChannelBinding::unsupported());
        frontend::sasl_initial_response(sasl::SCRAM_SHA_256, scram.message(), &mut self.out)?;
        self.send().await?;
        match self.reply().await? {
            Message::AuthenticationSaslContinue(b) => scram.update(b.data())?,
            _ => return Err(unexpected("SCRAM")),
        }
        frontend::sasl_response(scram.message(), &mut self.out)?;
        self.send().await?;
        match self.reply().await? {
            Message::AuthenticationSaslFinal(b) => scram.finish(b.data())?,
            _ => return Err(unexpected("SCRAM")),
        }
        self.expect_auth_ok().await
    }

    async fn expect_auth_ok(&mut self) -> std::result::Result<(), Fault> {
        match self.reply().await? {
            Message::AuthenticationOk => Ok(()),
            _ => Err(unexpected("the login")),
        }
    }

    /// The next message, an `ErrorResponse` being the server's refusal.
    async fn reply(&mut self) -> std::result::Result<Message, Fault> {
        match self.message().await? {
            Message::ErrorResponse(e) => Err(Fault::Server(ServerError::from_fields(e.fields())?)),
            m => Ok(m),
        }
    }

    /// The server process serving this connection.
    pub fn process_id(&self) -> i32 {
        self.key.process_id
    }

    /// What cancels this connection's running query from elsewhere.
    pub fn cancel_key(&self) -> CancelKey {
        self.key.clone()
    }

    /// Runs statements with the simple query protocol, discarding results;
    /// the server's first error fails it.
    pub async fn simple(&mut self, sql: &str, context: &str) -> Result<()> {
        self.simple_inner(sql)
            .await
            .map_err(|f| f.into_error(context))
    }

    async fn simple_inner(&mut self, sql: &str) -> std::result::Result<(), Fault> {
        self.query(sql).await?;
        let mut failed = None;
        loop {
            match self.message().await? {
                Message::ReadyForQuery(_) => break,
                Message::ErrorResponse(e) => {
                    failed.get_or_insert(ServerError::from_fields(e.fields())?);
                }
                Message::CopyInResponse(_) | Message::CopyOutResponse(_) => {
                    self.broken = true;
                    return Err(unexpected("a simple query"));
                }
                _ => {}
            }
        }
        failed.map_or(Ok(()), |e| Err(Fault::Server(e)))
    }

    /// Starts `COPY ... TO STDOUT`; its rows are read with
    /// [`CopyOut::next_row`].
    pub async fn copy_out<'a>(&'a mut self, sql: &str, context: &'a str) -> Result<CopyOut<'a>> {
        let started = async {
            self.query(sql).await?;
            loop {
                match self.message().await? {
                    Message::CopyOutResponse(_) => return Ok(()),
                    Message::ErrorResponse(e) => {
                        let e = ServerError::from_fields(e.fields())?;
                        self.until_ready().await?;
                        return Err(Fault::Server(e));
                    }
                    Message::NoticeResponse(_) | Message::ParameterStatus(_) => {}
                    _ => return Err(unexpected("COPY")),
                }
            }
        };
        started.await.map_err(|f| f.into_error(context))?;
        self.broken = true;
        Ok(CopyOut {
            conn: self,
            context,
            consumed: 0,
            failed: None,
            server_rows: None,
            done: false,
        })
    }

    /// Sends `Terminate` and closes the socket.
    pub async fn close(mut self) {
        frontend::terminate(&mut self.out);
        let _ = self.send().await;
        let _ = self.io.shutdown().await;
    }

    async fn query(&mut self, sql: &str) -> std::result::Result<(), Fault> {
        if self.broken {
            return Err(Fault::Broken);
        }
        frontend::query(sql, &mut self.out)?;
        self.send().await
    }

    async fn send(&mut self) -> std::result::Result<(), Fault> {
        self.io.write_all(&self.out).await?;
        self.io.flush().await?;
        self.out.clear();
        Ok(())
    }

    async fn until_ready(&mut self) -> std::result::Result<(), Fault> {
        while !matches!(self.message().await?, Message::ReadyForQuery(_)) {}
        Ok(())
    }

    /// Reads until the buffer holds the next whole message.
    async fn span(&mut self) -> std::result::Result<Span, Fault> {
        loop {
            if let Some(s) = message::next_span(&self.buf)? {
                return Ok(s);
            }
            let need = message::needed(&self.buf)?.unwrap_or(5);
            self.buf.reserve((need - self.buf.len()).max(READ_SIZE));
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Err(Fault::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    /// The next message, parsed (for anything but row data).
    async fn message(&mut self) -> std::result::Result<Message, Fault> {
        let s = self.span().await?;
        Ok(message::parse(self.buf.split_to(s.total))?)
    }
}

fn unexpected(during: &str) -> Fault {
    Fault::Protocol(ProtocolError::Malformed(
        '?',
        format!("unexpected message during {during}"),
    ))
}

/// A running `COPY ... TO STDOUT`. Dropped before its end, it leaves the
/// connection unusable (the caller cancels the query and closes it).
pub struct CopyOut<'a> {
    conn: &'a mut WireConn,
    context: &'a str,
    /// Bytes of the row last handed out, consumed on the next call.
    consumed: usize,
    failed: Option<ServerError>,
    server_rows: Option<u64>,
    done: bool,
}

impl CopyOut<'_> {
    /// The next row (one `CopyData` payload, a slice of the read buffer),
    /// or `None` once the server has finished the COPY.
    pub async fn next_row(&mut self) -> Result<Option<&[u8]>> {
        self.conn.buf.advance(std::mem::take(&mut self.consumed));
        if self.done {
            return Ok(None);
        }
        loop {
            let s = match self.conn.span().await {
                Ok(s) => s,
                Err(f) => return Err(f.into_error(self.context)),
            };
            if s.tag == COPY_DATA {
                self.consumed = s.total;
                return Ok(Some(&self.conn.buf[s.body()]));
            }
            let m = message::parse(self.conn.buf.split_to(s.total))
                .map_err(|e| Fault::Protocol(e).into_error(self.context))?;
            match m {
                Message::CopyDone => {}
                Message::CommandComplete(c) => {
                    self.server_rows = c.tag().ok().and_then(message::copy_rows);
                }
                Message::ErrorResponse(e) => {
                    let e = ServerError::from_fields(e.fields())
                        .map_err(|e| Fault::Protocol(e).into_error(self.context))?;
                    self.failed.get_or_insert(e);
                }
                Message::ReadyForQuery(_) => {
                    self.done = true;
                    self.conn.broken = false;
                    return match self.failed.take() {
                        Some(e) => Err(Fault::Server(e).into_error(self.context)),
                        None => Ok(None),
                    };
                }
                Message::NoticeResponse(_)
                | Message::ParameterStatus(_)
                | Message::NotificationResponse(_) => {}
                _ => return Err(unexpected("COPY").into_error(self.context)),
            }
        }
    }

    /// The row count of the server's `COPY n` tag, once the COPY ended.
    pub fn server_rows(&self) -> Option<u64> {
        self.server_rows
    }
}
