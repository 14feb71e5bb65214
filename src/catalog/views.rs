//! Views (`pg_get_viewdef`) and materialized views: created `WITH NO DATA`
//! in pre-data, filled by a post-data `REFRESH MATERIALIZED VIEW` entry when
//! the source's was populated. A view owns its `_RETURN` rule, so the
//! rule's dependencies order the view. Column defaults of views
//! (`ALTER VIEW ... SET DEFAULT`) and a materialized view's column
//! statistics targets, storage and compression are part of the entry.
//! Each plain view also carries its split form (a placeholder and a
//! post-data definition), used when it is on a dependency cycle.

use super::obj::{class, oref, Obj, ViewSplit};
use super::sql::{acl_columns, owner_columns, query, with_options, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;

const VIEWS: &str = "SELECT c.oid, n.nspname, c.relname, c.relkind::text AS relkind, \
  pg_catalog.format('%I.%I', n.nspname, c.relname) AS qname, {owner}, {acl}, \
  pg_catalog.pg_get_viewdef(c.oid) AS def, COALESCE(c.reloptions, '{}') AS reloptions, c.relispopulated, \
  (SELECT pg_catalog.quote_ident(t.spcname) FROM pg_catalog.pg_tablespace t WHERE t.oid = c.reltablespace) AS tablespace, \
  (SELECT pg_catalog.quote_ident(am.amname) FROM pg_catalog.pg_am am WHERE am.oid = c.relam AND am.amname <> 'heap') AS am, \
  (SELECT r.oid FROM pg_catalog.pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename = '_RETURN') AS rule, \
  (SELECT pg_catalog.string_agg(pg_catalog.format(E'ALTER VIEW %I.%I ALTER COLUMN %I SET DEFAULT %s;\\n', \
       n.nspname, c.relname, a.attname, pg_catalog.pg_get_expr(d.adbin, d.adrelid)), '' ORDER BY a.attnum) \
     FROM pg_catalog.pg_attrdef d JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum \
     WHERE d.adrelid = c.oid) AS defaults, \
  (SELECT pg_catalog.string_agg( \
       CASE WHEN (pg_catalog.to_jsonb(a)->>'attstattarget')::int >= 0 THEN pg_catalog.format( \
         E'ALTER TABLE ONLY %I.%I ALTER COLUMN %I SET STATISTICS %s;\\n', n.nspname, c.relname, a.attname, \
         (pg_catalog.to_jsonb(a)->>'attstattarget')::int) ELSE '' END || \
       CASE WHEN a.attstorage <> t.typstorage THEN pg_catalog.format( \
         E'ALTER TABLE ONLY %I.%I ALTER COLUMN %I SET STORAGE %s;\\n', n.nspname, c.relname, a.attname, \
         CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END) ELSE '' END || \
       CASE WHEN pg_catalog.to_jsonb(a)->>'attcompression' IN ('p', 'l') THEN pg_catalog.format( \
         E'ALTER TABLE ONLY %I.%I ALTER COLUMN %I SET COMPRESSION %s;\\n', n.nspname, c.relname, a.attname, \
         CASE pg_catalog.to_jsonb(a)->>'attcompression' WHEN 'p' THEN 'pglz' ELSE 'lz4' END) ELSE '' END, \
       '' ORDER BY a.attnum) \
     FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind = 'm') AS column_settings, \
  (SELECT pg_catalog.string_agg(pg_catalog.format('NULL::%s%s AS %I', \
       pg_catalog.format_type(a.atttypid, a.atttypmod), \
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN \
         (SELECT pg_catalog.format(' COLLATE %I.%I', cn.nspname, co.collname) FROM pg_catalog.pg_collation co \
          JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) ELSE '' END, \
       a.attname), E',\n    ' ORDER BY a.attnum) \
     FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind = 'v') AS placeholder \
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
  WHERE c.oid = ANY($1) AND c.relkind IN ('v', 'm') ORDER BY n.nspname, c.relname";

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let sql = VIEWS
        .replace("{owner}", &owner_columns("c.relowner"))
        .replace(
            "{acl}",
            &acl_columns("c.relacl", 'r', "c.relowner", "pg_class", "c.oid"),
        );
    for row in query(ctx.client, "views", &sql, &[&ctx.rel_oids]).await? {
        let oid: u32 = row.val("oid")?;
        let schema: String = row.val("nspname")?;
        let name: String = row.val("relname")?;
        let qname: String = row.val("qname")?;
        let def: String = row.val("def")?;
        let def = def.trim_end().trim_end_matches(';');
        let reloptions: Vec<String> = row.val("reloptions")?;
        let options = with_options(&reloptions);
        let matview = row.val::<String>("relkind")? == "m";
        let (kind, keyword) = if matview {
            (ObjectKind::MaterializedView, "MATERIALIZED VIEW")
        } else {
            (ObjectKind::View, "VIEW")
        };
        let owner_sql = format!(
            "ALTER {keyword} {qname} OWNER TO {};\n",
            row.val::<String>("qowner")?
        );
        let defaults = row.val::<Option<String>>("defaults")?.unwrap_or_default();
        let settings = row
            .val::<Option<String>>("column_settings")?
            .unwrap_or_default();
        let sql = if matview {
            let am = row
                .val::<Option<String>>("am")?
                .map(|a| format!(" USING {a}"))
                .unwrap_or_default();
            let ts = row
                .val::<Option<String>>("tablespace")?
                .map(|t| format!("\nTABLESPACE {t}"))
                .unwrap_or_default();
            format!(
                "CREATE MATERIALIZED VIEW {qname}{am}{options}{ts} AS\n{def}\n  WITH NO DATA;\n{owner_sql}{defaults}{settings}"
            )
        } else {
            format!("CREATE VIEW {qname}{options} AS\n{def};\n{owner_sql}{defaults}{settings}")
        };
        let rule = row
            .val::<Option<u32>>("rule")?
            .map(|r| oref(class::REWRITE, r));
        // A placeholder cannot take CHECK OPTION (it is not updatable); the
        // definition sets it.
        let placeholder_options = with_options(
            &reloptions
                .iter()
                .filter(|o| !o.starts_with("check_option="))
                .cloned()
                .collect::<Vec<_>>(),
        );
        let split = match (row.val::<Option<String>>("placeholder")?, rule) {
            (Some(columns), Some(rule)) if !matview => Some(ViewSplit {
                placeholder: format!(
                    "CREATE VIEW {qname}{placeholder_options} AS\nSELECT\n    {columns};\n{owner_sql}{settings}"
                ),
                reset: format!(
                    "CREATE OR REPLACE VIEW {qname}{placeholder_options} AS SELECT {columns}"
                ),
                definition: format!("CREATE OR REPLACE VIEW {qname}{options} AS\n{def};\n{defaults}"),
                rule,
            }),
            _ => None,
        };
        let owner: String = row.val("owner")?;
        let mut obj = Obj::new(kind, Section::PreData, name.clone(), sql)
            .schema(schema.clone())
            .owner(owner.clone())
            .creates(class::CLASS, oid, keyword, qname.clone())
            .grants(&row, "TABLE", qname.clone())?;
        if let Some(rule) = rule {
            obj = obj.owns(rule, None);
        }
        obj.split = split;
        out.push(obj);
        if matview && row.val::<bool>("relispopulated")? {
            let sql = format!("REFRESH MATERIALIZED VIEW {qname};\n");
            out.push(
                Obj::new(
                    ObjectKind::MaterializedViewData,
                    Section::PostData,
                    name,
                    sql,
                )
                .schema(schema)
                .owner(owner)
                .after(oref(class::CLASS, oid)),
            );
        }
    }
    Ok(())
}
