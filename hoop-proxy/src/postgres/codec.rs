//! The relay codec: frames both directions with `hoop-wire`, builds events
//! only for what the hook wants, and forwards everything else from its
//! original bytes.
//!
//! Hot path: one `decode_frame` (a length check and a slice of the read
//! buffer, no allocation) and one copy into the output buffer per message.
//! Typed parsing happens only for the message kinds the hook's [`Interest`]
//! names.
//!
//! Refusals keep the protocol in step: a refused Query is replaced by a
//! Sync, whose ReadyForQuery (carrying the server's true transaction status)
//! follows the refusal's ErrorResponse; a refused Parse or Bind is dropped
//! with the rest of its batch up to the Sync (the extended protocol's
//! error-until-Sync rule). Query, Sync and FunctionCall each produce exactly
//! one ReadyForQuery, so counting them tells whether the server still owes
//! an answer. When the hook wants statements or rows, [`Results`] tracks
//! every request in flight: which columns each DataRow has, and where each
//! refusal's ErrorResponse goes.

use bytes::BytesMut;
use hoop_wire::event::{CellFormat, Column, Event};
use hoop_wire::postgres::field as notice_field;
use hoop_wire::postgres::{
    BackendDecoder, BackendMessage, DataRow, Frame, FrontendDecoder, FrontendMessage, Notice,
    backend_event, frontend_event,
};

use hoop_wire::postgres::tags::{backend, frontend};

use super::copy;
use super::results::{Overflow, Results, ServerStep, columns_of};
use crate::error::{Culprit, SessionError};
use crate::pipeline::{ClientAction, Interest, ServerAction, SessionHook};
use crate::relay::RelayCodec;

/// NoticeResponse fields that carry free text, masked like result cells.
const NOTICE_TEXT_FIELDS: [(u8, &str); 4] = [
    (notice_field::MESSAGE, "message"),
    (notice_field::DETAIL, "detail"),
    (notice_field::HINT, "hint"),
    (NOTICE_WHERE, "where"),
];

/// NoticeResponse's context field (the PL/pgSQL call stack, which may quote
/// values).
const NOTICE_WHERE: u8 = b'W';

/// A Sync message: tag and a length that counts only itself.
const SYNC_MESSAGE: [u8; 5] = [frontend::SYNC, 0, 0, 0, 4];

