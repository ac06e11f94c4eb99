//! The MySQL native listener: a MySQL or MariaDB client connects with the
//! connection's name as its user name and the person's access token as its
//! password.
//!
//! ```text
//!  mariadb                    gateway                                agent
//!   | <------ HandshakeV10 -- |  (the gateway's own greeting)          |
//!   | SSLRequest -----------> |  (with a certificate: CLIENT_SSL)      |
//!   | <=== TLS handshake ===> |  (then everything below over TLS)      |
//!   | HandshakeResponse41 --> |  (user = connection name)              |
//!   | <- AuthSwitchRequest -- |  (mysql_clear_password)                |
//!   | token ----------------> |  token, access, mode, agent online     |
//!   |                         | -- OPEN ----------------------------> | MysqlProxy (AllowAll)
//!   |                         | <---------- driver's HandshakeV10 --- | <-- database
//!   |                         | -- HandshakeResponse41 (client's ---> |
//!   |                         |    capabilities, user, db, attrs)     |
//!   |                         | <------------------------------ OK -- |
//!   | <-------------------OK- |                                       |
//!   | <====================== relay (DATA frames) ==================> |
//! ```
//!
//! The greeting comes before the client names the connection, so the
//! gateway cannot show the server's; it offers a conservative capability
//! set every MySQL 5.7+ and MariaDB 10.x server has, plus MariaDB's
//! metadata cache, which hoop's driver offers whatever the server (it
//! announces the metadata itself to a server without it), and refuses the
//! session when the driver's greeting lacks one the client took that
//! changes the wire format. Refusals reach the client as an ERR packet.
//!
//! With a certificate, the greeting offers CLIENT_SSL (to the client only:
//! the driver's leg is the gateway's own), and a plain-text client off
//! loopback is refused after its HandshakeResponse, in the place of the
//! auth switch that would ask for the token ([`crate::client_tls`]).
//!
//! For the agent `hoop up` embeds, the driver runs in this process
//! ([`crate::in_place`]): the same login goes to it over an in-memory
//! duplex, and the session's bytes follow the same way.

use std::net::IpAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hoop_proxy::link::messages::SessionEnd;
use hoop_proxy::link::mux::{Inbound, PumpEnd, PumpReport, StreamReceiver, StreamSender, pump};
use hoop_proxy::mysql::error;
use hoop_proxy::stream::Stream;
use hoop_wire::mysql::{
    AuthSwitchRequest, ClientMessage, ErrPacket, Handshake, HandshakeResponse, Limits, OkPacket,
    ServerMessage, Session, capability, encode_packet,
};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::api::AppState;
use crate::client_tls;
use crate::listeners;
use crate::live::LiveSession;
use crate::session_stream::{Farewell, Protocol, SessionStream, Start};
use crate::sessions::{self, AccessKind, RefusalReason, Request, Route};
use crate::{handoff, in_place};

/// Time the agent's driver gets to answer the login the gateway makes for
/// the client (the client's own time is the listener's login timeout).
const DRIVER_LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// CLIENT_FOUND_ROWS: affected rows count matched rows.
const FOUND_ROWS: u64 = 1 << 1;
/// CLIENT_LONG_FLAG: all column flags.
const LONG_FLAG: u64 = 1 << 2;
/// CLIENT_IGNORE_SPACE: spaces after function names.
const IGNORE_SPACE: u64 = 1 << 8;
/// CLIENT_INTERACTIVE: the interactive timeout applies.
const INTERACTIVE: u64 = 1 << 10;
/// CLIENT_IGNORE_SIGPIPE: client-side only.
const IGNORE_SIGPIPE: u64 = 1 << 12;
/// CLIENT_TRANSACTIONS: status flags carry the transaction state.
const TRANSACTIONS: u64 = 1 << 13;
/// CLIENT_PS_MULTI_RESULTS: several result sets per COM_STMT_EXECUTE.
const PS_MULTI_RESULTS: u64 = 1 << 18;

