//! Packets a MySQL or MariaDB server sends.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::consts::{capability, header};
use super::value::{
    NULL_MARKER, binary_value, lenenc_int, lenenc_str, nullable_lenenc_str, put_binary_value,
    put_lenenc_int, put_lenenc_str, skip_binary_value, skip_nullable_lenenc_str,
};
use crate::reader::{ReadError, Reader};

/// A packet from server to client, classified by the session's state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerMessage {
    /// The initial handshake (protocol version 10).
    Handshake(Handshake),
    /// OK: a command succeeded (also ends a result set under
    /// CLIENT_DEPRECATE_EOF).
    Ok(OkPacket),
    /// ERR: a command failed.
    Err(ErrPacket),
    /// EOF: ends column definitions or rows (without CLIENT_DEPRECATE_EOF).
    Eof(EofPacket),
    /// MariaDB progress report (an ERR-shaped packet with code 0xFFFF).
    Progress(Bytes),
    /// The server asks the client to authenticate with another plugin.
    AuthSwitchRequest(AuthSwitchRequest),
    /// More authentication data from the server's plugin.
    AuthMoreData(AuthMoreData),
    /// The number of columns of a result set.
    ColumnCount(ColumnCount),
    /// One column's definition.
    ColumnDefinition(ColumnDefinition),
    /// A text-protocol row (COM_QUERY).
    TextRow(TextRow),
    /// A binary-protocol row (COM_STMT_EXECUTE, COM_STMT_FETCH).
    BinaryRow(BinaryRow),
    /// LOAD DATA LOCAL INFILE: the server asks the client for a file.
    LocalInfileRequest(LocalInfileRequest),
    /// COM_STMT_PREPARE succeeded.
    StmtPrepareOk(StmtPrepareOk),
    /// The answer to COM_STATISTICS: a human-readable string.
    Statistics(Bytes),
}

impl ServerMessage {
    /// The packet's name as in the protocol documentation.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Handshake(_) => "HandshakeV10",
            Self::Ok(_) => "OK",
            Self::Err(_) => "ERR",
            Self::Eof(_) => "EOF",
            Self::Progress(_) => "Progress",
            Self::AuthSwitchRequest(_) => "AuthSwitchRequest",
            Self::AuthMoreData(_) => "AuthMoreData",
            Self::ColumnCount(_) => "ColumnCount",
            Self::ColumnDefinition(_) => "ColumnDefinition41",
            Self::TextRow(_) => "ResultSetRow",
            Self::BinaryRow(_) => "BinaryResultSetRow",
            Self::LocalInfileRequest(_) => "LOCAL_INFILE_Request",
            Self::StmtPrepareOk(_) => "COM_STMT_PREPARE_OK",
            Self::Statistics(_) => "Statistics",
        }
    }

    /// Appends the packet's payload (without the 4-byte header) to `dst`.
    ///
    /// For a parsed packet the output equals the payload it was parsed from;
    /// use [`encode_packet`](super::encode_packet) to frame it.
    pub fn encode_payload(&self, dst: &mut BytesMut) {
        match self {
            Self::Handshake(m) => m.encode(dst),
            Self::Ok(m) => m.encode(dst),
            Self::Err(m) => m.encode(dst),
            Self::Eof(m) => {
                dst.put_u8(header::EOF);
                dst.put_u16_le(m.warnings);
                dst.put_u16_le(m.status);
            }
            Self::Progress(raw) | Self::Statistics(raw) => dst.put_slice(raw),
            Self::AuthSwitchRequest(m) => {
                dst.put_u8(header::EOF);
                dst.put_slice(&m.plugin);
                dst.put_u8(0);
                dst.put_slice(&m.data);
            }
            Self::AuthMoreData(m) => {
                dst.put_u8(header::AUTH_MORE_DATA);
                dst.put_slice(&m.data);
            }
            Self::ColumnCount(m) => {
                put_lenenc_int(dst, m.count);
                if let Some(follows) = m.metadata_follows {
                    dst.put_u8(follows);
                }
            }
            Self::ColumnDefinition(m) => m.encode(dst),
            Self::TextRow(m) => dst.put_slice(&m.payload),
            Self::BinaryRow(m) => dst.put_slice(&m.payload),
            Self::LocalInfileRequest(m) => {
                dst.put_u8(header::LOCAL_INFILE);
                dst.put_slice(&m.filename);
            }
            Self::StmtPrepareOk(m) => {
                dst.put_u8(header::OK);
                dst.put_u32_le(m.statement_id);
                dst.put_u16_le(m.num_columns);
                dst.put_u16_le(m.num_params);
                dst.put_u8(0);
                if let Some(warnings) = m.warnings {
                    dst.put_u16_le(warnings);
                }
                if let Some(follows) = m.metadata_follows {
                    dst.put_u8(follows);
                }
            }
        }
    }
}

