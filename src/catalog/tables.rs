//! Tables: `CREATE TABLE` with columns (types, collations, defaults,
//! identity, generated expressions, NOT NULL), inline CHECK constraints,
//! named not-null constraints (PostgreSQL 18+),
//! inheritance, partitioning, storage parameters; partitions are created
//! standalone and attached with `ALTER TABLE ONLY ... ATTACH PARTITION`, as
//! pg_dump does. Foreign tables (`SERVER ... OPTIONS`) too. Also the data entries (`TableData`) of tables with storage.
//!
//! A column default that calls a user function becomes its own `Default`
//! entry, so a function that uses the table's row type cannot form a cycle.

use super::obj::{class, oref, Obj, Target};
use super::sql::{acl_columns, fdw_options, owner_columns, query, with_options, RowExt};
use super::toc::{ObjectKind, Section, TableData};
use super::Ctx;
use crate::error::Result;
use std::collections::{HashMap, HashSet};
use tokio_postgres::Row;

const TABLES: &str = "SELECT c.oid, n.nspname, c.relname, \
  pg_catalog.format('%I.%I', n.nspname, c.relname) AS qname, {owner}, {acl}, \
  c.relkind::text AS relkind, c.relpersistence = 'u' AS unlogged, c.relispartition, \
  CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END AS partbound, \
  CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END AS partkey, \
  COALESCE(c.reloptions, '{}') || COALESCE((SELECT pg_catalog.array_agg('toast.' || o) \
     FROM pg_catalog.pg_class tc, pg_catalog.unnest(tc.reloptions) o WHERE tc.oid = c.reltoastrelid), '{}') \
     AS reloptions, \
  (SELECT pg_catalog.quote_ident(t.spcname) FROM pg_catalog.pg_tablespace t WHERE t.oid = c.reltablespace) AS tablespace, \
  (SELECT pg_catalog.quote_ident(am.amname) FROM pg_catalog.pg_am am WHERE am.oid = c.relam AND am.amname <> 'heap') AS am, \
  c.relreplident::text AS replident, \
  (SELECT pg_catalog.string_agg(pg_catalog.format('%I.%I', pn.nspname, pc.relname), ', ' ORDER BY i.inhseqno) \
     FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent \
     JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid) AS parents, \
  COALESCE((SELECT pg_catalog.array_agg(i.inhparent ORDER BY i.inhseqno) FROM pg_catalog.pg_inherits i \
     WHERE i.inhrelid = c.oid), '{}') AS parent_oids, \
  CASE WHEN c.reloftype <> 0 THEN pg_catalog.format_type(c.reloftype, NULL) END AS oftype, \
  (SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid LIMIT 1) AS parent, \
  (SELECT pg_catalog.quote_ident(fs.srvname) FROM pg_catalog.pg_foreign_table ft \
     JOIN pg_catalog.pg_foreign_server fs ON fs.oid = ft.ftserver WHERE ft.ftrelid = c.oid) AS ftserver, \
  (SELECT {ftoptions} FROM pg_catalog.pg_foreign_table ft WHERE ft.ftrelid = c.oid) AS ftoptions, \
  pg_catalog.pg_relation_size(c.oid) AS bytes, \
  pg_catalog.current_setting('block_size')::int8 AS block_size \
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
  WHERE c.oid = ANY($1) AND c.relkind IN ('r', 'p', 'f') ORDER BY n.nspname, c.relname";

