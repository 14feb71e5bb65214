//! Parsing of libpq connection strings and environment into [`ConnSettings`].
//!
//! Precedence, as in libpq: explicit connection string, then `PG*`
//! environment variables, then built-in defaults; the password last of all
//! from `~/.pgpass` (or `PGPASSFILE`). `DATABASE_URL` is used by the CLI when
//! no `--db` is given.

use super::pgpass;
use crate::error::{Error, Result};
use percent_encoding::percent_decode_str;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// `sslmode` as libpq defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SslMode {
    Disable,
    Allow,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<SslMode> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::Config(format!(
                    "invalid sslmode {other:?} (expected disable, allow, prefer, require, verify-ca or verify-full)"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Resolved connection settings. `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnSettings {
    /// Hosts tried in order; a value starting with `/` is a Unix socket directory.
    pub hosts: Vec<String>,
    pub ports: Vec<u16>,
    pub user: String,
    pub dbname: String,
    password: Option<String>,
    pub sslmode: SslMode,
    pub sslrootcert: Option<String>,
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
    pub application_name: Option<String>,
    pub connect_timeout: Option<Duration>,
    /// `options` (e.g. `-c statement_timeout=0`).
    pub options: Option<String>,
}

const KNOWN_KEYS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "user",
    "dbname",
    "password",
    "passfile",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "application_name",
    "fallback_application_name",
    "connect_timeout",
    "options",
    "keepalives",
    "keepalives_idle",
    "target_session_attrs",
    "channel_binding",
    "gssencmode",
];

impl ConnSettings {
    /// Parses a connection string and fills the gaps from the environment
    /// and `.pgpass`, as libpq does.
    pub fn resolve(conninfo: &str) -> Result<ConnSettings> {
        Self::resolve_with(conninfo, &|k| std::env::var(k).ok())
    }

    /// Like [`resolve`](Self::resolve) with an explicit environment (tests).
    pub fn resolve_with(
        conninfo: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ConnSettings> {
        let params = parse_conninfo(conninfo)?;
        Self::from_params(params, env)
    }

    fn from_params(
        mut p: BTreeMap<String, String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ConnSettings> {
        for (key, var) in [
            ("host", "PGHOST"),
            ("hostaddr", "PGHOSTADDR"),
            ("port", "PGPORT"),
            ("user", "PGUSER"),
            ("dbname", "PGDATABASE"),
            ("password", "PGPASSWORD"),
            ("passfile", "PGPASSFILE"),
            ("sslmode", "PGSSLMODE"),
            ("sslrootcert", "PGSSLROOTCERT"),
            ("sslcert", "PGSSLCERT"),
            ("sslkey", "PGSSLKEY"),
            ("application_name", "PGAPPNAME"),
            ("connect_timeout", "PGCONNECT_TIMEOUT"),
            ("options", "PGOPTIONS"),
        ] {
            if !p.contains_key(key) {
                if let Some(v) = env(var).filter(|v| !v.is_empty()) {
                    p.insert(key.to_string(), v);
                }
            }
        }
        let user = match p.get("user") {
            Some(u) => u.clone(),
            // libpq's default: the operating-system user running the
            // program (the effective user id's name, not $USER).
            None => os_user_name().ok_or_else(|| {
                Error::Config(
                    "no user name given and the operating-system user has no name (set user= or PGUSER)"
                        .into(),
                )
            })?,
        };
        let dbname = p.get("dbname").cloned().unwrap_or_else(|| user.clone());
        let host_str = p
            .get("host")
            .or_else(|| p.get("hostaddr"))
            .cloned()
            .unwrap_or_else(default_host);
        let hosts: Vec<String> = host_str.split(',').map(|h| h.trim().to_string()).collect();
        let ports: Vec<u16> = match p.get("port") {
            Some(s) => s
                .split(',')
                .map(|x| {
                    x.trim()
                        .parse::<u16>()
                        .map_err(|_| Error::Config(format!("invalid port {x:?}")))
                })
                .collect::<Result<_>>()?,
            None => vec![5432],
        };
        if ports.len() != 1 && ports.len() != hosts.len() {
            return Err(Error::Config(format!(
                "{} ports given for {} hosts",
                ports.len(),
                hosts.len()
            )));
        }
        let sslmode = match p.get("sslmode") {
            Some(s) => SslMode::parse(s)?,
            None => SslMode::Prefer,
        };
        let connect_timeout = match p.get("connect_timeout") {
            Some(s) => {
                let secs: u64 = s
                    .trim()
                    .parse()
                    .map_err(|_| Error::Config(format!("invalid connect_timeout {s:?}")))?;
                (secs > 0).then(|| Duration::from_secs(secs.max(2)))
            }
            None => None,
        };
        let mut settings = ConnSettings {
            hosts,
            ports,
            user,
            dbname,
            password: p.get("password").cloned(),
            sslmode,
            sslrootcert: p.get("sslrootcert").cloned(),
            sslcert: p.get("sslcert").cloned(),
            sslkey: p.get("sslkey").cloned(),
            application_name: p
                .get("application_name")
                .or_else(|| p.get("fallback_application_name"))
                .cloned(),
            connect_timeout,
            options: p.get("options").cloned(),
        };
        if settings.password.is_none() {
            let passfile = p
                .get("passfile")
                .cloned()
                .or_else(|| env("HOME").map(|h| format!("{h}/.pgpass")));
            if let Some(path) = passfile {
                settings.password = pgpass::lookup(
                    std::path::Path::new(&path),
                    &settings.hosts[0],
                    settings.ports[0],
                    &settings.dbname,
                    &settings.user,
                );
            }
        }
        Ok(settings)
    }

    /// The password, for the driver only. Never print it.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    pub fn set_password(&mut self, password: Option<String>) {
        self.password = password;
    }

    /// The same server, another database (for `--create` and cluster queries).
    pub fn with_dbname(&self, dbname: &str) -> ConnSettings {
        let mut c = self.clone();
        c.dbname = dbname.to_string();
        c
    }

    /// The variables a child process (an application's test suite) needs
    /// to reach this database: `DATABASE_URL` and libpq's `PG*`. They carry
    /// the password: hand them to the child's environment only, never print
    /// or store them.
    pub fn child_environment(&self) -> Vec<(&'static str, String)> {
        use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
        // RFC 3986's unreserved characters stay as they are.
        const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        let e = |s: &str| utf8_percent_encode(s, COMPONENT).to_string();
        let host = self.hosts.first().cloned().unwrap_or_else(default_host);
        let port = self.ports.first().copied().unwrap_or(5432);
        let userinfo = match &self.password {
            Some(pw) => format!("{}:{}", e(&self.user), e(pw)),
            None => e(&self.user),
        };
        let mut query = vec![format!("sslmode={}", self.sslmode.as_str())];
        let url = if host.starts_with('/') {
            query.push(format!("host={}", e(&host)));
            query.push(format!("port={port}"));
            format!("postgresql://{userinfo}@/{}", e(&self.dbname))
        } else if host.contains(':') {
            format!(
                "postgresql://{userinfo}@[{host}]:{port}/{}",
                e(&self.dbname)
            )
        } else {
            format!("postgresql://{userinfo}@{host}:{port}/{}", e(&self.dbname))
        };
        let mut vars = vec![
            ("DATABASE_URL", format!("{url}?{}", query.join("&"))),
            ("PGHOST", host),
            ("PGPORT", port.to_string()),
            ("PGUSER", self.user.clone()),
            ("PGDATABASE", self.dbname.clone()),
            ("PGSSLMODE", self.sslmode.as_str().to_string()),
        ];
        if let Some(pw) = &self.password {
            vars.push(("PGPASSWORD", pw.clone()));
        }
        if let Some(c) = &self.sslrootcert {
            vars.push(("PGSSLROOTCERT", c.clone()));
        }
        vars
    }

    /// Builds the driver configuration.
    pub fn to_pg_config(&self) -> tokio_postgres::Config {
        let mut cfg = tokio_postgres::Config::new();
        for h in &self.hosts {
            if h.starts_with('/') {
                cfg.host_path(h);
            } else {
                cfg.host(h);
            }
        }
        for p in &self.ports {
            cfg.port(*p);
        }
        cfg.user(&self.user);
        cfg.dbname(&self.dbname);
        if let Some(pw) = &self.password {
            cfg.password(pw);
        }
        cfg.application_name(self.application_name.as_deref().unwrap_or("pgkeep"));
        if let Some(t) = self.connect_timeout {
            cfg.connect_timeout(t);
        } else {
            cfg.connect_timeout(Duration::from_secs(30));
        }
        if let Some(o) = &self.options {
            cfg.options(o);
        }
        cfg.keepalives(true);
        cfg.ssl_mode(match self.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
        cfg
    }
}

/// The name of the effective user id, as libpq takes it (`getpwuid_r`).
fn os_user_name() -> Option<String> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: `passwd` is plain data that getpwuid_r fills in; every pointer
    // it sets points into `buf`, which outlives their use here; the name is
    // copied out before `buf` is dropped.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            libc::geteuid(),
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(pwd.pw_name).to_str().ok()?;
        (!name.is_empty()).then(|| name.to_string())
    }
}

fn default_host() -> String {
    for dir in ["/var/run/postgresql", "/tmp"] {
        if std::path::Path::new(dir).is_dir() {
            return dir.to_string();
        }
    }
    "localhost".to_string()
}

impl fmt::Display for ConnSettings {
    /// `postgres://user@host:port/db`, never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let port = self
                    .ports
                    .get(i)
                    .or(self.ports.first())
                    .copied()
                    .unwrap_or(5432);
                format!("{h}:{port}")
            })
            .collect();
        write!(
            f,
            "postgres://{}@{}/{}",
            self.user,
            hosts.join(","),
            self.dbname
        )
    }
}

