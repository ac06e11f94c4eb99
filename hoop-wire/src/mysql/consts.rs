//! Named protocol constants: capability flags, command bytes, packet headers,
//! column types and status flags, as in the MySQL and MariaDB documentation.

/// Capability flags (`CLIENT_*`). The low 32 bits are MySQL's; MariaDB's
/// extended capabilities occupy bits 32..64 (sent in otherwise reserved bytes).
pub mod capability {
    /// MySQL's "long password"; MariaDB servers clear it to announce extended
    /// capabilities in the handshake's reserved bytes.
    pub const LONG_PASSWORD: u64 = 1;
    /// The client may name a database in the handshake response.
    pub const CONNECT_WITH_DB: u64 = 1 << 3;
    /// Packets are zlib-compressed after authentication.
    pub const COMPRESS: u64 = 1 << 5;
    /// LOAD DATA LOCAL INFILE is allowed.
    pub const LOCAL_FILES: u64 = 1 << 7;
    /// The 4.1 protocol (mandatory in practice).
    pub const PROTOCOL_41: u64 = 1 << 9;
    /// The client wants TLS (an SSLRequest precedes the handshake response).
    pub const SSL: u64 = 1 << 11;
    /// Native 4.1 authentication (length-prefixed auth response).
    pub const SECURE_CONNECTION: u64 = 1 << 15;
    /// Several statements per COM_QUERY.
    pub const MULTI_STATEMENTS: u64 = 1 << 16;
    /// Several result sets per command.
    pub const MULTI_RESULTS: u64 = 1 << 17;
    /// Authentication plugins are named.
    pub const PLUGIN_AUTH: u64 = 1 << 19;
    /// Connection attributes follow the handshake response.
    pub const CONNECT_ATTRS: u64 = 1 << 20;
    /// The auth response is length-encoded.
    pub const PLUGIN_AUTH_LENENC_CLIENT_DATA: u64 = 1 << 21;
    /// OK packets carry session state changes.
    pub const SESSION_TRACK: u64 = 1 << 23;
    /// Result sets end with an OK packet instead of EOF packets.
    pub const DEPRECATE_EOF: u64 = 1 << 24;
    /// Column count packets say whether column definitions follow (MySQL).
    pub const OPTIONAL_RESULTSET_METADATA: u64 = 1 << 25;
    /// COM_QUERY and COM_STMT_EXECUTE carry query attributes (MySQL 8.0.23+).
    pub const QUERY_ATTRIBUTES: u64 = 1 << 27;
    /// MariaDB: column definitions carry extended type information.
    pub const MARIADB_EXTENDED_METADATA: u64 = 1 << 35;
    /// MariaDB: COM_STMT_EXECUTE may skip unchanged column definitions.
    pub const MARIADB_CACHE_METADATA: u64 = 1 << 36;
}

/// Command bytes (`COM_*`), the first byte of a client command packet.
pub mod command {
    /// COM_QUIT.
    pub const QUIT: u8 = 0x01;
    /// COM_INIT_DB.
    pub const INIT_DB: u8 = 0x02;
    /// COM_QUERY.
    pub const QUERY: u8 = 0x03;
    /// COM_FIELD_LIST.
    pub const FIELD_LIST: u8 = 0x04;
    /// COM_CREATE_DB.
    pub const CREATE_DB: u8 = 0x05;
    /// COM_DROP_DB.
    pub const DROP_DB: u8 = 0x06;
    /// COM_REFRESH.
    pub const REFRESH: u8 = 0x07;
    /// COM_SHUTDOWN.
    pub const SHUTDOWN: u8 = 0x08;
    /// COM_STATISTICS.
    pub const STATISTICS: u8 = 0x09;
    /// COM_PROCESS_INFO.
    pub const PROCESS_INFO: u8 = 0x0a;
    /// COM_PROCESS_KILL.
    pub const PROCESS_KILL: u8 = 0x0c;
    /// COM_DEBUG.
    pub const DEBUG: u8 = 0x0d;
    /// COM_PING.
    pub const PING: u8 = 0x0e;
    /// COM_CHANGE_USER.
    pub const CHANGE_USER: u8 = 0x11;
    /// COM_BINLOG_DUMP.
    pub const BINLOG_DUMP: u8 = 0x12;
    /// COM_REGISTER_SLAVE.
    pub const REGISTER_SLAVE: u8 = 0x15;
    /// COM_STMT_PREPARE.
    pub const STMT_PREPARE: u8 = 0x16;
    /// COM_STMT_EXECUTE.
    pub const STMT_EXECUTE: u8 = 0x17;
    /// COM_STMT_SEND_LONG_DATA.
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    /// COM_STMT_CLOSE.
    pub const STMT_CLOSE: u8 = 0x19;
    /// COM_STMT_RESET.
    pub const STMT_RESET: u8 = 0x1a;
    /// COM_SET_OPTION.
    pub const SET_OPTION: u8 = 0x1b;
    /// COM_STMT_FETCH.
    pub const STMT_FETCH: u8 = 0x1c;
    /// COM_BINLOG_DUMP_GTID.
    pub const BINLOG_DUMP_GTID: u8 = 0x1e;
    /// COM_RESET_CONNECTION.
    pub const RESET_CONNECTION: u8 = 0x1f;
    /// MariaDB's COM_STMT_BULK_EXECUTE.
    pub const STMT_BULK_EXECUTE: u8 = 0xfa;
}

