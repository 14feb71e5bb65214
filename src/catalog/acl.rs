//! Privileges: `GRANT`/`REVOKE` commands derived, as pg_dump does, from the
//! difference between an object's ACL and the ACL it has right after being
//! created (`acldefault()` or `pg_init_privs`), plus column privileges.
//!
//! Items are compared as whole `aclitem` strings: base items missing from the
//! ACL are revoked, ACL items missing from the base are granted. A grant by
//! a grantor other than the owner runs under `SET LOCAL SESSION
//! AUTHORIZATION` (an entry's batch is one implicit transaction, so a failure
//! cannot leave the session switched), after the schemas' ACL entries.

use super::obj::{class, oref, Obj};
use super::sql::{query, quote_ident, RowExt};
use super::toc::{ObjRef, ObjectKind, Section};
use super::Ctx;
use crate::error::Result;
use std::collections::HashMap;

/// Pseudo catalog id for the address of a schema's ACL entry, so entries
/// granting through `SET SESSION AUTHORIZATION` can wait for schema grants.
const SCHEMA_ACL: u32 = 0;

/// One parsed `aclitem`: `grantee=privs/grantor` ("" grantee is PUBLIC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclItem {
    pub grantee: String,
    pub grantor: String,
    /// Privilege letters with their grant-option flag, in `aclitem` order.
    pub privs: Vec<(char, bool)>,
}

/// Reads a role name as `aclitemout` writes it (quoted when not alphanumeric).
fn take_name(s: &str) -> Option<(String, &str)> {
    if let Some(rest) = s.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if chars.peek().map(|(_, c)| *c) == Some('"') {
                    chars.next();
                    name.push('"');
                } else {
                    return Some((name, &rest[i + 1..]));
                }
            } else {
                name.push(c);
            }
        }
        None
    } else {
        let end = s.find(['=', '/']).unwrap_or(s.len());
        Some((s[..end].to_string(), &s[end..]))
    }
}

pub fn parse_item(item: &str) -> Option<AclItem> {
    let (grantee, rest) = take_name(item)?;
    let rest = rest.strip_prefix('=')?;
    let slash = rest.find('/')?;
    let mut privs = Vec::new();
    let mut letters = rest[..slash].chars().peekable();
    while let Some(c) = letters.next() {
        let go = letters.peek() == Some(&'*');
        if go {
            letters.next();
        }
        privs.push((c, go));
    }
    let (grantor, tail) = take_name(&rest[slash + 1..])?;
    tail.is_empty().then_some(AclItem {
        grantee,
        grantor,
        privs,
    })
}

fn priv_name(letter: char) -> Option<&'static str> {
    Some(match letter {
        'a' => "INSERT",
        'r' => "SELECT",
        'w' => "UPDATE",
        'd' => "DELETE",
        'D' => "TRUNCATE",
        'x' => "REFERENCES",
        't' => "TRIGGER",
        'X' => "EXECUTE",
        'U' => "USAGE",
        'C' => "CREATE",
        'c' => "CONNECT",
        'T' => "TEMPORARY",
        's' => "SET",
        'A' => "ALTER SYSTEM",
        'm' => "MAINTAIN",
        _ => return None,
    })
}

fn grantee_sql(grantee: &str) -> String {
    if grantee.is_empty() {
        "PUBLIC".to_string()
    } else {
        quote_ident(grantee)
    }
}

