//! Comments (`pg_description`) and security labels (`pg_seclabel`) on every
//! object and sub-object the TOC creates, including columns: a `COMMENT` or
//! `SECURITY LABEL` entry in the object's section, or extra SQL in the
//! object itself when it keeps its extras inline (large objects). Labels of
//! shared objects (roles, the database) are in `globals.rs`.

use super::obj::{class, oref, Obj, Target};
use super::sql::{query, quote_literal, RowExt};
use super::toc::{ObjRef, ObjectKind};
use super::Ctx;
use crate::error::Result;
use std::collections::HashMap;

/// Text attached to objects: what it is read from and how it is restored.
#[derive(Clone, Copy)]
enum Note {
    Comment,
    SecurityLabel,
}

impl Note {
    /// (catalog, text column, quoted provider column)
    fn source(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Note::Comment => ("pg_description", "description", "''"),
            Note::SecurityLabel => ("pg_seclabel", "label", "pg_catalog.quote_ident(d.provider)"),
        }
    }

    fn kind(self) -> ObjectKind {
        match self {
            Note::Comment => ObjectKind::Comment,
            Note::SecurityLabel => ObjectKind::SecurityLabel,
        }
    }

    fn statement(self, target: &Target, provider: &str, text: &str) -> String {
        match self {
            Note::Comment => format!(
                "COMMENT ON {} {} IS {};\n",
                target.keyword,
                target.name,
                quote_literal(text)
            ),
            Note::SecurityLabel => format!(
                "SECURITY LABEL FOR {} ON {} {} IS {};\n",
                provider,
                target.keyword,
                target.name,
                quote_literal(text)
            ),
        }
    }
}

/// Comments on the objects in `objs`.
pub async fn read(ctx: &Ctx<'_>, objs: &mut Vec<Obj>) -> Result<()> {
    attach(ctx, objs, Note::Comment).await
}

/// Security labels on the objects in `objs`.
pub async fn read_labels(ctx: &Ctx<'_>, objs: &mut Vec<Obj>) -> Result<()> {
    attach(ctx, objs, Note::SecurityLabel).await
}

async fn attach(ctx: &Ctx<'_>, objs: &mut Vec<Obj>, note: Note) -> Result<()> {
    let (table, text_col, provider_col) = note.source();
    let sql = format!(
        "SELECT d.classoid, d.objoid, d.objsubid, d.{text_col} AS text, {provider_col} AS provider, \
         pg_catalog.quote_ident(a.attname) AS qcol \
         FROM pg_catalog.{table} d \
         LEFT JOIN pg_catalog.pg_attribute a ON d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass \
           AND a.attrelid = d.objoid AND a.attnum = d.objsubid \
         WHERE d.objoid >= 16384 OR d.classoid = 'pg_catalog.pg_namespace'::pg_catalog.regclass \
           OR d.classoid = 'pg_catalog.pg_largeobject'::pg_catalog.regclass \
         ORDER BY d.classoid, d.objoid, d.objsubid, 5"
    );
    let rows = query(ctx.client, note.kind().label(), &sql, &[]).await?;
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
        let text: String = row.val("text")?;
        let provider: String = row.val("provider")?;
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
        if matches!(note, Note::Comment)
            && target.keyword == "SCHEMA"
            && target.name == "public"
            && text == "standard public schema"
        {
            continue;
        }
        let sql = note.statement(&target, &provider, &text);
        let parent = &mut objs[*i];
        if parent.inline_extras {
            parent.sql.push_str(&sql);
            continue;
        }
        let mut c = Obj::new(
            note.kind(),
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
