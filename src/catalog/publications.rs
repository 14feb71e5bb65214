//! Logical-replication publications (post-data) and their members: tables
//! of the backup (with column lists and row filters on 15+) and schemas.
//! Dumped only for whole-database backups.

use super::obj::{class, oref, Obj};
use super::sql::{owner_columns, query, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    if !ctx.filter.whole_database() {
        return Ok(());
    }
    let sql = format!(
        "SELECT p.oid, p.pubname::text AS pubname, pg_catalog.quote_ident(p.pubname) AS qname, {owner}, \
         p.puballtables, p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate, \
         COALESCE((pg_catalog.to_jsonb(p)->>'pubviaroot')::bool, false) AS viaroot \
         FROM pg_catalog.pg_publication p ORDER BY p.pubname",
        owner = owner_columns("p.pubowner"),
    );
    for row in query(ctx.client, "publications", &sql, &[]).await? {
        let qname: String = row.val("qname")?;
        let actions: Vec<&str> = [
            ("pubinsert", "insert"),
            ("pubupdate", "update"),
            ("pubdelete", "delete"),
            ("pubtruncate", "truncate"),
        ]
        .into_iter()
        .filter_map(|(col, name)| row.val::<bool>(col).ok().filter(|b| *b).map(|_| name))
        .collect();
        let all = if row.val::<bool>("puballtables")? {
            " FOR ALL TABLES"
        } else {
            ""
        };
        let sql = format!(
            "CREATE PUBLICATION {qname}{all} WITH (publish = '{}', publish_via_partition_root = {});\n\
             ALTER PUBLICATION {qname} OWNER TO {};\n",
            actions.join(", "),
            row.val::<bool>("viaroot")?,
            row.val::<String>("qowner")?
        );
        out.push(
            Obj::new(
                ObjectKind::Publication,
                Section::PostData,
                row.val::<String>("pubname")?,
                sql,
            )
            .owner(row.val::<String>("owner")?)
            .creates(class::PUBLICATION, row.val("oid")?, "PUBLICATION", qname),
        );
    }
    // Column lists, row filters and schema members exist from PostgreSQL 15.
    let (columns, filter) = if ctx.version >= 150000 {
        (
            "(SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) \
               FROM pg_catalog.pg_attribute a WHERE a.attrelid = pr.prrelid AND a.attnum = ANY(pr.prattrs))",
            "pg_catalog.pg_get_expr(pr.prqual, pr.prrelid)",
        )
    } else {
        ("NULL::text", "NULL::text")
    };
    let sql = format!(
        "SELECT pr.prpubid, pr.prrelid, pg_catalog.quote_ident(p.pubname) AS qpub, n.nspname, \
         c.relname::text AS relname, pg_catalog.format('%I.%I', n.nspname, c.relname) AS qtable, \
         {columns} AS columns, {filter} AS rowfilter \
         FROM pg_catalog.pg_publication_rel pr JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid \
         JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE pr.prrelid = ANY($1) ORDER BY p.pubname, n.nspname, c.relname"
    );
    for row in query(ctx.client, "publication tables", &sql, &[&ctx.rel_oids]).await? {
        let qpub: String = row.val("qpub")?;
        let mut sql = format!(
            "ALTER PUBLICATION {qpub} ADD TABLE ONLY {}",
            row.val::<String>("qtable")?
        );
        if let Some(cols) = row.val::<Option<String>>("columns")? {
            sql.push_str(&format!(" ({cols})"));
        }
        if let Some(f) = row.val::<Option<String>>("rowfilter")? {
            sql.push_str(&format!(" WHERE ({f})"));
        }
        sql.push_str(";\n");
        out.push(
            Obj::new(
                ObjectKind::PublicationMember,
                Section::PostData,
                format!("{qpub} {}", row.val::<String>("relname")?),
                sql,
            )
            .schema(row.val::<String>("nspname")?)
            .after(oref(class::PUBLICATION, row.val("prpubid")?))
            .after(oref(class::CLASS, row.val("prrelid")?)),
        );
    }
    if ctx.version >= 150000 {
        let rows = query(
            ctx.client,
            "publication schemas",
            "SELECT pn.pnpubid, pn.pnnspid, pg_catalog.quote_ident(p.pubname) AS qpub, n.nspname, \
             pg_catalog.quote_ident(n.nspname) AS qschema \
             FROM pg_catalog.pg_publication_namespace pn JOIN pg_catalog.pg_publication p ON p.oid = pn.pnpubid \
             JOIN pg_catalog.pg_namespace n ON n.oid = pn.pnnspid ORDER BY p.pubname, n.nspname",
            &[],
        )
        .await?;
        for row in rows {
            let qpub: String = row.val("qpub")?;
            let qschema: String = row.val("qschema")?;
            let sql = format!("ALTER PUBLICATION {qpub} ADD TABLES IN SCHEMA {qschema};\n");
            out.push(
                Obj::new(
                    ObjectKind::PublicationMember,
                    Section::PostData,
                    format!("{qpub} {qschema}"),
                    sql,
                )
                .schema(row.val::<String>("nspname")?)
                .after(oref(class::PUBLICATION, row.val("pnpubid")?))
                .after(oref(class::NAMESPACE, row.val("pnnspid")?)),
            );
        }
    }
    Ok(())
}
