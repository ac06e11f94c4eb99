//! The relay codec: frames both directions with `hoop-wire`, builds events
//! only for what the hook wants, and forwards everything else from its
//! original bytes.
//!
//! Hot path: one `decode_frame` (a length check and a slice of the read
//! buffer, no allocation) and one copy into the output buffer per message.
//! Typed parsing happens only for the message kinds the hook's [`Interest`]
//! names.
//!
//! Refusals keep the protocol in step without knowing what is in flight: the
//! refused Query is replaced by a Sync, whose ReadyForQuery (carrying the
//! server's true transaction status) is preceded by the refusal's
//! ErrorResponse. Query, Sync and FunctionCall each produce exactly one
//! ReadyForQuery, so counting them pairs every ReadyForQuery with its request
//! even when clients pipeline.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use hoop_wire::event::Event;
use hoop_wire::postgres::{
    BackendDecoder, BackendMessage, DataRow, Frame, FrontendDecoder, FrontendMessage, Notice,
    backend_event, frontend_event,
};

use super::error::{Culprit, SessionError};
use crate::pipeline::{ClientAction, Interest, ServerAction, SessionHook};
use crate::relay::{PeerIoError, RelayCodec};

/// Frontend message tags (protocol documentation, "Message Formats").
mod tag {
    pub(super) const QUERY: u8 = b'Q';
    pub(super) const PARSE: u8 = b'P';
    pub(super) const BIND: u8 = b'B';
    pub(super) const SYNC: u8 = b'S';
    pub(super) const FUNCTION_CALL: u8 = b'F';
    pub(super) const TERMINATE: u8 = b'X';
    pub(super) const READY_FOR_QUERY: u8 = b'Z';
    pub(super) const DATA_ROW: u8 = b'D';
    pub(super) const ROW_DESCRIPTION: u8 = b'T';
    pub(super) const COMMAND_COMPLETE: u8 = b'C';
    pub(super) const ERROR_RESPONSE: u8 = b'E';
}

/// Refusals waiting for their ReadyForQuery. A client that pipelines refused
/// statements without reading the answers would otherwise grow this queue
/// without bound; past the cap the session ends.
const MAX_PENDING_REFUSALS: usize = 1024;

/// A Sync message: tag and a length that counts only itself.
const SYNC_MESSAGE: [u8; 5] = [tag::SYNC, 0, 0, 0, 4];

impl From<PeerIoError> for SessionError {
    fn from(error: PeerIoError) -> Self {
        match error.peer {
            crate::relay::Peer::Client => Self::client_io(error.source),
            crate::relay::Peer::Server => Self::server_io(error.source),
        }
    }
}

/// One session's relay state.
pub(crate) struct PgCodec<'h> {
    frontend: FrontendDecoder,
    backend: BackendDecoder,
    hook: &'h mut dyn SessionHook,
    interest: Interest,
    /// Requests sent that each produce one ReadyForQuery.
    requests: u64,
    /// ReadyForQuery messages received.
    answered: u64,
    /// Refusals waiting for the ReadyForQuery of their stand-in Sync: the
    /// request number and the encoded ErrorResponse.
    refusals: VecDeque<(u64, Bytes)>,
    terminated: bool,
    scratch: BytesMut,
}

impl<'h> PgCodec<'h> {
    pub(crate) fn new(
        frontend: FrontendDecoder,
        backend: BackendDecoder,
        hook: &'h mut dyn SessionHook,
    ) -> Self {
        let interest = hook.interest();
        Self {
            frontend,
            backend,
            hook,
            interest,
            requests: 0,
            answered: 0,
            refusals: VecDeque::new(),
            terminated: false,
            scratch: BytesMut::new(),
        }
    }

    /// True when the client said goodbye with Terminate.
    pub(crate) fn terminated(&self) -> bool {
        self.terminated
    }

    /// True when the server still owes an answer to a request.
    pub(crate) fn busy(&self) -> bool {
        self.requests > self.answered
    }

    fn client_protocol(source: hoop_wire::DecodeError) -> SessionError {
        SessionError::Protocol {
            culprit: Culprit::Client,
            source,
        }
    }

    fn server_protocol(source: hoop_wire::DecodeError) -> SessionError {
        SessionError::Protocol {
            culprit: Culprit::Server,
            source,
        }
    }

