//! Packets a MySQL client sends.

use bytes::{BufMut, Bytes, BytesMut};

use super::consts::{capability, command as com};
use super::value::{binary_value, lenenc_int, lenenc_str, put_lenenc_str};
use crate::DecodeError;
use crate::reader::{ReadError, Reader};

/// A packet from client to server, classified by the session's state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientMessage {
    /// The client's answer to the server's handshake.
    HandshakeResponse(HandshakeResponse),
    /// The client asks for TLS; a TLS handshake follows.
    SslRequest(SslRequest),
    /// Authentication data for the current plugin (AuthSwitchResponse,
    /// caching_sha2_password's requests, an encrypted password, ...).
    AuthData(AuthData),
    /// A command.
    Command(Command),
    /// A chunk of a LOAD DATA LOCAL INFILE file (empty: the file ended).
    LocalInfileData(Bytes),
}

impl ClientMessage {
    /// The packet's name as in the protocol documentation (`COM_QUERY`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::HandshakeResponse(_) => "HandshakeResponse41",
            Self::SslRequest(_) => "SSLRequest",
            Self::AuthData(_) => "AuthSwitchResponse",
            Self::Command(c) => c.name(),
            Self::LocalInfileData(_) => "LocalInfileData",
        }
    }

    /// Appends the packet's payload (without the 4-byte header) to `dst`.
    ///
    /// For a parsed packet the output equals the payload it was parsed from.
    pub fn encode_payload(&self, dst: &mut BytesMut) {
        match self {
            Self::HandshakeResponse(m) => m.encode(dst),
            Self::SslRequest(m) => {
                dst.put_u32_le(m.capabilities as u32);
                dst.put_u32_le(m.max_packet_size);
                dst.put_u8(m.charset);
                put_reserved(dst, m.capabilities);
            }
            Self::AuthData(m) => dst.put_slice(&m.data),
            Self::Command(c) => c.encode(dst),
            Self::LocalInfileData(data) => dst.put_slice(data),
        }
    }
}

/// The 23 reserved bytes of SSLRequest and HandshakeResponse41; MariaDB
/// clients put their extended capabilities in the last four.
fn put_reserved(dst: &mut BytesMut, capabilities: u64) {
    dst.put_bytes(0, 19);
    dst.put_u32_le((capabilities >> 32) as u32);
}

fn read_reserved(r: &mut Reader, capabilities: u32) -> Result<u64, ReadError> {
    if r.take(19)?.iter().any(|&b| b != 0) {
        return Err("reserved bytes are not zero");
    }
    let extended = u64::from(r.u32_le()?);
    if extended != 0 && u64::from(capabilities) & capability::LONG_PASSWORD != 0 {
        return Err("extended capabilities from a client that is not MariaDB-aware");
    }
    Ok(u64::from(capabilities) | extended << 32)
}

/// The fixed part shared by SSLRequest and HandshakeResponse41.
fn read_login_header(r: &mut Reader) -> Result<(u64, u32, u8), ReadError> {
    let caps = r.u32_le()?;
    let max_packet_size = r.u32_le()?;
    let charset = r.u8()?;
    let capabilities = read_reserved(r, caps)?;
    Ok((capabilities, max_packet_size, charset))
}

/// SSLRequest: the truncated handshake response that asks for TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SslRequest {
    /// Client capabilities (MariaDB's extended ones in the upper 32 bits).
    pub capabilities: u64,
    /// Largest packet the client accepts.
    pub max_packet_size: u32,
    /// Collation id.
    pub charset: u8,
}

/// The length of an SSLRequest payload.
pub(crate) const SSL_REQUEST_LEN: usize = 32;

impl SslRequest {
    pub(crate) fn parse(r: &mut Reader) -> Result<Self, ReadError> {
        let (capabilities, max_packet_size, charset) = read_login_header(r)?;
        Ok(Self {
            capabilities,
            max_packet_size,
            charset,
        })
    }
}

