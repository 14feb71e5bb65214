//! Functions, procedures and aggregates. Functions and procedures come from
//! `pg_get_functiondef`; aggregates are rebuilt from `pg_aggregate`.
//! Functions internal to another object (range constructors) are left out.

use super::obj::{class, Obj};
use super::sql::{fill_query_acl, query, quote_literal, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;
use serde_json::Value;

const FUNCTIONS: &str = "SELECT p.oid, n.nspname, p.proname, p.prokind::text AS prokind, \
  p.proparallel::text AS parallel, pg_catalog.format('%I.%I', n.nspname, p.proname) AS qname, \
  pg_catalog.pg_get_function_identity_arguments(p.oid) AS identargs, \
  pg_catalog.pg_get_function_arguments(p.oid) AS args, \
  CASE WHEN p.prokind <> 'a' THEN pg_catalog.pg_get_functiondef(p.oid) END AS def, \
  {owner}, {acl}, pg_catalog.to_jsonb(a) AS agg, \
  pg_catalog.format_type(a.aggtranstype, NULL) AS stype, \
  CASE WHEN a.aggmtranstype <> 0 THEN pg_catalog.format_type(a.aggmtranstype, NULL) END AS mstype, \
  (SELECT pg_catalog.format('OPERATOR(%I.%s)', opn.nspname, o.oprname) FROM pg_catalog.pg_operator o \
     JOIN pg_catalog.pg_namespace opn ON opn.oid = o.oprnamespace WHERE o.oid = a.aggsortop) AS sortop \
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
  LEFT JOIN pg_catalog.pg_aggregate a ON a.aggfnoid = p.oid \
  WHERE {user} AND {ext} AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend i \
    WHERE i.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND i.objid = p.oid AND i.deptype = 'i') \
  ORDER BY n.nspname, p.proname, p.oid";

/// `CREATE AGGREGATE` options from the `pg_aggregate` row as JSON (regproc
/// columns arrive as qualified names, or "-" when unset).
fn aggregate_options(
    agg: &Value,
    stype: &str,
    mstype: Option<&str>,
    sortop: Option<&str>,
    parallel: &str,
) -> Vec<String> {
    let text = |k: &str| agg.get(k).and_then(Value::as_str).filter(|s| *s != "-");
    let num = |k: &str| agg.get(k).and_then(Value::as_i64).unwrap_or(0);
    let flag = |k: &str| agg.get(k).and_then(Value::as_bool).unwrap_or(false);
    let ordered = text("aggkind").is_some_and(|k| k != "n");
    let modify = |k: &str| {
        let default = if ordered { "w" } else { "r" };
        match text(k) {
            Some(m) if m != default => match m {
                "r" => Some("READ_ONLY"),
                "s" => Some("SHAREABLE"),
                "w" => Some("READ_WRITE"),
                _ => None,
            },
            _ => None,
        }
    };
    let mut o = Vec::new();
    o.extend(text("aggtransfn").map(|f| format!("SFUNC = {f}")));
    o.push(format!("STYPE = {stype}"));
    if num("aggtransspace") != 0 {
        o.push(format!("SSPACE = {}", num("aggtransspace")));
    }
    o.extend(text("aggfinalfn").map(|f| format!("FINALFUNC = {f}")));
    if flag("aggfinalextra") {
        o.push("FINALFUNC_EXTRA".into());
    }
    o.extend(modify("aggfinalmodify").map(|m| format!("FINALFUNC_MODIFY = {m}")));
    o.extend(text("aggcombinefn").map(|f| format!("COMBINEFUNC = {f}")));
    o.extend(text("aggserialfn").map(|f| format!("SERIALFUNC = {f}")));
    o.extend(text("aggdeserialfn").map(|f| format!("DESERIALFUNC = {f}")));
    o.extend(text("agginitval").map(|v| format!("INITCOND = {}", quote_literal(v))));
    if let Some(msfunc) = text("aggmtransfn") {
        o.push(format!("MSFUNC = {msfunc}"));
        o.extend(text("aggminvtransfn").map(|f| format!("MINVFUNC = {f}")));
        o.extend(mstype.map(|t| format!("MSTYPE = {t}")));
        if num("aggmtransspace") != 0 {
            o.push(format!("MSSPACE = {}", num("aggmtransspace")));
        }
        o.extend(text("aggmfinalfn").map(|f| format!("MFINALFUNC = {f}")));
        if flag("aggmfinalextra") {
            o.push("MFINALFUNC_EXTRA".into());
        }
        o.extend(modify("aggmfinalmodify").map(|m| format!("MFINALFUNC_MODIFY = {m}")));
        o.extend(text("aggminitval").map(|v| format!("MINITCOND = {}", quote_literal(v))));
    }
    o.extend(sortop.map(|s| format!("SORTOP = {s}")));
    match parallel {
        "s" => o.push("PARALLEL = safe".into()),
        "r" => o.push("PARALLEL = restricted".into()),
        _ => {}
    }
    if text("aggkind") == Some("h") {
        o.push("HYPOTHETICAL".into());
    }
    o
}

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let sql = fill_query_acl(FUNCTIONS, "p.proowner", "p.proacl", 'f', "pg_proc", "p.oid");
    for row in query(ctx.client, "functions", &sql, &[]).await? {
        let schema: String = row.val("nspname")?;
        if !ctx.filter.schema_objects(&schema) {
            continue;
        }
        let qname: String = row.val("qname")?;
        let identargs: String = row.val("identargs")?;
        let prokind: String = row.val("prokind")?;
        let (kind, keyword, grant_keyword) = match prokind.as_str() {
            "p" => (ObjectKind::Procedure, "PROCEDURE", "PROCEDURE"),
            "a" => (ObjectKind::Aggregate, "AGGREGATE", "FUNCTION"),
            _ => (ObjectKind::Function, "FUNCTION", "FUNCTION"),
        };
        let signature = if kind == ObjectKind::Aggregate && identargs.is_empty() {
            format!("{qname}(*)")
        } else {
            format!("{qname}({identargs})")
        };
        let mut sql = if kind == ObjectKind::Aggregate {
            let agg: Value = row.val("agg")?;
            let stype: String = row.val("stype")?;
            let mstype: Option<String> = row.val("mstype")?;
            let sortop: Option<String> = row.val("sortop")?;
            let parallel: String = row.val("parallel")?;
            let opts = aggregate_options(
                &agg,
                &stype,
                mstype.as_deref(),
                sortop.as_deref(),
                &parallel,
            );
            let args: String = row.val("args")?;
            let args = if args.is_empty() {
                "*".to_string()
            } else {
                args
            };
            format!(
                "CREATE AGGREGATE {qname}({args}) (\n    {}\n);\n",
                opts.join(",\n    ")
            )
        } else {
            let def: String = row.val("def")?;
            format!("{};\n", def.trim_end())
        };
        let qowner: String = row.val("qowner")?;
        sql.push_str(&format!("ALTER {keyword} {signature} OWNER TO {qowner};\n"));
        let owner: String = row.val("owner")?;
        let name = format!("{}({identargs})", row.val::<String>("proname")?);
        out.push(
            Obj::new(kind, Section::PreData, name, sql)
                .schema(schema)
                .owner(owner.clone())
                .creates(class::PROC, row.val("oid")?, keyword, signature.clone())
                .grants(&row, grant_keyword, signature)?,
        );
    }
    Ok(())
}
