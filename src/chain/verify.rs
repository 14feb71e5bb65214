//! The one streaming chain verifier, shared by live and archive mode (and by
//! backup, which uses it only to collect heads). It consumes the COPY text
//! of the chain table ordered by stream key, seq and hash, in chunks split
//! anywhere, and keeps state for one stream at a time: memory is
//! independent of the table's size (the report grows with broken streams,
//! collected heads and anchors with the number of streams).
//!
//! Per stream it checks, in this order for each event: the sequence starts
//! at `first_seq` and has no gaps, duplicates or forks; `prev_hash` equals
//! the previous event's `hash` (the genesis value for the first event);
//! the recomputed hash equals the stored one; and, with anchors from an
//! older backup, the older head is present with the same hash. Only the
//! first failure of a stream is reported.

use super::copytext::{Fields, RowSplitter};
use super::recipe::Evaluator;
use crate::archive::manifest::ChainHead;
use crate::config::ChainDef;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// A chain definition bound to the column order of a COPY stream.
#[derive(Clone, Debug)]
pub struct ChainPlan {
    pub table: String,
    /// Columns the stream must be ordered by ([`ChainDef::order_columns`]).
    pub order: Vec<String>,
    key: Vec<usize>,
    seq: usize,
    prev: usize,
    hash: usize,
    /// Fields the checks read (the others are not unescaped).
    wanted: Vec<bool>,
    /// Fields a head needs: stream key, seq, prev_hash, hash.
    head_fields: Vec<bool>,
    eval: Evaluator,
    first_seq: i64,
    genesis: Option<Vec<u8>>,
}

impl ChainPlan {
    /// Binds `def` to a stream whose fields are `columns`, in order.
    pub fn new(def: &ChainDef, columns: &[String]) -> Result<ChainPlan> {
        let position = |name: &str| columns.iter().position(|c| c == name);
        let need = |name: &str| {
            position(name).ok_or_else(|| {
                Error::Config(format!(
                    "chain {}: column {name:?} is not in the table (columns: {})",
                    def.table,
                    columns.join(", ")
                ))
            })
        };
        let key = def
            .stream
            .iter()
            .map(|c| need(c))
            .collect::<Result<Vec<_>>>()?;
        let (seq, prev, hash) = (need(&def.seq)?, need(&def.prev_hash)?, need(&def.hash)?);
        let eval = Evaluator::new(&def.recipe, position)
            .map_err(|m| Error::Config(format!("chain {}: {m}", def.table)))?;
        let mut head_fields = vec![false; columns.len()];
        for i in key.iter().copied().chain([seq, prev, hash]) {
            head_fields[i] = true;
        }
        let mut wanted = head_fields.clone();
        for i in eval.columns() {
            wanted[i] = true;
        }
        Ok(ChainPlan {
            table: def.table.clone(),
            order: def.order_columns(),
            key,
            seq,
            prev,
            hash,
            wanted,
            head_fields,
            eval,
            first_seq: def.first_seq,
            genesis: def.genesis.as_ref().map(|g| g.as_bytes().to_vec()),
        })
    }

    /// The columns a live query must select, in this order, for `def`:
    /// stream key, seq, prev_hash, hash, then the recipe's other columns.
    pub fn select_columns(def: &ChainDef) -> Vec<String> {
        let mut cols = def.stream.clone();
        cols.extend([def.seq.clone(), def.prev_hash.clone(), def.hash.clone()]);
        for p in &def.recipe.parts {
            if let crate::config::policy::Part::Column { name, .. } = p {
                if !cols.contains(name) {
                    cols.push(name.clone());
                }
            }
        }
        cols
    }
}

/// What failed at the first bad event of a stream.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// The first event's seq is not `first_seq`.
    Start,
    /// A sequence number is missing.
    Gap,
    /// Two events share a seq (with different prev_hash).
    Duplicate,
    /// Two events share a seq and the same prev_hash: the chain forks.
    Fork,
    /// prev_hash is not the previous event's hash (or the genesis value).
    PrevHash,
    /// The recomputed hash differs from the stored one.
    Hash,
    /// A value the checks need is NULL or malformed.
    Value,
    /// The older backup's head is there with another hash: history rewritten.
    Rewritten,
    /// The stream ends before the older backup's head.
    Truncated,
    /// A stream of the older backup is gone.
    MissingStream,
}

