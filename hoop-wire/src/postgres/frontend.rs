//! Messages a client sends to a server.

use bytes::{BufMut, Bytes, BytesMut};

use super::encode;
use super::framing::Frame;
use super::tags::{frontend as tag, startup};
use crate::DecodeError;
use crate::reader::{ReadError, Reader};

/// The longest cancel key accepted: protocol 3.2 allows up to 256 bytes.
const MAX_CANCEL_KEY_LEN: usize = 256;

/// A message from client to server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrontendMessage {
    /// Asks the server to switch to TLS.
    SslRequest,
    /// Asks the server to switch to GSSAPI encryption.
    GssEncRequest,
    /// Asks the server to cancel a running query, on a new connection.
    CancelRequest(CancelRequest),
    /// Opens a session: protocol version and parameters (user, database, ...).
    Startup(StartupMessage),
    /// A password, or a SASL or GSS token; see [`AuthResponse`].
    PasswordMessage(AuthResponse),
    /// A simple-protocol query string.
    Query(Query),
    /// Prepares a statement (extended protocol).
    Parse(Parse),
    /// Binds parameters to a prepared statement, creating a portal.
    Bind(Bind),
    /// Asks for a statement's or portal's description.
    Describe(Describe),
    /// Runs a portal.
    Execute(Execute),
    /// Ends an extended-protocol batch.
    Sync,
    /// Asks the server to send what it has buffered.
    Flush,
    /// Closes a statement or portal.
    Close(Close),
    /// COPY FROM STDIN data.
    CopyData(CopyData),
    /// COPY FROM STDIN finished.
    CopyDone,
    /// COPY FROM STDIN aborted by the client.
    CopyFail(CopyFail),
    /// A fast-path function call.
    FunctionCall(FunctionCall),
    /// Ends the session.
    Terminate,
}

/// CancelRequest: which backend to interrupt, proven by its secret key.
#[derive(Clone, PartialEq, Eq)]
pub struct CancelRequest {
    /// The target backend's process id.
    pub process_id: u32,
    /// The secret key from its BackendKeyData (4 bytes before protocol 3.2).
    pub secret_key: Bytes,
}

impl std::fmt::Debug for CancelRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelRequest")
            .field("process_id", &self.process_id)
            .finish_non_exhaustive()
    }
}

/// StartupMessage: the first message of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupMessage {
    /// Major version in the high 16 bits, minor in the low (3.0 is `0x0003_0000`).
    pub protocol_version: u32,
    /// Name and value pairs (`user`, `database`, `application_name`, ...).
    pub params: Vec<(Bytes, Bytes)>,
}

impl StartupMessage {
    /// The value of a startup parameter.
    pub fn param(&self, name: &[u8]) -> Option<&Bytes> {
        self.params
            .iter()
            .find(|(n, _)| n.as_ref() == name)
            .map(|(_, v)| v)
    }
}

/// The body of a `p` message. Its meaning depends on the authentication the
/// server asked for, which the frontend stream alone cannot tell: read it with
/// [`password`](Self::password), [`sasl_initial`](Self::sasl_initial) or as a
/// raw SASL/GSS token (`data`).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthResponse {
    /// The message body.
    pub data: Bytes,
}

impl std::fmt::Debug for AuthResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthResponse")
            .field("len", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// SASLInitialResponse: the chosen mechanism and the client's first message.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslInitialResponse {
    /// The mechanism name, e.g. `SCRAM-SHA-256`.
    pub mechanism: Bytes,
    /// The initial client response; `None` when the length is -1.
    pub data: Option<Bytes>,
}

impl AuthResponse {
    /// A PasswordMessage carrying a cleartext or md5-hashed password.
    pub fn password(password: &[u8]) -> Self {
        let mut data = BytesMut::with_capacity(password.len() + 1);
        encode::cstr(&mut data, password);
        Self {
            data: data.freeze(),
        }
    }

    /// A SASLInitialResponse.
    pub fn sasl_initial(mechanism: &[u8], data: Option<&[u8]>) -> Self {
        let mut body = BytesMut::new();
        encode::cstr(&mut body, mechanism);
        encode::nullable(&mut body, data);
        Self {
            data: body.freeze(),
        }
    }

    /// A SASLResponse (or GSSResponse): the token is the whole body.
    pub fn sasl_response(data: &[u8]) -> Self {
        Self {
            data: Bytes::copy_from_slice(data),
        }
    }

    /// Reads the body as a PasswordMessage.
    ///
    /// # Errors
    ///
    /// When the body is not one NUL-terminated string.
    pub fn read_password(&self) -> Result<Bytes, DecodeError> {
        let mut r = Reader::new(self.data.clone());
        let password = r
            .cstr()
            .and_then(|p| r.finish().map(|()| p))
            .map_err(|reason| malformed(0, "PasswordMessage", reason))?;
        Ok(password)
    }

