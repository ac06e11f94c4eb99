//! Message type bytes and request codes, named as in the PostgreSQL
//! documentation's "Message Formats" chapter.
//!
//! Public so a relay that works at the frame level (see
//! [`Frame::tag`](super::Frame::tag)) names tags the same way the codec does.

/// Type bytes of messages a client sends.
pub mod frontend {
    /// Bind.
    pub const BIND: u8 = b'B';
    /// Close.
    pub const CLOSE: u8 = b'C';
    /// CopyData.
    pub const COPY_DATA: u8 = b'd';
    /// CopyDone.
    pub const COPY_DONE: u8 = b'c';
    /// CopyFail.
    pub const COPY_FAIL: u8 = b'f';
    /// Describe.
    pub const DESCRIBE: u8 = b'D';
    /// Execute.
    pub const EXECUTE: u8 = b'E';
    /// Flush.
    pub const FLUSH: u8 = b'H';
    /// FunctionCall.
    pub const FUNCTION_CALL: u8 = b'F';
    /// PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse
    /// share this byte; which one it is depends on what the server asked.
    pub const PASSWORD: u8 = b'p';
    /// Parse.
    pub const PARSE: u8 = b'P';
    /// Query.
    pub const QUERY: u8 = b'Q';
    /// Sync.
    pub const SYNC: u8 = b'S';
    /// Terminate.
    pub const TERMINATE: u8 = b'X';

    /// The documented name of a frontend message type, `None` if unknown.
    pub fn name(tag: u8) -> Option<&'static str> {
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
pub mod backend {
    /// Authentication.
    pub const AUTHENTICATION: u8 = b'R';
    /// BackendKeyData.
    pub const BACKEND_KEY_DATA: u8 = b'K';
    /// BindComplete.
    pub const BIND_COMPLETE: u8 = b'2';
    /// CloseComplete.
    pub const CLOSE_COMPLETE: u8 = b'3';
    /// CommandComplete.
    pub const COMMAND_COMPLETE: u8 = b'C';
    /// CopyData.
    pub const COPY_DATA: u8 = b'd';
    /// CopyDone.
    pub const COPY_DONE: u8 = b'c';
    /// CopyInResponse.
    pub const COPY_IN_RESPONSE: u8 = b'G';
    /// CopyOutResponse.
    pub const COPY_OUT_RESPONSE: u8 = b'H';
    /// CopyBothResponse.
    pub const COPY_BOTH_RESPONSE: u8 = b'W';
    /// DataRow.
    pub const DATA_ROW: u8 = b'D';
    /// EmptyQueryResponse.
    pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
    /// ErrorResponse.
    pub const ERROR_RESPONSE: u8 = b'E';
    /// FunctionCallResponse.
    pub const FUNCTION_CALL_RESPONSE: u8 = b'V';
    /// NegotiateProtocolVersion.
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
    /// NoData.
    pub const NO_DATA: u8 = b'n';
    /// NoticeResponse.
    pub const NOTICE_RESPONSE: u8 = b'N';
    /// NotificationResponse.
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    /// ParameterDescription.
    pub const PARAMETER_DESCRIPTION: u8 = b't';
    /// ParameterStatus.
    pub const PARAMETER_STATUS: u8 = b'S';
    /// ParseComplete.
    pub const PARSE_COMPLETE: u8 = b'1';
    /// PortalSuspended.
    pub const PORTAL_SUSPENDED: u8 = b's';
    /// ReadyForQuery.
    pub const READY_FOR_QUERY: u8 = b'Z';
    /// RowDescription.
    pub const ROW_DESCRIPTION: u8 = b'T';

    /// The documented name of a backend message type, `None` if unknown.
    pub fn name(tag: u8) -> Option<&'static str> {
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
pub mod startup {
    /// `1234 << 16 | 5679`.
    pub const SSL_REQUEST: u32 = 80_877_103;
    /// `1234 << 16 | 5680`.
    pub const GSSENC_REQUEST: u32 = 80_877_104;
    /// `1234 << 16 | 5678`.
    pub const CANCEL_REQUEST: u32 = 80_877_102;
    /// Protocol major version 3 in the high 16 bits of a StartupMessage.
    pub const PROTOCOL_MAJOR_3: u32 = 3;
}

/// The subtype codes of Authentication ('R') messages.
pub mod auth {
    /// AuthenticationOk.
    pub const OK: u32 = 0;
    /// AuthenticationKerberosV5.
    pub const KERBEROS_V5: u32 = 2;
    /// AuthenticationCleartextPassword.
    pub const CLEARTEXT_PASSWORD: u32 = 3;
    /// AuthenticationMD5Password.
    pub const MD5_PASSWORD: u32 = 5;
    /// AuthenticationGSS.
    pub const GSS: u32 = 7;
    /// AuthenticationGSSContinue.
    pub const GSS_CONTINUE: u32 = 8;
    /// AuthenticationSSPI.
    pub const SSPI: u32 = 9;
    /// AuthenticationSASL.
    pub const SASL: u32 = 10;
    /// AuthenticationSASLContinue.
    pub const SASL_CONTINUE: u32 = 11;
    /// AuthenticationSASLFinal.
    pub const SASL_FINAL: u32 = 12;
}