/// HandshakeResponse41.
#[derive(Clone, PartialEq, Eq)]
pub struct HandshakeResponse {
    /// Client capabilities (MariaDB's extended ones in the upper 32 bits).
    pub capabilities: u64,
    /// Largest packet the client accepts.
    pub max_packet_size: u32,
    /// Collation id.
    pub charset: u8,
    /// The user name.
    pub username: Bytes,
    /// The authentication plugin's response to the challenge.
    pub auth_response: Bytes,
    /// The initial database, with CLIENT_CONNECT_WITH_DB.
    pub database: Option<Bytes>,
    /// The plugin the response is for, with CLIENT_PLUGIN_AUTH.
    pub auth_plugin_name: Option<Bytes>,
    /// Connection attributes (`_client_name`, ...), the length-prefixed
    /// block as sent, with CLIENT_CONNECT_ATTRS.
    pub attributes: Option<Bytes>,
    /// Bytes after the attributes (MySQL's zstd compression level).
    pub trailer: Bytes,
}

impl std::fmt::Debug for HandshakeResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandshakeResponse")
            .field("capabilities", &format_args!("{:#x}", self.capabilities))
            .field("username", &self.username)
            .field("database", &self.database)
            .field("auth_plugin_name", &self.auth_plugin_name)
            .finish_non_exhaustive()
    }
}

impl HandshakeResponse {
    pub(crate) fn parse(r: &mut Reader) -> Result<Self, ReadError> {
        let (capabilities, max_packet_size, charset) = read_login_header(r)?;
        let username = r.cstr()?;
        let auth_response = if capabilities & capability::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            lenenc_str(r)?
        } else if capabilities & capability::SECURE_CONNECTION != 0 {
            let len = r.u8()?;
            r.take(usize::from(len))?
        } else {
            r.cstr()?
        };
        let optional = |r: &mut Reader, flag: u64| -> Result<Option<Bytes>, ReadError> {
            if capabilities & flag != 0 && r.left() > 0 {
                r.cstr().map(Some)
            } else {
                Ok(None)
            }
        };
        let database = optional(r, capability::CONNECT_WITH_DB)?;
        let auth_plugin_name = optional(r, capability::PLUGIN_AUTH)?;
        let attributes = if capabilities & capability::CONNECT_ATTRS != 0 && r.left() > 0 {
            let len = lenenc_int(r)?;
            let len = usize::try_from(len).map_err(|_| "attribute length overflows")?;
            let block = r.take(len)?;
            let mut attrs = Reader::new(block.clone());
            while attrs.left() > 0 {
                lenenc_str(&mut attrs)?;
                lenenc_str(&mut attrs)?;
            }
            Some(block)
        } else {
            None
        };
        Ok(Self {
            capabilities,
            max_packet_size,
            charset,
            username,
            auth_response,
            database,
            auth_plugin_name,
            attributes,
            trailer: r.rest(),
        })
    }

    fn encode(&self, dst: &mut BytesMut) {
        dst.put_u32_le(self.capabilities as u32);
        dst.put_u32_le(self.max_packet_size);
        dst.put_u8(self.charset);
        put_reserved(dst, self.capabilities);
        dst.put_slice(&self.username);
        dst.put_u8(0);
        if self.capabilities & capability::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            put_lenenc_str(dst, &self.auth_response);
        } else if self.capabilities & capability::SECURE_CONNECTION != 0 {
            dst.put_u8(self.auth_response.len() as u8);
            dst.put_slice(&self.auth_response);
        } else {
            dst.put_slice(&self.auth_response);
            dst.put_u8(0);
        }
        for s in [&self.database, &self.auth_plugin_name]
            .into_iter()
            .flatten()
        {
            dst.put_slice(s);
            dst.put_u8(0);
        }
        if let Some(attributes) = &self.attributes {
            put_lenenc_str(dst, attributes);
        }
        dst.put_slice(&self.trailer);
    }

    /// The connection attributes as name and value pairs.
    pub fn attribute_pairs(&self) -> Vec<(Bytes, Bytes)> {
        let mut pairs = Vec::new();
        if let Some(block) = &self.attributes {
            let mut r = Reader::new(block.clone());
            // Validated at parse time.
            while let (Ok(name), Ok(value)) = (lenenc_str(&mut r), lenenc_str(&mut r)) {
                pairs.push((name, value));
            }
        }
        pairs
    }
}

