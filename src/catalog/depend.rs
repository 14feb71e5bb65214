//! Dependencies between TOC entries, derived from `pg_depend`.
//!
//! 1. Every entry names the catalog addresses it creates (`Obj::owns`).
//!    Addresses that are internal to another (`deptype 'i'`: row types,
//!    array types, a view's `_RETURN` rule, a constraint's index, identity
//!    sequences, ...) or members of an extension (`'e'`) are given to the
//!    entry owning what they belong to, until nothing changes.
//! 2. Each `pg_depend` edge (`'n'`, `'a'`, `'i'`, partition `'P'`/`'S'`)
//!    between addresses of two different entries becomes an entry edge, as
//!    do the explicit `Obj::after` addresses. The automatic edge from a
//!    sequence to the column that owns it is ignored: `OWNED BY` is its own
//!    entry, and the column default needs the sequence first.
//! 3. An entry that depends on an entry of a later section moves to that
//!    section (a view whose `GROUP BY` relies on a primary key becomes
//!    post-data), and so on transitively.
//! 4. A `REFRESH MATERIALIZED VIEW` entry also waits for the refreshes of
//!    the materialized views its view reads (through plain views), and for
//!    the ACL, row-security and policy entries of everything it reads: the
//!    refresh runs as the view's owner and sees what that role may see.
//! 5. A foreign key that references a partitioned table waits for every
//!    `ATTACH PARTITION` of the referenced index (at any depth): the index
//!    on `ONLY parent` is invalid, and unusable, until all are attached.
//! 6. Default privileges and then event triggers wait for every other
//!    post-data entry: the former would change the privileges of objects
//!    created after them (views moved to post-data), the latter would fire
//!    on the restore's own DDL.

use super::obj::{class, Obj};
use super::sql::{query, RowExt};
use super::toc::{ObjRef, ObjectKind, Section};
use crate::error::Result;
use std::collections::{BTreeSet, HashMap};
use tokio_postgres::Client;

/// One `pg_depend` row, sub-object numbers dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    pub from: ObjRef,
    pub to: ObjRef,
    pub deptype: u8,
}

const DEPEND: &str =
    "SELECT d.classid, d.objid, d.refclassid, d.refobjid, d.deptype::text AS deptype \
  FROM pg_catalog.pg_depend d \
  WHERE d.objid >= 16384 AND d.refobjid >= 16384 AND d.deptype IN ('n', 'a', 'i', 'e', 'P', 'S') \
  AND NOT (d.deptype = 'a' AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
    AND EXISTS (SELECT 1 FROM pg_catalog.pg_class s WHERE s.oid = d.objid AND s.relkind = 'S')) \
  GROUP BY 1, 2, 3, 4, 5";

pub async fn load(client: &Client) -> Result<Vec<Edge>> {
    let rows = query(client, "dependencies", DEPEND, &[]).await?;
    rows.iter()
        .map(|r| {
            let deptype: String = r.val("deptype")?;
            Ok(Edge {
                from: ObjRef {
                    classid: r.val("classid")?,
                    objid: r.val("objid")?,
                },
                to: ObjRef {
                    classid: r.val("refclassid")?,
                    objid: r.val("refobjid")?,
                },
                deptype: deptype.bytes().next().unwrap_or(b'n'),
            })
        })
        .collect()
}

/// Which entry creates each address.
fn owners(objs: &[Obj], edges: &[Edge]) -> HashMap<ObjRef, usize> {
    let mut owner = HashMap::new();
    for (i, obj) in objs.iter().enumerate() {
        for r in &obj.owns {
            owner.entry(*r).or_insert(i);
        }
    }
    loop {
        let mut changed = false;
        for e in edges.iter().filter(|e| matches!(e.deptype, b'i' | b'e')) {
            if owner.contains_key(&e.from) {
                continue;
            }
            if let Some(&i) = owner.get(&e.to) {
                owner.insert(e.from, i);
                changed = true;
            }
        }
        if !changed {
            return owner;
        }
    }
}