impl Check {
    pub fn describe(self) -> &'static str {
        match self {
            Check::Start => "sequence does not start at the first seq",
            Check::Gap => "sequence gap",
            Check::Duplicate => "duplicate seq",
            Check::Fork => "fork (two events with the same prev_hash)",
            Check::PrevHash => "prev_hash does not link to the previous event",
            Check::Hash => "hash mismatch",
            Check::Value => "bad value",
            Check::Rewritten => "older head rewritten",
            Check::Truncated => "older head missing (stream truncated)",
            Check::MissingStream => "stream of the older backup missing",
        }
    }
}

/// The first bad event of one stream.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Stream key values joined with `/`.
    pub stream: String,
    pub seq: Option<i64>,
    pub check: Check,
    pub expected: String,
    pub found: String,
}

/// The result for one chain table.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct ChainReport {
    pub table: String,
    pub streams: u64,
    pub events: u64,
    pub broken: u64,
    /// One per broken stream, sorted by stream and seq.
    pub failures: Vec<Failure>,
}

/// What a verifier run does besides the chain checks.
#[derive(Clone, Debug, Default)]
pub struct ChainOptions {
    /// Only streams whose first key values equal these.
    pub filter: Option<Vec<String>>,
    /// Heads of an older backup that must still be present.
    pub anchors: Option<Vec<ChainHead>>,
    /// Skip the checks; only collect heads (backup).
    pub heads_only: bool,
    /// Return the head (last seq and hash) of every stream.
    pub collect_heads: bool,
}

/// The verifier: feed COPY text, then [`Verifier::finish`].
pub struct Verifier {
    splitter: RowSplitter,
    state: State,
}

struct Current {
    key: Vec<Option<Vec<u8>>>,
    label: String,
    failed: bool,
    rows: u64,
    last_seq: Option<i64>,
    last_hash: Option<Vec<u8>>,
    last_prev: Option<Vec<u8>>,
    anchor: Option<ChainHead>,
    anchor_seen: bool,
}

struct State {
    plan: Arc<ChainPlan>,
    filter: Option<Vec<Vec<u8>>>,
    anchors: Option<HashMap<Vec<Option<String>>, ChainHead>>,
    heads_only: bool,
    collect_heads: bool,
    fields: Fields,
    scratch: (Vec<u8>, Vec<u8>),
    cur: Option<Current>,
    report: ChainReport,
    heads: Vec<ChainHead>,
    row_no: u64,
}

fn text(v: Option<&[u8]>) -> String {
    match v {
        Some(b) => String::from_utf8_lossy(b).into_owned(),
        None => "NULL".into(),
    }
}

impl Verifier {
    pub fn new(plan: Arc<ChainPlan>, opts: ChainOptions) -> Verifier {
        let anchors = opts.anchors.map(|a| {
            a.into_iter()
                .map(|h| (h.stream.clone(), h))
                .collect::<HashMap<_, _>>()
        });
        Verifier {
            splitter: RowSplitter::new(),
            state: State {
                report: ChainReport {
                    table: plan.table.clone(),
                    ..ChainReport::default()
                },
                plan,
                filter: opts
                    .filter
                    .map(|f| f.into_iter().map(String::into_bytes).collect()),
                anchors,
                heads_only: opts.heads_only,
                collect_heads: opts.collect_heads || opts.heads_only,
                fields: Fields::new(),
                scratch: (Vec::new(), Vec::new()),
                cur: None,
                heads: Vec::new(),
                row_no: 0,
            },
        }
    }

