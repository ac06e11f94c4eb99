//! Protocol-neutral events: what every protocol's traffic turns into.
//!
//! Masking, guardrails and the recorder see only these; each protocol module
//! maps its messages to them, so policy is written once for every database.

use bytes::Bytes;

/// One thing that happened on a database session.
#[derive(Clone, PartialEq, Eq)]
pub enum Event {
    /// A statement as the client sent it.
    Query {
        /// The statement text.
        text: String,
    },
    /// A statement prepared for later execution.
    Prepare {
        /// The prepared statement's name (empty for the unnamed one).
        name: String,
        /// The statement text.
        text: String,
    },
    /// A prepared statement run with parameters.
    Execute {
        /// The prepared statement's name.
        name: String,
        /// Parameter values as sent on the wire; `None` is NULL.
        params: Vec<Option<Bytes>>,
    },
    /// The shape of the rows that follow.
    Columns {
        /// One entry per column, in order.
        columns: Vec<Column>,
    },
    /// One result row, cells as on the wire.
    Row {
        /// One entry per column; `None` is NULL.
        cells: Vec<Option<Bytes>>,
    },
    /// A statement finished.
    Done {
        /// The protocol's completion tag (PostgreSQL's `SELECT 3`, ...).
        tag: String,
        /// Rows affected or returned, when the protocol says.
        rows: Option<u64>,
    },
    /// The server reported an error, or hoop refused a statement.
    Error {
        /// The protocol's error code (a SQLSTATE where there is one).
        code: String,
        /// The human-readable message.
        message: String,
    },
}

/// `Debug` shows the kind of event and its sizes but never cell or parameter
/// values, which may hold personal data.
impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Query { text } => f.debug_struct("Query").field("len", &text.len()).finish(),
            Self::Prepare { name, text } => f
                .debug_struct("Prepare")
                .field("name", name)
                .field("len", &text.len())
                .finish(),
            Self::Execute { name, params } => f
                .debug_struct("Execute")
                .field("name", name)
                .field("params", &params.len())
                .finish(),
            Self::Columns { columns } => {
                f.debug_struct("Columns").field("columns", columns).finish()
            }
            Self::Row { cells } => f.debug_struct("Row").field("cells", &cells.len()).finish(),
            Self::Done { tag, rows } => f
                .debug_struct("Done")
                .field("tag", tag)
                .field("rows", rows)
                .finish(),
            Self::Error { code, message } => f
                .debug_struct("Error")
                .field("code", code)
                .field("message", message)
                .finish(),
        }
    }
}

/// A result column's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The column's name (or alias).
    pub name: String,
    /// The table it comes from, when the protocol names it.
    pub table: Option<String>,
    /// The table's numeric identifier, when the protocol gives one
    /// (PostgreSQL's table OID) instead of a name.
    pub table_id: Option<u32>,
    /// The protocol's type code (a PostgreSQL type OID, a MySQL column type).
    pub type_id: u32,
    /// How the cells of this column are encoded.
    pub format: CellFormat,
}

/// How a cell's bytes are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellFormat {
    /// Human-readable text.
    Text,
    /// The protocol's binary representation of the column's type.
    Binary,
}
