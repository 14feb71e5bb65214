//! Repository locations: `file://` URLs and plain paths, `s3://`, `gs://`
//! and `az://` URLs. Parsing never looks at credentials: a location is the
//! scheme, the bucket (or container) and the prefix inside it, nothing else,
//! so its display is always safe to print.

use crate::error::{Error, Result};
use std::fmt;

/// Where a repository lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A local directory.
    Local(std::path::PathBuf),
    /// An object store bucket and a prefix in it (no leading or trailing `/`).
    Bucket {
        kind: BucketKind,
        bucket: String,
        prefix: String,
    },
}

/// The cloud API a bucket is reached through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketKind {
    /// Amazon S3 and S3-compatible stores (R2, OCI, MinIO, ...).
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage (the "bucket" is the container).
    Azure,
}

impl BucketKind {
    pub fn scheme(self) -> &'static str {
        match self {
            BucketKind::S3 => "s3",
            BucketKind::Gcs => "gs",
            BucketKind::Azure => "az",
        }
    }
}

const SCHEMES: &str =
    "a local path, file://PATH, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or az://CONTAINER/PREFIX";

impl Location {
    /// Parses a `--repo` value.
    pub fn parse(s: &str) -> Result<Location> {
        if s.trim().is_empty() {
            return Err(Error::Config("empty repository location".into()));
        }
        let Some((scheme, rest)) = s.split_once("://") else {
            return Ok(Location::Local(s.into()));
        };
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                if rest.is_empty() {
                    return Err(Error::Config("empty repository path in file:// URL".into()));
                }
                return Ok(Location::Local(rest.into()));
            }
            "s3" | "s3a" => BucketKind::S3,
            "gs" | "gcs" => BucketKind::Gcs,
            "az" | "azure" | "abfs" => BucketKind::Azure,
            other => {
                // Never echo the rest: it might be a URL with credentials.
                let shown: String = other.chars().take(16).collect();
                return Err(Error::Config(format!(
                    "unsupported repository scheme {shown:?}:// (use {SCHEMES})"
                )));
            }
        };
        if rest.contains('@') || rest.contains('?') || rest.contains('#') {
            return Err(Error::Config(format!(
                "a {}:// repository URL takes no credentials, query or fragment: pass them as --repo-option key=value or environment variables (docs/storage.md)",
                kind.scheme()
            )));
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if !valid_bucket(bucket) {
            return Err(Error::Config(format!(
                "invalid bucket name {:?} in {}:// repository URL (letters, digits, '.', '-', '_'; 1 to 255 characters)",
                bucket.chars().take(64).collect::<String>(),
                kind.scheme()
            )));
        }
        let mut parts = Vec::new();
        for seg in prefix.split('/').filter(|p| !p.is_empty()) {
            if seg == "." || seg == ".." || seg.chars().any(|c| c.is_control()) {
                return Err(Error::Config(format!(
                    "invalid path segment {seg:?} in repository prefix"
                )));
            }
            parts.push(seg);
        }
        Ok(Location::Bucket {
            kind,
            bucket: bucket.to_string(),
            prefix: parts.join("/"),
        })
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Location::Local(_))
    }
}

fn valid_bucket(b: &str) -> bool {
    !b.is_empty()
        && b.len() <= 255
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
}

impl fmt::Display for Location {
    /// Scheme, bucket and prefix only (the safe form for messages).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Bucket {
                kind,
                bucket,
                prefix,
            } if prefix.is_empty() => write!(f, "{}://{bucket}", kind.scheme()),
            Location::Bucket {
                kind,
                bucket,
                prefix,
            } => write!(f, "{}://{bucket}/{prefix}", kind.scheme()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn schemes_parse() {
        assert_eq!(
            Location::parse("/var/backups").unwrap(),
            Location::Local("/var/backups".into())
        );
        assert_eq!(
            Location::parse("file:///var/b").unwrap(),
            Location::Local("/var/b".into())
        );
        let l = Location::parse("s3://my-bucket/team/app/").unwrap();
        assert_eq!(
            l,
            Location::Bucket {
                kind: BucketKind::S3,
                bucket: "my-bucket".into(),
                prefix: "team/app".into()
            }
        );
        assert_eq!(l.to_string(), "s3://my-bucket/team/app");
        assert_eq!(Location::parse("gs://b").unwrap().to_string(), "gs://b");
        assert_eq!(
            Location::parse("az://container/x").unwrap().to_string(),
            "az://container/x"
        );
    }

    #[test]
    fn bad_locations_are_refused_without_echoing_secrets() {
        for bad in [
            "s3://AKIA:supersecret@bucket/x",
            "s3://bucket/x?secret=supersecret",
            "ftp://supersecret",
            "s3:///x",
            "s3://bucket/../x",
            "file://",
            "",
        ] {
            let e = Location::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("supersecret"), "{bad}: {e}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_display_reparses(s in "\\PC{0,64}") {
            if let Ok(l) = Location::parse(&s) {
                if !l.is_local() {
                    prop_assert_eq!(Location::parse(&l.to_string()).unwrap(), l);
                }
            }
        }

        #[test]
        fn bucket_urls_round_trip(
            scheme in prop::sample::select(vec!["s3", "gs", "az"]),
            bucket in "[a-z0-9][a-z0-9.-]{0,20}",
            segs in prop::collection::vec("[a-zA-Z0-9_=-]{1,8}", 0..4),
        ) {
            let url = format!("{scheme}://{bucket}/{}", segs.join("/"));
            let l = Location::parse(&url).unwrap();
            match &l {
                Location::Bucket { bucket: b, prefix, .. } => {
                    prop_assert_eq!(b, &bucket);
                    prop_assert_eq!(prefix, &segs.join("/"));
                }
                _ => prop_assert!(false, "not a bucket: {:?}", l),
            }
        }
    }
}
