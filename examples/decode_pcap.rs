//! Decodes database traffic from pcap and pcapng captures.

fn main() {}
