//! Following TCP connections through a capture and decoding each direction.
//!
//! Connections are numbered from 0 in order of first appearance, counting
//! every TCP conversation, not only the decoded ones, so the numbers are
//! normally those of tshark's `tcp.stream`. A decoded connection has a client
//! and a server side, each with its reassembler and decode buffer; bytes are
//! decoded as soon as they are contiguous, so messages come out in the order
//! of the frames that completed them, across both directions and all
//! connections.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;

use bytes::BytesMut;
use hoop_wire::DecodeError;
use serde::Serialize;

use super::packet::Segment;
use super::protocol::{ConnectionDecoder, Decoded, Protocol};
use super::reassembly::{GapTooLong, MAX_PENDING_BYTES, Reassembler};

/// Which way bytes flow, named from the server's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Direction {
    /// Client to server.
    Client,
    /// Server to client.
    Server,
}

/// One line of output: a decoded message.
#[derive(Debug, Serialize)]
struct Record<'a> {
    stream: u64,
    dir: Direction,
    protocol: &'static str,
    message: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sql: Option<Cow<'a, str>>,
    /// Offset of the message's first byte in its direction's stream.
    offset: u64,
    /// Number of the frame whose segment completed the message.
    frame: u64,
    file: &'a str,
}

/// Where records and diagnostics go, and what is being read.
pub(crate) struct Output<'a> {
    /// One JSON record per line.
    pub(crate) records: &'a mut dyn Write,
    /// Diagnostics for people.
    pub(crate) notes: &'a mut dyn Write,
    /// The capture's name, as given on the command line.
    pub(crate) file: &'a str,
}

impl Output<'_> {
    /// Writes a diagnostic line naming the file.
    pub(crate) fn note(&mut self, what: std::fmt::Arguments<'_>) -> io::Result<()> {
        writeln!(self.notes, "decode_pcap: {}: {what}", self.file)
    }
}

/// How one direction of a connection fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Bytes are decoded as they arrive.
    Decoding,
    /// The direction switched to TLS or GSS encryption: nothing more to read.
    Encrypted,
    /// The bytes do not decode; the rest of the direction is ignored.
    Failed,
    /// Too much data after a gap that was never filled.
    Lost,
}

/// One direction of a decoded connection.
#[derive(Debug)]
struct Side {
    reassembler: Reassembler,
    /// Contiguous bytes not decoded yet: at most one partial message, whose
    /// size the codec's limits cap, plus the segment that extended it.
    buf: BytesMut,
    /// Stream offset of `buf`'s first byte.
    consumed: u64,
    state: State,
}

impl Side {
    fn new() -> Self {
        Self {
            reassembler: Reassembler::default(),
            buf: BytesMut::new(),
            consumed: 0,
            state: State::Decoding,
        }
    }

    /// Stops decoding this direction and frees what it holds.
    fn stop(&mut self, state: State) {
        self.state = state;
        self.buf = BytesMut::new();
        self.reassembler = Reassembler::default();
    }
}

/// A connection to the server port, decoded.
struct Connection {
    stream: u64,
    client: SocketAddr,
    decoder: Box<dyn ConnectionDecoder>,
    client_side: Side,
    server_side: Side,
}

/// Any TCP conversation in the capture; only its number counts unless it
/// is decoded.
struct Conversation {
    /// The sequence number of the client's SYN, once seen: a SYN with another
    /// number on the same addresses and ports opens a new connection.
    syn_seq: Option<u32>,
    /// Present when one side is the server port.
    connection: Option<Box<Connection>>,
}

/// What the file's streams came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Connections to the server port.
    pub(crate) decoded: u64,
    /// Of those, the ones with a direction that did not decode.
    pub(crate) failed: u64,
}

/// Follows every TCP conversation of one capture.
pub(crate) struct Streams {
    protocol: &'static dyn Protocol,
    port: u16,
    /// By the two endpoints, the lower first.
    conversations: HashMap<(SocketAddr, SocketAddr), Conversation>,
    next_stream: u64,
    summary: Summary,
}

impl Streams {
    /// Decodes `protocol` on connections to `port`.
    pub(crate) fn new(protocol: &'static dyn Protocol, port: u16) -> Self {
        Self {
            protocol,
            port,
            conversations: HashMap::new(),
            next_stream: 0,
            summary: Summary::default(),
        }
    }

    /// Takes the segment of frame number `frame` and prints what it completes.
    ///
    /// # Errors
    ///
    /// Only from writing to `output`.
    pub(crate) fn segment(
        &mut self,
        segment: &Segment<'_>,
        frame: u64,
        output: &mut Output<'_>,
    ) -> io::Result<()> {
        let key = if segment.src <= segment.dst {
            (segment.src, segment.dst)
        } else {
            (segment.dst, segment.src)
        };
        let opens = segment.syn && !segment.ack;
        let starts_stream = match self.conversations.get(&key) {
            Some(c) => opens && c.syn_seq.is_some_and(|s| s != segment.seq),
            None => true,
        };
        if starts_stream {
            let stream = self.next_stream;
            self.next_stream += 1;
            let connection = self.connection_for(segment, stream);
            let replaced = self.conversations.insert(
                key,
                Conversation {
                    syn_seq: None,
                    connection,
                },
            );
            if let Some(old) = replaced.and_then(|c| c.connection) {
                self.finish(*old, output)?;
            }
        }
        let Some(conversation) = self.conversations.get_mut(&key) else {
            return Ok(());
        };
        if opens {
            conversation.syn_seq = Some(segment.seq);
        }
        let Some(connection) = conversation.connection.as_deref_mut() else {
            return Ok(());
        };
        let dir = if segment.src == connection.client {
            Direction::Client
        } else {
            Direction::Server
        };
        let protocol = self.protocol.name();
        let side = match dir {
            Direction::Client => &mut connection.client_side,
            Direction::Server => &mut connection.server_side,
        };
        if side.state != State::Decoding {
            return Ok(());
        }
        if let Err(GapTooLong { offset }) =
            side.reassembler
                .push(segment.seq, segment.syn, segment.payload, &mut side.buf)
        {
            side.stop(State::Lost);
            return output.note(format_args!(
                "stream {} {}: over {} MiB held after a gap at byte offset {offset}; \
                 the rest of this direction is not decoded",
                connection.stream,
                dir.name(),
                MAX_PENDING_BYTES >> 20,
            ));
        }
        decode_available(connection, dir, protocol, frame, output)
    }

