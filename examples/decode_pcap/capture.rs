//! Reading frames from pcap and pcapng files.
//!
//! A small reader of our own rather than a crate: a capture is untrusted
//! input, and this one checks every length against a cap before it reads or
//! allocates, never indexes past what it read, and reports a file cut short as
//! such instead of failing on its last record.
//!
//! ```text
//! pcap:    global header (24 bytes, magic a1b2c3d4 or a1b23c4d, either byte order)
//!          then records: ts_sec u32 | ts_frac u32 | incl_len u32 | orig_len u32 | data
//! pcapng:  blocks: type u32 | total_len u32 | body | total_len u32
//!          SHB 0a0d0d0a (byte order from its magic 1a2b3c4d), IDB 1 (link type),
//!          EPB 6 and PB 2 (packets on an interface), SPB 3 (packet on interface 0)
//! ```
//!
//! Frames come out in file order, which is capture order for files written by
//! a capture tool, and are numbered from 1 as Wireshark numbers them.

use std::fmt;
use std::io::{self, Read};

/// The largest packet accepted: 256 KiB, libpcap's and Wireshark's own
/// maximum snapshot length. A larger record length is corruption or an attempt
/// to make the reader allocate without bound.
const MAX_PACKET_LEN: usize = 256 * 1024;

/// The largest pcapng block accepted: Wireshark's 16 MiB block limit. Blocks
/// are read whole into a reused buffer, so this bounds the reader's memory.
const MAX_BLOCK_LEN: usize = 16 * 1024 * 1024;

const PCAP_MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const PCAP_HEADER_LEN: usize = 24;
const PCAP_RECORD_HEADER_LEN: usize = 16;

const PCAPNG_SECTION_HEADER: u32 = 0x0a0d_0d0a;
const PCAPNG_BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
const PCAPNG_INTERFACE_DESCRIPTION: u32 = 1;
const PCAPNG_PACKET: u32 = 2;
const PCAPNG_SIMPLE_PACKET: u32 = 3;
const PCAPNG_ENHANCED_PACKET: u32 = 6;
/// Block type, total length, and the trailing copy of the total length.
const PCAPNG_BLOCK_OVERHEAD: usize = 12;
/// Overhead, byte-order magic, version (4) and section length (8).
const MIN_SECTION_HEADER_LEN: usize = PCAPNG_BLOCK_OVERHEAD + 16;

/// One captured packet.
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    /// Frame number, from 1, as Wireshark shows it.
    pub(crate) number: u64,
    /// The link-layer header type (LINKTYPE_* in the tcpdump registry).
    pub(crate) link_type: u32,
    /// The captured bytes, from the link-layer header on.
    pub(crate) data: &'a [u8],
}

/// Why a capture file could not be read (further).
#[derive(Debug)]
pub(crate) enum CaptureError {
    /// The file could not be read at all.
    Io(io::Error),
    /// The file starts with neither a pcap nor a pcapng magic number.
    UnknownFormat,
    /// The file ends in the middle of a header or record.
    Truncated {
        /// File offset of the record that is cut short.
        offset: u64,
    },
    /// A header or record that breaks the format or our caps.
    Malformed {
        /// File offset of the record.
        offset: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot read: {e}"),
            Self::UnknownFormat => f.write_str("not a pcap or pcapng file"),
            Self::Truncated { offset } => {
                write!(f, "file cut short in the record at byte {offset}")
            }
            Self::Malformed { offset, reason } => {
                write!(f, "malformed record at byte {offset}: {reason}")
            }
        }
    }
}

/// Byte order of the file's integers.
#[derive(Debug, Clone, Copy)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Self::Little => u16::from_le_bytes(b),
            Self::Big => u16::from_be_bytes(b),
        }
    }

    fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Self::Little => u32::from_le_bytes(b),
            Self::Big => u32::from_be_bytes(b),
        }
    }
}

#[derive(Debug)]
enum Format {
    Pcap {
        endian: Endian,
        link_type: u32,
    },
    /// Byte order of the current section and its interfaces' link types.
    Pcapng {
        endian: Endian,
        interfaces: Vec<u32>,
    },
}