/// What the gateway's greeting offers, and all it may pass on to the driver:
/// MySQL's 4.1 protocol with plugin authentication, attributes,
/// multi-statements, session tracking and EOF-less result sets, which MySQL
/// 5.7+ and MariaDB 10.2+ all have, and MariaDB's metadata cache, which
/// hoop's driver offers for every server (a prepared statement's
/// executions then skip the column definitions the client already has:
/// a quarter of a point select's bytes). No compression (the driver must
/// read the packets), no LOCAL INFILE, no other MariaDB extension; and no
/// LONG_PASSWORD, whose bit tells MariaDB clients to ignore the extended
/// capabilities. CLIENT_SSL is not here: the greeting adds it when the
/// gateway has a certificate, and it concerns the client's leg alone.
const OFFERED: u64 = capability::MARIADB_CACHE_METADATA
    | FOUND_ROWS
    | LONG_FLAG
    | capability::CONNECT_WITH_DB
    | IGNORE_SPACE
    | capability::PROTOCOL_41
    | INTERACTIVE
    | IGNORE_SIGPIPE
    | TRANSACTIONS
    | capability::SECURE_CONNECTION
    | capability::MULTI_STATEMENTS
    | capability::MULTI_RESULTS
    | PS_MULTI_RESULTS
    | capability::PLUGIN_AUTH
    | capability::CONNECT_ATTRS
    | capability::PLUGIN_AUTH_LENENC_CLIENT_DATA
    | capability::SESSION_TRACK
    | capability::DEPRECATE_EOF;

/// Capabilities that change how packets look after the login: if the client
/// took one and the driver does not offer it, relaying would desynchronise
/// the client (an OK read as an EOF, session-state bytes read as a message).
const WIRE_FORMAT: u64 = capability::PROTOCOL_41
    | capability::MARIADB_CACHE_METADATA
    | capability::SESSION_TRACK
    | capability::DEPRECATE_EOF
    | capability::MULTI_RESULTS
    | PS_MULTI_RESULTS;

/// The plugin named in the greeting: what clients answer by default.
const GREETING_PLUGIN: &[u8] = b"mysql_native_password";
/// The plugin the client is switched to, so it sends the token itself.
const CLEAR_PASSWORD: &[u8] = b"mysql_clear_password";
/// Length of the greeting's challenge (as MySQL's).
const SCRAMBLE_LEN: usize = 20;
/// utf8mb4_general_ci: the collation announced in the greeting.
const GREETING_CHARSET: u8 = 45;
/// SERVER_STATUS_AUTOCOMMIT, as a fresh server connection reports.
const STATUS_AUTOCOMMIT: u16 = 0x0002;
/// The version the greeting shows; the real server's is unknown until a
/// connection is named (`SELECT VERSION()` then shows it). libmariadb
/// reads the extended capabilities, the metadata cache among them, only
/// from a version with MariaDB's `5.5.5-` prefix that names MariaDB (as
/// seen with libmariadb 3.3: either missing, it takes none); MySQL's
/// clients read it as they read any MariaDB server's.
const GREETING_VERSION: &[u8] = b"5.5.5-10.11.99-MariaDB-hoop-gateway";

/// ER_ACCESS_DENIED_ERROR.
const ACCESS_DENIED: u16 = 1045;
/// ER_DBACCESS_DENIED_ERROR: no such (visible) connection.
const DB_ACCESS_DENIED: u16 = 1044;
/// ER_SPECIFIC_ACCESS_DENIED_ERROR: the access mode is disabled.
const SPECIFIC_ACCESS_DENIED: u16 = 1227;
/// ER_NOT_SUPPORTED_AUTH_MODE: the client cannot send the token, or the
/// connection speaks another protocol.
const NOT_SUPPORTED: u16 = 1251;
/// The agent's driver broke the login or the link was lost during it
/// (ER_NET_READ_ERROR, 08S01: a communication failure). Never a code of
/// 2000 and up, such as CR_CONNECTION_ERROR: those are the client
/// library's own, and libmariadb reports an ERR carrying one as `ERROR
/// 2027 Received malformed packet` instead of its message.
const LINK_FAILURE: (u16, &[u8; 5]) = error::PROTOCOL_VIOLATION;
/// No agent or database to serve the session: ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
/// as hoop's driver says when it cannot reach the database server.
const UNAVAILABLE: u16 = error::UNABLE_TO_CONNECT.0;
/// ER_UNKNOWN_ERROR.
const UNKNOWN_ERROR: u16 = 1105;
/// ER_CON_COUNT_ERROR: the listener is at its cap (a full server's answer
/// in the place of its greeting).
const CON_COUNT_ERROR: u16 = 1040;
/// ER_SECURE_TRANSPORT_REQUIRED (MySQL 5.7's `require_secure_transport`
/// refusal): a plain-text login off loopback when TLS is on offer.
const SECURE_TRANSPORT_REQUIRED: u16 = 3159;

