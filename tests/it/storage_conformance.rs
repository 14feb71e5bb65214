//! The storage behaviour pgkeep relies on, as one suite every backend's
//! test calls ([`check`]): create-only puts, multipart uploads with equal
//! parts, ranged reads that tell the object's size, listing, bulk delete.

use crate::support::s3::{Recording, RecordingStore};
use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use pgkeep::store::Repo;
use std::sync::Arc;

/// The part size the suite uploads with (S3's minimum).
pub const PART: usize = 5 << 20;

/// Runs the suite against `repo` (named `name` in failures), recording
/// every request it makes.
pub async fn check(name: &str, repo: Repo) {
    let log = Arc::new(Recording::default());
    let repo = repo.map_store(|s| RecordingStore::wrap(s, log.clone()));
    conformance(name, repo, log).await;
}

/// The storage behaviour pgkeep relies on, checked against one backend.
async fn conformance(name: &str, repo: Repo, log: Arc<Recording>) {
    let p = |s: &str| Path::from(format!("conformance/{s}"));
    // Create-only put: the second writer of a name fails.
    repo.put_new(&p("manifest"), b"one".to_vec())
        .await
        .unwrap_or_else(|e| panic!("{name}: create-only put: {e}"));
    let second = repo.put_new(&p("manifest"), b"two".to_vec()).await;
    assert!(
        matches!(
            second,
            Err(pgkeep::Error::Store {
                source: object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. },
                ..
            })
        ),
        "{name}: second create-only put must conflict: {second:?}"
    );
    assert_eq!(
        repo.get(&p("manifest")).await.unwrap(),
        Bytes::from_static(b"one")
    );

    // Multipart with equal parts, then ranged reads across a part boundary.
    let data: Vec<u8> = (0..(2 * PART + 12345)).map(|i| (i % 251) as u8).collect();
    let mut w = repo.multipart(&p("data/pack"), PART).await.unwrap();
    for chunk in data.chunks(300_001) {
        w.wait_for_capacity(2).await.unwrap();
        w.put(Bytes::copy_from_slice(chunk));
    }
    w.finish()
        .await
        .unwrap_or_else(|e| panic!("{name}: complete: {e}"));
    let sizes = log
        .parts
        .lock()
        .unwrap()
        .get("conformance/data/pack")
        .cloned();
    assert_eq!(sizes, Some(vec![PART, PART, 12345]), "{name}: part sizes");
    let r = (PART as u64 - 10)..(PART as u64 + 10);
    assert_eq!(
        repo.get_range_sized(&p("data/pack"), r.clone())
            .await
            .unwrap()
            .0,
        &data[r.start as usize..r.end as usize],
        "{name}: ranged get"
    );
    // A ranged read also tells the whole object's size, and a range past
    // the end returns the bytes there are: verify learns from its first
    // read of a pack whether bytes were cut off or appended.
    let len = data.len() as u64;
    for r in [r.clone(), (len - 5)..(len + 100), len..(len + 10)] {
        let (bytes, size) = repo
            .get_range_sized(&p("data/pack"), r.clone())
            .await
            .unwrap_or_else(|e| panic!("{name}: ranged get with size: {e}"));
        let want = &data[r.start as usize..r.end.min(len) as usize];
        assert_eq!(
            (&bytes[..], size),
            (want, len),
            "{name}: ranged get with size"
        );
    }
    // Abort leaves no object.
    let mut w = repo.multipart(&p("data/aborted"), PART).await.unwrap();
    w.put(Bytes::from(vec![7u8; PART + 1]));
    w.wait_for_capacity(0).await.unwrap();
    w.abort()
        .await
        .unwrap_or_else(|e| panic!("{name}: abort: {e}"));
    assert!(
        !repo.exists(&p("data/aborted")).await.unwrap(),
        "{name}: aborted upload is not an object"
    );

    // Listing, then deleting a prefix.
    let mut listed: Vec<String> = repo
        .list_all(&Path::from("conformance"))
        .await
        .unwrap()
        .into_iter()
        .map(|(p, _)| p.to_string())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec!["conformance/data/pack", "conformance/manifest"],
        "{name}: list"
    );
    assert_eq!(
        repo.list_dirs(&Path::from("conformance")).await.unwrap(),
        vec!["data"]
    );
    assert_eq!(
        repo.delete_prefix(&Path::from("conformance"))
            .await
            .unwrap(),
        2
    );
    assert!(
        repo.list_all(&Path::from("conformance"))
            .await
            .unwrap()
            .is_empty(),
        "{name}: delete"
    );
    assert!(repo.head(&p("manifest")).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms() {
    check(
        "memory",
        Repo::from_store(Arc::new(InMemory::new()), "memory"),
    )
    .await;
}
