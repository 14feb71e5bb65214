//! The one error type of the library: a kind for each way pgkeep can fail,
//! each with a message a user can act on. Never carries a secret: connection
//! targets are stored redacted (see `redact`).

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad user input: flags, connection strings, policy files.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The server could not be reached or refused the login.
    #[error("cannot connect to {target}: {message}")]
    Connect { target: String, message: String },

    /// A query failed; `context` says what pgkeep was doing.
    #[error("{context}: {}", describe_pg(source))]
    Db {
        context: String,
        #[source]
        source: tokio_postgres::Error,
    },

    /// A statement on pgkeep's own COPY connection failed, or that
    /// connection broke; `context` says what pgkeep was doing.
    #[error("{context}: {message}")]
    Wire {
        context: String,
        /// The server's SQLSTATE, when the server reported the error.
        code: Option<String>,
        message: String,
    },

    /// The object store failed (missing repository, permissions, disk full, ...).
    /// Endpoint and object URLs are scrubbed from the message.
    #[error("storage error while {context}: {}", describe_store(source))]
    Store {
        context: String,
        #[source]
        source: object_store::Error,
    },

    /// The object store could not be reached, after retries with backoff.
    #[error("repository {repo} unreachable while {context}: {detail}. pgkeep retried with backoff and gave up; check the endpoint, credentials and network (retries and timeouts: --repo-option max_retries=N, retry_timeout=5m, request_timeout=2m; docs/storage.md)")]
    StoreUnavailable {
        repo: String,
        context: String,
        detail: String,
    },

    /// A Redis server answered with an error, broke the protocol or closed
    /// the connection; `context` says what pgkeep was doing.
    #[error("redis {context}: {message}")]
    Redis { context: String, message: String },

    /// Another process holds what this one needs (a running backup's lease).
    #[error("{0}")]
    Busy(String),

    /// Local file I/O.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Something in an archive is not what the format says it must be.
    #[error("archive format error in {object}: {message}")]
    Format { object: String, message: String },

    /// Stored bytes do not match their recorded hash, length or count.
    #[error("integrity check failed for {object}: {message}")]
    Integrity { object: String, message: String },

    /// The archive was written by a format this build does not understand.
    #[error("unsupported archive format version {found} in {object} (this pgkeep reads up to {supported}); upgrade pgkeep")]
    UnsupportedVersion {
        object: String,
        found: u32,
        supported: u32,
    },

    /// A backup id that does not exist in the repository.
    #[error("backup {0} not found in the repository (run `pgkeep list` to see the backups)")]
    BackupNotFound(String),

    /// The restore target is not safe to write into.
    #[error("refusing to restore: {0}")]
    Refused(String),

    /// A concurrent change (DDL, lock) got in the way of a consistent backup.
    #[error("concurrent change: {0}")]
    Conflict(String),

    /// A key is missing, wrong, or unusable (never carries key material).
    #[error("key error: {0}")]
    Key(String),

    /// Row counts or other totals differ after a restore.
    #[error("verification failed: {0}")]
    Verification(String),

    /// The operation was interrupted (SIGINT/SIGTERM) or a sibling task failed.
    #[error("interrupted: {0}")]
    Interrupted(String),

    /// `status` could not tell (policy or repository unreadable): exit 3,
    /// UNKNOWN in the monitoring-plugin convention.
    #[error("{0}")]
    Unknown(String),

    /// The work finished, but parts of it failed and were gone past
    /// (`restore --continue-on-error`): exit 1.
    #[error("{0}")]
    Incomplete(String),

    /// A bug: an invariant of pgkeep itself did not hold.
    #[error("internal error: {0}")]
    Internal(String),

    /// Several parallel tasks failed: the first failure is the headline
    /// (and decides the exit code); the others are listed after it.
    #[error("{first} ({} more failure{}: {})", others.len(), if others.len() == 1 { "" } else { "s" }, others.join("; "))]
    Several {
        first: Box<Error>,
        others: Vec<String>,
    },
}

/// Collects the failures of parallel tasks (backup workers, restore
/// loaders): every real failure is kept. A task that only stopped because
/// a sibling failed ([`Error::Interrupted`] after a first failure) adds
/// nothing.
#[derive(Debug, Default)]
pub struct Failures {
    first: Option<Error>,
    others: Vec<String>,
}

