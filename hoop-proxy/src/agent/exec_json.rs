//! Exec's JSON output: one array of row objects whose values keep their
//! column's type, so `hoop exec pg -i 'select 1 as one' -o json` prints
//! `[{"one":1}]`, not `[{"one":"1"}]`.
//!
//! Both protocols send rows as text; the column's type says what the text
//! is. Numbers (integers, floats, decimals) become JSON numbers, written
//! from the server's own digits so a `numeric` keeps every digit, booleans
//! become `true` or `false`, NULL becomes `null`, and everything else (and
//! any cell whose text is not a valid JSON number, such as `NaN`, or a
//! masked value in a number column) a string. Columns keep the order and
//! names the database sent, repeated names included.
//!
//! PostgreSQL's column types come from its RowDescription messages, which
//! `tokio-postgres`'s simple query API does not expose: [`RowDescriptionTap`]
//! reads them off the stream between exec's client and the driver.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::BytesMut;
use hoop_wire::mysql::column_type;
use hoop_wire::postgres::{BackendDecoder, BackendMessage, Limits};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How a column's values appear in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonKind {
    /// Integers, floats and decimals.
    Number,
    /// PostgreSQL's `boolean` (`t` or `f` on the wire).
    Boolean,
    /// Everything else: a JSON string.
    Text,
}

/// PostgreSQL type OIDs (`pg_type.oid`) whose text is a number or a boolean.
mod pg_type {
    pub(super) const BOOL: u32 = 16;
    pub(super) const INT8: u32 = 20;
    pub(super) const INT2: u32 = 21;
    pub(super) const INT4: u32 = 23;
    pub(super) const OID: u32 = 26;
    pub(super) const FLOAT4: u32 = 700;
    pub(super) const FLOAT8: u32 = 701;
    pub(super) const NUMERIC: u32 = 1700;
}

impl JsonKind {
    /// The kind of a PostgreSQL column of type `type_oid`.
    pub(crate) fn postgres(type_oid: u32) -> Self {
        match type_oid {
            pg_type::BOOL => Self::Boolean,
            pg_type::INT2
            | pg_type::INT4
            | pg_type::INT8
            | pg_type::OID
            | pg_type::FLOAT4
            | pg_type::FLOAT8
            | pg_type::NUMERIC => Self::Number,
            _ => Self::Text,
        }
    }

    /// The kind of a MySQL column of type `column` (MySQL has no boolean
    /// type: `BOOL` is `TINYINT(1)`, a number).
    pub(crate) fn mysql(column: u8) -> Self {
        match column {
            column_type::DECIMAL
            | column_type::NEWDECIMAL
            | column_type::TINY
            | column_type::SHORT
            | column_type::INT24
            | column_type::LONG
            | column_type::LONGLONG
            | column_type::FLOAT
            | column_type::DOUBLE
            | column_type::YEAR => Self::Number,
            _ => Self::Text,
        }
    }
}

/// Appends one row as a JSON object: `columns` gives each cell's name and
/// kind, `cells` the values as text (`None` for NULL). Cells past the
/// columns are dropped; missing cells are not written.
pub(crate) fn write_row<'a>(
    out: &mut String,
    columns: &[(String, JsonKind)],
    cells: impl IntoIterator<Item = Option<&'a str>>,
) {
    out.push('{');
    for (index, ((name, kind), cell)) in columns.iter().zip(cells).enumerate() {
        if index > 0 {
            out.push(',');
        }
        write_string(out, name);
        out.push(':');
        write_cell(out, *kind, cell);
    }
    out.push('}');
}

fn write_cell(out: &mut String, kind: JsonKind, cell: Option<&str>) {
    match (kind, cell) {
        (_, None) => out.push_str("null"),
        (JsonKind::Number, Some(text)) if is_json_number(text) => out.push_str(text),
        (JsonKind::Boolean, Some("t")) => out.push_str("true"),
        (JsonKind::Boolean, Some("f")) => out.push_str("false"),
        (_, Some(text)) => write_string(out, text),
    }
}

/// A JSON string literal of `text`.
fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether `text` is a number in JSON's grammar
/// (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`), so it can be written
/// as it stands, every digit kept.
fn is_json_number(text: &str) -> bool {
    fn digits(bytes: &[u8]) -> usize {
        bytes.iter().take_while(|b| b.is_ascii_digit()).count()
    }
    let bytes = text.as_bytes();
    let mut at = usize::from(bytes.first() == Some(&b'-'));
    match bytes.get(at) {
        Some(b'0') => at += 1,
        Some(b'1'..=b'9') => at += digits(&bytes[at..]),
        _ => return false,
    }
    if bytes.get(at) == Some(&b'.') {
        let fraction = digits(&bytes[at + 1..]);
        if fraction == 0 {
            return false;
        }
        at += 1 + fraction;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exponent = digits(&bytes[at..]);
        if exponent == 0 {
            return false;
        }
        at += exponent;
    }
    at == bytes.len()
}

