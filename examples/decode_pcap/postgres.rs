//! PostgreSQL through `hoop_wire::postgres`.

use bytes::BytesMut;
use hoop_wire::DecodeError;
use hoop_wire::postgres::{BackendDecoder, FrontendDecoder, FrontendMessage, Limits};

use super::protocol::{ConnectionDecoder, Decoded, Protocol};

/// The PostgreSQL frontend/backend protocol.
#[derive(Debug)]
pub(crate) struct Postgres;

impl Protocol for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn default_port(&self) -> u16 {
        5432
    }

    fn connection(&self) -> Box<dyn ConnectionDecoder> {
        Box::new(PostgresConnection {
            frontend: FrontendDecoder::new(Limits::default()),
            backend: BackendDecoder::new(Limits::default()),
        })
    }
}

/// Both decoders of one PostgreSQL connection.
struct PostgresConnection {
    frontend: FrontendDecoder,
    backend: BackendDecoder,
}

impl ConnectionDecoder for PostgresConnection {
    fn decode_client(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, DecodeError> {
        let Some(message) = self.frontend.decode(buf)? else {
            return Ok(None);
        };
        let sql = match &message {
            // The server answers each of these with one untagged byte before
            // anything else it sends; its decoder must expect that byte.
            FrontendMessage::SslRequest | FrontendMessage::GssEncRequest => {
                self.backend.expect_negotiation_response();
                None
            }
            FrontendMessage::Query(query) => Some(query.query.clone()),
            FrontendMessage::Parse(parse) => Some(parse.query.clone()),
            _ => None,
        };
        Ok(Some(Decoded {
            name: message.name(),
            sql,
        }))
    }

    fn decode_server(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, DecodeError> {
        Ok(self.backend.decode(buf)?.map(|message| Decoded {
            name: message.name(),
            sql: None,
        }))
    }
}