const COLUMNS: &str = "SELECT a.attrelid, a.attnum, a.attname::text AS attname, \
  pg_catalog.quote_ident(a.attname) AS qname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, \
  a.attnotnull, a.attidentity::text AS identity, a.attgenerated::text AS generated, a.attislocal, \
  EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_attribute pa \
     ON pa.attrelid = i.inhparent AND pa.attname = a.attname \
     WHERE i.inhrelid = a.attrelid AND pa.attnotnull) AS parent_not_null, \
  pg_catalog.current_setting('server_version_num')::int < 160000 AND EXISTS (SELECT 1 \
     FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_attribute pa \
     ON pa.attrelid = i.inhparent AND pa.attname = a.attname \
     WHERE i.inhrelid = a.attrelid AND pa.attgenerated <> '') AS inherits_generation, \
  CASE WHEN a.attcollation <> t.typcollation THEN (SELECT pg_catalog.format('%I.%I', cn.nspname, co.collname) \
     FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace \
     WHERE co.oid = a.attcollation) END AS collation, \
  CASE WHEN a.attstorage <> t.typstorage THEN a.attstorage::text END AS storage, \
  (pg_catalog.to_jsonb(a)->>'attstattarget')::int AS stattarget, \
  (SELECT pg_catalog.string_agg(o, ', ') FROM pg_catalog.unnest(a.attoptions) o \
     WHERE o LIKE 'n\\_distinct%') AS attoptions, \
  CASE pg_catalog.to_jsonb(a)->>'attcompression' WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END AS compression, \
  {fdwoptions} AS fdwoptions, ad.oid AS attrdef, pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) AS def, \
  EXISTS (SELECT 1 FROM pg_catalog.pg_depend dd \
     WHERE dd.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND dd.objid = ad.oid \
     AND dd.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND dd.refobjid >= 16384) AS def_calls_function \
  FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
  LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum \
  WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped \
  ORDER BY a.attrelid, a.attnum";

const CHECKS: &str = "SELECT c.oid, c.conrelid, pg_catalog.quote_ident(c.conname) AS qname, \
  pg_catalog.pg_get_constraintdef(c.oid) AS def, c.conislocal, c.convalidated \
  FROM pg_catalog.pg_constraint c WHERE c.contype = 'c' AND c.conrelid = ANY($1) \
  ORDER BY c.conrelid, c.conname";

/// Not-null constraints, catalogued from PostgreSQL 18 (`contype = 'n'`,
/// one column each), of the tables and of their inheritance parents.
const NOT_NULLS: &str = "SELECT c.oid, c.conrelid, c.conkey[1] AS attnum, a.attname::text AS attname, \
  pg_catalog.quote_ident(c.conname) AS qname, c.conname::text = pg_catalog.format('%s_%s_not_null', \
     r.relname, a.attname) AS default_name, pg_catalog.pg_get_constraintdef(c.oid) AS def, \
  c.conislocal, c.connoinherit, c.convalidated \
  FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_class r ON r.oid = c.conrelid \
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
  WHERE c.contype = 'n' AND (c.conrelid = ANY($1) OR c.conrelid IN \
     (SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = ANY($1)))";

/// A column's not-null constraint (PostgreSQL 18+).
struct NotNull {
    oid: u32,
    qname: String,
    /// Named as PostgreSQL names it by default (`<table>_<column>_not_null`;
    /// pg_dump's test): the DDL then leaves the name out.
    default_name: bool,
    /// `pg_get_constraintdef`: `NOT NULL col [NO INHERIT] [NOT VALID]`.
    def: String,
    local: bool,
    no_inherit: bool,
    valid: bool,
}

impl NotNull {
    fn from_row(row: &Row) -> Result<Self> {
        Ok(NotNull {
            oid: row.val("oid")?,
            qname: row.val("qname")?,
            default_name: row.val("default_name")?,
            def: row.val("def")?,
            local: row.val("conislocal")?,
            no_inherit: row.val("connoinherit")?,
            valid: row.val("convalidated")?,
        })
    }

    /// `[CONSTRAINT name] NOT NULL`, the name only when not the default one.
    fn clause(&self) -> String {
        if self.default_name {
            "NOT NULL".to_string()
        } else {
            format!("CONSTRAINT {} NOT NULL", self.qname)
        }
    }

    fn no_inherit(&self) -> &'static str {
        if self.no_inherit {
            " NO INHERIT"
        } else {
            ""
        }
    }
}

/// Not-null constraints by (table, column number); `None` before
/// PostgreSQL 18, where `attnotnull` is all there is.
type NotNulls = Option<HashMap<(u32, i16), NotNull>>;

