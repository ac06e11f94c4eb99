//! What watching a client's stream costs ([`SessionStream`]: framing
//! followed both ways, whole messages written, the start of one held
//! back), against writing the same bytes to the same socket directly.
//!
//! ```text
//! cargo bench -p hoop-gateway --bench session_stream
//! ```
//!
//! - `pg_point_select`: one pgbench `-S` answer (RowDescription, DataRow,
//!   CommandComplete, ReadyForQuery) per write, its query read before it:
//!   the per-statement cost;
//! - `pg_rows` and `my_rows`: 1 MiB of 300-byte rows written in 32 KiB
//!   chunks, as link frames bring them (rows straddle the chunks, so the
//!   hold-back path runs on every chunk).
//!
//! The socket is a sink that takes everything at once; each benchmark
//! checks that every byte reached it.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use criterion::{BenchmarkId, Criterion, Throughput};
use hoop_gateway::session_stream::{Protocol, SessionStream, Start};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A socket that takes every write whole and has `input` to read.
#[derive(Default)]
struct Sink {
    written: usize,
    input: Vec<u8>,
}

impl AsyncWrite for Sink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.written += buf.len();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Sink {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        buf.put_slice(&self.input);
        Poll::Ready(Ok(()))
    }
}

/// Writes `chunk` whole (as `write_all` would), then flushes.
fn write_all<S: AsyncWrite + Unpin>(stream: &mut S, mut chunk: &[u8]) {
    let mut cx = Context::from_waker(Waker::noop());
    while !chunk.is_empty() {
        match Pin::new(&mut *stream).poll_write(&mut cx, chunk) {
            Poll::Ready(Ok(n)) => chunk = &chunk[n..],
            other => panic!("the sink took nothing: {other:?}"),
        }
    }
    assert!(Pin::new(&mut *stream).poll_flush(&mut cx).is_ready());
}

fn read_once<S: AsyncRead + Unpin>(stream: &mut S, into: &mut [u8]) {
    let mut cx = Context::from_waker(Waker::noop());
    let mut buf = ReadBuf::new(into);
    assert!(Pin::new(stream).poll_read(&mut cx, &mut buf).is_ready());
}

fn pg_message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn mysql_packet(seq: u8, body: &[u8]) -> Vec<u8> {
    let length = body.len() as u32;
    let mut out = vec![length as u8, (length >> 8) as u8, (length >> 16) as u8, seq];
    out.extend_from_slice(body);
    out
}

/// 1 MiB (about) of 300-byte rows of `protocol`, cut in 32 KiB chunks.
fn rows(protocol: Protocol) -> Vec<Vec<u8>> {
    let value = vec![b'x'; 295];
    let mut stream = Vec::new();
    let mut seq = 1u8;
    while stream.len() < 1 << 20 {
        match protocol {
            Protocol::Postgres => {
                let mut body = vec![0, 1];
                body.extend_from_slice(&(value.len() as u32).to_be_bytes());
                body.extend_from_slice(&value);
                stream.extend(pg_message(b'D', &body));
            }
            Protocol::Mysql => {
                let mut body = vec![0xfc, value.len() as u8, (value.len() >> 8) as u8];
                body.extend_from_slice(&value);
                stream.extend(mysql_packet(seq, &body));
                seq = seq.wrapping_add(1);
            }
        }
    }
    stream.chunks(32 * 1024).map(<[u8]>::to_vec).collect()
}

fn benches(c: &mut Criterion) {
    let query = pg_message(
        b'Q',
        b"SELECT abalance FROM pgbench_accounts WHERE aid = 4242;\0",
    );
    let answer: Vec<u8> = [
        pg_message(
            b'T',
            b"\0\x01abalance\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0",
        ),
        pg_message(b'D', b"\0\x01\0\0\0\x04-123"),
        pg_message(b'C', b"SELECT 1\0"),
        pg_message(b'Z', b"I"),
    ]
    .concat();
    let mut group = c.benchmark_group("pg_point_select");
    group.throughput(Throughput::Elements(1));
    let mut read = vec![0u8; 256];
    group.bench_function("direct", |b| {
        let mut sink = Sink {
            input: query.clone(),
            ..Sink::default()
        };
        b.iter(|| {
            read_once(&mut sink, &mut read);
            write_all(&mut sink, &answer);
        });
        assert_eq!(sink.written % answer.len(), 0);
    });
    group.bench_function("watched", |b| {
        let sink = Sink {
            input: query.clone(),
            ..Sink::default()
        };
        let mut stream = SessionStream::new(sink, Protocol::Postgres, Start::LoggedIn, None);
        b.iter(|| {
            read_once(&mut stream, &mut read);
            write_all(&mut stream, &answer);
        });
        assert_eq!(stream.get_ref().written % answer.len(), 0);
    });
    group.finish();

    for (name, protocol) in [
        ("pg_rows", Protocol::Postgres),
        ("my_rows", Protocol::Mysql),
    ] {
        let chunks = rows(protocol);
        let total: usize = chunks.iter().map(Vec::len).sum();
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(total as u64));
        group.bench_function(BenchmarkId::new("direct", total), |b| {
            b.iter(|| {
                let mut sink = Sink::default();
                for chunk in &chunks {
                    write_all(&mut sink, chunk);
                }
                assert_eq!(sink.written, total);
            });
        });
        group.bench_function(BenchmarkId::new("watched", total), |b| {
            b.iter(|| {
                let mut stream =
                    SessionStream::new(Sink::default(), protocol, Start::LoggedIn, None);
                for chunk in &chunks {
                    write_all(&mut stream, chunk);
                }
                // The rows end whole: nothing is left held back.
                assert_eq!(stream.get_ref().written, total);
            });
        });
        group.finish();
    }
}

// What criterion_group!/criterion_main! expand to, without the undocumented
// public function they generate.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}
