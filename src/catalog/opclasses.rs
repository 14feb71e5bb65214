//! Operator families and classes (`CREATE OPERATOR FAMILY`, `CREATE
//! OPERATOR CLASS`) with their operators and support functions. A class's
//! members (`pg_amop`/`pg_amproc` rows internal to it) go in its `AS` list;
//! a family's loose members, added with `ALTER OPERATOR FAMILY ... ADD`,
//! belong to the family entry. A family is dumped when it has loose
//! members, holds a class of another name or owner, or holds no class;
//! otherwise its class creates it, as with pg_dump.

use super::obj::{class, oref, Obj};
use super::sql::{fill_query, query, RowExt};
use super::toc::{ObjRef, ObjectKind};
use super::Ctx;
use crate::error::Result;
use std::collections::HashMap;

const FAMILIES: &str = "SELECT f.oid, n.nspname, f.opfname::text AS name, \
  pg_catalog.format('%I.%I', n.nspname, f.opfname) AS qname, {owner}, \
  pg_catalog.quote_ident(am.amname) AS am, \
  (EXISTS (SELECT 1 FROM pg_catalog.pg_opclass c WHERE c.opcfamily = f.oid \
     AND (c.opcname <> f.opfname OR c.opcnamespace <> f.opfnamespace OR c.opcowner <> f.opfowner)) \
   OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_opclass c WHERE c.opcfamily = f.oid)) AS own_entry \
  FROM pg_catalog.pg_opfamily f JOIN pg_catalog.pg_namespace n ON n.oid = f.opfnamespace \
  JOIN pg_catalog.pg_am am ON am.oid = f.opfmethod \
  WHERE {user} AND {ext} AND f.oid >= 16384 ORDER BY n.nspname, f.opfname";

const CLASSES: &str = "SELECT c.oid, n.nspname, c.opcname::text AS name, \
  pg_catalog.format('%I.%I', n.nspname, c.opcname) AS qname, {owner}, c.opcdefault, \
  pg_catalog.format_type(c.opcintype, NULL) AS intype, pg_catalog.quote_ident(am.amname) AS am, \
  c.opcfamily, pg_catalog.format('%I.%I', fn.nspname, f.opfname) AS qfamily, \
  CASE WHEN c.opckeytype <> 0 THEN pg_catalog.format_type(c.opckeytype, NULL) END AS storage, \
  CASE WHEN f.opfname <> c.opcname OR f.opfnamespace <> c.opcnamespace \
    THEN pg_catalog.format('%I.%I', fn.nspname, f.opfname) END AS family \
  FROM pg_catalog.pg_opclass c JOIN pg_catalog.pg_namespace n ON n.oid = c.opcnamespace \
  JOIN pg_catalog.pg_am am ON am.oid = c.opcmethod \
  JOIN pg_catalog.pg_opfamily f ON f.oid = c.opcfamily \
  JOIN pg_catalog.pg_namespace fn ON fn.oid = f.opfnamespace \
  WHERE {user} AND {ext} AND c.oid >= 16384 ORDER BY n.nspname, c.opcname";

/// Every operator and support function of a user class or family, with the
/// class or family it belongs to (`holder`), in strategy/number order.
const MEMBERS: &str = "SELECT d.refclassid AS holder_class, d.refobjid AS holder, \
  'pg_catalog.pg_amop'::pg_catalog.regclass::oid AS classid, ao.oid, 0 AS part, ao.amopstrategy AS num, \
  pg_catalog.format('OPERATOR %s %s', ao.amopstrategy, ao.amopopr::pg_catalog.regoperator) || \
  COALESCE(' FOR ORDER BY ' || (SELECT pg_catalog.format('%I.%I', sn.nspname, sf.opfname) \
     FROM pg_catalog.pg_opfamily sf JOIN pg_catalog.pg_namespace sn ON sn.oid = sf.opfnamespace \
     WHERE sf.oid = ao.amopsortfamily AND ao.amoppurpose = 'o'), '') AS item \
  FROM pg_catalog.pg_amop ao JOIN pg_catalog.pg_depend d \
    ON d.classid = 'pg_catalog.pg_amop'::pg_catalog.regclass AND d.objid = ao.oid \
    AND d.deptype IN ('i', 'a') AND d.refobjid >= 16384 \
    AND d.refclassid IN ('pg_catalog.pg_opclass'::pg_catalog.regclass, 'pg_catalog.pg_opfamily'::pg_catalog.regclass) \
  UNION ALL \
  SELECT d.refclassid, d.refobjid, 'pg_catalog.pg_amproc'::pg_catalog.regclass::oid, ap.oid, 1, ap.amprocnum, \
  pg_catalog.format('FUNCTION %s (%s, %s) %s', ap.amprocnum, \
    pg_catalog.format_type(ap.amproclefttype, NULL), pg_catalog.format_type(ap.amprocrighttype, NULL), \
    ap.amproc::pg_catalog.regprocedure) \
  FROM pg_catalog.pg_amproc ap JOIN pg_catalog.pg_depend d \
    ON d.classid = 'pg_catalog.pg_amproc'::pg_catalog.regclass AND d.objid = ap.oid \
    AND d.deptype IN ('i', 'a') AND d.refobjid >= 16384 \
    AND d.refclassid IN ('pg_catalog.pg_opclass'::pg_catalog.regclass, 'pg_catalog.pg_opfamily'::pg_catalog.regclass) \
  ORDER BY 1, 2, 5, 6, 7";

