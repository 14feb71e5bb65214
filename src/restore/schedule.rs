//! Data and post-data in one schedule over the same `--jobs` connections.
//! With `--overlap`, as `pg_restore -j` runs them: a post-data entry (an
//! index, a constraint, a refresh) starts as soon as the data of every
//! table it needs is loaded, while other tables are still loading. Without
//! it (the default, which measured faster on two cores shared with the
//! server: docs/benchmarks.md), post-data starts after all data. A free connection takes the
//! first ready post-data entry (TOC order), else the next data unit
//! (biggest first).
//!
//! What an entry needs is transitive: an index needs its table's data; a
//! refresh needs the data of every table its view reads, through views and
//! functions. Entries that would act on rows still to be loaded wait for
//! all data: triggers (they would fire on COPY), row security and policies,
//! event triggers, default privileges, and anything that depends on a table
//! without data of its own in this restore (a partitioned table, whose
//! triggers, keys and checks reach every partition).

use super::dag::{Job, Runner, Task, Tracked};
use super::data::{self, LoadContext, Unit};
use crate::catalog::{ObjectKind, TocEntry};
use crate::error::{Error, Result};
use async_trait::async_trait;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One piece of a restore's data or post-data work.
pub enum Work {
    Unit(Unit),
    Entry(TocEntry),
}

impl Job for Work {
    fn step(&self) -> Option<String> {
        match self {
            Work::Unit(_) => None,
            Work::Entry(e) => e.step(),
        }
    }
}

/// What the data units loaded, and when the last one finished.
#[derive(Default)]
pub struct Tally {
    pub rows: AtomicU64,
    pub bytes: AtomicU64,
    pub data_done: Mutex<Option<Instant>>,
}

/// A connection that runs both kinds of work.
pub struct Worker {
    pub tracked: Tracked,
    pub ctx: Arc<LoadContext>,
    pub tally: Arc<Tally>,
}

#[async_trait]
impl Runner<Work> for Worker {
    async fn run(&self, work: &Work) -> Result<()> {
        match work {
            Work::Entry(e) => self.tracked.run(e).await,
            Work::Unit(unit) => {
                let conn = &self.tracked.conn;
                match data::load_unit(conn, unit, &self.ctx).await {
                    Ok(rows) => {
                        let bytes: u64 = unit.streams.iter().map(|s| s.plain_bytes).sum();
                        self.tally.rows.fetch_add(rows, Ordering::Relaxed);
                        self.tally.bytes.fetch_add(bytes, Ordering::Relaxed);
                        if let Ok(mut t) = self.tally.data_done.lock() {
                            *t = Some(Instant::now());
                        }
                        Ok(())
                    }
                    Err(e) => {
                        // The unit's transaction goes; the connection stays
                        // usable for what comes next (--continue-on-error).
                        if !self.ctx.in_transaction {
                            conn.client
                                .batch_execute("ROLLBACK")
                                .await
                                .map_err(Error::db("rolling back a failed load"))?;
                        }
                        Err(e)
                    }
                }
            }
        }
    }
}

/// Kinds that wait for every data unit, whatever they depend on.
fn after_all_data(kind: ObjectKind) -> bool {
    matches!(
        kind,
        ObjectKind::Trigger
            | ObjectKind::RowSecurity
            | ObjectKind::Policy
            | ObjectKind::EventTrigger
            | ObjectKind::DefaultAcl
    )
}

/// The tasks: `post` in TOC order, then `units` (in their order); each
/// post-data entry after its post-data dependencies and after the units of
/// the data it needs (`toc` is the whole table of contents, for the
/// dependencies through pre-data). A ready entry goes before the next
/// unit, so a table's post-data runs right after its data instead of
/// piling up at the end, where it would start staggered. Without
/// `overlap`, every entry waits for every unit: data, then post-data.
pub fn plan(
    units: Vec<Unit>,
    post: Vec<TocEntry>,
    toc: &[TocEntry],
    overlap: bool,
) -> Vec<Task<Work>> {
    // Post-data entries first (in TOC order), the units after them: a
    // free connection takes a ready entry before the next unit.
    let base = post.len();
    let mut units_of: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, u) in units.iter().enumerate() {
        units_of.entry(u.toc_id).or_default().push(base + i);
    }
    let needs = data_needs(toc);
    let all_units: Vec<usize> = (base..base + units.len()).collect();
    let index: HashMap<u32, usize> = post.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
    let mut tasks: Vec<Task<Work>> = Vec::with_capacity(base + units.len());
    for e in post {
        let mut deps: Vec<usize> = e
            .deps
            .iter()
            .filter(|d| **d != e.id)
            .filter_map(|d| index.get(d).copied())
            .collect();
        match needs.get(&e.id) {
            _ if !overlap => deps.extend(&all_units),
            Some(Needs::All) => deps.extend(&all_units),
            _ if after_all_data(e.kind) => deps.extend(&all_units),
            Some(Needs::Tables(tables)) => {
                for t in tables {
                    deps.extend(units_of.get(t).into_iter().flatten());
                }
            }
            None => {}
        }
        tasks.push(Task {
            job: Work::Entry(e),
            deps,
        });
    }
    tasks.extend(units.into_iter().map(|u| Task {
        job: Work::Unit(u),
        deps: Vec::new(),
    }));
    tasks
}

