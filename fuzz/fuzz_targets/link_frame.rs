//! Fuzzes the agent link's frame decoder (`hoop_proxy::link::Frame`) and
//! the multiplexer that routes what it decodes (`hoop_proxy::link::mux`):
//! the bytes a hostile agent, or a hostile gateway, can put on the link.
//!
//! Input layout (the seeds from `fuzz/seed_link.py` follow it):
//!
//! ```text
//! bytes 0-1  split point, little endian, modulo the data length + 1
//! bytes 2..  the link's byte stream
//! ```
//!
//! The stream is decoded twice, whole and in two pieces cut at the split
//! point. Invariants:
//! - no panic, and every call makes progress: a frame consumes exactly its
//!   header and payload, "need more" and an error consume nothing;
//! - an error is `TooLarge` with the length the header announced, and only
//!   when that length is over `MAX_PAYLOAD`;
//! - every frame re-encodes to exactly the bytes it consumed (unknown kinds
//!   keep their byte), and the frames are the stream cut in order;
//! - both feedings give the same frames and the same error.
//!
//! The frames then go to a `Mux` with streams 1, 2 and 3 open, as the link
//! reader hands them over. What each stream's receiver gets must match a
//! model of the flow control: `DATA` in order while the peer stays within
//! its window (never more than `WINDOW` bytes unacknowledged), a `Close`
//! with the flow-control reason as soon as it does not, the peer's `CLOSE`
//! payload when it closes, and nothing after a close.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use hoop_proxy::link::frame::{HEADER_LEN, MAX_PAYLOAD};
use hoop_proxy::link::mux::{Inbound, Mux, StreamReceiver, WINDOW};
use hoop_proxy::link::{Frame, FrameError, FrameKind};
use libfuzzer_sys::fuzz_target;

/// Streams opened before the frames arrive.
const OPEN_STREAMS: [u32; 3] = [1, 2, 3];

/// Decodes `pieces` fed one after the other; returns the frames and the
/// error that ended the stream, checking progress and exact re-encoding
/// against the stream itself (no copy of the buffer per call: inputs reach
/// hundreds of KiB, to cross a window).
fn decode(pieces: &[&[u8]]) -> (Vec<Frame>, Option<FrameError>) {
    let stream: Vec<u8> = pieces.concat();
    let mut buffer = BytesMut::new();
    let mut frames = Vec::new();
    // Bytes of `stream` taken as frames, and bytes fed so far.
    let mut taken = 0;
    let mut fed = 0;
    for piece in pieces {
        buffer.extend_from_slice(piece);
        fed += piece.len();
        loop {
            let held = buffer.len();
            match Frame::decode(&mut buffer) {
                Ok(Some(frame)) => {
                    let used = held - buffer.len();
                    assert_eq!(used, HEADER_LEN + frame.payload.len());
                    let mut encoded = BytesMut::new();
                    frame.encode(&mut encoded).expect("a decoded frame encodes");
                    assert_eq!(
                        &encoded[..],
                        &stream[taken..taken + used],
                        "re-encoding differs"
                    );
                    taken += used;
                    frames.push(frame);
                }
                Ok(None) => {
                    assert_eq!(buffer.len(), held, "need more consumed bytes");
                    if held >= HEADER_LEN {
                        let len = header_len(&stream[taken..]);
                        assert!(held < HEADER_LEN + len, "a whole frame was held back");
                    }
                    // What is held back is the rest of the stream, as fed.
                    assert_eq!(
                        &buffer[..],
                        &stream[taken..fed],
                        "the buffer is not the rest"
                    );
                    break;
                }
                Err(error) => {
                    assert_eq!(buffer.len(), held, "an error consumed bytes");
                    let len = header_len(&stream[taken..]);
                    assert!(len > MAX_PAYLOAD);
                    assert_eq!(error, FrameError::TooLarge(len));
                    return (frames, Some(error));
                }
            }
        }
    }
    (frames, None)
}

/// The payload length a frame header at the start of `bytes` announces.
fn header_len(bytes: &[u8]) -> usize {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize
}

/// What stream `id`'s receiver must get for `frames`, by the window rules.
fn model(id: u32, frames: &[Frame]) -> Vec<Inbound> {
    let mut expected = Vec::new();
    let mut unacked: u64 = 0;
    for frame in frames.iter().filter(|f| f.stream == id) {
        match frame.kind {
            FrameKind::Data => {
                unacked += frame.payload.len() as u64;
                if unacked > u64::from(WINDOW) {
                    expected.push(Inbound::Close(Bytes::from_static(
                        b"the peer exceeded its flow-control window",
                    )));
                    return expected;
                }
                expected.push(Inbound::Data(frame.payload.clone()));
            }
            FrameKind::Close => {
                expected.push(Inbound::Close(frame.payload.clone()));
                return expected;
            }
            _ => {}
        }
    }
    expected
}

/// Everything queued for `receiver`, without a runtime: the queue is
/// filled synchronously by `dispatch`, so each `recv` is ready at once or
/// the queue is empty (pending while the mux lives).
fn drain(receiver: &mut StreamReceiver) -> Vec<Inbound> {
    let mut context = Context::from_waker(Waker::noop());
    let mut got = Vec::new();
    loop {
        let next = pin!(receiver.recv());
        match next.poll(&mut context) {
            Poll::Ready(Some(item)) => got.push(item),
            Poll::Ready(None) | Poll::Pending => return got,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let stream = &data[2..];
    let split = usize::from(u16::from_le_bytes([data[0], data[1]])) % (stream.len() + 1);

    let (frames, error) = decode(&[stream]);
    let (split_frames, split_error) = decode(&[&stream[..split], &stream[split..]]);
    assert_eq!(frames, split_frames, "a split changed the frames");
    assert_eq!(error, split_error, "a split changed the error");

    // Room for every WINDOW frame the receivers send back while draining.
    let (outbound, _queue) = tokio::sync::mpsc::channel(frames.len() + OPEN_STREAMS.len() + 1);
    let mux = Mux::new(outbound);
    let mut receivers: Vec<(u32, StreamReceiver)> = OPEN_STREAMS
        .iter()
        .map(|&id| (id, mux.register(id).expect("a fresh stream id").1))
        .collect();
    for frame in &frames {
        mux.dispatch(frame.clone());
    }
    for (id, receiver) in &mut receivers {
        let expected = model(*id, &frames);
        let closed = matches!(expected.last(), Some(Inbound::Close(_)));
        assert_eq!(drain(receiver), expected, "stream {id}");
        assert_eq!(mux.contains(*id), !closed, "stream {id} open after close");
    }
});
