//! Messages a server sends to a client.

use bytes::{BufMut, Bytes, BytesMut};

use super::encode;
use super::framing::Frame;
use super::frontend::{CopyData, malformed};
use super::tags::{auth, backend as tag};
use crate::DecodeError;
use crate::reader::{ReadError, Reader};

/// The longest secret key accepted in BackendKeyData (protocol 3.2 allows 256).
const MAX_SECRET_KEY_LEN: usize = 256;

/// A message from server to client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendMessage {
    /// The one-byte answer to SSLRequest or GSSENCRequest: `S` or `G`
    /// (accepted, encryption follows) or `N` (refused).
    NegotiationResponse(u8),
    /// An authentication request or result.
    Authentication(Authentication),
    /// The key a client needs to cancel queries on this session.
    BackendKeyData(BackendKeyData),
    /// A run-time parameter's current value.
    ParameterStatus(ParameterStatus),
    /// The server is ready for a new query.
    ReadyForQuery(ReadyForQuery),
    /// The columns of the rows that follow.
    RowDescription(RowDescription),
    /// One result row.
    DataRow(DataRow),
    /// A statement finished.
    CommandComplete(CommandComplete),
    /// The query string was empty.
    EmptyQueryResponse,
    /// An error.
    ErrorResponse(Notice),
    /// A warning or informational message.
    NoticeResponse(Notice),
    /// Parse succeeded.
    ParseComplete,
    /// Bind succeeded.
    BindComplete,
    /// Close succeeded.
    CloseComplete,
    /// The statement or portal described returns no rows.
    NoData,
    /// Execute stopped at its row limit.
    PortalSuspended,
    /// The parameter types of a described statement.
    ParameterDescription(ParameterDescription),
    /// A NOTIFY delivered to this session.
    NotificationResponse(NotificationResponse),
    /// COPY FROM STDIN begins.
    CopyInResponse(CopyResponse),
    /// COPY TO STDOUT begins.
    CopyOutResponse(CopyResponse),
    /// Bidirectional COPY (replication) begins.
    CopyBothResponse(CopyResponse),
    /// COPY TO STDOUT data.
    CopyData(CopyData),
    /// COPY TO STDOUT finished.
    CopyDone,
    /// The result of a fast-path function call.
    FunctionCallResponse(FunctionCallResponse),
    /// The server supports an older minor version or lacks some options.
    NegotiateProtocolVersion(NegotiateProtocolVersion),
}

/// Authentication requests (`R`), by subtype.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Authentication {
    /// Authentication succeeded.
    Ok,
    /// Kerberos V5 (unsupported by modern servers).
    KerberosV5,
    /// Send the password in clear.
    CleartextPassword,
    /// Send `md5(md5(password + user) + salt)`.
    Md5Password {
        /// The salt.
        salt: [u8; 4],
    },
    /// Start GSSAPI.
    Gss,
    /// More GSSAPI or SSPI data.
    GssContinue {
        /// The token.
        data: Bytes,
    },
    /// Start SSPI.
    Sspi,
    /// Start SASL with one of these mechanisms.
    Sasl {
        /// Mechanism names, in the server's order of preference.
        mechanisms: Vec<Bytes>,
    },
    /// A SASL challenge.
    SaslContinue {
        /// The server-first message (SCRAM).
        data: Bytes,
    },
    /// SASL finished; the server's final message.
    SaslFinal {
        /// The server-final message (SCRAM).
        data: Bytes,
    },
}

impl std::fmt::Debug for Authentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Authentication {
    /// The message's name as in the PostgreSQL documentation.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ok => "AuthenticationOk",
            Self::KerberosV5 => "AuthenticationKerberosV5",
            Self::CleartextPassword => "AuthenticationCleartextPassword",
            Self::Md5Password { .. } => "AuthenticationMD5Password",
            Self::Gss => "AuthenticationGSS",
            Self::GssContinue { .. } => "AuthenticationGSSContinue",
            Self::Sspi => "AuthenticationSSPI",
            Self::Sasl { .. } => "AuthenticationSASL",
            Self::SaslContinue { .. } => "AuthenticationSASLContinue",
            Self::SaslFinal { .. } => "AuthenticationSASLFinal",
        }
    }
}

/// BackendKeyData: identifies the session for CancelRequest.
#[derive(Clone, PartialEq, Eq)]
pub struct BackendKeyData {
    /// The backend's process id.
    pub process_id: u32,
    /// The secret key (4 bytes before protocol 3.2, up to 256 after).
    pub secret_key: Bytes,
}

