//! Comments (`pg_description`) on every object and sub-object the TOC
//! creates, including columns: a `COMMENT` entry in the object's section, or
//! extra SQL in the object itself when it keeps its extras inline.

use super::obj::{class, oref, Obj, Target};
use super::sql::{query, quote_literal, RowExt};
use super::toc::{ObjRef, ObjectKind};
use super::Ctx;
use crate::error::Result;
use std::collections::HashMap;

pub async fn read(ctx: &Ctx<'_>, objs: &mut Vec<Obj>) -> Result<()> {
    let rows = query(
        ctx.client,
        "comments",
        "SELECT d.classoid, d.objoid, d.objsubid, d.description, \
         pg_catalog.quote_ident(a.attname) AS qcol \
         FROM pg_catalog.pg_description d \
         LEFT JOIN pg_catalog.pg_attribute a ON d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass \
           AND a.attrelid = d.objoid AND a.attnum = d.objsubid \
         WHERE d.objoid >= 16384 OR d.classoid = 'pg_catalog.pg_namespace'::pg_catalog.regclass \
           OR d.classoid = 'pg_catalog.pg_largeobject'::pg_catalog.regclass \
         ORDER BY d.classoid, d.objoid, d.objsubid",
        &[],
    )
    .await?;
    let mut targets: HashMap<ObjRef, (usize, Target)> = HashMap::new();
    for (i, obj) in objs.iter().enumerate() {
        for (r, t) in &obj.targets {
            targets.entry(*r).or_insert((i, t.clone()));
        }
    }
    let mut extra = Vec::new();
    for row in &rows {
        let r = oref(row.val("classoid")?, row.val("objoid")?);
        let subid: i32 = row.val("objsubid")?;
        let Some((i, target)) = targets.get(&r) else {
            continue;
        };
        let text: String = row.val("description")?;
        let target = if subid == 0 {
            target.clone()
        } else {
            let qcol: Option<String> = row.val("qcol")?;
            match qcol {
                Some(col) if r.classid == class::CLASS => Target {
                    keyword: "COLUMN",
                    name: format!("{}.{col}", target.name),
                },
                _ => continue,
            }
        };
        if target.keyword == "SCHEMA" && target.name == "public" && text == "standard public schema"
        {
            continue;
        }
        let sql = format!(
            "COMMENT ON {} {} IS {};\n",
            target.keyword,
            target.name,
            quote_literal(&text)
        );
        let parent = &mut objs[*i];
        if parent.inline_extras {
            parent.sql.push_str(&sql);
            continue;
        }
        let mut c = Obj::new(
            ObjectKind::Comment,
            parent.section,
            format!("{} {}", target.keyword, target.name),
            sql,
        );
        c.schema = parent.schema.clone();
        c.owner = parent.owner.clone();
        c.after.push(r);
        extra.push(c);
    }
    objs.extend(extra);
    Ok(())
}