impl fmt::Debug for ConnSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnSettings({self}, sslmode={})", self.sslmode.as_str())
    }
}

/// Splits a URL or `key=value` string into libpq keywords. Unknown keywords
/// are an error, as in libpq.
pub(crate) fn parse_conninfo(s: &str) -> Result<BTreeMap<String, String>> {
    let s = s.trim();
    let map = if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        parse_url(s)?
    } else {
        parse_keyvalue(s)?
    };
    for k in map.keys() {
        if !KNOWN_KEYS.contains(&k.as_str()) {
            return Err(Error::Config(format!("invalid connection option {k:?}")));
        }
    }
    Ok(map)
}

fn decode(s: &str) -> Result<String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| {
            Error::Config("connection URL is not valid UTF-8 after percent-decoding".into())
        })
}

fn parse_url(s: &str) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    let rest = s.split_once("://").map(|(_, r)| r).unwrap_or("");
    let (rest, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (rest, None),
    };
    let (userinfo, hostlist) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if let Some(u) = userinfo {
        match u.split_once(':') {
            Some((user, pw)) => {
                if !user.is_empty() {
                    map.insert("user".into(), decode(user)?);
                }
                map.insert("password".into(), decode(pw)?);
            }
            None if !u.is_empty() => {
                map.insert("user".into(), decode(u)?);
            }
            None => {}
        }
    }
    if !hostlist.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for hp in hostlist.split(',') {
            let (h, p) = if let Some(stripped) = hp.strip_prefix('[') {
                // [v6addr]:port
                match stripped.split_once(']') {
                    Some((h, rest)) => (h.to_string(), rest.strip_prefix(':').map(str::to_string)),
                    None => return Err(Error::Config("unterminated IPv6 address in URL".into())),
                }
            } else {
                match hp.rsplit_once(':') {
                    Some((h, p)) => (decode(h)?, Some(p.to_string())),
                    None => (decode(hp)?, None),
                }
            };
            hosts.push(h);
            ports.push(p);
        }
        if hosts.iter().any(|h| !h.is_empty()) {
            map.insert("host".into(), hosts.join(","));
        }
        if ports.iter().any(Option::is_some) {
            let ports: Vec<String> = ports
                .into_iter()
                .map(|p| p.filter(|p| !p.is_empty()).unwrap_or_else(|| "5432".into()))
                .collect();
            map.insert("port".into(), ports.join(","));
        }
    }
    if let Some(p) = path.filter(|p| !p.is_empty()) {
        map.insert("dbname".into(), decode(p)?);
    }
    if let Some(q) = query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                Error::Config(format!("invalid URL query parameter {:?}", k_only(pair)))
            })?;
            let k = decode(k)?;
            let k = if k == "ssl" && v == "true" {
                map.insert("sslmode".into(), "require".into());
                continue;
            } else {
                k
            };
            map.insert(k, decode(v)?);
        }
    }
    Ok(map)
}

