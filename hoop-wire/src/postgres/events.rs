//! PostgreSQL messages as protocol-neutral [`Event`]s.

use crate::event::{CellFormat, Column, Event};

use super::{BackendMessage, FrontendMessage};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The event a client message stands for, if any.
///
/// Query becomes [`Event::Query`], Parse [`Event::Prepare`], and Bind
/// [`Event::Execute`] (Bind is where the parameter values travel; Execute
/// only names the portal).
pub fn frontend_event(message: &FrontendMessage) -> Option<Event> {
    Some(match message {
        FrontendMessage::Query(q) => Event::Query {
            text: text(&q.query),
        },
        FrontendMessage::Parse(p) => Event::Prepare {
            name: text(&p.name),
            text: text(&p.query),
        },
        FrontendMessage::Bind(b) => Event::Execute {
            name: text(&b.statement),
            params: b.params.clone(),
        },
        _ => return None,
    })
}

/// The event a server message stands for, if any.
pub fn backend_event(message: &BackendMessage) -> Option<Event> {
    Some(match message {
        BackendMessage::RowDescription(d) => Event::Columns {
            columns: d
                .fields
                .iter()
                .map(|f| Column {
                    name: text(&f.name),
                    table: None,
                    table_id: (f.table_oid != 0).then_some(f.table_oid),
                    type_id: f.type_oid,
                    format: if f.format == 1 {
                        CellFormat::Binary
                    } else {
                        CellFormat::Text
                    },
                })
                .collect(),
        },
        BackendMessage::DataRow(row) => Event::Row {
            cells: row.cells().collect(),
        },
        BackendMessage::CommandComplete(c) => Event::Done {
            tag: text(&c.tag),
            rows: c.rows(),
        },
        BackendMessage::EmptyQueryResponse => Event::Done {
            tag: String::new(),
            rows: None,
        },
        BackendMessage::ErrorResponse(e) => Event::Error {
            code: e.code().map(|c| text(c)).unwrap_or_default(),
            message: e.message().map(|m| text(m)).unwrap_or_default(),
        },
        _ => return None,
    })
}
