//! The hoop agent: it sits beside the services it serves, dials the gateway
//! (the gateway never dials it), keeps one long-lived link, and reports
//! whether each of its connections' targets is reachable.
//!
//! The link's framing ([`frame`]) carries stream ids; [`mux`] multiplexes
//! sessions over it with per-stream flow control, and each session runs the
//! protocol driver here, beside the database (`session`). Each session's
//! audit events wait in the [`outbox`] until the gateway says they are
//! stored; in the gateway's own process they also go to the [`journal`].

pub mod agent;
mod exec;
mod exec_mysql;
pub mod frame;
pub mod journal;
pub mod key;
pub mod messages;
pub mod mux;
pub mod outbox;
mod recorder;
mod session;

pub use agent::{AgentConfig, LinkError, run, run_embedded, tls_client_config};
pub use frame::{Frame, FrameError, FrameKind};
pub use key::{AgentKey, KeyError};
pub use recorder::AuditBatch;
pub use session::{InPlaceSession, StartError, cancel, cancel_frame};
