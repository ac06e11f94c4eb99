//! The server leg: connect to `HOST:PORT`, read the server's greeting, TLS
//! per `SSLMODE`, and log in as the connection's real user with whichever
//! plugin the server asks for: `mysql_native_password`,
//! `caching_sha2_password` (fast path, or full authentication over TLS or
//! with the server's RSA key), MariaDB's `client_ed25519`, and
//! `mysql_clear_password` over TLS only.

use bytes::{Bytes, BytesMut};
use hoop_wire::mysql::{
    ClientMessage, ComChangeUser, Command, ErrPacket, Handshake, HandshakeResponse, Limits,
    ServerMessage, Session, SslRequest, capability,
};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use super::client::CLEAR_PASSWORD;
use super::packet::{self, read_server, session_after_greeting, without_nul};
use super::scramble;
use crate::connection::{DatabaseTarget, SslMode};
use crate::driver::{CONNECT_TIMEOUT, connect_server};
use crate::error::{Culprit, SessionError};
use crate::error::{ServerError, UpstreamTlsError};
use crate::stream::Stream;
use crate::tls::UpstreamTls;

const NATIVE_PASSWORD: &[u8] = b"mysql_native_password";
const CACHING_SHA2: &[u8] = b"caching_sha2_password";
const ED25519: &[u8] = b"client_ed25519";

/// caching_sha2_password's AuthMoreData codes.
mod sha2_code {
    /// The client asks for the server's RSA public key.
    pub(super) const REQUEST_PUBLIC_KEY: u8 = 0x02;
    /// The cached hash matched: an OK follows.
    pub(super) const FAST_AUTH_OK: u8 = 0x03;
    /// The cache missed: send the password itself.
    pub(super) const FULL_AUTH: u8 = 0x04;
}

/// MySQL errors that mean the credentials were refused
/// (ER_ACCESS_DENIED_ERROR, ER_ACCESS_DENIED_NO_PASSWORD_ERROR).
const ACCESS_DENIED_CODES: [u16; 2] = [1045, 1698];

/// The capabilities a login needs from the server.
const LOGIN_CAPABILITIES: u64 =
    capability::PROTOCOL_41 | capability::SECURE_CONNECTION | capability::PLUGIN_AUTH;

/// A server that sent its greeting.
#[derive(Debug)]
pub(crate) struct Greeted {
    tcp: TcpStream,
    buf: BytesMut,
    /// The greeting packet as received.
    packet: Bytes,
    pub(crate) handshake: Handshake,
}

/// What the client's login carries over to the server's.
#[derive(Debug, Clone)]
pub(crate) struct LoginRequest {
    /// The command-phase capabilities both legs use.
    pub(crate) capabilities: u64,
    pub(crate) max_packet_size: u32,
    pub(crate) charset: u8,
    pub(crate) database: Option<Bytes>,
    pub(crate) attributes: Option<Bytes>,
}

/// A server connection that finished its login.
#[derive(Debug)]
pub(crate) struct ServerLeg {
    pub(crate) stream: Stream,
    /// Bytes read after the login's OK.
    pub(crate) buf: BytesMut,
    /// The payload of the server's OK, passed on to the client.
    pub(crate) ok: Bytes,
    /// What a later COM_CHANGE_USER answers with.
    pub(crate) relogin: Relogin,
}

/// What logging in again on the same connection (COM_CHANGE_USER) needs
/// from the first login: the greeting's challenge and plugin, whether the
/// leg is encrypted, and the character set asked for.
#[derive(Debug, Clone)]
pub(crate) struct Relogin {
    plugin: Bytes,
    challenge: Bytes,
    encrypted: bool,
    charset: u8,
}

/// Connects and reads the greeting.
pub(crate) async fn greet(
    target: &DatabaseTarget,
    limits: Limits,
) -> Result<Greeted, SessionError> {
    let tcp = connect_server(target)
        .await
        .map_err(SessionError::Unreachable)?;
    let mut tcp = tcp;
    let mut session = Session::new(limits);
    let mut buf = BytesMut::with_capacity(1024);
    let (packet, message) = read_server(&mut tcp, &mut session, &mut buf).await?;
    let handshake = match message {
        ServerMessage::Handshake(handshake) => handshake,
        ServerMessage::Err(err) => return Err(server_error(&err, target)),
        other => {
            return Err(SessionError::Unexpected {
                culprit: Culprit::Server,
                message: other.name(),
            });
        }
    };
    if handshake.capabilities & LOGIN_CAPABILITIES != LOGIN_CAPABILITIES {
        return Err(SessionError::UnsupportedAuth(
            "a login without the 4.1 protocol, secure connection and plugins",
        ));
    }
    Ok(Greeted {
        tcp,
        buf,
        packet: packet.bytes,
        handshake,
    })
}

