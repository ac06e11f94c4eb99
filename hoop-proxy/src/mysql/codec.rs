//! The relay: both directions of the command phase through one
//! `hoop_wire::mysql::Session`, statements and rows through the pipeline
//! hook.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use hoop_wire::event::Event;
use hoop_wire::mysql::{
    BinaryRow, ClientMessage, Command, Packet, ServerMessage, Session, TextRow, column_type,
    encode_packet,
};

use super::error::REFUSED_BY_POLICY;
use super::packet::err_payload;
use super::threads::{Account, ThreadRegistry};
use crate::error::{Culprit, SessionError};
use crate::pipeline::{ClientAction, Interest, ServerAction, SessionHook};
use crate::relay::RelayCodec;

/// MariaDB's "metadata follows" flag when column definitions come next.
const METADATA_FOLLOWS: u8 = 1;

/// Refusals waiting for earlier responses. A client may pipeline commands;
/// this bounds what a flood of refused ones can make hoop hold.
const MAX_QUEUED_REFUSALS: usize = 1024;

/// One session's relay state.
pub(crate) struct MysqlCodec<'h> {
    session: Session,
    hook: &'h mut dyn SessionHook,
    interest: Interest,
    allow_local_infile: bool,
    /// Responses the client's commands asked for, and responses finished.
    issued: u64,
    answered: u64,
    /// Refusals (ERR packets) to send once `answered` reaches their mark.
    refusals: VecDeque<(u64, Bytes)>,
    /// The sequence id of the next packet to the client, for a final ERR.
    client_seq: u8,
    quit: bool,
    /// Whether the client expects MariaDB's "metadata follows" byte that
    /// its server does not send (see [`Self::announcing_metadata`]).
    announce_metadata: bool,
    /// Translates the connection id of a `KILL` sent as an account (see
    /// [`Self::translating_kills`]).
    threads: Option<(ThreadRegistry, Account)>,
    /// The body of a COM_CHANGE_USER the relay stopped for.
    change_user: Option<Bytes>,
    scratch: BytesMut,
}

impl<'h> MysqlCodec<'h> {
    pub(crate) fn new(
        session: Session,
        hook: &'h mut dyn SessionHook,
        allow_local_infile: bool,
    ) -> Self {
        let interest = hook.interest();
        Self {
            session,
            hook,
            interest,
            allow_local_infile,
            issued: 0,
            answered: 0,
            refusals: VecDeque::new(),
            client_seq: 1,
            quit: false,
            announce_metadata: false,
            threads: None,
            change_user: None,
            scratch: BytesMut::new(),
        }
    }

    /// A `KILL [QUERY] <id>` from the client naming an id a session of the
    /// same account registered in the registry (one a gateway told its
    /// client) reaches the server with the thread's id instead.
    pub(crate) fn translating_kills(mut self, threads: Option<(ThreadRegistry, Account)>) -> Self {
        self.threads = threads;
        self
    }

    /// For a client that took MariaDB's metadata cache from hoop while the
    /// server lacks it: each column count reaches the client with
    /// "metadata follows" 1, which the server's full definitions then
    /// honour. The session itself runs with the server's capabilities.
    pub(crate) fn announcing_metadata(mut self, announce: bool) -> Self {
        self.announce_metadata = announce;
        self
    }

    /// True when the server still owes the client a response.
    pub(crate) fn busy(&self) -> bool {
        self.session.pending_responses() > 0
    }

    /// The body of the COM_CHANGE_USER that stopped the relay
    /// ([`SessionError::ChangeUser`]), once.
    pub(crate) fn take_change_user(&mut self) -> Option<Bytes> {
        self.change_user.take()
    }

    /// True when the client said goodbye with COM_QUIT.
    pub(crate) fn quit(&self) -> bool {
        self.quit
    }

    /// The sequence id for an ERR hoop sends the client on its own.
    pub(crate) fn client_seq(&self) -> u8 {
        self.client_seq
    }

    /// Shows a statement to the hook; true when it was refused (and answered
    /// in place).
    fn judge(&mut self, packet: &Packet, message: &ClientMessage) -> bool {
        let Some(event) = self.session.client_event(message) else {
            return false;
        };
        let ClientAction::Refuse(refusal) = self.hook.client_event(&event) else {
            return false;
        };
        self.session.answered_locally();
        let (code, state) = REFUSED_BY_POLICY;
        let payload = err_payload(code, state, &refusal.message);
        encode_packet(&mut self.scratch, packet.seq.wrapping_add(1), &payload);
        self.refusals
            .push_back((self.issued, self.scratch.split().freeze()));
        true
    }

