//! Masking and guardrail policy over protocol-neutral events.
//!
//! This crate knows no wire protocol and does no I/O, reads no clock and keeps no globals:
//! it decides what a cell becomes and whether a statement may run. A protocol driver (the
//! PostgreSQL and MySQL session drivers in `hoop-proxy`) turns its messages into the calls
//! below and the answers back into its own messages.
//!
//! ```text
//! policy.json ──Policy::from_json──► Policy ──compile──► CompiledPolicy (Arc; Send + Sync; clone per session)
//!                                                           │
//!   statement text ──check_statement(sql, Dialect)──────────┼──► Verdict::Allow | Deny(rule, message)
//!   columns (name, table, ValueKind) ──plan──► ResultPlan   │      (once per result set)
//!   cell bytes ──CellMasker::mask_cell(plan, i, cell, out)──┴──► Unchanged | Replaced (in out) | Null
//!   array element, record field ──CellMasker::mask_part(plan, i, part, kind, out)──► the same
//!   row ──check_row──► Verdict            CellMasker::counts ──► masked values per entity, for the recorder
//!   statement text, for the audit record ──redact_credentials(sql, Dialect)──► CellMasker::mask_text
//!     (redact_statement also returns the Secrets it replaced: Secrets::scrub hides them in the error message)
//!   document ──CellMasker::mask_document──► masked in place, fields by path (masking.fields rules)
//!   JSON body ──CellMasker::mask_json──► escapes decoded, values masked, written back as JSON
//!   stream chunk ──CellMasker::mask_stream(TextStream)──► whole lines released, masked
//!   command, HTTP request line ──check_command / check_request──► Verdict (every reading)
//! ```
//!
//! The hot path is [`CellMasker::mask_cell`]: a cell holding nothing sensitive (most cells)
//! is rejected by one pass of SIMD compares, with no allocation and no copy; any cell costs
//! time linear in its length, and one past `masking.max_cell_bytes` is masked whole. The
//! crate README has the policy schema and measured costs.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod columns;
mod compiled;
mod content;
mod detect;
mod entity;
mod error;
mod executed;
mod guardrails;
mod lexer;
mod literal;
mod masker;
mod policy;
mod secrets;
mod statement;
mod transform;

pub use columns::{ColumnInfo, ColumnTreatment, ResultPlan, ValueKind};
pub use compiled::CompiledPolicy;
pub use content::{FieldPath, MAX_DEPTH, STREAM_OVERLAP, TextStream};
pub use detect::Detection;
pub use entity::{EntityId, EntityType};
pub use error::{PolicyError, PolicyErrorKind};
pub use guardrails::{Denial, Verdict};
pub use lexer::Dialect;
pub use masker::{CellMasker, CellOutcome};
pub use policy::{
    ColumnAction, ColumnRule, CustomEntity, DEFAULT_MAX_CELL_BYTES, FieldRule, GuardrailConfig,
    InputRule, MaskingConfig, OutputRule, Policy, StatementKind, Transform,
};
pub use secrets::Secrets;
pub use statement::{REDACTED_PASSWORD, RedactedStatement, redact_credentials, redact_statement};
