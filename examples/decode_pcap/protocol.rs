//! What a protocol supplies to the example: a name, a default server port,
//! and a decoder per connection. Adding a protocol is one implementation of
//! [`Protocol`] and one line in [`PROTOCOLS`].

use bytes::{Bytes, BytesMut};
use hoop_wire::DecodeError;

use super::mysql::Mysql;
use super::postgres::Postgres;

/// Every protocol the example decodes, selected with `--protocol NAME`.
pub(crate) const PROTOCOLS: &[&dyn Protocol] = &[&Postgres, &Mysql];

/// Finds a protocol by the name `--protocol` takes.
pub(crate) fn find(name: &str) -> Option<&'static dyn Protocol> {
    PROTOCOLS.iter().copied().find(|p| p.name() == name)
}

/// A wire protocol the example can decode.
pub(crate) trait Protocol: Sync {
    /// The name printed in each record's `"protocol"` and taken by `--protocol`.
    fn name(&self) -> &'static str;

    /// The server's well-known port, used unless `--port` says otherwise.
    fn default_port(&self) -> u16;

    /// A decoder for a new connection, both directions.
    fn connection(&self) -> Box<dyn ConnectionDecoder>;
}

/// One message as the example prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    /// The message's name as the protocol's documentation spells it.
    pub(crate) name: &'static str,
    /// The statement text, on messages that carry SQL.
    pub(crate) sql: Option<Bytes>,
}

/// Decodes both directions of one connection.
///
/// One value for both directions, because a protocol may need what one side
/// said to read the other (PostgreSQL's one-byte answer to an SSLRequest).
/// The example feeds each direction's bytes in capture order and calls the
/// matching method until it returns `Ok(None)`.
pub(crate) trait ConnectionDecoder {
    /// Decodes the next client-to-server message from the front of `buf`,
    /// removing its bytes; `Ok(None)` when `buf` holds no whole message yet.
    fn decode_client(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, DecodeError>;

    /// The same for server-to-client bytes.
    fn decode_server(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, DecodeError>;
}
