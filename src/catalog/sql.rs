//! SQL text helpers shared by the per-kind readers: identifier and literal
//! quoting, reusable catalog-query fragments, and row decoding with context.
//!
//! Most names are quoted server-side (`quote_ident`, `format('%I.%I')`) in
//! the catalog queries; [`quote_ident`] is for names pgkeep parses itself
//! (role names inside ACL items).

use crate::error::{Error, Result};
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{Client, Row};

pub(crate) use crate::pg::quote::{quote_ident, quote_literal};

/// A `WITH (...)` clause from `reloptions` items (`name=value`), or "".
pub fn with_options(options: &[String]) -> String {
    if options.is_empty() {
        return String::new();
    }
    let items: Vec<String> = options
        .iter()
        .map(|o| match o.split_once('=') {
            Some((k, v))
                if v.is_empty()
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') =>
            {
                format!("{k}={}", quote_literal(v))
            }
            _ => o.clone(),
        })
        .collect();
    format!(" WITH ({})", items.join(", "))
}

/// SQL expression: a `name 'value', ...` list from an FDW options array
/// (NULL when empty), for `OPTIONS (...)`.
pub fn fdw_options(options_expr: &str) -> String {
    format!(
        "(SELECT pg_catalog.string_agg(pg_catalog.quote_ident(o.option_name) || ' ' || \
         pg_catalog.quote_literal(o.option_value), ', ') FROM pg_catalog.pg_options_to_table({options_expr}) o)"
    )
}

/// The `ALTER ... {state}` keyword for a trigger's, rule's or event
/// trigger's enabled flag ('O', the default, needs none).
pub fn enabled_state(flag: &str) -> Option<&'static str> {
    match flag {
        "D" => Some("DISABLE"),
        "R" => Some("ENABLE REPLICA"),
        "A" => Some("ENABLE ALWAYS"),
        _ => None,
    }
}

/// SQL condition: namespace alias `n` is a user schema (not a system,
/// TOAST or temporary schema).
pub fn user_schema(n: &str) -> String {
    format!(
        "{n}.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND {n}.nspname NOT LIKE 'pg\\_toast%' AND {n}.nspname NOT LIKE 'pg\\_temp\\_%'"
    )
}

/// SQL condition: the object `oid_expr` of catalog `catalog` is not a member
/// of an extension (those are recreated by `CREATE EXTENSION`).
pub fn not_extension_member(catalog: &str, oid_expr: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend xd \
         WHERE xd.classid = 'pg_catalog.{catalog}'::pg_catalog.regclass \
         AND xd.objid = {oid_expr} AND xd.deptype = 'e')"
    )
}

/// Fills a query template's `{owner}` (the owner columns of
/// `role_oid_expr`), `{user}` (namespace alias `n` is a user schema) and
/// `{ext}` (object `oid_expr` of `catalog` is no extension member).
pub fn fill_query(template: &str, role_oid_expr: &str, catalog: &str, oid_expr: &str) -> String {
    template
        .replace("{owner}", &owner_columns(role_oid_expr))
        .replace("{user}", &user_schema("n"))
        .replace("{ext}", &not_extension_member(catalog, oid_expr))
}

/// [`fill_query`], and `{acl}`: the privilege columns of `acl_expr`, an
/// ACL of object kind `kind` (see [`acl_columns`]).
pub fn fill_query_acl(
    template: &str,
    role_oid_expr: &str,
    acl_expr: &str,
    kind: char,
    catalog: &str,
    oid_expr: &str,
) -> String {
    fill_query(template, role_oid_expr, catalog, oid_expr).replace(
        "{acl}",
        &acl_columns(acl_expr, kind, role_oid_expr, catalog, oid_expr),
    )
}

/// SQL select-list fragment: `owner` (role name) and `qowner` (quoted).
pub fn owner_columns(role_oid_expr: &str) -> String {
    format!(
        "pg_catalog.pg_get_userbyid({role_oid_expr}) AS owner, \
         pg_catalog.quote_ident(pg_catalog.pg_get_userbyid({role_oid_expr})) AS qowner"
    )
}

