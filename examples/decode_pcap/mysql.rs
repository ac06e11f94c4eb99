//! MySQL and MariaDB through `hoop_wire::mysql`.

use bytes::BytesMut;
use hoop_wire::DecodeError;
use hoop_wire::mysql::{ClientMessage, Command, Limits, Session};

use super::protocol::{ConnectionDecoder, Decoded, Protocol};

/// The MySQL client/server protocol.
#[derive(Debug)]
pub(crate) struct Mysql;

impl Protocol for Mysql {
    fn name(&self) -> &'static str {
        "mysql"
    }

    fn default_port(&self) -> u16 {
        3306
    }

    fn connection(&self) -> Box<dyn ConnectionDecoder> {
        // One session decodes both directions: what a server packet means
        // depends on the command the client sent and the capabilities agreed.
        Box::new(MysqlConnection(Session::new(Limits::default())))
    }
}

/// The session state of one MySQL connection.
struct MysqlConnection(Session);

impl ConnectionDecoder for MysqlConnection {
    fn decode_client(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, DecodeError> {
        Ok(self.0.decode_client(buf)?.map(|(_, message)| {
            let sql = match &message {
                ClientMessage::Command(Command::Query(query)) => Some(query.query.clone()),
                ClientMessage::Command(Command::StmtPrepare(sql)) => Some(sql.clone()),
                _ => None,
            };
            Decoded {
                name: message.name(),
                sql,
            }
        }))
    }

    fn decode_server(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, DecodeError> {
        Ok(self.0.decode_server(buf)?.map(|(_, message)| Decoded {
            name: message.name(),
            sql: None,
        }))
    }
}