/// The server's initial handshake.
#[derive(Clone, PartialEq, Eq)]
pub struct Handshake {
    /// E.g. `10.11.19-MariaDB-0+deb12u1` (MariaDB prefixes `5.5.5-`).
    pub server_version: Bytes,
    /// The connection (thread) id, used by `KILL`.
    pub connection_id: u32,
    /// The authentication challenge (scramble), both parts joined.
    pub auth_plugin_data: Bytes,
    /// Capabilities, MariaDB's extended ones in the upper 32 bits.
    pub capabilities: u64,
    /// Default collation id.
    pub charset: u8,
    /// Server status flags.
    pub status: u16,
    /// The declared length of the challenge (the `auth_plugin_data_len` byte).
    pub auth_plugin_data_len: u8,
    /// The default authentication plugin, e.g. `mysql_native_password`.
    pub auth_plugin_name: Option<Bytes>,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("server_version", &self.server_version)
            .field("connection_id", &self.connection_id)
            .field("capabilities", &format_args!("{:#x}", self.capabilities))
            .field("auth_plugin_name", &self.auth_plugin_name)
            .finish_non_exhaustive()
    }
}

impl Handshake {
    pub(crate) fn parse(r: &mut Reader) -> Result<Self, ReadError> {
        if r.u8()? != header::HANDSHAKE_V10 {
            return Err("unsupported handshake protocol version");
        }
        let server_version = r.cstr()?;
        let connection_id = r.u32_le()?;
        let part1 = r.take(8)?;
        if r.u8()? != 0 {
            return Err("handshake filler is not zero");
        }
        let caps_low = u64::from(r.u16_le()?);
        let charset = r.u8()?;
        let status = r.u16_le()?;
        let caps_high = u64::from(r.u16_le()?);
        let auth_plugin_data_len = r.u8()?;
        if r.take(6)?.iter().any(|&b| b != 0) {
            return Err("handshake reserved bytes are not zero");
        }
        let mariadb_caps = u64::from(r.u32_le()?);
        let mut capabilities = caps_low | caps_high << 16;
        if capabilities & capability::LONG_PASSWORD == 0 {
            capabilities |= mariadb_caps << 32;
        } else if mariadb_caps != 0 {
            return Err("handshake reserved bytes are not zero");
        }
        let mut data = BytesMut::from(&part1[..]);
        if capabilities & capability::SECURE_CONNECTION != 0 {
            let len = usize::from(auth_plugin_data_len).saturating_sub(8).max(13);
            data.put_slice(&r.take(len)?);
        }
        let auth_plugin_name = if capabilities & capability::PLUGIN_AUTH != 0 {
            Some(r.cstr()?)
        } else {
            None
        };
        Ok(Self {
            server_version,
            connection_id,
            auth_plugin_data: data.freeze(),
            capabilities,
            charset,
            status,
            auth_plugin_data_len,
            auth_plugin_name,
        })
    }

    fn encode(&self, dst: &mut BytesMut) {
        let (part1, part2) = self
            .auth_plugin_data
            .split_at(self.auth_plugin_data.len().min(8));
        dst.put_u8(header::HANDSHAKE_V10);
        dst.put_slice(&self.server_version);
        dst.put_u8(0);
        dst.put_u32_le(self.connection_id);
        dst.put_slice(part1);
        dst.put_bytes(0, 8 - part1.len());
        dst.put_u8(0);
        dst.put_u16_le(self.capabilities as u16);
        dst.put_u8(self.charset);
        dst.put_u16_le(self.status);
        dst.put_u16_le((self.capabilities >> 16) as u16);
        dst.put_u8(self.auth_plugin_data_len);
        dst.put_bytes(0, 6);
        let mariadb_caps = if self.capabilities & capability::LONG_PASSWORD == 0 {
            (self.capabilities >> 32) as u32
        } else {
            0
        };
        dst.put_u32_le(mariadb_caps);
        if self.capabilities & capability::SECURE_CONNECTION != 0 {
            dst.put_slice(part2);
        }
        if let Some(name) = &self.auth_plugin_name {
            dst.put_slice(name);
            dst.put_u8(0);
        }
    }
}

