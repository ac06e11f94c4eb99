//! Exec on MySQL connections: a small client of the agent's own speaks to
//! the MySQL driver over an in-memory stream, logs in (the driver runs with
//! `AllowAll`), sends the script as one COM_QUERY (several statements
//! allowed) and writes the text rows out as they arrive, so the
//! connection's policy applies as for the mariadb CLI.
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

use super::exec::Output;
use super::exec_json::JsonKind;
use super::session::{LinkAudit, driven, driver};
use crate::link::messages::OpenSession;
use crate::link::mux::StreamSender;

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

/// Runs `open.script` through the connection's MySQL driver and writes
/// its rows to `output` as they arrive (every result set's, in order).
///
/// # Errors
///
/// The database's (or the policy's) ERR as `ERROR code (state): message`,
/// or why the session could not run.
pub(crate) async fn execute(
    open: &OpenSession,
    sender: &StreamSender,
    audit: &LinkAudit,
    output: &mut Output<'_>,
) -> Result<(), String> {
    let pipeline = audit.pipeline(open, sender).map_err(|e| e.to_string())?;
    let driver = driver(open, pipeline).map_err(|e| e.to_string())?;
    let (driving, mut client) = driven(driver);
    let result = run(&mut client, open, output).await;
    drop(client);
    let _ = driving.await;
    result
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

async fn run(
    stream: &mut DuplexStream,
    open: &OpenSession,
    output: &mut Output<'_>,
) -> Result<(), String> {
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
    // The current result set's columns (name, JSON kind); each row is
    // written as it is decoded, so only one is held.
    let mut columns: Vec<(String, JsonKind)> = Vec::new();
    let mut error = None;
    loop {
        match client.next().await? {
            ServerMessage::ColumnCount(_) => columns.clear(),
            ServerMessage::ColumnDefinition(column) => {
                columns.push((
                    String::from_utf8_lossy(&column.name).into_owned(),
                    JsonKind::mysql(column.column_type),
                ));
            }
            ServerMessage::TextRow(row) => {
                let cells: Vec<Option<String>> = row
                    .cells()
                    .map(|cell| cell.map(|v| String::from_utf8_lossy(&v).into_owned()))
                    .collect();
                output
                    .row(&columns, cells.iter().map(Option::as_deref))
                    .await?;
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
        None => Ok(()),
    }
}
