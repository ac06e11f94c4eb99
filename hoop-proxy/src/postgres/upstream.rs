//! The server leg: connect to `HOST:PORT`, TLS per `SSLMODE`, the startup
//! message with the connection's real user, and whichever authentication
//! the server asks for (SCRAM-SHA-256, md5, cleartext, trust).

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use hoop_wire::postgres::{
    AuthResponse, Authentication, BackendDecoder, BackendKeyData, BackendMessage, FrontendMessage,
    Limits, Notice, StartupMessage,
};
use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::connection::{DatabaseTarget, SslMode};
use crate::driver::{CONNECT_TIMEOUT, connect_server};
use crate::error::{Culprit, SessionError};
use crate::error::{ServerError, UpstreamTlsError};
use crate::scram::{SCRAM_SHA_256, ScramClient};
use crate::stream::Stream;
use crate::tls::UpstreamTls;

/// SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// A server connection that finished its startup.
#[derive(Debug)]
pub(crate) struct ServerLeg {
    pub(crate) stream: Stream,
    pub(crate) decoder: BackendDecoder,
    /// Bytes read after the startup's ReadyForQuery.
    pub(crate) buf: BytesMut,
    /// The server's address, for cancel requests.
    pub(crate) addr: SocketAddr,
    /// The server's key for this session.
    pub(crate) key: Option<BackendKeyData>,
    /// NegotiateProtocolVersion, if the server sent one (it goes to the
    /// client before AuthenticationOk).
    pub(crate) negotiation: Option<BackendMessage>,
    /// Everything after AuthenticationOk up to and including ReadyForQuery,
    /// except BackendKeyData.
    pub(crate) startup: Vec<BackendMessage>,
}