    /// Shows a statement to the hook. Returns true when the frame was
    /// replaced (a refused Query).
    fn judge_statement(
        &mut self,
        frame: &Frame,
        output: &mut Vec<u8>,
    ) -> Result<bool, SessionError> {
        let message = FrontendMessage::parse(frame).map_err(Self::client_protocol)?;
        let Some(event) = frontend_event(&message) else {
            return Ok(false);
        };
        match self.hook.client_event(&event) {
            ClientAction::Forward => Ok(false),
            ClientAction::Refuse(refusal) if frame.tag == Some(tag::QUERY) => {
                if self.refusals.len() >= MAX_PENDING_REFUSALS {
                    return Err(SessionError::Policy(
                        "too many refused statements awaiting an answer".to_owned(),
                    ));
                }
                BackendMessage::ErrorResponse(Notice::error(
                    "ERROR",
                    &refusal.code,
                    &refusal.message,
                ))
                .encode(&mut self.scratch);
                self.refusals
                    .push_back((self.requests, self.scratch.split().freeze()));
                output.extend_from_slice(&SYNC_MESSAGE);
                Ok(true)
            }
            // A refused Parse or Bind cannot be answered in place without
            // tracking the extended protocol's error-skipping; end the
            // session rather than let the statement through.
            ClientAction::Refuse(refusal) => Err(SessionError::Policy(refusal.message)),
        }
    }

    fn show_server_event(
        &mut self,
        frame: &Frame,
        output: &mut Vec<u8>,
    ) -> Result<bool, SessionError> {
        let message = BackendMessage::parse(frame).map_err(Self::server_protocol)?;
        let Some(mut event) = backend_event(&message) else {
            return Ok(false);
        };
        match self.hook.server_event(&mut event) {
            ServerAction::Forward => Ok(false),
            ServerAction::Rewritten => match event {
                Event::Row { cells } => {
                    BackendMessage::DataRow(DataRow::from_cells(
                        cells.iter().map(|c| c.as_deref()),
                    ))
                    .encode(&mut self.scratch);
                    output.extend_from_slice(&self.scratch);
                    self.scratch.clear();
                    Ok(true)
                }
                _ => Err(SessionError::Policy(
                    "the pipeline rewrote an event the PostgreSQL driver cannot re-encode"
                        .to_owned(),
                )),
            },
        }
    }
}

