//! Packet I/O for the login phase of both legs, classified by a
//! `hoop_wire::mysql::Session` of the leg.

use bytes::{Bytes, BytesMut};
use hoop_wire::mysql::{
    ClientMessage, ErrPacket, Handshake, Limits, Packet, ServerMessage, Session, encode_packet,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Culprit, SessionError};

/// Writes `payload` as one packet with sequence id `seq`, and flushes.
pub(crate) async fn write<S: AsyncWrite + Unpin>(
    stream: &mut S,
    seq: u8,
    payload: &[u8],
    culprit: Culprit,
) -> Result<(), SessionError> {
    let mut wire = BytesMut::with_capacity(payload.len() + 4);
    encode_packet(&mut wire, seq, payload);
    let io = |source| SessionError::Io { culprit, source };
    stream.write_all(&wire).await.map_err(io)?;
    stream.flush().await.map_err(io)
}

/// The payload of an ERR packet.
pub(crate) fn err_payload(code: u16, sql_state: &[u8; 5], message: &str) -> BytesMut {
    let mut payload = BytesMut::new();
    ServerMessage::Err(ErrPacket::new(code, sql_state, message)).encode_payload(&mut payload);
    payload
}

/// Reads more bytes into `buf`; end of stream is an error (mid-login).
async fn fill<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    culprit: Culprit,
) -> Result<usize, SessionError> {
    stream
        .read_buf(buf)
        .await
        .map_err(|source| SessionError::Io { culprit, source })
}

/// The next server packet during login.
pub(crate) async fn read_server<S: AsyncRead + Unpin>(
    stream: &mut S,
    session: &mut Session,
    buf: &mut BytesMut,
) -> Result<(Packet, ServerMessage), SessionError> {
    loop {
        if let Some(found) = session
            .decode_server(buf)
            .map_err(SessionError::server_protocol)?
        {
            return Ok(found);
        }
        if fill(stream, buf, Culprit::Server).await? == 0 {
            return Err(SessionError::server_io(
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
    }
}

/// The next client packet during login; `None` when the client closed
/// before sending anything more.
pub(crate) async fn read_client<S: AsyncRead + Unpin>(
    stream: &mut S,
    session: &mut Session,
    buf: &mut BytesMut,
) -> Result<Option<(Packet, ClientMessage)>, SessionError> {
    loop {
        if let Some(found) = session
            .decode_client(buf)
            .map_err(SessionError::client_protocol)?
        {
            return Ok(Some(found));
        }
        if fill(stream, buf, Culprit::Client).await? == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(SessionError::client_io(
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
    }
}

/// Length of an SSLRequest's payload: a HandshakeResponse41 cut after its
/// capabilities, maximum packet size, charset and 23-byte filler.
const SSL_REQUEST_LEN: usize = 32;

/// Reads the header of a client's first packet and, when the packet is as
/// long as an SSLRequest, its payload, and nothing more, into `buf`.
///
/// A client starts its TLS handshake right behind an SSLRequest without
/// waiting for an answer, so the bytes after it belong to TLS and must stay
/// in the socket for the acceptor: reading ahead would hand a ClientHello
/// to the login decoder, or, refusing it as early data, fail every client
/// whose two writes arrive together. Longer packets are read as usual by
/// whoever decodes `buf` next.
///
/// # Errors
///
/// The stream's; `UnexpectedEof` when the client closes first.
pub async fn read_first_packet<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
) -> std::io::Result<()> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await?;
    buf.extend_from_slice(&header);
    let length = u32::from_le_bytes([header[0], header[1], header[2], 0]);
    if length as usize == SSL_REQUEST_LEN {
        let mut payload = [0u8; SSL_REQUEST_LEN];
        stream.read_exact(&mut payload).await?;
        buf.extend_from_slice(&payload);
    }
    Ok(())
}

/// A session that has seen `greeting` (a whole HandshakeV10 packet) and
/// waits for the client's login packet. The login phase restarts with a new
/// one after TLS, since the codec stops at the encryption boundary.
pub(crate) fn session_after_greeting(
    limits: Limits,
    greeting: &Bytes,
) -> Result<Session, SessionError> {
    let mut session = Session::new(limits);
    let mut buf = BytesMut::from(&greeting[..]);
    match session.decode_server(&mut buf) {
        Ok(Some((_, ServerMessage::Handshake(_)))) => Ok(session),
        Ok(_) => Err(SessionError::Unexpected {
            culprit: Culprit::Server,
            message: "packet in place of the greeting",
        }),
        Err(source) => Err(SessionError::server_protocol(source)),
    }
}

/// Encodes a greeting as a whole packet (sequence id 0).
pub(crate) fn greeting_packet(handshake: Handshake) -> Bytes {
    let mut payload = BytesMut::new();
    ServerMessage::Handshake(handshake).encode_payload(&mut payload);
    let mut wire = BytesMut::with_capacity(payload.len() + 4);
    encode_packet(&mut wire, 0, &payload);
    wire.freeze()
}

/// Strips the NUL a plugin's data or a cleartext password ends with.
pub(crate) fn without_nul(data: &[u8]) -> &[u8] {
    data.strip_suffix(&[0]).unwrap_or(data)
}
