//! The conversation state both directions of a MySQL connection share.
//!
//! Unlike PostgreSQL, MySQL packets do not say what they are: a server packet
//! starting with `0xFE` is an EOF, an AuthSwitchRequest or an OK depending on
//! what the client asked and what was negotiated. [`Session`] follows the
//! conversation (handshake, capabilities, pending commands, prepared
//! statements and their parameter and column types) and classifies each packet
//! in both directions. Feed it the two directions in the order the bytes
//! crossed the wire: a command before its response.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::client::{
    AuthData, ClientMessage, Command, HandshakeResponse, SSL_REQUEST_LEN, SslRequest,
    StatementParams, command_name,
};
use super::consts::{capability, command as com, header, status};
use super::framing::{Framer, Limits, Packet};
use super::server::{
    AuthMoreData, AuthSwitchRequest, BinaryRow, ColumnCount, ColumnDefinition, EofPacket,
    ErrPacket, Handshake, LocalInfileRequest, OkPacket, ServerMessage, StmtPrepareOk, TextRow,
};
use super::value::lenenc_int;
use crate::DecodeError;
use crate::event::{CellFormat, Column, Event};
use crate::reader::{ReadError, Reader};

/// Where the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the server's handshake.
    Greeting,
    /// Waiting for the client's handshake response (or SSLRequest).
    Login,
    /// Exchanging authentication data until OK or ERR.
    Auth,
    /// Commands and their responses.
    Command,
    /// After COM_QUIT or a failed login: nothing more is expected.
    Closed,
}

/// What the server owes the client for one command.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// The first packet of a result: OK, ERR, LOCAL INFILE or a column count.
    Result {
        binary: bool,
        statement: Option<u32>,
        cursor: bool,
    },
    /// Column definitions of a result set.
    Columns {
        left: usize,
        binary: bool,
        statement: Option<u32>,
        cursor: bool,
    },
    /// The EOF after column definitions. `cursor`: the command was a
    /// COM_STMT_EXECUTE asking for a cursor, the only case in which the
    /// EOF's SERVER_STATUS_CURSOR_EXISTS means no rows follow (they come
    /// with COM_STMT_FETCH). Elsewhere the flag only reports a cursor some
    /// stored procedure holds open, and rows follow as usual.
    ColumnsEof {
        binary: bool,
        statement: Option<u32>,
        cursor: bool,
    },
    /// Rows until EOF, OK or ERR.
    Rows { binary: bool },
    /// OK, ERR or EOF.
    Simple,
    /// COM_STMT_PREPARE_OK or ERR.
    Prepare,
    /// Parameter definitions of a prepared statement.
    PrepareParams { id: u32, left: u16, columns: u16 },
    /// The EOF after parameter definitions.
    PrepareParamsEof { id: u32, columns: u16 },
    /// Column definitions of a prepared statement.
    PrepareColumns { id: u32, left: u16 },
    /// The EOF after a prepared statement's column definitions.
    PrepareColumnsEof,
    /// COM_FIELD_LIST: column definitions until EOF.
    FieldList,
    /// COM_STATISTICS: one string.
    Statistics,
    /// The client is sending a LOCAL INFILE file: nothing until it ends.
    InfileData,
}

/// What the session knows of a prepared statement.
#[derive(Debug, Clone, Default)]
struct Statement {
    params: StatementParams,
    /// Result column types, to read binary rows (COM_STMT_FETCH, metadata
    /// skipped by the server).
    result_types: Arc<[u8]>,
    /// Result column definitions, kept only under
    /// MARIADB_CLIENT_CACHE_METADATA: an execution whose metadata the
    /// server skips still tells the caller its columns. Copied out of the
    /// packets, so they pin no read buffer.
    result_columns: Arc<[ColumnDefinition]>,
    /// What `result_columns` counts against [`MAX_CACHED_COLUMN_BYTES`].
    cached_bytes: usize,
}

/// The most commands a client may send before their responses arrive.
/// Real clients pipeline a few (COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA need
/// no answer); this bounds the state a flood of commands could build.
const MAX_PENDING_COMMANDS: usize = 1024;

/// The most bytes of column definitions one session keeps for prepared
/// statements under MARIADB_CLIENT_CACHE_METADATA. Real definitions are
/// about 100 bytes, so this holds thousands of open statements of dozens of
/// columns; without it, statements of long column aliases (up to the packet
/// cap each, 4,096 per statement, 16,382 statements) could make one session
/// pin gigabytes. A statement past the budget keeps no definitions, and an
/// execution whose metadata the server then skips is an error: the caller
/// would otherwise see rows without knowing their columns.
const MAX_CACHED_COLUMN_BYTES: usize = 16 << 20;