/// Reads the not-null constraints (PostgreSQL 18+). An inherited one (not
/// local) that no parent passes down valid (a child created while its
/// parents' were NOT VALID) counts as local: `INHERITS` would not create it
/// (pg_dump's `flagInhAttrs` does the same).
async fn read_not_nulls(ctx: &Ctx<'_>, parents: &HashMap<u32, Vec<u32>>) -> Result<NotNulls> {
    if ctx.version < 180000 {
        return Ok(None);
    }
    let rows = query(
        ctx.client,
        "not-null constraints",
        NOT_NULLS,
        &[&ctx.rel_oids],
    )
    .await?;
    let mut passed_down = HashSet::new();
    for row in &rows {
        if row.val::<bool>("convalidated")? && !row.val::<bool>("connoinherit")? {
            passed_down.insert((row.val::<u32>("conrelid")?, row.val::<String>("attname")?));
        }
    }
    let mut map = HashMap::new();
    for row in &rows {
        let rel: u32 = row.val("conrelid")?;
        let mut nn = NotNull::from_row(row)?;
        let attname: String = row.val("attname")?;
        let rel_parents = parents.get(&rel).map(Vec::as_slice).unwrap_or_default();
        if !nn.local
            && !rel_parents.is_empty()
            && !rel_parents
                .iter()
                .any(|p| passed_down.contains(&(*p, attname.clone())))
        {
            nn.local = true;
        }
        map.insert((rel, row.val::<i16>("attnum")?), nn);
    }
    Ok(Some(map))
}

fn group(rows: Vec<Row>, key: &str) -> Result<HashMap<u32, Vec<Row>>> {
    let mut map: HashMap<u32, Vec<Row>> = HashMap::new();
    for row in rows {
        map.entry(row.val(key)?).or_default().push(row);
    }
    Ok(map)
}

/// One column's definition inside `CREATE TABLE`; `generation`: whether to
/// write a generated column's expression (before 16 a child created with
/// `INHERITS` must leave it to the parent's).
fn column_sql(
    col: &Row,
    identity: Option<&String>,
    (inline_default, generation): (bool, bool),
    not_null: Option<&str>,
) -> Result<String> {
    let mut s = format!(
        "    {} {}",
        col.val::<String>("qname")?,
        col.val::<String>("type")?
    );
    if let Some(o) = col.val::<Option<String>>("fdwoptions")? {
        s.push_str(&format!(" OPTIONS ({o})"));
    }
    if let Some(c) = col.val::<Option<String>>("collation")? {
        s.push_str(&format!(" COLLATE {c}"));
    }
    let def: Option<String> = col.val("def")?;
    match (col.val::<String>("generated")?.as_str(), def) {
        ("s", Some(expr)) if generation => {
            s.push_str(&format!(" GENERATED ALWAYS AS ({expr}) STORED"))
        }
        ("s", _) => {}
        (_, Some(expr)) if inline_default => s.push_str(&format!(" DEFAULT {expr}")),
        _ => {}
    }
    let kind = match col.val::<String>("identity")?.as_str() {
        "a" => Some("ALWAYS"),
        "d" => Some("BY DEFAULT"),
        _ => None,
    };
    if let (Some(kind), Some(opts)) = (kind, identity) {
        s.push_str(&format!(
            " GENERATED {kind} AS IDENTITY (\n    {opts}\n    )"
        ));
    }
    if let Some(nn) = not_null {
        s.push(' ');
        s.push_str(nn);
    }
    Ok(s)
}

/// A typed table's column: only what `CREATE TABLE ... OF type` cannot
/// take from the type.
fn typed_column_sql(
    col: &Row,
    inline_default: bool,
    not_null: Option<&str>,
) -> Result<Option<String>> {
    let mut opts = String::new();
    if let (true, Some(expr)) = (inline_default, col.val::<Option<String>>("def")?) {
        opts.push_str(&format!(" DEFAULT {expr}"));
    }
    if let Some(nn) = not_null {
        opts.push(' ');
        opts.push_str(nn);
    }
    if opts.is_empty() {
        return Ok(None);
    }
    let qcol: String = col.val("qname")?;
    Ok(Some(format!("    {qcol} WITH OPTIONS{opts}")))
}