/// Accepts MySQL clients until the task is dropped, at most
/// `limits.max_connections` at once, each with `limits.login_timeout` to
/// log in; with `tls`, offers TLS to each.
pub(crate) async fn serve_mysql(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: AppState,
    limits: listeners::Limits,
) {
    hoop_proxy::listener::serve_limited(
        listener,
        "mysql",
        limits.max_connections,
        |stream, peer| {
            let state = state.clone();
            let tls = tls.clone();
            async move {
                let client = mysql_client(stream, peer.ip(), tls.as_ref(), &state, limits);
                if let Err(error) = client.await {
                    tracing::info!(%error, "mysql client ended");
                }
            }
        },
        move |mut stream, _peer| async move {
            // The server speaks first: a full server's ERR comes in the
            // place of its greeting (sequence id 0), and clients show it.
            let message = listeners::at_capacity(limits.max_connections);
            let refusal = packet(
                0,
                &ServerMessage::Err(ErrPacket::new(CON_COUNT_ERROR, b"08004", &message)),
            );
            listeners::say_and_close(&mut stream, &refusal).await;
        },
    )
    .await;
}

/// Why a client's login failed before a session existed.
#[derive(Debug, thiserror::Error)]
enum StartupError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Decode(#[from] hoop_wire::DecodeError),
    #[error("the client closed during the login")]
    Closed,
    #[error("the login took too long")]
    Timeout,
    #[error("unexpected {0} during the login")]
    Unexpected(&'static str),
    #[error("random source: {0}")]
    Random(#[from] crate::crypto::CryptoError),
}

/// The client's login as read by the gateway.
struct Login {
    response: HandshakeResponse,
    token: String,
    /// The sequence id of the gateway's next packet to the client.
    seq: u8,
    /// The connection id the greeting told the client.
    thread_id: u32,
}

fn packet(seq: u8, message: &ServerMessage) -> BytesMut {
    let mut payload = BytesMut::new();
    message.encode_payload(&mut payload);
    let mut out = BytesMut::with_capacity(payload.len() + 4);
    encode_packet(&mut out, seq, &payload);
    out
}

/// Writes `bytes` to the client and flushes: a TLS stream may hold the
/// record until flushed.
async fn send(stream: &mut (impl AsyncWrite + Unpin), bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// Sends an ERR packet; the client shows `message`.
async fn send_err(stream: &mut Stream, seq: u8, code: u16, state: &[u8; 5], message: &str) {
    let out = packet(
        seq,
        &ServerMessage::Err(ErrPacket::new(code, state, message)),
    );
    let _ = send(stream, &out).await;
    let _ = stream.shutdown().await;
}

async fn next_client(
    stream: &mut Stream,
    session: &mut Session,
    buffer: &mut BytesMut,
) -> Result<(u8, ClientMessage), StartupError> {
    loop {
        if let Some((packet, message)) = session.decode_client(buffer)? {
            return Ok((packet.seq, message));
        }
        if stream.read_buf(buffer).await? == 0 {
            return Err(StartupError::Closed);
        }
    }
}

fn without_nul(data: &[u8]) -> &[u8] {
    data.strip_suffix(&[0]).unwrap_or(data)
}

/// Greets the client (offering TLS when `tls` is set), upgrades to TLS when
/// it asks, and reads its login and token. `None` when the client was
/// refused (and told) before it was asked for the token.
async fn read_login(
    mut tcp: TcpStream,
    peer: IpAddr,
    tls: Option<&TlsAcceptor>,
    buffer: &mut BytesMut,
) -> Result<Option<(Stream, Login)>, StartupError> {
    let mut scramble: Vec<u8> = crate::crypto::random_bytes::<SCRAMBLE_LEN>()?
        .iter()
        // Printable, never NUL: clients read it as a C string.
        .map(|b| b'!' + b % (b'~' - b'!'))
        .collect();
    scramble.push(0);
    let thread_id = told_thread_id()?;
    let greeting = ServerMessage::Handshake(Handshake {
        server_version: Bytes::from_static(GREETING_VERSION),
        connection_id: thread_id,
        auth_plugin_data_len: scramble.len() as u8,
        auth_plugin_data: Bytes::from(scramble.clone()),
        capabilities: greeting_capabilities(tls.is_some()),
        charset: GREETING_CHARSET,
        status: STATUS_AUTOCOMMIT,
        auth_plugin_name: Some(Bytes::from_static(GREETING_PLUGIN)),
    });
    let greeting = packet(0, &greeting).freeze();
    send(&mut tcp, &greeting).await?;
    read_first_packet(&mut tcp, buffer).await?;
    let mut stream = Stream::Plain(tcp);
    // The session follows the conversation from our own greeting.
    let mut session = session_after(&greeting)?;
    let (seq, message) = match next_client(&mut stream, &mut session, buffer).await? {
        (_, ClientMessage::SslRequest(_)) => {
            let (Some(acceptor), Stream::Plain(tcp)) = (tls, stream) else {
                // The client expects a TLS handshake, not an ERR.
                return Err(StartupError::Unexpected("SSLRequest without TLS on offer"));
            };
            // Nothing past the SSLRequest was read (`read_first_packet`):
            // whatever follows goes to TLS, and only what decrypts is read
            // as the login.
            debug_assert!(buffer.is_empty());
            stream = Stream::TlsServer(Box::new(acceptor.accept(tcp).await?));
            // The login starts over inside TLS, its sequence ids going on
            // from the SSLRequest's (the HandshakeResponse comes as 2).
            session = session_after(&greeting)?;
            next_client(&mut stream, &mut session, buffer).await?
        }
        read => read,
    };
    let response = match message {
        ClientMessage::HandshakeResponse(response) => response,
        other => return Err(StartupError::Unexpected(other.name())),
    };
    let seq = seq.wrapping_add(1);
    if client_tls::refuses_plain_text(tls.is_some(), stream.is_tls(), peer) {
        tracing::info!(%peer, "mysql client refused: plain text off loopback");
        send_err(
            &mut stream,
            seq,
            SECURE_TRANSPORT_REQUIRED,
            b"HY000",
            client_tls::MYSQL_REFUSAL,
        )
        .await;
        return Ok(None);
    }
    if response.auth_plugin_name.as_deref() == Some(CLEAR_PASSWORD) {
        let token = String::from_utf8_lossy(without_nul(&response.auth_response)).into_owned();
        let login = Login {
            response,
            token,
            seq,
            thread_id,
        };
        return Ok(Some((stream, login)));
    }
    if response.capabilities & capability::PLUGIN_AUTH == 0 {
        send_err(
            &mut stream,
            seq,
            NOT_SUPPORTED,
            b"08004",
            "the client cannot switch to mysql_clear_password, which the gateway needs to receive the access token",
        )
        .await;
        return Err(StartupError::Unexpected(
            "a login without plugin authentication",
        ));
    }
    let mut switch = packet(
        seq,
        &ServerMessage::AuthSwitchRequest(AuthSwitchRequest {
            plugin: Bytes::from_static(CLEAR_PASSWORD),
            data: Bytes::from(scramble),
        }),
    );
    send(&mut stream, &switch).await?;
    session.decode_server(&mut switch)?;
    let (seq, message) = next_client(&mut stream, &mut session, buffer).await?;
    let ClientMessage::AuthData(data) = message else {
        return Err(StartupError::Unexpected(message.name()));
    };
    let login = Login {
        response,
        token: String::from_utf8_lossy(without_nul(&data.data)).into_owned(),
        seq: seq.wrapping_add(1),
        thread_id,
    };
    Ok(Some((stream, login)))
}

/// Reads the client's first packet as far as an SSLRequest goes, leaving
/// whatever follows it in the socket for the TLS acceptor
/// ([`hoop_proxy::mysql::read_first_packet`]).
async fn read_first_packet(tcp: &mut TcpStream, buffer: &mut BytesMut) -> Result<(), StartupError> {
    hoop_proxy::mysql::read_first_packet(tcp, buffer)
        .await
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::UnexpectedEof => StartupError::Closed,
            _ => StartupError::Io(error),
        })
}

/// The connection id the greeting tells a client, before any server is
/// chosen: random, with the top bit set, so that it never names a real
/// server thread (servers count theirs up from 1). A `KILL QUERY` naming
/// it is translated by the session's driver to the thread it stands for
/// ([`hoop_proxy::mysql::ThreadRegistry`]).
fn told_thread_id() -> Result<u32, StartupError> {
    let random = u32::from_be_bytes(crate::crypto::random_bytes::<4>()?);
    Ok(random | 0x8000_0000)
}

/// What the greeting offers: [`OFFERED`], and CLIENT_SSL with a certificate.
fn greeting_capabilities(tls: bool) -> u64 {
    if tls {
        OFFERED | capability::SSL
    } else {
        OFFERED
    }
}

/// A session state that has seen `greeting` (one whole packet).
fn session_after(greeting: &[u8]) -> Result<Session, StartupError> {
    let mut session = Session::new(Limits::default());
    session.decode_server(&mut BytesMut::from(greeting))?;
    Ok(session)
}

/// The capabilities the gateway logs in to the driver with, from what the
/// client took and what the driver's greeting offers; `Err` with the
/// wire-format capabilities the client took and the driver lacks. Only
/// [`OFFERED`] passes: CLIENT_SSL in particular describes the client's leg,
/// and the driver's leg (the link, or an in-memory duplex) never starts
/// TLS, so the driver must not see it.
fn driver_capabilities(client: u64, driver: u64) -> Result<u64, u64> {
    let negotiated = client & OFFERED;
    let missing = negotiated & WIRE_FORMAT & !driver;
    if missing != 0 {
        return Err(missing);
    }
    Ok((negotiated & driver)
        | capability::PROTOCOL_41
        | capability::SECURE_CONNECTION
        | capability::PLUGIN_AUTH)
}

fn refusal_code(reason: RefusalReason) -> (u16, &'static [u8; 5]) {
    match reason {
        RefusalReason::Token => (ACCESS_DENIED, b"28000"),
        RefusalReason::NotFound => (DB_ACCESS_DENIED, b"42000"),
        RefusalReason::Protocol => (NOT_SUPPORTED, b"08004"),
        RefusalReason::ModeDisabled | RefusalReason::ReviewRequired => {
            (SPECIFIC_ACCESS_DENIED, b"42000")
        }
        RefusalReason::Offline => (UNAVAILABLE, b"08001"),
        RefusalReason::Internal => (UNKNOWN_ERROR, b"HY000"),
    }
}

/// How the login through the driver ended.
enum DriverLogin {
    /// The driver accepted; any bytes that followed its OK.
    Ok(Bytes),
    /// The driver or the agent refused; the client was told, with this
    /// reason for the record.
    Refused(String),
    /// The link was lost.
    LinkLost,
}

/// The gateway's side of the driver while it logs in for the client: the
/// agent's link stream, or a duplex to a driver in this process.
trait DriverLeg {
    /// Sends bytes to the driver; false when the link is gone.
    async fn send(&mut self, data: Bytes) -> bool;
    /// The driver's next bytes, or its end; `None` when the link was lost.
    async fn recv(&mut self) -> Option<Inbound>;
}

/// A session stream over the agent's link.
struct LinkLeg {
    sender: StreamSender,
    receiver: StreamReceiver,
}

impl DriverLeg for LinkLeg {
    async fn send(&mut self, data: Bytes) -> bool {
        self.sender.send(data).await.is_ok()
    }

    async fn recv(&mut self) -> Option<Inbound> {
        self.receiver.recv().await
    }
}

/// The gateway's end of a duplex whose other end an in-place driver serves.
struct InPlaceLeg(DuplexStream);

impl DriverLeg for InPlaceLeg {
    async fn send(&mut self, data: Bytes) -> bool {
        // The driver reads the duplex until it ends the session; a failed
        // write means it ended, which the next read reports.
        let _ = self.0.write_all(&data).await;
        true
    }

    async fn recv(&mut self) -> Option<Inbound> {
        let mut buffer = BytesMut::with_capacity(4096);
        Some(match self.0.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => Inbound::Close(Bytes::new()),
            Ok(_) => Inbound::Data(buffer.freeze()),
        })
    }
}