/// One MySQL connection's protocol state, both directions.
#[derive(Debug)]
pub struct Session {
    limits: Limits,
    client: Framer,
    server: Framer,
    client_error: Option<DecodeError>,
    server_error: Option<DecodeError>,
    phase: Phase,
    encrypted: bool,
    server_capabilities: u64,
    capabilities: u64,
    pending: VecDeque<Expect>,
    statements: HashMap<u32, Statement>,
    last_prepared: Option<u32>,
    columns: Vec<ColumnDefinition>,
    /// What `columns` holds, counted against `Limits::max_column_bytes`.
    column_bytes: usize,
    /// The current result set's definitions when the server skipped them
    /// (MARIADB_CLIENT_CACHE_METADATA): the statement's cached ones.
    cached_columns: Option<Arc<[ColumnDefinition]>>,
    /// Bytes of definitions all statements keep, at most
    /// [`MAX_CACHED_COLUMN_BYTES`].
    cached_bytes: usize,
    column_types: Arc<[u8]>,
    /// Whether the current result set has binary rows.
    result_binary: bool,
    /// Set when the packet just decoded completed the column definitions.
    columns_complete: bool,
    /// Set when the packet just decoded ended a result set: its row count.
    result_done: Option<u64>,
    /// Whether the last client command queued an expected response.
    last_command_expects_response: bool,
    rows: u64,
}

impl Session {
    /// A new connection, before the server's handshake.
    pub fn new(limits: Limits) -> Self {
        Self {
            client: Framer::new(&limits),
            server: Framer::new(&limits),
            limits,
            client_error: None,
            server_error: None,
            phase: Phase::Greeting,
            encrypted: false,
            server_capabilities: 0,
            capabilities: 0,
            pending: VecDeque::new(),
            statements: HashMap::new(),
            last_prepared: None,
            columns: Vec::new(),
            column_bytes: 0,
            cached_columns: None,
            cached_bytes: 0,
            column_types: Arc::from([]),
            result_binary: false,
            columns_complete: false,
            result_done: None,
            last_command_expects_response: false,
            rows: 0,
        }
    }

    /// A session whose handshake and authentication happened elsewhere: a
    /// proxy that authenticated each leg itself relays only the command phase,
    /// with the capabilities it made both legs agree on.
    pub fn after_handshake(limits: Limits, capabilities: u64) -> Self {
        let mut session = Self::new(limits);
        session.capabilities = capabilities;
        session.server_capabilities = capabilities;
        session.phase = Phase::Command;
        session
    }

    /// The last command decoded was answered by the caller (a proxy refusing
    /// it), not by the server: forget the response it expected.
    ///
    /// Only meaningful right after [`decode_client`](Self::decode_client)
    /// returned that command, before any later command.
    pub fn answered_locally(&mut self) {
        if std::mem::take(&mut self.last_command_expects_response) {
            self.pending.pop_back();
        }
    }

    /// Commands sent whose responses have not finished arriving.
    pub fn pending_responses(&self) -> usize {
        self.pending.len()
    }

    /// The capabilities both sides agreed on (MariaDB's extended ones in the
    /// upper 32 bits); 0 before the handshake response.
    pub fn capabilities(&self) -> u64 {
        self.capabilities
    }

    /// The current result set's column definitions: as received, or, when
    /// the server skipped them under MARIADB_CLIENT_CACHE_METADATA, the ones
    /// it last sent for the statement.
    pub fn columns(&self) -> &[ColumnDefinition] {
        self.cached_columns.as_deref().unwrap_or(&self.columns)
    }

    /// True once authentication succeeded and commands flow.
    pub fn is_authenticated(&self) -> bool {
        self.phase == Phase::Command
    }