    /// Reports what each connection left undecoded and returns the summary.
    ///
    /// # Errors
    ///
    /// Only from writing to `output`.
    pub(crate) fn finish_all(mut self, output: &mut Output<'_>) -> io::Result<Summary> {
        let mut connections: Vec<_> = self
            .conversations
            .drain()
            .filter_map(|(_, c)| c.connection)
            .collect();
        connections.sort_by_key(|c| c.stream);
        for connection in connections {
            self.finish(*connection, output)?;
        }
        Ok(self.summary)
    }

    /// A decoder for a new conversation, if one side is the server port.
    fn connection_for(&mut self, segment: &Segment<'_>, stream: u64) -> Option<Box<Connection>> {
        let client = match (
            segment.src.port() == self.port,
            segment.dst.port() == self.port,
        ) {
            (false, true) => segment.src,
            (true, false) => segment.dst,
            // Both ends on the server port: the first sender is the client,
            // unless this is the server's SYN-ACK.
            (true, true) if segment.syn && segment.ack => segment.dst,
            (true, true) => segment.src,
            (false, false) => return None,
        };
        self.summary.decoded += 1;
        Some(Box::new(Connection {
            stream,
            client,
            decoder: self.protocol.connection(),
            client_side: Side::new(),
            server_side: Side::new(),
        }))
    }

    /// Counts a connection that failed and reports bytes it leaves
    /// undecoded at its end.
    fn finish(&mut self, connection: Connection, output: &mut Output<'_>) -> io::Result<()> {
        let sides = [&connection.client_side, &connection.server_side];
        if sides.iter().any(|side| side.state == State::Failed) {
            self.summary.failed += 1;
        }
        for (dir, side) in [
            (Direction::Client, &connection.client_side),
            (Direction::Server, &connection.server_side),
        ] {
            if side.state != State::Decoding {
                continue;
            }
            let stream = connection.stream;
            let dir = dir.name();
            if !side.buf.is_empty() {
                output.note(format_args!(
                    "stream {stream} {dir}: capture ends inside a message at byte offset {} \
                     ({} bytes held)",
                    side.consumed,
                    side.buf.len(),
                ))?;
            }
            if side.reassembler.pending_bytes() > 0 {
                output.note(format_args!(
                    "stream {stream} {dir}: bytes missing at byte offset {}; \
                     {} bytes after the gap not decoded",
                    side.reassembler.delivered(),
                    side.reassembler.pending_bytes(),
                ))?;
            }
        }
        Ok(())
    }
}

impl Direction {
    /// The direction as printed.
    fn name(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Server => "server",
        }
    }
}

/// Decodes every whole message in one direction's buffer and prints it.
fn decode_available(
    connection: &mut Connection,
    dir: Direction,
    protocol: &'static str,
    frame: u64,
    output: &mut Output<'_>,
) -> io::Result<()> {
    let stream = connection.stream;
    let decoder = &mut connection.decoder;
    let side = match dir {
        Direction::Client => &mut connection.client_side,
        Direction::Server => &mut connection.server_side,
    };
    while !side.buf.is_empty() {
        let held = side.buf.len();
        let decoded = match dir {
            Direction::Client => decoder.decode_client(&mut side.buf),
            Direction::Server => decoder.decode_server(&mut side.buf),
        };
        let Decoded { name, sql } = match decoded {
            Ok(Some(message)) => message,
            Ok(None) => break,
            Err(e @ DecodeError::Encrypted { .. }) => {
                side.stop(State::Encrypted);
                return output.note(format_args!(
                    "stream {stream} {}: encrypted from byte offset {}, not decoded further",
                    dir.name(),
                    e.offset(),
                ));
            }
            Err(e) => {
                side.stop(State::Failed);
                return output.note(format_args!(
                    "stream {stream} {}: does not decode at byte offset {}: {e}",
                    dir.name(),
                    e.offset(),
                ));
            }
        };
        let offset = side.consumed;
        let used = held.saturating_sub(side.buf.len());
        side.consumed += used as u64;
        serde_json::to_writer(
            &mut *output.records,
            &Record {
                stream,
                dir,
                protocol,
                message: name,
                sql: sql.as_deref().map(String::from_utf8_lossy),
                offset,
                frame,
                file: output.file,
            },
        )?;
        output.records.write_all(b"\n")?;
        if used == 0 {
            // A decoder that yields a message without consuming input would
            // make this loop spin forever on the same bytes.
            side.stop(State::Failed);
            return output.note(format_args!(
                "stream {stream} {}: decoder consumed nothing at byte offset {offset}",
                dir.name(),
            ));
        }
    }
    Ok(())
}
