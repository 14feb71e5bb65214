//! Every COPY statement pgkeep sends, in one place: table data out (whole,
//! ctid slices, ordered chain tables, filtered chain streams), large
//! objects out in bounded chunks, and the loads back in. The byte streams
//! themselves belong to the callers (backup workers, restore loaders, the
//! live chain verifier); this module owns only the SQL text.

use super::quote::{qualified, quote_ident};

/// Bytes of a large object per COPY row: an object of any size is dumped
/// as rows of at most this much (hex-encoded, twice that in COPY text), so
/// neither the server's 1 GB text limit nor a frame bounds its size.
pub const LARGE_OBJECT_CHUNK: u64 = 256 * 1024;

/// Columns of the large-object data stream written by this version:
/// object id, byte offset, bytes. Backups by older versions have two
/// (object id, whole contents).
pub const LARGE_OBJECT_COLUMNS: [&str; 3] = ["loid", "offset", "data"];

/// The rows of one table to copy out.
#[derive(Clone, Debug, Default)]
pub struct TableRows<'a> {
    pub schema: &'a str,
    pub name: &'a str,
    /// Columns in order (none: every column).
    pub columns: &'a [String],
    /// A `WHERE` condition (a ctid slice, a chain stream).
    pub filter: Option<String>,
    /// An `ORDER BY` clause (chain tables are copied in chain order).
    pub order: Option<&'a str>,
    /// A whole `WHERE ...` clause, as an extension gave it for its
    /// configuration table (exclusive with `filter`).
    pub condition: Option<&'a str>,
}

fn column_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `COPY ... TO STDOUT` of a table's rows (text format). A plain table copy
/// when there is neither filter nor order; otherwise a `SELECT` over `ONLY`
/// the table, so inheritance children are never read twice.
pub fn table_out(t: &TableRows<'_>) -> String {
    let table = qualified(t.schema, t.name);
    let cols = column_list(t.columns);
    if t.filter.is_none() && t.order.is_none() && t.condition.is_none() {
        return if t.columns.is_empty() {
            format!("COPY {table} TO STDOUT")
        } else {
            format!("COPY {table} ({cols}) TO STDOUT")
        };
    }
    let mut sql = format!("COPY (SELECT {cols} FROM ONLY {table}");
    if let Some(f) = &t.filter {
        sql.push_str(" WHERE ");
        sql.push_str(f);
    }
    if let Some(c) = t.condition {
        sql.push(' ');
        sql.push_str(c);
    }
    if let Some(o) = t.order {
        sql.push(' ');
        sql.push_str(o);
    }
    sql.push_str(") TO STDOUT");
    sql
}

/// The `WHERE` condition of a ctid slice: pages `start..end` (open-ended
/// without `end`).
pub fn ctid_slice(start: u64, end: Option<u64>) -> String {
    let mut w = format!("ctid >= '({start},0)'::pg_catalog.tid");
    if let Some(end) = end {
        w.push_str(&format!(" AND ctid < '({end},0)'::pg_catalog.tid"));
    }
    w
}

/// `COPY ... TO STDOUT` of every large object's contents in chunks of
/// [`LARGE_OBJECT_CHUNK`] bytes: (object id, offset, bytes), objects in oid
/// order and each object's chunks in offset order. Each object's size comes
/// from a descriptor opened for reading in the backup's snapshot and closed
/// at once; an empty object yields one empty chunk.
pub fn large_objects_out() -> String {
    let chunk = LARGE_OBJECT_CHUNK;
    format!(
        "COPY (SELECT m.oid, g.off, pg_catalog.lo_get(m.oid, g.off, {chunk}) \
         FROM (SELECT oid FROM pg_catalog.pg_largeobject_metadata ORDER BY oid OFFSET 0) m \
         CROSS JOIN LATERAL (SELECT pg_catalog.lo_lseek64(d.fd, 0, 2) AS size, pg_catalog.lo_close(d.fd) \
           FROM (SELECT pg_catalog.lo_open(m.oid, 262144) AS fd OFFSET 0) d) s \
         CROSS JOIN LATERAL pg_catalog.generate_series(0::int8, GREATEST(s.size - 1, 0), {chunk}) g(off)) TO STDOUT"
    )
}

/// `COPY ... FROM STDIN` into a table (`FREEZE` when the table was created
/// or truncated in the same transaction).
pub fn table_in(schema: &str, name: &str, columns: &[String], freeze: bool) -> String {
    let mut target = qualified(schema, name);
    if !columns.is_empty() {
        target.push_str(&format!(" ({})", column_list(columns)));
    }
    if freeze {
        format!("COPY {target} FROM STDIN WITH (FREEZE)")
    } else {
        format!("COPY {target} FROM STDIN")
    }
}

/// How large-object contents load: (statement before, COPY, statement
/// after), through a temporary table dropped at commit. `columns` are the
/// stream's recorded columns: chunked (three) or whole objects (two, older
/// backups).
pub fn large_objects_in(columns: usize) -> (String, String, String) {
    if columns == LARGE_OBJECT_COLUMNS.len() {
        (
            "CREATE TEMP TABLE pgkeep_lo (loid pg_catalog.oid, off pg_catalog.int8, data pg_catalog.bytea) ON COMMIT DROP".into(),
            "COPY pgkeep_lo (loid, off, data) FROM STDIN".into(),
            "SELECT pg_catalog.lo_put(loid, off, data) FROM pgkeep_lo ORDER BY loid, off".into(),
        )
    } else {
        (
            "CREATE TEMP TABLE pgkeep_lo (loid pg_catalog.oid, data pg_catalog.bytea) ON COMMIT DROP".into(),
            "COPY pgkeep_lo (loid, data) FROM STDIN".into(),
            "SELECT pg_catalog.lo_put(loid, 0, data) FROM pgkeep_lo".into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_copies() {
        let cols = vec!["a".to_string(), "B".to_string()];
        let t = TableRows {
            schema: "public",
            name: "t",
            columns: &cols,
            ..TableRows::default()
        };
        assert_eq!(table_out(&t), "COPY public.t (a, \"B\") TO STDOUT");
        let slice = TableRows {
            filter: Some(ctid_slice(3, Some(9))),
            ..t.clone()
        };
        assert_eq!(
            table_out(&slice),
            "COPY (SELECT a, \"B\" FROM ONLY public.t WHERE ctid >= '(3,0)'::pg_catalog.tid AND ctid < '(9,0)'::pg_catalog.tid) TO STDOUT"
        );
        let ordered = TableRows {
            order: Some("ORDER BY a"),
            ..t.clone()
        };
        assert_eq!(
            table_out(&ordered),
            "COPY (SELECT a, \"B\" FROM ONLY public.t ORDER BY a) TO STDOUT"
        );
        let configured = TableRows {
            condition: Some("WHERE NOT standard"),
            ..t.clone()
        };
        assert_eq!(
            table_out(&configured),
            "COPY (SELECT a, \"B\" FROM ONLY public.t WHERE NOT standard) TO STDOUT"
        );
        assert_eq!(
            table_in("s", "t", &cols, true),
            "COPY s.t (a, \"B\") FROM STDIN WITH (FREEZE)"
        );
        assert_eq!(table_in("s", "t", &[], false), "COPY s.t FROM STDIN");
    }
}