/// The next packet from the driver, reading stream data as needed.
async fn next_driver(
    leg: &mut impl DriverLeg,
    session: &mut Session,
    buffer: &mut BytesMut,
) -> Result<Option<(hoop_wire::mysql::Packet, ServerMessage)>, Option<String>> {
    loop {
        match session.decode_server(buffer) {
            Ok(Some(found)) => return Ok(Some(found)),
            Ok(None) => {}
            Err(error) => return Err(Some(format!("the agent's driver sent {error}"))),
        }
        match leg.recv().await {
            Some(Inbound::Data(data)) => buffer.extend_from_slice(&data),
            Some(Inbound::Close(reason)) => {
                let message = serde_json::from_slice::<SessionEnd>(&reason)
                    .ok()
                    .and_then(|end| end.error)
                    .unwrap_or_else(|| "the agent ended the session".into());
                return Err(Some(message));
            }
            None => return Ok(None),
        }
    }
}

/// Logs in to the agent's driver as the client would, then answers the
/// client with OK or the driver's ERR.
async fn driver_login(
    stream: &mut Stream,
    login: &Login,
    leg: &mut impl DriverLeg,
) -> Result<DriverLogin, StartupError> {
    let mut session = Session::new(Limits::default());
    let mut buffer = BytesMut::new();
    let greeting = match next_driver(leg, &mut session, &mut buffer).await {
        Ok(Some((_, ServerMessage::Handshake(handshake)))) => handshake,
        Ok(Some((_, ServerMessage::Err(err)))) => {
            // The database refused the driver: pass the reason on.
            let message = String::from_utf8_lossy(&err.message).into_owned();
            send_err(
                stream,
                login.seq,
                err.code,
                &err.sql_state.unwrap_or(*b"HY000"),
                &message,
            )
            .await;
            return Ok(DriverLogin::Refused(message));
        }
        Ok(Some((_, other))) => {
            let message = format!(
                "the agent's driver sent {} before its greeting",
                other.name()
            );
            send_err(stream, login.seq, LINK_FAILURE.0, LINK_FAILURE.1, &message).await;
            return Ok(DriverLogin::Refused(message));
        }
        Ok(None) => return Ok(DriverLogin::LinkLost),
        Err(message) => {
            let message = message.unwrap_or_default();
            send_err(stream, login.seq, LINK_FAILURE.0, LINK_FAILURE.1, &message).await;
            return Ok(DriverLogin::Refused(message));
        }
    };
    let capabilities = match driver_capabilities(login.response.capabilities, greeting.capabilities)
    {
        Ok(capabilities) => capabilities,
        Err(missing) => {
            let message = format!(
                "the database lacks capabilities this client negotiated ({missing:#x}); connect with fewer options or through hoop connect"
            );
            send_err(stream, login.seq, NOT_SUPPORTED, b"08004", &message).await;
            return Ok(DriverLogin::Refused(message));
        }
    };
    let response = ClientMessage::HandshakeResponse(HandshakeResponse {
        capabilities,
        max_packet_size: login.response.max_packet_size,
        charset: login.response.charset,
        username: login.response.username.clone(),
        // The driver runs with AllowAll: the gateway checked the token.
        auth_response: Bytes::new(),
        database: if capabilities & capability::CONNECT_WITH_DB != 0 {
            Some(login.response.database.clone().unwrap_or_default())
        } else {
            None
        },
        auth_plugin_name: greeting.auth_plugin_name.clone(),
        attributes: if capabilities & capability::CONNECT_ATTRS != 0 {
            Some(login.response.attributes.clone().unwrap_or_default())
        } else {
            None
        },
        trailer: Bytes::new(),
    });
    let mut payload = BytesMut::new();
    response.encode_payload(&mut payload);
    let mut wire = BytesMut::new();
    encode_packet(&mut wire, 1, &payload);
    session.decode_client(&mut wire.clone())?;
    if !leg.send(wire.freeze()).await {
        return Ok(DriverLogin::LinkLost);
    }
    match next_driver(leg, &mut session, &mut buffer).await {
        Ok(Some((_, ServerMessage::Ok(ok)))) => {
            let answer = ServerMessage::Ok(OkPacket {
                header: ok.header,
                affected_rows: ok.affected_rows,
                last_insert_id: ok.last_insert_id,
                status: ok.status,
                warnings: ok.warnings,
                info: if login.response.capabilities & capability::SESSION_TRACK != 0 {
                    ok.info
                } else {
                    Bytes::new()
                },
            });
            send(stream, &packet(login.seq, &answer)).await?;
            Ok(DriverLogin::Ok(buffer.freeze()))
        }
        Ok(Some((_, ServerMessage::Err(err)))) => {
            let message = String::from_utf8_lossy(&err.message).into_owned();
            send_err(
                stream,
                login.seq,
                err.code,
                &err.sql_state.unwrap_or(*b"HY000"),
                &message,
            )
            .await;
            Ok(DriverLogin::Refused(message))
        }
        Ok(Some((_, other))) => {
            let message = format!(
                "the agent's driver answered the login with {}",
                other.name()
            );
            send_err(stream, login.seq, LINK_FAILURE.0, LINK_FAILURE.1, &message).await;
            Ok(DriverLogin::Refused(message))
        }
        Ok(None) => Ok(DriverLogin::LinkLost),
        Err(message) => {
            let message = message.unwrap_or_default();
            send_err(stream, login.seq, LINK_FAILURE.0, LINK_FAILURE.1, &message).await;
            Ok(DriverLogin::Refused(message))
        }
    }
}

