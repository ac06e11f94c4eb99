//! The relay codecs as the fuzz targets drive them (feature `fuzzing`, which no
//! binary enables): each protocol's codec in the state a session leaves it in
//! after the handshake, fed bytes directly, with no sockets. The targets check
//! what a session does with hostile bytes from either peer under a policy, not
//! only what the decoders make of them.

use bytes::BytesMut;
use hoop_wire::postgres::{BackendDecoder, FrontendDecoder};

use crate::mysql::codec::MysqlCodec;
use crate::pipeline::SessionHook;
use crate::postgres::codec::PgCodec;
use crate::relay::RelayCodec;

/// A StartupMessage (protocol 3.0, user `fuzz`): what takes the client
/// decoder past the startup phase, as the session's handshake does.
const STARTUP: &[u8] = b"\0\0\0\x13\0\x03\0\0user\0fuzz\0\0";

/// The PostgreSQL relay codec of a session after its handshake.
pub struct PostgresRelay<'h>(PgCodec<'h>);

impl<'h> PostgresRelay<'h> {
    /// A codec with these decoder limits, whose client has sent its startup.
    pub fn new(limits: hoop_wire::postgres::Limits, hook: &'h mut dyn SessionHook) -> Self {
        let mut frontend = FrontendDecoder::new(limits);
        let mut startup = BytesMut::from(STARTUP);
        // A fixed, valid startup message: decoding it cannot fail.
        let _ = frontend.decode_frame(&mut startup);
        Self(PgCodec::new(frontend, BackendDecoder::new(limits), hook))
    }

    /// True when the server still owes an answer to a request.
    pub fn busy(&self) -> bool {
        self.0.busy()
    }
}

/// The MySQL relay codec of a session after its handshake.
pub struct MysqlRelay<'h>(MysqlCodec<'h>);

impl<'h> MysqlRelay<'h> {
    /// A codec in the command phase with these limits and negotiated
    /// capabilities; `allow_local_infile` as the connection's setting.
    pub fn new(
        limits: hoop_wire::mysql::Limits,
        capabilities: u64,
        allow_local_infile: bool,
        hook: &'h mut dyn SessionHook,
    ) -> Self {
        let session = hoop_wire::mysql::Session::after_handshake(limits, capabilities);
        Self(MysqlCodec::new(session, hook, allow_local_infile))
    }

    /// True when the server still owes the client a response.
    pub fn busy(&self) -> bool {
        self.0.busy()
    }
}

/// The relay codec trait of a wrapper, forwarded to the codec it wraps:
/// the wrappers exist only to keep the codecs' types private.
macro_rules! forward_relay_codec {
    ($relay:ident) => {
        impl RelayCodec for $relay<'_> {
            type Error = crate::error::SessionError;

            fn client_bytes(
                &mut self,
                input: &mut BytesMut,
                output: &mut Vec<u8>,
            ) -> Result<(), Self::Error> {
                self.0.client_bytes(input, output)
            }

            fn server_bytes(
                &mut self,
                input: &mut BytesMut,
                output: &mut Vec<u8>,
            ) -> Result<(), Self::Error> {
                self.0.server_bytes(input, output)
            }

            fn client_replies(&mut self, output: &mut Vec<u8>) {
                self.0.client_replies(output);
            }

            fn closed(&mut self, from_client: bool, pending: usize) -> Result<(), Self::Error> {
                self.0.closed(from_client, pending)
            }
        }
    };
}

forward_relay_codec!(PostgresRelay);
forward_relay_codec!(MysqlRelay);
