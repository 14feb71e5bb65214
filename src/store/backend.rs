//! Building an `object_store` client for a bucket location: options first,
//! then the backend's standard environment variables (object_store's
//! `from_env` builders: `AWS_*`, `GOOGLE_*`, `AZURE_*`), then defaults.
//! Client settings (request timeout sized from the largest request, retries
//! with backoff) are pgkeep's, not object_store's defaults.

use super::location::BucketKind;
use super::options::RepoOptions;
use crate::error::{Error, Result};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, Checksum, S3ConditionalPut};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::{BackoffConfig, ClientConfigKey, ClientOptions, ObjectStore, RetryConfig};
use std::sync::Arc;
use std::time::Duration;

/// The slowest uplink a default request timeout allows for (bytes/s).
pub const SLOWEST_LINK: u64 = 256 * 1024;
/// Fixed part of every request timeout (latency, server time).
pub const BASE_TIMEOUT: Duration = Duration::from_secs(30);

/// The default timeout for requests of up to `request_bytes`: long enough to
/// send them at [`SLOWEST_LINK`] plus [`BASE_TIMEOUT`]. object_store's own
/// default (30 s in total) fails a 64 MiB part on anything under ~2 MiB/s.
pub fn default_request_timeout(request_bytes: usize) -> Duration {
    BASE_TIMEOUT + Duration::from_secs((request_bytes as u64).div_ceil(SLOWEST_LINK))
}

/// The clients of one bucket: `store` for everything, `put_store` for
/// single-part puts (the same client, or one that also sends
/// `x-amz-checksum-sha256`: object_store applies its checksum setting to
/// multipart uploads too, and multipart SHA-256 completion is broken on real
/// S3, object_store issue #709, so packs go through `store`).
pub struct Clients {
    pub store: Arc<dyn ObjectStore>,
    pub put_store: Arc<dyn ObjectStore>,
    /// Whether `PutMode::Create` is sent to the store.
    pub conditional_put: bool,
}

/// The request timeout and retry policy of a repository's client.
fn timeouts(o: &RepoOptions, request_bytes: usize) -> (Duration, RetryConfig) {
    let timeout = o
        .request_timeout
        .unwrap_or_else(|| default_request_timeout(request_bytes));
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        },
        max_retries: o.max_retries.unwrap_or(10),
        // A retry must still be possible after one timed-out request.
        retry_timeout: o
            .retry_timeout
            .unwrap_or_else(|| (2 * timeout).max(Duration::from_secs(180))),
    };
    (timeout, retry)
}