async fn mysql_client(
    tcp: TcpStream,
    peer: IpAddr,
    tls: Option<&TlsAcceptor>,
    state: &AppState,
    limits: listeners::Limits,
) -> Result<(), StartupError> {
    let mut buffer = BytesMut::with_capacity(1024);
    let login = tokio::time::timeout(
        limits.login_timeout,
        read_login(tcp, peer, tls, &mut buffer),
    )
    .await
    .map_err(|_| StartupError::Timeout)??;
    let Some((mut stream, login)) = login else {
        return Ok(());
    };
    let connection = String::from_utf8_lossy(&login.response.username).into_owned();
    let request = Request {
        token: &login.token,
        connection: &connection,
        kind: AccessKind::Connect,
        protocol: Some("mysql"),
        script: None,
        output: None,
        client_thread_id: Some(login.thread_id),
        review: None,
    };
    let opened = match sessions::open(state, request).await {
        Ok(opened) => opened,
        Err(refused) => {
            let (code, sql_state) = refusal_code(refused.reason);
            send_err(&mut stream, login.seq, code, sql_state, &refused.message).await;
            return Ok(());
        }
    };
    match opened.route {
        Route::Link { sender, receiver } => {
            let leg = LinkLeg { sender, receiver };
            relay_over_link(
                stream,
                buffer,
                &login,
                leg,
                state,
                (&opened.id, &opened.live),
            )
            .await
        }
        Route::InPlace(open) => match in_place::prepare(state, &open) {
            Ok(session) => {
                let (leg, driver_end) = tokio::io::duplex(LOGIN_BUFFER);
                let (driver_io, handover) = handoff::handoff(driver_end);
                let driver = tokio::spawn(in_place::serve(session, driver_io));
                let leg = InPlaceLeg(leg);
                let session = (opened.id.as_str(), &opened.live);
                let handed = hand_over(stream, buffer, &login, leg, handover, state, session).await;
                // The driver ends with the client's session (or at once,
                // when the login failed); its last audit events are queued
                // by then.
                let served = driver.await.unwrap_or_default();
                if let Ok(true) = handed {
                    let (status, error) = served.outcome();
                    let (status, error) = opened.live.outcome(status, error);
                    let (bytes_in, bytes_out) = (served.bytes_in, served.bytes_out);
                    sessions::finish(state, &opened.id, status, error, bytes_in, bytes_out).await;
                }
                handed.map(drop)
            }
            Err(error) => {
                let message = error.to_string();
                send_err(&mut stream, login.seq, UNAVAILABLE, b"08001", &message).await;
                sessions::finish(state, &opened.id, "failed", Some(message), 0, 0).await;
                Ok(())
            }
        },
    }
}

