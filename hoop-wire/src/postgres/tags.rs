//! Message type bytes, named as in the PostgreSQL documentation's "Message
//! Formats" chapter.

/// Type bytes of messages a client sends.
pub(crate) mod frontend {
    pub(crate) const BIND: u8 = b'B';
    pub(crate) const CLOSE: u8 = b'C';
    pub(crate) const COPY_DATA: u8 = b'd';
    pub(crate) const COPY_DONE: u8 = b'c';
    pub(crate) const COPY_FAIL: u8 = b'f';
    pub(crate) const DESCRIBE: u8 = b'D';
    pub(crate) const EXECUTE: u8 = b'E';
    pub(crate) const FLUSH: u8 = b'H';
    pub(crate) const FUNCTION_CALL: u8 = b'F';
    /// PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse
    /// share this byte; which one it is depends on what the server asked.
    pub(crate) const PASSWORD: u8 = b'p';
    pub(crate) const PARSE: u8 = b'P';
    pub(crate) const QUERY: u8 = b'Q';
    pub(crate) const SYNC: u8 = b'S';
    pub(crate) const TERMINATE: u8 = b'X';

    /// The documented name of a frontend message type, `None` if unknown.
    pub(crate) fn name(tag: u8) -> Option<&'static str> {
        Some(match tag {
            BIND => "Bind",
            CLOSE => "Close",
            COPY_DATA => "CopyData",
            COPY_DONE => "CopyDone",
            COPY_FAIL => "CopyFail",
            DESCRIBE => "Describe",
            EXECUTE => "Execute",
            FLUSH => "Flush",
            FUNCTION_CALL => "FunctionCall",
            PASSWORD => "PasswordMessage",
            PARSE => "Parse",
            QUERY => "Query",
            SYNC => "Sync",
            TERMINATE => "Terminate",
            _ => return None,
        })
    }
}

/// Type bytes of messages a server sends.
pub(crate) mod backend {
    pub(crate) const AUTHENTICATION: u8 = b'R';
    pub(crate) const BACKEND_KEY_DATA: u8 = b'K';
    pub(crate) const BIND_COMPLETE: u8 = b'2';
    pub(crate) const CLOSE_COMPLETE: u8 = b'3';
    pub(crate) const COMMAND_COMPLETE: u8 = b'C';
    pub(crate) const COPY_DATA: u8 = b'd';
    pub(crate) const COPY_DONE: u8 = b'c';
    pub(crate) const COPY_IN_RESPONSE: u8 = b'G';
    pub(crate) const COPY_OUT_RESPONSE: u8 = b'H';
    pub(crate) const COPY_BOTH_RESPONSE: u8 = b'W';
    pub(crate) const DATA_ROW: u8 = b'D';
    pub(crate) const EMPTY_QUERY_RESPONSE: u8 = b'I';
    pub(crate) const ERROR_RESPONSE: u8 = b'E';
    pub(crate) const FUNCTION_CALL_RESPONSE: u8 = b'V';
    pub(crate) const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
    pub(crate) const NO_DATA: u8 = b'n';
    pub(crate) const NOTICE_RESPONSE: u8 = b'N';
    pub(crate) const NOTIFICATION_RESPONSE: u8 = b'A';
    pub(crate) const PARAMETER_DESCRIPTION: u8 = b't';
    pub(crate) const PARAMETER_STATUS: u8 = b'S';
    pub(crate) const PARSE_COMPLETE: u8 = b'1';
    pub(crate) const PORTAL_SUSPENDED: u8 = b's';
    pub(crate) const READY_FOR_QUERY: u8 = b'Z';
    pub(crate) const ROW_DESCRIPTION: u8 = b'T';

    /// The documented name of a backend message type, `None` if unknown.
    pub(crate) fn name(tag: u8) -> Option<&'static str> {
        Some(match tag {
            AUTHENTICATION => "Authentication",
            BACKEND_KEY_DATA => "BackendKeyData",
            BIND_COMPLETE => "BindComplete",
            CLOSE_COMPLETE => "CloseComplete",
            COMMAND_COMPLETE => "CommandComplete",
            COPY_DATA => "CopyData",
            COPY_DONE => "CopyDone",
            COPY_IN_RESPONSE => "CopyInResponse",
            COPY_OUT_RESPONSE => "CopyOutResponse",
            COPY_BOTH_RESPONSE => "CopyBothResponse",
            DATA_ROW => "DataRow",
            EMPTY_QUERY_RESPONSE => "EmptyQueryResponse",
            ERROR_RESPONSE => "ErrorResponse",
            FUNCTION_CALL_RESPONSE => "FunctionCallResponse",
            NEGOTIATE_PROTOCOL_VERSION => "NegotiateProtocolVersion",
            NO_DATA => "NoData",
            NOTICE_RESPONSE => "NoticeResponse",
            NOTIFICATION_RESPONSE => "NotificationResponse",
            PARAMETER_DESCRIPTION => "ParameterDescription",
            PARAMETER_STATUS => "ParameterStatus",
            PARSE_COMPLETE => "ParseComplete",
            PORTAL_SUSPENDED => "PortalSuspended",
            READY_FOR_QUERY => "ReadyForQuery",
            ROW_DESCRIPTION => "RowDescription",
            _ => return None,
        })
    }
}

/// Request codes of untagged startup-phase messages (the Int32 after the
/// length).
pub(crate) mod startup {
    /// `1234 << 16 | 5679`.
    pub(crate) const SSL_REQUEST: u32 = 80_877_103;
    /// `1234 << 16 | 5680`.
    pub(crate) const GSSENC_REQUEST: u32 = 80_877_104;
    /// `1234 << 16 | 5678`.
    pub(crate) const CANCEL_REQUEST: u32 = 80_877_102;
    /// Protocol major version 3 in the high 16 bits of a StartupMessage.
    pub(crate) const PROTOCOL_MAJOR_3: u32 = 3;
}

/// The subtype codes of Authentication ('R') messages.
pub(crate) mod auth {
    pub(crate) const OK: u32 = 0;
    pub(crate) const KERBEROS_V5: u32 = 2;
    pub(crate) const CLEARTEXT_PASSWORD: u32 = 3;
    pub(crate) const MD5_PASSWORD: u32 = 5;
    pub(crate) const GSS: u32 = 7;
    pub(crate) const GSS_CONTINUE: u32 = 8;
    pub(crate) const SSPI: u32 = 9;
    pub(crate) const SASL: u32 = 10;
    pub(crate) const SASL_CONTINUE: u32 = 11;
    pub(crate) const SASL_FINAL: u32 = 12;
}