/// Authentication data for the current plugin.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthData {
    /// The data, as sent.
    pub data: Bytes,
}

impl std::fmt::Debug for AuthData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthData")
            .field("len", &self.data.len())
            .finish()
    }
}

/// A client command (`COM_*`).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// COM_QUIT.
    Quit,
    /// COM_INIT_DB: switch the default database.
    InitDb(Bytes),
    /// COM_QUERY: run SQL (text protocol).
    Query(ComQuery),
    /// COM_FIELD_LIST: list a table's columns (deprecated).
    FieldList {
        /// The table.
        table: Bytes,
        /// A column wildcard, as sent.
        wildcard: Bytes,
    },
    /// COM_STATISTICS.
    Statistics,
    /// COM_PROCESS_KILL (deprecated form of `KILL`).
    ProcessKill(u32),
    /// COM_PING.
    Ping,
    /// COM_CHANGE_USER: re-authenticate as another user; the body as sent.
    ChangeUser(Bytes),
    /// COM_STMT_PREPARE.
    StmtPrepare(Bytes),
    /// COM_STMT_EXECUTE.
    StmtExecute(ComStmtExecute),
    /// COM_STMT_SEND_LONG_DATA: a chunk of a parameter's value.
    StmtSendLongData {
        /// The statement.
        statement_id: u32,
        /// The parameter's position.
        param_id: u16,
        /// The chunk.
        data: Bytes,
    },
    /// COM_STMT_CLOSE.
    StmtClose(u32),
    /// COM_STMT_RESET.
    StmtReset(u32),
    /// COM_SET_OPTION: multi-statements on (0) or off (1).
    SetOption(u16),
    /// COM_STMT_FETCH: rows from an open cursor.
    StmtFetch {
        /// The statement.
        statement_id: u32,
        /// How many rows.
        num_rows: u32,
    },
    /// COM_RESET_CONNECTION.
    ResetConnection,
    /// Another command (COM_DEBUG, COM_REFRESH, ...): its byte and body.
    Other {
        /// The command byte.
        command: u8,
        /// The rest of the packet.
        body: Bytes,
    },
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SQL, parameters and long data may hold personal data: names only.
        f.write_str(self.name())
    }
}

/// COM_QUERY.
#[derive(Clone, PartialEq, Eq)]
pub struct ComQuery {
    /// The query attributes block as sent (empty without
    /// CLIENT_QUERY_ATTRIBUTES).
    pub attributes: Bytes,
    /// Number of query attributes.
    pub attribute_count: u64,
    /// The SQL.
    pub query: Bytes,
}

/// COM_CHANGE_USER's body (after the command byte): a new login on an open
/// connection, which also resets its session state.
///
/// ```text
/// string[NUL] user | auth response (int<1> length + bytes under
/// CLIENT_SECURE_CONNECTION, else string[NUL]) | string[NUL] database |
/// [int<2> character set | string[NUL] plugin under CLIENT_PLUGIN_AUTH |
///  lenenc attributes under CLIENT_CONNECT_ATTRS]
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ComChangeUser {
    /// The account to log in as.
    pub user: Bytes,
    /// The answer to the connection's first challenge.
    pub auth_response: Bytes,
    /// The database to use; empty for none.
    pub database: Bytes,
    /// The character set (a collation id), if sent.
    pub charset: Option<u16>,
    /// The authentication plugin the answer is for, if sent.
    pub auth_plugin_name: Option<Bytes>,
    /// Connection attributes (the lenenc block's contents), if sent.
    pub attributes: Option<Bytes>,
}

