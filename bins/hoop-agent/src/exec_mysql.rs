//! Exec on MySQL connections: a small client of the agent's own speaks to
//! the MySQL driver over an in-memory stream, logs in (the driver runs with
//! `AllowAll`), sends the script as one COM_QUERY (several statements
//! allowed) and collects the text rows, so the connection's policy applies
//! as for the mariadb CLI.
//!
//! ```text
//!  script --> HandshakeResponse41, COM_QUERY --duplex--> MysqlProxy --> database
//!  rows <----- ColumnCount, ColumnDefinition41, ResultSetRow, EOF/OK/ERR
//! ```

use bytes::BytesMut;
use hoop_wire::mysql::{
    ClientMessage, Command, HandshakeResponse, Limits, ServerMessage, Session, capability,
    encode_packet,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use crate::exec_json::{JsonKind, JsonRows};

use crate::messages::OpenSession;
use crate::mux::StreamSender;
use crate::session::{driven, driver, link_events, pipeline};

/// utf8mb4_general_ci.
const CHARSET_UTF8MB4: u8 = 45;

/// Largest packet the client accepts (16 MiB, the protocol's physical
/// packet size; the driver's limits bound what it relays).
const MAX_PACKET: u32 = 16 * 1024 * 1024;

/// CLIENT_TRANSACTIONS: status flags carry the transaction state.
const TRANSACTIONS: u64 = 1 << 13;

/// What the client asks for, within what the driver offers: the 4.1
/// protocol, plugin authentication and several statements and result sets
/// per query.
const WANTED: u64 = capability::PROTOCOL_41
    | capability::SECURE_CONNECTION
    | capability::PLUGIN_AUTH
    | capability::MULTI_STATEMENTS
    | capability::MULTI_RESULTS
    | TRANSACTIONS;

/// One result set: column names and kinds, and rows of cells (None for
/// NULL).
type ResultSet = (Vec<(String, JsonKind)>, Vec<Vec<Option<String>>>);

/// Runs `open.script` through the connection's MySQL driver and formats
/// its rows: tab-separated (NULL empty), or with `json` one array of row
/// objects whose values keep their column's type.
///
/// # Errors
///
/// The database's (or the policy's) ERR as `ERROR code (state): message`,
/// or why the session could not run.
pub(crate) async fn execute(
    open: &OpenSession,
    sender: &StreamSender,
    json: bool,
) -> Result<String, String> {
    let pipeline = pipeline(open, link_events(sender)).map_err(|e| e.to_string())?;
    let driver = driver(open, pipeline).map_err(|e| e.to_string())?;
    let (driving, mut client) = driven(driver);
    let result = run(&mut client, open).await;
    drop(client);
    let _ = driving.await;
    Ok(format(&result?, json))
}

fn format(sets: &[ResultSet], json: bool) -> String {
    if json {
        let mut out = JsonRows::new();
        for (columns, rows) in sets {
            for row in rows {
                out.push(columns, row.iter().map(Option::as_deref));
            }
        }
        return out.finish();
    }
    let mut out = String::new();
    for row in sets.iter().flat_map(|(_, rows)| rows) {
        for (index, cell) in row.iter().enumerate() {
            if index > 0 {
                out.push('\t');
            }
            out.push_str(cell.as_deref().unwrap_or(""));
        }
        out.push('\n');
    }
    out
}

struct Client<'a> {
    stream: &'a mut DuplexStream,
    session: Session,
    buffer: BytesMut,
}