    /// Reads the body as a SASLInitialResponse.
    ///
    /// # Errors
    ///
    /// When the body is not a mechanism name followed by a length-prefixed
    /// response.
    pub fn read_sasl_initial(&self) -> Result<SaslInitialResponse, DecodeError> {
        let mut r = Reader::new(self.data.clone());
        let read = |r: &mut Reader| -> Result<SaslInitialResponse, ReadError> {
            let mechanism = r.cstr()?;
            let data = r.nullable_value()?;
            r.finish()?;
            Ok(SaslInitialResponse { mechanism, data })
        };
        read(&mut r).map_err(|reason| malformed(0, "SASLInitialResponse", reason))
    }
}

/// Query: a simple-protocol query string, possibly several statements.
#[derive(Clone, PartialEq, Eq)]
pub struct Query {
    /// The SQL, without its terminating NUL.
    pub query: Bytes,
}

/// Parse: prepare a statement.
#[derive(Clone, PartialEq, Eq)]
pub struct Parse {
    /// The statement name; empty for the unnamed statement.
    pub name: Bytes,
    /// The SQL.
    pub query: Bytes,
    /// Parameter type OIDs the client specified (0 = unspecified).
    pub param_types: Vec<u32>,
}

/// Bind: bind parameter values to a prepared statement, creating a portal.
#[derive(Clone, PartialEq, Eq)]
pub struct Bind {
    /// The destination portal; empty for the unnamed portal.
    pub portal: Bytes,
    /// The source prepared statement.
    pub statement: Bytes,
    /// Parameter format codes: none (all text), one (applies to all), or one
    /// per parameter; 0 text, 1 binary.
    pub param_formats: Vec<i16>,
    /// Parameter values; `None` is NULL.
    pub params: Vec<Option<Bytes>>,
    /// Result column format codes, with the same none/one/each convention.
    pub result_formats: Vec<i16>,
}

impl Bind {
    /// The format code that applies to parameter `index`.
    pub fn param_format(&self, index: usize) -> i16 {
        format_for(&self.param_formats, index)
    }

    /// The format code that applies to result column `index`.
    pub fn result_format(&self, index: usize) -> i16 {
        format_for(&self.result_formats, index)
    }
}

/// Applies the protocol's format-code convention: no codes means text, one
/// code applies to all, otherwise one code per position.
pub(crate) fn format_for(formats: &[i16], index: usize) -> i16 {
    match formats {
        [] => 0,
        [only] => *only,
        many => many.get(index).copied().unwrap_or(0),
    }
}

/// Describe: ask for a statement's (`S`) or portal's (`P`) description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Describe {
    /// `b'S'` for a prepared statement, `b'P'` for a portal.
    pub kind: u8,
    /// Its name.
    pub name: Bytes,
}

/// Execute: run a portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execute {
    /// The portal name; empty for the unnamed portal.
    pub portal: Bytes,
    /// Row limit; 0 means no limit.
    pub max_rows: u32,
}

/// Close: close a statement (`S`) or portal (`P`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// `b'S'` or `b'P'`.
    pub kind: u8,
    /// Its name.
    pub name: Bytes,
}

/// CopyData: a chunk of COPY data (either direction).
#[derive(Clone, PartialEq, Eq)]
pub struct CopyData {
    /// The chunk, as sent.
    pub data: Bytes,
}

/// CopyFail: the client aborts COPY FROM STDIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFail {
    /// Why.
    pub message: Bytes,
}

/// FunctionCall: the legacy fast-path interface.
#[derive(Clone, PartialEq, Eq)]
pub struct FunctionCall {
    /// The function's OID.
    pub function_oid: u32,
    /// Argument format codes (none/one/each convention).
    pub arg_formats: Vec<i16>,
    /// Argument values; `None` is NULL.
    pub args: Vec<Option<Bytes>>,
    /// The result's format code.
    pub result_format: i16,
}

macro_rules! redacted_debug {
    ($ty:ident { $($field:ident),* } sizes { $($sized:ident),* }) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field))*
                    $(.field(stringify!($sized), &self.$sized.len()))*
                    .finish_non_exhaustive()
            }
        }
    };
}

// SQL text and values may carry personal data or credentials: Debug prints
// their sizes only.
redacted_debug!(Query {} sizes { query });
redacted_debug!(Parse { name, param_types } sizes { query });
redacted_debug!(Bind { portal, statement, param_formats, result_formats } sizes { params });
redacted_debug!(CopyData {} sizes { data });
redacted_debug!(FunctionCall { function_oid, arg_formats, result_format } sizes { args });

pub(crate) fn malformed(offset: u64, message: &'static str, reason: &'static str) -> DecodeError {
    DecodeError::Malformed {
        offset,
        message,
        reason,
    }
}

