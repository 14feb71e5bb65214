//! Sequences: definitions (`CREATE SEQUENCE` with every option), `OWNED BY`
//! links, identity-column options for `tables.rs`, and the current values as
//! data-section `SequenceSet` entries read inside the backup snapshot.

use super::obj::{class, oref, Obj};
use super::sql::{acl_columns, owner_columns, query, quote_literal, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;
use std::collections::HashMap;

const SEQUENCES: &str = "SELECT c.oid, n.nspname, c.relname, \
  pg_catalog.format('%I.%I', n.nspname, c.relname) AS qname, {owner}, {acl}, \
  pg_catalog.format_type(s.seqtypid, NULL) AS seqtype, s.seqstart, s.seqincrement, s.seqmax, \
  s.seqmin, s.seqcache, s.seqcycle, c.relpersistence = 'u' AS unlogged, \
  d.refobjid AS owned_table, d.refobjsubid AS owned_attnum, d.deptype = 'i' AS identity, \
  (SELECT pg_catalog.quote_ident(a.attname) FROM pg_catalog.pg_attribute a \
     WHERE a.attrelid = d.refobjid AND a.attnum = d.refobjsubid) AS owned_col, \
  (SELECT pg_catalog.format('%I.%I', tn.nspname, tc.relname) FROM pg_catalog.pg_class tc \
     JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace WHERE tc.oid = d.refobjid) AS owned_qtable, \
  (SELECT tc.relpersistence::text FROM pg_catalog.pg_class tc WHERE tc.oid = d.refobjid) AS owned_persistence, \
  c.relpersistence::text AS persistence \
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
  JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid \
  LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
    AND d.objid = c.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass \
    AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i') \
  WHERE c.oid = ANY($1) ORDER BY n.nspname, c.relname";

/// The table column a sequence belongs to.
pub struct OwnedBy {
    pub table: u32,
    pub attnum: i16,
    pub qtable: String,
    pub qcolumn: String,
    /// An identity column's sequence (created with the table), rather than
    /// `ALTER SEQUENCE ... OWNED BY`.
    pub identity: bool,
    /// `LOGGED` or `UNLOGGED` when an identity sequence's persistence is not
    /// its table's (15+; pg_dump writes it the same way).
    pub persistence: Option<&'static str>,
}

/// One sequence in the backup.
pub struct Sequence {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    pub qname: String,
    obj: Obj,
    /// `START WITH ... CACHE ...` (without `AS type`).
    pub options: String,
    pub owned: Option<OwnedBy>,
}

/// Reads the sequences among the selected relations.
pub async fn load(ctx: &Ctx<'_>) -> Result<Vec<Sequence>> {
    let sql = SEQUENCES
        .replace("{owner}", &owner_columns("c.relowner"))
        .replace(
            "{acl}",
            &acl_columns("c.relacl", 's', "c.relowner", "pg_class", "c.oid"),
        );
    let mut seqs = Vec::new();
    for row in query(ctx.client, "sequences", &sql, &[&ctx.rel_oids]).await? {
        let oid: u32 = row.val("oid")?;
        let schema: String = row.val("nspname")?;
        let name: String = row.val("relname")?;
        let qname: String = row.val("qname")?;
        let (start, inc, max, min, cache): (i64, i64, i64, i64, i64) = (
            row.val("seqstart")?,
            row.val("seqincrement")?,
            row.val("seqmax")?,
            row.val("seqmin")?,
            row.val("seqcache")?,
        );
        let cycle = if row.val::<bool>("seqcycle")? {
            "\n    CYCLE"
        } else {
            ""
        };
        let options = format!(
            "START WITH {start}\n    INCREMENT BY {inc}\n    MINVALUE {min}\n    MAXVALUE {max}\n    CACHE {cache}{cycle}"
        );
        let owned = match row.val::<Option<u32>>("owned_table")? {
            Some(table) => Some(OwnedBy {
                table,
                attnum: i16::try_from(row.val::<i32>("owned_attnum")?).unwrap_or(0),
                qtable: row
                    .val::<Option<String>>("owned_qtable")?
                    .unwrap_or_default(),
                qcolumn: row.val::<Option<String>>("owned_col")?.unwrap_or_default(),
                identity: row.val("identity")?,
                persistence: match (
                    row.val::<String>("persistence")?.as_str(),
                    row.val::<Option<String>>("owned_persistence")?.as_deref(),
                ) {
                    ("u", Some("p")) if ctx.version >= 150000 => Some("UNLOGGED"),
                    ("p", Some("u")) if ctx.version >= 150000 => Some("LOGGED"),
                    _ => None,
                },
            }),
            None => None,
        };
        let unlogged = if row.val::<bool>("unlogged")? {
            "UNLOGGED "
        } else {
            ""
        };
        let qowner: String = row.val("qowner")?;
        let sql = format!(
            "CREATE {unlogged}SEQUENCE {qname}\n    AS {}\n    {options};\nALTER SEQUENCE {qname} OWNER TO {qowner};\n",
            row.val::<String>("seqtype")?
        );
        let owner: String = row.val("owner")?;
        let obj = Obj::new(ObjectKind::Sequence, Section::PreData, name.clone(), sql)
            .schema(schema.clone())
            .owner(owner.clone())
            .creates(class::CLASS, oid, "SEQUENCE", qname.clone())
            .grants(&row, "SEQUENCE", qname.clone())?;
        seqs.push(Sequence {
            oid,
            schema,
            name,
            qname,
            obj,
            options,
            owned,
        });
    }
    Ok(seqs)
}

/// Identity options per (table oid, column number), for `tables.rs`.
pub fn identities(seqs: &[Sequence]) -> HashMap<(u32, i16), String> {
    seqs.iter()
        .filter_map(|s| {
            let o = s.owned.as_ref().filter(|o| o.identity)?;
            let persistence = o
                .persistence
                .map(|p| format!("\n    {p}"))
                .unwrap_or_default();
            let opts = format!("SEQUENCE NAME {}{persistence}\n    {}", s.qname, s.options);
            Some(((o.table, o.attnum), opts))
        })
        .collect()
}

/// Sequence definitions and `OWNED BY` links (pre-data).
pub fn definitions(ctx: &Ctx<'_>, seqs: &[Sequence], out: &mut Vec<Obj>) {
    for s in seqs {
        match &s.owned {
            Some(o) if o.identity => {
                // Created by its table; kept (without SQL) so its comment,
                // ACL and value have an entry to refer to.
                let mut obj = s.obj.clone();
                obj.sql.clear();
                out.push(obj);
                continue;
            }
            Some(o) if ctx.rels.contains(&o.table) => {
                let sql = format!(
                    "ALTER SEQUENCE {} OWNED BY {}.{};\n",
                    s.qname, o.qtable, o.qcolumn
                );
                let mut link = Obj::new(
                    ObjectKind::SequenceOwnedBy,
                    Section::PreData,
                    s.name.clone(),
                    sql,
                )
                .schema(s.schema.clone())
                .after(oref(class::CLASS, s.oid))
                .after(oref(class::CLASS, o.table));
                link.owner = s.obj.owner.clone();
                out.push(link);
            }
            _ => {}
        }
        out.push(s.obj.clone());
    }
}

/// Current values as `setval` calls (data section), read with one
/// `UNION ALL` query per batch of sequences.
pub async fn values(ctx: &Ctx<'_>, seqs: &[Sequence], out: &mut Vec<Obj>) -> Result<()> {
    let refs: Vec<SeqRef<'_>> = seqs
        .iter()
        .map(|s| SeqRef {
            oid: s.oid,
            schema: &s.schema,
            name: &s.name,
            qname: &s.qname,
            owner: s.obj.owner.as_deref(),
        })
        .collect();
    set_values(ctx, &refs, out).await
}

/// A sequence whose value the backup keeps.
pub struct SeqRef<'a> {
    pub oid: u32,
    pub schema: &'a str,
    pub name: &'a str,
    /// `schema.name` quoted by the server.
    pub qname: &'a str,
    pub owner: Option<&'a str>,
}

/// `SequenceSet` entries (`setval`) with the values read in the snapshot,
/// each after its sequence.
pub async fn set_values(ctx: &Ctx<'_>, seqs: &[SeqRef<'_>], out: &mut Vec<Obj>) -> Result<()> {
    for batch in seqs.chunks(200) {
        let sql = batch
            .iter()
            .map(|s| {
                format!(
                    "SELECT {}::oid AS oid, last_value, is_called FROM {}",
                    s.oid, s.qname
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let mut values = HashMap::new();
        for row in query(ctx.client, "sequence values", &sql, &[]).await? {
            let v: (i64, bool) = (row.val("last_value")?, row.val("is_called")?);
            values.insert(row.val::<u32>("oid")?, v);
        }
        for s in batch {
            let Some((last, called)) = values.get(&s.oid) else {
                continue;
            };
            let sql = format!(
                "SELECT pg_catalog.setval({}, {last}, {called});\n",
                quote_literal(s.qname)
            );
            let mut set = Obj::new(ObjectKind::SequenceSet, Section::Data, s.name, sql)
                .schema(s.schema)
                .after(oref(class::CLASS, s.oid));
            set.owner = s.owner.map(str::to_string);
            out.push(set);
        }
    }
    Ok(())
}