    /// Appends the refusals whose earlier responses have all been sent.
    fn release_refusals(&mut self, output: &mut Vec<u8>) {
        while let Some((_, error)) = self
            .refusals
            .pop_front_if(|(mark, _)| *mark <= self.answered)
        {
            output.extend_from_slice(&error);
        }
    }

    /// Passes a server packet on as it came, but for the "metadata follows"
    /// byte a column count gains when hoop announces metadata.
    fn forward(&mut self, packet: &Packet, message: &ServerMessage, output: &mut Vec<u8>) {
        if !(self.announce_metadata && matches!(message, ServerMessage::ColumnCount(_))) {
            output.extend_from_slice(&packet.bytes);
            return;
        }
        self.scratch.extend_from_slice(&packet.payload);
        self.scratch.extend_from_slice(&[METADATA_FOLLOWS]);
        let payload = self.scratch.split();
        encode_packet(&mut self.scratch, packet.seq, &payload);
        output.extend_from_slice(&self.scratch);
        self.scratch.clear();
    }

    /// Shows a server event to the hook; true when the packet was replaced
    /// by a rewritten row.
    fn show(
        &mut self,
        packet: &Packet,
        message: &ServerMessage,
        output: &mut Vec<u8>,
    ) -> Result<bool, SessionError> {
        let Some(mut event) = self.session.server_event(message) else {
            if let ServerMessage::ColumnCount(count) = message
                && count.metadata_follows == Some(0)
            {
                // Rows would follow that the pipeline could not tie to
                // columns: masking decides per column, so fail closed. The
                // final ERR takes the column count's place.
                self.client_seq = packet.seq;
                return Err(SessionError::Unexpected {
                    culprit: Culprit::Server,
                    message: "a result set without column definitions",
                });
            }
            return Ok(false);
        };
        if self.hook.server_event(&mut event) == ServerAction::Forward {
            return Ok(false);
        }
        let payload = match (event, message) {
            (Event::Row { cells }, ServerMessage::TextRow(_)) => {
                let row = TextRow::from_cells(cells.iter().map(|c| c.as_deref()));
                ServerMessage::TextRow(row).encode_payload(&mut self.scratch);
                self.scratch.split()
            }
            (Event::Row { cells }, ServerMessage::BinaryRow(row)) => {
                let types: Arc<[u8]> = Arc::from(row.types());
                if !fits_binary_types(&types, &cells) {
                    return Err(SessionError::Ended(
                        "the pipeline rewrote a binary row with values that do not fit their column types",
                    ));
                }
                let row = BinaryRow::from_cells(types, cells.iter().map(|c| c.as_deref()));
                ServerMessage::BinaryRow(row).encode_payload(&mut self.scratch);
                self.scratch.split()
            }
            _ => {
                return Err(SessionError::Ended(
                    "the pipeline rewrote an event the MySQL driver cannot re-encode",
                ));
            }
        };
        // The original sequence id: the client counts every packet.
        encode_packet(&mut self.scratch, packet.seq, &payload);
        output.extend_from_slice(&self.scratch);
        self.scratch.clear();
        Ok(true)
    }
}

/// Whether rewritten binary cells can be encoded under the row's column
/// types: one per column, fixed-size types at their size, temporal values
/// at one of their lengths.
fn fits_binary_types(types: &[u8], cells: &[Option<Bytes>]) -> bool {
    types.len() == cells.len()
        && types.iter().zip(cells).all(|(&ty, cell)| {
            let Some(value) = cell else { return true };
            match ty {
                column_type::NULL => value.is_empty(),
                column_type::TINY => value.len() == 1,
                column_type::SHORT | column_type::YEAR => value.len() == 2,
                column_type::LONG | column_type::INT24 | column_type::FLOAT => value.len() == 4,
                column_type::LONGLONG | column_type::DOUBLE => value.len() == 8,
                column_type::DATE
                | column_type::DATETIME
                | column_type::TIMESTAMP
                | column_type::DATETIME2
                | column_type::TIMESTAMP2
                | column_type::NEWDATE => [0, 4, 7, 11].contains(&value.len()),
                column_type::TIME | column_type::TIME2 => [0, 8, 12].contains(&value.len()),
                _ => true,
            }
        })
}