impl std::fmt::Debug for ComChangeUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // An account name and an answer to a challenge: neither is printed.
        f.debug_struct("ComChangeUser").finish_non_exhaustive()
    }
}

impl ComChangeUser {
    /// Reads the body of a [`Command::ChangeUser`] under the connection's
    /// `capabilities`.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Malformed`] (at offset 0 of the body) when a field is
    /// cut short or bytes are left over.
    pub fn parse(body: Bytes, capabilities: u64) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        Self::read(&mut r, capabilities)
            .and_then(|value| r.finish().map(|()| value))
            .map_err(|reason| DecodeError::Malformed {
                offset: 0,
                message: "COM_CHANGE_USER",
                reason,
            })
    }

    fn read(r: &mut Reader, capabilities: u64) -> Result<Self, ReadError> {
        let user = r.cstr()?;
        let auth_response = if capabilities & capability::SECURE_CONNECTION != 0 {
            let len = r.u8()?;
            r.take(usize::from(len))?
        } else {
            r.cstr()?
        };
        let database = r.cstr()?;
        let charset = if r.left() > 0 {
            Some(r.u16_le()?)
        } else {
            None
        };
        let auth_plugin_name = if capabilities & capability::PLUGIN_AUTH != 0 && r.left() > 0 {
            Some(r.cstr()?)
        } else {
            None
        };
        let attributes = if capabilities & capability::CONNECT_ATTRS != 0 && r.left() > 0 {
            Some(lenenc_str(r)?)
        } else {
            None
        };
        Ok(Self {
            user,
            auth_response,
            database,
            charset,
            auth_plugin_name,
            attributes,
        })
    }

    /// Appends the whole command payload (command byte first) under the
    /// connection's `capabilities`. An answer longer than 255 bytes under
    /// CLIENT_SECURE_CONNECTION cannot be sent and is cut to 255.
    pub fn encode(&self, capabilities: u64, dst: &mut BytesMut) {
        dst.put_u8(com::CHANGE_USER);
        dst.put_slice(&self.user);
        dst.put_u8(0);
        if capabilities & capability::SECURE_CONNECTION != 0 {
            let answer = self.auth_response.get(..255).unwrap_or(&self.auth_response);
            dst.put_u8(u8::try_from(answer.len()).unwrap_or(u8::MAX));
            dst.put_slice(answer);
        } else {
            dst.put_slice(&self.auth_response);
            dst.put_u8(0);
        }
        dst.put_slice(&self.database);
        dst.put_u8(0);
        let Some(charset) = self.charset else {
            return;
        };
        dst.put_u16_le(charset);
        if capabilities & capability::PLUGIN_AUTH != 0 {
            dst.put_slice(self.auth_plugin_name.as_deref().unwrap_or_default());
            dst.put_u8(0);
        }
        if capabilities & capability::CONNECT_ATTRS != 0
            && let Some(attributes) = &self.attributes
        {
            put_lenenc_str(dst, attributes);
        }
    }
}

/// COM_STMT_EXECUTE.
#[derive(Clone, PartialEq, Eq)]
pub struct ComStmtExecute {
    /// The statement (`0xFFFFFFFF`: MariaDB's "the last prepared").
    pub statement_id: u32,
    /// Cursor flags.
    pub flags: u8,
    /// Always 1.
    pub iteration_count: u32,
    /// Parameter count, NULL bitmap, types and values, as sent.
    pub param_block: Bytes,
    /// The parameter values in the binary protocol; `None` is NULL or a value
    /// sent with COM_STMT_SEND_LONG_DATA.
    pub params: Vec<Option<Bytes>>,
    /// The parameter types in effect (`type`, `flags` per parameter): bound
    /// by this execution or remembered from an earlier one.
    pub param_types: Vec<u8>,
}