impl std::fmt::Debug for BackendKeyData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendKeyData")
            .field("process_id", &self.process_id)
            .finish_non_exhaustive()
    }
}

/// ParameterStatus: a run-time parameter's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterStatus {
    /// Parameter name.
    pub name: Bytes,
    /// Its value.
    pub value: Bytes,
}

/// ReadyForQuery and the transaction status it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyForQuery {
    /// `I` idle, `T` in a transaction, `E` in a failed transaction.
    pub status: u8,
}

/// RowDescription: the columns of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowDescription {
    /// One entry per column.
    pub fields: Vec<FieldDescription>,
}

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription {
    /// Column name (or alias).
    pub name: Bytes,
    /// OID of the source table, 0 if not a plain column.
    pub table_oid: u32,
    /// Attribute number in the source table, 0 if none.
    pub column_id: i16,
    /// OID of the data type.
    pub type_oid: u32,
    /// `pg_type.typlen` (negative for variable width).
    pub type_size: i16,
    /// `pg_attribute.atttypmod`.
    pub type_modifier: i32,
    /// 0 text, 1 binary.
    pub format: i16,
}

/// DataRow: one result row, validated on decode and read without copying.
///
/// The body is kept as received; [`cells`](Self::cells) walks it. This is the
/// hot path of a proxy: forwarding a row nobody changes costs no allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct DataRow {
    /// `Int16 count` followed by the cells, exactly as on the wire.
    body: Bytes,
    len: usize,
}

impl std::fmt::Debug for DataRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataRow")
            .field("cells", &self.len)
            .field("bytes", &self.body.len())
            .finish()
    }
}

impl DataRow {
    fn parse(body: Bytes) -> Result<Self, ReadError> {
        let mut r = Reader::new(body.clone());
        let len = usize::from(r.u16()?);
        r.check_count(len, 4)?;
        for _ in 0..len {
            r.skip_nullable_value()?;
        }
        r.finish()?;
        Ok(Self { body, len })
    }

    /// Builds a row from cell values; `None` is NULL.
    ///
    /// # Panics
    ///
    /// When given more than 65,535 cells, which no server can describe.
    pub fn from_cells<'a>(cells: impl IntoIterator<Item = Option<&'a [u8]>>) -> Self {
        let mut body = BytesMut::new();
        body.put_u16(0);
        let mut len = 0usize;
        for cell in cells {
            encode::nullable(&mut body, cell);
            len += 1;
        }
        let count = u16::try_from(len).unwrap_or_else(|_| panic!("{len} cells in one DataRow"));
        body[..2].copy_from_slice(&count.to_be_bytes());
        Self {
            body: body.freeze(),
            len,
        }
    }

    /// The number of cells.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a row of zero columns.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The cells in order; `None` is NULL. Each cell is a view into the
    /// received message, not a copy.
    pub fn cells(&self) -> Cells {
        let mut reader = Reader::new(self.body.clone());
        // Skip the count; validated at parse time.
        let _ = reader.u16();
        Cells {
            reader,
            left: self.len,
        }
    }
}

/// Iterator over a [`DataRow`]'s cells.
pub struct Cells {
    reader: Reader,
    left: usize,
}

impl Iterator for Cells {
    type Item = Option<Bytes>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The row was validated when parsed, so this read cannot fail; a
        // failure would only end the iteration early.
        self.reader.nullable_value().ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// CommandComplete: the statement's completion tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandComplete {
    /// E.g. `SELECT 3`, `INSERT 0 1`, `CREATE TABLE`.
    pub tag: Bytes,
}

impl CommandComplete {
    /// The row count at the end of the tag, for the commands that report one.
    pub fn rows(&self) -> Option<u64> {
        let tag = std::str::from_utf8(&self.tag).ok()?;
        let mut words = tag.split(' ');
        let command = words.next()?;
        let counted = matches!(
            command,
            "INSERT" | "DELETE" | "UPDATE" | "SELECT" | "MOVE" | "FETCH" | "COPY" | "MERGE"
        );
        if !counted {
            return None;
        }
        tag.rsplit(' ').next()?.parse().ok()
    }
}

/// ErrorResponse and NoticeResponse: typed fields, each a code byte and a
/// string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Fields in order, e.g. `(b'S', "ERROR")`, `(b'C', "42501")`, `(b'M', ...)`.
    pub fields: Vec<(u8, Bytes)>,
}

