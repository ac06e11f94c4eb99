//! The MySQL client/server protocol (4.1+), as MySQL 5.7-9 and MariaDB speak it.
//!
//! Specification: <https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html>
//! and MariaDB's <https://mariadb.com/kb/en/clientserver-protocol/>.
//!
//! ```text
//! packet:      Int<3> payload length | Int<1> sequence id | payload
//!              (payloads of 2^24-1 bytes continue in the next packet)
//! connect:     server HandshakeV10 -> client HandshakeResponse41 (or SSLRequest, then TLS)
//!              -> AuthSwitchRequest / AuthMoreData exchanges -> OK | ERR
//! command:     client COM_* (sequence 0) -> server OK | ERR | result set
//! result set:  ColumnCount, ColumnDefinition41 x n, [EOF], rows (text or binary),
//!              EOF | OK (CLIENT_DEPRECATE_EOF); SERVER_MORE_RESULTS_EXISTS chains the next
//! ```
//!
//! A packet's meaning depends on the conversation, so one [`Session`] decodes
//! both directions. Cells are views into the received packet; rows re-encode
//! exactly; counts and lengths are checked against [`Limits`] and the bytes
//! present before anything is allocated. Compression and replication streams
//! are refused as [`DecodeError::Unsupported`](crate::DecodeError::Unsupported),
//! TLS after an SSLRequest as `Encrypted`.
//!
//! ```
//! use bytes::BytesMut;
//! use hoop_wire::mysql::{encode_packet, ErrPacket, Limits, ServerMessage, Session};
//!
//! let mut session = Session::new(Limits::default());
//! // A server refusing the connection before its handshake.
//! let mut payload = BytesMut::new();
//! ServerMessage::Err(ErrPacket::new(1040, b"08004", "Too many connections"))
//!     .encode_payload(&mut payload);
//! let mut wire = BytesMut::new();
//! encode_packet(&mut wire, 0, &payload);
//! let (_, message) = session.decode_server(&mut wire)?.expect("one whole packet");
//! assert_eq!(message.name(), "ERR");
//! # Ok::<(), hoop_wire::DecodeError>(())
//! ```

mod client;
mod compress;
pub mod consts;
mod framing;
mod server;
mod session;
mod value;

pub use client::{
    AuthData, ClientMessage, ComChangeUser, ComQuery, ComStmtExecute, Command, HandshakeResponse,
    SslRequest,
};
pub use compress::{Decompressor, compress_frames};
pub use consts::{capability, column_type, command, status};
pub use framing::{Limits, Packet, encode_packet};
pub use server::{
    AuthMoreData, AuthSwitchRequest, BinaryRow, ColumnCount, ColumnDefinition, EofPacket,
    ErrPacket, Handshake, LocalInfileRequest, OkPacket, ServerMessage, StmtPrepareOk, TextRow,
};
pub use session::Session;

#[cfg(test)]
mod tests;