/// The name of a command byte (`COM_QUERY`, ...).
pub(crate) fn command_name(command: u8) -> &'static str {
    match command {
        com::QUIT => "COM_QUIT",
        com::INIT_DB => "COM_INIT_DB",
        com::QUERY => "COM_QUERY",
        com::FIELD_LIST => "COM_FIELD_LIST",
        com::CREATE_DB => "COM_CREATE_DB",
        com::DROP_DB => "COM_DROP_DB",
        com::REFRESH => "COM_REFRESH",
        com::SHUTDOWN => "COM_SHUTDOWN",
        com::STATISTICS => "COM_STATISTICS",
        com::PROCESS_INFO => "COM_PROCESS_INFO",
        com::PROCESS_KILL => "COM_PROCESS_KILL",
        com::DEBUG => "COM_DEBUG",
        com::PING => "COM_PING",
        com::CHANGE_USER => "COM_CHANGE_USER",
        com::BINLOG_DUMP => "COM_BINLOG_DUMP",
        com::REGISTER_SLAVE => "COM_REGISTER_SLAVE",
        com::STMT_PREPARE => "COM_STMT_PREPARE",
        com::STMT_EXECUTE => "COM_STMT_EXECUTE",
        com::STMT_SEND_LONG_DATA => "COM_STMT_SEND_LONG_DATA",
        com::STMT_CLOSE => "COM_STMT_CLOSE",
        com::STMT_RESET => "COM_STMT_RESET",
        com::SET_OPTION => "COM_SET_OPTION",
        com::STMT_FETCH => "COM_STMT_FETCH",
        com::BINLOG_DUMP_GTID => "COM_BINLOG_DUMP_GTID",
        com::RESET_CONNECTION => "COM_RESET_CONNECTION",
        com::STMT_BULK_EXECUTE => "COM_STMT_BULK_EXECUTE",
        _ => "COM_UNKNOWN",
    }
}

/// Cursor flag of COM_STMT_EXECUTE: parameter count is sent (query attributes).
const PARAMETER_COUNT_AVAILABLE: u8 = 0x08;

/// What the session knows of a prepared statement when its execution is
/// parsed.
#[derive(Debug, Clone, Default)]
pub(crate) struct StatementParams {
    pub(crate) count: u16,
    /// Types bound by an earlier execution (each `type`, `flags`).
    pub(crate) types: Vec<u8>,
    /// Parameters whose value came in COM_STMT_SEND_LONG_DATA: the execution
    /// packet omits them.
    pub(crate) long_data: Vec<u16>,
}