/// The name of a startup-phase message from its request code.
pub(crate) fn startup_name(code: u32) -> &'static str {
    match code {
        startup::SSL_REQUEST => "SSLRequest",
        startup::GSSENC_REQUEST => "GSSENCRequest",
        startup::CANCEL_REQUEST => "CancelRequest",
        _ => "StartupMessage",
    }
}

fn read_formats(r: &mut Reader) -> Result<Vec<i16>, ReadError> {
    let count = usize::from(r.u16()?);
    r.check_count(count, 2)?;
    (0..count).map(|_| r.i16()).collect()
}

fn read_values(r: &mut Reader) -> Result<Vec<Option<Bytes>>, ReadError> {
    let count = usize::from(r.u16()?);
    r.check_count(count, 4)?;
    (0..count).map(|_| r.nullable_value()).collect()
}

fn read_kind(r: &mut Reader) -> Result<u8, ReadError> {
    match r.u8()? {
        kind @ (b'S' | b'P') => Ok(kind),
        _ => Err("kind is neither 'S' nor 'P'"),
    }
}

impl FrontendMessage {
    /// Parses a frame produced by [`FrontendDecoder`](super::FrontendDecoder).
    ///
    /// # Errors
    ///
    /// [`DecodeError::Malformed`] when the body does not follow the message's
    /// format, including trailing bytes; [`DecodeError::UnknownMessage`] for
    /// an unknown type byte.
    pub fn parse(frame: &Frame) -> Result<Self, DecodeError> {
        let mut r = Reader::new(frame.body());
        let Some(t) = frame.tag else {
            let code = r
                .u32()
                .map_err(|reason| malformed(frame.offset, "StartupMessage", reason))?;
            let name = startup_name(code);
            return Self::parse_startup(code, &mut r)
                .map_err(|reason| malformed(frame.offset, name, reason));
        };
        let name = tag::name(t).ok_or(DecodeError::UnknownMessage {
            offset: frame.offset,
            tag: t,
        })?;
        Self::parse_tagged(t, &mut r).map_err(|reason| malformed(frame.offset, name, reason))
    }

    fn parse_startup(code: u32, r: &mut Reader) -> Result<Self, ReadError> {
        let message = match code {
            startup::SSL_REQUEST => Self::SslRequest,
            startup::GSSENC_REQUEST => Self::GssEncRequest,
            startup::CANCEL_REQUEST => {
                let process_id = r.u32()?;
                let secret_key = r.rest();
                if secret_key.len() < 4 || secret_key.len() > MAX_CANCEL_KEY_LEN {
                    return Err("cancel key length out of range");
                }
                Self::CancelRequest(CancelRequest {
                    process_id,
                    secret_key,
                })
            }
            version if version >> 16 == startup::PROTOCOL_MAJOR_3 => {
                let mut params = Vec::new();
                loop {
                    let name = r.cstr()?;
                    if name.is_empty() {
                        break;
                    }
                    params.push((name, r.cstr()?));
                }
                Self::Startup(StartupMessage {
                    protocol_version: version,
                    params,
                })
            }
            _ => return Err("unsupported protocol version or request code"),
        };
        r.finish()?;
        Ok(message)
    }

    fn parse_tagged(t: u8, r: &mut Reader) -> Result<Self, ReadError> {
        let message = match t {
            tag::QUERY => Self::Query(Query { query: r.cstr()? }),
            tag::PARSE => {
                let name = r.cstr()?;
                let query = r.cstr()?;
                let count = usize::from(r.u16()?);
                r.check_count(count, 4)?;
                let param_types = (0..count).map(|_| r.u32()).collect::<Result<_, _>>()?;
                Self::Parse(Parse {
                    name,
                    query,
                    param_types,
                })
            }
            tag::BIND => Self::Bind(Bind {
                portal: r.cstr()?,
                statement: r.cstr()?,
                param_formats: read_formats(r)?,
                params: read_values(r)?,
                result_formats: read_formats(r)?,
            }),
            tag::DESCRIBE => Self::Describe(Describe {
                kind: read_kind(r)?,
                name: r.cstr()?,
            }),
            tag::EXECUTE => Self::Execute(Execute {
                portal: r.cstr()?,
                max_rows: r.u32()?,
            }),
            tag::CLOSE => Self::Close(Close {
                kind: read_kind(r)?,
                name: r.cstr()?,
            }),
            tag::SYNC => Self::Sync,
            tag::FLUSH => Self::Flush,
            tag::TERMINATE => Self::Terminate,
            tag::COPY_DONE => Self::CopyDone,
            tag::COPY_DATA => Self::CopyData(CopyData { data: r.rest() }),
            tag::COPY_FAIL => Self::CopyFail(CopyFail { message: r.cstr()? }),
            tag::PASSWORD => Self::PasswordMessage(AuthResponse { data: r.rest() }),
            tag::FUNCTION_CALL => Self::FunctionCall(FunctionCall {
                function_oid: r.u32()?,
                arg_formats: read_formats(r)?,
                args: read_values(r)?,
                result_format: r.i16()?,
            }),
            _ => return Err("unknown message type"),
        };
        r.finish()?;
        Ok(message)
    }

