//! Masking and guardrail policy over protocol-neutral events.
//!
//! This crate knows no wire protocol and does no I/O: it decides what a cell
//! becomes and whether a statement may run.