/// Reads frames one at a time from a pcap or pcapng stream.
#[derive(Debug)]
pub(crate) struct CaptureReader<R> {
    input: R,
    format: Format,
    /// File offset of the next unread byte.
    position: u64,
    frames: u64,
    /// Holds the current record or block; reused, never above the caps.
    record: Vec<u8>,
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header and detects the format.
    pub(crate) fn new(mut input: R) -> Result<Self, CaptureError> {
        let mut magic = [0; 4];
        match read_full(&mut input, &mut magic) {
            Ok(true) => {}
            Ok(false) | Err(CaptureError::Truncated { .. }) => {
                return Err(CaptureError::UnknownFormat);
            }
            Err(e) => return Err(e),
        }
        let mut reader = Self {
            input,
            format: Format::Pcap {
                endian: Endian::Little,
                link_type: 0,
            },
            position: 4,
            frames: 0,
            record: Vec::new(),
        };
        if u32::from_be_bytes(magic) == PCAPNG_SECTION_HEADER {
            reader.format = Format::Pcapng {
                endian: Endian::Little,
                interfaces: Vec::new(),
            };
            reader.read_block_after_type(PCAPNG_SECTION_HEADER, 0)?;
            return Ok(reader);
        }
        let endian = match (u32::from_le_bytes(magic), u32::from_be_bytes(magic)) {
            (PCAP_MAGIC_MICROS | PCAP_MAGIC_NANOS, _) => Endian::Little,
            (_, PCAP_MAGIC_MICROS | PCAP_MAGIC_NANOS) => Endian::Big,
            _ => return Err(CaptureError::UnknownFormat),
        };
        let mut rest = [0; PCAP_HEADER_LEN - 4];
        reader.read_exact_at(&mut rest, 0)?;
        // Version (4), reserved (8), snaplen (4), then the link type in the
        // low 16 bits; the upper bits carry FCS flags.
        let link_type = endian.u32([rest[16], rest[17], rest[18], rest[19]]) & 0xffff;
        reader.format = Format::Pcap { endian, link_type };
        Ok(reader)
    }

