//! Reassembling one direction of a TCP connection into its byte stream.
//!
//! Stream offsets are counted from the first byte after the SYN, or, in a
//! capture that starts mid-connection, from the first segment seen. A segment
//! is placed by its sequence number relative to the next expected byte, so
//! 32-bit sequence wrap-around is harmless:
//!
//! ```text
//!            delivered               pending (after a gap)
//! stream:  [=========)......[####)..[#####)
//!                    ^ next expected offset
//! ```
//!
//! Bytes before the next expected offset were delivered already: a
//! retransmission or the overlapping part of a segment is dropped, so the
//! first copy of each byte wins. Segments beyond a gap wait, within a cap,
//! until the gap is filled.

use std::collections::BTreeMap;

use bytes::BytesMut;

/// Most bytes held after a gap in one direction: 16 MiB, above any real TCP
/// receive window. Past it the missing segment is taken as lost (or the
/// capture as hostile) and the direction is given up.
pub(crate) const MAX_PENDING_BYTES: usize = 16 * 1024 * 1024;

/// Farthest ahead of the next expected byte a segment may start: beyond it a
/// sequence number is nonsense (or an attempt to make us hold data forever).
const MAX_AHEAD: i64 = 1 << 30;

/// The direction held more than [`MAX_PENDING_BYTES`] after a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GapTooLong {
    /// Offset of the first missing byte.
    pub(crate) offset: u64,
}

/// One direction of a TCP connection.
#[derive(Debug, Default)]
pub(crate) struct Reassembler {
    /// Sequence number of stream offset 0, once known.
    base: Option<u32>,
    /// Offset of the next byte to deliver.
    delivered: u64,
    /// Segments after a gap, by stream offset.
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
}

impl Reassembler {
    /// Offset of the next byte to deliver: how many have been delivered.
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Bytes held after a gap, not delivered.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Takes one segment and appends to `out` the bytes it makes contiguous.
    ///
    /// # Errors
    ///
    /// [`GapTooLong`] when holding the segment would exceed
    /// [`MAX_PENDING_BYTES`]; the segment is not held.
    pub(crate) fn push(
        &mut self,
        seq: u32,
        syn: bool,
        payload: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), GapTooLong> {
        // The SYN takes one sequence number; data starts after it.
        let data_seq = if syn { seq.wrapping_add(1) } else { seq };
        let base = *self.base.get_or_insert(data_seq);
        if payload.is_empty() {
            return Ok(());
        }
        // Distance from the next expected byte, in (-2^31, 2^31]: sequence
        // numbers are compared modulo 2^32 (RFC 9293, section 3.4).
        let expected = base.wrapping_add(self.delivered as u32);
        let ahead = i64::from(data_seq.wrapping_sub(expected) as i32);
        let start = self.delivered as i64 + ahead;
        let end = start + payload.len() as i64;
        if end <= self.delivered as i64 {
            return Ok(()); // A retransmission of delivered bytes.
        }
        if start <= self.delivered as i64 {
            let skip = (self.delivered as i64 - start) as usize;
            out.extend_from_slice(payload.get(skip..).unwrap_or_default());
            self.delivered = end as u64;
            self.drain_pending(out);
            return Ok(());
        }
        if ahead > MAX_AHEAD || self.pending_bytes + payload.len() > MAX_PENDING_BYTES {
            return Err(GapTooLong {
                offset: self.delivered,
            });
        }
        let held = self.pending.entry(start as u64).or_default();
        // Two segments at one offset: keep the longer, which covers the other.
        if held.len() < payload.len() {
            self.pending_bytes = self.pending_bytes - held.len() + payload.len();
            *held = payload.to_vec();
        }
        Ok(())
    }