fn k_only(pair: &str) -> &str {
    pair.split('=').next().unwrap_or("")
}

fn parse_keyvalue(s: &str) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(Error::Config(format!(
                "missing \"=\" after {key:?} in connection string"
            )));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(Error::Config(
                    "unterminated quoted string in connection string".into(),
                ));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        if key.is_empty() {
            return Err(Error::Config("empty keyword in connection string".into()));
        }
        map.insert(key, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    #[test]
    fn defaults_follow_libpq_user_dbname_port_and_socket_host() {
        // Nothing given and no environment: libpq takes the operating-system
        // user (not $USER), a database of that name, port 5432 and the Unix
        // socket directory when there is one.
        let s = ConnSettings::resolve_with("", &|_| None).unwrap();
        let os_user = os_user_name().unwrap();
        assert_eq!(s.user, os_user);
        assert_eq!(s.dbname, os_user);
        assert_eq!(s.ports, [5432]);
        assert_eq!(s.hosts, [default_host()]);
        if std::path::Path::new("/var/run/postgresql").is_dir() {
            assert_eq!(s.hosts, ["/var/run/postgresql"]);
        }
        // $USER is not what libpq reads.
        let env = |k: &str| (k == "USER").then(|| "not-the-os-user".to_string());
        assert_eq!(ConnSettings::resolve_with("", &env).unwrap().user, os_user);
    }

    use super::*;
    use proptest::prelude::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn url_forms() {
        let c = ConnSettings::resolve_with(
            "postgres://al%40ice:p%2Fw@db.example:6543/my%20db?sslmode=require&application_name=x",
            &no_env,
        )
        .unwrap();
        assert_eq!(c.hosts, vec!["db.example"]);
        assert_eq!(c.ports, vec![6543]);
        assert_eq!(c.user, "al@ice");
        assert_eq!(c.password(), Some("p/w"));
        assert_eq!(c.dbname, "my db");
        assert_eq!(c.sslmode, SslMode::Require);
        assert_eq!(c.to_string(), "postgres://al@ice@db.example:6543/my db");
        assert!(!format!("{c:?}").contains("p/w"));
    }

    #[test]
    fn keyvalue_and_env_precedence() {
        let env = |k: &str| match k {
            "PGHOST" => Some("envhost".to_string()),
            "PGUSER" => Some("envuser".to_string()),
            "PGPASSWORD" => Some("envpw".to_string()),
            "PGPORT" => Some("7777".to_string()),
            _ => None,
        };
        let c =
            ConnSettings::resolve_with("host=h1 dbname='a b' sslmode=verify-full", &env).unwrap();
        assert_eq!(c.hosts, vec!["h1"]);
        assert_eq!(c.ports, vec![7777]);
        assert_eq!(c.user, "envuser");
        assert_eq!(c.dbname, "a b");
        assert_eq!(c.password(), Some("envpw"));
        assert_eq!(c.sslmode, SslMode::VerifyFull);
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        assert!(ConnSettings::resolve_with("host=h bogus=1 user=u", &no_env).is_err());
        assert!(ConnSettings::resolve_with("host=h sslmode=maybe user=u", &no_env).is_err());
        assert!(ConnSettings::resolve_with("postgres://u@h:notaport/db", &no_env).is_err());
        assert!(ConnSettings::resolve_with("host='unterminated user=u", &no_env).is_err());
    }

    #[test]
    fn multi_host_and_ipv6() {
        let c = ConnSettings::resolve_with("postgresql://u@h1:1,[::1]:2/db", &no_env).unwrap();
        assert_eq!(c.hosts, vec!["h1", "::1"]);
        assert_eq!(c.ports, vec![1, 2]);
    }

    proptest! {
        #[test]
        fn keyvalue_round_trip(user in "[a-zA-Z0-9 '\\\\_]{1,12}", db in "[a-zA-Z0-9 _]{1,12}", pw in "[ -~]{1,16}") {
            let q = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
            let s = format!("host=h user={} dbname={} password={}", q(&user), q(&db), q(&pw));
            let c = ConnSettings::resolve_with(&s, &no_env).unwrap();
            prop_assert_eq!(&c.user, &user);
            prop_assert_eq!(&c.dbname, &db);
            prop_assert_eq!(c.password(), Some(pw.as_str()));
        }

        #[test]
        fn url_round_trip(user in "[a-zA-Z0-9@:/ _-]{1,12}", pw in "[ -~]{1,16}", db in "[a-zA-Z0-9 _/]{1,12}") {
            use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
            let e = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
            let s = format!("postgres://{}:{}@h:5/{}", e(&user), e(&pw), e(&db));
            let c = ConnSettings::resolve_with(&s, &no_env).unwrap();
            prop_assert_eq!(&c.user, &user);
            prop_assert_eq!(c.password(), Some(pw.as_str()));
            prop_assert_eq!(&c.dbname, &db);
        }

        /// A child's `DATABASE_URL` reaches the same database, user and
        /// password as the settings it came from, over TCP or a socket.
        #[test]
        fn child_url_round_trips(user in "[a-zA-Z0-9@:/ _-]{1,12}", pw in "[ -~]{1,16}", db in "[a-zA-Z0-9 _/]{1,12}", socket in any::<bool>()) {
            let mut c = ConnSettings::resolve_with("host=h port=7 user=x dbname=y", &no_env).unwrap();
            c.user = user.clone();
            c.dbname = db.clone();
            c.set_password(Some(pw.clone()));
            if socket {
                c.hosts = vec!["/run/pg sock".into()];
            }
            let vars = c.child_environment();
            let url = &vars.iter().find(|(k, _)| *k == "DATABASE_URL").unwrap().1;
            let back = ConnSettings::resolve_with(url, &no_env).unwrap();
            prop_assert_eq!(&back.user, &user);
            prop_assert_eq!(&back.dbname, &db);
            prop_assert_eq!(back.password(), Some(pw.as_str()));
            prop_assert_eq!(&back.hosts, &c.hosts);
            prop_assert_eq!(&back.ports, &vec![7u16]);
        }

        #[test]
        fn parser_never_panics(s in ".{0,100}") {
            let _ = parse_conninfo(&s);
        }
    }
}