    /// Returns the next packet, `Ok(None)` at the end of the file.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        let (link_type, start, len) = match self.format {
            Format::Pcap { endian, link_type } => {
                let Some((start, len)) = self.read_pcap_record(endian)? else {
                    return Ok(None);
                };
                (link_type, start, len)
            }
            Format::Pcapng { .. } => {
                let Some(packet) = self.read_pcapng_packet()? else {
                    return Ok(None);
                };
                packet
            }
        };
        self.frames += 1;
        Ok(Some(Frame {
            number: self.frames,
            link_type,
            data: self.record.get(start..start + len).unwrap_or_default(),
        }))
    }

    /// Reads one pcap record into `self.record`; returns where its data is.
    fn read_pcap_record(&mut self, endian: Endian) -> Result<Option<(usize, usize)>, CaptureError> {
        let offset = self.position;
        let mut header = [0; PCAP_RECORD_HEADER_LEN];
        match read_full(&mut self.input, &mut header) {
            Ok(false) => return Ok(None),
            Ok(true) => self.position += PCAP_RECORD_HEADER_LEN as u64,
            Err(CaptureError::Truncated { .. }) => return Err(CaptureError::Truncated { offset }),
            Err(e) => return Err(e),
        }
        let captured = endian.u32([header[8], header[9], header[10], header[11]]) as usize;
        if captured > MAX_PACKET_LEN {
            return Err(CaptureError::Malformed {
                offset,
                reason: "captured length over 256 KiB",
            });
        }
        self.fill_record(captured, offset)?;
        Ok(Some((0, captured)))
    }

    /// Reads blocks until a packet block; returns its link type and data.
    fn read_pcapng_packet(&mut self) -> Result<Option<(u32, usize, usize)>, CaptureError> {
        loop {
            let offset = self.position;
            let mut block_type = [0; 4];
            match read_full(&mut self.input, &mut block_type) {
                Ok(false) => return Ok(None),
                Ok(true) => self.position += 4,
                Err(CaptureError::Truncated { .. }) => {
                    return Err(CaptureError::Truncated { offset });
                }
                Err(e) => return Err(e),
            }
            // A section header carries its byte order, so its type is the
            // same read either way; other types use the section's order.
            let block_type = match self.format {
                Format::Pcapng { endian, .. } if block_type != [0x0a, 0x0d, 0x0d, 0x0a] => {
                    endian.u32(block_type)
                }
                _ => u32::from_be_bytes(block_type),
            };
            if let Some(packet) = self.read_block_after_type(block_type, offset)? {
                return Ok(Some(packet));
            }
        }
    }

    /// Reads the rest of a pcapng block whose type has been read; returns the
    /// link type and data span for a packet block, `None` for other blocks.
    fn read_block_after_type(
        &mut self,
        block_type: u32,
        offset: u64,
    ) -> Result<Option<(u32, usize, usize)>, CaptureError> {
        let malformed = |reason| CaptureError::Malformed { offset, reason };
        let mut length = [0; 4];
        self.read_exact_at(&mut length, offset)?;
        if block_type == PCAPNG_SECTION_HEADER {
            let mut bom = [0; 4];
            self.read_exact_at(&mut bom, offset)?;
            let endian = if u32::from_le_bytes(bom) == PCAPNG_BYTE_ORDER_MAGIC {
                Endian::Little
            } else if u32::from_be_bytes(bom) == PCAPNG_BYTE_ORDER_MAGIC {
                Endian::Big
            } else {
                return Err(malformed("section header without byte-order magic"));
            };
            // A new section starts a new list of interfaces.
            self.format = Format::Pcapng {
                endian,
                interfaces: Vec::new(),
            };
            let total = checked_block_len(endian.u32(length), MIN_SECTION_HEADER_LEN, offset)?;
            // Type, length and byte-order magic are already read.
            self.fill_record(total - 12, offset)?;
            return self
                .check_trailer(endian.u32(length), offset)
                .map(|()| None);
        }
        let Format::Pcapng { endian, .. } = self.format else {
            return Err(malformed("pcapng block outside a pcapng file"));
        };
        let total = checked_block_len(endian.u32(length), PCAPNG_BLOCK_OVERHEAD, offset)?;
        self.fill_record(total - 8, offset)?;
        self.check_trailer(endian.u32(length), offset)?;
        // The body, without the trailing copy of the total length.
        let body_len = total - PCAPNG_BLOCK_OVERHEAD;
        let Format::Pcapng { interfaces, .. } = &mut self.format else {
            return Err(malformed("pcapng block outside a pcapng file"));
        };
        let body = self.record.get(..body_len).unwrap_or_default();
        let u32_at = |at: usize| body.get(at..at + 4).map(|b| endian.u32(array(b)));
        let u16_at = |at: usize| body.get(at..at + 2).map(|b| endian.u16(array(b)));
        let link_of = |interface: usize| {
            interfaces
                .get(interface)
                .copied()
                .ok_or(malformed("packet on an undeclared interface"))
        };
        match block_type {
            PCAPNG_INTERFACE_DESCRIPTION => {
                let link = u16_at(0).ok_or(malformed("interface description too short"))?;
                interfaces.push(u32::from(link));
                Ok(None)
            }
            PCAPNG_ENHANCED_PACKET | PCAPNG_PACKET => {
                // EPB: interface u32, timestamp u64, captured u32, original u32.
                // PB:  interface u16, drops u16, then the same.
                let interface = if block_type == PCAPNG_ENHANCED_PACKET {
                    u32_at(0).map(|i| i as usize)
                } else {
                    u16_at(0).map(usize::from)
                };
                let interface = interface.ok_or(malformed("packet block too short"))?;
                let captured = u32_at(12).ok_or(malformed("packet block too short"))? as usize;
                if captured > body_len.saturating_sub(20) || captured > MAX_PACKET_LEN {
                    return Err(malformed("captured length beyond the block"));
                }
                Ok(Some((link_of(interface)?, 20, captured)))
            }
            PCAPNG_SIMPLE_PACKET => {
                let original = u32_at(0).ok_or(malformed("simple packet block too short"))?;
                let captured = (original as usize).min(body_len.saturating_sub(4));
                if captured > MAX_PACKET_LEN {
                    return Err(malformed("captured length over 256 KiB"));
                }
                Ok(Some((link_of(0)?, 4, captured)))
            }
            _ => Ok(None),
        }
    }

    /// Reads exactly `len` bytes into `self.record`.
    fn fill_record(&mut self, len: usize, offset: u64) -> Result<(), CaptureError> {
        self.record.clear();
        self.record.resize(len, 0);
        let mut record = std::mem::take(&mut self.record);
        let filled = self.read_exact_at(&mut record, offset);
        self.record = record;
        filled
    }

    /// Checks that a block ends with a copy of its total length, as pcapng
    /// requires: a mismatch means the reader has lost the block boundaries.
    fn check_trailer(&self, total: u32, offset: u64) -> Result<(), CaptureError> {
        let trailer = self
            .record
            .len()
            .checked_sub(4)
            .and_then(|at| self.record.get(at..));
        match (trailer, &self.format) {
            (Some(t), Format::Pcapng { endian, .. }) if endian.u32(array(t)) == total => Ok(()),
            _ => Err(CaptureError::Malformed {
                offset,
                reason: "block trailer does not repeat the block length",
            }),
        }
    }

    /// Reads exactly `buf.len()` bytes of the record starting at `offset`.
    fn read_exact_at(&mut self, buf: &mut [u8], offset: u64) -> Result<(), CaptureError> {
        match read_full(&mut self.input, buf) {
            Ok(true) => {
                self.position += buf.len() as u64;
                Ok(())
            }
            Ok(false) | Err(CaptureError::Truncated { .. }) => {
                Err(CaptureError::Truncated { offset })
            }
            Err(e) => Err(e),
        }
    }
}

