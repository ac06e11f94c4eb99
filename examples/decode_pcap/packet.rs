//! From a captured frame to a TCP segment: link layer, IP, TCP.
//!
//! `etherparse` does the IP and TCP work (IPv4 and IPv6 with extension
//! headers, VLAN tags, lengths taken from the IP header so Ethernet padding is
//! not mistaken for payload); this module picks the starting point from the
//! link type and reads the two link headers `etherparse` does not know.

use std::net::{IpAddr, SocketAddr};

use etherparse::{EtherType, NetSlice, SlicedPacket, TransportSlice};

/// LINKTYPE_NULL: BSD loopback, a 4-byte address family in the capturing
/// host's byte order, then IP.
const LINKTYPE_NULL: u32 = 0;
/// LINKTYPE_ETHERNET.
const LINKTYPE_ETHERNET: u32 = 1;
/// LINKTYPE_RAW and the two numbers some systems used for it (DLT_RAW is 12
/// on most BSDs, 14 on OpenBSD).
const LINKTYPE_RAW: [u32; 3] = [101, 12, 14];
/// LINKTYPE_LOOP: OpenBSD loopback, a 4-byte address family in network byte
/// order, then IP.
const LINKTYPE_LOOP: u32 = 108;
/// LINKTYPE_LINUX_SLL: Linux "cooked" capture, version 1 (`tcpdump -i any`).
const LINKTYPE_LINUX_SLL: u32 = 113;
/// LINKTYPE_IPV4 and LINKTYPE_IPV6: raw IP of one version.
const LINKTYPE_IPV4_IPV6: [u32; 2] = [228, 229];
/// LINKTYPE_LINUX_SLL2: Linux cooked capture version 2 (newer `tcpdump -i any`).
const LINKTYPE_LINUX_SLL2: u32 = 276;

/// Length of the loopback address-family header.
const NULL_HEADER_LEN: usize = 4;
/// SLL2 header: protocol (2), reserved (2), interface index (4), ARPHRD type
/// (2), packet type (1), address length (1), address (8).
const SLL2_HEADER_LEN: usize = 20;

/// The part of a TCP segment that reassembly needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment<'a> {
    /// Sender.
    pub(crate) src: SocketAddr,
    /// Receiver.
    pub(crate) dst: SocketAddr,
    /// Sequence number of the first payload byte (or of the SYN).
    pub(crate) seq: u32,
    /// SYN flag: the segment opens a direction, its sequence number is the ISN.
    pub(crate) syn: bool,
    /// ACK flag: with SYN, tells the server's SYN-ACK from the client's SYN.
    pub(crate) ack: bool,
    /// The TCP payload.
    pub(crate) payload: &'a [u8],
}

/// Why a frame yields no TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    /// A link type this reader does not handle.
    UnsupportedLink(u32),
    /// Not TCP over IP, an IP fragment, or too short to parse.
    NotTcp,
}

