//! The floor a backup is measured against: the same tables, sliced as the
//! backup sliced them, copied out with plain parallel `COPY ... TO STDOUT`
//! and discarded. No framing, compression, encryption or upload: what the
//! server and the connection alone cost.

use crate::archive::Manifest;
use crate::catalog::ObjectKind;
use crate::config::ConnSettings;
use crate::error::{Error, Result};
use crate::pg::connect;
use crate::pg::copy::{ctid_slice, table_out, TableRows};
use crate::pg::snapshot::session_setup;
use futures::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// What the raw copy moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    pub bytes: u64,
    pub rows: u64,
}

/// One `COPY ... TO STDOUT` per table stream of `manifest` (ctid slices as
/// recorded), biggest first, over `jobs` connections to `db`.
pub async fn raw_copy(db: &ConnSettings, manifest: &Manifest, jobs: usize) -> Result<Moved> {
    let by_id: HashMap<u32, _> = manifest.body.toc.iter().map(|e| (e.id, e)).collect();
    let mut items: Vec<(u64, String)> = Vec::new();
    for s in &manifest.body.streams {
        let Some(e) = by_id.get(&s.toc_id) else {
            continue;
        };
        let (ObjectKind::TableData, Some(t)) = (e.kind, e.data.as_ref()) else {
            continue;
        };
        let filter = s
            .pages
            .map(|(a, b)| ctid_slice(a, (b != u64::MAX).then_some(b)));
        let sql = table_out(&TableRows {
            schema: &t.schema,
            name: &t.name,
            columns: &t.columns,
            filter,
            order: None,
            condition: t.condition.as_deref(),
        });
        items.push((s.plain_bytes, sql));
    }
    items.sort_by_key(|i| std::cmp::Reverse(i.0));
    let queue: Arc<Mutex<VecDeque<String>>> =
        Arc::new(Mutex::new(items.into_iter().map(|(_, sql)| sql).collect()));
    let encoding = manifest.body.source.encoding.clone();
    let workers = (0..jobs.max(1)).map(|_| {
        let queue = queue.clone();
        let encoding = encoding.clone();
        async move {
            let conn = connect(db).await?;
            session_setup(&conn, Some(&encoding)).await?;
            let mut moved = Moved::default();
            loop {
                let next = queue
                    .lock()
                    .map_err(|_| Error::Internal("raw copy queue poisoned".into()))?
                    .pop_front();
                let Some(sql) = next else { break };
                let copy = conn
                    .client
                    .copy_out(&sql)
                    .await
                    .map_err(Error::db("raw COPY for the benchmark floor"))?;
                futures::pin_mut!(copy);
                while let Some(row) = copy.next().await {
                    let row = row.map_err(Error::db("raw COPY for the benchmark floor"))?;
                    moved.bytes += row.len() as u64;
                    moved.rows += 1;
                }
            }
            Ok::<_, Error>(moved)
        }
    });
    let all = futures::future::try_join_all(workers).await?;
    Ok(all.into_iter().fold(Moved::default(), |a, m| Moved {
        bytes: a.bytes + m.bytes,
        rows: a.rows + m.rows,
    }))
}