    /// The message's name as in the PostgreSQL documentation.
    pub fn name(&self) -> &'static str {
        match self {
            Self::SslRequest => "SSLRequest",
            Self::GssEncRequest => "GSSENCRequest",
            Self::CancelRequest(_) => "CancelRequest",
            Self::Startup(_) => "StartupMessage",
            Self::PasswordMessage(_) => "PasswordMessage",
            Self::Query(_) => "Query",
            Self::Parse(_) => "Parse",
            Self::Bind(_) => "Bind",
            Self::Describe(_) => "Describe",
            Self::Execute(_) => "Execute",
            Self::Sync => "Sync",
            Self::Flush => "Flush",
            Self::Close(_) => "Close",
            Self::CopyData(_) => "CopyData",
            Self::CopyDone => "CopyDone",
            Self::CopyFail(_) => "CopyFail",
            Self::FunctionCall(_) => "FunctionCall",
            Self::Terminate => "Terminate",
        }
    }

    /// Appends the message's wire encoding to `dst`.
    ///
    /// For a parsed message the output equals the bytes it was parsed from.
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Self::SslRequest => encode::length_prefixed(dst, |d| d.put_u32(startup::SSL_REQUEST)),
            Self::GssEncRequest => {
                encode::length_prefixed(dst, |d| d.put_u32(startup::GSSENC_REQUEST));
            }
            Self::CancelRequest(m) => encode::length_prefixed(dst, |d| {
                d.put_u32(startup::CANCEL_REQUEST);
                d.put_u32(m.process_id);
                d.put_slice(&m.secret_key);
            }),
            Self::Startup(m) => encode::length_prefixed(dst, |d| {
                d.put_u32(m.protocol_version);
                for (name, value) in &m.params {
                    encode::cstr(d, name);
                    encode::cstr(d, value);
                }
                d.put_u8(0);
            }),
            Self::PasswordMessage(m) => {
                encode::tagged(dst, tag::PASSWORD, |d| d.put_slice(&m.data))
            }
            Self::Query(m) => encode::tagged(dst, tag::QUERY, |d| encode::cstr(d, &m.query)),
            Self::Parse(m) => encode::tagged(dst, tag::PARSE, |d| {
                encode::cstr(d, &m.name);
                encode::cstr(d, &m.query);
                d.put_u16(m.param_types.len() as u16);
                for oid in &m.param_types {
                    d.put_u32(*oid);
                }
            }),
            Self::Bind(m) => encode::tagged(dst, tag::BIND, |d| {
                encode::cstr(d, &m.portal);
                encode::cstr(d, &m.statement);
                encode::formats(d, &m.param_formats);
                d.put_u16(m.params.len() as u16);
                for param in &m.params {
                    encode::nullable(d, param.as_deref());
                }
                encode::formats(d, &m.result_formats);
            }),
            Self::Describe(m) => encode::tagged(dst, tag::DESCRIBE, |d| {
                d.put_u8(m.kind);
                encode::cstr(d, &m.name);
            }),
            Self::Execute(m) => encode::tagged(dst, tag::EXECUTE, |d| {
                encode::cstr(d, &m.portal);
                d.put_u32(m.max_rows);
            }),
            Self::Sync => encode::tagged(dst, tag::SYNC, |_| {}),
            Self::Flush => encode::tagged(dst, tag::FLUSH, |_| {}),
            Self::Terminate => encode::tagged(dst, tag::TERMINATE, |_| {}),
            Self::CopyDone => encode::tagged(dst, tag::COPY_DONE, |_| {}),
            Self::Close(m) => encode::tagged(dst, tag::CLOSE, |d| {
                d.put_u8(m.kind);
                encode::cstr(d, &m.name);
            }),
            Self::CopyData(m) => encode::tagged(dst, tag::COPY_DATA, |d| d.put_slice(&m.data)),
            Self::CopyFail(m) => {
                encode::tagged(dst, tag::COPY_FAIL, |d| encode::cstr(d, &m.message))
            }
            Self::FunctionCall(m) => encode::tagged(dst, tag::FUNCTION_CALL, |d| {
                d.put_u32(m.function_oid);
                encode::formats(d, &m.arg_formats);
                d.put_u16(m.args.len() as u16);
                for arg in &m.args {
                    encode::nullable(d, arg.as_deref());
                }
                d.put_i16(m.result_format);
            }),
        }
    }
}
