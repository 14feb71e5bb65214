//! Text-search dictionaries and configurations (with their token mappings).
//! Parsers and templates need C code and are not dumped.

use super::obj::{class, oref, target, Obj};
use super::sql::{not_extension_member, owner_columns, query, user_schema, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;
use std::collections::HashMap;

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

fn fill(sql: &str, owner: &str, catalog: &str, oid: &str) -> String {
    sql.replace("{owner}", &owner_columns(owner))
        .replace("{user}", &user_schema("n"))
        .replace("{ext}", &not_extension_member(catalog, oid))
}

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let dicts = fill(DICTS, "d.dictowner", "pg_ts_dict", "d.oid");
    for row in query(ctx.client, "text search dictionaries", &dicts, &[]).await? {
        let schema: String = row.val("nspname")?;
        if !ctx.filter.schema_objects(&schema) {
            continue;
        }
        let qname: String = row.val("qname")?;
        let mut opts = vec![format!("TEMPLATE = {}", row.val::<String>("template")?)];
        opts.extend(row.val::<Option<String>>("options")?);
        let sql = format!(
            "CREATE TEXT SEARCH DICTIONARY {qname} ({});\nALTER TEXT SEARCH DICTIONARY {qname} OWNER TO {};\n",
            opts.join(", "),
            row.val::<String>("qowner")?
        );
        out.push(
            Obj::new(
                ObjectKind::TextSearchDictionary,
                Section::PreData,
                row.val::<String>("name")?,
                sql,
            )
            .schema(schema)
            .owner(row.val::<String>("owner")?)
            .owns(
                oref(class::TS_DICT, row.val("oid")?),
                target("TEXT SEARCH DICTIONARY", qname),
            ),
        );
    }
    let mut maps: HashMap<u32, Vec<(String, String)>> = HashMap::new();
    for row in query(ctx.client, "text search mappings", MAPPINGS, &[]).await? {
        maps.entry(row.val("mapcfg")?)
            .or_default()
            .push((row.val("alias")?, row.val("dicts")?));
    }
    let configs = fill(CONFIGS, "c.cfgowner", "pg_ts_config", "c.oid");
    for row in query(ctx.client, "text search configurations", &configs, &[]).await? {
        let schema: String = row.val("nspname")?;
        if !ctx.filter.schema_objects(&schema) {
            continue;
        }
        let oid: u32 = row.val("oid")?;
        let qname: String = row.val("qname")?;
        let mut sql = format!(
            "CREATE TEXT SEARCH CONFIGURATION {qname} (PARSER = {});\n",
            row.val::<String>("parser")?
        );
        for (token, dicts) in maps.remove(&oid).unwrap_or_default() {
            sql.push_str(&format!(
                "ALTER TEXT SEARCH CONFIGURATION {qname} ADD MAPPING FOR {token} WITH {dicts};\n"
            ));
        }
        sql.push_str(&format!(
            "ALTER TEXT SEARCH CONFIGURATION {qname} OWNER TO {};\n",
            row.val::<String>("qowner")?
        ));
        out.push(
            Obj::new(
                ObjectKind::TextSearchConfiguration,
                Section::PreData,
                row.val::<String>("name")?,
                sql,
            )
            .schema(schema)
            .owner(row.val::<String>("owner")?)
            .owns(
                oref(class::TS_CONFIG, oid),
                target("TEXT SEARCH CONFIGURATION", qname),
            ),
        );
    }
    Ok(())
}