/// Field codes of ErrorResponse and NoticeResponse.
pub mod field {
    /// Severity, localised.
    pub const SEVERITY: u8 = b'S';
    /// Severity, never localised (9.6+).
    pub const SEVERITY_NONLOCALIZED: u8 = b'V';
    /// SQLSTATE code.
    pub const CODE: u8 = b'C';
    /// Primary message.
    pub const MESSAGE: u8 = b'M';
    /// Detail.
    pub const DETAIL: u8 = b'D';
    /// Hint.
    pub const HINT: u8 = b'H';
}

impl Notice {
    fn field(&self, code: u8) -> Option<&Bytes> {
        self.fields.iter().find(|(c, _)| *c == code).map(|(_, v)| v)
    }

    /// The SQLSTATE code.
    pub fn code(&self) -> Option<&Bytes> {
        self.field(field::CODE)
    }

    /// The primary message.
    pub fn message(&self) -> Option<&Bytes> {
        self.field(field::MESSAGE)
    }

    /// The severity (`ERROR`, `FATAL`, `NOTICE`, ...).
    pub fn severity(&self) -> Option<&Bytes> {
        self.field(field::SEVERITY)
    }

    /// An error or notice with the fields clients need: severity (localised
    /// and not), SQLSTATE and message.
    pub fn error(severity: &str, code: &str, message: &str) -> Self {
        let fields = [
            (field::SEVERITY, severity),
            (field::SEVERITY_NONLOCALIZED, severity),
            (field::CODE, code),
            (field::MESSAGE, message),
        ];
        Self {
            fields: fields
                .into_iter()
                .map(|(c, v)| (c, Bytes::copy_from_slice(v.as_bytes())))
                .collect(),
        }
    }

    fn parse(r: &mut Reader) -> Result<Self, ReadError> {
        let mut fields = Vec::new();
        loop {
            let code = r.u8()?;
            if code == 0 {
                return Ok(Self { fields });
            }
            fields.push((code, r.cstr()?));
        }
    }

    fn encode(&self, d: &mut BytesMut) {
        for (code, value) in &self.fields {
            d.put_u8(*code);
            encode::cstr(d, value);
        }
        d.put_u8(0);
    }
}

/// ParameterDescription: parameter type OIDs of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterDescription {
    /// One OID per parameter.
    pub types: Vec<u32>,
}

/// NotificationResponse: a NOTIFY from some session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationResponse {
    /// The notifying backend's process id.
    pub process_id: u32,
    /// The channel.
    pub channel: Bytes,
    /// The payload.
    pub payload: Bytes,
}

/// CopyInResponse, CopyOutResponse and CopyBothResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResponse {
    /// 0 textual, 1 binary overall format.
    pub format: u8,
    /// One format code per column.
    pub column_formats: Vec<i16>,
}

/// FunctionCallResponse: a fast-path function's result.
#[derive(Clone, PartialEq, Eq)]
pub struct FunctionCallResponse {
    /// The value; `None` is NULL.
    pub result: Option<Bytes>,
}

impl std::fmt::Debug for FunctionCallResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionCallResponse")
            .field("null", &self.result.is_none())
            .finish_non_exhaustive()
    }
}

/// NegotiateProtocolVersion: what the server supports of the client's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateProtocolVersion {
    /// Newest minor protocol version the server supports.
    pub newest_minor: u32,
    /// Protocol options the server did not recognise.
    pub unrecognized: Vec<Bytes>,
}

fn read_auth(r: &mut Reader) -> Result<Authentication, ReadError> {
    Ok(match r.u32()? {
        auth::OK => Authentication::Ok,
        auth::KERBEROS_V5 => Authentication::KerberosV5,
        auth::CLEARTEXT_PASSWORD => Authentication::CleartextPassword,
        auth::MD5_PASSWORD => {
            let salt = r.take(4)?;
            let mut out = [0; 4];
            out.copy_from_slice(&salt);
            Authentication::Md5Password { salt: out }
        }
        auth::GSS => Authentication::Gss,
        auth::GSS_CONTINUE => Authentication::GssContinue { data: r.rest() },
        auth::SSPI => Authentication::Sspi,
        auth::SASL => {
            let mut mechanisms = Vec::new();
            loop {
                let mechanism = r.cstr()?;
                if mechanism.is_empty() {
                    break;
                }
                mechanisms.push(mechanism);
            }
            Authentication::Sasl { mechanisms }
        }
        auth::SASL_CONTINUE => Authentication::SaslContinue { data: r.rest() },
        auth::SASL_FINAL => Authentication::SaslFinal { data: r.rest() },
        _ => return Err("unknown authentication request"),
    })
}

