//! Fuzzes the PostgreSQL decoders, client and server direction.
//!
//! Input layout (the seeds from `fuzz/seed_postgres.py` follow it):
//!
//! ```text
//! byte 0     bit 0: 0 = client bytes (FrontendDecoder), 1 = server bytes
//!            (BackendDecoder); bits 1-2: how many SSLRequest/GSSENCRequest
//!            answers the BackendDecoder is told to expect
//! bytes 1-2  split point, little endian, modulo the data length + 1
//! bytes 3..  the stream
//! ```
//!
//! The stream is decoded twice, whole and in two pieces cut at the split
//! point. Invariants:
//! - no panic, and every call makes progress: a frame consumes exactly its
//!   own bytes (at least one), "need more" consumes nothing, an error ends
//!   the stream;
//! - the frames are the stream cut in order, at the offsets they claim;
//! - both feedings give the same frames and the same error;
//! - errors are sticky, even after more bytes arrive, and name the offset of
//!   the message that failed;
//! - every frame that parses re-encodes to exactly its bytes, and the typed
//!   `decode` agrees with `decode_frame` followed by `parse`.
#![no_main]

use bytes::BytesMut;
use hoop_wire::DecodeError;
use hoop_wire::postgres::{
    BackendDecoder, BackendMessage, Frame, FrontendDecoder, FrontendMessage, Limits,
};
use libfuzzer_sys::fuzz_target;

/// Limits small enough that the fuzzer reaches the "too large" paths with
/// short inputs, yet above every message in the seed captures.
fn limits() -> Limits {
    Limits {
        max_message_len: 1 << 16,
        max_startup_len: 10_000,
    }
}

/// Either direction's decoder behind one interface.
enum Decoder {
    Frontend(FrontendDecoder),
    Backend(BackendDecoder),
}

impl Decoder {
    fn new(flags: u8) -> Self {
        if flags & 1 == 0 {
            Self::Frontend(FrontendDecoder::new(limits()))
        } else {
            let mut decoder = BackendDecoder::new(limits());
            for _ in 0..(flags >> 1) & 0b11 {
                decoder.expect_negotiation_response();
            }
            Self::Backend(decoder)
        }
    }

    fn decode_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        match self {
            Self::Frontend(d) => d.decode_frame(buf),
            Self::Backend(d) => d.decode_frame(buf),
        }
    }

    /// The typed decode, re-encoded: the bytes a proxy would forward.
    fn decode_encoded(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, DecodeError> {
        let mut out = BytesMut::new();
        match self {
            Self::Frontend(d) => match d.decode(buf)? {
                Some(message) => message.encode(&mut out),
                None => return Ok(None),
            },
            Self::Backend(d) => match d.decode(buf)? {
                Some(message) => message.encode(&mut out),
                None => return Ok(None),
            },
        }
        Ok(Some(out))
    }

    /// Parses a frame and re-encodes it.
    fn parse_encoded(&self, frame: &Frame) -> Result<BytesMut, DecodeError> {
        let mut out = BytesMut::new();
        match self {
            Self::Frontend(_) => {
                let message = FrontendMessage::parse(frame)?;
                assert!(!message.name().is_empty());
                message.encode(&mut out);
            }
            Self::Backend(_) => {
                let message = BackendMessage::parse(frame)?;
                assert!(!message.name().is_empty());
                message.encode(&mut out);
            }
        }
        Ok(out)
    }
}

/// What framing one stream produced.
#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<Frame>,
    error: Option<DecodeError>,
}

/// Frames `stream` fed in `pieces`, checking progress and stickiness.
fn frame_all(flags: u8, stream: &[u8], pieces: &[&[u8]]) -> Outcome {
    let mut decoder = Decoder::new(flags);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut consumed = 0usize;
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.len();
            match decoder.decode_frame(&mut buf) {
                Ok(Some(frame)) => {
                    let len = frame.bytes.len();
                    assert!(len > 0, "a frame must consume bytes");
                    assert_eq!(
                        before - buf.len(),
                        len,
                        "a frame consumes exactly its bytes"
                    );
                    assert_eq!(frame.offset, consumed as u64, "frame offset");
                    assert_eq!(&frame.bytes[..], &stream[consumed..consumed + len]);
                    consumed += len;
                    frames.push(frame);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "\"need more\" consumes nothing");
                    break;
                }
                Err(error) => {
                    assert_eq!(error.offset(), consumed as u64, "error offset: {error}");
                    assert_eq!(decoder.decode_frame(&mut buf), Err(error), "sticky");
                    buf.extend_from_slice(b"Q\0\0\0\x05\0");
                    assert_eq!(
                        decoder.decode_frame(&mut buf),
                        Err(error),
                        "sticky after more bytes"
                    );
                    return Outcome {
                        frames,
                        error: Some(error),
                    };
                }
            }
        }
    }
    assert_eq!(
        consumed + buf.len(),
        stream.len(),
        "consumed plus left is the input"
    );
    Outcome {
        frames,
        error: None,
    }
}

fuzz_target!(|input: &[u8]| {
    let [flags, split_lo, split_hi, stream @ ..] = input else {
        return;
    };
    let split = usize::from(u16::from_le_bytes([*split_lo, *split_hi])) % (stream.len() + 1);

    let whole = frame_all(*flags, stream, &[stream]);
    let (head, tail) = stream.split_at(split);
    let split = frame_all(*flags, stream, &[head, tail]);
    assert_eq!(whole, split, "a split changed the frames");

    // Parse every frame; the typed decoder must give the same result and
    // stop, stickily, at the first frame that does not parse.
    let parser = Decoder::new(*flags);
    let mut expected = Vec::new();
    let mut parse_error = None;
    for frame in &whole.frames {
        match parser.parse_encoded(frame) {
            Ok(encoded) => {
                assert_eq!(
                    &encoded[..],
                    &frame.bytes[..],
                    "re-encoding changed the bytes"
                );
                expected.push(encoded);
            }
            Err(error) => {
                assert_eq!(error.offset(), frame.offset, "parse error offset: {error}");
                parse_error = Some(error);
                break;
            }
        }
    }
    let expected_error = parse_error.or(whole.error);

    let mut typed = Decoder::new(*flags);
    let mut buf = BytesMut::from(stream);
    let mut decoded = Vec::new();
    let error = loop {
        match typed.decode_encoded(&mut buf) {
            Ok(Some(encoded)) => decoded.push(encoded),
            Ok(None) => break None,
            Err(error) => {
                assert_eq!(
                    typed.decode_encoded(&mut buf),
                    Err(error),
                    "typed decode is sticky"
                );
                break Some(error);
            }
        }
    };
    assert_eq!(
        decoded, expected,
        "decode and decode_frame + parse disagree"
    );
    assert_eq!(
        error, expected_error,
        "decode and decode_frame + parse end differently"
    );
});