    /// Consumes the next chunk of COPY text.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<()> {
        let state = &mut self.state;
        self.splitter.feed(chunk, |row| state.row(row))
    }

    /// Ends the stream: the report and the head of every stream seen.
    pub fn finish(mut self) -> Result<(ChainReport, Vec<ChainHead>)> {
        self.splitter.finish()?;
        let s = &mut self.state;
        s.end_stream();
        if let Some(anchors) = s.anchors.take() {
            let mut missing: Vec<ChainHead> = anchors
                .into_values()
                .filter(|h| s.selected(h.stream.iter().map(|k| k.as_deref().map(str::as_bytes))))
                .collect();
            missing.sort_by(|a, b| a.stream.cmp(&b.stream));
            for h in missing {
                s.report.broken += 1;
                s.report.failures.push(Failure {
                    stream: label(h.stream.iter().map(|k| k.as_deref().map(str::as_bytes))),
                    seq: Some(h.seq),
                    check: Check::MissingStream,
                    expected: format!("stream with seq {} hash {}", h.seq, h.hash),
                    found: "no such stream".into(),
                });
            }
        }
        s.report
            .failures
            .sort_by(|a, b| (&a.stream, a.seq).cmp(&(&b.stream, b.seq)));
        Ok((std::mem::take(&mut s.report), std::mem::take(&mut s.heads)))
    }
}

/// Stores `v` in `slot`, reusing its allocation (no allocation per row).
fn keep(slot: &mut Option<Vec<u8>>, v: Option<&[u8]>) {
    match (slot.as_mut(), v) {
        (Some(buf), Some(v)) => {
            buf.clear();
            buf.extend_from_slice(v);
        }
        (_, v) => *slot = v.map(<[u8]>::to_vec),
    }
}

fn label<'a>(key: impl Iterator<Item = Option<&'a [u8]>>) -> String {
    key.map(text).collect::<Vec<_>>().join("/")
}