/// Bytes the login duplex to an in-place driver holds per direction: the
/// login's few packets.
const LOGIN_BUFFER: usize = 16 * 1024;

/// Logs in through the driver; on success returns the bytes that followed
/// its OK. Otherwise the client was told and the session is recorded.
async fn login_through(
    stream: &mut Stream,
    login: &Login,
    leg: &mut impl DriverLeg,
    state: &AppState,
    id: &str,
) -> Result<Option<Bytes>, StartupError> {
    let logged_in = tokio::time::timeout(DRIVER_LOGIN_TIMEOUT, driver_login(stream, login, leg))
        .await
        .unwrap_or(Ok(DriverLogin::Refused(
            "the agent did not answer the login in time".into(),
        )));
    let (error, lost) = match logged_in {
        Ok(DriverLogin::Ok(pending)) => return Ok(Some(pending)),
        Ok(DriverLogin::LinkLost) => (sessions::AGENT_GONE.to_owned(), true),
        Ok(DriverLogin::Refused(message)) => (message, false),
        Err(error) => {
            sessions::finish(state, id, "failed", Some(error.to_string()), 0, 0).await;
            return Err(error);
        }
    };
    if lost {
        send_err(
            stream,
            login.seq,
            LINK_FAILURE.0,
            LINK_FAILURE.1,
            sessions::AGENT_GONE,
        )
        .await;
    }
    sessions::finish(state, id, "failed", Some(error), 0, 0).await;
    Ok(None)
}

