//! Length-encoded integers and strings, and binary-protocol value layouts.

use bytes::{BufMut, Bytes, BytesMut};

use super::consts::column_type as ty;
use crate::reader::{ReadError, Reader};

/// The lenenc marker for NULL in text rows.
pub(crate) const NULL_MARKER: u8 = 0xfb;

/// Reads a length-encoded integer.
///
/// Only the shortest encoding of a value is accepted: a longer one would not
/// re-encode to the same bytes, and no real client or server sends one.
pub(crate) fn lenenc_int(r: &mut Reader) -> Result<u64, ReadError> {
    let (value, min) = match r.u8()? {
        small @ 0..=0xfa => return Ok(u64::from(small)),
        0xfc => (u64::from(r.u16_le()?), 0xfb),
        0xfd => (u64::from(r.u24_le()?), 0x1_0000),
        0xfe => (r.u64_le()?, 0x100_0000),
        NULL_MARKER => return Err("NULL where a length was expected"),
        _ => return Err("invalid length-encoded integer"),
    };
    if value < min {
        return Err("non-minimal length-encoded integer");
    }
    Ok(value)
}

pub(crate) fn put_lenenc_int(dst: &mut BytesMut, value: u64) {
    match value {
        0..=0xfa => dst.put_u8(value as u8),
        0xfb..=0xffff => {
            dst.put_u8(0xfc);
            dst.put_u16_le(value as u16);
        }
        0x1_0000..=0xff_ffff => {
            dst.put_u8(0xfd);
            dst.put_slice(&(value as u32).to_le_bytes()[..3]);
        }
        _ => {
            dst.put_u8(0xfe);
            dst.put_u64_le(value);
        }
    }
}

fn lenenc_str_len(r: &mut Reader) -> Result<usize, ReadError> {
    usize::try_from(lenenc_int(r)?).map_err(|_| "string length overflows")
}

/// Reads a length-encoded string.
pub(crate) fn lenenc_str(r: &mut Reader) -> Result<Bytes, ReadError> {
    let len = lenenc_str_len(r)?;
    r.take(len)
}

/// Reads a length-encoded string or the NULL marker (text rows).
pub(crate) fn nullable_lenenc_str(r: &mut Reader) -> Result<Option<Bytes>, ReadError> {
    if r.peek() == Some(NULL_MARKER) {
        r.u8()?;
        return Ok(None);
    }
    lenenc_str(r).map(Some)
}

/// Advances past what [`nullable_lenenc_str`] reads, without making a view
/// of it: row validation on the hot path costs no reference counting.
pub(crate) fn skip_nullable_lenenc_str(r: &mut Reader) -> Result<(), ReadError> {
    if r.peek() == Some(NULL_MARKER) {
        return r.skip(1);
    }
    let len = lenenc_str_len(r)?;
    r.skip(len)
}

pub(crate) fn put_lenenc_str(dst: &mut BytesMut, s: &[u8]) {
    put_lenenc_int(dst, s.len() as u64);
    dst.put_slice(s);
}

/// How a value of a column type is laid out in the binary protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryLayout {
    /// A fixed number of bytes.
    Fixed(usize),
    /// A one-byte length, then that many bytes, the length from a small set.
    Temporal(&'static [u8]),
    /// A length-encoded string.
    LengthEncoded,
}

pub(crate) fn binary_layout(column_type: u8) -> BinaryLayout {
    match column_type {
        ty::NULL => BinaryLayout::Fixed(0),
        ty::TINY => BinaryLayout::Fixed(1),
        ty::SHORT | ty::YEAR => BinaryLayout::Fixed(2),
        ty::LONG | ty::INT24 | ty::FLOAT => BinaryLayout::Fixed(4),
        ty::LONGLONG | ty::DOUBLE => BinaryLayout::Fixed(8),
        ty::DATE | ty::DATETIME | ty::TIMESTAMP | ty::DATETIME2 | ty::TIMESTAMP2 | ty::NEWDATE => {
            BinaryLayout::Temporal(&[0, 4, 7, 11])
        }
        ty::TIME | ty::TIME2 => BinaryLayout::Temporal(&[0, 8, 12]),
        _ => BinaryLayout::LengthEncoded,
    }
}

/// Reads the length prefix (if the layout has one) of a binary-protocol value
/// of `column_type` and returns the length of the value that follows.
fn binary_value_len(r: &mut Reader, column_type: u8) -> Result<usize, ReadError> {
    match binary_layout(column_type) {
        BinaryLayout::Fixed(n) => Ok(n),
        BinaryLayout::Temporal(lengths) => {
            let len = r.u8()?;
            if !lengths.contains(&len) {
                return Err("invalid temporal value length");
            }
            Ok(usize::from(len))
        }
        BinaryLayout::LengthEncoded => lenenc_str_len(r),
    }
}

/// Reads one binary-protocol value of `column_type`, returned without any
/// length prefix.
pub(crate) fn binary_value(r: &mut Reader, column_type: u8) -> Result<Bytes, ReadError> {
    let len = binary_value_len(r, column_type)?;
    r.take(len)
}

/// Advances past what [`binary_value`] reads, without making a view of it.
pub(crate) fn skip_binary_value(r: &mut Reader, column_type: u8) -> Result<(), ReadError> {
    let len = binary_value_len(r, column_type)?;
    r.skip(len)
}

/// Writes one binary-protocol value; the inverse of [`binary_value`].
pub(crate) fn put_binary_value(dst: &mut BytesMut, column_type: u8, value: &[u8]) {
    match binary_layout(column_type) {
        BinaryLayout::Fixed(_) => dst.put_slice(value),
        BinaryLayout::Temporal(_) => {
            dst.put_u8(value.len() as u8);
            dst.put_slice(value);
        }
        BinaryLayout::LengthEncoded => put_lenenc_str(dst, value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_ints_round_trip_at_every_boundary() {
        for value in [
            0,
            250,
            251,
            0xffff,
            0x1_0000,
            0xff_ffff,
            0x100_0000,
            u64::MAX,
        ] {
            let mut buf = BytesMut::new();
            put_lenenc_int(&mut buf, value);
            let mut r = Reader::new(buf.freeze());
            assert_eq!(lenenc_int(&mut r), Ok(value));
        }
    }

    #[test]
    fn rejects_non_minimal_lenenc_ints() {
        let mut r = Reader::new(Bytes::from_static(&[0xfc, 5, 0]));
        assert!(lenenc_int(&mut r).is_err());
    }
}