impl From<Overflow> for SessionError {
    fn from(_: Overflow) -> Self {
        Self::Ended("too many requests or prepared statements in flight to track")
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
    /// Requests in flight, when the hook wants statements or rows.
    results: Option<Results>,
    /// The columns the hook last saw, shown again after a notice.
    columns: Option<Vec<Column>>,
    /// Whether the last statement asked for CSV (for a COPY it starts).
    csv_requested: bool,
    /// A COPY TO STDOUT in progress, and whether it is CSV.
    copy_out: Option<bool>,
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
            results: (interest.statements || interest.rows).then(Results::default),
            columns: None,
            csv_requested: false,
            copy_out: None,
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

    /// Shows a statement (Query, Parse, Bind) to the hook. Returns true
    /// when the frame was refused and replaced: a Query by a Sync, a Parse
    /// or Bind by nothing (the rest of its batch is then discarded up to
    /// the client's Sync).
    fn judge_statement(
        &mut self,
        message: &FrontendMessage,
        output: &mut Vec<u8>,
    ) -> Result<bool, SessionError> {
        let Some(event) = frontend_event(message) else {
            return Ok(false);
        };
        if let Event::Query { text } | Event::Prepare { text, .. } = &event {
            self.csv_requested = contains_word_csv(text);
        }
        let ClientAction::Refuse(refusal) = self.hook.client_event(&event) else {
            return Ok(false);
        };
        let Some(results) = self.results.as_mut() else {
            return Err(SessionError::Policy(refusal.message.into()));
        };
        BackendMessage::ErrorResponse(Notice::error("ERROR", &refusal.code, &refusal.message))
            .encode(&mut self.scratch);
        let error = self.scratch.split().freeze();
        let simple = matches!(message, FrontendMessage::Query(_));
        results.refuse(error, !simple)?;
        if simple {
            output.extend_from_slice(&SYNC_MESSAGE);
            results.client_message(&FrontendMessage::Sync, output)?;
        }
        Ok(true)
    }

    /// Notes a forwarded client message in the request tracker; `parsed`
    /// is the message when the guardrails already parsed it.
    fn track_client(
        &mut self,
        frame: &Frame,
        parsed: Option<&FrontendMessage>,
        output: &mut Vec<u8>,
    ) -> Result<(), SessionError> {
        let Some(results) = self.results.as_mut() else {
            return Ok(());
        };
        match frame.tag {
            Some(frontend::QUERY | frontend::FUNCTION_CALL) => results.request()?,
            Some(frontend::SYNC) => results.client_message(&FrontendMessage::Sync, output)?,
            Some(
                frontend::PARSE
                | frontend::BIND
                | frontend::DESCRIBE
                | frontend::EXECUTE
                | frontend::CLOSE,
            ) => match parsed {
                Some(message) => results.client_message(message, output)?,
                None => {
                    let message = FrontendMessage::parse(frame).map_err(Self::client_protocol)?;
                    results.client_message(&message, output)?;
                }
            },
            _ => {}
        }
        Ok(())
    }

    /// Notes a server message in the request tracker: true when it must not
    /// reach the client (the answer to hoop's own Describe); the hook sees
    /// an extended-protocol result's columns before its first row.
    fn track_server(&mut self, frame: &Frame) -> Result<(bool, bool), SessionError> {
        let (Some(results), Some(tag)) = (self.results.as_mut(), frame.tag) else {
            return Ok((false, true));
        };
        match results.server_message(tag, || columns_of(frame))? {
            ServerStep::Forward => Ok((false, true)),
            ServerStep::Tracked => Ok((false, false)),
            ServerStep::Swallow => Ok((true, false)),
            ServerStep::Row(announce) => {
                if let Some(columns) = announce {
                    self.show_columns(columns);
                }
                Ok((false, true))
            }
            // Fail closed: never forward a row unexamined.
            ServerStep::Unknown => Err(SessionError::Ended(
                "a result row arrived whose columns hoop does not know",
            )),
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
        if let Event::Columns { columns } = event {
            self.show_columns(columns);
            return Ok(false);
        }
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
                _ => Err(SessionError::Ended(
                    "the pipeline rewrote an event the PostgreSQL driver cannot re-encode",
                )),
            },
        }
    }
}