impl RelayCodec for MysqlCodec<'_> {
    type Error = SessionError;

    fn client_bytes(
        &mut self,
        input: &mut BytesMut,
        output: &mut Vec<u8>,
    ) -> Result<(), SessionError> {
        loop {
            let before = self.session.pending_responses();
            let Some((packet, message)) = self
                .session
                .decode_client(input)
                .map_err(SessionError::client_protocol)?
            else {
                return Ok(());
            };
            match &message {
                ClientMessage::Command(Command::Quit) => self.quit = true,
                ClientMessage::Command(Command::ChangeUser(body)) => {
                    // Answered by the driver between two runs of the relay
                    // (see `ChangeUser`), once every earlier response is in.
                    self.client_seq = packet.seq.wrapping_add(1);
                    if before > 0 || !input.is_empty() {
                        return Err(SessionError::Unsupported(
                            "COM_CHANGE_USER pipelined with other commands",
                        ));
                    }
                    self.change_user = Some(body.clone());
                    return Err(SessionError::ChangeUser);
                }
                ClientMessage::Command(
                    Command::Query(_) | Command::StmtPrepare(_) | Command::StmtExecute(_),
                ) if self.interest.statements && self.judge(&packet, &message) => {
                    if self.refusals.len() > MAX_QUEUED_REFUSALS {
                        return Err(SessionError::Unexpected {
                            culprit: Culprit::Client,
                            message: "flood of refused commands",
                        });
                    }
                    continue;
                }
                _ => {}
            }
            self.issued += self.session.pending_responses().saturating_sub(before) as u64;
            if let (Some((threads, account)), ClientMessage::Command(Command::Query(query))) =
                (&self.threads, &message)
                && let Some(rewritten) = threads.translate_kill(&query.query, account)
            {
                // The query is the payload's tail, after any attributes.
                let head = packet.payload.len().saturating_sub(query.query.len());
                let mut payload = Vec::with_capacity(head + rewritten.len());
                payload.extend_from_slice(packet.payload.get(..head).unwrap_or_default());
                payload.extend_from_slice(&rewritten);
                self.scratch.clear();
                encode_packet(&mut self.scratch, packet.seq, &payload);
                output.extend_from_slice(&self.scratch);
                continue;
            }
            output.extend_from_slice(&packet.bytes);
        }
    }

    fn server_bytes(
        &mut self,
        input: &mut BytesMut,
        output: &mut Vec<u8>,
    ) -> Result<(), SessionError> {
        self.release_refusals(output);
        loop {
            let before = self.session.pending_responses();
            let Some((packet, message)) = self
                .session
                .decode_server(input)
                .map_err(SessionError::server_protocol)?
            else {
                return Ok(());
            };
            self.answered += before.saturating_sub(self.session.pending_responses()) as u64;
            self.client_seq = packet.seq.wrapping_add(1);
            let interested = match &message {
                ServerMessage::TextRow(_) | ServerMessage::BinaryRow(_) => self.interest.rows,
                ServerMessage::ColumnDefinition(_) | ServerMessage::ColumnCount(_) => {
                    self.interest.columns
                }
                ServerMessage::Ok(_) | ServerMessage::Eof(_) => self.interest.completions,
                ServerMessage::Err(_) => self.interest.errors,
                ServerMessage::LocalInfileRequest(_) if !self.allow_local_infile => {
                    // Fail closed: a server must not read the client's files
                    // unless the connection allows it (hoop never offered the
                    // capability, so only a rogue server asks). The final
                    // ERR takes the request's place.
                    self.client_seq = packet.seq;
                    return Err(SessionError::Policy("the database server asked for a local file (LOAD DATA LOCAL INFILE), which this connection does not allow".into()));
                }
                _ => false,
            };
            if !(interested && self.show(&packet, &message, output)?) {
                self.forward(&packet, &message, output);
            }
            self.release_refusals(output);
        }
    }

    fn client_replies(&mut self, output: &mut Vec<u8>) {
        self.release_refusals(output);
    }

    fn closed(&mut self, from_client: bool, pending: usize) -> Result<(), SessionError> {
        crate::relay::server_closed_mid_message(from_client, pending)
    }
}