/// OK packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OkPacket {
    /// `0x00`, or `0xFE` when it ends a result set under CLIENT_DEPRECATE_EOF.
    pub header: u8,
    /// Rows affected by the statement.
    pub affected_rows: u64,
    /// The last AUTO_INCREMENT value.
    pub last_insert_id: u64,
    /// Server status flags.
    pub status: u16,
    /// Warning count.
    pub warnings: u16,
    /// Human-readable info and session-state changes, as sent.
    pub info: Bytes,
}

impl OkPacket {
    /// A plain OK, as a proxy sends after handling a command itself.
    pub fn new(affected_rows: u64, status: u16) -> Self {
        Self {
            header: header::OK,
            affected_rows,
            last_insert_id: 0,
            status,
            warnings: 0,
            info: Bytes::new(),
        }
    }

    pub(crate) fn parse(r: &mut Reader) -> Result<Self, ReadError> {
        let ok_header = r.u8()?;
        if ok_header != header::OK && ok_header != header::EOF {
            return Err("expected an OK packet");
        }
        Ok(Self {
            header: ok_header,
            affected_rows: lenenc_int(r)?,
            last_insert_id: lenenc_int(r)?,
            status: r.u16_le()?,
            warnings: r.u16_le()?,
            info: r.rest(),
        })
    }

    fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(self.header);
        put_lenenc_int(dst, self.affected_rows);
        put_lenenc_int(dst, self.last_insert_id);
        dst.put_u16_le(self.status);
        dst.put_u16_le(self.warnings);
        dst.put_slice(&self.info);
    }
}

/// ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrPacket {
    /// The error number, e.g. 1045 (access denied), 1142 (command denied).
    pub code: u16,
    /// The SQLSTATE, when sent (`#` marker and five characters).
    pub sql_state: Option<[u8; 5]>,
    /// The message.
    pub message: Bytes,
}

impl ErrPacket {
    /// An error with a SQLSTATE, as hoop sends for its own refusals.
    pub fn new(code: u16, sql_state: &[u8; 5], message: &str) -> Self {
        Self {
            code,
            sql_state: Some(*sql_state),
            message: Bytes::copy_from_slice(message.as_bytes()),
        }
    }

    pub(crate) fn parse(r: &mut Reader) -> Result<Self, ReadError> {
        r.u8()?;
        let code = r.u16_le()?;
        let sql_state = if r.peek() == Some(b'#') {
            r.u8()?;
            let mut state = [0; 5];
            state.copy_from_slice(&r.take(5)?);
            Some(state)
        } else {
            None
        };
        Ok(Self {
            code,
            sql_state,
            message: r.rest(),
        })
    }

    fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(header::ERR);
        dst.put_u16_le(self.code);
        if let Some(state) = &self.sql_state {
            dst.put_u8(b'#');
            dst.put_slice(state);
        }
        dst.put_slice(&self.message);
    }
}

/// EOF packet (protocol 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EofPacket {
    /// Warning count.
    pub warnings: u16,
    /// Server status flags.
    pub status: u16,
}

/// AuthSwitchRequest: authenticate again with another plugin.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthSwitchRequest {
    /// The plugin name.
    pub plugin: Bytes,
    /// The plugin's challenge data, as sent (often NUL-terminated).
    pub data: Bytes,
}

impl std::fmt::Debug for AuthSwitchRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSwitchRequest")
            .field("plugin", &self.plugin)
            .finish_non_exhaustive()
    }
}

/// AuthMoreData: plugin-specific data (caching_sha2_password's fast-auth
/// result, a public key, ...).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthMoreData {
    /// The data after the `0x01` header.
    pub data: Bytes,
}

impl std::fmt::Debug for AuthMoreData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthMoreData")
            .field("len", &self.data.len())
            .finish()
    }
}

/// The column count that starts a result set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnCount {
    /// Number of columns.
    pub count: u64,
    /// Whether column definitions follow (0/1), when optional metadata or
    /// MariaDB's metadata cache was negotiated.
    pub metadata_follows: Option<u8>,
}

/// ColumnDefinition41.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDefinition {
    /// Always `def`.
    pub catalog: Bytes,
    /// Database.
    pub schema: Bytes,
    /// Table alias.
    pub table: Bytes,
    /// Table name.
    pub org_table: Bytes,
    /// Column alias.
    pub name: Bytes,
    /// Column name.
    pub org_name: Bytes,
    /// MariaDB extended type information, when negotiated.
    pub extended_metadata: Option<Bytes>,
    /// Collation id.
    pub charset: u16,
    /// Maximum display length.
    pub column_length: u32,
    /// A [`column_type`](super::column_type) value.
    pub column_type: u8,
    /// Column flags (NOT NULL, BINARY, UNSIGNED, ...).
    pub flags: u16,
    /// Decimal digits.
    pub decimals: u8,
    /// The two reserved bytes, as sent.
    pub reserved: u16,
    /// COM_FIELD_LIST's default values, as sent.
    pub default_values: Option<Bytes>,
}

