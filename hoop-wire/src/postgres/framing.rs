//! Splitting a PostgreSQL byte stream into whole messages.
//!
//! Framing is phase-aware: before the StartupMessage, client messages carry no
//! type byte (`Int32 length, Int32 code, ...`) and the server may answer an
//! SSLRequest or GSSENCRequest with one bare byte. Afterwards every message is
//! `Byte1 tag, Int32 length (counting itself), body`.

use bytes::{Buf, Bytes, BytesMut};

use super::tags::{backend, frontend};
use crate::DecodeError;

/// Size caps applied before any byte of a message is buffered or allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest tagged message accepted, tag and length included.
    ///
    /// PostgreSQL itself allows close to 1 GiB; 64 MiB keeps a hostile peer
    /// from making a session buffer a gigabyte while still fitting large
    /// `bytea` cells and COPY chunks real clients send.
    pub max_message_len: usize,
    /// Largest startup-phase message (StartupMessage, CancelRequest, ...).
    ///
    /// 10,000 bytes is the server's own `MAX_STARTUP_PACKET_LENGTH`: anything
    /// longer would be refused by PostgreSQL too, so a longer one is an attack
    /// or a different protocol.
    pub max_startup_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_len: 64 << 20,
            max_startup_len: 10_000,
        }
    }
}

/// One whole message as it appeared on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// The type byte; `None` for untagged startup-phase messages and for the
    /// server's one-byte answer to SSLRequest or GSSENCRequest.
    pub tag: Option<u8>,
    /// The message's bytes: tag (if any), length and body, or the single
    /// negotiation byte. Forwarding a message unchanged means writing these.
    pub bytes: Bytes,
    /// Offset of the message's first byte in the stream.
    pub offset: u64,
}

impl Frame {
    /// The message body: what follows the tag and length.
    pub(crate) fn body(&self) -> Bytes {
        let header = match self.tag {
            Some(_) => 5,
            None if self.bytes.len() == 1 => 0,
            None => 4,
        };
        self.bytes.slice(header.min(self.bytes.len())..)
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("tag", &self.tag.map(char::from))
            .field("len", &self.bytes.len())
            .field("offset", &self.offset)
            .finish()
    }
}

/// The first byte of a TLS handshake record. A startup-phase length never
/// starts with it (that would be over 369 MB), so it unambiguously marks a
/// client that went on to TLS, after an SSLRequest or directly.
const TLS_HANDSHAKE: u8 = 0x16;

/// Shared state of both directions' framers: offset tracking, sticky errors.
#[derive(Debug)]
struct Stream {
    limits: Limits,
    offset: u64,
    error: Option<DecodeError>,
}

impl Stream {
    fn new(limits: Limits) -> Self {
        Self {
            limits,
            offset: 0,
            error: None,
        }
    }

    fn fail<T>(&mut self, error: DecodeError) -> Result<T, DecodeError> {
        self.error = Some(error);
        Err(error)
    }

    fn split(&mut self, buf: &mut BytesMut, len: usize, tag: Option<u8>) -> Frame {
        let frame = Frame {
            tag,
            bytes: buf.split_to(len).freeze(),
            offset: self.offset,
        };
        self.offset += len as u64;
        frame
    }

    /// Frames `Byte1 tag, Int32 length, body` once all of it has arrived.
    fn tagged(
        &mut self,
        buf: &mut BytesMut,
        known: fn(u8) -> Option<&'static str>,
    ) -> Result<Option<Frame>, DecodeError> {
        let Some(&tag) = buf.first() else {
            return Ok(None);
        };
        let Some(message) = known(tag) else {
            return self.fail(DecodeError::UnknownMessage {
                offset: self.offset,
                tag,
            });
        };
        if buf.len() < 5 {
            return Ok(None);
        }
        let len = u64::from((&buf[1..5]).get_u32());
        if len < 4 {
            return self.fail(DecodeError::InvalidLength {
                offset: self.offset,
                len,
            });
        }
        let total = len + 1;
        if total > self.limits.max_message_len as u64 {
            return self.fail(DecodeError::TooLarge {
                offset: self.offset,
                message,
                len,
                limit: self.limits.max_message_len as u64,
            });
        }
        // `total` fits in usize: it is at most `max_message_len`.
        let total = total as usize;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        Ok(Some(self.split(buf, total, Some(tag))))
    }
}

/// The phase of the client side of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrontendPhase {
    /// Before the StartupMessage: untagged messages.
    Startup,
    /// After the StartupMessage: tagged messages.
    Normal,
}

/// Frames and decodes what a client sends to a server.
///
/// One value per connection. Feed it whatever bytes have arrived; it returns
/// one message at a time, `Ok(None)` when more bytes are needed, or an error
/// that it will keep returning.
#[derive(Debug)]
pub struct FrontendDecoder {
    stream: Stream,
    phase: FrontendPhase,
}

impl FrontendDecoder {
    /// A decoder for a new connection, in the startup phase.
    pub fn new(limits: Limits) -> Self {
        Self {
            stream: Stream::new(limits),
            phase: FrontendPhase::Startup,
        }
    }

