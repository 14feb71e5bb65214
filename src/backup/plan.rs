//! The backup's work plan: data entries of the table of contents become
//! work items (whole tables, ctid slices of large tables, the large-object
//! stream), each with the COPY that reads it, biggest first. Chain tables
//! stay whole and are copied in chain order.

use crate::catalog::{ObjectKind, TocEntry};
use crate::chain::ChainPlan;
use crate::config::ChainDef;
use crate::error::Result;
use crate::pg::copy;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub enum Source {
    Table {
        schema: String,
        name: String,
        columns: Vec<String>,
        pages: Option<(u64, Option<u64>)>,
        /// `ORDER BY` of a chain table (never sliced).
        order: Option<String>,
        /// An extension configuration table's `WHERE ...` (never sliced).
        condition: Option<String>,
    },
    LargeObjects,
}

#[derive(Clone, Debug)]
pub struct WorkItem {
    pub stream: u32,
    pub toc_id: u32,
    pub label: String,
    pub est_bytes: u64,
    pub source: Source,
    /// Set for a chain table: its heads are collected while it is copied.
    pub chain: Option<Arc<ChainPlan>>,
}

impl WorkItem {
    /// The COPY statement that reads this item.
    pub fn copy_sql(&self) -> String {
        match &self.source {
            Source::LargeObjects => copy::large_objects_out(),
            Source::Table {
                schema,
                name,
                columns,
                pages,
                order,
                condition,
            } => copy::table_out(&copy::TableRows {
                schema,
                name,
                columns,
                filter: pages.map(|(start, end)| copy::ctid_slice(start, end)),
                order: order.as_deref(),
                condition: condition.as_deref(),
            }),
        }
    }
}

/// Splits data entries into work items, biggest first. Chain tables stay
/// whole and are copied in chain order.
pub fn plan_work(toc: &[TocEntry], split_bytes: u64, chains: &[ChainDef]) -> Result<Vec<WorkItem>> {
    let mut items = Vec::new();
    let mut next_stream = 0u32;
    for e in toc {
        let Some(d) = &e.data else { continue };
        let label = format!("{}.{}", d.schema, d.name);
        if e.kind == ObjectKind::LargeObjectData {
            items.push(WorkItem {
                stream: next_stream,
                toc_id: e.id,
                label,
                est_bytes: d.est_bytes,
                source: Source::LargeObjects,
                chain: None,
            });
            next_stream += 1;
            continue;
        }
        if e.kind != ObjectKind::TableData {
            continue;
        }
        let chain = chains
            .iter()
            .find(|c| c.table_parts() == Some((&d.schema, &d.name)));
        let plan = match chain {
            Some(c) => Some(Arc::new(ChainPlan::new(c, &d.columns)?)),
            None => None,
        };
        let slices = if chain.is_none()
            && d.splittable
            && split_bytes > 0
            && d.est_bytes > split_bytes
            && d.pages > 1
        {
            d.est_bytes.div_ceil(split_bytes).min(d.pages)
        } else {
            1
        };
        for s in 0..slices {
            let pages = (slices > 1).then(|| {
                let per = d.pages.div_ceil(slices);
                let start = s * per;
                let end = (s + 1 < slices).then_some((s + 1) * per);
                (start, end)
            });
            let label = match pages {
                Some(_) => format!("{label} [{}/{slices}]", s + 1),
                None => label.clone(),
            };
            items.push(WorkItem {
                stream: next_stream,
                toc_id: e.id,
                label,
                est_bytes: d.est_bytes / slices,
                source: Source::Table {
                    schema: d.schema.clone(),
                    name: d.name.clone(),
                    columns: d.columns.clone(),
                    pages,
                    order: chain.map(crate::chain::order_by),
                    condition: d.condition.clone(),
                },
                chain: plan.clone(),
            });
            next_stream += 1;
        }
    }
    items.sort_by(|a, b| b.est_bytes.cmp(&a.est_bytes).then(a.stream.cmp(&b.stream)));
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Section, TableData};

    fn data_entry(id: u32, name: &str, est: u64, pages: u64) -> TocEntry {
        TocEntry {
            id,
            kind: ObjectKind::TableData,
            section: Section::Data,
            schema: Some("public".into()),
            name: name.into(),
            owner: None,
            sql: String::new(),
            deps: vec![],
            data: Some(TableData {
                schema: "public".into(),
                name: name.into(),
                columns: vec!["a".into()],
                est_bytes: est,
                pages,
                splittable: true,
                condition: None,
            }),
            drop: None,
        }
    }

    #[test]
    fn big_tables_are_sliced_and_scheduled_first() {
        let toc = vec![
            data_entry(1, "small", 10, 1),
            data_entry(2, "big", 1000, 100),
        ];
        let items = plan_work(&toc, 300, &[]).unwrap();
        assert_eq!(items.len(), 5);
        assert!(items[..4].iter().all(|i| i.toc_id == 2));
        assert_eq!(items[4].toc_id, 1);
        let ranges: Vec<_> = items[..4]
            .iter()
            .map(|i| match &i.source {
                Source::Table { pages, .. } => *pages,
                _ => None,
            })
            .collect();
        assert!(ranges.contains(&Some((0, Some(25)))));
        assert!(
            ranges.contains(&Some((75, None))),
            "last slice is open-ended: {ranges:?}"
        );
        assert!(items[0].copy_sql().contains("ctid >= '("));
    }
}