impl Failures {
    pub fn push(&mut self, e: Error) {
        match &self.first {
            None => self.first = Some(e),
            Some(_) if matches!(e, Error::Interrupted(_)) => {}
            Some(_) => self.others.push(e.to_string()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// The error to report: none, the one failure, or the first with the
    /// others listed.
    pub fn into_error(self) -> Option<Error> {
        let first = self.first?;
        Some(if self.others.is_empty() {
            first
        } else {
            Error::Several {
                first: Box::new(first),
                others: self.others,
            }
        })
    }
}

/// A storage error in one line without URLs: an S3-style XML error body
/// (`<Code>NoSuchBucket</Code><Message>...</Message>`) becomes its code and
/// message, with a hint for the codes a user can act on; other texts lose
/// their line breaks.
pub fn describe_store(e: &object_store::Error) -> String {
    let text = crate::redact::scrub_urls(&e.to_string());
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].trim().to_string())
    };
    if let Some(code) = tag("Code") {
        let message = tag("Message").unwrap_or_default();
        let hint = match code.as_str() {
            "NoSuchBucket" | "ContainerNotFound" => {
                " (the bucket does not exist: create it, or check the repository URL and region)"
            }
            "AccessDenied" | "AuthorizationFailure" | "AuthenticationFailed" => {
                " (check the credentials and the bucket's policy)"
            }
            "InvalidAccessKeyId" | "SignatureDoesNotMatch" => " (check the access key and secret)",
            _ => "",
        };
        return format!("{code}: {message}{hint}");
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The most useful text of a driver error: the server's message, detail and
/// hint when there is one, else the whole cause chain ("db error" alone says
/// nothing).
pub fn describe_pg(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
        if let Some(d) = db.detail() {
            s.push_str(&format!("; detail: {d}"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!("; hint: {h}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

impl Error {
    /// Wraps a database error with what pgkeep was doing.
    pub fn db(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> Error {
        let context = context.into();
        move |source| Error::Db { context, source }
    }

    /// Wraps a storage error with what pgkeep was doing.
    pub fn store(context: impl Into<String>) -> impl FnOnce(object_store::Error) -> Error {
        let context = context.into();
        move |source| Error::Store { context, source }
    }

    pub fn format(object: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Format {
            object: object.into(),
            message: message.into(),
        }
    }

    pub fn integrity(object: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Integrity {
            object: object.into(),
            message: message.into(),
        }
    }

    /// Process exit code for the CLI: 2 for usage/config errors, 3 for
    /// integrity/verification failures, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Several { first, .. } => first.exit_code(),
            Error::Unknown(_) => 3,
            Error::Config(_) | Error::Key(_) => 2,
            Error::Integrity { .. } | Error::Verification(_) | Error::Format { .. } => 3,
            Error::Interrupted(_) => 130,
            _ => 1,
        }
    }

    /// The failure that leads: the first of [`Error::Several`], else this
    /// one.
    pub fn headline(&self) -> &Error {
        match self {
            Error::Several { first, .. } => first.headline(),
            other => other,
        }
    }

    /// The SQLSTATE of a database error, if any.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Db { source, .. } => source.code().map(|c| c.code()),
            Error::Wire { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_error_bodies_become_one_line_with_a_hint() {
        let body = "Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>nope</BucketName></Error>";
        let e = object_store::Error::NotFound {
            path: "backups".into(),
            source: body.into(),
        };
        let d = describe_store(&e);
        assert!(
            d.starts_with("NoSuchBucket: The specified bucket does not exist"),
            "{d}"
        );
        assert!(
            d.contains("create it") && !d.contains('<') && !d.contains('\n'),
            "{d}"
        );
        let plain = object_store::Error::Generic {
            store: "S3",
            source: "line one\nline two at http://10.0.0.1:9000/b".into(),
        };
        let d = describe_store(&plain);
        assert!(!d.contains('\n') && !d.contains("10.0.0.1"), "{d}");
    }

    #[test]
    fn every_failure_is_kept_and_the_first_leads() {
        let mut f = Failures::default();
        assert!(f.is_empty());
        f.push(Error::Integrity {
            object: "pack-00001".into(),
            message: "bad hash".into(),
        });
        f.push(Error::Interrupted("stopped: another part failed".into()));
        f.push(Error::Conflict("table t was dropped".into()));
        f.push(Error::Config("third".into()));
        let e = f.into_error().unwrap();
        let text = e.to_string();
        assert!(
            text.starts_with("integrity check failed for pack-00001"),
            "{text}"
        );
        assert!(text.contains("2 more failures"), "{text}");
        assert!(
            text.contains("table t was dropped") && text.contains("third"),
            "{text}"
        );
        assert!(!text.contains("another part failed"), "{text}");
        assert_eq!(e.exit_code(), 3, "the headline decides the exit code");
        let mut one = Failures::default();
        one.push(Error::Config("only".into()));
        assert!(matches!(one.into_error(), Some(Error::Config(_))));
        assert!(Failures::default().into_error().is_none());
    }
}