/// The largest RowDescription the tap reads: 1,664 columns (PostgreSQL's
/// limit) of 64-byte names take about 140 KB. A larger one stops the tap,
/// and exec falls back to strings, rather than buffer without bound.
const MAX_ROW_DESCRIPTION: usize = 1 << 20;

/// The column types the tap has read, one entry per RowDescription in the
/// order the server sent them.
#[derive(Debug, Default)]
struct Seen {
    descriptions: VecDeque<Vec<u32>>,
    /// The stream stopped making sense to the tap: every later lookup gets
    /// no types (strings), since the order can no longer be trusted.
    lost: bool,
}

/// The column types of the result sets seen so far, shared between the
/// tap (inside `tokio-postgres`'s connection task) and exec's formatting.
#[derive(Debug, Clone, Default)]
pub(crate) struct ColumnTypes(Arc<Mutex<Seen>>);

impl ColumnTypes {
    /// The types of the next result set, in order; `None` when unknown.
    /// Call once per RowDescription the client reports: the tap reads each
    /// before the client can.
    pub(crate) fn next(&self) -> Option<Vec<u32>> {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.lost {
            return None;
        }
        seen.descriptions.pop_front()
    }
}

/// Where the tap is in the server's stream of tagged messages.
#[derive(Debug)]
enum Scan {
    /// Reading a message's tag and length.
    Header { bytes: [u8; 5], have: usize },
    /// Passing over the body of a message other than RowDescription.
    Skip(usize),
    /// Collecting a RowDescription (tag and length included).
    Collect { message: Vec<u8>, want: usize },
    /// Given up; see [`Seen::lost`].
    Lost,
}

/// Wraps exec's stream to the PostgreSQL driver and reads the type OIDs of
/// every RowDescription the server sends, passing every byte through
/// untouched. Other messages (rows included) are only skipped over, never
/// buffered.
pub(crate) struct RowDescriptionTap<S> {
    inner: S,
    scan: Scan,
    types: ColumnTypes,
}

impl<S> RowDescriptionTap<S> {
    /// Taps `inner`; the types it reads appear in `types`.
    pub(crate) fn new(inner: S, types: ColumnTypes) -> Self {
        Self {
            inner,
            scan: Scan::Header {
                bytes: [0; 5],
                have: 0,
            },
            types,
        }
    }

    fn lose(&mut self) {
        self.scan = Scan::Lost;
        self.types
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .lost = true;
    }