/// Turns a server ERR during login into what the client may see: refused
/// credentials in hoop's words, anything else with the real user blotted
/// out.
fn server_error(err: &ErrPacket, target: &DatabaseTarget) -> SessionError {
    if ACCESS_DENIED_CODES.contains(&err.code) {
        return SessionError::CredentialsRefused;
    }
    let mut message = String::from_utf8_lossy(&err.message).into_owned();
    if !target.user.is_empty() {
        message = message.replace(&target.user, "***");
    }
    SessionError::Server(ServerError {
        number: Some(err.code),
        sql_state: String::from_utf8_lossy(&err.sql_state.unwrap_or(*b"HY000")).into_owned(),
        message,
    })
}

/// The plugin's first answer to a challenge; `None` for a plugin hoop does
/// not speak.
fn answer(plugin: &[u8], password: &[u8], nonce: &[u8], tls: bool) -> Option<Vec<u8>> {
    Some(match plugin {
        NATIVE_PASSWORD => scramble::native_password(password, nonce),
        CACHING_SHA2 => scramble::caching_sha2(password, nonce),
        ED25519 => scramble::ed25519(password, nonce),
        // Only where nobody can read it on the way.
        CLEAR_PASSWORD if tls => password.iter().copied().chain([0]).collect(),
        _ => return None,
    })
}

/// The plugin's challenge. MySQL's scrambles (native, caching_sha2) are
/// printable and sent with a terminating NUL, which is not part of them;
/// ed25519's is 32 random bytes, the last of which may well be 0.
fn nonce(plugin: &[u8], data: &Bytes) -> Bytes {
    if plugin == ED25519 {
        data.clone()
    } else {
        data.slice(..without_nul(data).len())
    }
}

/// TLS per `SSLMODE`, then the login as the connection's user.
pub(crate) async fn login(
    greeted: Greeted,
    target: &DatabaseTarget,
    tls: &UpstreamTls,
    limits: Limits,
    request: &LoginRequest,
) -> Result<ServerLeg, SessionError> {
    let Greeted {
        tcp,
        mut buf,
        packet: greeting,
        handshake,
    } = greeted;
    let server_caps = handshake.capabilities;
    let mut capabilities = (request.capabilities | LOGIN_CAPABILITIES) & !capability::SSL;
    capabilities |= server_caps & capability::PLUGIN_AUTH_LENENC_CLIENT_DATA;
    // The flag says a database name follows: a client that sets it with an
    // empty name (mysql-connector-python does) and no DB of the connection
    // leave none to send.
    if request.database.is_some() {
        capabilities |= capability::CONNECT_WITH_DB;
    } else {
        capabilities &= !capability::CONNECT_WITH_DB;
    }
    if request.attributes.is_some() {
        capabilities |= capability::CONNECT_ATTRS;
    }
    let mut seq = 1u8;
    let (mut stream, encrypted) = match tls.connector() {
        Some(connector) if server_caps & capability::SSL != 0 => {
            let mut payload = BytesMut::new();
            ClientMessage::SslRequest(SslRequest {
                capabilities: capabilities | capability::SSL,
                max_packet_size: request.max_packet_size,
                charset: request.charset,
            })
            .encode_payload(&mut payload);
            let mut tcp = tcp;
            packet::write(&mut tcp, seq, &payload, Culprit::Server).await?;
            seq += 1;
            if !buf.is_empty() {
                return Err(SessionError::Unexpected {
                    culprit: Culprit::Server,
                    message: "data before the TLS handshake",
                });
            }
            let encrypted = UpstreamTls::encrypt(connector, &target.host, tcp)
                .await
                .map_err(SessionError::UpstreamTls)?;
            capabilities |= capability::SSL;
            (encrypted, true)
        }
        Some(_) if tls.mode() != SslMode::Prefer => {
            return Err(SessionError::UpstreamTls(
                UpstreamTlsError::ServerWithoutTls,
            ));
        }
        _ => (Stream::Plain(tcp), false),
    };

    let password = target
        .password
        .as_ref()
        .map(|p| p.expose().as_bytes())
        .unwrap_or_default();
    let plugin = handshake
        .auth_plugin_name
        .clone()
        .unwrap_or_else(|| Bytes::from_static(NATIVE_PASSWORD));
    let nonce = nonce(&plugin, &handshake.auth_plugin_data);
    // A default plugin hoop does not speak gets an empty answer; the server
    // then switches to the account's own plugin.
    let first = answer(&plugin, password, &nonce, encrypted).unwrap_or_default();
    let response = HandshakeResponse {
        capabilities,
        max_packet_size: request.max_packet_size,
        charset: request.charset,
        username: Bytes::copy_from_slice(target.user.as_bytes()),
        auth_response: first.into(),
        database: request.database.clone(),
        auth_plugin_name: Some(plugin.clone()),
        attributes: request.attributes.clone(),
        trailer: Bytes::new(),
    };
    let mut payload = BytesMut::new();
    ClientMessage::HandshakeResponse(response).encode_payload(&mut payload);
    packet::write(&mut stream, seq, &payload, Culprit::Server).await?;

    // The codec classifies the server's authentication packets once it has
    // seen the greeting and the login.
    let mut session = session_after_greeting(limits, &greeting)?;
    let mut login = BytesMut::new();
    hoop_wire::mysql::encode_packet(&mut login, seq, &payload);
    session
        .decode_client(&mut login)
        .map_err(SessionError::server_protocol)?;

    let relogin = Relogin {
        plugin: plugin.clone(),
        challenge: handshake.auth_plugin_data.clone(),
        encrypted,
        charset: request.charset,
    };
    let exchange = Exchange {
        session: &mut session,
        buf: &mut buf,
        plugin,
        nonce,
        password,
        encrypted,
    };
    let ok = exchange.run(&mut stream, target).await?;
    Ok(ServerLeg {
        stream,
        buf,
        ok,
        relogin,
    })
}