/// The data an entry needs loaded first.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Needs {
    /// These data entries (TOC ids of `TableData` entries).
    Tables(BTreeSet<u32>),
    /// Every data unit.
    All,
}

/// What each entry needs, transitively through its dependencies (which
/// come before it in the TOC). A table's entry needs its own data entry; a
/// table without one (partitioned, foreign, or its data left out) makes
/// whatever depends on it wait for all data.
fn data_needs(toc: &[TocEntry]) -> HashMap<u32, Needs> {
    let mut own: HashMap<u32, BTreeSet<u32>> = HashMap::new();
    for d in toc.iter().filter(|e| e.data.is_some()) {
        for dep in &d.deps {
            own.entry(*dep).or_default().insert(d.id);
        }
    }
    let mut order: Vec<&TocEntry> = toc.iter().collect();
    order.sort_by_key(|e| e.id);
    let mut needs: HashMap<u32, Needs> = HashMap::new();
    for e in order {
        let mut set = own.get(&e.id).cloned().unwrap_or_default();
        let mut all = e.kind == ObjectKind::Table && set.is_empty();
        for dep in &e.deps {
            match needs.get(dep) {
                Some(Needs::All) => all = true,
                Some(Needs::Tables(t)) => set.extend(t),
                None => {}
            }
        }
        let n = if all {
            Needs::All
        } else if set.is_empty() {
            continue;
        } else {
            Needs::Tables(set)
        };
        needs.insert(e.id, n);
    }
    needs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Section, TableData};

    fn entry(id: u32, kind: ObjectKind, deps: &[u32]) -> TocEntry {
        let section = match kind {
            ObjectKind::Table | ObjectKind::View | ObjectKind::Function => Section::PreData,
            ObjectKind::TableData => Section::Data,
            _ => Section::PostData,
        };
        TocEntry {
            id,
            kind,
            section,
            schema: Some("public".into()),
            name: format!("e{id}"),
            owner: None,
            sql: String::new(),
            deps: deps.to_vec(),
            data: (kind == ObjectKind::TableData).then(|| TableData {
                schema: "public".into(),
                name: format!("t{id}"),
                columns: vec![],
                est_bytes: 0,
                pages: 0,
                splittable: true,
                condition: None,
            }),
            drop: None,
        }
    }

    fn unit(toc_id: u32) -> Unit {
        Unit {
            toc_id,
            kind: ObjectKind::TableData,
            table: entry(toc_id, ObjectKind::TableData, &[])
                .data
                .expect("a data entry"),
            streams: vec![],
            freeze: false,
            stored_bytes: 0,
        }
    }

    #[test]
    fn post_data_waits_for_the_data_it_needs_and_no_more() {
        use ObjectKind::*;
        // Tables 1 and 2 with data 11 and 12; a partitioned table 3 (no
        // data); a view 4 on table 2, a function 5.
        let toc = vec![
            entry(1, Table, &[]),
            entry(2, Table, &[]),
            entry(3, Table, &[]),
            entry(4, View, &[2]),
            entry(5, Function, &[]),
            entry(11, TableData, &[1]),
            entry(12, TableData, &[2]),
            entry(20, Index, &[1]),
            entry(21, ForeignKey, &[1, 20]),
            entry(22, MaterializedViewData, &[4]),
            entry(23, Index, &[3]),
            entry(24, Trigger, &[1]),
            entry(25, Acl, &[5]),
        ];
        let post: Vec<TocEntry> = toc
            .iter()
            .filter(|e| e.section == Section::PostData)
            .cloned()
            .collect();
        // Table 1 in two units, table 2 in one.
        let phases = plan(vec![unit(11), unit(12)], post.clone(), &toc, false);
        assert!(
            phases[..6]
                .iter()
                .all(|t| t.deps.iter().filter(|&&d| d >= 6).count() == 2),
            "without overlap every entry waits for every unit"
        );
        let tasks = plan(vec![unit(11), unit(11), unit(12)], post, &toc, true);
        let deps = |i: usize| tasks[i].deps.iter().copied().collect::<BTreeSet<_>>();
        // Entries 0..6 (20, 21, 22, 23, 24, 25), then units 6, 7 (table 1)
        // and 8 (table 2).
        assert!(tasks[6..].iter().all(|t| t.deps.is_empty()));
        assert!(matches!(tasks[6].job, Work::Unit(_)));
        assert_eq!(deps(0), BTreeSet::from([6, 7]), "index: table 1's units");
        assert_eq!(
            deps(1),
            BTreeSet::from([0, 6, 7]),
            "foreign key: its index and table 1's units"
        );
        assert_eq!(
            deps(2),
            BTreeSet::from([8]),
            "refresh: table 2 via the view"
        );
        assert_eq!(
            deps(3),
            BTreeSet::from([6, 7, 8]),
            "on a table without data: everything"
        );
        assert_eq!(deps(4), BTreeSet::from([6, 7, 8]), "a trigger: everything");
        assert!(deps(5).is_empty(), "a function's ACL waits for no data");
    }
}
