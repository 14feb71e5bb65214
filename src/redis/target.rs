//! Where a Redis server is: `redis://[[user]:password@]host[:port][/db]`
//! or `rediss://` (TLS), with the CA and client certificate as options.
//! The password never leaves this type in text: `Display` and `Debug`
//! show the URL without it.

use crate::error::{Error, Result};
use percent_encoding::percent_decode_str;
use zeroize::Zeroizing;

pub const DEFAULT_PORT: u16 = 6379;

/// A Redis server and how to log in to it.
#[derive(Clone)]
pub struct RedisTarget {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// ACL user (Redis 6+); `AUTH password` alone when absent.
    pub user: Option<String>,
    pub password: Option<Zeroizing<String>>,
    /// The database of the URL's path (`SELECT`ed on connect; the backup
    /// itself covers every database).
    pub db: u32,
    /// PEM file of the CA that signed the server's certificate (`rediss`).
    pub tls_ca: Option<std::path::PathBuf>,
    /// PEM client certificate and key for servers that ask for one.
    pub tls_cert: Option<std::path::PathBuf>,
    pub tls_key: Option<std::path::PathBuf>,
}

impl RedisTarget {
    /// Parses a `redis://` or `rediss://` URL.
    pub fn parse(text: &str) -> Result<RedisTarget> {
        // The text is not echoed: a URL that does not parse may hold its
        // password anywhere.
        let bad = |why: &str| {
            Error::Config(format!(
                "Redis URL: {why} (expected redis://[user:password@]host[:port][/db] or rediss://...)"
            ))
        };
        let url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        let tls = match url.scheme() {
            "redis" => false,
            "rediss" => true,
            other => return Err(bad(&format!("scheme {other:?} is not redis or rediss"))),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let decode = |s: &str| {
            percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| bad("user or password is not UTF-8 after percent-decoding"))
        };
        let user = match url.username() {
            "" => None,
            u => Some(decode(u)?),
        };
        let password = url
            .password()
            .map(|p| decode(p).map(Zeroizing::new))
            .transpose()?;
        let db = match url.path().trim_start_matches('/') {
            "" => 0,
            d => d
                .parse::<u32>()
                .map_err(|_| bad(&format!("database {d:?} is not a number")))?,
        };
        let mut t = RedisTarget {
            tls,
            host,
            port: url.port().unwrap_or(DEFAULT_PORT),
            user,
            password,
            db,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
        };
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "db" => {
                    t.db = v
                        .parse()
                        .map_err(|_| bad(&format!("db={v:?} is not a number")))?
                }
                "tls_ca" | "ssl_ca_certs" => t.tls_ca = Some(v.into_owned().into()),
                "tls_cert" | "ssl_certfile" => t.tls_cert = Some(v.into_owned().into()),
                "tls_key" | "ssl_keyfile" => t.tls_key = Some(v.into_owned().into()),
                other => return Err(bad(&format!("unknown option {other:?}"))),
            }
        }
        Ok(t)
    }

    /// `host:port` for connecting and for messages.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The URL without its password.
impl std::fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "rediss" } else { "redis" };
        write!(f, "{scheme}://")?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        write!(f, "{}", self.address())?;
        if self.db != 0 {
            write!(f, "/{}", self.db)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisTarget({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn urls_parse_and_print_without_the_password() {
        let t = RedisTarget::parse("rediss://app:s%40cret@cache.example:6380/2?tls_ca=/ca.pem")
            .unwrap();
        assert!(t.tls);
        assert_eq!(t.user.as_deref(), Some("app"));
        assert_eq!(t.password.as_deref().map(String::as_str), Some("s@cret"));
        assert_eq!((t.port, t.db), (6380, 2));
        assert_eq!(t.tls_ca.as_deref(), Some(std::path::Path::new("/ca.pem")));
        assert_eq!(t.to_string(), "rediss://app@cache.example:6380/2");
        assert!(!format!("{t:?}").contains("cret"));
        let t = RedisTarget::parse("redis://:pw@127.0.0.1").unwrap();
        assert_eq!((t.user, t.port, t.db), (None, 6379, 0));
        assert_eq!(t.password.as_deref().map(String::as_str), Some("pw"));
    }

    #[test]
    fn bad_urls_say_why_without_the_password() {
        for (url, why) in [
            ("http://h", "scheme"),
            ("redis:///0", "no host"),
            ("redis://h/x", "not a number"),
            ("redis://u:hunter2@h/?nope=1", "unknown option"),
        ] {
            let e = RedisTarget::parse(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    proptest! {
        #[test]
        fn any_text_parses_or_errs_without_the_password(host in "[a-z]{1,10}", pw in "[a-zA-Z0-9]{6,12}", tail in "[ -~]{0,20}") {
            let url = format!("redis://u:{pw}@{host}{tail}");
            match RedisTarget::parse(&url) {
                Ok(t) => prop_assert!(!t.to_string().contains(&pw)),
                Err(e) => prop_assert!(!e.to_string().contains(&pw)),
            }
        }
    }
}
