//! The table of contents: every object a backup carries, as SQL to replay,
//! with the section it belongs to and the entries it depends on.
//!
//! The TOC is serialized into the manifest body, so its shape is part of the
//! archive format (see `docs/format.md`). Add fields with `#[serde(default)]`.

use serde::{Deserialize, Serialize};

/// Where an entry is restored: schema before data, indexes/constraints after.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Section {
    PreData,
    Data,
    PostData,
}

/// What kind of object an entry creates. Shown by `pgkeep show`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectKind {
    Schema,
    Extension,
    Type,
    Domain,
    Collation,
    Function,
    Procedure,
    Aggregate,
    Sequence,
    SequenceOwnedBy,
    SequenceSet,
    Table,
    PartitionAttach,
    Default,
    View,
    MaterializedView,
    MaterializedViewData,
    Constraint,
    CheckConstraint,
    ForeignKey,
    Index,
    IndexAttach,
    Trigger,
    Rule,
    RowSecurity,
    Policy,
    Comment,
    Acl,
    DefaultAcl,
    LargeObject,
    TableData,
    LargeObjectData,
    Statistics,
    EventTrigger,
    Publication,
    PublicationMember,
    TextSearchDictionary,
    TextSearchConfiguration,
    ForeignDataWrapper,
    ForeignServer,
    UserMapping,
    Cast,
    Operator,
    AccessMethod,
    OperatorFamily,
    OperatorClass,
    Conversion,
    Transform,
    Language,
    ShellType,
    Subscription,
    SecurityLabel,
}

impl ObjectKind {
    /// Upper-case label in the style of `pg_restore -l`.
    pub fn label(self) -> &'static str {
        match self {
            ObjectKind::Schema => "SCHEMA",
            ObjectKind::Extension => "EXTENSION",
            ObjectKind::Type => "TYPE",
            ObjectKind::Domain => "DOMAIN",
            ObjectKind::Collation => "COLLATION",
            ObjectKind::Function => "FUNCTION",
            ObjectKind::Procedure => "PROCEDURE",
            ObjectKind::Aggregate => "AGGREGATE",
            ObjectKind::Sequence => "SEQUENCE",
            ObjectKind::SequenceOwnedBy => "SEQUENCE OWNED BY",
            ObjectKind::SequenceSet => "SEQUENCE SET",
            ObjectKind::Table => "TABLE",
            ObjectKind::PartitionAttach => "TABLE ATTACH",
            ObjectKind::Default => "DEFAULT",
            ObjectKind::View => "VIEW",
            ObjectKind::MaterializedView => "MATERIALIZED VIEW",
            ObjectKind::MaterializedViewData => "MATERIALIZED VIEW DATA",
            ObjectKind::Constraint => "CONSTRAINT",
            ObjectKind::CheckConstraint => "CHECK CONSTRAINT",
            ObjectKind::ForeignKey => "FK CONSTRAINT",
            ObjectKind::Index => "INDEX",
            ObjectKind::IndexAttach => "INDEX ATTACH",
            ObjectKind::Trigger => "TRIGGER",
            ObjectKind::Rule => "RULE",
            ObjectKind::RowSecurity => "ROW SECURITY",
            ObjectKind::Policy => "POLICY",
            ObjectKind::Comment => "COMMENT",
            ObjectKind::Acl => "ACL",
            ObjectKind::DefaultAcl => "DEFAULT ACL",
            ObjectKind::LargeObject => "BLOB",
            ObjectKind::TableData => "TABLE DATA",
            ObjectKind::LargeObjectData => "BLOBS",
            ObjectKind::Statistics => "STATISTICS",
            ObjectKind::EventTrigger => "EVENT TRIGGER",
            ObjectKind::Publication => "PUBLICATION",
            ObjectKind::PublicationMember => "PUBLICATION TABLE",
            ObjectKind::TextSearchDictionary => "TEXT SEARCH DICTIONARY",
            ObjectKind::TextSearchConfiguration => "TEXT SEARCH CONFIGURATION",
            ObjectKind::ForeignDataWrapper => "FOREIGN DATA WRAPPER",
            ObjectKind::ForeignServer => "SERVER",
            ObjectKind::UserMapping => "USER MAPPING",
            ObjectKind::Cast => "CAST",
            ObjectKind::Operator => "OPERATOR",
            ObjectKind::AccessMethod => "ACCESS METHOD",
            ObjectKind::OperatorFamily => "OPERATOR FAMILY",
            ObjectKind::OperatorClass => "OPERATOR CLASS",
            ObjectKind::Conversion => "CONVERSION",
            ObjectKind::Transform => "TRANSFORM",
            ObjectKind::Language => "PROCEDURAL LANGUAGE",
            ObjectKind::ShellType => "SHELL TYPE",
            ObjectKind::Subscription => "SUBSCRIPTION",
            ObjectKind::SecurityLabel => "SECURITY LABEL",
        }
    }
}

/// A catalog object address, as in `pg_depend`: (catalog table oid, object oid).
/// Used only while building the TOC to turn `pg_depend` rows into edges.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjRef {
    pub classid: u32,
    pub objid: u32,
}

/// What a data entry loads: a table's rows through COPY, or the large objects.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TableData {
    pub schema: String,
    pub name: String,
    /// Columns in COPY order (no generated or dropped columns), unquoted.
    pub columns: Vec<String>,
    /// Estimated size in bytes (`pg_relation_size`), to schedule biggest first.
    pub est_bytes: u64,
    /// Estimated heap pages, for ctid slicing of large tables.
    pub pages: u64,
    /// Whether a ctid-range split is possible (a plain heap table, not a view
    /// or partitioned parent).
    pub splittable: bool,
    /// Which rows: an extension configuration table's filter (`WHERE ...`,
    /// as given to `pg_extension_config_dump`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// One object of the backup.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TocEntry {
    /// Unique within one TOC; dependencies refer to it.
    pub id: u32,
    pub kind: ObjectKind,
    pub section: Section,
    pub schema: Option<String>,
    /// Display name (for a trigger: "name ON table"; for a comment: "TABLE foo").
    pub name: String,
    pub owner: Option<String>,
    /// SQL that creates the object; may hold several `;`-terminated statements.
    /// Empty for data entries.
    pub sql: String,
    /// Ids of entries that must be restored before this one.
    pub deps: Vec<u32>,
    /// For `TableData` entries: what COPY loads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<TableData>,
    /// What `restore --clean --if-exists` runs to drop the entry's object
    /// (standalone objects only; absent in backups made before 0.1.0's
    /// drop statements, and for sub-objects that go with their table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<String>,
}
