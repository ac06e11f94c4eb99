//! Decodes database traffic from pcap and pcapng captures with `hoop-wire`.
//!
//! ```text
//! cargo run --release --example decode_pcap -- [--protocol postgres|mysql] [--port N] FILE...
//! ```
//!
//! Prints one JSON object per message on stdout, in capture order:
//!
//! ```text
//! {"stream":0,"dir":"client","protocol":"postgres","message":"Query","sql":"select now()","offset":248,"frame":20,"file":"select-now.pcap"}
//! ```
//!
//! `stream` numbers the file's TCP connections like tshark's `tcp.stream`;
//! `offset` is where the message starts in its direction's byte stream;
//! `frame` is the frame (from 1) whose segment completed the message. Exits
//! with 1, naming the file, stream and byte offset on stderr, when a stream
//! does not decode (the other streams are still printed), and with 2 on a bad
//! command line. The reading, reassembly and decoding live in
//! `decode_pcap/`; `decode_pcap/postgres.rs` and `decode_pcap/mysql.rs` are
//! all it takes to plug in a `hoop-wire` codec.

#[path = "decode_pcap/mod.rs"]
mod decode_pcap;

use std::io;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut records = io::BufWriter::new(io::stdout().lock());
    let status = decode_pcap::run(std::env::args_os(), &mut records, &mut io::stderr());
    ExitCode::from(status)
}