/// Logs in to a driver running in this process, then hands it the
/// client's stream (see [`crate::handoff`]), so the session's bytes never
/// cross the login duplex. `Ok(true)` once handed over; otherwise the
/// client was told and the session is recorded.
async fn hand_over(
    mut stream: Stream,
    buffer: BytesMut,
    login: &Login,
    mut leg: InPlaceLeg,
    handover: handoff::Handover<SessionStream<Stream>>,
    state: &AppState,
    (id, live): (&str, &LiveSession),
) -> Result<bool, StartupError> {
    let Some(pending) = login_through(&mut stream, login, &mut leg, state, id).await? else {
        return Ok(false);
    };
    let mut stream = watched(stream, live, &buffer);
    if let Err(error) = send(&mut stream, &pending).await {
        sessions::finish(state, id, "failed", Some(error.to_string()), 0, 0).await;
        return Err(error.into());
    }
    // A driver that ended right after its OK finds the duplex closed and
    // the session is over; nothing else to do with the stream then.
    let _ = handover.give(buffer.freeze(), stream);
    Ok(true)
}

/// A session over the agent's link.
async fn relay_over_link(
    mut stream: Stream,
    mut buffer: BytesMut,
    login: &Login,
    mut leg: LinkLeg,
    state: &AppState,
    (id, live): (&str, &LiveSession),
) -> Result<(), StartupError> {
    let pending = match login_through(&mut stream, login, &mut leg, state, id).await {
        Ok(Some(pending)) => pending,
        ended => {
            leg.sender.close(Bytes::new()).await;
            return ended.map(drop);
        }
    };
    let mut stream = watched(stream, live, &buffer);
    let LinkLeg { sender, receiver } = leg;
    let mut received = pending.len() as u64;
    if !pending.is_empty() {
        send(&mut stream, &pending).await?;
    }
    let mut sent = buffer.len() as u64;
    let report = if !buffer.is_empty() && sender.send(buffer.split().freeze()).await.is_err() {
        PumpReport {
            sent,
            received,
            end: PumpEnd::LinkLost,
        }
    } else {
        let mut report = pump(&mut stream, sender, receiver, Some(sessions::LINGER)).await;
        sent += report.sent;
        received += report.received;
        report.sent = sent;
        report.received = received;
        report
    };
    let (status, error) = sessions::outcome(&report);
    if report.end == PumpEnd::LinkLost {
        // Whole packets only reached the client: the ERR goes with the
        // sequence id it expects next, inside a result too.
        stream
            .say_farewell(Farewell::agent_gone(sessions::AGENT_GONE))
            .await;
    }
    let (status, error) = live.outcome(status, error);
    sessions::finish(state, id, status, error, report.sent, report.received).await;
    Ok(())
}