/// Whether `CREATE TABLE ... INHERITS` would give the child its current
/// column order: the parents' columns first (in order, merged by name), then
/// its own. A child attached later (`ALTER TABLE ... INHERIT`) or whose
/// parent gained columns afterwards may differ; it is then created with
/// all its columns and attached with `INHERIT`.
fn inherits_keeps_order(
    child: &[String],
    parents: &[u32],
    names: &HashMap<u32, Vec<String>>,
) -> bool {
    let mut expected: Vec<&String> = Vec::new();
    for p in parents {
        let Some(cols) = names.get(p) else {
            return true;
        };
        for c in cols {
            if !expected.contains(&c) {
                expected.push(c);
            }
        }
    }
    for c in child {
        if !expected.contains(&c) {
            expected.push(c);
        }
    }
    expected.iter().zip(child).all(|(a, b)| *a == b)
}

/// `ALTER TABLE ONLY ... ALTER COLUMN` statements for per-column settings
/// that `CREATE TABLE` cannot express. `set_not_null`: an inherited column
/// (not in the column list) that is NOT NULL, before PostgreSQL 18.
fn column_settings(
    alter_table: &str,
    qtable: &str,
    col: &Row,
    set_not_null: bool,
) -> Result<String> {
    let qcol: String = col.val("qname")?;
    let alter = format!("{alter_table} ONLY {qtable} ALTER COLUMN {qcol}");
    let mut s = String::new();
    if set_not_null {
        s.push_str(&format!("{alter} SET NOT NULL;\n"));
    }
    if let Some(n) = col.val::<Option<i32>>("stattarget")?.filter(|n| *n >= 0) {
        s.push_str(&format!("{alter} SET STATISTICS {n};\n"));
    }
    let storage = match col.val::<Option<String>>("storage")?.as_deref() {
        Some("p") => Some("PLAIN"),
        Some("e") => Some("EXTERNAL"),
        Some("m") => Some("MAIN"),
        Some("x") => Some("EXTENDED"),
        _ => None,
    };
    if let Some(st) = storage {
        s.push_str(&format!("{alter} SET STORAGE {st};\n"));
    }
    if let Some(o) = col
        .val::<Option<String>>("attoptions")?
        .filter(|o| !o.is_empty())
    {
        s.push_str(&format!("{alter} SET ({o});\n"));
    }
    if let Some(c) = col.val::<Option<String>>("compression")? {
        s.push_str(&format!("{alter} SET COMPRESSION {c};\n"));
    }
    Ok(s)
}

/// What every part of one table's entries needs.
struct Rel<'a> {
    oid: u32,
    schema: &'a str,
    name: &'a str,
    qname: &'a str,
    owner: &'a str,
    /// `ALTER TABLE` or `ALTER FOREIGN TABLE`.
    alter: &'static str,
    /// Created with all its columns and CHECK constraints (a partition, or
    /// an inheritance child whose column order `INHERITS` would change).
    standalone: bool,
    /// A typed table (`OF type`).
    typed: bool,
}

impl Rel<'_> {
    fn obj(&self, kind: ObjectKind, section: Section, name: String, sql: String) -> Obj {
        Obj::new(kind, section, name, sql)
            .schema(self.schema)
            .owner(self.owner)
            .after(oref(class::CLASS, self.oid))
    }
}

/// The column and CHECK lines of `CREATE TABLE`, the `ALTER` statements
/// that follow it, and the separate `Default`/`CheckConstraint` entries.
struct Body {
    lines: Vec<String>,
    after_create: String,
}

/// A not-null constraint of PostgreSQL 18+ (as pg_dump 18 does): valid
/// ones in `CREATE TABLE` (on the column when it is in the column list,
/// local or on a partition, else as a table constraint `NOT NULL col` when
/// local; inherited ones come with `INHERITS`), NOT VALID local ones added
/// after the data. Returns the column's inline clause.
fn not_null(
    rel: &Rel<'_>,
    col: &Row,
    nn: &NotNull,
    emitted: bool,
    body: &mut Body,
    table: &mut Obj,
    out: &mut Vec<Obj>,
) -> Result<Option<String>> {
    let address = oref(class::CONSTRAINT, nn.oid);
    let comment = Target {
        keyword: "CONSTRAINT",
        name: format!("{} ON {}", nn.qname, rel.qname),
    };
    if !nn.valid {
        if nn.local {
            let sql = format!(
                "{} {}
    ADD CONSTRAINT {} {};
",
                rel.alter, rel.qname, nn.qname, nn.def
            );
            let name = format!("{} {}", rel.name, nn.qname);
            out.push(
                rel.obj(ObjectKind::Constraint, Section::PostData, name, sql)
                    .owns(address, Some(comment)),
            );
        } else {
            table.targets.push((address, comment));
        }
        return Ok(None);
    }
    table.targets.push((address, comment));
    if emitted && (nn.local || rel.standalone) {
        table.owns.push(address);
        return Ok(Some(format!("{}{}", nn.clause(), nn.no_inherit())));
    }
    if !emitted && nn.local {
        let qcol: String = col.val("qname")?;
        body.lines
            .push(format!("    {} {qcol}{}", nn.clause(), nn.no_inherit()));
        table.owns.push(address);
    }
    Ok(None)
}