    /// Splits the next packet off the client's byte stream and classifies it.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] when the bytes cannot be the next client packet; the
    /// same error is returned by every later call.
    pub fn decode_client(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<(Packet, ClientMessage)>, DecodeError> {
        if let Some(error) = self.client_error {
            return Err(error);
        }
        let result = self.client_step(buf);
        if let Err(error) = result {
            self.client_error = Some(error);
        }
        result
    }

    /// Splits the next packet off the server's byte stream and classifies it.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] when the bytes cannot be the next server packet; the
    /// same error is returned by every later call.
    pub fn decode_server(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<(Packet, ServerMessage)>, DecodeError> {
        if let Some(error) = self.server_error {
            return Err(error);
        }
        self.columns_complete = false;
        self.result_done = None;
        let result = self.server_step(buf);
        if let Err(error) = result {
            self.server_error = Some(error);
        }
        result
    }

    fn client_step(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<(Packet, ClientMessage)>, DecodeError> {
        let Some(packet) = next_packet(&mut self.client, self.encrypted, buf)? else {
            return Ok(None);
        };
        let offset = packet.offset;
        let fail = |name: &'static str| move |reason| malformed(offset, name, reason);
        let mut r = Reader::new(packet.payload.clone());
        let message = match self.phase {
            Phase::Greeting | Phase::Closed => {
                return Err(malformed(
                    offset,
                    "client packet",
                    "client spoke out of turn",
                ));
            }
            Phase::Login => {
                if packet.payload.len() == SSL_REQUEST_LEN {
                    let request = SslRequest::parse(&mut r).map_err(fail("SSLRequest"))?;
                    if request.capabilities & capability::SSL == 0 {
                        return Err(malformed(offset, "SSLRequest", "short handshake response"));
                    }
                    self.encrypted = true;
                    ClientMessage::SslRequest(request)
                } else {
                    let response =
                        HandshakeResponse::parse(&mut r).map_err(fail("HandshakeResponse41"))?;
                    if response.capabilities & capability::PROTOCOL_41 == 0 {
                        return Err(DecodeError::Unsupported {
                            offset,
                            message: "HandshakeResponse320",
                            reason: "pre-4.1 protocol",
                        });
                    }
                    self.capabilities = response.capabilities & self.server_capabilities;
                    self.phase = Phase::Auth;
                    ClientMessage::HandshakeResponse(response)
                }
            }
            Phase::Auth => ClientMessage::AuthData(AuthData {
                data: packet.payload.clone(),
            }),
            Phase::Command if self.pending.front() == Some(&Expect::InfileData) => {
                if packet.payload.is_empty() {
                    self.pending.pop_front();
                    self.pending.push_front(Expect::Result {
                        binary: false,
                        statement: None,
                        cursor: false,
                    });
                }
                ClientMessage::LocalInfileData(packet.payload.clone())
            }
            Phase::Command => {
                let command = self.parse_command(&mut r, offset)?;
                self.expect_response(&command, offset)?;
                ClientMessage::Command(command)
            }
        };
        Ok(Some((packet, message)))
    }

    fn parse_command(&mut self, r: &mut Reader, offset: u64) -> Result<Command, DecodeError> {
        let capabilities = self.capabilities;
        let last_prepared = self.last_prepared;
        let statements = &self.statements;
        let name = r.peek().map_or("command", command_name);
        Command::parse(r, capabilities, |id| {
            let id = resolve_statement(id, last_prepared)?;
            statements.get(&id).map(|s| s.params.clone())
        })
        .map_err(|reason| malformed(offset, name, reason))
    }

    /// Records what the server owes for `command`.
    fn expect_response(&mut self, command: &Command, offset: u64) -> Result<(), DecodeError> {
        let expect = match command {
            Command::Quit => {
                self.phase = Phase::Closed;
                None
            }
            Command::Query(_) => Some(Expect::Result {
                binary: false,
                statement: None,
                cursor: false,
            }),
            Command::StmtPrepare(_) => Some(Expect::Prepare),
            Command::StmtExecute(execute) => {
                let id = resolve_statement(execute.statement_id, self.last_prepared);
                if let Some(statement) = id.and_then(|id| self.statements.get_mut(&id)) {
                    statement.params.types.clone_from(&execute.param_types);
                    statement.params.long_data.clear();
                }
                Some(Expect::Result {
                    binary: true,
                    statement: id,
                    cursor: execute.flags & CURSOR_TYPE_MASK != 0,
                })
            }
            Command::StmtFetch { statement_id, .. } => {
                let statement = self
                    .statements
                    .get(statement_id)
                    .ok_or_else(|| malformed(offset, "COM_STMT_FETCH", "unknown statement"))?;
                self.column_types = statement.result_types.clone();
                Some(Expect::Rows { binary: true })
            }
            Command::StmtSendLongData {
                statement_id,
                param_id,
                ..
            } => {
                if let Some(statement) = self.statements.get_mut(statement_id)
                    && !statement.params.long_data.contains(param_id)
                    && *param_id < statement.params.count
                {
                    statement.params.long_data.push(*param_id);
                }
                None
            }
            Command::StmtClose(id) => {
                self.forget_statement(*id);
                None
            }
            Command::StmtReset(id) => {
                if let Some(statement) = self.statements.get_mut(id) {
                    statement.params.long_data.clear();
                }
                Some(Expect::Simple)
            }
            Command::ResetConnection => {
                self.statements.clear();
                self.cached_bytes = 0;
                Some(Expect::Simple)
            }
            Command::FieldList { .. } => Some(Expect::FieldList),
            Command::Statistics => Some(Expect::Statistics),
            Command::ChangeUser(_) => {
                self.phase = Phase::Auth;
                None
            }
            Command::Other { command, .. } => match *command {
                com::BINLOG_DUMP | com::BINLOG_DUMP_GTID | com::REGISTER_SLAVE => {
                    return Err(DecodeError::Unsupported {
                        offset,
                        message: command_name(*command),
                        reason: "replication stream",
                    });
                }
                com::PROCESS_INFO => Some(Expect::Result {
                    binary: false,
                    statement: None,
                    cursor: false,
                }),
                com::STMT_BULK_EXECUTE => Some(Expect::Result {
                    binary: true,
                    statement: None,
                    cursor: false,
                }),
                _ => Some(Expect::Simple),
            },
            Command::InitDb(_)
            | Command::ProcessKill(_)
            | Command::Ping
            | Command::SetOption(_) => Some(Expect::Simple),
        };
        self.last_command_expects_response = expect.is_some();
        if let Some(expect) = expect {
            if self.pending.len() >= MAX_PENDING_COMMANDS {
                return Err(malformed(
                    offset,
                    command.name(),
                    "too many commands without responses",
                ));
            }
            self.pending.push_back(expect);
        }
        Ok(())
    }

    fn server_step(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<(Packet, ServerMessage)>, DecodeError> {
        let Some(packet) = next_packet(&mut self.server, self.encrypted, buf)? else {
            return Ok(None);
        };
        let offset = packet.offset;
        let payload = packet.payload.clone();
        let first = payload.first().copied();
        let message = match self.phase {
            Phase::Greeting => {
                let mut r = Reader::new(payload);
                if first == Some(header::ERR) {
                    self.phase = Phase::Closed;
                    ServerMessage::Err(finish(&mut r, ErrPacket::parse, offset, "ERR")?)
                } else {
                    let handshake = finish(&mut r, Handshake::parse, offset, "HandshakeV10")?;
                    self.server_capabilities = handshake.capabilities;
                    self.phase = Phase::Login;
                    ServerMessage::Handshake(handshake)
                }
            }
            Phase::Auth => self.auth_packet(payload, offset)?,
            Phase::Login | Phase::Closed | Phase::Command => {
                self.command_packet(payload, offset)?
            }
        };
        Ok(Some((packet, message)))
    }

    fn auth_packet(&mut self, payload: Bytes, offset: u64) -> Result<ServerMessage, DecodeError> {
        let mut r = Reader::new(payload);
        Ok(match r.peek() {
            Some(header::OK) => {
                let ok = finish(&mut r, OkPacket::parse, offset, "OK")?;
                if self.capabilities & capability::COMPRESS != 0 {
                    return Err(DecodeError::Unsupported {
                        offset,
                        message: "OK",
                        reason: "compressed protocol",
                    });
                }
                self.phase = Phase::Command;
                ServerMessage::Ok(ok)
            }
            Some(header::ERR) => {
                self.phase = Phase::Closed;
                ServerMessage::Err(finish(&mut r, ErrPacket::parse, offset, "ERR")?)
            }
            Some(header::EOF) => {
                let read = |r: &mut Reader| -> Result<AuthSwitchRequest, ReadError> {
                    r.u8()?;
                    if r.left() == 0 {
                        return Err("old authentication method switch is not supported");
                    }
                    Ok(AuthSwitchRequest {
                        plugin: r.cstr()?,
                        data: r.rest(),
                    })
                };
                ServerMessage::AuthSwitchRequest(finish(&mut r, read, offset, "AuthSwitchRequest")?)
            }
            Some(header::AUTH_MORE_DATA) => {
                r.take(1)
                    .map_err(|reason| malformed(offset, "AuthMoreData", reason))?;
                ServerMessage::AuthMoreData(AuthMoreData { data: r.rest() })
            }
            _ => {
                return Err(malformed(
                    offset,
                    "authentication packet",
                    "unknown packet type",
                ));
            }
        })
    }

    /// Classifies a server packet in the command phase by what the oldest
    /// pending command expects.
    fn command_packet(
        &mut self,
        payload: Bytes,
        offset: u64,
    ) -> Result<ServerMessage, DecodeError> {
        let first = payload.first().copied();
        let Some(expect) = self.pending.front().cloned() else {
            // Unsolicited: only an ERR is legitimate (the server closing an
            // idle or killed connection).
            let mut r = Reader::new(payload);
            if first == Some(header::ERR) {
                return Ok(ServerMessage::Err(finish(
                    &mut r,
                    ErrPacket::parse,
                    offset,
                    "ERR",
                )?));
            }
            return Err(malformed(
                offset,
                "server packet",
                "no command is waiting for it",
            ));
        };
        let deprecate_eof = self.capabilities & capability::DEPRECATE_EOF != 0;
        let is_eof = first == Some(header::EOF) && payload.len() < 9;
        // Under CLIENT_DEPRECATE_EOF an OK with the EOF header ends rows.
        let is_terminator = first == Some(header::EOF)
            && if deprecate_eof {
                payload.len() < super::framing::MAX_PHYSICAL_PAYLOAD
            } else {
                payload.len() < 9
            };
        let mut r = Reader::new(payload.clone());
        if first == Some(header::ERR) && !matches!(expect, Expect::Statistics) {
            let err = finish(&mut r, ErrPacket::parse, offset, "ERR")?;
            if err.code == PROGRESS_REPORT {
                return Ok(ServerMessage::Progress(payload));
            }
            self.pending.pop_front();
            return Ok(ServerMessage::Err(err));
        }
        let message = match expect {
            Expect::Simple => {
                self.pending.pop_front();
                if is_eof && !deprecate_eof {
                    ServerMessage::Eof(finish(&mut r, parse_eof, offset, "EOF")?)
                } else {
                    ServerMessage::Ok(finish(&mut r, OkPacket::parse, offset, "OK")?)
                }
            }
            Expect::Statistics => {
                self.pending.pop_front();
                ServerMessage::Statistics(payload)
            }
            Expect::Result {
                binary,
                statement,
                cursor,
            } => match first {
                Some(header::OK) => {
                    let ok = finish(&mut r, OkPacket::parse, offset, "OK")?;
                    self.pending.pop_front();
                    if ok.status & status::MORE_RESULTS_EXISTS != 0 {
                        self.pending.push_front(Expect::Result {
                            binary,
                            statement,
                            cursor: false,
                        });
                    }
                    ServerMessage::Ok(ok)
                }
                Some(header::LOCAL_INFILE) if !binary => {
                    let read = |r: &mut Reader| -> Result<LocalInfileRequest, ReadError> {
                        r.u8()?;
                        Ok(LocalInfileRequest { filename: r.rest() })
                    };
                    let request = finish(&mut r, read, offset, "LOCAL_INFILE_Request")?;
                    self.pending.pop_front();
                    self.pending.push_front(Expect::InfileData);
                    ServerMessage::LocalInfileRequest(request)
                }
                _ => {
                    let with_flag = self.capabilities
                        & (capability::OPTIONAL_RESULTSET_METADATA
                            | capability::MARIADB_CACHE_METADATA)
                        != 0;
                    let read = |r: &mut Reader| -> Result<ColumnCount, ReadError> {
                        let count = lenenc_int(r)?;
                        let metadata_follows = if with_flag { Some(r.u8()?) } else { None };
                        Ok(ColumnCount {
                            count,
                            metadata_follows,
                        })
                    };
                    let count = finish(&mut r, read, offset, "ColumnCount")?;
                    let columns = usize::try_from(count.count).unwrap_or(usize::MAX);
                    if columns == 0 || columns > self.limits.max_columns {
                        return Err(malformed(
                            offset,
                            "ColumnCount",
                            "column count out of range",
                        ));
                    }
                    self.pending.pop_front();
                    self.columns.clear();
                    self.column_bytes = 0;
                    self.cached_columns = None;
                    self.rows = 0;
                    self.result_binary = binary;
                    if count.metadata_follows == Some(0) {
                        let cached = statement
                            .and_then(|id| self.statements.get(&id))
                            .filter(|s| s.result_types.len() == columns);
                        if binary && self.capabilities & capability::MARIADB_CACHE_METADATA != 0 {
                            // The definitions this result set would have
                            // repeated: complete with this packet.
                            let Some(kept) = cached
                                .map(|s| s.result_columns.clone())
                                .filter(|kept| kept.len() == columns)
                            else {
                                return Err(malformed(
                                    offset,
                                    "ColumnCount",
                                    "metadata skipped for a statement whose columns are not known",
                                ));
                            };
                            self.cached_columns = Some(kept);
                            self.columns_complete = true;
                        }
                        self.column_types = match (binary, cached) {
                            (true, Some(s)) => s.result_types.clone(),
                            (true, None) => {
                                return Err(malformed(
                                    offset,
                                    "ColumnCount",
                                    "metadata skipped for an unknown statement",
                                ));
                            }
                            (false, _) => Arc::from(vec![0; columns]),
                        };
                        self.pending.push_front(if deprecate_eof {
                            Expect::Rows { binary }
                        } else {
                            Expect::ColumnsEof {
                                binary,
                                statement,
                                cursor,
                            }
                        });
                    } else {
                        self.pending.push_front(Expect::Columns {
                            left: columns,
                            binary,
                            statement,
                            cursor,
                        });
                    }
                    ServerMessage::ColumnCount(count)
                }
            },
            Expect::Columns {
                left,
                binary,
                statement,
                cursor,
            } => {
                let definition = self.column_definition(&mut r, offset)?;
                self.keep_column(&definition, offset)?;
                self.pending.pop_front();
                if left > 1 {
                    self.pending.push_front(Expect::Columns {
                        left: left - 1,
                        binary,
                        statement,
                        cursor,
                    });
                } else {
                    self.columns_complete = true;
                    self.column_types = self.columns.iter().map(|c| c.column_type).collect();
                    if binary && let Some(id) = statement {
                        if let Some(s) = self.statements.get_mut(&id) {
                            s.result_types = self.column_types.clone();
                        }
                        self.cache_columns(id);
                    }
                    self.pending.push_front(if deprecate_eof {
                        Expect::Rows { binary }
                    } else {
                        Expect::ColumnsEof {
                            binary,
                            statement,
                            cursor,
                        }
                    });
                }
                ServerMessage::ColumnDefinition(definition)
            }
            Expect::ColumnsEof { binary, cursor, .. } => {
                let eof = finish(&mut r, parse_eof, offset, "EOF")?;
                self.pending.pop_front();
                if !(cursor && eof.status & status::CURSOR_EXISTS != 0) {
                    self.pending.push_front(Expect::Rows { binary });
                }
                ServerMessage::Eof(eof)
            }
            Expect::Rows { binary } => {
                if is_terminator {
                    self.pending.pop_front();
                    self.result_done = Some(self.rows);
                    let (message, status) = if is_eof && !deprecate_eof {
                        let eof = finish(&mut r, parse_eof, offset, "EOF")?;
                        (ServerMessage::Eof(eof), eof.status)
                    } else {
                        let ok = finish(&mut r, OkPacket::parse, offset, "OK")?;
                        let status = ok.status;
                        (ServerMessage::Ok(ok), status)
                    };
                    if status & status::MORE_RESULTS_EXISTS != 0 {
                        self.pending.push_front(Expect::Result {
                            binary,
                            statement: None,
                            cursor: false,
                        });
                    }
                    return Ok(message);
                }
                self.rows += 1;
                if binary {
                    let row = BinaryRow::parse(payload, self.column_types.clone())
                        .map_err(|reason| malformed(offset, "BinaryResultSetRow", reason))?;
                    ServerMessage::BinaryRow(row)
                } else {
                    let row = TextRow::parse(payload, self.column_types.len())
                        .map_err(|reason| malformed(offset, "ResultSetRow", reason))?;
                    ServerMessage::TextRow(row)
                }
            }
            Expect::Prepare => {
                let ok = finish(&mut r, StmtPrepareOk::parse, offset, "COM_STMT_PREPARE_OK")?;
                self.pending.pop_front();
                self.forget_statement(ok.statement_id);
                if self.statements.len() >= self.limits.max_statements {
                    return Err(malformed(
                        offset,
                        "COM_STMT_PREPARE_OK",
                        "too many prepared statements",
                    ));
                }
                self.statements.insert(
                    ok.statement_id,
                    Statement {
                        params: StatementParams {
                            count: ok.num_params,
                            ..StatementParams::default()
                        },
                        ..Statement::default()
                    },
                );
                self.last_prepared = Some(ok.statement_id);
                self.columns.clear();
                self.column_bytes = 0;
                self.cached_columns = None;
                if ok.metadata_follows != Some(0) {
                    if ok.num_params > 0 {
                        self.pending.push_front(Expect::PrepareParams {
                            id: ok.statement_id,
                            left: ok.num_params,
                            columns: ok.num_columns,
                        });
                    } else if ok.num_columns > 0 {
                        self.pending.push_front(Expect::PrepareColumns {
                            id: ok.statement_id,
                            left: ok.num_columns,
                        });
                    }
                }
                ServerMessage::StmtPrepareOk(ok)
            }
            Expect::PrepareParams { id, left, columns } => {
                let definition = self.column_definition(&mut r, offset)?;
                self.pending.pop_front();
                let next = if left > 1 {
                    Some(Expect::PrepareParams {
                        id,
                        left: left - 1,
                        columns,
                    })
                } else if !deprecate_eof {
                    Some(Expect::PrepareParamsEof { id, columns })
                } else if columns > 0 {
                    Some(Expect::PrepareColumns { id, left: columns })
                } else {
                    None
                };
                if let Some(next) = next {
                    self.pending.push_front(next);
                }
                ServerMessage::ColumnDefinition(definition)
            }
            Expect::PrepareParamsEof { id, columns } => {
                let eof = finish(&mut r, parse_eof, offset, "EOF")?;
                self.pending.pop_front();
                if columns > 0 {
                    self.pending
                        .push_front(Expect::PrepareColumns { id, left: columns });
                }
                ServerMessage::Eof(eof)
            }
            Expect::PrepareColumns { id, left } => {
                let definition = self.column_definition(&mut r, offset)?;
                self.keep_column(&definition, offset)?;
                self.pending.pop_front();
                if left > 1 {
                    self.pending
                        .push_front(Expect::PrepareColumns { id, left: left - 1 });
                } else {
                    let types: Arc<[u8]> = self.columns.iter().map(|c| c.column_type).collect();
                    if let Some(statement) = self.statements.get_mut(&id) {
                        statement.result_types = types;
                    }
                    self.cache_columns(id);
                    if !deprecate_eof {
                        self.pending.push_front(Expect::PrepareColumnsEof);
                    }
                }
                ServerMessage::ColumnDefinition(definition)
            }
            Expect::PrepareColumnsEof => {
                self.pending.pop_front();
                ServerMessage::Eof(finish(&mut r, parse_eof, offset, "EOF")?)
            }
            Expect::FieldList => {
                if is_terminator {
                    self.pending.pop_front();
                    if !deprecate_eof {
                        ServerMessage::Eof(finish(&mut r, parse_eof, offset, "EOF")?)
                    } else {
                        ServerMessage::Ok(finish(&mut r, OkPacket::parse, offset, "OK")?)
                    }
                } else {
                    let definition = self.column_definition(&mut r, offset)?;
                    ServerMessage::ColumnDefinition(definition)
                }
            }
            Expect::InfileData => {
                return Err(malformed(
                    offset,
                    "server packet",
                    "server spoke during LOCAL INFILE upload",
                ));
            }
        };
        Ok(message)
    }

    /// Under MARIADB_CLIENT_CACHE_METADATA, keeps the definitions just
    /// received as statement `id`'s, within [`MAX_CACHED_COLUMN_BYTES`].
    fn cache_columns(&mut self, id: u32) {
        if self.capabilities & capability::MARIADB_CACHE_METADATA == 0 {
            return;
        }
        let Some(statement) = self.statements.get_mut(&id) else {
            return;
        };
        // The server resends definitions it has already sent (a statement's
        // first execution repeats its COM_STMT_PREPARE response's).
        if *statement.result_columns == *self.columns {
            return;
        }
        self.cached_bytes = self
            .cached_bytes
            .saturating_sub(std::mem::take(&mut statement.cached_bytes));
        statement.result_columns = Arc::from([]);
        let bytes = self.columns.iter().map(definition_bytes).sum::<usize>();
        if bytes <= MAX_CACHED_COLUMN_BYTES.saturating_sub(self.cached_bytes) {
            statement.result_columns = self.columns.iter().map(detached).collect();
            statement.cached_bytes = bytes;
            self.cached_bytes += bytes;
        }
    }

    /// Keeps one of the current result set's column definitions, within
    /// `Limits::max_column_bytes`.
    fn keep_column(
        &mut self,
        definition: &ColumnDefinition,
        offset: u64,
    ) -> Result<(), DecodeError> {
        self.column_bytes = self
            .column_bytes
            .saturating_add(definition_bytes(definition));
        if self.column_bytes > self.limits.max_column_bytes {
            return Err(malformed(
                offset,
                "ColumnDefinition41",
                "column definitions of one result set exceed the limit",
            ));
        }
        self.columns.push(definition.clone());
        Ok(())
    }

    fn forget_statement(&mut self, id: u32) {
        if let Some(statement) = self.statements.remove(&id) {
            self.cached_bytes = self.cached_bytes.saturating_sub(statement.cached_bytes);
        }
    }

    fn column_definition(
        &self,
        r: &mut Reader,
        offset: u64,
    ) -> Result<ColumnDefinition, DecodeError> {
        finish(
            r,
            |r| ColumnDefinition::parse(r, self.capabilities),
            offset,
            "ColumnDefinition41",
        )
    }

    /// The protocol-neutral event a client packet stands for.
    pub fn client_event(&self, message: &ClientMessage) -> Option<Event> {
        let ClientMessage::Command(command) = message else {
            return None;
        };
        Some(match command {
            Command::Query(q) => Event::Query {
                text: text(&q.query),
            },
            Command::StmtPrepare(sql) => Event::Prepare {
                name: String::new(),
                text: text(sql),
            },
            Command::StmtExecute(e) => Event::Execute {
                name: e.statement_id.to_string(),
                params: e.params.clone(),
            },
            _ => return None,
        })
    }

    /// The protocol-neutral event a server packet stands for. Call it right
    /// after [`decode_server`](Self::decode_server) returned the packet: the
    /// last column definition of a result set yields [`Event::Columns`] with
    /// all of them.
    pub fn server_event(&self, message: &ServerMessage) -> Option<Event> {
        Some(match message {
            ServerMessage::ColumnDefinition(_) | ServerMessage::ColumnCount(_)
                if self.columns_complete =>
            {
                Event::Columns {
                    columns: self
                        .columns()
                        .iter()
                        .map(|c| Column {
                            name: text(&c.name),
                            table: (!c.org_table.is_empty()).then(|| text(&c.org_table)),
                            table_id: None,
                            type_id: u32::from(c.column_type),
                            format: if self.result_binary {
                                CellFormat::Binary
                            } else {
                                CellFormat::Text
                            },
                        })
                        .collect(),
                }
            }
            ServerMessage::TextRow(row) => Event::Row {
                cells: row.cells().collect(),
            },
            ServerMessage::BinaryRow(row) => Event::Row {
                cells: row.cells().collect(),
            },
            ServerMessage::Ok(ok) => Event::Done {
                tag: "OK".to_owned(),
                rows: Some(self.result_done.unwrap_or(ok.affected_rows)),
            },
            ServerMessage::Eof(_) if self.result_done.is_some() => Event::Done {
                tag: "EOF".to_owned(),
                rows: self.result_done,
            },
            ServerMessage::Err(err) => Event::Error {
                code: err
                    .sql_state
                    .map_or_else(|| err.code.to_string(), |s| text(&s)),
                message: text(&err.message),
            },
            _ => return None,
        })
    }
}

/// What a kept column definition costs: its variable fields and the struct.
fn definition_bytes(d: &ColumnDefinition) -> usize {
    std::mem::size_of::<ColumnDefinition>()
        + [
            &d.catalog,
            &d.schema,
            &d.table,
            &d.org_table,
            &d.name,
            &d.org_name,
        ]
        .iter()
        .map(|b| b.len())
        .sum::<usize>()
        + d.extended_metadata.as_ref().map_or(0, Bytes::len)
        + d.default_values.as_ref().map_or(0, Bytes::len)
}

/// A copy of `d` that shares no memory with the packet it was parsed from.
fn detached(d: &ColumnDefinition) -> ColumnDefinition {
    let copy = |b: &Bytes| Bytes::copy_from_slice(b);
    ColumnDefinition {
        catalog: copy(&d.catalog),
        schema: copy(&d.schema),
        table: copy(&d.table),
        org_table: copy(&d.org_table),
        name: copy(&d.name),
        org_name: copy(&d.org_name),
        extended_metadata: d.extended_metadata.as_ref().map(copy),
        default_values: d.default_values.as_ref().map(copy),
        ..*d
    }
}

/// Frames the next packet of one direction, failing closed once TLS started.
fn next_packet(
    framer: &mut Framer,
    encrypted: bool,
    buf: &mut BytesMut,
) -> Result<Option<Packet>, DecodeError> {
    if encrypted && !buf.is_empty() {
        return Err(DecodeError::Encrypted {
            offset: framer.offset,
        });
    }
    framer.next(buf)
}

/// MariaDB's progress report travels as an ERR packet with this code.
const PROGRESS_REPORT: u16 = 0xffff;

/// COM_STMT_EXECUTE's cursor types (CURSOR_TYPE_READ_ONLY, _FOR_UPDATE,
/// _SCROLLABLE): any of them asks the server to open a cursor.
const CURSOR_TYPE_MASK: u8 = 0x07;

/// MariaDB's COM_STMT_EXECUTE id meaning "the statement prepared last".
const LAST_PREPARED: u32 = u32::MAX;

fn resolve_statement(id: u32, last_prepared: Option<u32>) -> Option<u32> {
    if id == LAST_PREPARED {
        last_prepared
    } else {
        Some(id)
    }
}

fn parse_eof(r: &mut Reader) -> Result<EofPacket, ReadError> {
    if r.u8()? != header::EOF {
        return Err("expected an EOF packet");
    }
    Ok(EofPacket {
        warnings: r.u16_le()?,
        status: r.u16_le()?,
    })
}

/// Runs a packet parser and requires it to consume the whole payload.
fn finish<T>(
    r: &mut Reader,
    parse: impl FnOnce(&mut Reader) -> Result<T, ReadError>,
    offset: u64,
    name: &'static str,
) -> Result<T, DecodeError> {
    parse(r)
        .and_then(|value| r.finish().map(|()| value))
        .map_err(|reason| malformed(offset, name, reason))
}

fn malformed(offset: u64, message: &'static str, reason: &'static str) -> DecodeError {
    DecodeError::Malformed {
        offset,
        message,
        reason,
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
