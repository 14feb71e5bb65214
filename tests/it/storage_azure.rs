//! Azure repositories against Azurite on loopback: a round trip and the
//! storage conformance suite.

use crate::pgkeep::*;
use crate::storage_s3::{s3_backup_options, BULK};
use crate::support::azure::Azurite;
use crate::support::{assert_same_database, cluster};
use pgkeep::archive::index::read_manifest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_round_trips_the_kitchen_sink() {
    let azurite = Azurite::start();
    azurite.create_container("rt-az");
    let repo = azurite.repo("rt-az", "app");
    assert_eq!(repo.display(), "az://rt-az/app");
    let c = cluster();
    let src = c.create_db("az_sink_src").await;
    c.load_kitchen_sink(&src);
    c.client(&src).await.batch_execute(BULK).await.unwrap();
    let header = backup_with(&repo, &s3_backup_options(&src))
        .await
        .expect("backup to Azure succeeds");
    let m = read_manifest(&repo, &header.id, &pgkeep::keys::Unlock::default())
        .await
        .unwrap();
    let report = verify_plain(&repo, &header.id).await;
    assert!(report.ok && report.rows == m.header.rows, "{report:?}");
    let dst = c.create_db("az_sink_dst").await;
    restore_with(&repo, &header.id, &restore_options(&dst))
        .await
        .expect("restore from Azure succeeds");
    assert_same_database(c, &src, &dst).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_conforms() {
    let azurite = Azurite::start();
    azurite.create_container("conf");
    crate::storage_conformance::check("azure (azurite)", azurite.repo("conf", "p")).await;
}