impl RelayCodec for PgCodec<'_> {
    type Error = SessionError;

    fn client_bytes(
        &mut self,
        input: &mut BytesMut,
        output: &mut Vec<u8>,
    ) -> Result<(), SessionError> {
        while let Some(frame) = self
            .frontend
            .decode_frame(input)
            .map_err(Self::client_protocol)?
        {
            match frame.tag {
                Some(tag::QUERY) => {
                    self.requests += 1;
                    if self.interest.statements && self.judge_statement(&frame, output)? {
                        continue;
                    }
                }
                Some(tag::SYNC | tag::FUNCTION_CALL) => self.requests += 1,
                Some(tag::PARSE | tag::BIND) if self.interest.statements => {
                    self.judge_statement(&frame, output)?;
                }
                Some(tag::TERMINATE) => self.terminated = true,
                _ => {}
            }
            output.extend_from_slice(&frame.bytes);
        }
        Ok(())
    }

    fn server_bytes(
        &mut self,
        input: &mut BytesMut,
        output: &mut Vec<u8>,
    ) -> Result<(), SessionError> {
        while let Some(frame) = self
            .backend
            .decode_frame(input)
            .map_err(Self::server_protocol)?
        {
            let interested = match frame.tag {
                Some(tag::DATA_ROW) => self.interest.rows,
                Some(tag::READY_FOR_QUERY) => {
                    self.answered += 1;
                    if let Some((_, error)) = self
                        .refusals
                        .pop_front_if(|(request, _)| *request == self.answered)
                    {
                        output.extend_from_slice(&error);
                    }
                    false
                }
                Some(tag::ROW_DESCRIPTION) => self.interest.columns,
                Some(tag::COMMAND_COMPLETE) => self.interest.completions,
                Some(tag::ERROR_RESPONSE) => self.interest.errors,
                _ => false,
            };
            if interested && self.show_server_event(&frame, output)? {
                continue;
            }
            output.extend_from_slice(&frame.bytes);
        }
        Ok(())
    }

    fn closed(&mut self, from_client: bool, pending: usize) -> Result<(), SessionError> {
        if pending > 0 && !from_client {
            return Err(SessionError::server_io(
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use hoop_wire::postgres::{BackendMessage, Limits, Query, ReadyForQuery};

    use super::*;

    struct RefuseForbidden;

    impl SessionHook for RefuseForbidden {
        fn interest(&self) -> Interest {
            Interest {
                statements: true,
                ..Interest::NONE
            }
        }

        fn client_event(&mut self, event: &Event) -> ClientAction {
            match event {
                Event::Query { text } if text.contains("forbidden") => {
                    ClientAction::Refuse(crate::pipeline::Refusal {
                        code: "42501".to_owned(),
                        message: "refused".to_owned(),
                    })
                }
                _ => ClientAction::Forward,
            }
        }
    }

    fn query(text: &'static str) -> Vec<u8> {
        let mut bytes = BytesMut::new();
        FrontendMessage::Query(Query {
            query: Bytes::from_static(text.as_bytes()),
        })
        .encode(&mut bytes);
        bytes.to_vec()
    }

    fn backend(messages: &[BackendMessage]) -> Vec<u8> {
        let mut bytes = BytesMut::new();
        for message in messages {
            message.encode(&mut bytes);
        }
        bytes.to_vec()
    }

    fn ready() -> BackendMessage {
        BackendMessage::ReadyForQuery(ReadyForQuery { status: b'I' })
    }

    fn complete(tag: &'static str) -> BackendMessage {
        BackendMessage::CommandComplete(hoop_wire::postgres::CommandComplete {
            tag: Bytes::from_static(tag.as_bytes()),
        })
    }

    /// Three pipelined queries, the middle one refused: the server sees a
    /// Sync in its place, and the client gets the refusal right before the
    /// ReadyForQuery that answers it, between the other two results.
    #[test]
    fn refusal_of_a_pipelined_query_lands_in_its_own_place() {
        let mut hook = RefuseForbidden;
        let mut frontend = FrontendDecoder::new(Limits::default());
        // Past the startup phase.
        let mut startup = BytesMut::from(&b"\0\0\0\x14\0\x03\0\0user\0alice\0\0"[..]);
        assert!(frontend.decode_frame(&mut startup).unwrap().is_some());
        let mut codec = PgCodec::new(frontend, BackendDecoder::new(Limits::default()), &mut hook);

        let mut input = BytesMut::new();
        for text in ["SELECT 1", "DROP forbidden", "SELECT 2"] {
            input.extend_from_slice(&query(text));
        }
        let mut to_server = Vec::new();
        codec.client_bytes(&mut input, &mut to_server).unwrap();
        let mut expected = query("SELECT 1");
        expected.extend_from_slice(&SYNC_MESSAGE);
        expected.extend_from_slice(&query("SELECT 2"));
        assert_eq!(to_server, expected);
        assert!(codec.busy());

        let answers = backend(&[
            complete("SELECT 1"),
            ready(),
            ready(),
            complete("SELECT 2"),
            ready(),
        ]);
        // Split the server's bytes at every offset: the output is the same.
        for cut in 0..answers.len() {
            let mut refusal = hoop_wire::postgres::Notice::error("ERROR", "42501", "refused");
            refusal.fields.truncate(4);
            let expected = backend(&[
                complete("SELECT 1"),
                ready(),
                BackendMessage::ErrorResponse(refusal),
                ready(),
                complete("SELECT 2"),
                ready(),
            ]);
            let mut hook = RefuseForbidden;
            let mut frontend = FrontendDecoder::new(Limits::default());
            let mut startup = BytesMut::from(&b"\0\0\0\x14\0\x03\0\0user\0alice\0\0"[..]);
            frontend.decode_frame(&mut startup).unwrap();
            let mut codec =
                PgCodec::new(frontend, BackendDecoder::new(Limits::default()), &mut hook);
            let mut input = BytesMut::new();
            for text in ["SELECT 1", "DROP forbidden", "SELECT 2"] {
                input.extend_from_slice(&query(text));
            }
            codec.client_bytes(&mut input, &mut Vec::new()).unwrap();
            let mut to_client = Vec::new();
            let mut server = BytesMut::from(&answers[..cut]);
            codec.server_bytes(&mut server, &mut to_client).unwrap();
            server.extend_from_slice(&answers[cut..]);
            codec.server_bytes(&mut server, &mut to_client).unwrap();
            assert_eq!(to_client, expected, "cut at {cut}");
            assert!(!codec.busy());
        }
    }
}
