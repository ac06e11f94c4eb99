//! The decode_pcap example's machinery, shared by its `main` and its tests.
//!
//! ```text
//! file --capture--> frames --packet--> TCP segments --streams--> per connection:
//!      pcap/pcapng         link, IP, TCP        reassembly per direction
//!                                               --protocol--> decoded messages --> JSON lines
//! ```

mod capture;
mod mysql;
mod packet;
mod postgres;
mod protocol;
mod reassembly;
mod streams;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

use clap::Parser;
use clap::builder::PossibleValuesParser;

use capture::{CaptureError, CaptureReader};
use packet::Skip;
use protocol::{PROTOCOLS, Protocol};
use streams::{Output, Streams};

/// Decodes database traffic in pcap and pcapng captures and prints one JSON
/// object per message.
#[derive(Debug, Parser)]
#[command(name = "decode_pcap")]
struct Args {
    /// The protocol spoken on the server port.
    #[arg(long, default_value = "postgres", value_parser = PossibleValuesParser::new(PROTOCOLS.iter().map(|p| p.name())))]
    protocol: String,
    /// The server's port [default: the protocol's well-known port: 5432 for
    /// postgres, 3306 for mysql].
    #[arg(long)]
    port: Option<u16>,
    /// Capture files (pcap or pcapng).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Exit status: every stream of every file decoded.
pub(crate) const EXIT_OK: u8 = 0;
/// Exit status: a stream did not decode, or a file could not be read.
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit status: bad command line.
pub(crate) const EXIT_USAGE: u8 = 2;

/// Runs the example on a command line (program name first): records to
/// `records`, diagnostics to `notes`. Returns the exit status.
pub(crate) fn run(
    args: impl IntoIterator<Item = OsString>,
    records: &mut dyn Write,
    notes: &mut dyn Write,
) -> u8 {
    let args = match Args::try_parse_from(args) {
        Ok(args) => args,
        Err(e) if e.use_stderr() => {
            // Nothing to do if the terminal is gone.
            let _ = write!(notes, "{e}");
            return EXIT_USAGE;
        }
        Err(help) => {
            let _ = write!(records, "{help}");
            return EXIT_OK;
        }
    };
    let Some(protocol) = protocol::find(&args.protocol) else {
        // The value parser only admits known names.
        return EXIT_USAGE;
    };
    let port = args.port.unwrap_or_else(|| protocol.default_port());
    let mut status = EXIT_OK;
    for path in &args.files {
        let file = path.display().to_string();
        let mut output = Output {
            records: &mut *records,
            notes: &mut *notes,
            file: &file,
        };
        let result = decode_file(path, protocol, port, &mut output).and_then(|ok| {
            output.records.flush()?;
            Ok(ok)
        });
        match result {
            Ok(true) => {}
            Ok(false) => status = EXIT_FAILED,
            // The reader of our output went away (`| head`): stop quietly.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return status,
            Err(e) => {
                let _ = writeln!(notes, "decode_pcap: cannot write output: {e}");
                return EXIT_FAILED;
            }
        }
    }
    status
}

/// Decodes one capture; `Ok(false)` if it could not be read whole or a
/// stream did not decode.
///
/// # Errors
///
/// Only from writing to `output`.
fn decode_file(
    path: &Path,
    protocol: &'static dyn Protocol,
    port: u16,
    output: &mut Output<'_>,
) -> io::Result<bool> {
    let mut reader = match File::open(path)
        .map_err(CaptureError::Io)
        .and_then(|f| CaptureReader::new(BufReader::new(f)))
    {
        Ok(reader) => reader,
        Err(e) => {
            output.note(format_args!("{e}"))?;
            return Ok(false);
        }
    };
    let mut streams = Streams::new(protocol, port);
    // Frames skipped for their link type, by link type.
    let mut unsupported: BTreeMap<u32, u64> = BTreeMap::new();
    let mut read_whole = true;
    loop {
        let frame = match reader.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            // A capture stopped mid-write: decode what is there.
            Err(e @ CaptureError::Truncated { .. }) => {
                output.note(format_args!("{e}; decoding what precedes it"))?;
                break;
            }
            Err(e) => {
                output.note(format_args!("{e}"))?;
                read_whole = false;
                break;
            }
        };
        match packet::tcp_segment(frame.link_type, frame.data) {
            Ok(segment) => streams.segment(&segment, frame.number, output)?,
            Err(Skip::UnsupportedLink(link)) => *unsupported.entry(link).or_default() += 1,
            Err(Skip::NotTcp) => {}
        }
    }
    for (link, frames) in unsupported {
        output.note(format_args!(
            "{frames} frames of unsupported link type {link} skipped"
        ))?;
    }
    let summary = streams.finish_all(output)?;
    if summary.decoded == 0 {
        output.note(format_args!(
            "no TCP connection to port {port} found for {}",
            protocol.name()
        ))?;
    }
    if summary.failed > 0 {
        output.note(format_args!(
            "{} of {} {} streams did not decode",
            summary.failed,
            summary.decoded,
            protocol.name()
        ))?;
    }
    Ok(read_whole && summary.failed == 0)
}
