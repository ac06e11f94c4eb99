//! MySQL packet framing: `Int<3> payload length | Int<1> sequence id | payload`.
//!
//! A payload of 2^24-1 bytes or more is split into maximal packets, ended by a
//! shorter (possibly empty) one; the framer joins them into one [`Packet`].

use bytes::{BufMut, Bytes, BytesMut};

use crate::DecodeError;

/// The largest payload one physical packet carries.
pub(crate) const MAX_PHYSICAL_PAYLOAD: usize = 0xff_ffff;

/// Size caps, checked before bytes are buffered or allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest logical payload (after joining split packets).
    ///
    /// MySQL's `max_allowed_packet` defaults to 64 MiB; a bigger packet would
    /// be refused by the server too, so this also bounds what one session can
    /// make the proxy hold.
    pub max_payload_len: usize,
    /// Most columns in one result set. MySQL and MariaDB cap a table at
    /// 4,096 columns, not a SELECT list: MariaDB answers a 200,000-column
    /// SELECT, bounded only by `max_allowed_packet` on the query's text. This
    /// bounds what a count costs before any definition arrives (a column
    /// type byte each, to read binary rows); `max_column_bytes` bounds the
    /// definitions themselves.
    pub max_columns: usize,
    /// Most bytes the current result set's column definitions may hold
    /// (each definition's fields and its decoded form, about 300 bytes for a
    /// short name). The definitions are kept until the result set ends, to
    /// read its rows and tell the hook their columns; without this cap a
    /// server (or a query) of millions of columns would make one session
    /// hold gigabytes. 64 MiB, the default `max_payload_len`, holds about
    /// 200,000 columns.
    pub max_column_bytes: usize,
    /// Most prepared statements tracked per session. MySQL's
    /// `max_prepared_stmt_count` defaults to 16,382.
    pub max_statements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_payload_len: 64 << 20,
            max_columns: 1 << 20,
            max_column_bytes: 64 << 20,
            max_statements: 16_382,
        }
    }
}

/// One logical packet as it appeared on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Packet {
    /// The sequence id of its first physical packet.
    pub seq: u8,
    /// The payload, joined if it was split.
    pub payload: Bytes,
    /// The physical packets as received; forwarding the packet unchanged
    /// means writing these.
    pub bytes: Bytes,
    /// Offset of its first byte in the stream.
    pub offset: u64,
}

impl std::fmt::Debug for Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packet")
            .field("seq", &self.seq)
            .field("len", &self.payload.len())
            .field("offset", &self.offset)
            .finish()
    }
}

/// Writes `payload` as one or more physical packets starting at `seq`.
pub fn encode_packet(dst: &mut BytesMut, seq: u8, payload: &[u8]) {
    let mut seq = seq;
    let mut chunks = payload.chunks(MAX_PHYSICAL_PAYLOAD);
    loop {
        let chunk = chunks.next().unwrap_or(&[]);
        dst.put_slice(&(chunk.len() as u32).to_le_bytes()[..3]);
        dst.put_u8(seq);
        dst.put_slice(chunk);
        seq = seq.wrapping_add(1);
        if chunk.len() < MAX_PHYSICAL_PAYLOAD {
            return;
        }
    }
}

/// Splits one direction's byte stream into logical packets.
#[derive(Debug)]
pub(crate) struct Framer {
    pub(crate) offset: u64,
    max_payload_len: usize,
}

impl Framer {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            offset: 0,
            max_payload_len: limits.max_payload_len,
        }
    }

    pub(crate) fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let mut end = 0usize;
        let mut payload_len = 0usize;
        let mut physical = 0usize;
        loop {
            let Some(header) = buf.get(end..end + 4) else {
                return Ok(None);
            };
            let len =
                usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
            payload_len += len;
            if payload_len > self.max_payload_len {
                return Err(DecodeError::TooLarge {
                    offset: self.offset,
                    message: "packet",
                    len: payload_len as u64,
                    limit: self.max_payload_len as u64,
                });
            }
            end += 4 + len;
            physical += 1;
            if buf.len() < end {
                buf.reserve(end - buf.len());
                return Ok(None);
            }
            if len < MAX_PHYSICAL_PAYLOAD {
                break;
            }
        }
        let seq = buf[3];
        let bytes = buf.split_to(end).freeze();
        let payload = if physical == 1 {
            bytes.slice(4..)
        } else {
            let mut joined = BytesMut::with_capacity(payload_len);
            let mut at = 0;
            while at < bytes.len() {
                let len = usize::from(bytes[at])
                    | usize::from(bytes[at + 1]) << 8
                    | usize::from(bytes[at + 2]) << 16;
                joined.put_slice(&bytes[at + 4..at + 4 + len]);
                at += 4 + len;
            }
            joined.freeze()
        };
        let packet = Packet {
            seq,
            payload,
            bytes,
            offset: self.offset,
        };
        self.offset += end as u64;
        Ok(Some(packet))
    }
}
