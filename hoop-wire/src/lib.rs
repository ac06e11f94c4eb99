//! Sans-IO codecs for database wire protocols.
//!
//! ```text
//!  bytes from a socket ──► Decoder::decode_frame ──► Frame (original bytes kept)
//!                                   │                      │
//!                                   ▼                      ▼
//!                         Message::parse          forward verbatim
//!                                   │
//!                                   ▼
//!                       protocol-neutral Event ──► policy (hoop-masking)
//!                                   │
//!                                   ▼
//!                       Message::encode ──► bytes to the other peer
//! ```
//!
//! This crate does no I/O, spawns nothing, reads no clock and knows no policy:
//! it turns bytes into typed messages and back, exactly. Decoders are
//! incremental (feed whatever arrived; any split of a stream gives the same
//! messages), never panic on input, never allocate from an unchecked length,
//! and fail closed with a typed [`DecodeError`] carrying the stream offset.
//!
//! One module per protocol; [`postgres`] is the first.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod error;
pub mod event;
pub mod mysql;
pub mod postgres;
mod reader;

pub use error::DecodeError;

/// The workspace README's Rust examples, compiled and run as doctests so the
/// README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
pub use event::{CellFormat, Column, Event};
