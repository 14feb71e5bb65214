//! Large objects: one pre-data entry per object (`lo_create`, owner, ACL and
//! comment in its own SQL), and one data entry for all their contents, which
//! the backup dumps in bounded chunks (`pg::copy::large_objects_out`).

use super::obj::{class, oref, Obj};
use super::sql::{acl_columns, owner_columns, query, RowExt};
use super::toc::{ObjectKind, Section, TableData};
use super::Ctx;
use crate::error::Result;

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    if !ctx.filter.whole_database() {
        return Ok(());
    }
    let sql = format!(
        "SELECT l.oid, {owner}, {acl} FROM pg_catalog.pg_largeobject_metadata l ORDER BY l.oid",
        owner = owner_columns("l.lomowner"),
        acl = acl_columns("l.lomacl", 'L', "l.lomowner", "pg_largeobject", "l.oid"),
    );
    let rows = query(ctx.client, "large objects", &sql, &[]).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut data = Obj::new(
        ObjectKind::LargeObjectData,
        Section::Data,
        "large objects",
        String::new(),
    );
    for row in rows {
        let oid: u32 = row.val("oid")?;
        let owner: String = row.val("owner")?;
        let sql = format!(
            "SELECT pg_catalog.lo_create('{oid}');\nALTER LARGE OBJECT {oid} OWNER TO {};\n",
            row.val::<String>("qowner")?
        );
        let mut lo = Obj::new(
            ObjectKind::LargeObject,
            Section::PreData,
            oid.to_string(),
            sql,
        )
        .owner(owner.clone())
        .creates(class::LARGEOBJECT, oid, "LARGE OBJECT", oid.to_string())
        .grants(&row, "LARGE OBJECT", oid.to_string())?;
        lo.inline_extras = true;
        out.push(lo);
        data.after.push(oref(class::LARGEOBJECT, oid));
    }
    let size = query(
        ctx.client,
        "large object size",
        "SELECT pg_catalog.pg_relation_size('pg_catalog.pg_largeobject') AS bytes, \
         pg_catalog.current_setting('block_size')::int8 AS block_size",
        &[],
    )
    .await?;
    let (bytes, block) = match size.first() {
        Some(r) => (r.val::<i64>("bytes")?, r.val::<i64>("block_size")?),
        None => (0, 8192),
    };
    let bytes = u64::try_from(bytes).unwrap_or(0);
    let block = u64::try_from(block).unwrap_or(8192).max(1);
    out.push(
        data.data(TableData {
            schema: "pg_catalog".into(),
            name: "pg_largeobject".into(),
            columns: crate::pg::copy::LARGE_OBJECT_COLUMNS
                .map(String::from)
                .to_vec(),
            est_bytes: bytes,
            pages: bytes / block,
            splittable: false,
            condition: None,
        }),
    );
    Ok(())
}
