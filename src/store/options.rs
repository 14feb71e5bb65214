//! Repository options: `--repo-option key=value` on the command line, or a
//! table of the same keys in a policy file (the struct deserializes from any
//! serde map of strings, booleans and numbers).
//!
//! Every key is validated: an unknown or misspelled key is an error that
//! lists the valid keys (object_store's own URL option parsing silently
//! ignores unknown keys; pgkeep must not), and a key that does not apply to
//! the repository's backend is an error too. Secret values are held in
//! [`Secret`], whose `Debug` never shows them.

use super::location::BucketKind;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// A credential: printed as `<redacted>`, compared in full.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The value, for handing to the store builder only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Options for opening a repository. Unset fields fall back to the
/// backend's environment variables (see docs/storage.md), then to defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RepoOptions {
    // S3 and S3-compatible stores.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<Secret>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    pub virtual_hosted_style: Option<bool>,
    // Google Cloud Storage.
    pub service_account_path: Option<String>,
    pub service_account_key: Option<Secret>,
    // Azure Blob Storage.
    pub account: Option<String>,
    pub access_key: Option<Secret>,
    pub sas_token: Option<Secret>,
    pub use_emulator: Option<bool>,
    // Every remote store.
    pub allow_http: Option<bool>,
    pub request_timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub max_retries: Option<usize>,
    pub retry_timeout: Option<Duration>,
    pub checksum: Option<bool>,
    pub conditional_put: Option<bool>,
}

/// Which backends a key applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    S3,
    Gcs,
    Azure,
    /// S3 and Azure (both have an endpoint override).
    S3Azure,
    Remote,
}

impl Scope {
    fn applies(self, kind: BucketKind) -> bool {
        match self {
            Scope::S3 => kind == BucketKind::S3,
            Scope::Gcs => kind == BucketKind::Gcs,
            Scope::Azure => kind == BucketKind::Azure,
            Scope::S3Azure => kind != BucketKind::Gcs,
            Scope::Remote => true,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Scope::S3 => "s3:// repositories",
            Scope::Gcs => "gs:// repositories",
            Scope::Azure => "az:// repositories",
            Scope::S3Azure => "s3:// and az:// repositories",
            Scope::Remote => "object-store repositories",
        }
    }
}

/// Every key, where it applies and what it takes.
const KEYS: &[(&str, Scope, &str)] = &[
    (
        "endpoint",
        Scope::S3Azure,
        "URL of an S3-compatible or Azure endpoint",
    ),
    ("region", Scope::S3, "S3 region"),
    ("access_key_id", Scope::S3, "S3 access key id (secret)"),
    ("secret_access_key", Scope::S3, "S3 secret key (secret)"),
    ("session_token", Scope::S3, "S3 session token (secret)"),
    (
        "virtual_hosted_style",
        Scope::S3,
        "true: bucket in the host name; false: in the path",
    ),
    (
        "service_account_path",
        Scope::Gcs,
        "path of a GCS service account JSON file",
    ),
    (
        "service_account_key",
        Scope::Gcs,
        "GCS service account JSON (secret)",
    ),
    ("account", Scope::Azure, "Azure storage account name"),
    (
        "access_key",
        Scope::Azure,
        "Azure storage account key (secret)",
    ),
    ("sas_token", Scope::Azure, "Azure SAS token (secret)"),
    ("use_emulator", Scope::Azure, "use the Azurite emulator"),
    ("allow_http", Scope::Remote, "allow plain http:// endpoints"),
    (
        "request_timeout",
        Scope::Remote,
        "per-request timeout (default sized from the part size)",
    ),
    ("connect_timeout", Scope::Remote, "connection timeout"),
    ("max_retries", Scope::Remote, "retries per request"),
    (
        "retry_timeout",
        Scope::Remote,
        "give up retrying a request after this long",
    ),
    (
        "checksum",
        Scope::S3,
        "send x-amz-checksum-sha256 on single-part puts",
    ),
    (
        "conditional_put",
        Scope::S3,
        "write manifests with If-None-Match (false for stores without it)",
    ),
];

/// The valid keys, for messages and docs.
pub fn valid_keys() -> Vec<&'static str> {
    KEYS.iter().map(|k| k.0).collect()
}

fn normalize(key: &str) -> String {
    key.trim().to_ascii_lowercase().replace('-', "_")
}

fn lookup(key: &str) -> Option<&'static (&'static str, Scope, &'static str)> {
    KEYS.iter().find(|k| k.0 == key)
}

fn unknown_key(key: &str) -> Error {
    let shown: String = key.chars().take(40).collect();
    let best = crate::config::suggest::nearest(&shown, KEYS.iter().map(|k| k.0))
        .map(|k| format!(" (did you mean {k}?)"))
        .unwrap_or_default();
    Error::Config(format!(
        "unknown repository option {shown:?}{best}; valid options: {}",
        valid_keys().join(", ")
    ))
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(Error::Config(format!(
            "repository option {key} takes true or false"
        ))),
    }
}