/// The length of a ColumnDefinition41's fixed-length fields.
const COLUMN_FIXED_FIELDS_LEN: u64 = 0x0c;

impl ColumnDefinition {
    pub(crate) fn parse(r: &mut Reader, capabilities: u64) -> Result<Self, ReadError> {
        let catalog = lenenc_str(r)?;
        let schema = lenenc_str(r)?;
        let table = lenenc_str(r)?;
        let org_table = lenenc_str(r)?;
        let name = lenenc_str(r)?;
        let org_name = lenenc_str(r)?;
        let extended_metadata = if capabilities & capability::MARIADB_EXTENDED_METADATA != 0 {
            Some(lenenc_str(r)?)
        } else {
            None
        };
        if lenenc_int(r)? != COLUMN_FIXED_FIELDS_LEN {
            return Err("unexpected length of fixed column fields");
        }
        let definition = Self {
            catalog,
            schema,
            table,
            org_table,
            name,
            org_name,
            extended_metadata,
            charset: r.u16_le()?,
            column_length: r.u32_le()?,
            column_type: r.u8()?,
            flags: r.u16_le()?,
            decimals: r.u8()?,
            reserved: r.u16_le()?,
            default_values: (r.left() > 0).then(|| r.rest()),
        };
        Ok(definition)
    }

    fn encode(&self, dst: &mut BytesMut) {
        for s in [
            &self.catalog,
            &self.schema,
            &self.table,
            &self.org_table,
            &self.name,
            &self.org_name,
        ] {
            put_lenenc_str(dst, s);
        }
        if let Some(extended) = &self.extended_metadata {
            put_lenenc_str(dst, extended);
        }
        put_lenenc_int(dst, COLUMN_FIXED_FIELDS_LEN);
        dst.put_u16_le(self.charset);
        dst.put_u32_le(self.column_length);
        dst.put_u8(self.column_type);
        dst.put_u16_le(self.flags);
        dst.put_u8(self.decimals);
        dst.put_u16_le(self.reserved);
        if let Some(defaults) = &self.default_values {
            dst.put_slice(defaults);
        }
    }
}

/// A text-protocol row: each cell a length-encoded string or `0xFB` (NULL).
/// Validated on decode; cells are views into the payload.
#[derive(Clone, PartialEq, Eq)]
pub struct TextRow {
    payload: Bytes,
    len: usize,
}

impl std::fmt::Debug for TextRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextRow")
            .field("cells", &self.len)
            .field("bytes", &self.payload.len())
            .finish()
    }
}

impl TextRow {
    pub(crate) fn parse(payload: Bytes, columns: usize) -> Result<Self, ReadError> {
        let mut r = Reader::new(payload.clone());
        for _ in 0..columns {
            skip_nullable_lenenc_str(&mut r)?;
        }
        r.finish()?;
        Ok(Self {
            payload,
            len: columns,
        })
    }

    /// Builds a row from cell values; `None` is NULL.
    pub fn from_cells<'a>(cells: impl IntoIterator<Item = Option<&'a [u8]>>) -> Self {
        let mut payload = BytesMut::new();
        let mut len = 0;
        for cell in cells {
            match cell {
                None => payload.put_u8(NULL_MARKER),
                Some(value) => put_lenenc_str(&mut payload, value),
            }
            len += 1;
        }
        Self {
            payload: payload.freeze(),
            len,
        }
    }

    /// The number of cells.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a row of no cells.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The cells in order; `None` is NULL.
    pub fn cells(&self) -> impl Iterator<Item = Option<Bytes>> + '_ {
        let mut r = Reader::new(self.payload.clone());
        // Validated at parse time: reads cannot fail.
        (0..self.len).map_while(move |_| nullable_lenenc_str(&mut r).ok())
    }
}

/// A binary-protocol row: `0x00`, a NULL bitmap (offset 2), then each non-NULL
/// value in its type's layout. Validated on decode against the column types.
#[derive(Clone, PartialEq, Eq)]
pub struct BinaryRow {
    payload: Bytes,
    types: Arc<[u8]>,
}

impl std::fmt::Debug for BinaryRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinaryRow")
            .field("cells", &self.types.len())
            .field("bytes", &self.payload.len())
            .finish()
    }
}

