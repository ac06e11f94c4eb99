//! The agent link: the one long-lived connection an agent dials to the
//! gateway, and everything both ends must agree on to use it.
//!
//! ```text
//!  gateway (link server)                                agent (crate::agent)
//!    ^  key check (key)                                    | dial with its key
//!    |<========== frames (frame): control, stream 0 ======>|
//!    |<========== sessions on streams (mux) ==============>|
//!    |            JSON payloads (messages)                  |
//! ```
//!
//! It lives in this library, not in either binary, because both ends speak
//! it: the gateway accepts links and opens sessions on them, the agent dials
//! and serves those sessions, and a fuzzer or a test can drive either end
//! without starting a process. The framing is sans-IO ([`frame`]); the rest
//! is the tokio plumbing over it: reading and writing whole frames
//! ([`FramedLink`], [`recv_frame`], [`send`], [`send_json`], one copy for
//! both ends), multiplexing sessions with flow control ([`mux`]), the
//! control messages ([`messages`]) and the agent's key ([`key`]).
//!
//! What runs a session at the agent's end is [`crate::agent`]; what records
//! it is [`crate::recorder`].

mod conn;
pub mod frame;
pub mod key;
pub mod messages;
pub mod mux;

pub use conn::{
    FramedLink, HANDSHAKE_TIMEOUT, LinkError, LinkIo, LinkTlsError, recv_frame, send, send_json,
};
pub use frame::{Frame, FrameError, FrameKind};
pub use key::{AgentKey, KeyError};