/// SQL select-list fragment: `acl` (the object's ACL, or the default one when
/// NULL) and `acl_base` (what the object starts with on restore: its initial
/// privileges from `pg_init_privs`, else `acldefault`), both as `text[]`.
pub fn acl_columns(
    acl_expr: &str,
    kind: char,
    owner_expr: &str,
    catalog: &str,
    oid_expr: &str,
) -> String {
    let default = format!("pg_catalog.acldefault('{kind}', {owner_expr})");
    format!(
        "COALESCE({acl_expr}, {default})::text[] AS acl, \
         COALESCE((SELECT ip.initprivs FROM pg_catalog.pg_init_privs ip \
         WHERE ip.objoid = {oid_expr} AND ip.classoid = 'pg_catalog.{catalog}'::pg_catalog.regclass \
         AND ip.objsubid = 0), {default})::text[] AS acl_base"
    )
}

/// SQL select-list fragment like [`acl_columns`] for column `a` (a
/// `pg_attribute` row) of relation `rel_oid_expr`: its ACL and its initial
/// one (`pg_init_privs` at the column's number, else none).
fn column_acl_columns(rel_oid_expr: &str) -> String {
    format!(
        "COALESCE(a.attacl, '{{}}')::text[] AS acl, \
         COALESCE((SELECT ip.initprivs FROM pg_catalog.pg_init_privs ip \
         WHERE ip.objoid = {rel_oid_expr} AND ip.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass \
         AND ip.objsubid = a.attnum), '{{}}')::text[] AS acl_base"
    )
}

/// Fills a privileges query's ACL placeholders with [`acl_columns`] and
/// [`column_acl_columns`] for the usual aliases: `{proc_acl}` (`p`, a
/// `pg_proc` row), `{class_acl}` (`c`, `pg_class`), `{type_acl}` (`t`,
/// `pg_type`) and `{column_acl}` (`a`, a `pg_attribute` row of `c`).
pub fn fill_acl_columns(template: &str) -> String {
    template
        .replace(
            "{proc_acl}",
            &acl_columns("p.proacl", 'f', "p.proowner", "pg_proc", "p.oid"),
        )
        .replace(
            "{class_acl}",
            &acl_columns("c.relacl", 'r', "c.relowner", "pg_class", "c.oid"),
        )
        .replace(
            "{type_acl}",
            &acl_columns("t.typacl", 'T', "t.typowner", "pg_type", "t.oid"),
        )
        .replace("{column_acl}", &column_acl_columns("c.oid"))
}

/// Runs a catalog query; errors say what was being read.
pub async fn query(
    client: &Client,
    what: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>> {
    client
        .query(sql, params)
        .await
        .map_err(Error::db(format!("reading {what}")))
}

/// Typed column access with an error naming the column.
pub trait RowExt {
    fn val<'a, T: FromSql<'a>>(&'a self, column: &str) -> Result<T>;
}

impl RowExt for Row {
    fn val<'a, T: FromSql<'a>>(&'a self, column: &str) -> Result<T> {
        self.try_get(column)
            .map_err(Error::db(format!("decoding catalog column {column}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers_like_the_server() {
        assert_eq!(quote_ident("film"), "film");
        assert_eq!(quote_ident("_x1"), "_x1");
        assert_eq!(quote_ident("Film"), "\"Film\"");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_ident("a b"), "\"a b\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("1a"), "\"1a\"");
        assert_eq!(quote_ident("bıgınt"), "\"bıgınt\"");
        assert_eq!(quote_ident(""), "\"\"");
    }

    #[test]
    fn quotes_literals() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\b"), "'a\\b'");
    }

    #[test]
    fn formats_reloptions() {
        assert_eq!(with_options(&[]), "");
        let opts = vec![
            "fillfactor=70".to_string(),
            "check_option=local".into(),
            "x=a b".into(),
        ];
        assert_eq!(
            with_options(&opts),
            " WITH (fillfactor=70, check_option=local, x='a b')"
        );
    }
}