fn read_copy_response(r: &mut Reader) -> Result<CopyResponse, ReadError> {
    let format = r.u8()?;
    let count = usize::from(r.u16()?);
    r.check_count(count, 2)?;
    let column_formats = (0..count).map(|_| r.i16()).collect::<Result<_, _>>()?;
    Ok(CopyResponse {
        format,
        column_formats,
    })
}

impl BackendMessage {
    /// Parses a frame produced by [`BackendDecoder`](super::BackendDecoder).
    ///
    /// # Errors
    ///
    /// [`DecodeError::Malformed`] when the body does not follow the message's
    /// format, including trailing bytes; [`DecodeError::UnknownMessage`] for
    /// an unknown type byte.
    pub fn parse(frame: &Frame) -> Result<Self, DecodeError> {
        let Some(t) = frame.tag else {
            return match frame.bytes.as_ref() {
                [answer] => Ok(Self::NegotiationResponse(*answer)),
                _ => Err(malformed(
                    frame.offset,
                    "NegotiationResponse",
                    "untagged server message longer than one byte",
                )),
            };
        };
        let name = tag::name(t).ok_or(DecodeError::UnknownMessage {
            offset: frame.offset,
            tag: t,
        })?;
        let body = frame.body();
        let parsed = if t == tag::DATA_ROW {
            // The hot path: validate in place without a second Reader.
            DataRow::parse(body).map(Self::DataRow)
        } else {
            let mut r = Reader::new(body);
            Self::parse_tagged(t, &mut r).and_then(|m| r.finish().map(|()| m))
        };
        parsed.map_err(|reason| malformed(frame.offset, name, reason))
    }

    fn parse_tagged(t: u8, r: &mut Reader) -> Result<Self, ReadError> {
        Ok(match t {
            tag::AUTHENTICATION => Self::Authentication(read_auth(r)?),
            tag::BACKEND_KEY_DATA => {
                let process_id = r.u32()?;
                let secret_key = r.rest();
                if secret_key.len() < 4 || secret_key.len() > MAX_SECRET_KEY_LEN {
                    return Err("secret key length out of range");
                }
                Self::BackendKeyData(BackendKeyData {
                    process_id,
                    secret_key,
                })
            }
            tag::PARAMETER_STATUS => Self::ParameterStatus(ParameterStatus {
                name: r.cstr()?,
                value: r.cstr()?,
            }),
            tag::READY_FOR_QUERY => Self::ReadyForQuery(ReadyForQuery { status: r.u8()? }),
            tag::ROW_DESCRIPTION => {
                let count = usize::from(r.u16()?);
                // Smallest field: empty name (1) + 18 bytes of attributes.
                r.check_count(count, 19)?;
                let fields = (0..count)
                    .map(|_| {
                        Ok(FieldDescription {
                            name: r.cstr()?,
                            table_oid: r.u32()?,
                            column_id: r.i16()?,
                            type_oid: r.u32()?,
                            type_size: r.i16()?,
                            type_modifier: r.i32()?,
                            format: r.i16()?,
                        })
                    })
                    .collect::<Result<_, ReadError>>()?;
                Self::RowDescription(RowDescription { fields })
            }
            tag::COMMAND_COMPLETE => Self::CommandComplete(CommandComplete { tag: r.cstr()? }),
            tag::EMPTY_QUERY_RESPONSE => Self::EmptyQueryResponse,
            tag::ERROR_RESPONSE => Self::ErrorResponse(Notice::parse(r)?),
            tag::NOTICE_RESPONSE => Self::NoticeResponse(Notice::parse(r)?),
            tag::PARSE_COMPLETE => Self::ParseComplete,
            tag::BIND_COMPLETE => Self::BindComplete,
            tag::CLOSE_COMPLETE => Self::CloseComplete,
            tag::NO_DATA => Self::NoData,
            tag::PORTAL_SUSPENDED => Self::PortalSuspended,
            tag::PARAMETER_DESCRIPTION => {
                let count = usize::from(r.u16()?);
                r.check_count(count, 4)?;
                let types = (0..count).map(|_| r.u32()).collect::<Result<_, _>>()?;
                Self::ParameterDescription(ParameterDescription { types })
            }
            tag::NOTIFICATION_RESPONSE => Self::NotificationResponse(NotificationResponse {
                process_id: r.u32()?,
                channel: r.cstr()?,
                payload: r.cstr()?,
            }),
            tag::COPY_IN_RESPONSE => Self::CopyInResponse(read_copy_response(r)?),
            tag::COPY_OUT_RESPONSE => Self::CopyOutResponse(read_copy_response(r)?),
            tag::COPY_BOTH_RESPONSE => Self::CopyBothResponse(read_copy_response(r)?),
            tag::COPY_DATA => Self::CopyData(CopyData { data: r.rest() }),
            tag::COPY_DONE => Self::CopyDone,
            tag::FUNCTION_CALL_RESPONSE => Self::FunctionCallResponse(FunctionCallResponse {
                result: r.nullable_value()?,
            }),
            tag::NEGOTIATE_PROTOCOL_VERSION => {
                let newest_minor = r.u32()?;
                let count = r.u32()? as usize;
                r.check_count(count, 1)?;
                let unrecognized = (0..count).map(|_| r.cstr()).collect::<Result<_, _>>()?;
                Self::NegotiateProtocolVersion(NegotiateProtocolVersion {
                    newest_minor,
                    unrecognized,
                })
            }
            _ => return Err("unknown message type"),
        })
    }