    /// Delivers held segments that the stream has now reached.
    fn drain_pending(&mut self, out: &mut BytesMut) {
        while let Some(entry) = self.pending.first_entry() {
            let start = *entry.key();
            if start > self.delivered {
                break;
            }
            let segment = entry.remove();
            self.pending_bytes -= segment.len();
            let end = start + segment.len() as u64;
            if end > self.delivered {
                let skip = (self.delivered - start) as usize;
                out.extend_from_slice(segment.get(skip..).unwrap_or_default());
                self.delivered = end;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client's ISN in these tests: close to wrapping, so every test also
    /// covers sequence numbers passing 2^32.
    const ISN: u32 = u32::MAX - 5;

    const TEXT: &[u8] = b"The quick brown fox jumps over the lazy dog.";

    /// A reassembler that has seen the SYN.
    fn opened() -> Reassembler {
        let mut r = Reassembler::default();
        r.push(ISN, true, &[], &mut BytesMut::new()).unwrap();
        r
    }

    /// Sequence number of stream offset `at`.
    fn seq(at: usize) -> u32 {
        ISN.wrapping_add(1).wrapping_add(at as u32)
    }

    /// Pushes `(offset, len)` pieces of TEXT in the given order.
    fn push_pieces(r: &mut Reassembler, pieces: &[(usize, usize)]) -> BytesMut {
        let mut out = BytesMut::new();
        for &(at, len) in pieces {
            r.push(seq(at), false, &TEXT[at..at + len], &mut out)
                .unwrap();
        }
        out
    }

    #[test]
    fn delivers_in_order_segments_across_sequence_wrap() {
        let mut r = opened();
        let out = push_pieces(&mut r, &[(0, 4), (4, 6), (10, TEXT.len() - 10)]);
        assert_eq!(&out[..], TEXT);
        assert_eq!(r.delivered(), TEXT.len() as u64);
    }

    #[test]
    fn holds_out_of_order_segments_until_the_gap_fills() {
        let mut r = opened();
        let mut out = push_pieces(&mut r, &[(20, 10), (10, 10), (30, TEXT.len() - 30)]);
        assert!(
            out.is_empty(),
            "nothing is contiguous before offset 0 arrives"
        );
        assert_eq!(r.pending_bytes(), TEXT.len() - 10);
        r.push(seq(0), false, &TEXT[..10], &mut out).unwrap();
        assert_eq!(&out[..], TEXT);
        assert_eq!(r.pending_bytes(), 0);
    }

    #[test]
    fn drops_retransmissions() {
        let mut r = opened();
        let out = push_pieces(
            &mut r,
            &[(0, 10), (0, 10), (10, 10), (0, 10), (10, 10), (20, 24)],
        );
        assert_eq!(&out[..], TEXT);
    }

    #[test]
    fn trims_overlapping_segments() {
        let mut r = opened();
        // In order with overlaps, then out of order with overlaps between the
        // held segments and the one that fills the gap.
        let out = push_pieces(&mut r, &[(0, 8), (4, 10), (30, 14), (20, 15), (12, 12)]);
        assert_eq!(&out[..], TEXT);
        assert_eq!(r.pending_bytes(), 0);
    }

    #[test]
    fn first_copy_of_a_byte_wins() {
        let mut r = opened();
        let mut out = BytesMut::new();
        r.push(seq(0), false, b"abcd", &mut out).unwrap();
        r.push(seq(2), false, b"XXef", &mut out).unwrap();
        assert_eq!(&out[..], b"abcdef");
    }

    #[test]
    fn starts_mid_stream_without_a_syn() {
        let mut r = Reassembler::default();
        let mut out = BytesMut::new();
        r.push(1000, false, b"late ", &mut out).unwrap();
        r.push(1005, false, b"start", &mut out).unwrap();
        // Older data from before the capture started cannot be placed: dropped.
        r.push(990, false, b"0123456789", &mut out).unwrap();
        assert_eq!(&out[..], b"late start");
    }

    #[test]
    fn data_on_the_syn_is_delivered() {
        let mut r = Reassembler::default();
        let mut out = BytesMut::new();
        r.push(ISN, true, b"fast", &mut out).unwrap();
        r.push(seq(4), false, b" open", &mut out).unwrap();
        assert_eq!(&out[..], b"fast open");
    }

    #[test]
    fn refuses_to_hold_more_than_the_cap() {
        let mut r = opened();
        let mut out = BytesMut::new();
        let chunk = vec![0; 64 * 1024];
        let chunks = MAX_PENDING_BYTES / chunk.len();
        for i in 0..chunks {
            r.push(seq(1 + i * chunk.len()), false, &chunk, &mut out)
                .unwrap();
        }
        let past = seq(1 + chunks * chunk.len());
        assert_eq!(
            r.push(past, false, &chunk, &mut out),
            Err(GapTooLong { offset: 0 })
        );
        assert_eq!(r.pending_bytes(), MAX_PENDING_BYTES);
    }

    #[test]
    fn refuses_segments_absurdly_far_ahead() {
        let mut r = opened();
        let far = seq(0).wrapping_add((1 << 30) + 1);
        assert!(r.push(far, false, b"x", &mut BytesMut::new()).is_err());
    }

    /// Every way of cutting the stream in two, sent second piece first, and
    /// every cut into three pieces sent in reverse, reassembles to the stream.
    #[test]
    fn split_at_every_offset_reassembles() {
        let n = TEXT.len();
        for cut in 1..n {
            let mut r = opened();
            let out = push_pieces(&mut r, &[(cut, n - cut), (0, cut)]);
            assert_eq!(&out[..], TEXT, "cut at {cut}");
            for cut2 in cut + 1..n {
                let mut r = opened();
                let out = push_pieces(&mut r, &[(cut2, n - cut2), (cut, cut2 - cut), (0, cut)]);
                assert_eq!(&out[..], TEXT, "cuts at {cut} and {cut2}");
            }
        }
    }
}