fn columns_and_checks(
    rel: &Rel<'_>,
    cols: &[Row],
    checks: &[Row],
    not_nulls: &NotNulls,
    identities: &HashMap<(u32, i16), String>,
    table: &mut Obj,
    out: &mut Vec<Obj>,
) -> Result<Body> {
    let mut body = Body {
        lines: Vec::new(),
        after_create: String::new(),
    };
    for col in cols {
        let emitted = rel.standalone || rel.typed || col.val::<bool>("attislocal")?;
        let attrdef: Option<u32> = col.val("attrdef")?;
        let separate = attrdef.is_some()
            && col.val::<String>("generated")?.is_empty()
            && (col.val::<bool>("def_calls_function")? || !emitted);
        let attnum: i16 = col.val("attnum")?;
        let attnotnull: bool = col.val("attnotnull")?;
        // Before 18 a parent's NOT NULL reaches its children through
        // INHERITS: writing it again would make it the child's own (on an
        // 18 target, a local constraint). A child created standalone needs
        // it for ALTER TABLE ... INHERIT.
        let own_not_null = attnotnull && (rel.standalone || !col.val::<bool>("parent_not_null")?);
        let (inline_not_null, set_not_null) = match not_nulls {
            None => (
                (emitted && own_not_null).then(|| "NOT NULL".to_string()),
                !emitted && own_not_null,
            ),
            Some(map) => match map.get(&(rel.oid, attnum)) {
                Some(nn) => (
                    not_null(rel, col, nn, emitted, &mut body, table, out)?,
                    false,
                ),
                None => (None, false),
            },
        };
        if rel.typed {
            body.lines.extend(typed_column_sql(
                col,
                !separate,
                inline_not_null.as_deref(),
            )?);
        } else if emitted {
            let generation = rel.standalone || !col.val::<bool>("inherits_generation")?;
            body.lines.push(column_sql(
                col,
                identities.get(&(rel.oid, attnum)),
                (!separate, generation),
                inline_not_null.as_deref(),
            )?);
        }
        body.after_create
            .push_str(&column_settings(rel.alter, rel.qname, col, set_not_null)?);
        match attrdef {
            Some(ad) if separate => {
                let (qcol, expr): (String, String) = (col.val("qname")?, col.val("def")?);
                let sql = format!(
                    "{} ONLY {} ALTER COLUMN {qcol} SET DEFAULT {expr};\n",
                    rel.alter, rel.qname
                );
                let name = format!("{} {}", rel.name, col.val::<String>("attname")?);
                let mut default = rel
                    .obj(ObjectKind::Default, Section::PreData, name, sql)
                    .owns(oref(class::ATTRDEF, ad), None);
                // Dropped before the function it may call (pg_restore
                // --clean --if-exists does the same).
                default.drop = Some(format!(
                    "{} IF EXISTS ONLY {} ALTER COLUMN {qcol} DROP DEFAULT;\n",
                    rel.alter, rel.qname
                ));
                out.push(default);
            }
            Some(ad) => table.owns.push(oref(class::ATTRDEF, ad)),
            None => {}
        }
    }
    for con in checks {
        let (cname, def, con_oid): (String, String, u32) =
            (con.val("qname")?, con.val("def")?, con.val("oid")?);
        let address = oref(class::CONSTRAINT, con_oid);
        let comment = Target {
            keyword: "CONSTRAINT",
            name: format!("{cname} ON {}", rel.qname),
        };
        let local: bool = con.val("conislocal")?;
        if !con.val::<bool>("convalidated")? {
            // NOT VALID: added after the data, unchecked.
            if local {
                let sql = format!(
                    "ALTER TABLE {}\n    ADD CONSTRAINT {cname} {def};\n",
                    rel.qname
                );
                let name = format!("{} {cname}", rel.name);
                out.push(
                    rel.obj(ObjectKind::CheckConstraint, Section::PostData, name, sql)
                        .owns(address, Some(comment)),
                );
            }
        } else if rel.standalone || local {
            body.lines.push(format!("    CONSTRAINT {cname} {def}"));
            table.owns.push(address);
            table.targets.push((address, comment));
        } else {
            // Inherited: created by the parent, commented here.
            table.targets.push((address, comment));
        }
    }
    Ok(body)
}

