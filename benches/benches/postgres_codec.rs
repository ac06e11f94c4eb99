//! Throughput of the PostgreSQL codec on a realistic server stream.
//!
//! The stream is one large query result as a server sends it: a
//! RowDescription, 20,000 DataRows of mixed widths (integers, short names,
//! emails, long free text, NULLs), CommandComplete and ReadyForQuery, about
//! 7.8 MB. It is built here by hand, independently of the codec's encoder.
//!
//! Measured, per stream, in MB/s and in messages/s:
//! - `naive_framing`: the floor, reading each type byte and length and
//!   splitting the message off, with no checks and no parsing;
//! - `decode_frame`: [`BackendDecoder::decode_frame`], framing with limits;
//! - `decode`: [`BackendDecoder::decode`], framing plus typed parsing;
//! - `decode_reencode`: `decode` then `encode` of every message into one
//!   output buffer, what a proxy that rebuilds every message would do.
//!
//! Every benchmark asserts the message count (and the re-encoding its
//! bytes), so a path that got fast by doing less fails instead.
//!
//! Run: `cargo bench -p hoop-benches --bench postgres_codec`.
//!
//! The four paths are `#[inline(never)]` so that an instruction counter,
//! steadier than wall time on a shared machine, can attribute each one:
//! `valgrind --tool=callgrind --toggle-collect='*decode_reencode*' BENCH --bench --test`
//! counts `decode_reencode` (see `benches/README.md`).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput};
use hoop_wire::postgres::{BackendDecoder, Limits};

const ROWS: usize = 20_000;
/// RowDescription, the rows, CommandComplete and ReadyForQuery.
const MESSAGES: usize = ROWS + 3;

fn message(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.put_u8(tag);
    out.put_u32(u32::try_from(body.len() + 4).unwrap());
    out.put_slice(body);
}

/// A row's cells: text-format values as `SELECT * FROM people` returns them.
fn cells(i: usize) -> Vec<Option<Vec<u8>>> {
    const WORDS: [&str; 8] = [
        "lorem",
        "ipsum",
        "dolor",
        "sit",
        "amet",
        "consectetur",
        "adipiscing",
        "elit",
    ];
    let note = match i % 10 {
        0..=3 => None,
        4..=7 => Some(format!("called on {}: follow up", i % 28 + 1).into_bytes()),
        _ => Some(
            (0..(i % 300) + 40)
                .map(|w| WORDS[(i + w) % WORDS.len()])
                .collect::<Vec<_>>()
                .join(" ")
                .into_bytes(),
        ),
    };
    vec![
        Some(i.to_string().into_bytes()),
        Some(format!("Person {}", i % 977).into_bytes()),
        (!i.is_multiple_of(7)).then(|| format!("person.{i}@example.com").into_bytes()),
        Some(format!("+1 555 {:04}", i % 10_000).into_bytes()),
        Some(if i.is_multiple_of(2) {
            b"t".to_vec()
        } else {
            b"f".to_vec()
        }),
        Some(format!("{}.{:02}", i * 37 % 100_000, i % 100).into_bytes()),
        Some(format!("2026-11-{:02} 12:{:02}:00+00", i % 28 + 1, i % 60).into_bytes()),
        note,
    ]
}

/// The server's side of one large query.
fn stream() -> Bytes {
    let columns: [(&str, u32, i16); 8] = [
        ("id", 23, 4),
        ("name", 25, -1),
        ("email", 25, -1),
        ("phone", 25, -1),
        ("active", 16, 1),
        ("balance", 1700, -1),
        ("created_at", 1184, 8),
        ("note", 25, -1),
    ];
    let mut out = BytesMut::new();
    let mut body = BytesMut::new();
    body.put_u16(u16::try_from(columns.len()).unwrap());
    for (column, (name, type_oid, type_size)) in columns.iter().enumerate() {
        body.put_slice(name.as_bytes());
        body.put_u8(0);
        body.put_u32(16_384);
        body.put_i16(i16::try_from(column + 1).unwrap());
        body.put_u32(*type_oid);
        body.put_i16(*type_size);
        body.put_i32(-1);
        body.put_i16(0);
    }
    message(&mut out, b'T', &body);
    for i in 0..ROWS {
        body.clear();
        let cells = cells(i);
        body.put_u16(u16::try_from(cells.len()).unwrap());
        for cell in cells {
            match cell {
                Some(value) => {
                    body.put_i32(i32::try_from(value.len()).unwrap());
                    body.put_slice(&value);
                }
                None => body.put_i32(-1),
            }
        }
        message(&mut out, b'D', &body);
    }
    message(&mut out, b'C', format!("SELECT {ROWS}\0").as_bytes());
    message(&mut out, b'Z', b"I");
    out.freeze()
}