impl State {
    fn selected<'a>(&self, mut key: impl Iterator<Item = Option<&'a [u8]>>) -> bool {
        let Some(f) = &self.filter else { return true };
        f.iter()
            .all(|want| key.next().flatten() == Some(want.as_slice()))
    }

    fn row(&mut self, line: &[u8]) -> Result<()> {
        self.row_no += 1;
        let wanted = if self.heads_only {
            &self.plan.head_fields
        } else {
            &self.plan.wanted
        };
        if let Err(e) = self.fields.parse(line, wanted) {
            return Err(match e {
                Error::Format { message, .. } => Error::format(
                    format!("COPY data of {}", self.plan.table),
                    format!("row {}: {message}", self.row_no),
                ),
                other => other,
            });
        }
        let plan = self.plan.clone();
        if !self.selected(plan.key.iter().map(|&i| self.fields.get(i))) {
            return Ok(());
        }
        let same = self.cur.as_ref().is_some_and(|c| {
            c.key
                .iter()
                .zip(&plan.key)
                .all(|(k, &i)| k.as_deref() == self.fields.get(i))
        });
        if !same {
            self.end_stream();
            self.start_stream();
        }
        self.report.events += 1;
        let seq = self
            .fields
            .get(plan.seq)
            .and_then(|s| std::str::from_utf8(s).ok())
            .and_then(|s| s.parse::<i64>().ok());
        let failure = if self.heads_only {
            None
        } else {
            self.check(&plan, seq)
        };
        let Some(cur) = self.cur.as_mut() else {
            return Err(Error::Internal("chain verifier lost its stream".into()));
        };
        if let Some((check, expected, found)) = failure {
            if !cur.failed {
                cur.failed = true;
                self.report.failures.push(Failure {
                    stream: cur.label.clone(),
                    seq,
                    check,
                    expected,
                    found,
                });
            }
        }
        cur.rows += 1;
        if seq.is_some() {
            cur.last_seq = seq;
        }
        keep(&mut cur.last_hash, self.fields.get(plan.hash));
        keep(&mut cur.last_prev, self.fields.get(plan.prev));
        Ok(())
    }

    /// The first failed check of the current row, if any.
    fn check(&mut self, plan: &ChainPlan, seq: Option<i64>) -> Option<(Check, String, String)> {
        let cur = self.cur.as_mut()?;
        if cur.failed {
            return None;
        }
        let f = &self.fields;
        let Some(seq) = seq else {
            return Some((Check::Value, "an integer seq".into(), text(f.get(plan.seq))));
        };
        let prev = f.get(plan.prev);
        if cur.rows == 0 {
            if seq != plan.first_seq {
                return Some((Check::Start, plan.first_seq.to_string(), seq.to_string()));
            }
            if prev != plan.genesis.as_deref() {
                return Some((Check::PrevHash, text(plan.genesis.as_deref()), text(prev)));
            }
        } else {
            let last = cur.last_seq.unwrap_or(i64::MIN);
            if seq == last {
                let check = if prev == cur.last_prev.as_deref() {
                    Check::Fork
                } else {
                    Check::Duplicate
                };
                return Some((
                    check,
                    format!("one event at seq {seq}"),
                    format!("two events at seq {seq}"),
                ));
            }
            if Some(seq) != last.checked_add(1) {
                return Some((
                    Check::Gap,
                    last.saturating_add(1).to_string(),
                    seq.to_string(),
                ));
            }
            if prev != cur.last_hash.as_deref() {
                return Some((Check::PrevHash, text(cur.last_hash.as_deref()), text(prev)));
            }
        }
        let Some(stored) = f.get(plan.hash) else {
            return Some((Check::Value, "a hash".into(), "NULL".into()));
        };
        let digest = match plan.eval.digest(f, &mut self.scratch.0) {
            Ok(d) => d,
            Err(bad) => return Some((Check::Value, "a usable value".into(), bad.0)),
        };
        if !plan.eval.matches(stored, &digest, &mut self.scratch.1) {
            return Some((Check::Hash, plan.eval.render(&digest), text(Some(stored))));
        }
        if let Some(a) = cur.anchor.as_ref().filter(|a| a.seq == seq) {
            cur.anchor_seen = true;
            if a.hash.as_bytes() != stored {
                return Some((Check::Rewritten, a.hash.clone(), text(Some(stored))));
            }
        }
        None
    }

    fn start_stream(&mut self) {
        let key: Vec<Option<Vec<u8>>> = self
            .plan
            .key
            .iter()
            .map(|&i| self.fields.get(i).map(<[u8]>::to_vec))
            .collect();
        let anchor = self.anchors.as_mut().and_then(|a| {
            let k: Vec<Option<String>> = key
                .iter()
                .map(|v| v.as_deref().map(|b| text(Some(b))))
                .collect();
            a.remove(&k)
        });
        self.report.streams += 1;
        self.cur = Some(Current {
            label: label(key.iter().map(|k| k.as_deref())),
            key,
            failed: false,
            rows: 0,
            last_seq: None,
            last_hash: None,
            last_prev: None,
            anchor,
            anchor_seen: false,
        });
    }

    fn end_stream(&mut self) {
        let Some(mut cur) = self.cur.take() else {
            return;
        };
        if let Some(a) = cur.anchor.as_ref() {
            if !cur.failed && !cur.anchor_seen {
                cur.failed = true;
                self.report.failures.push(Failure {
                    stream: cur.label.clone(),
                    seq: Some(a.seq),
                    check: Check::Truncated,
                    expected: format!("seq {} with hash {}", a.seq, a.hash),
                    found: match cur.last_seq {
                        Some(s) => format!("stream ends at seq {s}"),
                        None => "no valid seq".into(),
                    },
                });
            }
        }
        if cur.failed {
            self.report.broken += 1;
        }
        if !self.collect_heads {
            return;
        }
        if let (Some(seq), Some(hash)) = (cur.last_seq, cur.last_hash.as_deref()) {
            self.heads.push(ChainHead {
                stream: cur
                    .key
                    .iter()
                    .map(|k| k.as_deref().map(|b| text(Some(b))))
                    .collect(),
                seq,
                hash: text(Some(hash)),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::copytext::encode_row;
    use crate::config::Policy;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    const POLICY: &str = r#"
[[chain]]
table = "app.evt"
stream = ["t", "id"]
seq = "seq"
prev_hash = "prev"
hash = "hash"
[chain.recipe]
separator = "|"
parts = ["t", "id", "seq", "payload", "prev"]
"#;

    type Row = Vec<Option<Vec<u8>>>;

    fn def() -> ChainDef {
        Policy::parse(POLICY, "t").unwrap().chain.remove(0)
    }

    fn columns() -> Vec<String> {
        ["t", "id", "seq", "payload", "prev", "hash"]
            .map(String::from)
            .to_vec()
    }

    fn hash(t: &str, id: &str, seq: i64, payload: &str, prev: Option<&str>) -> String {
        let s = format!("{t}|{id}|{seq}|{payload}|{}", prev.unwrap_or(""));
        hex::encode(Sha256::digest(s.as_bytes()))
    }

    /// Valid events of streams `(t, id, n)`, in chain order.
    fn events(streams: &[(&str, &str, i64)]) -> Vec<Row> {
        let mut rows = Vec::new();
        for &(t, id, n) in streams {
            let mut prev: Option<String> = None;
            for seq in 1..=n {
                let payload = format!("{{\"n\": {seq}, \"s\": \"a\\tb\"}}");
                let h = hash(t, id, seq, &payload, prev.as_deref());
                rows.push(vec![
                    Some(t.into()),
                    Some(id.into()),
                    Some(seq.to_string().into_bytes()),
                    Some(payload.into_bytes()),
                    prev.clone().map(String::into_bytes),
                    Some(h.clone().into_bytes()),
                ]);
                prev = Some(h);
            }
        }
        rows
    }

    fn run(rows: &[Row], opts: ChainOptions) -> (ChainReport, Vec<ChainHead>) {
        let data: Vec<u8> = rows.iter().flat_map(|r| encode_row(r)).collect();
        run_chunks(&[&data], opts)
    }

    fn collect(rows: &[Row]) -> (ChainReport, Vec<ChainHead>) {
        let opts = ChainOptions {
            collect_heads: true,
            ..Default::default()
        };
        run(rows, opts)
    }

    fn run_chunks(chunks: &[&[u8]], opts: ChainOptions) -> (ChainReport, Vec<ChainHead>) {
        let plan = Arc::new(ChainPlan::new(&def(), &columns()).unwrap());
        let mut v = Verifier::new(plan, opts);
        for c in chunks {
            v.feed(c).unwrap();
        }
        v.finish().unwrap()
    }

    fn only_failure(r: &ChainReport) -> (&str, Option<i64>, Check) {
        assert_eq!(r.failures.len(), 1, "{r:#?}");
        let f = &r.failures[0];
        (f.stream.as_str(), f.seq, f.check)
    }

    const STREAMS: [(&str, &str, i64); 3] =
        [("order", "1", 5), ("order", "2", 4), ("user", "1", 3)];

    #[test]
    fn a_valid_chain_holds_and_heads_are_the_last_events() {
        let rows = events(&STREAMS);
        let (r, heads) = collect(&rows);
        assert_eq!((r.streams, r.events, r.broken), (3, 12, 0));
        assert!(r.failures.is_empty());
        assert_eq!(heads.len(), 3);
        assert_eq!(
            heads[1].stream,
            vec![Some("order".into()), Some("2".into())]
        );
        assert_eq!(heads[1].seq, 4);
        assert_eq!(heads[1].hash.as_bytes(), rows[8][5].as_deref().unwrap());
        // Backup's heads-only mode (no checks, fewer fields) agrees.
        let heads_only = ChainOptions {
            heads_only: true,
            ..Default::default()
        };
        let mut broken = rows.clone();
        broken[2][3] = Some(b"tampered".to_vec());
        let (r, only) = run(&broken, heads_only);
        assert_eq!((r.broken, only), (0, heads));
    }

    #[test]
    fn each_kind_of_tampering_is_reported_at_its_event() {
        // order/1 is rows 0..5, order/2 rows 5..9, user/1 rows 9..12.
        let mut rows = events(&STREAMS);
        rows[2][3] = Some(b"{\"n\": 99}".to_vec());
        assert_eq!(
            only_failure(&run(&rows, Default::default()).0),
            ("order/1", Some(3), Check::Hash)
        );

        let mut rows = events(&STREAMS);
        rows.remove(6);
        assert_eq!(
            only_failure(&run(&rows, Default::default()).0),
            ("order/2", Some(3), Check::Gap)
        );

        let mut rows = events(&STREAMS);
        rows.remove(9);
        assert_eq!(
            only_failure(&run(&rows, Default::default()).0),
            ("user/1", Some(2), Check::Start)
        );

        let mut rows = events(&STREAMS);
        let mut forked = rows[7].clone();
        forked[3] = Some(b"{}".to_vec());
        let prev = std::str::from_utf8(forked[4].as_deref().unwrap())
            .unwrap()
            .to_string();
        forked[5] = Some(hash("order", "2", 3, "{}", Some(&prev)).into_bytes());
        rows.insert(8, forked);
        assert_eq!(
            only_failure(&run(&rows, Default::default()).0),
            ("order/2", Some(3), Check::Fork)
        );

        let mut rows = events(&STREAMS);
        rows[3][4] = Some(b"beef".to_vec());
        assert_eq!(
            only_failure(&run(&rows, Default::default()).0),
            ("order/1", Some(4), Check::PrevHash)
        );

        let mut rows = events(&STREAMS);
        rows[10][2] = Some(b"two".to_vec());
        assert_eq!(
            only_failure(&run(&rows, Default::default()).0),
            ("user/1", None, Check::Value)
        );
    }

    #[test]
    fn anchors_catch_a_recomputed_truncated_or_missing_stream() {
        let old = events(&STREAMS);
        let (_, anchors) = collect(&old);
        let with = |rows: &[Row]| {
            run(
                rows,
                ChainOptions {
                    anchors: Some(anchors.clone()),
                    ..Default::default()
                },
            )
            .0
        };
        // Extended history holds.
        let longer = events(&[("order", "1", 7), ("order", "2", 4), ("user", "1", 3)]);
        assert_eq!(with(&longer).broken, 0);
        // Recomputed after a change: valid alone, not against the anchors.
        let mut rewritten = events(&[("order", "1", 5)]);
        rewritten[0][3] = Some(b"{}".to_vec());
        let mut prev: Option<String> = None;
        for r in rewritten.iter_mut() {
            let seq: i64 = std::str::from_utf8(r[2].as_deref().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            let payload = String::from_utf8(r[3].clone().unwrap()).unwrap();
            let h = hash("order", "1", seq, &payload, prev.as_deref());
            r[4] = prev.clone().map(String::into_bytes);
            r[5] = Some(h.clone().into_bytes());
            prev = Some(h);
        }
        let mut rows = rewritten.clone();
        rows.extend(events(&[("order", "2", 4), ("user", "1", 3)]));
        assert_eq!(run(&rows, Default::default()).0.broken, 0);
        assert_eq!(
            only_failure(&with(&rows)),
            ("order/1", Some(5), Check::Rewritten)
        );
        // Truncated head.
        let short = events(&[("order", "1", 5), ("order", "2", 3), ("user", "1", 3)]);
        assert_eq!(
            only_failure(&with(&short)),
            ("order/2", Some(4), Check::Truncated)
        );
        // A whole stream gone.
        let gone = events(&[("order", "1", 5), ("order", "2", 4)]);
        assert_eq!(
            only_failure(&with(&gone)),
            ("user/1", Some(3), Check::MissingStream)
        );
    }

    #[test]
    fn a_filter_limits_streams_and_missing_anchors() {
        let rows = events(&STREAMS);
        let (_, anchors) = collect(&rows);
        let opts = ChainOptions {
            filter: Some(vec!["order".into()]),
            anchors: Some(anchors),
            ..Default::default()
        };
        let (r, _) = run(&rows[..9], opts);
        assert_eq!((r.streams, r.events, r.broken), (2, 9, 0));
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_report(
            cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..12),
            tamper in 0usize..12,
        ) {
            let mut rows = events(&STREAMS);
            rows[tamper][3] = Some(b"x".to_vec());
            let data: Vec<u8> = rows.iter().flat_map(|r| encode_row(r)).collect();
            let whole = run_chunks(&[&data], ChainOptions::default());
            let chunks = crate::chain::copytext::tests::cut(&data, &cuts);
            prop_assert_eq!(run_chunks(&chunks, ChainOptions::default()), whole);
        }
    }
}
