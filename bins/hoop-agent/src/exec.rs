//! Exec: the agent runs one script on a connection through the same
//! protocol driver (and so the same policy) a native client gets, with a
//! client of its own on the driver's client side, and sends back the
//! output.
//!
//! ```text
//!  script --> tokio-postgres (simple query) --duplex--> PostgresProxy --> database
//!  rows <--------------------------------------------------+
//!  output (DATA frames) + SessionEnd {exit_code} (CLOSE) --> gateway
//! ```
//!
//! MySQL connections run the same way through the MySQL driver (see
//! `exec_mysql`).
//!
//! Output is tab-separated rows (NULL as an empty field, as `psql -At`
//! prints), or with `output: json` one JSON array of row objects whose
//! values keep their column's type (`exec_json`).

use tokio_postgres::SimpleQueryMessage;

use crate::exec_json::{ColumnTypes, JsonKind, JsonRows, RowDescriptionTap};

use crate::messages::{OpenSession, SessionEnd};
use crate::mux::StreamSender;
use crate::session::{driven, driver, link_events, pipeline};

/// Runs `open.script` and reports its output and outcome on the stream.
pub(crate) async fn run(open: &OpenSession, sender: &StreamSender) -> SessionEnd {
    match execute(open, sender).await {
        Ok(()) => SessionEnd {
            status: "done".into(),
            error: None,
            exit_code: Some(0),
        },
        Err(message) => SessionEnd {
            status: "failed".into(),
            error: Some(message),
            exit_code: Some(1),
        },
    }
}

async fn execute(open: &OpenSession, sender: &StreamSender) -> Result<(), String> {
    let json = open.output.as_deref() == Some("json");
    match open.protocol.as_str() {
        "postgres" => {}
        "mysql" => {
            let output = crate::exec_mysql::execute(open, sender, json).await?;
            return sender
                .send(output.into())
                .await
                .map_err(|_| "the link closed".to_owned());
        }
        other => {
            return Err(format!(
                "exec on {other} connections is not supported; use connect"
            ));
        }
    }
    let script = open.script.as_deref().unwrap_or_default();
    let pipeline = pipeline(open, link_events(sender)).map_err(|e| e.to_string())?;
    let driver = driver(open, pipeline).map_err(|e| e.to_string())?;
    let (driving, client) = driven(driver);
    let mut config = tokio_postgres::Config::new();
    config.user(&open.connection).application_name("hoop exec");
    let types = ColumnTypes::default();
    let client = RowDescriptionTap::new(client, types.clone());
    let result = async {
        let (pg, connection) = config
            .connect_raw(client, tokio_postgres::NoTls)
            .await
            .map_err(describe)?;
        let connection = tokio::spawn(connection);
        let messages = pg.simple_query(script).await.map_err(describe);
        drop(pg);
        let _ = connection.await;
        messages
    }
    .await;
    let _ = driving.await;
    let output = if json {
        json_output(&result?, &types)
    } else {
        format_output(&result?)
    };
    sender
        .send(output.into())
        .await
        .map_err(|_| "the link closed".to_owned())
}

fn describe(error: tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => error.to_string(),
    }
}

fn format_output(messages: &[SimpleQueryMessage]) -> String {
    let mut out = String::new();
    for message in messages {
        let SimpleQueryMessage::Row(row) = message else {
            continue;
        };
        for index in 0..row.len() {
            if index > 0 {
                out.push('\t');
            }
            out.push_str(row.try_get(index).ok().flatten().unwrap_or(""));
        }
        out.push('\n');
    }
    out
}

/// The rows as one JSON array; each result set's column types are the
/// next ones the tap read (strings where it has none).
fn json_output(messages: &[SimpleQueryMessage], types: &ColumnTypes) -> String {
    let mut rows = JsonRows::new();
    let mut columns: Vec<(String, JsonKind)> = Vec::new();
    for message in messages {
        match message {
            SimpleQueryMessage::RowDescription(described) => {
                let oids = types.next().unwrap_or_default();
                columns = described
                    .iter()
                    .enumerate()
                    .map(|(index, column)| {
                        let kind = oids
                            .get(index)
                            .filter(|_| oids.len() == described.len())
                            .map_or(JsonKind::Text, |oid| JsonKind::postgres(*oid));
                        (column.name().to_owned(), kind)
                    })
                    .collect();
            }
            SimpleQueryMessage::Row(row) => {
                rows.push(
                    &columns,
                    (0..row.len()).map(|index| row.try_get(index).ok().flatten()),
                );
            }
            _ => {}
        }
    }
    rows.finish()
}