async fn read_message<S: AsyncRead + Unpin>(
    stream: &mut S,
    decoder: &mut BackendDecoder,
    buf: &mut BytesMut,
) -> Result<BackendMessage, SessionError> {
    loop {
        if let Some(message) = decoder
            .decode(buf)
            .map_err(|source| SessionError::Protocol {
                culprit: Culprit::Server,
                source,
            })?
        {
            return Ok(message);
        }
        let n = stream
            .read_buf(buf)
            .await
            .map_err(SessionError::server_io)?;
        if n == 0 {
            return Err(SessionError::server_io(
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
    }
}

async fn send(stream: &mut Stream, message: &FrontendMessage) -> Result<(), SessionError> {
    let mut bytes = BytesMut::new();
    message.encode(&mut bytes);
    stream
        .write_all(&bytes)
        .await
        .map_err(SessionError::server_io)?;
    stream.flush().await.map_err(SessionError::server_io)
}

/// Turns a server error during startup into what the client may see. Class
/// 28 (authentication) errors name the real role, so they are replaced; other
/// errors (database does not exist, too many connections) pass on, with the
/// real user name blotted out wherever it appears.
fn server_error(notice: &Notice, target: &DatabaseTarget) -> SessionError {
    let code = notice
        .code()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_default();
    if code.starts_with("28") {
        return SessionError::CredentialsRefused;
    }
    let mut message = notice
        .message()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .unwrap_or_default();
    if !target.user.is_empty() {
        message = message.replace(&target.user, "***");
    }
    SessionError::Server(ServerError {
        number: None,
        sql_state: code,
        message,
    })
}

/// `md5` authentication: `"md5" + hex(md5(hex(md5(password + user)) + salt))`.
fn md5_response(user: &str, password: &[u8], salt: [u8; 4]) -> Vec<u8> {
    let inner = Md5::new()
        .chain_update(password)
        .chain_update(user.as_bytes())
        .finalize();
    let outer = Md5::new()
        .chain_update(format!("{inner:x}").as_bytes())
        .chain_update(salt)
        .finalize();
    format!("md5{outer:x}").into_bytes()
}

/// Connects and authenticates to the real server.
pub(crate) async fn connect(
    target: &DatabaseTarget,
    tls: &UpstreamTls,
    limits: Limits,
    startup: StartupMessage,
) -> Result<ServerLeg, SessionError> {
    let tcp = connect_server(target)
        .await
        .map_err(SessionError::Unreachable)?;
    let addr = tcp.peer_addr().map_err(SessionError::Unreachable)?;
    let mut stream = negotiate_tls(tcp, target, tls, limits).await?;

    let mut decoder = BackendDecoder::new(limits);
    let mut buf = BytesMut::with_capacity(1024);
    send(&mut stream, &FrontendMessage::Startup(startup)).await?;

    let password = target.password.as_ref().map(|p| p.expose().as_bytes());
    let need_password = || password.ok_or(SessionError::CredentialsRefused);
    let mut scram: Option<ScramClient> = None;
    let mut negotiation = None;
    loop {
        match read_message(&mut stream, &mut decoder, &mut buf).await? {
            BackendMessage::Authentication(Authentication::Ok) => {
                if scram.is_some() {
                    // The server skipped SASLFinal: it never proved it knew
                    // the password.
                    return Err(SessionError::Unexpected {
                        culprit: Culprit::Server,
                        message: "AuthenticationOk before SASLFinal",
                    });
                }
                break;
            }
            BackendMessage::Authentication(Authentication::CleartextPassword) => {
                let response = AuthResponse::password(need_password()?);
                send(&mut stream, &FrontendMessage::PasswordMessage(response)).await?;
            }
            BackendMessage::Authentication(Authentication::Md5Password { salt }) => {
                let hashed = md5_response(&target.user, need_password()?, salt);
                let response = AuthResponse::password(&hashed);
                send(&mut stream, &FrontendMessage::PasswordMessage(response)).await?;
            }
            BackendMessage::Authentication(Authentication::Sasl { mechanisms }) => {
                if !mechanisms
                    .iter()
                    .any(|m| m.as_ref() == SCRAM_SHA_256.as_bytes())
                {
                    return Err(SessionError::UnsupportedAuth("SASL without SCRAM-SHA-256"));
                }
                // PostgreSQL takes the user from the startup message.
                let mut client = ScramClient::new("", need_password()?);
                let first = client.client_first();
                let response =
                    AuthResponse::sasl_initial(SCRAM_SHA_256.as_bytes(), Some(first.as_bytes()));
                send(&mut stream, &FrontendMessage::PasswordMessage(response)).await?;
                scram = Some(client);
            }
            BackendMessage::Authentication(Authentication::SaslContinue { data }) => {
                let client = scram.as_mut().ok_or(SessionError::Unexpected {
                    culprit: Culprit::Server,
                    message: "SASLContinue",
                })?;
                let last = client
                    .client_final(&data)
                    .map_err(|_| SessionError::CredentialsRefused)?;
                let response = AuthResponse::sasl_response(last.as_bytes());
                send(&mut stream, &FrontendMessage::PasswordMessage(response)).await?;
            }
            BackendMessage::Authentication(Authentication::SaslFinal { data }) => {
                let mut client = scram.take().ok_or(SessionError::Unexpected {
                    culprit: Culprit::Server,
                    message: "SASLFinal",
                })?;
                client
                    .verify_server_final(&data)
                    .map_err(|_| SessionError::CredentialsRefused)?;
            }
            BackendMessage::Authentication(other) => {
                return Err(SessionError::UnsupportedAuth(other.name()));
            }
            message @ BackendMessage::NegotiateProtocolVersion(_) => negotiation = Some(message),
            BackendMessage::ErrorResponse(notice) => return Err(server_error(&notice, target)),
            BackendMessage::NoticeResponse(_) => {}
            other => {
                return Err(SessionError::Unexpected {
                    culprit: Culprit::Server,
                    message: other.name(),
                });
            }
        }
    }

    let mut key = None;
    let mut startup = Vec::new();
    loop {
        match read_message(&mut stream, &mut decoder, &mut buf).await? {
            BackendMessage::BackendKeyData(data) => key = Some(data),
            BackendMessage::ErrorResponse(notice) => return Err(server_error(&notice, target)),
            message @ BackendMessage::ReadyForQuery(_) => {
                startup.push(message);
                break;
            }
            message @ (BackendMessage::ParameterStatus(_) | BackendMessage::NoticeResponse(_)) => {
                startup.push(message)
            }
            other => {
                return Err(SessionError::Unexpected {
                    culprit: Culprit::Server,
                    message: other.name(),
                });
            }
        }
    }
    Ok(ServerLeg {
        stream,
        decoder,
        buf,
        addr,
        key,
        negotiation,
        startup,
    })
}

async fn negotiate_tls(
    mut tcp: TcpStream,
    target: &DatabaseTarget,
    tls: &UpstreamTls,
    limits: Limits,
) -> Result<Stream, SessionError> {
    let Some(connector) = tls.connector() else {
        return Ok(Stream::Plain(tcp));
    };
    tcp.write_all(&SSL_REQUEST)
        .await
        .map_err(SessionError::server_io)?;
    let mut decoder = BackendDecoder::new(limits);
    decoder.expect_negotiation_response();
    let mut buf = BytesMut::with_capacity(16);
    let answer = read_message(&mut tcp, &mut decoder, &mut buf).await?;
    match answer {
        BackendMessage::NegotiationResponse(b'S') => {
            if !buf.is_empty() {
                return Err(SessionError::Unexpected {
                    culprit: Culprit::Server,
                    message: "data after the TLS acceptance",
                });
            }
            UpstreamTls::encrypt(connector, &target.host, tcp)
                .await
                .map_err(SessionError::UpstreamTls)
        }
        BackendMessage::NegotiationResponse(_) if tls.mode() == SslMode::Prefer => {
            Ok(Stream::Plain(tcp))
        }
        BackendMessage::NegotiationResponse(_) => Err(SessionError::UpstreamTls(
            UpstreamTlsError::ServerWithoutTls,
        )),
        BackendMessage::ErrorResponse(notice) => Err(server_error(&notice, target)),
        other => Err(SessionError::Unexpected {
            culprit: Culprit::Server,
            message: other.name(),
        }),
    }
}

/// Sends a CancelRequest with the server's own key on a new connection.
pub(crate) async fn send_cancel(addr: SocketAddr, process_id: u32, secret: &Bytes) {
    let mut request = BytesMut::new();
    FrontendMessage::CancelRequest(hoop_wire::postgres::CancelRequest {
        process_id,
        secret_key: secret.clone(),
    })
    .encode(&mut request);
    let result = async {
        let mut tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await??;
        tcp.write_all(&request).await?;
        tcp.shutdown().await?;
        // The server closes the connection once it has read the request.
        let mut sink = [0u8; 16];
        while tcp.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    if let Err(error) = tokio::time::timeout(CONNECT_TIMEOUT, result)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
    {
        tracing::warn!(%error, "cancel request to the database server failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// User "postgres", password "secret", salt 01 02 03 04; the expected
    /// value was computed independently with Python's hashlib.
    #[test]
    fn md5_response_matches_postgres_formula() {
        assert_eq!(
            md5_response("postgres", b"secret", [1, 2, 3, 4]),
            b"md5bb41a296aab6baccb36ff243a562abff"
        );
    }
}
