//! The PostgreSQL frontend/backend protocol, version 3 (3.0 and 3.2).
//!
//! Specification: <https://www.postgresql.org/docs/current/protocol-message-formats.html>.
//!
//! ```text
//! startup phase (client):  Int32 len | Int32 code | body        (no type byte)
//!   code 80877103 SSLRequest, 80877104 GSSENCRequest, 80877102 CancelRequest,
//!   0x0003_00xx StartupMessage (then the normal phase begins)
//! negotiation (server):    one byte 'S' | 'G' | 'N' answering SSL/GSSENCRequest
//! normal phase (both):     Byte1 tag | Int32 len (counts itself, not the tag) | body
//! ```
//!
//! [`FrontendDecoder`] and [`BackendDecoder`] frame a byte stream into
//! [`Frame`]s (whole messages, their original bytes kept for verbatim
//! forwarding) and parse them into [`FrontendMessage`] and [`BackendMessage`].
//! Every parsed message re-encodes to exactly its original bytes. Lengths are
//! checked against [`Limits`] before anything is buffered, counts against the
//! bytes actually present before anything is allocated.
//!
//! ```
//! use bytes::BytesMut;
//! use hoop_wire::postgres::{FrontendDecoder, FrontendMessage, Limits};
//!
//! let mut decoder = FrontendDecoder::new(Limits::default());
//! let mut buf = BytesMut::new();
//! // A StartupMessage for user "alice", then a Query split across two reads.
//! buf.extend_from_slice(b"\0\0\0\x14\0\x03\0\0user\0alice\0\0Q\0\0\0\x0dSELE");
//! assert!(matches!(decoder.decode(&mut buf)?, Some(FrontendMessage::Startup(_))));
//! assert_eq!(decoder.decode(&mut buf)?, None); // the Query is incomplete
//! buf.extend_from_slice(b"CT 1\0");
//! let Some(FrontendMessage::Query(query)) = decoder.decode(&mut buf)? else {
//!     panic!("expected a Query");
//! };
//! assert_eq!(&query.query[..], b"SELECT 1");
//! # Ok::<(), hoop_wire::DecodeError>(())
//! ```

mod backend;
mod encode;
mod events;
mod framing;
mod frontend;
pub mod tags;

pub use backend::{
    Authentication, BackendKeyData, BackendMessage, Cells, CommandComplete, CopyResponse, DataRow,
    FieldDescription, FunctionCallResponse, NegotiateProtocolVersion, Notice, NotificationResponse,
    ParameterDescription, ParameterStatus, ReadyForQuery, RowDescription, field,
};
pub use events::{backend_event, frontend_event};
pub use framing::{BackendDecoder, Frame, FrontendDecoder, Limits};
pub use frontend::{
    AuthResponse, Bind, CancelRequest, Close, CopyData, CopyFail, Describe, Execute,
    FrontendMessage, FunctionCall, Parse, Query, SaslInitialResponse, StartupMessage,
};

#[cfg(test)]
mod tests;
