//! Fuzzes MySQL's compressed-protocol reader (CLIENT_COMPRESS): any bytes
//! as a stream of compressed frames.
//!
//! Invariants: no panic; a frame is taken only whole (consumed bytes plus
//! what is left equal the input); an inflated frame never exceeds what a
//! frame may announce; frames hoop writes read back as what was written.
#![no_main]

use bytes::BytesMut;
use hoop_wire::mysql::{Decompressor, compress_frames};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = Decompressor::new();
    let mut buf = BytesMut::from(data);
    let mut consumed = 0;
    loop {
        let before = buf.len();
        match reader.next_frame(&mut buf) {
            Ok(Some((_, plain))) => {
                assert!(plain.len() <= 0xff_ffff);
                consumed += before - buf.len();
            }
            Ok(None) | Err(_) => break,
        }
    }
    assert_eq!(consumed + buf.len(), data.len());

    let mut wire = BytesMut::new();
    compress_frames(&mut wire, 0, data);
    let mut reader = Decompressor::new();
    let mut back = Vec::new();
    while let Some((_, plain)) = reader.next_frame(&mut wire).unwrap() {
        back.extend_from_slice(&plain);
    }
    assert_eq!(back, data);
    assert!(wire.is_empty());
});
