//! SQL text helpers shared by the per-kind readers: identifier and literal
//! quoting, reusable catalog-query fragments, and row decoding with context.
//!
//! Most names are quoted server-side (`quote_ident`, `format('%I.%I')`) in
//! the catalog queries; [`quote_ident`] is for names pgkeep parses itself
//! (role names inside ACL items).

use crate::error::{Error, Result};
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{Client, Row};

/// Keywords that cannot be used as a bare identifier everywhere (reserved,
/// type/function-name and column-name keywords of PostgreSQL 13–17).
const KEYWORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "json",
    "json_array",
    "json_arrayagg",
    "json_exists",
    "json_object",
    "json_objectagg",
    "json_query",
    "json_scalar",
    "json_serialize",
    "json_table",
    "json_value",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "merge_action",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
];

/// Quotes an identifier unless it is a plain lower-case name that is not a
/// keyword (the rules of the server's `quote_ident`, conservatively).
pub fn quote_ident(name: &str) -> String {
    let simple = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !KEYWORDS.contains(&name);
    if simple {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A string literal for a session with `standard_conforming_strings = on`.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

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