/// The floor: split messages by their length prefix, trusting everything.
#[inline(never)]
fn naive_framing(buf: &mut BytesMut) -> usize {
    let mut count = 0;
    while buf.len() >= 5 {
        let len = (&buf[1..5]).get_u32() as usize;
        if buf.len() < len + 1 {
            break;
        }
        std::hint::black_box(buf.split_to(len + 1));
        count += 1;
    }
    count
}

#[inline(never)]
fn decode_frame(buf: &mut BytesMut) -> usize {
    let mut decoder = BackendDecoder::new(Limits::default());
    let mut count = 0;
    while let Some(frame) = decoder.decode_frame(buf).unwrap() {
        std::hint::black_box(frame);
        count += 1;
    }
    count
}

#[inline(never)]
fn decode(buf: &mut BytesMut) -> usize {
    let mut decoder = BackendDecoder::new(Limits::default());
    let mut count = 0;
    while let Some(message) = decoder.decode(buf).unwrap() {
        std::hint::black_box(message);
        count += 1;
    }
    count
}

#[inline(never)]
fn decode_reencode(buf: &mut BytesMut, out: &mut BytesMut) -> usize {
    let mut decoder = BackendDecoder::new(Limits::default());
    let mut count = 0;
    while let Some(message) = decoder.decode(buf).unwrap() {
        message.encode(out);
        count += 1;
    }
    count
}

fn bench(c: &mut Criterion) {
    let stream = stream();
    eprintln!(
        "postgres_codec: a stream of {} bytes in {MESSAGES} messages",
        stream.len()
    );

    // Check every path once before timing any.
    assert_eq!(naive_framing(&mut BytesMut::from(&stream[..])), MESSAGES);
    assert_eq!(decode_frame(&mut BytesMut::from(&stream[..])), MESSAGES);
    assert_eq!(decode(&mut BytesMut::from(&stream[..])), MESSAGES);
    let mut out = BytesMut::with_capacity(stream.len());
    assert_eq!(
        decode_reencode(&mut BytesMut::from(&stream[..]), &mut out),
        MESSAGES
    );
    assert_eq!(out, stream, "re-encoding must reproduce the stream");

    let fresh = || BytesMut::from(&stream[..]);
    for (unit, throughput) in [
        ("bytes", Throughput::BytesDecimal(stream.len() as u64)),
        ("messages", Throughput::Elements(MESSAGES as u64)),
    ] {
        let mut group = c.benchmark_group(format!("postgres_codec/{unit}"));
        group.throughput(throughput);
        group.sample_size(20);
        group.bench_function("naive_framing", |b| {
            b.iter_batched_ref(
                fresh,
                |buf| assert_eq!(naive_framing(buf), MESSAGES),
                BatchSize::LargeInput,
            );
        });
        group.bench_function("decode_frame", |b| {
            b.iter_batched_ref(
                fresh,
                |buf| assert_eq!(decode_frame(buf), MESSAGES),
                BatchSize::LargeInput,
            );
        });
        group.bench_function("decode", |b| {
            b.iter_batched_ref(
                fresh,
                |buf| assert_eq!(decode(buf), MESSAGES),
                BatchSize::LargeInput,
            );
        });
        group.bench_function("decode_reencode", |b| {
            let mut out = BytesMut::with_capacity(stream.len());
            b.iter_batched_ref(
                fresh,
                |buf| {
                    out.clear();
                    assert_eq!(decode_reencode(buf, &mut out), MESSAGES);
                    assert_eq!(out.len(), stream.len());
                },
                BatchSize::LargeInput,
            );
        });
        group.finish();
    }
}

// What criterion_group!/criterion_main! expand to, without the undocumented
// public function they generate.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
