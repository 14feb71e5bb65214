//! Live mode: `COPY (SELECT <needed columns> FROM ONLY <table> [WHERE stream]
//! ORDER BY stream key, seq, hash) TO STDOUT` (ONLY: the rows a backup dumps
//! for the table, so live and archive reports agree) on one connection, every chain
//! read in one repeatable-read snapshot, the bytes fed to the verifier as
//! they arrive.

use super::verify::{ChainOptions, ChainPlan, Verifier};
use super::{order_by, ChainsReport, StreamFilter};
use crate::config::{ChainDef, ConnSettings};
use crate::error::{Error, Result};
use crate::pg::snapshot::session_setup;
use crate::pg::{connect, copy, quote_ident, quote_literal};
use futures::StreamExt;
use std::sync::Arc;

/// Verifies `chains` in the database `db`.
pub async fn verify_live(
    db: &ConnSettings,
    chains: &[ChainDef],
    filter: &StreamFilter,
) -> Result<ChainsReport> {
    let conn = connect(db).await?;
    // COPY text in the database's encoding, as a backup writes it, so both
    // modes hash the same bytes.
    let row = conn
        .client
        .query_one(
            "SELECT pg_catalog.pg_encoding_to_char(encoding) FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()",
            &[],
        )
        .await
        .map_err(Error::db("reading the database encoding"))?;
    let encoding: String = row
        .try_get(0)
        .map_err(Error::db("reading the database encoding"))?;
    session_setup(&conn, Some(&encoding)).await?;
    conn.client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .map_err(Error::db("starting the verification snapshot"))?;
    let mut reports = Vec::with_capacity(chains.len());
    for def in chains {
        let columns = ChainPlan::select_columns(def);
        let plan = Arc::new(ChainPlan::new(def, &columns)?);
        let sql = live_sql(def, &columns, filter)?;
        tracing::info!(table = %def.table, source = %db, "verifying chain");
        let context = format!("reading chain table {}", def.table);
        let copy = conn
            .client
            .copy_out(&sql)
            .await
            .map_err(Error::db(context.clone()))?;
        futures::pin_mut!(copy);
        let mut verifier = Verifier::new(plan, ChainOptions::default());
        while let Some(chunk) = copy.next().await {
            verifier.feed(&chunk.map_err(Error::db(context.clone()))?)?;
        }
        reports.push(verifier.finish()?.0);
    }
    conn.client
        .batch_execute("COMMIT")
        .await
        .map_err(Error::db("ending the verification snapshot"))?;
    Ok(ChainsReport::new(reports))
}

fn live_sql(def: &ChainDef, columns: &[String], filter: &StreamFilter) -> Result<String> {
    let (schema, name) = def
        .table_parts()
        .ok_or_else(|| Error::Config(format!("table {:?} is not schema-qualified", def.table)))?;
    let filter = match filter.key_values(def)? {
        Some(values) => Some(
            def.stream
                .iter()
                .zip(&values)
                .map(|(c, v)| format!("{} = {}", quote_ident(c), quote_literal(v)))
                .collect::<Vec<_>>()
                .join(" AND "),
        ),
        None => None,
    };
    let order = order_by(def);
    let sql = copy::table_out(&copy::TableRows {
        schema,
        name,
        columns,
        filter,
        order: Some(&order),
        condition: None,
    });
    Ok(sql)
}
