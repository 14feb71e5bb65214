//! Hash-chain verification end to end on the real server: the fixture
//! event store (`tests/fixtures/chain_events.sql`, 50 streams × 40 events),
//! tampered in every way the issue lists, checked live and from backups,
//! which must agree report for report; `--against` catches a recomputed
//! stream and a truncated head; the CLI's exit codes.

use crate::cli::{pgkeep, text};
use crate::pgkeep::{
    backup_with, repo, restore_options, restore_with, settings, small_backup_options,
};
use crate::support::{cluster, SUPERUSER_PASSWORD};
use pgkeep::archive::index::read_manifest;
use pgkeep::chain::{verify_archive, verify_live, ChainsReport, Check, StreamFilter};
use pgkeep::config::{ChainDef, Policy};
use pgkeep::keys::Unlock;
use pgkeep::store::Repo;
use std::path::PathBuf;

const STREAMS: u64 = 50;
const EVENTS: u64 = 40;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn chains() -> Vec<ChainDef> {
    Policy::load(&fixture("chain_events.toml"))
        .expect("fixture policy loads")
        .chain
}

/// A fresh database holding the fixture event store.
async fn event_store(prefix: &str) -> String {
    let c = cluster();
    let db = c.create_db(prefix).await;
    c.psql_file(&db, fixture("chain_events.sql"));
    c.psql(&db, &format!("SELECT evt.generate({STREAMS}, {EVENTS})"));
    db
}

async fn sql(db: &str, sql: &str) {
    cluster()
        .client(db)
        .await
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
}

async fn live(db: &str) -> ChainsReport {
    live_only(db, StreamFilter::All).await
}

async fn live_only(db: &str, filter: StreamFilter) -> ChainsReport {
    verify_live(&settings(db), &chains(), &filter)
        .await
        .expect("live verification runs")
}

/// Backs `db` up with the chain policy; returns the backup id.
async fn backup_chains(r: &Repo, db: &str) -> String {
    let mut o = small_backup_options(db);
    o.chains = chains();
    backup_with(r, &o).await.expect("backup succeeds").id
}

async fn archive(r: &Repo, id: &str, against: Option<&str>) -> ChainsReport {
    archive_only(r, id, StreamFilter::All, against).await
}

async fn archive_only(
    r: &Repo,
    id: &str,
    filter: StreamFilter,
    against: Option<&str>,
) -> ChainsReport {
    verify_archive(r, id, &chains(), &filter, against, &Unlock::default())
        .await
        .expect("archive verification runs")
}