#[cfg(test)]
mod tests {
    use hoop_wire::mysql::{Limits, capability};

    use super::*;
    use crate::pipeline::Refusal;

    const CAPABILITIES: u64 = capability::PROTOCOL_41
        | capability::SECURE_CONNECTION
        | capability::PLUGIN_AUTH
        | capability::DEPRECATE_EOF;

    fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
        let mut wire = BytesMut::new();
        encode_packet(&mut wire, seq, payload);
        wire.to_vec()
    }

    fn query(sql: &str) -> Vec<u8> {
        packet(0, &[&[0x03][..], sql.as_bytes()].concat())
    }

    /// An OK: no rows affected, no insert id, autocommit, no warnings.
    const OK: [u8; 7] = [0, 0, 0, 2, 0, 0, 0];

    struct RefuseDrop;

    impl SessionHook for RefuseDrop {
        fn interest(&self) -> Interest {
            Interest {
                statements: true,
                ..Interest::NONE
            }
        }

        fn client_event(&mut self, event: &Event) -> ClientAction {
            match event {
                Event::Query { text } if text.starts_with("DROP") => {
                    ClientAction::Refuse(Refusal {
                        code: "42000".to_owned(),
                        message: "no drops".to_owned(),
                    })
                }
                _ => ClientAction::Forward,
            }
        }
    }

    #[test]
    fn refusal_of_a_pipelined_command_waits_for_the_earlier_response() {
        let mut hook = RefuseDrop;
        let mut codec = MysqlCodec::new(
            Session::after_handshake(Limits::default(), CAPABILITIES),
            &mut hook,
            false,
        );
        let mut to_server = Vec::new();
        let mut to_client = Vec::new();
        let mut input = BytesMut::from(&[query("DO 1"), query("DROP TABLE t")].concat()[..]);
        codec.client_bytes(&mut input, &mut to_server).unwrap();
        codec.client_replies(&mut to_client);
        assert_eq!(to_server, query("DO 1"), "the refused command stays here");
        assert!(
            to_client.is_empty(),
            "the first command is still unanswered"
        );

        let mut input = BytesMut::from(&packet(1, &OK)[..]);
        codec.server_bytes(&mut input, &mut to_client).unwrap();
        let (code, state) = REFUSED_BY_POLICY;
        let refusal = packet(1, &err_payload(code, state, "no drops"));
        assert_eq!(to_client, [packet(1, &OK), refusal].concat());
        assert!(!codec.busy());

        // With nothing pending the answer goes out at once.
        let mut input = BytesMut::from(&query("DROP TABLE u")[..]);
        let mut to_server = Vec::new();
        let mut to_client = Vec::new();
        codec.client_bytes(&mut input, &mut to_server).unwrap();
        codec.client_replies(&mut to_client);
        assert!(to_server.is_empty());
        assert_eq!(to_client, packet(1, &err_payload(code, state, "no drops")));
    }

    #[test]
    fn local_infile_request_ends_the_session_unless_allowed() {
        for allowed in [false, true] {
            let mut hook = crate::pipeline::NoopPipeline;
            let mut codec = MysqlCodec::new(
                Session::after_handshake(Limits::default(), CAPABILITIES),
                &mut hook,
                allowed,
            );
            let mut input = BytesMut::from(&query("LOAD DATA LOCAL INFILE 'x' INTO TABLE t")[..]);
            codec.client_bytes(&mut input, &mut Vec::new()).unwrap();
            let request = packet(1, b"\xfb/etc/passwd");
            let mut to_client = Vec::new();
            let result = codec.server_bytes(&mut BytesMut::from(&request[..]), &mut to_client);
            if allowed {
                result.unwrap();
                assert_eq!(to_client, request);
            } else {
                assert!(matches!(result, Err(SessionError::Policy(_))));
                assert!(to_client.is_empty(), "the request never reaches the client");
                assert_eq!(codec.client_seq(), 1, "the ERR answers the query");
            }
        }
    }

    /// A real MariaDB 10.11 conversation under MARIADB_CLIENT_CACHE_METADATA
    /// (see hoop-wire's tests): a statement prepared, then executed twice,
    /// both answered without column definitions.
    const MARIADB_CACHE_METADATA: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../hoop-wire/testdata/mariadb_cache_metadata.bin"
    ));

    const MARIADB_CAPABILITIES: u64 =
        CAPABILITIES | capability::PROTOCOL_41 | capability::MARIADB_CACHE_METADATA;

    fn recorded_chunks() -> Vec<(bool, BytesMut)> {
        let mut bytes = MARIADB_CACHE_METADATA;
        let mut chunks = Vec::new();
        while let [dir, a, b, c, d, rest @ ..] = bytes {
            let len = u32::from_le_bytes([*a, *b, *c, *d]) as usize;
            chunks.push((*dir == b'C', BytesMut::from(&rest[..len])));
            bytes = &rest[len..];
        }
        chunks
    }

    /// Relays the recorded conversation; what reached the client.
    fn relay_recording(hook: &mut dyn SessionHook) -> Result<Vec<u8>, SessionError> {
        let mut codec = MysqlCodec::new(
            Session::after_handshake(Limits::default(), MARIADB_CAPABILITIES),
            hook,
            false,
        );
        let mut to_client = Vec::new();
        for (from_client, mut bytes) in recorded_chunks() {
            if from_client {
                codec.client_bytes(&mut bytes, &mut Vec::new())?;
            } else {
                codec.server_bytes(&mut bytes, &mut to_client)?;
            }
            assert!(bytes.is_empty());
        }
        Ok(to_client)
    }

    #[test]
    fn executions_without_metadata_are_masked_by_the_prepared_columns() {
        let pipeline = crate::policy::PolicyPipeline::from_json(
            r#"{"masking": {"columns": [{"columns": ["*.ssn"], "entity": "US_SOCIAL_SECURITY_NUMBER",
                                          "transform": {"type": "mask", "keep_last": 4}}]}}"#,
        )
        .unwrap();
        let mut hook = crate::pipeline::Pipeline::open(
            &pipeline,
            &crate::pipeline::SessionInfo {
                protocol: "mysql",
                peer: "127.0.0.1:1".parse().unwrap(),
                user: "u".to_owned(),
                database: None,
            },
        );
        let to_client = relay_recording(hook.as_mut()).unwrap();
        let text = String::from_utf8_lossy(&to_client);
        // Both executions: the ssn column by its name (known only from the
        // prepare response), the address by its content.
        assert_eq!(text.matches("*******6789").count(), 2, "{text:?}");
        assert_eq!(text.matches("*******9999").count(), 2, "{text:?}");
        assert_eq!(
            text.matches("[REDACTED:EMAIL_ADDRESS]").count(),
            4,
            "{text:?}"
        );
        for value in ["123-45-6789", "219-09-9999", "@example."] {
            assert!(!text.contains(value), "{value} leaked: {text:?}");
        }
    }

    #[test]
    fn executions_without_metadata_pass_through_unchanged() {
        let mut hook = crate::pipeline::NoopPipeline;
        let to_client = relay_recording(&mut hook).unwrap();
        let from_server: Vec<u8> = recorded_chunks()
            .into_iter()
            .filter(|(from_client, _)| !from_client)
            .flat_map(|(_, bytes)| bytes.to_vec())
            .collect();
        assert_eq!(to_client, from_server);
    }

    #[test]
    fn a_text_result_without_metadata_ends_a_masked_session() {
        struct Columns;
        impl SessionHook for Columns {
            fn interest(&self) -> Interest {
                Interest {
                    columns: true,
                    rows: true,
                    ..Interest::NONE
                }
            }
        }
        let mut hook = Columns;
        let mut codec = MysqlCodec::new(
            Session::after_handshake(Limits::default(), MARIADB_CAPABILITIES),
            &mut hook,
            false,
        );
        let mut input = BytesMut::from(&query("SELECT 1")[..]);
        codec.client_bytes(&mut input, &mut Vec::new()).unwrap();
        let mut input = BytesMut::from(&packet(1, &[1, 0])[..]);
        let mut to_client = Vec::new();
        assert!(matches!(
            codec.server_bytes(&mut input, &mut to_client),
            Err(SessionError::Unexpected {
                culprit: Culprit::Server,
                ..
            })
        ));
        assert!(to_client.is_empty());
        assert_eq!(
            codec.client_seq(),
            1,
            "the ERR takes the column count's place"
        );
    }

    /// A real MariaDB 10.11 conversation *without* the metadata cache,
    /// recorded by a raw-socket client (the same capabilities as
    /// [`MARIADB_CACHE_METADATA`]'s but that one): COM_QUERY `SELECT 1 AS n,
    /// 'a' AS s`, COM_STMT_PREPARE of `SELECT ? AS n, 'b' AS s` executed
    /// with 7 and 8, COM_STMT_CLOSE, COM_QUIT. What a server without the
    /// cache (MySQL) sends.
    const MARIADB_WITHOUT_CACHE: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../hoop-wire/testdata/mariadb_without_cache_metadata.bin"
    ));

    #[test]
    fn a_client_with_the_metadata_cache_reads_a_server_without_it() {
        let mut hook = crate::pipeline::NoopPipeline;
        let mut codec = MysqlCodec::new(
            Session::after_handshake(
                Limits::default(),
                MARIADB_CAPABILITIES & !capability::MARIADB_CACHE_METADATA,
            ),
            &mut hook,
            false,
        )
        .announcing_metadata(true);
        // The client's view: a session that took the cache, as libmariadb's.
        let mut client = Session::after_handshake(Limits::default(), MARIADB_CAPABILITIES);
        let (mut counts, mut rows, mut from_server, mut to_client) = (0, 0, 0, 0);
        let mut bytes = MARIADB_WITHOUT_CACHE;
        while let [dir, a, b, c, d, rest @ ..] = bytes {
            let len = u32::from_le_bytes([*a, *b, *c, *d]) as usize;
            let mut chunk = BytesMut::from(&rest[..len]);
            bytes = &rest[len..];
            if *dir == b'C' {
                client.decode_client(&mut chunk.clone()).unwrap();
                codec.client_bytes(&mut chunk, &mut Vec::new()).unwrap();
                continue;
            }
            from_server += chunk.len();
            let mut out = Vec::new();
            codec.server_bytes(&mut chunk, &mut out).unwrap();
            to_client += out.len();
            let mut out = BytesMut::from(&out[..]);
            while let Some((_, message)) = client.decode_server(&mut out).unwrap() {
                match message {
                    ServerMessage::ColumnCount(count) => {
                        assert_eq!(count.metadata_follows, Some(1));
                        counts += 1;
                    }
                    ServerMessage::TextRow(_) | ServerMessage::BinaryRow(_) => rows += 1,
                    _ => {}
                }
            }
            assert!(out.is_empty(), "whole packets reach the client");
        }
        assert_eq!((counts, rows), (3, 3), "the query's and both executions'");
        assert_eq!(to_client, from_server + 3, "one byte per column count");
    }

    /// The client's COM_CHANGE_USER never reaches the server as sent (it
    /// names an account of the client's choosing): the relay stops for the
    /// driver, which logs in again as the connection's account. Pipelined
    /// behind an unanswered command, it is refused.
    #[test]
    fn change_user_stops_the_relay_and_never_reaches_the_server() {
        let mut hook = crate::pipeline::NoopPipeline;
        let mut codec = MysqlCodec::new(
            Session::after_handshake(Limits::default(), CAPABILITIES),
            &mut hook,
            false,
        );
        let mut input = BytesMut::from(&packet(0, b"\x11root\0\0")[..]);
        let mut to_server = Vec::new();
        assert!(matches!(
            codec.client_bytes(&mut input, &mut to_server),
            Err(SessionError::ChangeUser)
        ));
        assert!(to_server.is_empty());
        assert_eq!(codec.take_change_user().as_deref(), Some(&b"root\0\0"[..]));
        assert_eq!(codec.client_seq(), 1, "the OK answers the command");

        let mut hook = crate::pipeline::NoopPipeline;
        let mut codec = MysqlCodec::new(
            Session::after_handshake(Limits::default(), CAPABILITIES),
            &mut hook,
            false,
        );
        let mut input =
            BytesMut::from(&[query("SELECT 1"), packet(0, b"\x11root\0\0")].concat()[..]);
        let mut to_server = Vec::new();
        assert!(matches!(
            codec.client_bytes(&mut input, &mut to_server),
            Err(SessionError::Unsupported(_))
        ));
        assert_eq!(codec.take_change_user(), None);
    }
}