/// Checks a pcapng block's total length: a multiple of 4, at least `min`,
/// at most [`MAX_BLOCK_LEN`].
fn checked_block_len(len: u32, min: usize, offset: u64) -> Result<usize, CaptureError> {
    let len = len as usize;
    if len < min || !len.is_multiple_of(4) || len > MAX_BLOCK_LEN {
        return Err(CaptureError::Malformed {
            offset,
            reason: "block length not a multiple of 4 within the block size limits",
        });
    }
    Ok(len)
}

/// Fills `buf`: `Ok(true)` when filled, `Ok(false)` at a clean end of file
/// (nothing read), `Truncated` when the file ends part-way.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> Result<bool, CaptureError> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(CaptureError::Truncated { offset: 0 }),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CaptureError::Io(e)),
        }
    }
    Ok(true)
}

/// Copies the first `N` bytes of a slice into an array, zero-filling if it is
/// shorter (callers pass slices they took with exactly `N` bytes).
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = *b;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::super::packet::tcp_segment;
    use super::super::testing::{pcap, pcapng, pcapng_block};
    use super::*;

    /// Every frame of a capture, as (number, link type, data).
    fn read_all(file: &[u8]) -> Result<Vec<(u64, u32, Vec<u8>)>, CaptureError> {
        let mut reader = CaptureReader::new(Cursor::new(file))?;
        let mut frames = Vec::new();
        while let Some(f) = reader.next_frame()? {
            frames.push((f.number, f.link_type, f.data.to_vec()));
        }
        Ok(frames)
    }

    fn frames() -> Vec<Vec<u8>> {
        vec![b"first".to_vec(), Vec::new(), vec![7; 1500]]
    }

    #[test]
    fn reads_pcap_in_both_byte_orders() {
        // The same frames big-endian, with the nanosecond magic.
        let words = |w: &[u32]| -> Vec<u8> { w.iter().flat_map(|w| w.to_be_bytes()).collect() };
        let mut big = words(&[PCAP_MAGIC_NANOS, 0x0002_0004, 0, 0, 65535, 1]);
        for (i, frame) in frames().iter().enumerate() {
            let len = frame.len() as u32;
            big.extend(words(&[i as u32, 0, len, len]));
            big.extend_from_slice(frame);
        }
        let expected: Vec<_> = (1..).zip(frames()).map(|(n, f)| (n, 1, f)).collect();
        assert_eq!(read_all(&pcap(1, &frames())).unwrap(), expected);
        assert_eq!(read_all(&big).unwrap(), expected);
    }

    #[test]
    fn reads_pcapng_packets_with_their_interface_link_type() {
        let file = pcapng(&[1, 101], &[(1, b"raw".to_vec()), (0, b"ether".to_vec())]);
        let mut with_others = file.clone();
        // An unknown block and a simple packet block (interface 0) at the end.
        with_others.extend(pcapng_block(0x0bad, b"ignored"));
        with_others.extend(pcapng_block(
            3,
            &[&5u32.to_le_bytes()[..], b"small"].concat(),
        ));
        assert_eq!(
            read_all(&with_others).unwrap(),
            vec![
                (1, 101, b"raw".to_vec()),
                (2, 1, b"ether".to_vec()),
                (3, 1, b"small".to_vec())
            ]
        );
    }

    /// A pcapng file from a real capture tool: all 27 frames, each a TCP
    /// segment, 1316 payload bytes in all (as tshark counts them).
    #[test]
    fn reads_a_real_pcapng_capture() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/captures/mysql/zeek-caching_sha2_password-after-auth-switch.pcapng");
        let file = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("cannot read the capture {}: {e}", path.display()));
        let frames = read_all(&file).unwrap();
        assert_eq!(frames.len(), 27);
        let payload: usize = frames
            .iter()
            .map(|(_, link, data)| tcp_segment(*link, data).unwrap().payload.len())
            .sum();
        assert_eq!(payload, 1316);
    }

    #[test]
    fn reports_a_file_cut_short() {
        let file = pcap(1, &frames());
        // Cuts inside the last record's header and inside its data.
        for cut in [file.len() - 1500 - 3, file.len() - 1] {
            let mut reader = CaptureReader::new(Cursor::new(&file[..cut])).unwrap();
            assert!(reader.next_frame().unwrap().is_some());
            assert!(reader.next_frame().unwrap().is_some());
            let last = 24 + 2 * 16 + 5;
            assert!(matches!(
                reader.next_frame(),
                Err(CaptureError::Truncated { offset }) if offset == last
            ));
        }
    }

    #[test]
    fn rejects_lengths_over_the_caps() {
        let mut file = pcap(1, &[b"x".to_vec()]);
        file[24 + 8..24 + 12].copy_from_slice(&(MAX_PACKET_LEN as u32 + 1).to_le_bytes());
        assert!(matches!(
            read_all(&file),
            Err(CaptureError::Malformed { offset: 24, .. })
        ));

        let mut file = pcapng(&[1], &[(0, b"x".to_vec())]);
        let epb = file.len() - 36;
        file[epb + 4..epb + 8].copy_from_slice(&(MAX_BLOCK_LEN as u32 + 4).to_le_bytes());
        assert!(matches!(
            read_all(&file),
            Err(CaptureError::Malformed { .. })
        ));
    }

    #[test]
    fn rejects_inconsistent_pcapng_blocks() {
        // Captured length beyond the block.
        let mut file = pcapng(&[1], &[(0, b"abcd".to_vec())]);
        let epb = file.len() - 36;
        file[epb + 20..epb + 24].copy_from_slice(&100u32.to_le_bytes());
        assert!(matches!(
            read_all(&file),
            Err(CaptureError::Malformed { .. })
        ));
        // A packet on an interface never described.
        let file = pcapng(&[1], &[(3, b"abcd".to_vec())]);
        assert!(matches!(
            read_all(&file),
            Err(CaptureError::Malformed { .. })
        ));
        // A trailer that does not repeat the length.
        let mut file = pcapng(&[1], &[(0, b"abcd".to_vec())]);
        let end = file.len();
        file[end - 4] ^= 0xff;
        assert!(matches!(
            read_all(&file),
            Err(CaptureError::Malformed { .. })
        ));
    }

    #[test]
    fn rejects_other_files() {
        for file in [&b""[..], b"GIF89a", b"\xd4\xc3\xb2"] {
            assert!(matches!(
                CaptureReader::new(Cursor::new(file)),
                Err(CaptureError::UnknownFormat)
            ));
        }
    }
}
