//! The client leg: TLS and GSS negotiation, the startup message, and hoop's
//! own authentication of the person.

use bytes::{Bytes, BytesMut};
use hoop_wire::postgres::{
    Authentication, BackendMessage, CancelRequest, FrontendDecoder, FrontendMessage, Limits,
    StartupMessage,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;

use crate::auth::{ClientAuthenticator, ClientCredentials, ClientIdentity};
use crate::error::{Culprit, SessionError};
use crate::stream::{ClientIo, Stream};

/// The answer to an SSLRequest or GSSENCRequest we decline.
const DECLINE: &[u8] = b"N";
/// The answer to an SSLRequest we accept.
const ACCEPT_TLS: &[u8] = b"S";

/// The protocol's major version 3, in the startup message's high 16 bits.
const PROTOCOL_MAJOR_3: u32 = 3;

/// What a new client connection turned out to be.
#[derive(Debug)]
pub(crate) enum Hello {
    /// A session: the client sent its startup message.
    Startup(ClientLeg),
    /// A cancel request for another session.
    Cancel(CancelRequest),
    /// The client went away before starting (a port probe, a declined TLS).
    Closed,
}

/// A client that sent its startup message.
#[derive(Debug)]
pub(crate) struct ClientLeg {
    pub(crate) stream: Stream<ClientIo>,
    pub(crate) decoder: FrontendDecoder,
    /// Bytes read after the last decoded message.
    pub(crate) buf: BytesMut,
    pub(crate) startup: StartupMessage,
}

impl ClientLeg {
    /// A startup parameter as text, if present and UTF-8.
    pub(crate) fn param(&self, name: &[u8]) -> Option<&str> {
        self.startup
            .param(name)
            .and_then(|value| std::str::from_utf8(value).ok())
    }
}

async fn read_message(
    stream: &mut Stream<ClientIo>,
    decoder: &mut FrontendDecoder,
    buf: &mut BytesMut,
) -> Result<Option<FrontendMessage>, SessionError> {
    loop {
        if let Some(message) = decoder
            .decode(buf)
            .map_err(|source| SessionError::Protocol {
                culprit: Culprit::Client,
                source,
            })?
        {
            return Ok(Some(message));
        }
        let n = stream
            .read_buf(buf)
            .await
            .map_err(SessionError::client_io)?;
        if n == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(SessionError::client_io(
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
    }
}

pub(crate) async fn write(stream: &mut Stream<ClientIo>, bytes: &[u8]) -> Result<(), SessionError> {
    stream
        .write_all(bytes)
        .await
        .map_err(SessionError::client_io)?;
    stream.flush().await.map_err(SessionError::client_io)
}

/// Reads the client's opening messages: negotiates TLS (when `tls` is set)
/// and declines GSS encryption until a startup or cancel request arrives.
/// A client that breaks the protocol here is told so before the error
/// returns.
pub(crate) async fn accept(
    io: ClientIo,
    tls: Option<&TlsAcceptor>,
    limits: Limits,
) -> Result<Hello, SessionError> {
    let mut stream = Stream::Plain(io);
    let mut decoder = FrontendDecoder::new(limits);
    let mut buf = BytesMut::with_capacity(1024);
    let refused = loop {
        let message = match read_message(&mut stream, &mut decoder, &mut buf).await {
            Ok(Some(message)) => message,
            Ok(None) => return Ok(Hello::Closed),
            Err(error) => break error,
        };
        match message {
            FrontendMessage::SslRequest | FrontendMessage::GssEncRequest if !buf.is_empty() => {
                // Bytes sent after the request but before our answer would be
                // taken as if they came over TLS (CVE-2021-23222): refuse.
                break SessionError::Unexpected {
                    culprit: Culprit::Client,
                    message: "data before the encryption answer",
                };
            }
            FrontendMessage::SslRequest => {
                stream = match (tls, stream) {
                    (Some(acceptor), Stream::Plain(mut io)) => {
                        io.write_all(ACCEPT_TLS)
                            .await
                            .map_err(SessionError::client_io)?;
                        let encrypted =
                            acceptor.accept(io).await.map_err(SessionError::client_io)?;
                        decoder = FrontendDecoder::new(limits);
                        Stream::TlsServer(Box::new(encrypted))
                    }
                    (_, mut unchanged) => {
                        write(&mut unchanged, DECLINE).await?;
                        unchanged
                    }
                };
            }
            FrontendMessage::GssEncRequest => write(&mut stream, DECLINE).await?,
            FrontendMessage::CancelRequest(request) => return Ok(Hello::Cancel(request)),
            FrontendMessage::Startup(startup) => {
                if startup.protocol_version >> 16 != PROTOCOL_MAJOR_3 {
                    break SessionError::Unsupported(
                        "unsupported frontend protocol: hoop speaks protocol 3",
                    );
                }
                if startup.param(b"replication").is_some() {
                    break SessionError::Unsupported("replication connections are not supported");
                }
                return Ok(Hello::Startup(ClientLeg {
                    stream,
                    decoder,
                    buf,
                    startup,
                }));
            }
            other => {
                break SessionError::Unexpected {
                    culprit: Culprit::Client,
                    message: other.name(),
                };
            }
        }
    };
    super::send_fatal(&mut stream, &[], &refused).await;
    Err(refused)
}

/// Authenticates the person: asks for a cleartext password (the access
/// token) when the authenticator needs one, then lets it decide. See
/// [`crate::auth`] for why cleartext rather than SCRAM.
pub(crate) async fn authenticate(
    client: &mut ClientLeg,
    authenticator: &dyn ClientAuthenticator,
) -> Result<ClientIdentity, SessionError> {
    let user = client.param(b"user").unwrap_or_default().to_owned();
    let database = client.param(b"database").map(str::to_owned);
    let token: Bytes =
        if authenticator.requires_token() {
            let mut request = BytesMut::new();
            BackendMessage::Authentication(Authentication::CleartextPassword).encode(&mut request);
            write(&mut client.stream, &request).await?;
            match read_message(&mut client.stream, &mut client.decoder, &mut client.buf).await? {
                Some(FrontendMessage::PasswordMessage(response)) => response
                    .read_password()
                    .map_err(|source| SessionError::Protocol {
                        culprit: Culprit::Client,
                        source,
                    })?,
                Some(other) => {
                    return Err(SessionError::Unexpected {
                        culprit: Culprit::Client,
                        message: other.name(),
                    });
                }
                // libpq closes and reconnects once it has asked the user for a
                // password; that is not an error worth an answer.
                None => {
                    return Err(SessionError::client_io(
                        std::io::ErrorKind::UnexpectedEof.into(),
                    ));
                }
            }
        } else {
            Bytes::new()
        };
    authenticator
        .authenticate(ClientCredentials {
            user: &user,
            database: database.as_deref(),
            token: &token,
        })
        .await
        .map_err(|_| SessionError::ClientAuth)
}