impl Client<'_> {
    async fn next(&mut self) -> Result<ServerMessage, String> {
        loop {
            match self.session.decode_server(&mut self.buffer) {
                Ok(Some((_, message))) => return Ok(message),
                Ok(None) => {}
                Err(error) => return Err(format!("the driver sent {error}")),
            }
            match self.stream.read_buf(&mut self.buffer).await {
                Ok(0) => return Err("the driver closed the session".into()),
                Ok(_) => {}
                Err(error) => return Err(format!("the driver's stream failed: {error}")),
            }
        }
    }

    async fn send(&mut self, seq: u8, message: &ClientMessage) -> Result<(), String> {
        let mut payload = BytesMut::new();
        message.encode_payload(&mut payload);
        let mut wire = BytesMut::new();
        encode_packet(&mut wire, seq, &payload);
        self.session
            .decode_client(&mut wire.clone())
            .map_err(|e| format!("could not encode {}: {e}", message.name()))?;
        self.stream
            .write_all(&wire)
            .await
            .map_err(|e| format!("the driver's stream failed: {e}"))
    }
}

fn describe(err: &hoop_wire::mysql::ErrPacket) -> String {
    let state = err
        .sql_state
        .map(|s| format!(" ({})", String::from_utf8_lossy(&s)))
        .unwrap_or_default();
    format!(
        "ERROR {}{state}: {}",
        err.code,
        String::from_utf8_lossy(&err.message)
    )
}

async fn run(stream: &mut DuplexStream, open: &OpenSession) -> Result<Vec<ResultSet>, String> {
    let mut client = Client {
        stream,
        session: Session::new(Limits::default()),
        buffer: BytesMut::new(),
    };
    let greeting = match client.next().await? {
        ServerMessage::Handshake(handshake) => handshake,
        ServerMessage::Err(err) => return Err(describe(&err)),
        other => return Err(format!("the driver greeted with {}", other.name())),
    };
    let login = ClientMessage::HandshakeResponse(HandshakeResponse {
        capabilities: (greeting.capabilities & WANTED)
            | capability::PROTOCOL_41
            | capability::SECURE_CONNECTION
            | capability::PLUGIN_AUTH,
        max_packet_size: MAX_PACKET,
        charset: CHARSET_UTF8MB4,
        username: open.connection.clone().into_bytes().into(),
        // The driver runs with AllowAll: the gateway checked the person.
        auth_response: bytes::Bytes::new(),
        database: None,
        auth_plugin_name: greeting.auth_plugin_name.clone(),
        attributes: None,
        trailer: bytes::Bytes::new(),
    });
    client.send(1, &login).await?;
    match client.next().await? {
        ServerMessage::Ok(_) => {}
        ServerMessage::Err(err) => return Err(describe(&err)),
        other => {
            return Err(format!(
                "the driver answered the login with {}",
                other.name()
            ));
        }
    }
    let script = open.script.as_deref().unwrap_or_default();
    client
        .send(
            0,
            &ClientMessage::Command(Command::query(script.as_bytes())),
        )
        .await?;
    let mut sets: Vec<ResultSet> = Vec::new();
    let mut error = None;
    loop {
        match client.next().await? {
            ServerMessage::ColumnCount(_) => sets.push((Vec::new(), Vec::new())),
            ServerMessage::ColumnDefinition(column) => {
                if let Some((columns, _)) = sets.last_mut() {
                    columns.push((
                        String::from_utf8_lossy(&column.name).into_owned(),
                        JsonKind::mysql(column.column_type),
                    ));
                }
            }
            ServerMessage::TextRow(row) => {
                if let Some((_, rows)) = sets.last_mut() {
                    rows.push(
                        row.cells()
                            .map(|cell| cell.map(|v| String::from_utf8_lossy(&v).into_owned()))
                            .collect(),
                    );
                }
            }
            ServerMessage::Err(err) => error = Some(describe(&err)),
            ServerMessage::LocalInfileRequest(_) => {
                return Err("LOAD DATA LOCAL INFILE is not available in exec".into());
            }
            _ => {}
        }
        if client.session.pending_responses() == 0 {
            break;
        }
    }
    let _ = client.send(0, &ClientMessage::Command(Command::Quit)).await;
    match error {
        Some(error) => Err(error),
        None => Ok(sets),
    }
}