/// Parses a frame of the given link type down to its TCP segment.
pub(crate) fn tcp_segment(link_type: u32, data: &[u8]) -> Result<Segment<'_>, Skip> {
    let sliced = match link_type {
        LINKTYPE_ETHERNET => SlicedPacket::from_ethernet(data),
        LINKTYPE_LINUX_SLL => SlicedPacket::from_linux_sll(data),
        LINKTYPE_LINUX_SLL2 => {
            let protocol = data.get(..2).ok_or(Skip::NotTcp)?;
            let payload = data.get(SLL2_HEADER_LEN..).ok_or(Skip::NotTcp)?;
            let ether_type = EtherType(u16::from_be_bytes([protocol[0], protocol[1]]));
            SlicedPacket::from_ether_type(ether_type, payload)
        }
        // The family is in either byte order; the IP version nibble says the rest.
        LINKTYPE_NULL | LINKTYPE_LOOP => {
            SlicedPacket::from_ip(data.get(NULL_HEADER_LEN..).ok_or(Skip::NotTcp)?)
        }
        t if LINKTYPE_RAW.contains(&t) || LINKTYPE_IPV4_IPV6.contains(&t) => {
            SlicedPacket::from_ip(data)
        }
        t => return Err(Skip::UnsupportedLink(t)),
    };
    let sliced = sliced.map_err(|_| Skip::NotTcp)?;
    let (src, dst): (IpAddr, IpAddr) = match &sliced.net {
        Some(NetSlice::Ipv4(ip)) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        Some(NetSlice::Ipv6(ip)) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        _ => return Err(Skip::NotTcp),
    };
    // etherparse leaves `transport` empty for IP fragments: their payload is
    // not a whole TCP segment.
    let Some(TransportSlice::Tcp(tcp)) = &sliced.transport else {
        return Err(Skip::NotTcp);
    };
    Ok(Segment {
        src: SocketAddr::new(src, tcp.source_port()),
        dst: SocketAddr::new(dst, tcp.destination_port()),
        seq: tcp.sequence_number(),
        syn: tcp.syn(),
        ack: tcp.ack(),
        payload: tcp.payload(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 TCP segment 10.0.0.1:40000 -> 10.0.0.2:5432, seq 7, payload "hi".
    fn ipv4_tcp() -> Vec<u8> {
        let builder = etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 5432, 7, 1024);
        let mut packet = Vec::new();
        builder.write(&mut packet, b"hi").unwrap();
        packet
    }

    fn assert_is_the_segment(segment: Result<Segment<'_>, Skip>, link: u32) {
        let segment = segment.unwrap_or_else(|e| panic!("link type {link}: {e:?}"));
        assert_eq!(segment.src, "10.0.0.1:40000".parse().unwrap());
        assert_eq!(segment.dst, "10.0.0.2:5432".parse().unwrap());
        assert_eq!((segment.seq, segment.payload), (7, &b"hi"[..]));
    }

    #[test]
    fn reads_tcp_under_every_link_type() {
        let ip = ipv4_tcp();
        let with = |header: &[u8]| [header, &ip].concat();
        let ethernet = with(&[[0; 12].as_slice(), &[0x08, 0x00]].concat());
        let vlan = with(&[[0; 12].as_slice(), &[0x81, 0x00, 0, 5, 0x08, 0x00]].concat());
        // Packet type 0 (to us), ARPHRD_ETHER, address length 6, address.
        let sll = with(&[[0, 0, 0, 1, 0, 6].as_slice(), &[0; 8], &[0x08, 0x00]].concat());
        let sll2 = with(&[[0x08, 0x00].as_slice(), &[0; 18]].concat());
        let null_le = with(&[2, 0, 0, 0]);
        let loop_be = with(&[0, 0, 0, 2]);
        for (link, frame) in [
            (LINKTYPE_ETHERNET, &ethernet),
            (LINKTYPE_ETHERNET, &vlan),
            (LINKTYPE_LINUX_SLL, &sll),
            (LINKTYPE_LINUX_SLL2, &sll2),
            (LINKTYPE_NULL, &null_le),
            (LINKTYPE_LOOP, &loop_be),
            (101, &ip),
            (228, &ip),
        ] {
            assert_is_the_segment(tcp_segment(link, frame), link);
        }
    }

    #[test]
    fn reads_tcp_over_ipv6() {
        let builder = etherparse::PacketBuilder::ipv6([1; 16], [2; 16], 64).tcp(1, 5432, 9, 10);
        let mut packet = Vec::new();
        builder.write(&mut packet, b"x").unwrap();
        let segment = tcp_segment(101, &packet).unwrap();
        assert_eq!(segment.dst, SocketAddr::new(IpAddr::from([2; 16]), 5432));
        assert_eq!(segment.payload, b"x");
    }

    #[test]
    fn skips_what_is_not_tcp() {
        assert_eq!(
            tcp_segment(147, &ipv4_tcp()),
            Err(Skip::UnsupportedLink(147))
        );
        assert_eq!(tcp_segment(101, &ipv4_tcp()[..30]), Err(Skip::NotTcp));
        assert_eq!(tcp_segment(LINKTYPE_LINUX_SLL2, &[0x08]), Err(Skip::NotTcp));
        let mut udp = Vec::new();
        etherparse::PacketBuilder::ipv4([1; 4], [2; 4], 1)
            .udp(1, 2)
            .write(&mut udp, b"x")
            .unwrap();
        assert_eq!(tcp_segment(101, &udp), Err(Skip::NotTcp));
    }
}