/// First bytes that classify server packets.
pub(crate) mod header {
    pub(crate) const OK: u8 = 0x00;
    pub(crate) const AUTH_MORE_DATA: u8 = 0x01;
    pub(crate) const LOCAL_INFILE: u8 = 0xfb;
    /// EOF, and AuthSwitchRequest during authentication; also an OK packet
    /// ending a result set under CLIENT_DEPRECATE_EOF.
    pub(crate) const EOF: u8 = 0xfe;
    pub(crate) const ERR: u8 = 0xff;
    /// HandshakeV10's protocol version byte.
    pub(crate) const HANDSHAKE_V10: u8 = 0x0a;
}

/// Server status flags (`SERVER_*`) in OK and EOF packets.
pub mod status {
    /// More result sets follow this one.
    pub const MORE_RESULTS_EXISTS: u16 = 0x0008;
    /// A cursor is open for the statement (rows come with COM_STMT_FETCH).
    pub const CURSOR_EXISTS: u16 = 0x0040;
}

/// Column types (`MYSQL_TYPE_*`), which decide binary value layouts.
pub mod column_type {
    /// DECIMAL.
    pub const DECIMAL: u8 = 0x00;
    /// TINYINT.
    pub const TINY: u8 = 0x01;
    /// SMALLINT.
    pub const SHORT: u8 = 0x02;
    /// INT.
    pub const LONG: u8 = 0x03;
    /// FLOAT.
    pub const FLOAT: u8 = 0x04;
    /// DOUBLE.
    pub const DOUBLE: u8 = 0x05;
    /// NULL.
    pub const NULL: u8 = 0x06;
    /// TIMESTAMP.
    pub const TIMESTAMP: u8 = 0x07;
    /// BIGINT.
    pub const LONGLONG: u8 = 0x08;
    /// MEDIUMINT.
    pub const INT24: u8 = 0x09;
    /// DATE.
    pub const DATE: u8 = 0x0a;
    /// TIME.
    pub const TIME: u8 = 0x0b;
    /// DATETIME.
    pub const DATETIME: u8 = 0x0c;
    /// YEAR.
    pub const YEAR: u8 = 0x0d;
    /// NEWDATE (internal).
    pub const NEWDATE: u8 = 0x0e;
    /// VARCHAR.
    pub const VARCHAR: u8 = 0x0f;
    /// BIT.
    pub const BIT: u8 = 0x10;
    /// TIMESTAMP2 (internal).
    pub const TIMESTAMP2: u8 = 0x11;
    /// DATETIME2 (internal).
    pub const DATETIME2: u8 = 0x12;
    /// TIME2 (internal).
    pub const TIME2: u8 = 0x13;
    /// JSON.
    pub const JSON: u8 = 0xf5;
    /// DECIMAL (new).
    pub const NEWDECIMAL: u8 = 0xf6;
    /// ENUM.
    pub const ENUM: u8 = 0xf7;
    /// SET.
    pub const SET: u8 = 0xf8;
    /// TINYBLOB.
    pub const TINY_BLOB: u8 = 0xf9;
    /// MEDIUMBLOB.
    pub const MEDIUM_BLOB: u8 = 0xfa;
    /// LONGBLOB.
    pub const LONG_BLOB: u8 = 0xfb;
    /// BLOB.
    pub const BLOB: u8 = 0xfc;
    /// VARCHAR (VAR_STRING).
    pub const VAR_STRING: u8 = 0xfd;
    /// CHAR (STRING).
    pub const STRING: u8 = 0xfe;
    /// GEOMETRY.
    pub const GEOMETRY: u8 = 0xff;
}