impl Command {
    /// The command's name (`COM_QUERY`, ...).
    pub fn name(&self) -> &'static str {
        command_name(self.command_byte())
    }

    /// The command byte.
    pub fn command_byte(&self) -> u8 {
        match self {
            Self::Quit => com::QUIT,
            Self::InitDb(_) => com::INIT_DB,
            Self::Query(_) => com::QUERY,
            Self::FieldList { .. } => com::FIELD_LIST,
            Self::Statistics => com::STATISTICS,
            Self::ProcessKill(_) => com::PROCESS_KILL,
            Self::Ping => com::PING,
            Self::ChangeUser(_) => com::CHANGE_USER,
            Self::StmtPrepare(_) => com::STMT_PREPARE,
            Self::StmtExecute(_) => com::STMT_EXECUTE,
            Self::StmtSendLongData { .. } => com::STMT_SEND_LONG_DATA,
            Self::StmtClose(_) => com::STMT_CLOSE,
            Self::StmtReset(_) => com::STMT_RESET,
            Self::SetOption(_) => com::SET_OPTION,
            Self::StmtFetch { .. } => com::STMT_FETCH,
            Self::ResetConnection => com::RESET_CONNECTION,
            Self::Other { command, .. } => *command,
        }
    }

    /// The SQL of COM_QUERY and COM_STMT_PREPARE.
    pub fn sql(&self) -> Option<&Bytes> {
        match self {
            Self::Query(q) => Some(&q.query),
            Self::StmtPrepare(sql) => Some(sql),
            _ => None,
        }
    }

    pub(crate) fn parse(
        r: &mut Reader,
        capabilities: u64,
        statement: impl FnOnce(u32) -> Option<StatementParams>,
    ) -> Result<Self, ReadError> {
        let command = r.u8()?;
        let parsed = match command {
            com::QUIT => Self::Quit,
            com::INIT_DB => Self::InitDb(r.rest()),
            com::QUERY => Self::Query(parse_query(r, capabilities)?),
            com::FIELD_LIST => Self::FieldList {
                table: r.cstr()?,
                wildcard: r.rest(),
            },
            com::STATISTICS => Self::Statistics,
            com::PROCESS_KILL => Self::ProcessKill(r.u32_le()?),
            com::PING => Self::Ping,
            com::CHANGE_USER => Self::ChangeUser(r.rest()),
            com::STMT_PREPARE => Self::StmtPrepare(r.rest()),
            com::STMT_EXECUTE => {
                let statement_id = r.u32_le()?;
                let params = statement(statement_id).ok_or("execution of an unknown statement")?;
                Self::StmtExecute(parse_execute(r, statement_id, capabilities, params)?)
            }
            com::STMT_SEND_LONG_DATA => Self::StmtSendLongData {
                statement_id: r.u32_le()?,
                param_id: r.u16_le()?,
                data: r.rest(),
            },
            com::STMT_CLOSE => Self::StmtClose(r.u32_le()?),
            com::STMT_RESET => Self::StmtReset(r.u32_le()?),
            com::SET_OPTION => Self::SetOption(r.u16_le()?),
            com::STMT_FETCH => Self::StmtFetch {
                statement_id: r.u32_le()?,
                num_rows: r.u32_le()?,
            },
            com::RESET_CONNECTION => Self::ResetConnection,
            _ => Self::Other {
                command,
                body: r.rest(),
            },
        };
        r.finish()?;
        Ok(parsed)
    }

    fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(self.command_byte());
        match self {
            Self::Quit | Self::Statistics | Self::Ping | Self::ResetConnection => {}
            Self::InitDb(body) | Self::ChangeUser(body) | Self::StmtPrepare(body) => {
                dst.put_slice(body);
            }
            Self::Query(q) => {
                dst.put_slice(&q.attributes);
                dst.put_slice(&q.query);
            }
            Self::FieldList { table, wildcard } => {
                dst.put_slice(table);
                dst.put_u8(0);
                dst.put_slice(wildcard);
            }
            Self::ProcessKill(id) | Self::StmtClose(id) | Self::StmtReset(id) => {
                dst.put_u32_le(*id)
            }
            Self::StmtExecute(e) => {
                dst.put_u32_le(e.statement_id);
                dst.put_u8(e.flags);
                dst.put_u32_le(e.iteration_count);
                dst.put_slice(&e.param_block);
            }
            Self::StmtSendLongData {
                statement_id,
                param_id,
                data,
            } => {
                dst.put_u32_le(*statement_id);
                dst.put_u16_le(*param_id);
                dst.put_slice(data);
            }
            Self::SetOption(option) => dst.put_u16_le(*option),
            Self::StmtFetch {
                statement_id,
                num_rows,
            } => {
                dst.put_u32_le(*statement_id);
                dst.put_u32_le(*num_rows);
            }
            Self::Other { body, .. } => dst.put_slice(body),
        }
    }

    /// A COM_QUERY without attributes, e.g. for a proxy that runs its own
    /// statement. With CLIENT_QUERY_ATTRIBUTES negotiated use
    /// [`ComQuery::with_no_attributes`].
    pub fn query(sql: &[u8]) -> Self {
        Self::Query(ComQuery {
            attributes: Bytes::new(),
            attribute_count: 0,
            query: Bytes::copy_from_slice(sql),
        })
    }
}

impl ComQuery {
    /// A COM_QUERY for a session that negotiated CLIENT_QUERY_ATTRIBUTES:
    /// zero attributes, one parameter set.
    pub fn with_no_attributes(sql: &[u8]) -> Self {
        Self {
            attributes: Bytes::from_static(&[0, 1]),
            attribute_count: 0,
            query: Bytes::copy_from_slice(sql),
        }
    }
}