fn priv_list(privs: impl Iterator<Item = char>, column: Option<&str>) -> String {
    privs
        .filter_map(priv_name)
        .map(|p| match column {
            Some(c) => format!("{p}({c})"),
            None => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The ACL entry of a row of a privileges query: `on` (the object as
/// `GRANT ... ON` names it), `col` (a column, or NULL), `schema`, `owner`,
/// `acl` and `acl_base`; none when the ACL is its base.
pub fn changed_acl(row: &tokio_postgres::Row) -> Result<Option<Obj>> {
    let on: String = row.val("on")?;
    let col: Option<String> = row.val("col")?;
    let owner: String = row.val("owner")?;
    let acl: Vec<String> = row.val("acl")?;
    let base: Vec<String> = row.val("acl_base")?;
    let sql = commands(&acl, &base, &owner, &on, col.as_deref(), "");
    if sql.is_empty() {
        return Ok(None);
    }
    let name = match &col {
        Some(c) => format!("{on} ({c})"),
        None => on,
    };
    Ok(Some(
        Obj::new(ObjectKind::Acl, Section::PostData, name, sql)
            .owner(owner)
            .schema(row.val::<String>("schema")?),
    ))
}

/// The commands that turn `base` into `acl` on `on` (e.g. `TABLE public.t`,
/// or `TABLES` after an `ALTER DEFAULT PRIVILEGES ...` prefix).
pub fn commands(
    acl: &[String],
    base: &[String],
    owner: &str,
    on: &str,
    column: Option<&str>,
    prefix: &str,
) -> String {
    let mut sql = String::new();
    for item in base.iter().filter(|i| !acl.contains(i)) {
        let Some(item) = parse_item(item) else {
            continue;
        };
        let privs = priv_list(item.privs.iter().map(|p| p.0), column);
        if !privs.is_empty() {
            let to = grantee_sql(&item.grantee);
            sql.push_str(&format!("{prefix}REVOKE {privs} ON {on} FROM {to};\n"));
        }
    }
    for item in acl.iter().filter(|i| !base.contains(i)) {
        let Some(item) = parse_item(item) else {
            continue;
        };
        let plain = priv_list(item.privs.iter().filter(|p| !p.1).map(|p| p.0), column);
        let with_go = priv_list(item.privs.iter().filter(|p| p.1).map(|p| p.0), column);
        if plain.is_empty() && with_go.is_empty() {
            continue;
        }
        let as_grantor = item.grantor != owner;
        if as_grantor {
            sql.push_str(&format!(
                "SET LOCAL SESSION AUTHORIZATION {};\n",
                quote_ident(&item.grantor)
            ));
        }
        let to = grantee_sql(&item.grantee);
        if !plain.is_empty() {
            sql.push_str(&format!("{prefix}GRANT {plain} ON {on} TO {to};\n"));
        }
        if !with_go.is_empty() {
            sql.push_str(&format!(
                "{prefix}GRANT {with_go} ON {on} TO {to} WITH GRANT OPTION;\n"
            ));
        }
        if as_grantor {
            sql.push_str("RESET SESSION AUTHORIZATION;\n");
        }
    }
    sql
}

/// Builds the ACL of every object that has one: a post-data `ACL` entry, or
/// extra SQL in the object itself when it keeps its extras inline.
pub async fn read(ctx: &Ctx<'_>, objs: &mut Vec<Obj>) -> Result<()> {
    let rows = query(
        ctx.client,
        "column privileges",
        "SELECT a.attrelid, pg_catalog.quote_ident(a.attname) AS qcol, a.attacl::text[] AS acl \
         FROM pg_catalog.pg_attribute a \
         WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped \
         AND a.attrelid = ANY($1) ORDER BY a.attrelid, a.attnum",
        &[&ctx.rel_oids],
    )
    .await?;
    let mut columns: HashMap<u32, Vec<(String, Vec<String>)>> = HashMap::new();
    for row in &rows {
        columns
            .entry(row.val("attrelid")?)
            .or_default()
            .push((row.val("qcol")?, row.val("acl")?));
    }
    let mut extra = Vec::new();
    for obj in objs.iter_mut() {
        let Some(spec) = &obj.acl else { continue };
        let on = format!("{} {}", spec.target.keyword, spec.target.name);
        let mut sql = commands(&spec.acl, &spec.base, &spec.owner, &on, None, "");
        let rel = obj.owns.first().filter(|r| r.classid == class::CLASS);
        for (col, acl) in rel
            .and_then(|r| columns.get(&r.objid))
            .into_iter()
            .flatten()
        {
            sql.push_str(&commands(acl, &[], &spec.owner, &on, Some(col), ""));
        }
        if sql.is_empty() {
            continue;
        }
        if obj.inline_extras {
            obj.sql.push_str(&sql);
            continue;
        }
        let mut acl = Obj::new(ObjectKind::Acl, Section::PostData, on, sql);
        acl.schema = obj.schema.clone();
        acl.owner = obj.owner.clone();
        acl.after = obj.owns.first().copied().into_iter().collect();
        if obj.kind == ObjectKind::Schema {
            if let Some(ns) = obj.owns.first() {
                acl.owns.push(oref(SCHEMA_ACL, ns.objid));
            }
        }
        extra.push(acl);
    }
    // Granting as another role needs that role's privileges on the schema.
    let schema_acls: Vec<ObjRef> = extra.iter().flat_map(|a| a.owns.iter().copied()).collect();
    for acl in extra
        .iter_mut()
        .filter(|a| a.sql.contains("SESSION AUTHORIZATION"))
    {
        acl.after.extend(schema_acls.iter().copied());
    }
    objs.extend(extra);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_items() {
        let item = parse_item("\"a \"\"b\"=r*w/Owner").unwrap();
        assert_eq!(item.grantee, "a \"b");
        assert_eq!(item.grantor, "Owner");
        assert_eq!(item.privs, vec![('r', true), ('w', false)]);
        assert_eq!(parse_item("=U/postgres").unwrap().grantee, "");
        assert!(parse_item("garbage").is_none());
    }

    #[test]
    fn diffs_acl_against_base() {
        let sql = commands(
            &v(&["postgres=UC/postgres", "=UC/postgres"]),
            &v(&["postgres=UC/postgres", "=U/postgres"]),
            "postgres",
            "SCHEMA public",
            None,
            "",
        );
        assert_eq!(
            sql,
            "REVOKE USAGE ON SCHEMA public FROM PUBLIC;\nGRANT USAGE,CREATE ON SCHEMA public TO PUBLIC;\n"
        );
    }

    #[test]
    fn grant_option_column_and_grantor() {
        let sql = commands(
            &v(&["bob=r*w/alice"]),
            &[],
            "owner",
            "TABLE s.t",
            Some("c"),
            "",
        );
        assert_eq!(
            sql,
            "SET LOCAL SESSION AUTHORIZATION alice;\nGRANT UPDATE(c) ON TABLE s.t TO bob;\n\
             GRANT SELECT(c) ON TABLE s.t TO bob WITH GRANT OPTION;\nRESET SESSION AUTHORIZATION;\n"
        );
        assert_eq!(
            commands(&v(&["a=r/o"]), &v(&["a=r/o"]), "o", "TABLE t", None, ""),
            ""
        );
    }
}
