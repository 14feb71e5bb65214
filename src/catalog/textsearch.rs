//! Text-search dictionaries and configurations (with their token mappings).
//! Parsers and templates need C code and are not dumped.

use super::obj::{class, Obj};
use super::sql::{fill_query, query, RowExt};
use super::toc::ObjectKind;
use super::Ctx;
use crate::error::Result;
use std::collections::HashMap;
use tokio_postgres::Row;

const DICTS: &str = "SELECT d.oid, n.nspname, d.dictname::text AS name, \
  pg_catalog.format('%I.%I', n.nspname, d.dictname) AS qname, {owner}, \
  (SELECT pg_catalog.format('%I.%I', tn.nspname, t.tmplname) FROM pg_catalog.pg_ts_template t \
     JOIN pg_catalog.pg_namespace tn ON tn.oid = t.tmplnamespace WHERE t.oid = d.dicttemplate) AS template, \
  d.dictinitoption AS options \
  FROM pg_catalog.pg_ts_dict d JOIN pg_catalog.pg_namespace n ON n.oid = d.dictnamespace \
  WHERE {user} AND {ext} ORDER BY n.nspname, d.dictname";

const CONFIGS: &str = "SELECT c.oid, n.nspname, c.cfgname::text AS name, \
  pg_catalog.format('%I.%I', n.nspname, c.cfgname) AS qname, {owner}, \
  (SELECT pg_catalog.format('%I.%I', pn.nspname, p.prsname) FROM pg_catalog.pg_ts_parser p \
     JOIN pg_catalog.pg_namespace pn ON pn.oid = p.prsnamespace WHERE p.oid = c.cfgparser) AS parser \
  FROM pg_catalog.pg_ts_config c JOIN pg_catalog.pg_namespace n ON n.oid = c.cfgnamespace \
  WHERE {user} AND {ext} ORDER BY n.nspname, c.cfgname";

const MAPPINGS: &str = "SELECT m.mapcfg, t.alias, \
  pg_catalog.string_agg(pg_catalog.format('%I.%I', dn.nspname, d.dictname), ', ' ORDER BY m.mapseqno) AS dicts \
  FROM pg_catalog.pg_ts_config_map m JOIN pg_catalog.pg_ts_config c ON c.oid = m.mapcfg \
  CROSS JOIN LATERAL pg_catalog.ts_token_type(c.cfgparser) t \
  JOIN pg_catalog.pg_ts_dict d ON d.oid = m.mapdict JOIN pg_catalog.pg_namespace dn ON dn.oid = d.dictnamespace \
  WHERE t.tokid = m.maptokentype AND c.oid >= 16384 \
  GROUP BY m.mapcfg, m.maptokentype, t.alias ORDER BY m.mapcfg, m.maptokentype";

/// Reads one kind: `body` gives the `CREATE` statement(s) of a row (and its
/// quoted name); ownership and the entry are common.
#[allow(clippy::too_many_arguments)]
async fn read_kind(
    ctx: &Ctx<'_>,
    out: &mut Vec<Obj>,
    what: &str,
    sql: &str,
    kind: ObjectKind,
    classid: u32,
    keyword: &'static str,
    mut body: impl FnMut(&Row, &str) -> Result<String>,
) -> Result<()> {
    for row in query(ctx.client, what, sql, &[]).await? {
        if !ctx.filter.schema_objects(&row.val::<String>("nspname")?) {
            continue;
        }
        let qname: String = row.val("qname")?;
        let mut sql = body(&row, &qname)?;
        sql.push_str(&format!(
            "ALTER {keyword} {qname} OWNER TO {};\n",
            row.val::<String>("qowner")?
        ));
        let obj = Obj::in_schema(kind, &row, sql)?;
        out.push(obj.creates(classid, row.val("oid")?, keyword, qname));
    }
    Ok(())
}

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let dicts = fill_query(DICTS, "d.dictowner", "pg_ts_dict", "d.oid");
    read_kind(
        ctx,
        out,
        "text search dictionaries",
        &dicts,
        ObjectKind::TextSearchDictionary,
        class::TS_DICT,
        "TEXT SEARCH DICTIONARY",
        |row, qname| {
            let mut opts = vec![format!("TEMPLATE = {}", row.val::<String>("template")?)];
            opts.extend(row.val::<Option<String>>("options")?);
            Ok(format!(
                "CREATE TEXT SEARCH DICTIONARY {qname} ({});\n",
                opts.join(", ")
            ))
        },
    )
    .await?;
    let mut maps: HashMap<u32, Vec<(String, String)>> = HashMap::new();
    for row in query(ctx.client, "text search mappings", MAPPINGS, &[]).await? {
        maps.entry(row.val("mapcfg")?)
            .or_default()
            .push((row.val("alias")?, row.val("dicts")?));
    }
    let configs = fill_query(CONFIGS, "c.cfgowner", "pg_ts_config", "c.oid");
    read_kind(
        ctx,
        out,
        "text search configurations",
        &configs,
        ObjectKind::TextSearchConfiguration,
        class::TS_CONFIG,
        "TEXT SEARCH CONFIGURATION",
        |row, qname| {
            let mut sql = format!(
                "CREATE TEXT SEARCH CONFIGURATION {qname} (PARSER = {});\n",
                row.val::<String>("parser")?
            );
            for (token, dicts) in maps.remove(&row.val("oid")?).unwrap_or_default() {
                sql.push_str(&format!(
                    "ALTER TEXT SEARCH CONFIGURATION {qname} ADD MAPPING FOR {token} WITH {dicts};\n"
                ));
            }
            Ok(sql)
        },
    )
    .await
}