/// COM_CHANGE_USER on a logged-in server leg, as the connection's own
/// account: the server resets the session (variables, temporary tables,
/// prepared statements, an open transaction) and checks the credentials
/// again; `database` and `charset` are the client's request. Returns the
/// server's OK payload.
pub(crate) async fn change_user(
    stream: &mut Stream,
    relogin: &Relogin,
    target: &DatabaseTarget,
    limits: Limits,
    capabilities: u64,
    database: Option<Bytes>,
    charset: Option<u16>,
) -> Result<Bytes, SessionError> {
    let password = target
        .password
        .as_ref()
        .map(|p| p.expose().as_bytes())
        .unwrap_or_default();
    let plugin = relogin.plugin.clone();
    let nonce = nonce(&plugin, &relogin.challenge);
    let first = answer(&plugin, password, &nonce, relogin.encrypted).unwrap_or_default();
    let request = ComChangeUser {
        user: Bytes::copy_from_slice(target.user.as_bytes()),
        auth_response: first.into(),
        database: database.unwrap_or_default(),
        charset: Some(charset.unwrap_or(u16::from(relogin.charset))),
        auth_plugin_name: Some(plugin.clone()),
        // MariaDB and MySQL read an attributes block whenever the login
        // negotiated CLIENT_CONNECT_ATTRS, and refuse the command without one.
        attributes: Some(Bytes::new()),
    };
    let mut payload = BytesMut::new();
    request.encode(capabilities, &mut payload);
    packet::write(stream, 0, &payload, Culprit::Server).await?;
    let mut session = Session::after_handshake(limits, capabilities);
    let mut sent = BytesMut::new();
    hoop_wire::mysql::encode_packet(&mut sent, 0, &payload);
    session
        .decode_client(&mut sent)
        .map_err(SessionError::server_protocol)?;
    let mut buf = BytesMut::new();
    let exchange = Exchange {
        session: &mut session,
        buf: &mut buf,
        plugin,
        nonce,
        password,
        encrypted: relogin.encrypted,
    };
    let ok = exchange.run(stream, target).await?;
    if !buf.is_empty() {
        return Err(SessionError::Unexpected {
            culprit: Culprit::Server,
            message: "data after COM_CHANGE_USER's OK",
        });
    }
    Ok(ok)
}

/// One authentication exchange with the server, from hoop's first answer
/// to the server's OK.
struct Exchange<'a> {
    session: &'a mut Session,
    buf: &'a mut BytesMut,
    plugin: Bytes,
    nonce: Bytes,
    password: &'a [u8],
    encrypted: bool,
}

