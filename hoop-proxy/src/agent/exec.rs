//! Exec: the agent runs one script on a connection through the same
//! protocol driver (and so the same policy) a native client gets, with a
//! client of its own on the driver's client side, and streams back the
//! output.
//!
//! ```text
//!  script --> tokio-postgres (simple query) --duplex--> PostgresProxy --> database
//!  rows <--------------------------------------------------+
//!   | formatted one by one into Output (<= CHUNK buffered)
//!   v
//!  DATA frames, as the gateway returns credit --> gateway
//!  SessionEnd {exit_code, truncated} (CLOSE) --> gateway
//! ```
//!
//! MySQL connections run the same way through the MySQL driver (see
//! `exec_mysql`).
//!
//! Output is tab-separated rows (NULL as an empty field, as `psql -At`
//! prints), or with `output: json` one JSON array of row objects. Rows are
//! sent as they arrive: a result of any size passes through the agent in
//! bounded memory (one chunk, one row, the link's window), and a gateway
//! that stops reading stops the query where it is (the driver's reads
//! wait, and so does the database). On an error the rows before it have
//! been sent already; the JSON array is closed, so it still parses.

use bytes::{Bytes, BytesMut};
use tokio_postgres::SimpleColumn;
use tokio_postgres::SimpleQueryMessage;

use super::exec_json::{ColumnTypes, JsonKind, RowDescriptionTap, write_row};

use super::session::{LinkAudit, driven, driver};
use crate::link::messages::{OpenSession, SessionEnd};
use crate::link::mux::{AbortOnDrop, CHUNK, Inbound, StreamReceiver, StreamSender};

/// Runs `open.script` and reports its output and outcome on the stream.
/// The gateway closing the stream (its client left, or it shuts down) or
/// the link's loss stops the script.
pub(crate) async fn run(
    open: &OpenSession,
    sender: &StreamSender,
    mut receiver: StreamReceiver,
    audit: &LinkAudit,
) -> SessionEnd {
    let json = open.output.as_deref() == Some("json");
    let mut output = Output::new(sender, json, open.output_limit);
    let work = async {
        let result = execute(open, sender, audit, &mut output).await;
        // The rows before an error were sent; the format's end follows them.
        let finished = output.finish().await;
        result.and(finished)
    };
    let result = tokio::select! {
        result = work => result,
        // Nothing more is sent: nobody reads it, and the stream's credit
        // may never return.
        () = closed_by_peer(&mut receiver) => Err("the gateway ended the session".to_owned()),
    };
    let truncated = output.truncated;
    match result {
        Ok(()) => SessionEnd {
            status: "done".into(),
            error: None,
            exit_code: Some(0),
            truncated,
        },
        Err(message) => SessionEnd {
            status: "failed".into(),
            error: Some(crate::recorder::recorded_error(open, &message)),
            exit_code: Some(1),
            truncated,
        },
    }
}

/// Returns when the gateway closes the stream or the link is lost; the
/// gateway sends nothing else on an exec stream. Keeping the receiver
/// registered is also what lets the gateway's credit (`WINDOW`) reach the
/// sender: without it the output would stop after one window.
async fn closed_by_peer(receiver: &mut StreamReceiver) {
    while let Some(Inbound::Data(_)) = receiver.recv().await {}
}

async fn execute(
    open: &OpenSession,
    sender: &StreamSender,
    audit: &LinkAudit,
    output: &mut Output<'_>,
) -> Result<(), String> {
    match open.protocol.as_str() {
        "postgres" => {}
        "mysql" => return super::exec_mysql::execute(open, sender, audit, output).await,
        other => {
            return Err(format!(
                "exec on {other} connections is not supported; use connect"
            ));
        }
    }
    let script = open.script.as_deref().unwrap_or_default();
    let pipeline = audit.pipeline(open, sender).map_err(|e| e.to_string())?;
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
        // Aborted with this future (the gateway ended the session): the
        // driver then sees its client leave and cancels the query, where
        // tokio-postgres would read the rest of the result to discard it.
        let mut connection = AbortOnDrop(tokio::spawn(connection));
        let streamed = stream_rows(&pg, script, &types, output).await;
        drop(pg);
        let _ = (&mut connection.0).await;
        streamed
    }
    .await;
    let _ = driving.await;
    result
}