fn duration_text(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// Sets the client options of a builder in place, on top of what its
/// `from_env` read: a `--repo-option` overrides the environment
/// (`AWS_ALLOW_HTTP`, `AWS_TIMEOUT`, ...), and pgkeep's defaults fill in
/// only what neither gave. (`with_client_options` would replace every
/// client option the environment set.)
fn apply_client_options<B>(
    mut b: B,
    o: &RepoOptions,
    timeout: Duration,
    get: impl Fn(&B, ClientConfigKey) -> Option<String>,
    set: impl Fn(B, ClientConfigKey, String) -> B,
) -> B {
    let given = [
        (ClientConfigKey::Timeout, o.request_timeout, timeout),
        (
            ClientConfigKey::ConnectTimeout,
            o.connect_timeout,
            Duration::from_secs(10),
        ),
    ];
    // What object_store would use when nobody set the key: a builder
    // still holding it was not configured by the environment.
    let untouched = ClientOptions::default();
    for (key, option, default) in given {
        match option {
            Some(v) => b = set(b, key, duration_text(v)),
            None if get(&b, key) == untouched.get_config_value(&key) => {
                b = set(b, key, duration_text(default))
            }
            None => {}
        }
    }
    if let Some(h) = o.allow_http {
        b = set(b, ClientConfigKey::AllowHttp, h.to_string());
    }
    b
}

/// A plain-HTTP endpoint without `allow_http` fails every request with a
/// bare "builder error": refuse it up front, saying how to allow it.
fn check_plain_http(endpoint: Option<String>, allow_http: Option<String>, env: &str) -> Result<()> {
    let plain = endpoint.is_some_and(|e| e.to_ascii_lowercase().starts_with("http://"));
    if plain && allow_http.as_deref() != Some("true") {
        return Err(Error::Config(format!(
            "the repository endpoint is plain HTTP, which is refused unless allowed: set allow_http=true (--repo-option allow_http=true or {env}=true)"
        )));
    }
    Ok(())
}

/// Builds the clients for `kind://bucket`. `request_bytes` is the largest
/// request body pgkeep will send (the part size), for the default timeout.
pub fn build(
    kind: BucketKind,
    bucket: &str,
    o: &RepoOptions,
    request_bytes: usize,
) -> Result<Clients> {
    super::install_crypto_provider();
    let (timeout, retry) = timeouts(o, request_bytes);
    let what = format!("{}://{bucket}", kind.scheme());
    let fail = |e: object_store::Error| {
        // Builder errors name keys and values: keep only the kind of problem.
        let msg = match &e {
            object_store::Error::Generic { source, .. } => first_line(&source.to_string()),
            other => first_line(&other.to_string()),
        };
        Error::Config(format!(
            "cannot configure repository {what}: {} (see docs/storage.md)",
            crate::redact::scrub_urls(&msg)
        ))
    };
    match kind {
        BucketKind::S3 => {
            let mut b = apply_client_options(
                AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry),
                o,
                timeout,
                |b, k| b.get_config_value(&AmazonS3ConfigKey::Client(k)),
                |b, k, v| b.with_config(AmazonS3ConfigKey::Client(k), v),
            );
            if let Some(v) = &o.endpoint {
                b = b.with_endpoint(v);
            }
            if let Some(v) = &o.region {
                b = b.with_region(v);
            }
            if let Some(v) = &o.access_key_id {
                b = b.with_access_key_id(v.expose());
            }
            if let Some(v) = &o.secret_access_key {
                b = b.with_secret_access_key(v.expose());
            }
            if let Some(v) = &o.session_token {
                b = b.with_token(v.expose());
            }
            if let Some(v) = o.virtual_hosted_style {
                b = b.with_virtual_hosted_style_request(v);
            }
            check_plain_http(
                b.get_config_value(&AmazonS3ConfigKey::Endpoint),
                b.get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp)),
                "AWS_ALLOW_HTTP",
            )?;
            let conditional_put = o.conditional_put.unwrap_or(true);
            if !conditional_put {
                b = b.with_conditional_put(S3ConditionalPut::Disabled);
            }
            let store: Arc<dyn ObjectStore> = Arc::new(b.clone().build().map_err(fail)?);
            let put_store: Arc<dyn ObjectStore> = if o.checksum.unwrap_or(true) {
                Arc::new(
                    b.with_checksum_algorithm(Checksum::SHA256)
                        .build()
                        .map_err(fail)?,
                )
            } else {
                store.clone()
            };
            Ok(Clients {
                store,
                put_store,
                conditional_put,
            })
        }
        BucketKind::Gcs => {
            let mut b = apply_client_options(
                GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry),
                o,
                timeout,
                |b, k| b.get_config_value(&GoogleConfigKey::Client(k)),
                |b, k, v| b.with_config(GoogleConfigKey::Client(k), v),
            );
            if let Some(v) = &o.service_account_path {
                b = b.with_service_account_path(v);
            }
            if let Some(v) = &o.service_account_key {
                b = b.with_service_account_key(v.expose());
            }
            let store: Arc<dyn ObjectStore> = Arc::new(b.build().map_err(fail)?);
            Ok(Clients {
                put_store: store.clone(),
                store,
                conditional_put: true,
            })
        }
        BucketKind::Azure => {
            let mut b = apply_client_options(
                MicrosoftAzureBuilder::from_env()
                    .with_container_name(bucket)
                    .with_retry(retry),
                o,
                timeout,
                |b, k| b.get_config_value(&AzureConfigKey::Client(k)),
                |b, k, v| b.with_config(AzureConfigKey::Client(k), v),
            );
            if let Some(v) = &o.account {
                b = b.with_account(v);
            }
            if let Some(v) = &o.access_key {
                b = b.with_access_key(v.expose());
            }
            if let Some(v) = &o.sas_token {
                b = b.with_config(AzureConfigKey::SasKey, v.expose());
            }
            if let Some(v) = o.use_emulator {
                b = b.with_use_emulator(v);
            }
            if let Some(v) = &o.endpoint {
                b = b.with_endpoint(v.clone());
            }
            let store: Arc<dyn ObjectStore> = Arc::new(b.build().map_err(fail)?);
            Ok(Clients {
                put_store: store.clone(),
                store,
                conditional_put: true,
            })
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_grow_with_the_part_size() {
        assert_eq!(default_request_timeout(0), BASE_TIMEOUT);
        let five = default_request_timeout(5 << 20);
        let sixty_four = default_request_timeout(64 << 20);
        assert_eq!(five, Duration::from_secs(50));
        assert!(sixty_four > Duration::from_secs(280), "{sixty_four:?}");
        let (_, retry) = timeouts(&RepoOptions::default(), 64 << 20);
        assert!(retry.retry_timeout >= 2 * sixty_four);
    }

    #[test]
    fn builds_without_network_or_secrets_in_errors() {
        let o = RepoOptions::from_pairs([
            "endpoint=http://127.0.0.1:1",
            "allow_http=true",
            "region=us-east-1",
            "access_key_id=AKIAEXAMPLE",
            "secret_access_key=hunter2",
        ])
        .unwrap();
        assert!(build(BucketKind::S3, "b", &o, 5 << 20).is_ok());
        // Plain HTTP without allow_http: one clear line, before any request.
        let bad = RepoOptions::from_pairs(["endpoint=http://127.0.0.1:1"]).unwrap();
        let e = build(BucketKind::S3, "b", &bad, 5 << 20)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("plain HTTP") && e.contains("allow_http=true"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod env_tests {
    use super::*;

    /// Client options the environment set survive pgkeep's defaults; a
    /// `--repo-option` overrides them (the builder is exercised through a
    /// plain `ClientOptions`, which has the same get/set pair).
    #[test]
    fn environment_client_options_are_kept_and_options_override_them() {
        let get = |c: &ClientOptions, k| c.get_config_value(&k);
        let set = |c: ClientOptions, k, v: String| c.with_config(k, v);
        let from_env = ClientOptions::new()
            .with_config(ClientConfigKey::AllowHttp, "true")
            .with_config(ClientConfigKey::Timeout, "7s");
        let none = RepoOptions::default();
        let c = apply_client_options(from_env.clone(), &none, Duration::from_secs(99), get, set);
        assert_eq!(get(&c, ClientConfigKey::AllowHttp).as_deref(), Some("true"));
        assert_eq!(get(&c, ClientConfigKey::Timeout).as_deref(), Some("7s"));
        assert_eq!(
            get(&c, ClientConfigKey::ConnectTimeout).as_deref(),
            Some("10000ms")
        );
        let given = RepoOptions::from_pairs(["allow_http=false", "request_timeout=2m"]).unwrap();
        let c = apply_client_options(from_env, &given, Duration::from_secs(99), get, set);
        assert_eq!(
            get(&c, ClientConfigKey::AllowHttp).as_deref(),
            Some("false")
        );
        assert_eq!(
            get(&c, ClientConfigKey::Timeout).as_deref(),
            Some("120000ms")
        );
        // Nothing from the environment: pgkeep's sized default.
        let c = apply_client_options(
            ClientOptions::new(),
            &none,
            Duration::from_secs(99),
            get,
            set,
        );
        assert_eq!(
            get(&c, ClientConfigKey::Timeout).as_deref(),
            Some("99000ms")
        );
    }
}
