//! Building captures for tests: pcap and pcapng writers, TCP packets, and
//! re-segmenting a real capture into small, reordered, repeated pieces.

use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

use etherparse::PacketBuilder;

use super::capture::CaptureReader;
use super::packet::tcp_segment;

/// LINKTYPE_RAW: frames start with the IP header.
pub(crate) const LINKTYPE_RAW: u32 = 101;

/// A little-endian, microsecond pcap file holding `frames` of `link_type`.
pub(crate) fn pcap(link_type: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut file = Vec::new();
    for word in [0xa1b2_c3d4_u32, 0x0004_0002, 0, 0, 65535, link_type] {
        file.extend_from_slice(&word.to_le_bytes());
    }
    for (i, frame) in frames.iter().enumerate() {
        let len = frame.len() as u32;
        for word in [i as u32, 0, len, len] {
            file.extend_from_slice(&word.to_le_bytes());
        }
        file.extend_from_slice(frame);
    }
    file
}

/// A TCP/IP packet (no link header) from `src` to `dst`.
pub(crate) fn tcp_packet(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    (syn, ack): (bool, bool),
    payload: &[u8],
) -> Vec<u8> {
    let builder = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed address families"),
    };
    let mut tcp = builder.tcp(src.port(), dst.port(), seq, 65535);
    if syn {
        tcp = tcp.syn();
    }
    if ack {
        tcp = tcp.ack(0);
    }
    let mut packet = Vec::new();
    tcp.write(&mut packet, payload).unwrap();
    packet
}

/// Rewrites a capture as raw-IP frames in which every TCP payload is cut into
/// pieces of 1 to 7 bytes sent last piece first, with a retransmission of
/// each piece and a segment overlapping each pair of neighbours. Messages
/// still complete within the frames of the original segment, so the decoded
/// records must not change, except for their frame numbers.
pub(crate) fn resegment(capture: &[u8]) -> Vec<u8> {
    let mut reader = CaptureReader::new(Cursor::new(capture)).unwrap();
    let mut frames = Vec::new();
    let mut size = 0;
    while let Some(frame) = reader.next_frame().unwrap() {
        let Ok(segment) = tcp_segment(frame.link_type, frame.data) else {
            continue;
        };
        let flags = (segment.syn, segment.ack);
        let data_seq = segment.seq.wrapping_add(u32::from(segment.syn));
        if segment.syn || segment.payload.is_empty() {
            // Handshake and bare ACKs go through as they are.
            let data = if segment.syn {
                &[][..]
            } else {
                segment.payload
            };
            frames.push(tcp_packet(
                segment.src,
                segment.dst,
                segment.seq,
                flags,
                data,
            ));
            if segment.payload.is_empty() {
                continue;
            }
        }
        let mut pieces = Vec::new();
        let mut at = 0;
        while at < segment.payload.len() {
            size = size % 7 + 1;
            let end = (at + size).min(segment.payload.len());
            pieces.push(at..end);
            at = end;
        }
        let send = |frames: &mut Vec<Vec<u8>>, range: std::ops::Range<usize>| {
            let seq = data_seq.wrapping_add(range.start as u32);
            let data = &segment.payload[range];
            frames.push(tcp_packet(
                segment.src,
                segment.dst,
                seq,
                (false, true),
                data,
            ));
        };
        for (i, piece) in pieces.iter().enumerate().rev() {
            send(&mut frames, piece.clone());
            send(&mut frames, piece.clone());
            if let Some(next) = pieces.get(i + 1) {
                send(&mut frames, piece.start..next.end);
            }
        }
    }
    pcap(LINKTYPE_RAW, &frames)
}

/// One little-endian pcapng block, its body padded to 4 bytes.
pub(crate) fn pcapng_block(block_type: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (padded + 12) as u32;
    let mut block = [block_type.to_le_bytes(), total.to_le_bytes()].concat();
    block.extend_from_slice(body);
    block.resize(8 + padded, 0);
    block.extend_from_slice(&total.to_le_bytes());
    block
}

/// A little-endian pcapng file: a section header, one interface description
/// per link type, then an enhanced packet block per `(interface, frame)`.
pub(crate) fn pcapng(link_types: &[u32], packets: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let words = |words: &[u32]| -> Vec<u8> { words.iter().flat_map(|w| w.to_le_bytes()).collect() };
    // Byte-order magic, version 1.0, section length unknown (-1).
    let mut file = pcapng_block(0x0a0d_0d0a, &words(&[0x1a2b_3c4d, 1, u32::MAX, u32::MAX]));
    for &link in link_types {
        file.extend(pcapng_block(1, &words(&[link, 65535])));
    }
    for (interface, frame) in packets {
        let len = frame.len() as u32;
        let mut body = words(&[*interface, 0, 0, len, len]);
        body.extend_from_slice(frame);
        file.extend(pcapng_block(6, &body));
    }
    file
}

/// Rewrites a capture as raw-IP frames without its SYN and SYN-ACK segments,
/// as if capture had started just after the handshake.
pub(crate) fn without_handshake(capture: &[u8]) -> Vec<u8> {
    let mut reader = CaptureReader::new(Cursor::new(capture)).unwrap();
    let mut frames = Vec::new();
    while let Some(frame) = reader.next_frame().unwrap() {
        match tcp_segment(frame.link_type, frame.data) {
            Ok(s) if !s.syn => {
                frames.push(tcp_packet(s.src, s.dst, s.seq, (false, s.ack), s.payload))
            }
            _ => {}
        }
    }
    pcap(LINKTYPE_RAW, &frames)
}