/// The data entry of a table with storage.
fn data_entry(rel: &Rel<'_>, t: &Row, cols: &[Row]) -> Result<Obj> {
    let mut columns = Vec::new();
    for col in cols {
        if col.val::<String>("generated")?.is_empty() {
            columns.push(col.val::<String>("attname")?);
        }
    }
    let bytes = u64::try_from(t.val::<i64>("bytes")?).unwrap_or(0);
    let block = u64::try_from(t.val::<i64>("block_size")?)
        .unwrap_or(8192)
        .max(1);
    let data = TableData {
        schema: rel.schema.to_string(),
        name: rel.name.to_string(),
        columns,
        est_bytes: bytes,
        pages: bytes / block,
        splittable: true,
        condition: None,
    };
    Ok(rel
        .obj(
            ObjectKind::TableData,
            Section::Data,
            rel.name.to_string(),
            String::new(),
        )
        .data(data))
}

pub async fn read(
    ctx: &Ctx<'_>,
    identities: &HashMap<(u32, i16), String>,
    out: &mut Vec<Obj>,
) -> Result<()> {
    let sql = TABLES
        .replace("{owner}", &owner_columns("c.relowner"))
        .replace(
            "{acl}",
            &acl_columns("c.relacl", 'r', "c.relowner", "pg_class", "c.oid"),
        )
        .replace("{ftoptions}", &fdw_options("ft.ftoptions"));
    let columns_sql = COLUMNS.replace("{fdwoptions}", &fdw_options("a.attfdwoptions"));
    let tables = query(ctx.client, "tables", &sql, &[&ctx.rel_oids]).await?;
    let mut columns = group(
        query(ctx.client, "columns", &columns_sql, &[&ctx.rel_oids]).await?,
        "attrelid",
    )?;
    let mut checks = group(
        query(ctx.client, "check constraints", CHECKS, &[&ctx.rel_oids]).await?,
        "conrelid",
    )?;
    let mut qnames = HashMap::new();
    let mut parents = HashMap::new();
    for t in &tables {
        qnames.insert(t.val::<u32>("oid")?, t.val::<String>("qname")?);
        parents.insert(t.val::<u32>("oid")?, t.val::<Vec<u32>>("parent_oids")?);
    }
    let not_nulls = read_not_nulls(ctx, &parents).await?;
    let mut names: HashMap<u32, Vec<String>> = HashMap::new();
    for (rel, cols) in &columns {
        let list = cols
            .iter()
            .map(|c| c.val::<String>("attname"))
            .collect::<Result<_>>()?;
        names.insert(*rel, list);
    }
    for t in tables {
        let (oid, schema, name, qname, owner): (u32, String, String, String, String) = (
            t.val("oid")?,
            t.val("nspname")?,
            t.val("relname")?,
            t.val("qname")?,
            t.val("owner")?,
        );
        let relkind: String = t.val("relkind")?;
        let foreign = relkind == "f";
        let keyword = if foreign { "FOREIGN TABLE" } else { "TABLE" };
        let alter = if foreign {
            "ALTER FOREIGN TABLE"
        } else {
            "ALTER TABLE"
        };
        let partition: bool = t.val("relispartition")?;
        let parent_oids: Vec<u32> = t.val("parent_oids")?;
        let oftype: Option<String> = t.val("oftype")?;
        let cols = columns.remove(&oid).unwrap_or_default();
        let own_names = names.get(&oid).map(Vec::as_slice).unwrap_or_default();
        let late_child = !partition && !inherits_keeps_order(own_names, &parent_oids, &names);
        let standalone = partition || late_child;
        let rel = Rel {
            oid,
            schema: &schema,
            name: &name,
            qname: &qname,
            owner: &owner,
            alter,
            standalone,
            typed: oftype.is_some(),
        };
        let mut table = Obj::new(
            ObjectKind::Table,
            Section::PreData,
            name.clone(),
            String::new(),
        )
        .schema(schema.clone())
        .owner(owner.clone())
        .creates(class::CLASS, oid, keyword, qname.clone())
        .grants(&t, "TABLE", qname.clone())?;
        let cons = checks.remove(&oid).unwrap_or_default();
        let body = columns_and_checks(&rel, &cols, &cons, &not_nulls, identities, &mut table, out)?;

        let prefix = match (foreign, t.val::<bool>("unlogged")?) {
            (true, _) => "FOREIGN ",
            (false, true) => "UNLOGGED ",
            (false, false) => "",
        };
        let of = oftype.map(|t| format!(" OF {t}")).unwrap_or_default();
        let mut sql = if body.lines.is_empty() && !of.is_empty() {
            format!("CREATE {prefix}TABLE {qname}{of}")
        } else {
            format!(
                "CREATE {prefix}TABLE {qname}{of} (\n{}\n)",
                body.lines.join(",\n")
            )
        };
        if !standalone {
            if let Some(parents) = t.val::<Option<String>>("parents")? {
                sql.push_str(&format!("\nINHERITS ({parents})"));
            }
        }
        if let Some(key) = t.val::<Option<String>>("partkey")? {
            sql.push_str(&format!("\nPARTITION BY {key}"));
        }
        if let Some(server) = t.val::<Option<String>>("ftserver")? {
            sql.push_str(&format!("\nSERVER {server}"));
            if let Some(o) = t.val::<Option<String>>("ftoptions")? {
                sql.push_str(&format!("\nOPTIONS ({o})"));
            }
        }
        if let Some(am) = t.val::<Option<String>>("am")? {
            sql.push_str(&format!("\nUSING {am}"));
        }
        sql.push_str(&with_options(&t.val::<Vec<String>>("reloptions")?));
        if let Some(ts) = t.val::<Option<String>>("tablespace")? {
            sql.push_str(&format!("\nTABLESPACE {ts}"));
        }
        sql.push_str(&format!(
            ";\n{alter} {qname} OWNER TO {};\n",
            t.val::<String>("qowner")?
        ));
        if late_child {
            for p in parent_oids.iter().filter_map(|p| qnames.get(p)) {
                sql.push_str(&format!("ALTER TABLE ONLY {qname} INHERIT {p};\n"));
            }
        }
        sql.push_str(&body.after_create);
        match t.val::<String>("replident")?.as_str() {
            _ if foreign => {}
            "f" => sql.push_str(&format!(
                "ALTER TABLE ONLY {qname} REPLICA IDENTITY FULL;\n"
            )),
            "n" => sql.push_str(&format!(
                "ALTER TABLE ONLY {qname} REPLICA IDENTITY NOTHING;\n"
            )),
            _ => {}
        }
        table.sql = sql;
        out.push(table);

        let parent: Option<u32> = t.val("parent")?;
        if let (true, Some(parent)) = (partition, parent.filter(|p| ctx.rels.contains(p))) {
            let bound: String = t.val("partbound")?;
            let qparent = qnames.get(&parent).cloned().unwrap_or_default();
            let sql = format!("ALTER TABLE ONLY {qparent} ATTACH PARTITION {qname} {bound};\n");
            out.push(
                rel.obj(
                    ObjectKind::PartitionAttach,
                    Section::PreData,
                    name.clone(),
                    sql,
                )
                .after(oref(class::CLASS, parent)),
            );
        }
        if relkind == "r" {
            out.push(data_entry(&rel, &t, &cols)?);
        }
    }
    Ok(())
}