impl PgCodec<'_> {
    /// Shows the hook a result's columns, keeping them to show again after
    /// a notice.
    fn show_columns(&mut self, columns: Vec<Column>) {
        let mut event = Event::Columns { columns };
        self.hook.server_event(&mut event);
        if let Event::Columns { columns } = event {
            self.columns = Some(columns);
        }
    }

    /// Masks the free-text fields of a NoticeResponse as one row, then
    /// shows the hook the current result's columns again (a notice can
    /// arrive between two rows).
    fn mask_notice(&mut self, frame: &Frame, output: &mut Vec<u8>) -> Result<(), SessionError> {
        let BackendMessage::NoticeResponse(mut notice) =
            BackendMessage::parse(frame).map_err(Self::server_protocol)?
        else {
            output.extend_from_slice(&frame.bytes);
            return Ok(());
        };
        let mut columns = Vec::new();
        let mut indices = Vec::new();
        for (i, (code, _)) in notice.fields.iter().enumerate() {
            if let Some((_, name)) = NOTICE_TEXT_FIELDS.iter().find(|(c, _)| c == code) {
                columns.push(text_column(name));
                indices.push(i);
            }
        }
        let mut event = Event::Columns { columns };
        self.hook.server_event(&mut event);
        let mut row = Event::Row {
            cells: indices
                .iter()
                .map(|&i| Some(notice.fields[i].1.clone()))
                .collect(),
        };
        let action = self.hook.server_event(&mut row);
        if let Some(columns) = self.columns.take() {
            self.show_columns(columns);
        }
        match (action, row) {
            (ServerAction::Rewritten, Event::Row { cells }) => {
                for (&i, cell) in indices.iter().zip(cells) {
                    notice.fields[i].1 = cell.unwrap_or_default();
                }
                BackendMessage::NoticeResponse(notice).encode(&mut self.scratch);
                output.extend_from_slice(&self.scratch);
                self.scratch.clear();
            }
            _ => output.extend_from_slice(&frame.bytes),
        }
        Ok(())
    }

    /// A CopyOutResponse: text and CSV rows are masked field by field;
    /// binary COPY output cannot be, so the session ends.
    fn start_copy(&mut self, frame: &Frame) -> Result<(), SessionError> {
        let BackendMessage::CopyOutResponse(response) =
            BackendMessage::parse(frame).map_err(Self::server_protocol)?
        else {
            return Ok(());
        };
        if response.format != 0 {
            return Err(SessionError::Ended("binary COPY output cannot be masked"));
        }
        let columns = (0..response.column_formats.len())
            .map(|_| text_column(""))
            .collect();
        self.show_columns(columns);
        self.copy_out = Some(self.csv_requested);
        Ok(())
    }

    /// One COPY TO STDOUT row through the hook.
    fn mask_copy(
        &mut self,
        frame: &Frame,
        csv: bool,
        output: &mut Vec<u8>,
    ) -> Result<(), SessionError> {
        let BackendMessage::CopyData(data) =
            BackendMessage::parse(frame).map_err(Self::server_protocol)?
        else {
            output.extend_from_slice(&frame.bytes);
            return Ok(());
        };
        let Some(split) = copy::split(&data.data, csv) else {
            return Err(SessionError::Ended(
                "a COPY row hoop cannot split into fields",
            ));
        };
        let mut row = Event::Row {
            cells: split.fields.iter().map(|f| f.cell.clone()).collect(),
        };
        match (self.hook.server_event(&mut row), row) {
            (ServerAction::Rewritten, Event::Row { cells }) => {
                let mut body = Vec::with_capacity(data.data.len());
                copy::join(&data.data, &split, &cells, csv, &mut body);
                BackendMessage::CopyData(hoop_wire::postgres::CopyData { data: body.into() })
                    .encode(&mut self.scratch);
                output.extend_from_slice(&self.scratch);
                self.scratch.clear();
            }
            _ => output.extend_from_slice(&frame.bytes),
        }
        Ok(())
    }
}

/// A text column of this name, table unknown.
fn text_column(name: &str) -> Column {
    Column {
        name: name.to_owned(),
        table: None,
        table_id: None,
        type_id: TEXT_OID,
        format: CellFormat::Text,
    }
}

/// PostgreSQL's `text` type.
const TEXT_OID: u32 = 25;