impl Exchange<'_> {
    /// Answers the server until its OK (whose payload it returns) or ERR.
    async fn run(
        self,
        stream: &mut Stream,
        target: &DatabaseTarget,
    ) -> Result<Bytes, SessionError> {
        let Self {
            session,
            buf,
            mut plugin,
            mut nonce,
            password,
            encrypted,
        } = self;
        let mut asked_for_key = false;
        loop {
            let (packet, message) = read_server(stream, session, buf).await?;
            let next = packet.seq.wrapping_add(1);
            match message {
                ServerMessage::Ok(_) => return Ok(packet.payload),
                ServerMessage::Err(err) => return Err(server_error(&err, target)),
                ServerMessage::AuthSwitchRequest(switch) => {
                    plugin = switch.plugin;
                    nonce = self::nonce(&plugin, &switch.data);
                    asked_for_key = false;
                    let data = answer(&plugin, password, &nonce, encrypted).ok_or(
                        SessionError::UnsupportedAuth(
                            "an authentication plugin hoop does not speak",
                        ),
                    )?;
                    packet::write(stream, next, &data, Culprit::Server).await?;
                }
                ServerMessage::AuthMoreData(more) if plugin.as_ref() == CACHING_SHA2 => {
                    match more.data.first() {
                        _ if asked_for_key => {
                            let data =
                                scramble::rsa_encrypted_password(password, &nonce, &more.data)
                                    .map_err(|_| SessionError::Unexpected {
                                        culprit: Culprit::Server,
                                        message: "unusable RSA public key",
                                    })?;
                            packet::write(stream, next, &data, Culprit::Server).await?;
                        }
                        Some(&sha2_code::FAST_AUTH_OK) if more.data.len() == 1 => {}
                        Some(&sha2_code::FULL_AUTH) if more.data.len() == 1 => {
                            if encrypted {
                                let data: Vec<u8> = password.iter().copied().chain([0]).collect();
                                packet::write(stream, next, &data, Culprit::Server).await?;
                            } else {
                                asked_for_key = true;
                                packet::write(
                                    stream,
                                    next,
                                    &[sha2_code::REQUEST_PUBLIC_KEY],
                                    Culprit::Server,
                                )
                                .await?;
                            }
                        }
                        _ => {
                            return Err(SessionError::Unexpected {
                                culprit: Culprit::Server,
                                message: "caching_sha2_password data",
                            });
                        }
                    }
                }
                other => {
                    return Err(SessionError::Unexpected {
                        culprit: Culprit::Server,
                        message: other.name(),
                    });
                }
            }
        }
    }
}

/// Ends the server thread `thread_id` (a session whose client went away
/// while the server was still busy for it) over a connection of its own, so
/// the thread is released now rather than when its query next writes.
pub(crate) async fn kill(
    target: &DatabaseTarget,
    tls: &UpstreamTls,
    limits: Limits,
    thread_id: u32,
) {
    let result = async {
        let greeted = greet(target, limits).await?;
        let capabilities = greeted.handshake.capabilities
            & (capability::LONG_PASSWORD | capability::MULTI_RESULTS);
        let request = LoginRequest {
            capabilities,
            max_packet_size: 1 << 24,
            charset: greeted.handshake.charset,
            database: None,
            attributes: None,
        };
        let mut leg = login(greeted, target, tls, limits, &request).await?;
        let mut payload = BytesMut::new();
        ClientMessage::Command(Command::query(
            format!("KILL CONNECTION {thread_id}").as_bytes(),
        ))
        .encode_payload(&mut payload);
        packet::write(&mut leg.stream, 0, &payload, Culprit::Server).await?;
        // The answer does not matter (the thread may have ended meanwhile);
        // closing politely lets the server free this helper at once.
        let mut quit = BytesMut::new();
        ClientMessage::Command(Command::Quit).encode_payload(&mut quit);
        packet::write(&mut leg.stream, 0, &quit, Culprit::Server).await?;
        leg.stream.shutdown().await.map_err(SessionError::server_io)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, result).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "ending an abandoned server thread failed"),
        Err(_) => tracing::warn!("ending an abandoned server thread timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MariaDB's ed25519 challenge is random: one in 256 ends with a zero
    /// byte, which must be signed, not taken for a terminator.
    #[test]
    fn keeps_the_trailing_zero_of_an_ed25519_challenge() {
        let challenge: Bytes = [[7u8; 31].as_slice(), &[0]].concat().into();
        assert_eq!(nonce(ED25519, &challenge), challenge);
        let scramble = Bytes::from_static(b"abcdefghijklmnopqrst\0");
        assert_eq!(nonce(NATIVE_PASSWORD, &scramble), scramble.slice(..20));
        assert_eq!(nonce(CACHING_SHA2, &scramble), scramble.slice(..20));
    }
}
