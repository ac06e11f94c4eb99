//! Helpers that append PostgreSQL framing to a caller-owned buffer.

use bytes::{BufMut, BytesMut};

/// Writes `Byte1 tag, Int32 length, body`.
///
/// The length starts as `u32::MAX` and is backpatched once the body is
/// written, so a buffer left behind by an interrupted encode never holds a
/// plausible message.
pub(crate) fn tagged(dst: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    dst.put_u8(tag);
    length_prefixed(dst, body);
}

/// Writes `Int32 length, body`, the framing of startup-phase messages.
pub(crate) fn length_prefixed(dst: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let at = dst.len();
    dst.put_u32(u32::MAX);
    body(dst);
    let len = dst.len() - at;
    debug_assert!(u32::try_from(len).is_ok(), "message over 4 GiB");
    dst[at..at + 4].copy_from_slice(&(len as u32).to_be_bytes());
}

/// Writes a NUL-terminated string.
pub(crate) fn cstr(dst: &mut BytesMut, s: &[u8]) {
    dst.put_slice(s);
    dst.put_u8(0);
}

/// Writes `Int32 length, bytes`, or `-1` for NULL.
pub(crate) fn nullable(dst: &mut BytesMut, value: Option<&[u8]>) {
    match value {
        None => dst.put_i32(-1),
        Some(v) => {
            dst.put_u32(v.len() as u32);
            dst.put_slice(v);
        }
    }
}

/// Writes `Int16 count` followed by each format code.
pub(crate) fn formats(dst: &mut BytesMut, formats: &[i16]) {
    dst.put_u16(formats.len() as u16);
    for format in formats {
        dst.put_i16(*format);
    }
}