/// Writes each row as tokio-postgres reads it. While `output` waits for
/// credit this stops polling, and tokio-postgres stops reading the
/// driver's stream: the result stays in the database.
async fn stream_rows(
    pg: &tokio_postgres::Client,
    script: &str,
    types: &ColumnTypes,
    output: &mut Output<'_>,
) -> Result<(), String> {
    let mut columns = Vec::new();
    let mut messages = std::pin::pin!(pg.simple_query_raw(script).await.map_err(describe)?);
    while let Some(message) =
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(messages.as_mut(), cx)).await
    {
        match message.map_err(describe)? {
            SimpleQueryMessage::RowDescription(described) => {
                columns = typed_columns(&described, types.next());
            }
            SimpleQueryMessage::Row(row) => {
                let cells = (0..row.len()).map(|index| row.try_get(index).ok().flatten());
                output.row(&columns, cells).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A result set's columns with the JSON kind of each: the type OIDs the
/// tap read for it, strings where it has none (or a different count).
fn typed_columns(described: &[SimpleColumn], oids: Option<Vec<u32>>) -> Vec<(String, JsonKind)> {
    let oids = oids.filter(|oids| oids.len() == described.len());
    described
        .iter()
        .enumerate()
        .map(|(index, column)| {
            let kind = oids
                .as_ref()
                .and_then(|oids| oids.get(index))
                .map_or(JsonKind::Text, |oid| JsonKind::postgres(*oid));
            (column.name().to_owned(), kind)
        })
        .collect()
}

fn describe(error: tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => error.to_string(),
    }
}

/// Exec output on its way to the gateway: each row formatted as it
/// arrives and sent in chunks of at most [`CHUNK`] bytes as the gateway
/// grants credit, so a result of any size needs one chunk and one row of
/// memory here.
///
/// With a limit (the gateway's cap on an answer it holds whole) only the
/// rows that fit are sent, whole, and the script still runs to its end;
/// `truncated` says rows were left out. The JSON array is closed within
/// the limit, so a cut answer still parses.
pub(crate) struct Output<'a> {
    sender: &'a StreamSender,
    pending: BytesMut,
    json: bool,
    /// Rows written so far.
    rows: u64,
    /// Bytes handed to the stream, and pending.
    written: u64,
    limit: Option<u64>,
    truncated: bool,
}

/// What closing the JSON array costs: `]` and a newline.
const JSON_END: &str = "]\n";

impl<'a> Output<'a> {
    pub(crate) fn new(sender: &'a StreamSender, json: bool, limit: Option<u64>) -> Self {
        Self {
            sender,
            pending: BytesMut::with_capacity(CHUNK),
            json,
            rows: 0,
            written: 0,
            limit,
            truncated: false,
        }
    }

    /// Adds one row: `columns` names its result set's columns and how
    /// their values appear in JSON, `cells` holds the values as text
    /// (`None` for NULL).
    ///
    /// # Errors
    ///
    /// When the link closed.
    pub(crate) async fn row<'c>(
        &mut self,
        columns: &[(String, JsonKind)],
        cells: impl Iterator<Item = Option<&'c str>>,
    ) -> Result<(), String> {
        if self.truncated {
            return Ok(());
        }
        let mut row = String::new();
        let (separator, reserve) = if self.json {
            write_row(&mut row, columns, cells);
            (if self.rows == 0 { "[" } else { "," }, JSON_END.len())
        } else {
            text_row(&mut row, cells);
            ("", 0)
        };
        let needed = (separator.len() + row.len() + reserve) as u64;
        if self
            .limit
            .is_some_and(|limit| self.written + needed > limit)
        {
            self.truncated = true;
            return Ok(());
        }
        self.rows += 1;
        self.push(separator.as_bytes()).await?;
        self.push(row.as_bytes()).await
    }

    /// Ends the output (closes the JSON array) and sends what is pending.
    ///
    /// # Errors
    ///
    /// When the link closed.
    pub(crate) async fn finish(&mut self) -> Result<(), String> {
        if self.json {
            let end = if self.rows == 0 { "[]\n" } else { JSON_END };
            self.push(end.as_bytes()).await?;
        }
        self.flush().await
    }

    async fn push(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.written += bytes.len() as u64;
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk: Bytes = self.pending.split().freeze();
        self.sender
            .send(chunk)
            .await
            .map_err(|_| "the link closed".to_owned())
    }
}

/// A row as `psql -At -F'\t'` prints it: NULL as an empty field.
fn text_row<'c>(out: &mut String, cells: impl Iterator<Item = Option<&'c str>>) {
    for (index, value) in cells.enumerate() {
        if index > 0 {
            out.push('\t');
        }
        out.push_str(value.unwrap_or(""));
    }
    out.push('\n');
}
