//! The intermediate object model: what each per-kind reader produces before
//! comments, ACLs, dependencies, ids and the final order are attached.
//!
//! An [`Obj`] becomes one [`TocEntry`](super::TocEntry). It names the catalog
//! addresses it creates (`owns`), so `pg_depend` edges between addresses can
//! be turned into edges between entries (see `depend.rs`), and the addresses
//! it must come after that `pg_depend` does not record (`after`).

use super::sql::RowExt;
use super::toc::{ObjRef, ObjectKind, Section, TableData};
use crate::error::Result;
use tokio_postgres::Row;

/// Fixed OIDs of the system catalogs used as `classid` in [`ObjRef`].
pub mod class {
    pub const TYPE: u32 = 1247;
    pub const USER_MAPPING: u32 = 1418;
    pub const PROC: u32 = 1255;
    pub const CLASS: u32 = 1259;
    pub const ATTRDEF: u32 = 2604;
    pub const CAST: u32 = 2605;
    pub const CONSTRAINT: u32 = 2606;
    pub const LARGEOBJECT: u32 = 2613;
    pub const NAMESPACE: u32 = 2615;
    pub const OPERATOR: u32 = 2617;
    pub const REWRITE: u32 = 2618;
    pub const TRIGGER: u32 = 2620;
    pub const EXTENSION: u32 = 3079;
    pub const STATISTIC_EXT: u32 = 3381;
    pub const EVENT_TRIGGER: u32 = 3466;
    pub const TS_DICT: u32 = 3600;
    pub const TS_CONFIG: u32 = 3602;
    pub const FOREIGN_DATA_WRAPPER: u32 = 2328;
    pub const FOREIGN_SERVER: u32 = 1417;
    pub const PUBLICATION: u32 = 6104;
    pub const POLICY: u32 = 3256;
    pub const COLLATION: u32 = 3456;
    pub const AM: u32 = 2601;
    pub const OPCLASS: u32 = 2616;
    pub const OPFAMILY: u32 = 2753;
    pub const CONVERSION: u32 = 2607;
    pub const TRANSFORM: u32 = 3576;
    pub const LANGUAGE: u32 = 2612;
    pub const SUBSCRIPTION: u32 = 6100;
}

/// Shorthand for an [`ObjRef`].
pub fn oref(classid: u32, objid: u32) -> ObjRef {
    ObjRef { classid, objid }
}

/// How `COMMENT ON` (and `GRANT ... ON`) names an object: keyword and
/// quoted, qualified name, e.g. `TABLE` + `public.film`.
#[derive(Clone, Debug)]
pub struct Target {
    pub keyword: &'static str,
    pub name: String,
}

/// An object's privileges as read from the catalog.
#[derive(Clone, Debug)]
pub struct AclSpec {
    /// Keyword and name as `GRANT ... ON` spells them (`TABLE public.film`).
    pub target: Target,
    /// Role name of the owner (grants by another grantor need
    /// `SET SESSION AUTHORIZATION`).
    pub owner: String,
    pub acl: Vec<String>,
    /// The ACL the object has right after it is created on restore.
    pub base: Vec<String>,
}

/// One object read from the catalog.
#[derive(Clone, Debug)]
pub struct Obj {
    pub kind: ObjectKind,
    pub section: Section,
    pub schema: Option<String>,
    pub name: String,
    pub owner: Option<String>,
    pub sql: String,
    /// Catalog addresses this entry creates; the first is its own address.
    pub owns: Vec<ObjRef>,
    /// Addresses whose entries must be restored first (beyond `pg_depend`).
    pub after: Vec<ObjRef>,
    /// Sub-objects with their own comment names (constraints of a domain or
    /// table created by this entry's SQL).
    pub targets: Vec<(ObjRef, Target)>,
    pub acl: Option<AclSpec>,
    /// Comments and ACL go into this entry's own SQL (large objects).
    pub inline_extras: bool,
    pub data: Option<TableData>,
    /// The entry's drop statement when it is not `DROP <keyword> IF EXISTS
    /// <comment name>` (see `drop.rs`).
    pub drop: Option<String>,
    /// A view's two halves, used instead of its SQL when the view is on a
    /// dependency cycle (see `cycles.rs`).
    pub split: Option<ViewSplit>,
}