/// Whether `sql` has the word `csv` (any case): the COPY it starts writes
/// CSV.
fn contains_word_csv(sql: &str) -> bool {
    sql.as_bytes().windows(3).enumerate().any(|(i, w)| {
        w.eq_ignore_ascii_case(b"csv")
            && !sql
                .as_bytes()
                .get(i.wrapping_sub(1))
                .is_some_and(u8::is_ascii_alphanumeric)
            && !sql
                .as_bytes()
                .get(i + 3)
                .is_some_and(u8::is_ascii_alphanumeric)
    })
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
            // After a refused Parse or Bind, the batch is discarded up to
            // its Sync, as the server would after an error.
            if self.results.as_ref().is_some_and(Results::skipping)
                && !matches!(frame.tag, Some(frontend::SYNC | frontend::TERMINATE))
            {
                continue;
            }
            match frame.tag {
                Some(frontend::QUERY) => self.requests += 1,
                Some(frontend::SYNC | frontend::FUNCTION_CALL) => self.requests += 1,
                Some(frontend::TERMINATE) => self.terminated = true,
                _ => {}
            }
            let mut judged = None;
            if self.interest.statements
                && matches!(
                    frame.tag,
                    Some(frontend::QUERY | frontend::PARSE | frontend::BIND)
                )
            {
                let message = FrontendMessage::parse(&frame).map_err(Self::client_protocol)?;
                if self.judge_statement(&message, output)? {
                    continue;
                }
                judged = Some(message);
            }
            output.extend_from_slice(&frame.bytes);
            self.track_client(&frame, judged.as_ref(), output)?;
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
            let (swallow, for_hook) = self.track_server(&frame)?;
            if swallow {
                // The answer to hoop's own Describe may be the last one
                // before a refusal's place.
                if let Some(results) = self.results.as_mut() {
                    results.release(output);
                }
                continue;
            }
            if self.interest.rows {
                let handled = match (frame.tag, self.copy_out) {
                    (Some(backend::NOTICE_RESPONSE), _) => {
                        self.mask_notice(&frame, output)?;
                        true
                    }
                    (Some(backend::COPY_OUT_RESPONSE), _) => {
                        self.start_copy(&frame)?;
                        false
                    }
                    (Some(backend::COPY_DATA), Some(csv)) => {
                        self.mask_copy(&frame, csv, output)?;
                        true
                    }
                    (
                        Some(
                            backend::COPY_DONE | backend::ERROR_RESPONSE | backend::READY_FOR_QUERY,
                        ),
                        _,
                    ) => {
                        self.copy_out = None;
                        false
                    }
                    _ => false,
                };
                if handled {
                    if let Some(results) = self.results.as_mut() {
                        results.release(output);
                    }
                    continue;
                }
            }
            let interested = match frame.tag {
                Some(backend::DATA_ROW) => self.interest.rows,
                Some(backend::READY_FOR_QUERY) => {
                    self.answered += 1;
                    false
                }
                Some(backend::ROW_DESCRIPTION) => self.interest.columns && for_hook,
                Some(backend::COMMAND_COMPLETE) => self.interest.completions,
                Some(backend::ERROR_RESPONSE) => self.interest.errors,
                _ => false,
            };
            if !(interested && self.show_server_event(&frame, output)?) {
                output.extend_from_slice(&frame.bytes);
            }
            if let Some(results) = self.results.as_mut() {
                results.release(output);
            }
        }
        Ok(())
    }

    fn client_replies(&mut self, output: &mut Vec<u8>) {
        if let Some(results) = self.results.as_mut() {
            results.release(output);
        }
    }

    fn closed(&mut self, from_client: bool, pending: usize) -> Result<(), SessionError> {
        crate::relay::server_closed_mid_message(from_client, pending)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
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
                Event::Query { text } | Event::Prepare { text, .. }
                    if text.contains("forbidden") =>
                {
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

    fn started() -> FrontendDecoder {
        let mut frontend = FrontendDecoder::new(Limits::default());
        let mut startup = BytesMut::from(&b"\0\0\0\x14\0\x03\0\0user\0alice\0\0"[..]);
        frontend.decode_frame(&mut startup).unwrap();
        frontend
    }

    fn frontend(messages: &[FrontendMessage]) -> Vec<u8> {
        let mut bytes = BytesMut::new();
        for message in messages {
            message.encode(&mut bytes);
        }
        bytes.to_vec()
    }

    fn parse(name: &'static str, sql: &'static str) -> FrontendMessage {
        FrontendMessage::Parse(hoop_wire::postgres::Parse {
            name: Bytes::from_static(name.as_bytes()),
            query: Bytes::from_static(sql.as_bytes()),
            param_types: Vec::new(),
        })
    }

    fn bind(statement: &'static str, result_formats: Vec<i16>) -> FrontendMessage {
        FrontendMessage::Bind(hoop_wire::postgres::Bind {
            portal: Bytes::new(),
            statement: Bytes::from_static(statement.as_bytes()),
            param_formats: Vec::new(),
            params: Vec::new(),
            result_formats,
        })
    }

    fn execute() -> FrontendMessage {
        FrontendMessage::Execute(hoop_wire::postgres::Execute {
            portal: Bytes::new(),
            max_rows: 0,
        })
    }

    /// A refused Parse drops its batch up to the Sync: the server sees only
    /// the Sync, the client gets the refusal and then that Sync's
    /// ReadyForQuery, and the next query runs.
    #[test]
    fn refused_parse_discards_its_batch_until_sync() {
        let mut hook = RefuseForbidden;
        let mut codec = PgCodec::new(started(), BackendDecoder::new(Limits::default()), &mut hook);
        let mut input = BytesMut::from(
            &frontend(&[
                parse("", "SELECT forbidden"),
                bind("", Vec::new()),
                execute(),
                FrontendMessage::Sync,
                FrontendMessage::Query(Query {
                    query: Bytes::from_static(b"SELECT 2"),
                }),
            ])[..],
        );
        let mut to_server = Vec::new();
        codec.client_bytes(&mut input, &mut to_server).unwrap();
        let mut expected = SYNC_MESSAGE.to_vec();
        expected.extend_from_slice(&query("SELECT 2"));
        assert_eq!(to_server, expected);

        let mut to_client = Vec::new();
        codec.client_replies(&mut to_client);
        let mut server = BytesMut::from(&backend(&[ready(), complete("SELECT 1"), ready()])[..]);
        codec.server_bytes(&mut server, &mut to_client).unwrap();
        let mut refusal = Notice::error("ERROR", "42501", "refused");
        refusal.fields.truncate(4);
        let expected = backend(&[
            BackendMessage::ErrorResponse(refusal),
            ready(),
            complete("SELECT 1"),
            ready(),
        ]);
        assert_eq!(to_client, expected);
    }

    /// A statement prepared in one batch and run in a later one with binary
    /// results, never described by the client: hoop's own Describe tells
    /// the columns (its answer never reaches the client), and the row is
    /// masked.
    #[test]
    fn rows_of_an_undescribed_prepared_statement_are_masked() {
        let pipeline = crate::policy::PolicyPipeline::from_json("{}").unwrap();
        let mut hook = crate::pipeline::Pipeline::open(
            &pipeline,
            &crate::pipeline::SessionInfo {
                protocol: "postgres",
                peer: "127.0.0.1:1".parse().unwrap(),
                user: "alice".to_owned(),
                database: None,
            },
        );
        let mut codec = PgCodec::new(
            started(),
            BackendDecoder::new(Limits::default()),
            hook.as_mut(),
        );
        let mut input = BytesMut::from(
            &frontend(&[
                parse("s1", "SELECT email FROM people"),
                FrontendMessage::Sync,
            ])[..],
        );
        let mut to_server = Vec::new();
        codec.client_bytes(&mut input, &mut to_server).unwrap();
        let describe = FrontendMessage::Describe(hoop_wire::postgres::Describe {
            kind: b'S',
            name: Bytes::from_static(b"s1"),
        });
        assert_eq!(
            to_server,
            frontend(&[
                parse("s1", "SELECT email FROM people"),
                describe,
                FrontendMessage::Sync
            ])
        );
        let description = BackendMessage::RowDescription(hoop_wire::postgres::RowDescription {
            fields: vec![hoop_wire::postgres::FieldDescription {
                name: Bytes::from_static(b"email"),
                table_oid: 0,
                column_id: 0,
                type_oid: 25,
                type_size: -1,
                type_modifier: -1,
                format: 0,
            }],
        });
        let mut server = BytesMut::from(
            &backend(&[
                BackendMessage::ParseComplete,
                BackendMessage::ParameterDescription(hoop_wire::postgres::ParameterDescription {
                    types: Vec::new(),
                }),
                description,
                ready(),
            ])[..],
        );
        let mut to_client = Vec::new();
        codec.server_bytes(&mut server, &mut to_client).unwrap();
        assert_eq!(
            to_client,
            backend(&[BackendMessage::ParseComplete, ready()])
        );

        let mut input =
            BytesMut::from(&frontend(&[bind("s1", vec![1]), execute(), FrontendMessage::Sync])[..]);
        codec.client_bytes(&mut input, &mut Vec::new()).unwrap();
        let row = |cell: &'static [u8]| BackendMessage::DataRow(DataRow::from_cells([Some(cell)]));
        let mut server = BytesMut::from(
            &backend(&[
                BackendMessage::BindComplete,
                row(b"ada@example.com"),
                complete("SELECT 1"),
                ready(),
            ])[..],
        );
        let mut to_client = Vec::new();
        codec.server_bytes(&mut server, &mut to_client).unwrap();
        assert_eq!(
            to_client,
            backend(&[
                BackendMessage::BindComplete,
                row(b"[REDACTED:EMAIL_ADDRESS]"),
                complete("SELECT 1"),
                ready(),
            ])
        );
    }
}
