//! MySQL's compressed protocol (CLIENT_COMPRESS, zlib): the frames that
//! carry ordinary packets once both sides agreed on it after the login.
//!
//! ```text
//! Int<3> compressed length | Int<1> compressed sequence id |
//! Int<3> uncompressed length (0: the payload is stored as is) | payload
//! ```
//!
//! A frame's payload inflates to a run of ordinary packet bytes, which may
//! cut a packet anywhere: the caller appends them to the plain stream that
//! [`Session`](super::Session) decodes. Nothing is judged or masked on
//! compressed bytes. See
//! <https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_compression_packet.html>.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::DecodeError;

/// Bytes in a compressed frame's header.
const HEADER_LEN: usize = 7;

/// The largest payload (stored or inflated) one frame carries: its length
/// fields have three bytes. This is also the most one frame can make the
/// reader hold, whatever its compressed size: a frame that inflates past
/// what its header announced is refused, so a small "zip bomb" frame cannot
/// make hoop allocate more.
const MAX_FRAME_PAYLOAD: usize = 0xff_ffff;

/// Payloads shorter than this go stored, as MySQL's own
/// `MIN_COMPRESS_LENGTH`: deflating them costs more than it saves.
const MIN_COMPRESS_LENGTH: usize = 50;

/// Splits compressed frames off one direction's byte stream and inflates
/// them.
#[derive(Debug, Default)]
pub struct Decompressor {
    offset: u64,
}

impl Decompressor {
    /// A reader at the start of the compressed part of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next frame's compressed sequence id and its packet bytes, or
    /// `None` until the whole frame has arrived.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Malformed`] when the frame does not inflate to exactly
    /// the length its header announced.
    pub fn next_frame(&mut self, buf: &mut BytesMut) -> Result<Option<(u8, Bytes)>, DecodeError> {
        let Some(header) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let stored_len = u24(&header[..3]);
        let seq = header[3];
        let plain_len = u24(&header[4..]);
        let Some(frame) = buf.get(..HEADER_LEN + stored_len) else {
            buf.reserve(HEADER_LEN + stored_len - buf.len());
            return Ok(None);
        };
        let offset = self.offset;
        let fail = |reason| DecodeError::Malformed {
            offset,
            message: "compressed packet",
            reason,
        };
        let body = &frame[HEADER_LEN..];
        let plain = if plain_len == 0 {
            Bytes::copy_from_slice(body)
        } else {
            inflate(body, plain_len).map_err(fail)?
        };
        buf.advance(HEADER_LEN + stored_len);
        self.offset += (HEADER_LEN + stored_len) as u64;
        Ok(Some((seq, plain)))
    }
}

/// Inflates `body`, which must come to exactly `len` bytes.
fn inflate(body: &[u8], len: usize) -> Result<Bytes, &'static str> {
    debug_assert!(len <= MAX_FRAME_PAYLOAD);
    // One byte more than announced, to notice a frame that inflates past it.
    let mut out = Vec::with_capacity(len + 1);
    let mut inflater = Decompress::new(true);
    let status = inflater
        .decompress_vec(body, &mut out, FlushDecompress::Finish)
        .map_err(|_| "invalid zlib data")?;
    if status != Status::StreamEnd || out.len() != len {
        return Err("inflates to a length other than announced");
    }
    if usize::try_from(inflater.total_in()).ok() != Some(body.len()) {
        return Err("bytes after the zlib stream");
    }
    Ok(out.into())
}

/// Appends `plain` (packet bytes) to `dst` as compressed frames, the first
/// with compressed sequence id `seq`; returns the id after the last frame.
/// Short runs go stored, longer ones deflated; runs longer than a frame
/// holds are split.
pub fn compress_frames(dst: &mut impl BufMut, mut seq: u8, plain: &[u8]) -> u8 {
    for chunk in plain.chunks(MAX_FRAME_PAYLOAD) {
        let deflated = (chunk.len() >= MIN_COMPRESS_LENGTH)
            .then(|| deflate(chunk))
            .filter(|d| d.len() < chunk.len());
        match deflated {
            Some(deflated) => {
                put_u24(dst, deflated.len());
                dst.put_u8(seq);
                put_u24(dst, chunk.len());
                dst.put_slice(&deflated);
            }
            None => {
                put_u24(dst, chunk.len());
                dst.put_u8(seq);
                put_u24(dst, 0);
                dst.put_slice(chunk);
            }
        }
        seq = seq.wrapping_add(1);
    }
    seq
}

fn deflate(chunk: &[u8]) -> Vec<u8> {
    // zlib's bound: the input plus a few bytes per 16 KiB block and 6 of
    // header and checksum.
    let mut out = Vec::with_capacity(chunk.len() + chunk.len() / 1000 + 64);
    let mut deflater = Compress::new(Compression::fast(), true);
    match deflater.compress_vec(chunk, &mut out, FlushCompress::Finish) {
        Ok(Status::StreamEnd) => out,
        // Did not fit the bound (incompressible input): sent stored.
        _ => chunk.to_vec(),
    }
}

fn u24(b: &[u8]) -> usize {
    usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16
}

fn put_u24(dst: &mut impl BufMut, n: usize) {
    debug_assert!(n <= MAX_FRAME_PAYLOAD);
    let n = n as u32;
    dst.put_slice(&n.to_le_bytes()[..3]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_stored_deflated_and_split_runs_cut_anywhere() {
        let short = b"\x05\x00\x00\x00\x03SEL1".to_vec();
        let long: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 7).to_le_bytes())
            .collect();
        for plain in [short, long] {
            let mut wire = BytesMut::new();
            let next = compress_frames(&mut wire, 3, &plain);
            assert!(next > 3);
            for cut in [0, 1, 6, 7, wire.len() / 2, wire.len()] {
                let mut reader = Decompressor::new();
                let mut buf = BytesMut::from(&wire[..cut]);
                let mut got = Vec::new();
                let mut seqs = Vec::new();
                while let Some((seq, bytes)) = reader.next_frame(&mut buf).unwrap() {
                    seqs.push(seq);
                    got.extend_from_slice(&bytes);
                }
                buf.extend_from_slice(&wire[cut..]);
                while let Some((seq, bytes)) = reader.next_frame(&mut buf).unwrap() {
                    seqs.push(seq);
                    got.extend_from_slice(&bytes);
                }
                assert_eq!(got, plain);
                assert_eq!(seqs.first(), Some(&3));
                assert!(buf.is_empty());
            }
        }
    }

    #[test]
    fn refuses_frames_that_inflate_to_another_length() {
        let plain = vec![b'a'; 10_000];
        let deflated = deflate(&plain);
        for announced in [9_999, 10_001, 1] {
            let mut wire = BytesMut::new();
            put_u24(&mut wire, deflated.len());
            wire.put_u8(0);
            put_u24(&mut wire, announced);
            wire.put_slice(&deflated);
            assert!(matches!(
                Decompressor::new().next_frame(&mut wire),
                Err(DecodeError::Malformed { .. })
            ));
        }
        let mut garbage = BytesMut::from(&b"\x03\x00\x00\x00\x10\x00\x00abc"[..]);
        assert!(Decompressor::new().next_frame(&mut garbage).is_err());
    }
}