    /// True once the StartupMessage has been seen.
    pub fn is_started(&self) -> bool {
        self.phase == FrontendPhase::Normal
    }

    /// Splits the next whole message off the front of `buf`.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] when the bytes cannot be a valid message; the same
    /// error is returned by every later call.
    pub fn decode_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        if let Some(error) = self.stream.error {
            return Err(error);
        }
        match self.phase {
            FrontendPhase::Normal => self.stream.tagged(buf, frontend::name),
            FrontendPhase::Startup => self.startup_frame(buf),
        }
    }

    fn startup_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        let offset = self.stream.offset;
        if buf.first() == Some(&TLS_HANDSHAKE) {
            return self.stream.fail(DecodeError::Encrypted { offset });
        }
        if buf.len() < 8 {
            return Ok(None);
        }
        let len = u64::from((&buf[0..4]).get_u32());
        let code = (&buf[4..8]).get_u32();
        let message = super::frontend::startup_name(code);
        if len < 8 {
            return self.stream.fail(DecodeError::InvalidLength { offset, len });
        }
        if len > self.stream.limits.max_startup_len as u64 {
            return self.stream.fail(DecodeError::TooLarge {
                offset,
                message,
                len,
                limit: self.stream.limits.max_startup_len as u64,
            });
        }
        let len = len as usize;
        if buf.len() < len {
            return Ok(None);
        }
        if code >> 16 == super::tags::startup::PROTOCOL_MAJOR_3 {
            self.phase = FrontendPhase::Normal;
        }
        Ok(Some(self.stream.split(buf, len, None)))
    }

    /// Splits and parses the next message.
    ///
    /// # Errors
    ///
    /// As [`decode_frame`](Self::decode_frame), plus a
    /// [`DecodeError::Malformed`] when the body does not follow its format.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<super::FrontendMessage>, DecodeError> {
        let Some(frame) = self.decode_frame(buf)? else {
            return Ok(None);
        };
        super::FrontendMessage::parse(&frame)
            .or_else(|error| self.stream.fail(error))
            .map(Some)
    }
}

/// Frames and decodes what a server sends to a client.
#[derive(Debug)]
pub struct BackendDecoder {
    stream: Stream,
    /// SSLRequests / GSSENCRequests sent by the client and not yet answered.
    pending_negotiations: u8,
    /// The server accepted TLS or GSS encryption: nothing after is readable.
    encrypted: bool,
}

/// The server's one-byte answers to SSLRequest and GSSENCRequest.
pub(crate) mod negotiation {
    /// TLS accepted: TLS follows.
    pub(crate) const SSL_ACCEPTED: u8 = b'S';
    /// GSS encryption accepted: GSS-wrapped messages follow.
    pub(crate) const GSS_ACCEPTED: u8 = b'G';
    /// Refused: the client goes on in plaintext (or gives up).
    pub(crate) const REFUSED: u8 = b'N';
}

impl BackendDecoder {
    /// A decoder for a new connection.
    pub fn new(limits: Limits) -> Self {
        Self {
            stream: Stream::new(limits),
            pending_negotiations: 0,
            encrypted: false,
        }
    }

    /// Tells the decoder the client sent an SSLRequest or GSSENCRequest, so
    /// the server's next byte is an untagged answer (`S`, `G` or `N`) rather
    /// than a message; call once per request, before decoding the answer.
    pub fn expect_negotiation_response(&mut self) {
        self.pending_negotiations = self.pending_negotiations.saturating_add(1);
    }

    /// Splits the next whole message off the front of `buf`.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] when the bytes cannot be a valid message, including
    /// [`DecodeError::Encrypted`] once the server accepted TLS or GSS
    /// encryption; the same error is returned by every later call.
    pub fn decode_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        if let Some(error) = self.stream.error {
            return Err(error);
        }
        if self.encrypted && !buf.is_empty() {
            let offset = self.stream.offset;
            return self.stream.fail(DecodeError::Encrypted { offset });
        }
        if self.pending_negotiations > 0 {
            let Some(&answer) = buf.first() else {
                return Ok(None);
            };
            match answer {
                negotiation::SSL_ACCEPTED | negotiation::GSS_ACCEPTED | negotiation::REFUSED => {
                    self.pending_negotiations -= 1;
                    let frame = self.stream.split(buf, 1, None);
                    // Whatever follows an acceptance is encrypted; fail
                    // closed on it.
                    self.encrypted = answer != negotiation::REFUSED;
                    return Ok(Some(frame));
                }
                // An old server may answer with an ErrorResponse instead.
                _ => self.pending_negotiations = 0,
            }
        }
        self.stream.tagged(buf, backend::name)
    }

    /// Splits and parses the next message.
    ///
    /// # Errors
    ///
    /// As [`decode_frame`](Self::decode_frame), plus a
    /// [`DecodeError::Malformed`] when the body does not follow its format.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<super::BackendMessage>, DecodeError> {
        let Some(frame) = self.decode_frame(buf)? else {
            return Ok(None);
        };
        super::BackendMessage::parse(&frame)
            .or_else(|error| self.stream.fail(error))
            .map(Some)
    }
}
