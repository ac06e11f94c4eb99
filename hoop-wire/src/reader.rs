//! A cursor over borrowed message bytes offering only checked reads.
//!
//! Decode code never indexes a buffer: every read goes through [`Reader`],
//! which returns `Err` with a short reason instead of panicking when the input
//! runs out. Slices are `Bytes` views into the frame, so cell data is never
//! copied.

use bytes::Bytes;

/// Why a read failed; turned into a [`crate::DecodeError::Malformed`] by the
/// caller, which knows the message name and offset.
pub(crate) type ReadError = &'static str;

pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub(crate) fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<Bytes, ReadError> {
        if n > self.left() {
            return Err("truncated field");
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    /// Advances past `n` bytes without making a view of them: validation on
    /// the hot path (every DataRow cell) costs no reference counting.
    pub(crate) fn skip(&mut self, n: usize) -> Result<(), ReadError> {
        if n > self.left() {
            return Err("truncated field");
        }
        self.pos += n;
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        let bytes = self
            .buf
            .get(self.pos..self.pos + N)
            .ok_or("truncated field")?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        self.pos += N;
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, ReadError> {
        self.array::<1>().map(|[b]| b)
    }

    pub(crate) fn i16(&mut self) -> Result<i16, ReadError> {
        self.array().map(i16::from_be_bytes)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, ReadError> {
        self.array().map(u16::from_be_bytes)
    }

    pub(crate) fn i32(&mut self) -> Result<i32, ReadError> {
        self.array().map(i32::from_be_bytes)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, ReadError> {
        self.array().map(u32::from_be_bytes)
    }

    pub(crate) fn u16_le(&mut self) -> Result<u16, ReadError> {
        self.array().map(u16::from_le_bytes)
    }

    pub(crate) fn u24_le(&mut self) -> Result<u32, ReadError> {
        self.array::<3>()
            .map(|[a, b, c]| u32::from_le_bytes([a, b, c, 0]))
    }

    pub(crate) fn u32_le(&mut self) -> Result<u32, ReadError> {
        self.array().map(u32::from_le_bytes)
    }

    pub(crate) fn u64_le(&mut self) -> Result<u64, ReadError> {
        self.array().map(u64::from_le_bytes)
    }

    /// The next byte, without consuming it.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// A NUL-terminated string, returned without its terminator.
    pub(crate) fn cstr(&mut self) -> Result<Bytes, ReadError> {
        let rest = self.buf.get(self.pos..).ok_or("truncated field")?;
        let len = memchr::memchr(0, rest).ok_or("string without terminator")?;
        let out = self.buf.slice(self.pos..self.pos + len);
        self.pos += len + 1;
        Ok(out)
    }

    /// A length-prefixed value where -1 means NULL (Bind parameters, DataRow
    /// cells, function arguments).
    pub(crate) fn nullable_value(&mut self) -> Result<Option<Bytes>, ReadError> {
        match self.nullable_value_len()? {
            None => Ok(None),
            Some(len) => self.take(len).map(Some),
        }
    }

    /// Advances past a value as read by [`nullable_value`](Self::nullable_value).
    pub(crate) fn skip_nullable_value(&mut self) -> Result<(), ReadError> {
        match self.nullable_value_len()? {
            None => Ok(()),
            Some(len) => self.skip(len),
        }
    }

    fn nullable_value_len(&mut self) -> Result<Option<usize>, ReadError> {
        match self.i32()? {
            -1 => Ok(None),
            len => usize::try_from(len)
                .map(Some)
                .map_err(|_| "negative value length"),
        }
    }

    /// Everything not yet read.
    pub(crate) fn rest(&mut self) -> Bytes {
        let out = self.buf.slice(self.pos..);
        self.pos = self.buf.len();
        out
    }

    /// Fails unless the whole input was read: trailing bytes would be lost on
    /// re-encoding, and a proxy must not forward what it did not inspect.
    pub(crate) fn finish(&self) -> Result<(), ReadError> {
        if self.left() == 0 {
            Ok(())
        } else {
            Err("trailing bytes after message")
        }
    }

    /// Checks that `count` items of at least `min_size` bytes each can still
    /// fit, before anything is allocated for them.
    pub(crate) fn check_count(&self, count: usize, min_size: usize) -> Result<(), ReadError> {
        if count.saturating_mul(min_size) > self.left() {
            Err("count exceeds message length")
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_never_panic_past_the_end() {
        let mut r = Reader::new(Bytes::from_static(&[1, 2, 3]));
        assert_eq!(r.u16(), Ok(0x0102));
        assert!(r.u16().is_err());
        assert!(r.i32().is_err());
        assert!(r.take(2).is_err());
        assert_eq!(r.u8(), Ok(3));
        assert!(r.u8().is_err());
        assert!(r.cstr().is_err());
    }

    #[test]
    fn cstr_requires_terminator() {
        let mut r = Reader::new(Bytes::from_static(b"abc\0def"));
        assert_eq!(r.cstr().unwrap(), Bytes::from_static(b"abc"));
        assert!(r.cstr().is_err());
    }

    #[test]
    fn nullable_value_rejects_negative_lengths_other_than_null() {
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xfe]));
        assert!(r.nullable_value().is_err());
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]));
        assert_eq!(r.nullable_value(), Ok(None));
    }
}