/// Dependencies of each entry (indexes into `objs`); moves entries to a
/// later section where their dependencies require it.
pub fn resolve(objs: &mut [Obj], edges: &[Edge]) -> Vec<BTreeSet<usize>> {
    let owner = owners(objs, edges);
    let mut deps = vec![BTreeSet::new(); objs.len()];
    for (i, obj) in objs.iter().enumerate() {
        deps[i].extend(
            obj.after
                .iter()
                .filter_map(|r| owner.get(r))
                .filter(|&&j| j != i),
        );
    }
    for e in edges.iter().filter(|e| e.deptype != b'e') {
        if let (Some(&a), Some(&b)) = (owner.get(&e.from), owner.get(&e.to)) {
            if a != b {
                deps[a].insert(b);
            }
        }
    }
    promote_sections(objs, &deps);
    chain_refreshes(objs, &owner, &mut deps);
    wait_for_index_attach(objs, &owner, &mut deps);
    last_in_post_data(objs, &mut deps);
    deps
}

fn promote_sections(objs: &mut [Obj], deps: &[BTreeSet<usize>]) {
    loop {
        let mut changed = false;
        for i in 0..objs.len() {
            let needed = deps[i].iter().map(|&d| objs[d].section).max();
            if let Some(s) = needed.filter(|s| *s > objs[i].section) {
                objs[i].section = s;
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}

fn chain_refreshes(objs: &[Obj], owner: &HashMap<ObjRef, usize>, deps: &mut [BTreeSet<usize>]) {
    let refresh: HashMap<usize, usize> = objs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.kind == ObjectKind::MaterializedViewData)
        .filter_map(|(i, o)| {
            let view = o.after.iter().find(|r| r.classid == class::CLASS)?;
            Some((*owner.get(view)?, i))
        })
        .collect();
    // What a refresh, run as the view's owner, is subject to: privileges
    // and row security of the objects it reads.
    let mut guards: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, o) in objs.iter().enumerate() {
        if matches!(
            o.kind,
            ObjectKind::Acl | ObjectKind::RowSecurity | ObjectKind::Policy
        ) {
            for &d in &deps[i] {
                guards.entry(d).or_default().push(i);
            }
        }
    }
    for (&view, &data) in &refresh {
        let mut stack = vec![view];
        let mut seen = BTreeSet::new();
        let mut extra = BTreeSet::new();
        while let Some(d) = stack.pop() {
            if !seen.insert(d) {
                continue;
            }
            extra.extend(guards.get(&d).into_iter().flatten().copied());
            match objs[d].kind {
                ObjectKind::MaterializedView if d != view => {
                    extra.extend(refresh.get(&d).copied());
                }
                ObjectKind::View | ObjectKind::MaterializedView => {
                    stack.extend(deps[d].iter().copied())
                }
                _ => {}
            }
        }
        extra.remove(&data);
        deps[data].extend(extra);
    }
}

fn wait_for_index_attach(
    objs: &[Obj],
    owner: &HashMap<ObjRef, usize>,
    deps: &mut [BTreeSet<usize>],
) {
    // Attach entries by the entry owning the parent index, and the entry
    // owning the attached (child) index.
    let mut attaches: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
    for (i, o) in objs.iter().enumerate() {
        if o.kind != ObjectKind::IndexAttach {
            continue;
        }
        if let [parent, child] = o.after[..] {
            if let (Some(&p), Some(&c)) = (owner.get(&parent), owner.get(&child)) {
                attaches.entry(p).or_default().push((i, c));
            }
        }
    }
    for i in 0..objs.len() {
        if objs[i].kind != ObjectKind::ForeignKey {
            continue;
        }
        let mut stack: Vec<usize> = deps[i]
            .iter()
            .copied()
            .filter(|d| attaches.contains_key(d))
            .collect();
        let mut seen = BTreeSet::new();
        while let Some(p) = stack.pop() {
            if !seen.insert(p) {
                continue;
            }
            for &(attach, child) in attaches.get(&p).into_iter().flatten() {
                deps[i].insert(attach);
                stack.push(child);
            }
        }
    }
}

fn last_in_post_data(objs: &[Obj], deps: &mut [BTreeSet<usize>]) {
    let stage = |k: ObjectKind| match k {
        ObjectKind::DefaultAcl => 1,
        ObjectKind::EventTrigger => 2,
        _ => 0,
    };
    for i in 0..objs.len() {
        let mine = stage(objs[i].kind);
        if mine == 0 || objs[i].section != Section::PostData {
            continue;
        }
        // Not the entry's own comments and ACLs, which come after it.
        let before: Vec<usize> = objs
            .iter()
            .enumerate()
            .filter(|(j, o)| {
                o.section == Section::PostData && stage(o.kind) < mine && !deps[*j].contains(&i)
            })
            .map(|(j, _)| j)
            .collect();
        deps[i].extend(before);
    }
}