/// Bytes of a binary row's NULL bitmap for `columns` columns (offset 2).
fn row_bitmap_len(columns: usize) -> usize {
    (columns + 7 + 2) / 8
}

fn is_null(bitmap: &[u8], column: usize) -> bool {
    let bit = column + 2;
    bitmap
        .get(bit / 8)
        .is_some_and(|byte| byte & (1 << (bit % 8)) != 0)
}

impl BinaryRow {
    pub(crate) fn parse(payload: Bytes, types: Arc<[u8]>) -> Result<Self, ReadError> {
        let mut r = Reader::new(payload.clone());
        if r.u8()? != header::OK {
            return Err("binary row does not start with 0x00");
        }
        let bitmap = r.take(row_bitmap_len(types.len()))?;
        if bitmap.first().is_some_and(|b| b & 0b11 != 0) {
            return Err("reserved NULL bitmap bits set");
        }
        for (column, &column_type) in types.iter().enumerate() {
            if !is_null(&bitmap, column) {
                skip_binary_value(&mut r, column_type)?;
            }
        }
        r.finish()?;
        Ok(Self { payload, types })
    }

    /// Builds a row of the given column types; `None` is NULL.
    ///
    /// # Panics
    ///
    /// If the number of cells differs from the number of types, or a
    /// fixed-size cell has the wrong size for its type (caller misuse).
    pub fn from_cells<'a>(
        types: Arc<[u8]>,
        cells: impl IntoIterator<Item = Option<&'a [u8]>>,
    ) -> Self {
        let cells: Vec<_> = cells.into_iter().collect();
        assert_eq!(cells.len(), types.len(), "one cell per column");
        let mut payload = BytesMut::new();
        payload.put_u8(header::OK);
        let mut bitmap = vec![0u8; row_bitmap_len(types.len())];
        for (column, cell) in cells.iter().enumerate() {
            if cell.is_none() {
                let bit = column + 2;
                bitmap[bit / 8] |= 1 << (bit % 8);
            }
        }
        payload.put_slice(&bitmap);
        for (cell, &column_type) in cells.iter().zip(types.iter()) {
            if let Some(value) = cell {
                if let super::value::BinaryLayout::Fixed(n) =
                    super::value::binary_layout(column_type)
                {
                    assert_eq!(value.len(), n, "fixed-size binary value of the wrong size");
                }
                put_binary_value(&mut payload, column_type, value);
            }
        }
        Self {
            payload: payload.freeze(),
            types,
        }
    }

    /// The column types the row was read with.
    pub fn types(&self) -> &[u8] {
        &self.types
    }

    /// The number of cells.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// True for a row of no cells.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// The cells in order; `None` is NULL. Values are in the binary
    /// protocol's layout for their type, without length prefixes.
    pub fn cells(&self) -> impl Iterator<Item = Option<Bytes>> + '_ {
        let mut r = Reader::new(self.payload.clone());
        let _ = r.u8();
        let bitmap = r.take(row_bitmap_len(self.types.len())).unwrap_or_default();
        self.types
            .iter()
            .enumerate()
            .map(move |(column, &column_type)| {
                if is_null(&bitmap, column) {
                    None
                } else {
                    // Validated at parse time: reads cannot fail.
                    binary_value(&mut r, column_type).ok()
                }
            })
    }
}

/// LOAD DATA LOCAL INFILE request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalInfileRequest {
    /// The file the server asks for.
    pub filename: Bytes,
}

/// COM_STMT_PREPARE_OK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StmtPrepareOk {
    /// The new statement's id.
    pub statement_id: u32,
    /// Columns of its result set.
    pub num_columns: u16,
    /// Its parameters.
    pub num_params: u16,
    /// Warning count (absent in very short packets from old servers).
    pub warnings: Option<u16>,
    /// Whether metadata follows (optional-metadata servers).
    pub metadata_follows: Option<u8>,
}

impl StmtPrepareOk {
    pub(crate) fn parse(r: &mut Reader) -> Result<Self, ReadError> {
        if r.u8()? != header::OK {
            return Err("expected COM_STMT_PREPARE_OK");
        }
        let statement_id = r.u32_le()?;
        let num_columns = r.u16_le()?;
        let num_params = r.u16_le()?;
        if r.u8()? != 0 {
            return Err("COM_STMT_PREPARE_OK filler is not zero");
        }
        let warnings = if r.left() > 0 {
            Some(r.u16_le()?)
        } else {
            None
        };
        let metadata_follows = if r.left() > 0 { Some(r.u8()?) } else { None };
        Ok(Self {
            statement_id,
            num_columns,
            num_params,
            warnings,
            metadata_follows,
        })
    }
}