pub use crate::units::parse_duration;

fn duration(key: &str, v: &str) -> Result<Duration> {
    parse_duration(v).filter(|d| !d.is_zero()).ok_or_else(|| {
        Error::Config(format!(
            "repository option {key} takes a duration such as 30s, 500ms, 5m"
        ))
    })
}

fn text(key: &str, v: &str) -> Result<String> {
    if v.is_empty() || v.chars().any(|c| c.is_control()) {
        return Err(Error::Config(format!(
            "repository option {key} needs a non-empty value"
        )));
    }
    Ok(v.to_string())
}

impl RepoOptions {
    /// Sets one option; the key is case-insensitive and `-` is read as `_`.
    /// The error never contains the value (it may be a secret).
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let k = normalize(key);
        let Some((name, _, _)) = lookup(&k) else {
            return Err(unknown_key(key));
        };
        let v = value.trim();
        match *name {
            "endpoint" => self.endpoint = Some(text(name, v)?),
            "region" => self.region = Some(text(name, v)?),
            "access_key_id" => self.access_key_id = Some(Secret(text(name, v)?)),
            "secret_access_key" => self.secret_access_key = Some(Secret(text(name, v)?)),
            "session_token" => self.session_token = Some(Secret(text(name, v)?)),
            "virtual_hosted_style" => self.virtual_hosted_style = Some(parse_bool(name, v)?),
            "service_account_path" => self.service_account_path = Some(text(name, v)?),
            "service_account_key" => self.service_account_key = Some(Secret(text(name, v)?)),
            "account" => self.account = Some(text(name, v)?),
            "access_key" => self.access_key = Some(Secret(text(name, v)?)),
            "sas_token" => self.sas_token = Some(Secret(text(name, v)?)),
            "use_emulator" => self.use_emulator = Some(parse_bool(name, v)?),
            "allow_http" => self.allow_http = Some(parse_bool(name, v)?),
            "request_timeout" => self.request_timeout = Some(duration(name, v)?),
            "connect_timeout" => self.connect_timeout = Some(duration(name, v)?),
            "retry_timeout" => self.retry_timeout = Some(duration(name, v)?),
            "max_retries" => {
                self.max_retries = Some(v.parse::<usize>().ok().filter(|n| *n <= 100).ok_or_else(
                    || Error::Config("repository option max_retries takes a number 0..100".into()),
                )?)
            }
            "checksum" => self.checksum = Some(parse_bool(name, v)?),
            "conditional_put" => self.conditional_put = Some(parse_bool(name, v)?),
            other => return Err(Error::Internal(format!("option {other} has no setter"))),
        }
        Ok(())
    }

    /// Parses `key=value` strings (the `--repo-option` flags), later ones
    /// overriding earlier ones.
    pub fn from_pairs<I, S>(pairs: I) -> Result<RepoOptions>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut o = RepoOptions::default();
        o.merge_pairs(pairs)?;
        Ok(o)
    }

    /// Sets `key=value` strings on top of these options (later ones win).
    pub fn merge_pairs<I, S>(&mut self, pairs: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let o = self;
        for (i, p) in pairs.into_iter().enumerate() {
            let p = p.as_ref();
            let Some((k, v)) = p.split_once('=') else {
                // Not echoed: a value given without its key may be a secret
                // (found by the repo_options fuzz target).
                return Err(Error::Config(format!(
                    "repository option #{} is not KEY=VALUE; valid keys: {}",
                    i + 1,
                    valid_keys().join(", ")
                )));
            };
            o.set(k, v)?;
        }
        Ok(())
    }

    /// Names of the options that are set.
    pub fn set_keys(&self) -> Vec<&'static str> {
        let set = [
            self.endpoint.is_some(),
            self.region.is_some(),
            self.access_key_id.is_some(),
            self.secret_access_key.is_some(),
            self.session_token.is_some(),
            self.virtual_hosted_style.is_some(),
            self.service_account_path.is_some(),
            self.service_account_key.is_some(),
            self.account.is_some(),
            self.access_key.is_some(),
            self.sas_token.is_some(),
            self.use_emulator.is_some(),
            self.allow_http.is_some(),
            self.request_timeout.is_some(),
            self.connect_timeout.is_some(),
            self.max_retries.is_some(),
            self.retry_timeout.is_some(),
            self.checksum.is_some(),
            self.conditional_put.is_some(),
        ];
        KEYS.iter()
            .zip(set)
            .filter(|(_, s)| *s)
            .map(|(k, _)| k.0)
            .collect()
    }

    /// Errors if a set option does not apply to the backend (`None`: a
    /// local directory, which takes no options).
    pub fn check_applies(&self, kind: Option<BucketKind>) -> Result<()> {
        for key in self.set_keys() {
            let Some((_, scope, _)) = lookup(key) else {
                continue;
            };
            match kind {
                None => {
                    return Err(Error::Config(format!(
                        "repository option {key} does not apply to a local directory repository"
                    )))
                }
                Some(k) if !scope.applies(k) => {
                    return Err(Error::Config(format!(
                        "repository option {key} applies only to {} (this repository is {}://)",
                        scope.label(),
                        k.scheme()
                    )))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A scalar in a policy file table.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl<'de> serde::Deserialize<'de> for RepoOptions {
    /// From a map of the same keys as `--repo-option` (e.g. a TOML table);
    /// unknown keys are an error.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let map = BTreeMap::<String, Scalar>::deserialize(d)?;
        let mut o = RepoOptions::default();
        for (k, v) in map {
            let v = match v {
                Scalar::Bool(b) => b.to_string(),
                Scalar::Int(i) => i.to_string(),
                Scalar::Float(f) => f.to_string(),
                Scalar::Str(s) => s,
            };
            o.set(&k, &v).map_err(serde::de::Error::custom)?;
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pairs_parse_and_override() {
        let o = RepoOptions::from_pairs([
            "endpoint=http://127.0.0.1:9000",
            "Region=eu-west-1",
            "allow-http=true",
            "request_timeout=2m",
            "max_retries=3",
            "region=us-east-1",
        ])
        .unwrap();
        assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(o.region.as_deref(), Some("us-east-1"));
        assert_eq!(o.allow_http, Some(true));
        assert_eq!(o.request_timeout, Some(Duration::from_secs(120)));
        assert_eq!(o.max_retries, Some(3));
        assert_eq!(
            o.set_keys(),
            vec![
                "endpoint",
                "region",
                "allow_http",
                "request_timeout",
                "max_retries"
            ]
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_the_valid_list() {
        let e = RepoOptions::from_pairs(["regoin=eu"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean region"), "{e}");
        assert!(e.contains("valid options: endpoint, region"), "{e}");
        let e = RepoOptions::from_pairs(["aws_secret=hunter2"])
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        let e = RepoOptions::from_pairs(["region=eu", "hunter2"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("option #2 is not KEY=VALUE") && !e.contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn secrets_never_show_in_debug_or_errors() {
        let o = RepoOptions::from_pairs(["secret_access_key=hunter2", "access_key_id=AKIAEXAMPLE"])
            .unwrap();
        let d = format!("{o:?}");
        assert!(!d.contains("hunter2") && !d.contains("AKIAEXAMPLE"), "{d}");
        let e = RepoOptions::from_pairs(["allow_http=hunter2"])
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn keys_must_apply_to_the_backend() {
        let o = RepoOptions::from_pairs(["region=eu"]).unwrap();
        assert!(o.check_applies(Some(BucketKind::S3)).is_ok());
        let e = o
            .check_applies(Some(BucketKind::Gcs))
            .unwrap_err()
            .to_string();
        assert!(e.contains("applies only to s3://"), "{e}");
        assert!(o.check_applies(None).is_err());
        assert!(RepoOptions::default().check_applies(None).is_ok());
    }

    #[test]
    fn a_policy_table_deserializes_with_the_same_checks() {
        let o: RepoOptions = serde_json::from_str(
            r#"{"endpoint": "http://localhost:9000", "allow_http": true, "max_retries": 4}"#,
        )
        .unwrap();
        assert_eq!(o.allow_http, Some(true));
        assert_eq!(o.max_retries, Some(4));
        let e = serde_json::from_str::<RepoOptions>(r#"{"endpiont": "x"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean endpoint"), "{e}");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("5 fortnights"), None);
        assert_eq!(parse_duration("99999999999999999999h"), None);
    }

    proptest! {
        #[test]
        fn arbitrary_pairs_never_panic_nor_leak_values(
            key in "[a-zA-Z_-]{0,24}",
            value in "\\PC{0,40}",
        ) {
            let secret = format!("SECRET{value}");
            if let Err(e) = RepoOptions::from_pairs([format!("{key}={secret}")]) {
                let msg = e.to_string();
                prop_assert!(!msg.contains(&secret), "{}", msg);
            }
        }

        #[test]
        fn every_valid_key_with_a_good_value_is_accepted(
            i in 0..KEYS.len(),
            n in 1u32..100,
        ) {
            let key = KEYS[i].0;
            let value = match key {
                "virtual_hosted_style" | "use_emulator" | "allow_http" | "checksum" | "conditional_put" => "true".to_string(),
                "request_timeout" | "connect_timeout" | "retry_timeout" => format!("{n}s"),
                "max_retries" => n.to_string(),
                _ => format!("v{n}"),
            };
            let o = RepoOptions::from_pairs([format!("{}={value}", key.replace('_', "-"))]).unwrap();
            prop_assert_eq!(o.set_keys(), vec![key]);
        }
    }
}