    /// The message's name as in the PostgreSQL documentation; authentication
    /// requests are named by subtype (`AuthenticationSASL`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::NegotiationResponse(_) => "NegotiationResponse",
            Self::Authentication(a) => a.name(),
            Self::BackendKeyData(_) => "BackendKeyData",
            Self::ParameterStatus(_) => "ParameterStatus",
            Self::ReadyForQuery(_) => "ReadyForQuery",
            Self::RowDescription(_) => "RowDescription",
            Self::DataRow(_) => "DataRow",
            Self::CommandComplete(_) => "CommandComplete",
            Self::EmptyQueryResponse => "EmptyQueryResponse",
            Self::ErrorResponse(_) => "ErrorResponse",
            Self::NoticeResponse(_) => "NoticeResponse",
            Self::ParseComplete => "ParseComplete",
            Self::BindComplete => "BindComplete",
            Self::CloseComplete => "CloseComplete",
            Self::NoData => "NoData",
            Self::PortalSuspended => "PortalSuspended",
            Self::ParameterDescription(_) => "ParameterDescription",
            Self::NotificationResponse(_) => "NotificationResponse",
            Self::CopyInResponse(_) => "CopyInResponse",
            Self::CopyOutResponse(_) => "CopyOutResponse",
            Self::CopyBothResponse(_) => "CopyBothResponse",
            Self::CopyData(_) => "CopyData",
            Self::CopyDone => "CopyDone",
            Self::FunctionCallResponse(_) => "FunctionCallResponse",
            Self::NegotiateProtocolVersion(_) => "NegotiateProtocolVersion",
        }
    }

    /// Appends the message's wire encoding to `dst`.
    ///
    /// For a parsed message the output equals the bytes it was parsed from.
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Self::NegotiationResponse(answer) => dst.put_u8(*answer),
            Self::Authentication(a) => encode::tagged(dst, tag::AUTHENTICATION, |d| match a {
                Authentication::Ok => d.put_u32(auth::OK),
                Authentication::KerberosV5 => d.put_u32(auth::KERBEROS_V5),
                Authentication::CleartextPassword => d.put_u32(auth::CLEARTEXT_PASSWORD),
                Authentication::Md5Password { salt } => {
                    d.put_u32(auth::MD5_PASSWORD);
                    d.put_slice(salt);
                }
                Authentication::Gss => d.put_u32(auth::GSS),
                Authentication::GssContinue { data } => {
                    d.put_u32(auth::GSS_CONTINUE);
                    d.put_slice(data);
                }
                Authentication::Sspi => d.put_u32(auth::SSPI),
                Authentication::Sasl { mechanisms } => {
                    d.put_u32(auth::SASL);
                    for mechanism in mechanisms {
                        encode::cstr(d, mechanism);
                    }
                    d.put_u8(0);
                }
                Authentication::SaslContinue { data } => {
                    d.put_u32(auth::SASL_CONTINUE);
                    d.put_slice(data);
                }
                Authentication::SaslFinal { data } => {
                    d.put_u32(auth::SASL_FINAL);
                    d.put_slice(data);
                }
            }),
            Self::BackendKeyData(m) => encode::tagged(dst, tag::BACKEND_KEY_DATA, |d| {
                d.put_u32(m.process_id);
                d.put_slice(&m.secret_key);
            }),
            Self::ParameterStatus(m) => encode::tagged(dst, tag::PARAMETER_STATUS, |d| {
                encode::cstr(d, &m.name);
                encode::cstr(d, &m.value);
            }),
            Self::ReadyForQuery(m) => {
                encode::tagged(dst, tag::READY_FOR_QUERY, |d| d.put_u8(m.status));
            }
            Self::RowDescription(m) => encode::tagged(dst, tag::ROW_DESCRIPTION, |d| {
                d.put_u16(m.fields.len() as u16);
                for f in &m.fields {
                    encode::cstr(d, &f.name);
                    d.put_u32(f.table_oid);
                    d.put_i16(f.column_id);
                    d.put_u32(f.type_oid);
                    d.put_i16(f.type_size);
                    d.put_i32(f.type_modifier);
                    d.put_i16(f.format);
                }
            }),
            Self::DataRow(m) => encode::tagged(dst, tag::DATA_ROW, |d| d.put_slice(&m.body)),
            Self::CommandComplete(m) => {
                encode::tagged(dst, tag::COMMAND_COMPLETE, |d| encode::cstr(d, &m.tag));
            }
            Self::EmptyQueryResponse => encode::tagged(dst, tag::EMPTY_QUERY_RESPONSE, |_| {}),
            Self::ErrorResponse(m) => encode::tagged(dst, tag::ERROR_RESPONSE, |d| m.encode(d)),
            Self::NoticeResponse(m) => encode::tagged(dst, tag::NOTICE_RESPONSE, |d| m.encode(d)),
            Self::ParseComplete => encode::tagged(dst, tag::PARSE_COMPLETE, |_| {}),
            Self::BindComplete => encode::tagged(dst, tag::BIND_COMPLETE, |_| {}),
            Self::CloseComplete => encode::tagged(dst, tag::CLOSE_COMPLETE, |_| {}),
            Self::NoData => encode::tagged(dst, tag::NO_DATA, |_| {}),
            Self::PortalSuspended => encode::tagged(dst, tag::PORTAL_SUSPENDED, |_| {}),
            Self::ParameterDescription(m) => {
                encode::tagged(dst, tag::PARAMETER_DESCRIPTION, |d| {
                    d.put_u16(m.types.len() as u16);
                    for oid in &m.types {
                        d.put_u32(*oid);
                    }
                });
            }
            Self::NotificationResponse(m) => {
                encode::tagged(dst, tag::NOTIFICATION_RESPONSE, |d| {
                    d.put_u32(m.process_id);
                    encode::cstr(d, &m.channel);
                    encode::cstr(d, &m.payload);
                });
            }
            Self::CopyInResponse(m) => encode_copy_response(dst, tag::COPY_IN_RESPONSE, m),
            Self::CopyOutResponse(m) => encode_copy_response(dst, tag::COPY_OUT_RESPONSE, m),
            Self::CopyBothResponse(m) => encode_copy_response(dst, tag::COPY_BOTH_RESPONSE, m),
            Self::CopyData(m) => encode::tagged(dst, tag::COPY_DATA, |d| d.put_slice(&m.data)),
            Self::CopyDone => encode::tagged(dst, tag::COPY_DONE, |_| {}),
            Self::FunctionCallResponse(m) => {
                encode::tagged(dst, tag::FUNCTION_CALL_RESPONSE, |d| {
                    encode::nullable(d, m.result.as_deref());
                });
            }
            Self::NegotiateProtocolVersion(m) => {
                encode::tagged(dst, tag::NEGOTIATE_PROTOCOL_VERSION, |d| {
                    d.put_u32(m.newest_minor);
                    d.put_u32(m.unrecognized.len() as u32);
                    for option in &m.unrecognized {
                        encode::cstr(d, option);
                    }
                });
            }
        }
    }
}

fn encode_copy_response(dst: &mut BytesMut, t: u8, m: &CopyResponse) {
    encode::tagged(dst, t, |d| {
        d.put_u8(m.format);
        encode::formats(d, &m.column_formats);
    });
}