/// (stream, seq, check) of every failure.
fn failures(r: &ChainsReport) -> Vec<(String, Option<i64>, Check)> {
    r.chains
        .iter()
        .flat_map(|c| {
            c.failures
                .iter()
                .map(|f| (f.stream.clone(), f.seq, f.check))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_store_holds_live_and_from_the_archive_and_heads_are_recorded() {
    let db = event_store("chain_valid").await;
    let report = live(&db).await;
    assert!(report.ok, "{report:#?}");
    assert_eq!(
        (report.streams, report.events, report.broken),
        (STREAMS, STREAMS * EVENTS, 0)
    );

    let dir = tempfile::tempdir().unwrap();
    let r = repo(dir.path());
    let id = backup_chains(&r, &db).await;
    assert_eq!(archive(&r, &id, None).await, report);

    let m = read_manifest(&r, &id, &Unlock::default()).await.unwrap();
    let rec = &m.body.chains[0];
    assert_eq!(rec.table, "evt.evt_events");
    let slices = m
        .body
        .streams
        .iter()
        .filter(|s| s.toc_id == m.body.streams[rec.stream as usize].toc_id)
        .count();
    assert_eq!(slices, 1, "a chain table is never split into ctid slices");
    assert_eq!(rec.heads.len() as u64, STREAMS);
    let head = rec
        .heads
        .iter()
        .find(|h| h.stream == vec![Some("order".to_string()), Some("id-3".to_string())])
        .expect("head of order/id-3");
    let want: String = cluster()
        .client(&db)
        .await
        .query_one(
            "SELECT hash FROM evt.evt_events WHERE stream_id = 'id-3' AND stream_seq = 40",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        (head.seq, head.hash.as_str()),
        (EVENTS as i64, want.as_str())
    );

    // The ordered stream restores like any other, and the copy still holds.
    let dst = cluster().create_db("chain_valid_dst").await;
    restore_with(&r, &id, &restore_options(&dst))
        .await
        .expect("restore");
    assert_eq!(live(&dst).await, report);
}

/// An encrypted backup: the chain check reads it with the key (same report
/// as live), and refuses without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_verify_from_an_encrypted_backup_with_its_key() {
    use pgkeep::crypto::SecretInput;
    let db = event_store("chain_enc").await;
    let dir = tempfile::tempdir().unwrap();
    let r = repo(dir.path());
    let key = || SecretInput::Raw(zeroize::Zeroizing::new([4; 32]));
    pgkeep::keys::add_key(&r, &Unlock::default(), &key(), None)
        .await
        .unwrap();
    let id = backup_chains(&r, &db).await;
    let with_key = verify_archive(
        &r,
        &id,
        &chains(),
        &StreamFilter::All,
        None,
        &Unlock::new(vec![key()]),
    )
    .await
    .unwrap();
    assert_eq!(with_key, live(&db).await);
    assert!(with_key.ok);
    let e = verify_archive(
        &r,
        &id,
        &chains(),
        &StreamFilter::All,
        None,
        &Unlock::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, pgkeep::Error::Key(_)), "{e}");
}

/// Rows of an inheritance child are not the chain table's own rows: the
/// backup dumps the child as its own table, and live mode reads `ONLY` the
/// named table, so both modes report the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_and_archive_agree_when_the_chain_table_has_a_child() {
    let db = event_store("chain_child").await;
    sql(
        &db,
        "CREATE TABLE evt.evt_extra () INHERITS (evt.evt_events);
         INSERT INTO evt.evt_extra SELECT * FROM evt.evt_events WHERE stream_seq = 7;",
    )
    .await;
    let report = live(&db).await;
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.events, STREAMS * EVENTS);
    let dir = tempfile::tempdir().unwrap();
    let r = repo(dir.path());
    let id = backup_chains(&r, &db).await;
    assert_eq!(archive(&r, &id, None).await, report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tampering_is_reported_at_its_stream_and_seq_in_both_modes() {
    let db = event_store("chain_tamper").await;
    // Streams: 'id-N' has type order (N % 3 = 0), user (1) or invoice (2).
    sql(&db, "
        -- changed payload
        UPDATE evt.evt_events SET payload = payload || '{\"amount\": 0}' WHERE stream_id = 'id-3' AND stream_seq = 17;
        -- deleted middle event
        DELETE FROM evt.evt_events WHERE stream_id = 'id-4' AND stream_seq = 20;
        -- inserted event: later events move up one, the new one links validly to seq 9
        UPDATE evt.evt_events SET stream_seq = stream_seq + 1 WHERE stream_id = 'id-5' AND stream_seq >= 10;
        SELECT evt.link('id-5', 9, 10, 'injected');
        -- reordered pair
        UPDATE evt.evt_events SET stream_seq = CASE stream_seq WHEN 5 THEN 6 ELSE 5 END
         WHERE stream_id = 'id-6' AND stream_seq IN (5, 6);
        -- truncated start: the first event is gone
        DELETE FROM evt.evt_events WHERE stream_id = 'id-7' AND stream_seq = 1;
        -- fork: a second, validly linked event at seq 12
        SELECT evt.link('id-8', 11, 12, 'forked');
        -- a stored hash that is not what the recipe gives
        UPDATE evt.evt_events SET hash = upper(hash) || '00' WHERE stream_id = 'id-9' AND stream_seq = 40;
    ").await;
    let report = live(&db).await;
    let expected = vec![
        ("order/id-3".to_string(), Some(17), Check::Hash),
        ("order/id-6".to_string(), Some(5), Check::PrevHash),
        ("order/id-9".to_string(), Some(40), Check::Hash),
        ("user/id-4".to_string(), Some(21), Check::Gap),
        ("user/id-7".to_string(), Some(2), Check::Start),
        ("invoice/id-5".to_string(), Some(11), Check::PrevHash),
        ("invoice/id-8".to_string(), Some(12), Check::Fork),
    ];
    let mut got = failures(&report);
    got.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(got, want, "{report:#?}");
    assert!(!report.ok);
    assert_eq!((report.streams, report.broken), (STREAMS, 7));
    let gap = &report.chains[0]
        .failures
        .iter()
        .find(|f| f.check == Check::Gap)
        .unwrap();
    assert_eq!((gap.expected.as_str(), gap.found.as_str()), ("20", "21"));

    let dir = tempfile::tempdir().unwrap();
    let r = repo(dir.path());
    let id = backup_chains(&r, &db).await;
    let from_archive = archive(&r, &id, None).await;
    assert_eq!(
        serde_json::to_value(&from_archive).unwrap(),
        serde_json::to_value(&report).unwrap(),
        "live and archive JSON reports are identical"
    );

    // One stream, and one stream type.
    let one = live_only(&db, StreamFilter::Stream("order/id-3".into())).await;
    assert_eq!((one.streams, one.events, one.broken), (1, EVENTS, 1));
    let one_archived = archive_only(&r, &id, StreamFilter::Stream("order/id-3".into()), None).await;
    assert_eq!(one_archived, one);
    let users = live_only(&db, StreamFilter::Type("user".into())).await;
    assert_eq!((users.streams, users.broken), (17, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_an_older_backup_catches_recomputed_and_truncated_history() {
    let db = event_store("chain_against").await;
    let dir = tempfile::tempdir().unwrap();
    let r = repo(dir.path());
    let older = backup_chains(&r, &db).await;
    sql(&db, "
        -- recomputed after a change: valid on its own
        UPDATE evt.evt_events SET payload = '{\"amount\": 1000000}' WHERE stream_id = 'id-10' AND stream_seq = 5;
        SELECT evt.rehash('user', 'id-10');
        -- truncated head: the last two events are gone
        DELETE FROM evt.evt_events WHERE stream_id = 'id-11' AND stream_seq > 38;
        -- history extended: fine
        SELECT evt.link('id-12', 40, 41, 'more');
    ").await;
    let report = live(&db).await;
    assert!(report.ok, "each stream is valid on its own: {report:#?}");
    let newer = backup_chains(&r, &db).await;
    assert!(archive(&r, &newer, None).await.ok);

    let against = archive(&r, &newer, Some(&older)).await;
    assert_eq!(
        failures(&against),
        vec![
            ("invoice/id-11".to_string(), Some(40), Check::Truncated),
            ("user/id-10".to_string(), Some(40), Check::Rewritten),
        ],
        "{against:#?}"
    );
    let rewritten = &against.chains[0].failures[1];
    let old_head = &read_manifest(&r, &older, &Unlock::default())
        .await
        .unwrap()
        .body
        .chains[0]
        .heads
        .iter()
        .find(|h| h.stream[1].as_deref() == Some("id-10"))
        .unwrap()
        .hash
        .clone();
    assert_eq!(&rewritten.expected, old_head);
    assert_ne!(&rewritten.found, old_head);
    // The older backup against itself is refused; the other way round the
    // newer heads are missing.
    assert!(verify_archive(
        &r,
        &older,
        &chains(),
        &StreamFilter::All,
        Some(&older),
        &Unlock::default()
    )
    .await
    .is_err());
}

/// Runs pgkeep and asserts its exit code.
fn expect(args: &[&str], code: i32) -> std::process::Output {
    let o = pgkeep(args);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_exit_codes_flags_policy_and_restore_verify_chains() {
    let c = cluster();
    let db = event_store("chain_cli").await;
    let url = c.url(&db);
    let policy = fixture("chain_events.toml");
    let policy = policy.to_str().unwrap();
    let mut outputs = Vec::new();

    let o = expect(
        &[
            "chain", "verify", "--db", &url, "--policy", policy, "--json",
        ],
        0,
    );
    let by_policy: ChainsReport = serde_json::from_slice(&o.stdout).expect("JSON report");
    assert_eq!(by_policy.events, STREAMS * EVENTS);
    outputs.push(o);

    let flags = [
        "--table",
        "evt.evt_events",
        "--stream-key",
        "stream_type,stream_id",
        "--seq",
        "stream_seq",
        "--prev-hash",
        "prev_hash",
        "--hash",
        "hash",
        "--separator",
        "|",
        "--part",
        "prev_hash",
        "--part",
        "stream_type",
        "--part",
        "stream_id",
        "--part",
        "stream_seq",
        "--part",
        "event_type",
        "--part",
        "payload",
    ];
    let mut args = vec!["chain", "verify", "--db", &url, "--json"];
    args.extend(flags);
    let o = expect(&args, 0);
    assert_eq!(
        serde_json::from_slice::<ChainsReport>(&o.stdout).unwrap(),
        by_policy
    );
    outputs.push(o);

    // Bad input: exit 2.
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        bad.path(),
        "[[chain]]\ntable = \"evt.evt_events\"\nstreams = []\n",
    )
    .unwrap();
    let o = expect(
        &[
            "chain",
            "verify",
            "--db",
            &url,
            "--policy",
            bad.path().to_str().unwrap(),
        ],
        2,
    );
    assert!(text(&o).contains("streams"), "{}", text(&o));
    outputs.push(o);
    let o = expect(
        &["chain", "verify", "--db", &url, "--table", "evt_events"],
        2,
    );
    outputs.push(o);

    // A valid backup, then a broken chain: exit 3, from the database and
    // from a restored copy with --verify-chains.
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = dir.path().join("repo");
    let repo_dir = repo_dir.to_str().unwrap();
    sql(
        &db,
        "UPDATE evt.evt_events SET payload = '{}' WHERE stream_id = 'id-3' AND stream_seq = 17",
    )
    .await;
    let o = expect(&["chain", "verify", "--db", &url, "--policy", policy], 3);
    assert!(
        text(&o).contains("stream order/id-3 seq 17: hash mismatch"),
        "{}",
        text(&o)
    );
    outputs.push(o);

    let o = expect(
        &[
            "backup", "--db", &url, "--repo", repo_dir, "--policy", policy, "--json",
        ],
        0,
    );
    outputs.push(o);
    let o = expect(
        &[
            "chain",
            "verify",
            "--repo",
            repo_dir,
            "latest",
            "--policy",
            policy,
            "--stream",
            "order/id-3",
        ],
        3,
    );
    outputs.push(o);
    let o = expect(
        &[
            "chain",
            "verify",
            "--repo",
            repo_dir,
            "--policy",
            policy,
            "--stream",
            "order/id-6",
        ],
        0,
    );
    outputs.push(o);

    let dst = c.create_db("chain_cli_dst").await;
    let dst_url = c.url(&dst);
    let o = expect(
        &[
            "restore",
            "--repo",
            repo_dir,
            "--db",
            &dst_url,
            "--policy",
            policy,
            "--verify-chains",
            "--json",
        ],
        3,
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["chains"]["broken"], 1);
    assert_eq!(v["restore"]["rows"], STREAMS * EVENTS);
    outputs.push(o);

    let o = pgkeep(&[
        "restore",
        "--repo",
        repo_dir,
        "--db",
        &dst_url,
        "--verify-chains",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "--verify-chains needs --policy: {}",
        text(&o)
    );
    outputs.push(o);

    // A policy naming a column the table lacks fails the backup as bad
    // input, before any data is written.
    let wrong = tempfile::NamedTempFile::new().unwrap();
    let text_policy = std::fs::read_to_string(policy).unwrap();
    std::fs::write(
        wrong.path(),
        text_policy.replace("\"stream_seq\"", "\"seq_no\""),
    )
    .unwrap();
    let wrong = wrong.path().to_str().unwrap();
    let other = dir.path().join("other");
    let other = other.to_str().unwrap();
    let o = expect(
        &["backup", "--db", &url, "--repo", other, "--policy", wrong],
        2,
    );
    assert!(text(&o).contains("seq_no"), "{}", text(&o));
    outputs.push(o);
    // A backup taken without the chain in --policy cannot be verified as one.
    outputs.push(expect(&["backup", "--db", &url, "--repo", other], 0));
    let o = expect(&["chain", "verify", "--repo", other, "--policy", policy], 2);
    assert!(text(&o).contains("chain order"), "{}", text(&o));
    outputs.push(o);

    for o in &outputs {
        assert!(
            !text(o).contains(SUPERUSER_PASSWORD),
            "password printed: {}",
            text(o)
        );
    }
}
