//! The client leg: hoop's own greeting, TLS, the client's login, and hoop's
//! authentication of the person.

use bytes::{Bytes, BytesMut};
use hoop_wire::mysql::{
    AuthSwitchRequest, ClientMessage, Handshake, HandshakeResponse, Limits, ServerMessage, Session,
    capability,
};
use tokio::io::AsyncWriteExt as _;
use tokio_rustls::TlsAcceptor;

use super::packet::{self, read_client, session_after_greeting, without_nul};
use crate::auth::{ClientAuthenticator, ClientCredentials, ClientIdentity};
use crate::error::{Culprit, SessionError};
use crate::stream::{ClientIo, Stream};

/// The plugin hoop names in its greeting: what every client answers by
/// default. Its answer cannot be checked (see [`authenticate`]).
const GREETING_PLUGIN: &[u8] = b"mysql_native_password";
/// The plugin hoop switches to when it needs the access token itself.
pub(crate) const CLEAR_PASSWORD: &[u8] = b"mysql_clear_password";
/// Length of hoop's random challenge (as MySQL's).
const SCRAMBLE_LEN: usize = 20;

/// A client that sent its login packet.
#[derive(Debug)]
pub(crate) struct ClientLeg {
    pub(crate) stream: Stream<ClientIo>,
    /// Bytes read after the login packets.
    pub(crate) buf: BytesMut,
    pub(crate) response: HandshakeResponse,
    /// The sequence id of hoop's next packet to the client.
    pub(crate) seq: u8,
    scramble: Bytes,
    /// The codec, in its authentication phase after the login packet.
    session: Session,
}

/// hoop's challenge: printable, never NUL (clients read it as a C string).
fn random_scramble() -> Bytes {
    (0..SCRAMBLE_LEN)
        .map(|_| rand::random_range(b'!'..=b'~'))
        .chain([0])
        .collect::<Vec<u8>>()
        .into()
}

/// The greeting hoop offers: the server's version, connection id (so
/// `KILL` from another connection names the real thread), collation and
/// status, with `capabilities`, and a challenge of hoop's own.
pub(crate) fn greeting(server: &Handshake, capabilities: u64) -> Handshake {
    let scramble = random_scramble();
    Handshake {
        server_version: server.server_version.clone(),
        connection_id: server.connection_id,
        auth_plugin_data_len: scramble.len() as u8,
        auth_plugin_data: scramble,
        capabilities,
        charset: server.charset,
        status: server.status,
        auth_plugin_name: Some(Bytes::from_static(GREETING_PLUGIN)),
    }
}

/// Sends the greeting and reads the client's login, upgrading to TLS when
/// the client asks and `tls` is set. `None` when the client went away first.
pub(crate) async fn accept(
    mut io: ClientIo,
    greeting: Handshake,
    tls: Option<&TlsAcceptor>,
    limits: Limits,
) -> Result<Option<ClientLeg>, SessionError> {
    let scramble = greeting.auth_plugin_data.clone();
    let greeting = packet::greeting_packet(greeting);
    io.write_all(&greeting)
        .await
        .map_err(SessionError::client_io)?;
    let mut session = session_after_greeting(limits, &greeting)?;
    let mut buf = BytesMut::with_capacity(1024);
    match packet::read_first_packet(&mut io, &mut buf).await {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(SessionError::client_io(error)),
    }
    let mut stream = Stream::Plain(io);
    let (first, message) = match read_client(&mut stream, &mut session, &mut buf).await {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(None),
        Err(error) => return Err(refuse(&mut stream, LOGIN_ANSWER_SEQ, error).await),
    };
    let (seq, message) = match message {
        ClientMessage::SslRequest(_) => {
            // Nothing past the SSLRequest was read (`read_first_packet`):
            // whatever follows goes to TLS, and only what decrypts is read
            // as the login.
            debug_assert!(buf.is_empty());
            let (Some(acceptor), Stream::Plain(io)) = (tls, stream) else {
                return Err(SessionError::Unsupported(
                    "TLS was not offered on this listener",
                ));
            };
            let encrypted = acceptor.accept(io).await.map_err(SessionError::client_io)?;
            stream = Stream::TlsServer(Box::new(encrypted));
            session = session_after_greeting(limits, &greeting)?;
            let Some((packet, message)) = read_client(&mut stream, &mut session, &mut buf).await?
            else {
                return Ok(None);
            };
            (packet.seq, message)
        }
        message => (first.seq, message),
    };
    let ClientMessage::HandshakeResponse(response) = message else {
        let error = SessionError::Unexpected {
            culprit: Culprit::Client,
            message: message.name(),
        };
        return Err(refuse(&mut stream, seq.wrapping_add(1), error).await);
    };
    Ok(Some(ClientLeg {
        stream,
        buf,
        response,
        seq: seq.wrapping_add(1),
        scramble,
        session,
    }))
}

/// The sequence id of hoop's answer to the client's first login packet.
const LOGIN_ANSWER_SEQ: u8 = 2;

/// Tells the client why its login is refused, then hands the error back.
async fn refuse(stream: &mut Stream<ClientIo>, seq: u8, error: SessionError) -> SessionError {
    super::send_error(stream, seq, &[], &error, None).await;
    error
}

/// Authenticates the person.
///
/// The access token is the client's password. hoop cannot check a
/// `mysql_native_password` (or `caching_sha2_password`) answer without
/// knowing the secret in advance, and tokens are checked by the gateway only
/// when presented; so, like PostgreSQL's cleartext request, hoop switches
/// the client to `mysql_clear_password` and receives the token itself. Use
/// TLS on the client leg or a loopback listener. With an authenticator that
/// needs no token (`hoop connect` on loopback) whatever the client answered
/// is accepted.
pub(crate) async fn authenticate(
    client: &mut ClientLeg,
    authenticator: &dyn ClientAuthenticator,
) -> Result<ClientIdentity, SessionError> {
    let token: Bytes = if !authenticator.requires_token() {
        Bytes::new()
    } else if client.response.auth_plugin_name.as_deref() == Some(CLEAR_PASSWORD) {
        Bytes::copy_from_slice(without_nul(&client.response.auth_response))
    } else if client.response.capabilities & capability::PLUGIN_AUTH == 0 {
        return Err(SessionError::Unsupported(
            "the client cannot switch authentication plugins, which hoop needs to receive the access token",
        ));
    } else {
        let mut request = BytesMut::new();
        ServerMessage::AuthSwitchRequest(AuthSwitchRequest {
            plugin: Bytes::from_static(CLEAR_PASSWORD),
            data: client.scramble.clone(),
        })
        .encode_payload(&mut request);
        packet::write(&mut client.stream, client.seq, &request, Culprit::Client).await?;
        match read_client(&mut client.stream, &mut client.session, &mut client.buf).await? {
            Some((packet, ClientMessage::AuthData(data))) => {
                client.seq = packet.seq.wrapping_add(1);
                Bytes::copy_from_slice(without_nul(&data.data))
            }
            Some((_, other)) => {
                return Err(SessionError::Unexpected {
                    culprit: Culprit::Client,
                    message: other.name(),
                });
            }
            None => {
                return Err(SessionError::client_io(
                    std::io::ErrorKind::UnexpectedEof.into(),
                ));
            }
        }
    };
    let user = String::from_utf8_lossy(&client.response.username).into_owned();
    let database = client
        .response
        .database
        .as_ref()
        .map(|db| String::from_utf8_lossy(db).into_owned());
    authenticator
        .authenticate(ClientCredentials {
            user: &user,
            database: database.as_deref(),
            token: &token,
        })
        .await
        .map_err(|_| SessionError::ClientAuth)
}