/// Reads `count` bound parameter values: NULL bitmap, new-params-bound flag,
/// optionally types (and names, with query attributes), then the values.
fn read_bound_values(
    r: &mut Reader,
    count: usize,
    with_names: bool,
    previous_types: &[u8],
    long_data: &[u16],
) -> Result<(Vec<Option<Bytes>>, Vec<u8>), ReadError> {
    let bitmap = r.take(count.div_ceil(8))?;
    let bound = r.u8()?;
    let types = match bound {
        1 => {
            r.check_count(count, 2)?;
            let mut types = Vec::with_capacity(count * 2);
            for _ in 0..count {
                types.push(r.u8()?);
                types.push(r.u8()?);
                if with_names {
                    lenenc_str(r)?;
                }
            }
            types
        }
        0 if previous_types.len() == count * 2 => previous_types.to_vec(),
        0 => return Err("parameter types were never bound"),
        _ => return Err("invalid new-params-bound flag"),
    };
    let mut values = Vec::with_capacity(count);
    for i in 0..count {
        let null = bitmap.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0);
        let sent_long = u16::try_from(i).is_ok_and(|i| long_data.contains(&i));
        if null || sent_long {
            values.push(None);
        } else {
            values.push(Some(binary_value(r, types[i * 2])?));
        }
    }
    Ok((values, types))
}

fn parse_query(r: &mut Reader, capabilities: u64) -> Result<ComQuery, ReadError> {
    let body = r.rest();
    if capabilities & capability::QUERY_ATTRIBUTES == 0 {
        return Ok(ComQuery {
            attributes: Bytes::new(),
            attribute_count: 0,
            query: body,
        });
    }
    let mut p = Reader::new(body.clone());
    let count = lenenc_int(&mut p)?;
    if lenenc_int(&mut p)? != 1 {
        return Err("query attributes with a parameter set count other than 1");
    }
    if count > 0 {
        let count = usize::try_from(count).map_err(|_| "attribute count overflows")?;
        p.check_count(count, 2)?;
        read_bound_values(&mut p, count, true, &[], &[])?;
    }
    let query = p.rest();
    Ok(ComQuery {
        attributes: body.slice(..body.len() - query.len()),
        attribute_count: count,
        query,
    })
}

fn parse_execute(
    r: &mut Reader,
    statement_id: u32,
    capabilities: u64,
    statement: StatementParams,
) -> Result<ComStmtExecute, ReadError> {
    let flags = r.u8()?;
    let iteration_count = r.u32_le()?;
    let param_block = r.rest();
    let mut p = Reader::new(param_block.clone());
    // Under CLIENT_QUERY_ATTRIBUTES the count (parameters, then attributes)
    // is sent whenever the statement has parameters, and for a statement of
    // none when PARAMETER_COUNT_AVAILABLE says attributes follow; each bound
    // type then carries a name (empty for a parameter). MySQL 8.0.26+ and
    // mysql-connector-python 9 send it so.
    let with_attributes = capabilities & capability::QUERY_ATTRIBUTES != 0;
    let counted = statement.count > 0 || flags & PARAMETER_COUNT_AVAILABLE != 0;
    let count = if with_attributes && counted {
        let count = lenenc_int(&mut p)?;
        usize::try_from(count).map_err(|_| "parameter count overflows")?
    } else {
        usize::from(statement.count)
    };
    let (params, param_types) = if count > 0 {
        p.check_count(count, 1)?;
        read_bound_values(
            &mut p,
            count,
            with_attributes,
            &statement.types,
            &statement.long_data,
        )?
    } else {
        (Vec::new(), Vec::new())
    };
    p.finish()?;
    Ok(ComStmtExecute {
        statement_id,
        flags,
        iteration_count,
        param_block,
        params,
        param_types,
    })
}
