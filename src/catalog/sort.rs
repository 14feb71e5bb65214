//! Restore order: a topological sort of the entries (Kahn's algorithm) that
//! always takes the ready entry with the smallest key (section, kind rank,
//! schema, name, reading order), so the order is deterministic and every
//! pre-data entry comes before data, and data before post-data.
//!
//! Cycles are broken deterministically: when entries remain but none is
//! ready, the remaining entry with the smallest key is emitted anyway and
//! its unfinished dependencies are dropped (logged as a warning). Readers
//! avoid the known cycles (a default calling a function that uses the
//! table's row type is a separate `Default` entry; a view on a cycle is
//! split in two by `cycles.rs`).
//!
//! Entries with no SQL and no data (e.g. `public` unchanged) are dropped;
//! entries depending on them inherit their dependencies. Ids are then
//! renumbered 1.. in restore order.

use super::obj::Obj;
use super::toc::{ObjectKind, Section, TocEntry};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

/// Tie-break rank of a kind inside its section.
fn rank(kind: ObjectKind) -> u8 {
    use ObjectKind::*;
    match kind {
        Schema => 0,
        Extension | Language => 1,
        AccessMethod => 2,
        ShellType => 2,
        Collation => 2,
        Type | Domain => 3,
        ForeignDataWrapper => 3,
        ForeignServer | UserMapping => 4,
        TextSearchDictionary | TextSearchConfiguration => 5,
        Function | Procedure => 4,
        Aggregate | Operator | Cast | Conversion | Transform => 5,
        OperatorFamily => 5,
        OperatorClass => 6,
        Sequence => 6,
        Table => 7,
        Default => 8,
        PartitionAttach => 9,
        SequenceOwnedBy => 10,
        View => 11,
        MaterializedView => 12,
        LargeObject => 13,
        TableData | LargeObjectData => 14,
        SequenceSet => 15,
        Constraint => 16,
        CheckConstraint => 17,
        Index => 18,
        IndexAttach => 19,
        Rule => 20,
        Trigger => 21,
        ForeignKey => 22,
        RowSecurity => 23,
        Policy => 24,
        Statistics => 24,
        Publication => 24,
        PublicationMember => 25,
        Subscription => 25,
        MaterializedViewData => 25,
        Comment | SecurityLabel => 26,
        Acl => 27,
        DefaultAcl => 28,
        EventTrigger => 29,
    }
}

type Key = (Section, u8, Option<String>, String, usize);

fn key(objs: &[Obj], i: usize) -> Key {
    let o = &objs[i];
    (o.section, rank(o.kind), o.schema.clone(), o.name.clone(), i)
}

/// Indexes of `objs` in restore order.
fn order(objs: &[Obj], deps: &[BTreeSet<usize>]) -> Vec<usize> {
    let n = objs.len();
    let mut waiting: Vec<usize> = deps.iter().map(BTreeSet::len).collect();
    let mut dependents = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<Key>> = (0..n)
        .filter(|&i| waiting[i] == 0)
        .map(|i| Reverse(key(objs, i)))
        .collect();
    let mut done = vec![false; n];
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let i = match ready.pop() {
            Some(Reverse(k)) => k.4,
            None => {
                let Some(i) = (0..n).filter(|&i| !done[i]).min_by_key(|&i| key(objs, i)) else {
                    break;
                };
                tracing::warn!(entry = %objs[i].name, "dependency cycle in the catalog; breaking it here");
                i
            }
        };
        if done[i] {
            continue;
        }
        done[i] = true;
        out.push(i);
        for &j in &dependents[i] {
            waiting[j] = waiting[j].saturating_sub(1);
            if waiting[j] == 0 && !done[j] {
                ready.push(Reverse(key(objs, j)));
            }
        }
    }
    out
}

/// The final TOC: sorted, empty entries dropped, ids renumbered.
pub fn finish(objs: Vec<Obj>, deps: Vec<BTreeSet<usize>>) -> Vec<TocEntry> {
    let order = order(&objs, &deps);
    let mut new_deps: Vec<BTreeSet<u32>> = vec![BTreeSet::new(); objs.len()];
    let mut id_of: Vec<Option<u32>> = vec![None; objs.len()];
    let mut slots: Vec<Option<Obj>> = objs.into_iter().map(Some).collect();
    let mut entries = Vec::new();
    for i in order {
        let mut mine = BTreeSet::new();
        for &d in &deps[i] {
            match id_of[d] {
                Some(id) => {
                    mine.insert(id);
                }
                None => mine.extend(new_deps[d].iter().copied()),
            }
        }
        let Some(obj) = slots[i].take() else { continue };
        if obj.sql.is_empty() && obj.data.is_none() && obj.kind != ObjectKind::LargeObjectData {
            new_deps[i] = mine;
            continue;
        }
        let id = u32::try_from(entries.len() + 1).unwrap_or(u32::MAX);
        id_of[i] = Some(id);
        let drop = super::drop::statement(&obj);
        entries.push(TocEntry {
            id,
            kind: obj.kind,
            section: obj.section,
            schema: obj.schema,
            name: obj.name,
            owner: obj.owner,
            sql: obj.sql,
            deps: mine.into_iter().collect(),
            data: obj.data,
            drop,
        });
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: ObjectKind, section: Section, name: &str) -> Obj {
        Obj::new(kind, section, name, format!("-- {name}\n"))
    }

    #[test]
    fn sorts_by_section_then_dependencies() {
        let objs = vec![
            obj(ObjectKind::Index, Section::PostData, "idx"),
            obj(ObjectKind::View, Section::PreData, "v"),
            obj(ObjectKind::Table, Section::PreData, "t"),
            obj(ObjectKind::Schema, Section::PreData, "s"),
        ];
        let deps = vec![
            BTreeSet::from([2]),
            BTreeSet::from([2, 3]),
            BTreeSet::from([3]),
            BTreeSet::new(),
        ];
        let toc = finish(objs, deps);
        let names: Vec<&str> = toc.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["s", "t", "v", "idx"]);
        assert_eq!(toc[2].deps, vec![1, 2]);
        assert_eq!(toc[3].deps, vec![2]);
    }

    #[test]
    fn breaks_cycles_and_drops_empty_entries() {
        let mut empty = obj(ObjectKind::Schema, Section::PreData, "public");
        empty.sql.clear();
        let objs = vec![
            obj(ObjectKind::Table, Section::PreData, "b"),
            obj(ObjectKind::Table, Section::PreData, "a"),
            empty,
            obj(ObjectKind::Comment, Section::PreData, "c"),
        ];
        let deps = vec![
            BTreeSet::from([1]),
            BTreeSet::from([0]),
            BTreeSet::new(),
            BTreeSet::from([2, 0]),
        ];
        let toc = finish(objs, deps);
        let names: Vec<&str> = toc.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(toc[2].deps, vec![2]);
    }
}
