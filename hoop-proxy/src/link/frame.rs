//! The agent link's framing: one long-lived stream carrying control messages
//! and, later, many multiplexed sessions.
//!
//! ```text
//! +-----------------+--------+-----------------+----------------------+
//! | length: u32 BE  | kind:u8| stream: u32 BE  | payload (length bytes)|
//! +-----------------+--------+-----------------+----------------------+
//! ```
//!
//! `stream` 0 is the control stream (hello, heartbeats, targets, status,
//! JSON payloads). Sessions use `OPEN`, `DATA`, `CLOSE` and `WINDOW` on
//! stream ids chosen by the gateway; per-stream credit (see `mux`) keeps one
//! slow session from blocking the link's other traffic. Frames of unknown kinds are skipped, so either side can
//! be upgraded first.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Bytes before the payload.
pub const HEADER_LEN: usize = 9;

/// The largest payload accepted: a frame is held whole in memory before it
/// is handled, so a peer announcing 4 GiB must be refused before any
/// allocation. Session data is chunked well below this.
pub const MAX_PAYLOAD: usize = 1 << 20;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Agent to gateway, first frame: name, secret, metadata (JSON).
    Hello,
    /// Gateway to agent: the key was accepted (JSON).
    Welcome,
    /// Gateway to agent: the key was refused; the link closes.
    Refused,
    /// Either way: are you there? Carries an opaque payload echoed back.
    Ping,
    /// The answer to a ping.
    Pong,
    /// Gateway to agent: the targets to check, replacing earlier ones (JSON).
    Targets,
    /// Agent to gateway: reachability of its targets (JSON).
    Status,
    /// Gateway to agent: a PostgreSQL cancel request the gateway received
    /// for a session it does not serve (see [`crate::agent::cancel_frame`]).
    Cancel,
    /// Opens a session on a new stream id.
    Open,
    /// Session bytes on a stream.
    Data,
    /// Closes a stream.
    Close,
    /// Returns flow-control credit on a stream: the payload is a `u32` BE
    /// count of bytes the receiver has consumed (see `mux`).
    Window,
    /// Agent to gateway: a batch of a session's audit events (JSON). On
    /// the session's stream while it is open on this link; on stream 0
    /// when sent again after the link was lost or the stream ended.
    Events,
    /// Gateway to agent, stream 0: these event batches are stored (JSON);
    /// the agent may forget them.
    EventsAck,
    /// A kind this version does not know; skipped.
    Unknown(u8),
}

impl FrameKind {
    fn to_byte(self) -> u8 {
        match self {
            Self::Hello => 1,
            Self::Welcome => 2,
            Self::Refused => 3,
            Self::Ping => 4,
            Self::Pong => 5,
            Self::Targets => 6,
            Self::Status => 7,
            Self::Cancel => 8,
            Self::Open => 16,
            Self::Data => 17,
            Self::Close => 18,
            Self::Window => 19,
            Self::Events => 20,
            Self::EventsAck => 21,
            Self::Unknown(byte) => byte,
        }
    }

    fn from_byte(byte: u8) -> Self {
        match byte {
            1 => Self::Hello,
            2 => Self::Welcome,
            3 => Self::Refused,
            4 => Self::Ping,
            5 => Self::Pong,
            6 => Self::Targets,
            7 => Self::Status,
            8 => Self::Cancel,
            16 => Self::Open,
            17 => Self::Data,
            18 => Self::Close,
            19 => Self::Window,
            20 => Self::Events,
            21 => Self::EventsAck,
            other => Self::Unknown(other),
        }
    }
}

/// One frame of the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What it carries.
    pub kind: FrameKind,
    /// 0 for control, else a session's stream.
    pub stream: u32,
    /// The payload.
    pub payload: Bytes,
}

/// A frame that cannot be accepted; the link is no longer trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The announced payload is larger than [`MAX_PAYLOAD`].
    #[error("frame payload of {0} bytes exceeds the limit")]
    TooLarge(usize),
}

impl Frame {
    /// A control frame (stream 0).
    pub fn control(kind: FrameKind, payload: impl Into<Bytes>) -> Self {
        Self {
            kind,
            stream: 0,
            payload: payload.into(),
        }
    }

    /// Appends the frame's encoding to `out`.
    ///
    /// # Errors
    ///
    /// [`FrameError::TooLarge`] when the payload exceeds [`MAX_PAYLOAD`].
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), FrameError> {
        let len = self.payload.len();
        if len > MAX_PAYLOAD {
            return Err(FrameError::TooLarge(len));
        }
        out.reserve(HEADER_LEN + len);
        // MAX_PAYLOAD fits in u32, checked above.
        out.put_u32(len as u32);
        out.put_u8(self.kind.to_byte());
        out.put_u32(self.stream);
        out.put_slice(&self.payload);
        Ok(())
    }

    /// Takes the next complete frame from the front of `buffer`, or `None`
    /// when more bytes are needed.
    ///
    /// # Errors
    ///
    /// [`FrameError::TooLarge`] as soon as the header announces an oversized
    /// payload, before buffering it.
    pub fn decode(buffer: &mut BytesMut) -> Result<Option<Self>, FrameError> {
        let Some(header) = buffer.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(FrameError::TooLarge(len));
        }
        if buffer.len() < HEADER_LEN + len {
            buffer.reserve(HEADER_LEN + len - buffer.len());
            return Ok(None);
        }
        let mut frame = buffer.split_to(HEADER_LEN + len);
        frame.advance(4);
        let kind = FrameKind::from_byte(frame.get_u8());
        let stream = frame.get_u32();
        Ok(Some(Self {
            kind,
            stream,
            payload: frame.freeze(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Frame> {
        vec![
            Frame::control(FrameKind::Hello, &b"{\"name\":\"a\"}"[..]),
            Frame::control(FrameKind::Ping, &b"12345678"[..]),
            Frame {
                kind: FrameKind::Data,
                stream: 7,
                payload: Bytes::from(vec![0u8; 300]),
            },
            Frame::control(FrameKind::Unknown(200), Bytes::new()),
        ]
    }

    #[test]
    fn round_trips_at_every_split_point() {
        let mut wire = BytesMut::new();
        for frame in sample() {
            frame.encode(&mut wire).unwrap();
        }
        let wire = wire.freeze();
        for cut in 0..=wire.len() {
            let mut buffer = BytesMut::new();
            let mut out = Vec::new();
            for part in [&wire[..cut], &wire[cut..]] {
                buffer.extend_from_slice(part);
                while let Some(frame) = Frame::decode(&mut buffer).unwrap() {
                    out.push(frame);
                }
            }
            assert_eq!(out, sample(), "split at {cut}");
            assert!(buffer.is_empty());
        }
    }

    #[test]
    fn refuses_oversized_frames_from_the_header_alone() {
        let mut buffer = BytesMut::new();
        buffer.put_u32(u32::MAX);
        buffer.put_u8(17);
        buffer.put_u32(1);
        assert_eq!(
            Frame::decode(&mut buffer),
            Err(FrameError::TooLarge(u32::MAX as usize))
        );
        let big = Frame::control(FrameKind::Data, vec![0u8; MAX_PAYLOAD + 1]);
        assert!(big.encode(&mut BytesMut::new()).is_err());
    }
}