/// Member items and their addresses, by (holder catalog, holder oid).
type Members = HashMap<(u32, u32), Vec<(String, ObjRef)>>;

async fn members(ctx: &Ctx<'_>) -> Result<Members> {
    let mut out: Members = HashMap::new();
    for row in query(ctx.client, "operator class members", MEMBERS, &[]).await? {
        out.entry((row.val("holder_class")?, row.val("holder")?))
            .or_default()
            .push((row.val("item")?, oref(row.val("classid")?, row.val("oid")?)));
    }
    Ok(out)
}

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let members = members(ctx).await?;
    let none = Vec::new();
    let mut dumped = std::collections::HashSet::new();
    let sql = fill_query(FAMILIES, "f.opfowner", "pg_opfamily", "f.oid");
    for row in query(ctx.client, "operator families", &sql, &[]).await? {
        let schema: String = row.val("nspname")?;
        if !ctx.filter.schema_objects(&schema) {
            continue;
        }
        let oid: u32 = row.val("oid")?;
        let loose = members.get(&(class::OPFAMILY, oid)).unwrap_or(&none);
        if loose.is_empty() && !row.val::<bool>("own_entry")? {
            continue;
        }
        dumped.insert(oid);
        let using = format!(
            "{} USING {}",
            row.val::<String>("qname")?,
            row.val::<String>("am")?
        );
        let mut sql = format!(
            "CREATE OPERATOR FAMILY {using};\nALTER OPERATOR FAMILY {using} OWNER TO {};\n",
            row.val::<String>("qowner")?
        );
        if !loose.is_empty() {
            let items: Vec<&str> = loose.iter().map(|(i, _)| i.as_str()).collect();
            sql.push_str(&format!(
                "ALTER OPERATOR FAMILY {using} ADD\n    {};\n",
                items.join(",\n    ")
            ));
        }
        let mut obj = Obj::in_schema(ObjectKind::OperatorFamily, &row, sql)?.creates(
            class::OPFAMILY,
            oid,
            "OPERATOR FAMILY",
            using,
        );
        for (_, r) in loose {
            obj = obj.owns(*r, None);
        }
        out.push(obj);
    }
    let sql = fill_query(CLASSES, "c.opcowner", "pg_opclass", "c.oid");
    for row in query(ctx.client, "operator classes", &sql, &[]).await? {
        let schema: String = row.val("nspname")?;
        if !ctx.filter.schema_objects(&schema) {
            continue;
        }
        let oid: u32 = row.val("oid")?;
        let using = format!(
            "{} USING {}",
            row.val::<String>("qname")?,
            row.val::<String>("am")?
        );
        let mut items: Vec<String> = Vec::new();
        items.extend(
            row.val::<Option<String>>("storage")?
                .map(|t| format!("STORAGE {t}")),
        );
        items.extend(
            members
                .get(&(class::OPCLASS, oid))
                .unwrap_or(&none)
                .iter()
                .map(|(i, _)| i.clone()),
        );
        if items.is_empty() {
            items.push(format!("STORAGE {}", row.val::<String>("intype")?));
        }
        let sql = format!(
            "CREATE OPERATOR CLASS {}{} FOR TYPE {} USING {}{} AS\n    {};\nALTER OPERATOR CLASS {using} OWNER TO {};\n",
            row.val::<String>("qname")?,
            if row.val::<bool>("opcdefault")? { " DEFAULT" } else { "" },
            row.val::<String>("intype")?,
            row.val::<String>("am")?,
            row.val::<Option<String>>("family")?
                .map(|f| format!(" FAMILY {f}"))
                .unwrap_or_default(),
            items.join(",\n    "),
            row.val::<String>("qowner")?
        );
        let mut obj = Obj::in_schema(ObjectKind::OperatorClass, &row, sql)?.creates(
            class::OPCLASS,
            oid,
            "OPERATOR CLASS",
            using,
        );
        if !dumped.contains(&row.val::<u32>("opcfamily")?) {
            // The family this class created goes with it (and takes it along).
            obj.drop = Some(format!(
                "DROP OPERATOR FAMILY IF EXISTS {} USING {};\n",
                row.val::<String>("qfamily")?,
                row.val::<String>("am")?
            ));
        }
        out.push(obj);
    }
    Ok(())
}