    /// Follows the server's bytes. Exec's client never asks for TLS, so
    /// every message from the server is tagged (`Byte1 tag, Int32 length`).
    fn observe(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.scan {
                Scan::Lost => return,
                Scan::Skip(left) => {
                    let n = (*left).min(data.len());
                    *left -= n;
                    data = &data[n..];
                    if *left == 0 {
                        self.scan = Scan::Header {
                            bytes: [0; 5],
                            have: 0,
                        };
                    }
                }
                Scan::Header { bytes, have } => {
                    let n = (5 - *have).min(data.len());
                    bytes[*have..*have + n].copy_from_slice(&data[..n]);
                    *have += n;
                    data = &data[n..];
                    if *have < 5 {
                        continue;
                    }
                    let header = *bytes;
                    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
                    let Some(body) = usize::try_from(length).ok().and_then(|l| l.checked_sub(4))
                    else {
                        self.lose();
                        return;
                    };
                    self.scan = if header[0] != b'T' {
                        if body == 0 {
                            Scan::Header {
                                bytes: [0; 5],
                                have: 0,
                            }
                        } else {
                            Scan::Skip(body)
                        }
                    } else if body > MAX_ROW_DESCRIPTION {
                        self.lose();
                        return;
                    } else {
                        let mut message = Vec::with_capacity(5 + body);
                        message.extend_from_slice(&header);
                        Scan::Collect {
                            message,
                            want: 5 + body,
                        }
                    };
                    if let Scan::Collect { message, want } = &self.scan
                        && message.len() == *want
                    {
                        self.finish_description();
                    }
                }
                Scan::Collect { message, want } => {
                    let n = (*want - message.len()).min(data.len());
                    message.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    if message.len() == *want {
                        self.finish_description();
                    }
                }
            }
        }
    }

    fn finish_description(&mut self) {
        let Scan::Collect { message, .. } = std::mem::replace(
            &mut self.scan,
            Scan::Header {
                bytes: [0; 5],
                have: 0,
            },
        ) else {
            return;
        };
        let mut buffer = BytesMut::from(&message[..]);
        match BackendDecoder::new(Limits::default()).decode(&mut buffer) {
            Ok(Some(BackendMessage::RowDescription(description))) => {
                let types = description.fields.iter().map(|f| f.type_oid).collect();
                self.types
                    .0
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .descriptions
                    .push_back(types);
            }
            _ => self.lose(),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for RowDescriptionTap<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.observe(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for RowDescriptionTap<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(columns: &[(&str, JsonKind)], cells: &[Option<&str>]) -> String {
        let columns: Vec<(String, JsonKind)> =
            columns.iter().map(|(n, k)| ((*n).to_owned(), *k)).collect();
        let mut out = String::new();
        write_row(&mut out, &columns, cells.iter().copied());
        out
    }

    #[test]
    fn values_keep_their_column_type_and_order() {
        use JsonKind::{Boolean, Number, Text};
        assert_eq!(row(&[("one", Number)], &[Some("1")]), "{\"one\":1}");
        assert_eq!(
            row(
                &[("z", Number), ("a", Boolean), ("m", Text), ("n", Number)],
                &[Some("-12.50e+3"), Some("t"), Some("x\"\\\n\u{1}y"), None]
            ),
            "{\"z\":-12.50e+3,\"a\":true,\"m\":\"x\\\"\\\\\\n\\u0001y\",\"n\":null}"
        );
        // Every digit of a numeric survives.
        let big = "123456789012345678901234567890.000000000000000000001";
        assert_eq!(
            row(&[("n", Number)], &[Some(big)]),
            format!("{{\"n\":{big}}}")
        );
        // Repeated names stay, as the database sent them.
        assert_eq!(
            row(&[("a", Number), ("a", Number)], &[Some("1"), Some("2")]),
            "{\"a\":1,\"a\":2}"
        );
    }

    #[test]
    fn text_that_is_not_a_json_number_stays_a_string() {
        for text in [
            "NaN",
            "Infinity",
            "-Infinity",
            "0005",
            "1.",
            ".5",
            "1e",
            "1e+",
            "--1",
            "",
            "-",
            "1 ",
            "[REDACTED:US_SSN]",
            "0x10",
        ] {
            assert!(!is_json_number(text), "{text}");
            assert_eq!(
                row(&[("n", JsonKind::Number)], &[Some(text)]),
                format!("{{\"n\":{}}}", serde_json::Value::from(text)),
            );
        }
        for text in ["0", "-0", "10", "1.5", "1e10", "1E-10", "-0.0e+0"] {
            assert!(is_json_number(text), "{text}");
        }
        // A boolean column's other text is a string too.
        assert_eq!(
            row(&[("b", JsonKind::Boolean)], &[Some("yes")]),
            "{\"b\":\"yes\"}"
        );
    }

    /// A RowDescription for columns of these types, then a DataRow.
    fn server_bytes(types: &[u32]) -> Vec<u8> {
        let mut body = (types.len() as u16).to_be_bytes().to_vec();
        for (index, oid) in types.iter().enumerate() {
            body.extend_from_slice(format!("c{index}\0").as_bytes());
            body.extend_from_slice(&0u32.to_be_bytes());
            body.extend_from_slice(&0i16.to_be_bytes());
            body.extend_from_slice(&oid.to_be_bytes());
            body.extend_from_slice(&4i16.to_be_bytes());
            body.extend_from_slice(&(-1i32).to_be_bytes());
            body.extend_from_slice(&0i16.to_be_bytes());
        }
        let mut out = vec![b'T'];
        out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(b"D\0\0\0\x0b\0\x01\0\0\0\x011");
        out.extend_from_slice(b"Z\0\0\0\x05I");
        out
    }

    #[test]
    fn the_tap_reads_types_across_any_split() {
        let mut stream = b"R\0\0\0\x08\0\0\0\0".to_vec();
        stream.extend(server_bytes(&[23, 16]));
        stream.extend(server_bytes(&[1700]));
        for cut in 0..=stream.len() {
            let types = ColumnTypes::default();
            let mut tap = RowDescriptionTap::new(tokio::io::empty(), types.clone());
            tap.observe(&stream[..cut]);
            tap.observe(&stream[cut..]);
            assert_eq!(types.next(), Some(vec![23, 16]), "cut at {cut}");
            assert_eq!(types.next(), Some(vec![1700]), "cut at {cut}");
            assert_eq!(types.next(), None, "cut at {cut}");
        }
    }

    #[test]
    fn a_stream_the_tap_cannot_follow_gives_no_types() {
        for bad in [
            b"T\0\0\0\x02".to_vec(),
            b"T\x7f\0\0\0".to_vec(),
            b"T\0\0\0\x06\0\x05".to_vec(),
        ] {
            let types = ColumnTypes::default();
            let mut tap = RowDescriptionTap::new(tokio::io::empty(), types.clone());
            tap.observe(&bad);
            tap.observe(&server_bytes(&[23]));
            assert_eq!(types.next(), None, "{bad:?}");
        }
    }
}
