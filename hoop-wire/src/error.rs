//! The one error type every decoder returns.

/// Why a byte stream could not be decoded.
///
/// Every variant carries the absolute offset, in the decoded stream, of the
/// first byte of the message that failed, so a person can find it in a capture.
/// After an error the stream is no longer trusted: decoders keep returning the
/// same error (errors are sticky), because resynchronising on hostile input is
/// how filters get bypassed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A message declares a length above the configured limit.
    #[error("{message} at offset {offset} declares {len} bytes, over the limit of {limit}")]
    TooLarge {
        /// Offset of the message start.
        offset: u64,
        /// Which message (or "message" when the type is unknown yet).
        message: &'static str,
        /// The declared length.
        len: u64,
        /// The limit in force.
        limit: u64,
    },
    /// A length field below the smallest valid value (it must count itself).
    #[error("invalid length {len} at offset {offset}")]
    InvalidLength {
        /// Offset of the message start.
        offset: u64,
        /// The declared length.
        len: u64,
    },
    /// A message type this protocol does not define.
    #[error("unknown message type {tag:#04x} at offset {offset}")]
    UnknownMessage {
        /// Offset of the message start.
        offset: u64,
        /// The type byte.
        tag: u8,
    },
    /// A message whose body does not follow its format.
    #[error("malformed {message} at offset {offset}: {reason}")]
    Malformed {
        /// Offset of the message start.
        offset: u64,
        /// The message's name as in the protocol's documentation.
        message: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// The stream uses a feature that takes it out of sight (wire
    /// compression, a replication stream); like [`Self::Encrypted`] a caller
    /// must refuse it rather than forward what it cannot inspect.
    #[error("{message} at offset {offset} is out of sight: {reason}")]
    Unsupported {
        /// Offset where the unsupported traffic starts.
        offset: u64,
        /// The message that switched to it.
        message: &'static str,
        /// What the feature is.
        reason: &'static str,
    },
    /// The stream switched to TLS or GSS encryption and is out of sight.
    ///
    /// Distinct from a skip on purpose: a caller that expected plaintext must
    /// refuse the stream rather than forward bytes it cannot inspect.
    #[error("stream is encrypted from offset {offset}; terminate TLS before decoding")]
    Encrypted {
        /// Offset where the encrypted bytes start.
        offset: u64,
    },
}

impl DecodeError {
    /// Absolute offset in the stream of the message that failed.
    pub fn offset(&self) -> u64 {
        match *self {
            Self::TooLarge { offset, .. }
            | Self::InvalidLength { offset, .. }
            | Self::UnknownMessage { offset, .. }
            | Self::Malformed { offset, .. }
            | Self::Unsupported { offset, .. }
            | Self::Encrypted { offset } => offset,
        }
    }
}