/// The client's stream once logged in, watched from the driver's OK on
/// (the client's packets the gateway read past its login included), so
/// the session can end with an ERR the client reads.
fn watched(stream: Stream, live: &LiveSession, read_past_login: &[u8]) -> SessionStream<Stream> {
    let signal = Some(live.end_signal());
    let mut stream = SessionStream::new(stream, Protocol::Mysql, Start::LoggedIn, signal);
    stream.read_before(read_past_login);
    stream
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the mariadb CLI 10.11 sends over TLS: the greeting's offer it
    /// takes, CLIENT_SSL included, and more the greeting did not offer.
    const MARIADB_CLI: u64 = OFFERED | capability::SSL | capability::LOCAL_FILES;

    #[test]
    fn the_greeting_offers_tls_only_with_a_certificate() {
        assert_eq!(greeting_capabilities(false) & capability::SSL, 0);
        assert_ne!(greeting_capabilities(true) & capability::SSL, 0);
        assert_eq!(greeting_capabilities(true) & !capability::SSL, OFFERED);
        assert_eq!(OFFERED & capability::SSL, 0);
        assert_eq!(WIRE_FORMAT & capability::SSL, 0);
    }

    #[test]
    fn client_ssl_never_reaches_the_driver() {
        // A driver whose greeting offers everything, TLS included (a
        // MariaDB with a certificate would).
        let capabilities = driver_capabilities(MARIADB_CLI, u64::MAX).unwrap();
        assert_eq!(capabilities & capability::SSL, 0, "{capabilities:#x}");
        assert_eq!(capabilities & capability::LOCAL_FILES, 0);
        assert_eq!(capabilities, OFFERED);
    }

    #[test]
    fn a_wire_format_capability_the_driver_lacks_refuses_even_over_tls() {
        let driver = OFFERED & !capability::DEPRECATE_EOF;
        assert_eq!(
            driver_capabilities(MARIADB_CLI, driver),
            Err(capability::DEPRECATE_EOF)
        );
        // Without CLIENT_SSL in the driver's greeting, a TLS client still
        // logs in: the bit is not the driver's business.
        assert_eq!(driver_capabilities(MARIADB_CLI, OFFERED), Ok(OFFERED));
    }
}