/// A view created in two steps, as pg_dump breaks a cycle through a view:
/// first a placeholder with the view's columns as typed NULLs, then, in
/// post-data, its definition (its `_RETURN` rule).
#[derive(Clone, Debug)]
pub struct ViewSplit {
    /// `CREATE VIEW ... AS SELECT NULL::type AS column, ...` and what else
    /// the view's entry holds (owner, column settings).
    pub placeholder: String,
    /// `CREATE OR REPLACE VIEW ... AS <definition>` and the column defaults.
    pub definition: String,
    /// `CREATE OR REPLACE VIEW` back to the placeholder: what `--clean`
    /// runs to undo the definition (and so the cycle) before the drops.
    pub reset: String,
    /// The `_RETURN` rule's address, which moves to the definition's entry.
    pub rule: ObjRef,
}

impl Obj {
    pub fn new(kind: ObjectKind, section: Section, name: impl Into<String>, sql: String) -> Obj {
        Obj {
            kind,
            section,
            schema: None,
            name: name.into(),
            owner: None,
            sql,
            owns: Vec::new(),
            after: Vec::new(),
            targets: Vec::new(),
            acl: None,
            inline_extras: false,
            data: None,
            drop: None,
            split: None,
        }
    }

    /// A pre-data object in a schema from a catalog row with the columns
    /// `name`, `nspname` and `owner` (see [`owner_columns`](super::sql::owner_columns)).
    pub fn in_schema(kind: ObjectKind, row: &Row, sql: String) -> Result<Obj> {
        Ok(
            Obj::new(kind, Section::PreData, row.val::<String>("name")?, sql)
                .schema(row.val::<String>("nspname")?)
                .owner(row.val::<String>("owner")?),
        )
    }

    pub fn schema(mut self, schema: impl Into<String>) -> Obj {
        self.schema = Some(schema.into());
        self
    }

    pub fn owner(mut self, owner: impl Into<String>) -> Obj {
        self.owner = Some(owner.into());
        self
    }

    /// Adds an address this entry creates; with a comment name if given.
    pub fn owns(mut self, r: ObjRef, comment: Option<Target>) -> Obj {
        self.owns.push(r);
        if let Some(t) = comment {
            self.targets.push((r, t));
        }
        self
    }

    /// Adds the catalog address `(classid, oid)` this entry creates, with the
    /// comment name `keyword name`.
    pub fn creates(
        self,
        classid: u32,
        oid: u32,
        keyword: &'static str,
        name: impl Into<String>,
    ) -> Obj {
        self.owns(oref(classid, oid), target(keyword, name))
    }

    pub fn after(mut self, r: ObjRef) -> Obj {
        self.after.push(r);
        self
    }

    /// The privileges from the `acl` and `acl_base` columns of `row` (see
    /// [`acl_columns`](super::sql::acl_columns)), granted `ON keyword name`;
    /// set the owner first.
    pub fn grants(
        mut self,
        row: &Row,
        keyword: &'static str,
        name: impl Into<String>,
    ) -> Result<Obj> {
        self.acl = Some(AclSpec {
            target: Target {
                keyword,
                name: name.into(),
            },
            owner: self.owner.clone().unwrap_or_default(),
            acl: row.val("acl")?,
            base: row.val("acl_base")?,
        });
        Ok(self)
    }

    pub fn data(mut self, data: TableData) -> Obj {
        self.data = Some(data);
        self
    }
}

/// A comment name: `Target { keyword, name }`.
pub fn target(keyword: &'static str, name: impl Into<String>) -> Option<Target> {
    Some(Target {
        keyword,
        name: name.into(),
    })
}
