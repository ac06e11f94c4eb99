//! Protocol-neutral events: what every protocol's traffic turns into.
//!
//! Masking, guardrails and the recorder see only these; each protocol module
//! maps its messages to them, so policy is written once for every kind of
//! connection. Databases with rows of cells give statements, columns and
//! rows; document databases give documents (a tree of named values); HTTP
//! gives message heads and streamed bodies; terminals and byte streams give
//! commands typed and output as it arrives.

use bytes::Bytes;

/// One thing that happened on a session.
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
    /// A document the server returned: a tree of named values (a MongoDB
    /// result document). Masked field by field, by path.
    Document {
        /// The document's fields, in order.
        document: Document,
    },
    /// A command as the client sent it, as text: a line typed in a terminal
    /// (ssh, a shell over tcp), or a document-database command rendered as
    /// text. Judged by the policy's word and pattern rules.
    Command {
        /// The command text.
        text: String,
    },
    /// The head of an HTTP request; its body follows as [`Event::Body`].
    HttpRequest {
        /// The method (`GET`, `POST`, ...).
        method: String,
        /// The request target as sent (path and query, percent-encoded).
        path: String,
        /// Header fields in order, names as sent.
        headers: Vec<(String, Bytes)>,
    },
    /// The head of an HTTP response; its body follows as [`Event::Body`].
    HttpResponse {
        /// The status code.
        status: u16,
        /// Header fields in order, names as sent.
        headers: Vec<(String, Bytes)>,
    },
    /// A piece of the body of the HTTP message whose head came last in the
    /// same direction, streamed: a body arrives in as many pieces as the
    /// peer sends, and a value may straddle two of them.
    Body {
        /// The bytes of this piece (after any transfer coding is removed).
        chunk: Bytes,
        /// True for the message's last piece.
        last: bool,
    },
    /// Output of a terminal or byte stream (ssh, tcp, custom), as it
    /// arrives: lines may straddle chunks.
    Output {
        /// The bytes of this piece.
        chunk: Bytes,
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
            Self::Document { document } => f
                .debug_struct("Document")
                .field("fields", &document.fields.len())
                .finish(),
            Self::Command { text } => f.debug_struct("Command").field("len", &text.len()).finish(),
            Self::HttpRequest {
                method, headers, ..
            } => f
                .debug_struct("HttpRequest")
                .field("method", method)
                .field("headers", &headers.len())
                .finish(),
            Self::HttpResponse { status, headers } => f
                .debug_struct("HttpResponse")
                .field("status", status)
                .field("headers", &headers.len())
                .finish(),
            Self::Body { chunk, last } => f
                .debug_struct("Body")
                .field("len", &chunk.len())
                .field("last", last)
                .finish(),
            Self::Output { chunk } => f.debug_struct("Output").field("len", &chunk.len()).finish(),
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

/// A tree of named values: a MongoDB document, a JSON object.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Document {
    /// Field names and values, in order (names may repeat, as BSON allows).
    pub fields: Vec<(String, Value)>,
}

/// One value of a [`Document`].
///
/// Strings are bytes, not `String`: a protocol's strings may be invalid
/// UTF-8, and masking must still read them. Values masking cannot read
/// (numbers aside) are kept opaque in the protocol's own encoding, so the
/// driver re-encodes a document exactly.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// Null (a masked value may become one).
    Null,
    /// A boolean.
    Bool(bool),
    /// A number, rendered as decimal text by the protocol (`type_id` keeps
    /// its encoding: int32, int64, double, decimal128 ...).
    Number {
        /// The protocol's type code.
        type_id: u32,
        /// The number as text (`42`, `-1.5e3`).
        text: String,
    },
    /// A string.
    Text(Bytes),
    /// Any other value in the protocol's own encoding (binary data, object
    /// ids, timestamps), never read by masking; a field rule masks it whole.
    Opaque {
        /// The protocol's type code.
        type_id: u32,
        /// The value's encoded bytes.
        bytes: Bytes,
    },
    /// An array: its elements share their field's path.
    Array(Vec<Self>),
    /// A nested document.
    Document(Document),
}

/// `Debug` shows each value's kind and size, never its content, which may
/// hold personal data.
impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Null => f.write_str("Null"),
            Self::Bool(_) => f.write_str("Bool"),
            Self::Number { type_id, .. } => write!(f, "Number({type_id})"),
            Self::Text(t) => write!(f, "Text({} bytes)", t.len()),
            Self::Opaque { type_id, bytes } => {
                write!(f, "Opaque({type_id}, {} bytes)", bytes.len())
            }
            Self::Array(a) => f.debug_list().entries(a).finish(),
            Self::Document(d) => d.fmt(f),
        }
    }
}

/// `Debug` shows each value's kind and size, never a value nor a field name
/// (names can be data too: a map keyed by email addresses).
impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.fields.iter().map(|(_, value)| value))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_values_or_field_names() {
        let document = Document {
            fields: vec![
                (
                    "ada@example.com".to_owned(),
                    Value::Text(Bytes::from_static(b"secret text")),
                ),
                (
                    "n".to_owned(),
                    Value::Number {
                        type_id: 1,
                        text: "4111111111111111".to_owned(),
                    },
                ),
            ],
        };
        let shown = format!(
            "{:?} {:?} {:?}",
            document,
            Event::Document {
                document: document.clone()
            },
            Event::HttpRequest {
                method: "GET".to_owned(),
                path: "/users?email=ada@example.com".to_owned(),
                headers: vec![("Authorization".to_owned(), Bytes::from_static(b"Bearer x"))],
            }
        );
        for hidden in ["ada@", "secret", "4111", "Bearer"] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
        assert!(shown.contains("Text(11 bytes)"), "{shown}");
    }
}
