//! Which columns each DataRow has, and where a refusal's ErrorResponse goes,
//! when a policy is on.
//!
//! The extended protocol sends rows without a RowDescription in the same
//! round trip: the client may Describe the statement (its description says
//! text for every column, whatever Bind asks later), Describe the portal, or
//! not describe at all. So hoop tracks every request the server will answer,
//! in order:
//!
//! ```text
//! client: Parse(S) [Describe S: hoop's own] Bind(P <- S, formats) Execute(P) Sync
//! server: ParseComplete [t, T: swallowed]  BindComplete            D.. C       Z
//!                           └─ statements[S] ─┘ portals[P] = (S, formats) ─┘ rows masked by portals[P]
//! ```
//!
//! After each Parse, hoop sends a Describe of that statement in the same
//! batch (no extra round trip) and keeps its answer to itself, so every
//! statement's columns are known. Bind's result formats then give the
//! portal's. A row whose columns are still unknown ends the session: fail
//! closed rather than forward it unmasked.
//!
//! Errors follow the protocol's error-until-Sync rule: after an
//! ErrorResponse in the extended protocol the server skips to the next Sync,
//! and so does this tracker. A refused Parse or Bind is dropped, the rest of
//! the client's batch is discarded up to its Sync, and the refusal's
//! ErrorResponse goes to the client in the place of the server's answers to
//! the refused message.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::{BufMut, Bytes};
use hoop_wire::event::{CellFormat, Column, Event};
use hoop_wire::postgres::tags::{backend, frontend};
use hoop_wire::postgres::{Bind, FrontendMessage, backend_event};

/// Requests awaiting answers. Clients pipeline, but a session whose server
/// owes this many answers is flooding hoop's memory; past the cap it ends.
const MAX_PENDING: usize = 65_536;

/// Statements and portals tracked per session, past which the session ends:
/// each costs hoop a copy of its columns.
const MAX_NAMED: usize = 16_384;

/// Describe's and Close's target kind for a prepared statement.
const STATEMENT: u8 = b'S';

/// Columns of a statement or portal; `None` when it returns no rows.
type Shape = Option<Arc<[Column]>>;

/// A portal's columns: its statement's, with the result formats its Bind
/// asked for (applied when its first row is shown, so a Bind costs no copy),
/// or as the client's Describe of the portal reported them (`None`: formats
/// already right).
type PortalShape = Option<(Arc<[Column]>, Option<Vec<i16>>)>;

/// A request the server will answer, in order.
#[derive(Debug)]
enum Pending {
    /// A simple Query or FunctionCall: answered up to its ReadyForQuery.
    Query,
    Sync,
    Parse,
    /// A Describe of a statement; `hidden` when hoop sent it on its own.
    DescribeStatement {
        name: Bytes,
        hidden: bool,
    },
    DescribePortal {
        name: Bytes,
    },
    Bind {
        portal: Bytes,
        statement: Bytes,
        formats: Vec<i16>,
    },
    Execute {
        portal: Bytes,
        announced: bool,
    },
    Close {
        kind: u8,
        name: Bytes,
    },
    /// A refusal's ErrorResponse, sent when everything before it was.
    Refused(Bytes),
}

/// What the codec does with a server message.
#[derive(Debug)]
pub(super) enum ServerStep {
    /// Forward it (through the hook if it is interested).
    Forward,
    /// Forward it as it is: the answer to the client's own Describe, whose
    /// columns the hook sees with the rows they describe.
    Tracked,
    /// Keep it from the client: the answer to hoop's own Describe.
    Swallow,
    /// A DataRow of an extended-protocol Execute: show the hook these
    /// columns first (once per Execute), then the row.
    Row(Option<Vec<Column>>),
    /// A DataRow no tracked request explains, or of unknown columns.
    Unknown,
}

/// The per-session tracker.
#[derive(Debug, Default)]
pub(super) struct Results {
    pending: VecDeque<Pending>,
    statements: HashMap<Bytes, Shape>,
    portals: HashMap<Bytes, PortalShape>,
    /// Discarding the client's messages up to its next Sync, after a refusal.
    skipping: bool,
}

/// The tracker's state is beyond its caps.
#[derive(Debug)]
pub(super) struct Overflow;

impl Results {
    /// True while the client's messages up to its next Sync are discarded.
    pub(super) fn skipping(&self) -> bool {
        self.skipping
    }

    /// Notes a client message forwarded to the server. Appends hoop's own
    /// Describe after a Parse to `output`.
    pub(super) fn client_message(
        &mut self,
        message: &FrontendMessage,
        output: &mut Vec<u8>,
    ) -> Result<(), Overflow> {
        match message {
            FrontendMessage::Sync => {
                self.skipping = false;
                self.push(Pending::Sync)?;
            }
            FrontendMessage::Parse(parse) => {
                self.push(Pending::Parse)?;
                describe_statement(&parse.name, output);
                self.push(Pending::DescribeStatement {
                    name: parse.name.clone(),
                    hidden: true,
                })?;
            }
            FrontendMessage::Describe(d) if d.kind == STATEMENT => {
                self.push(Pending::DescribeStatement {
                    name: d.name.clone(),
                    hidden: false,
                })?;
            }
            FrontendMessage::Describe(d) => self.push(Pending::DescribePortal {
                name: d.name.clone(),
            })?,
            FrontendMessage::Bind(bind) => self.push(bind_pending(bind))?,
            FrontendMessage::Execute(e) => self.push(Pending::Execute {
                portal: e.portal.clone(),
                announced: false,
            })?,
            FrontendMessage::Close(c) => self.push(Pending::Close {
                kind: c.kind,
                name: c.name.clone(),
            })?,
            _ => {}
        }
        Ok(())
    }

    /// Notes a simple Query or a FunctionCall: answered up to its
    /// ReadyForQuery.
    pub(super) fn request(&mut self) -> Result<(), Overflow> {
        self.push(Pending::Query)
    }

    /// A statement refused in place. `extended`: a Parse or Bind, after
    /// which the client's batch is discarded up to its Sync. A simple Query's
    /// caller sends a Sync in its place (noted with
    /// [`client_message`](Self::client_message)) whose ReadyForQuery follows
    /// the error.
    pub(super) fn refuse(&mut self, error: Bytes, extended: bool) -> Result<(), Overflow> {
        self.skipping = extended;
        self.push(Pending::Refused(error))
    }

    /// Appends the refusals now at the front of the queue (everything the
    /// client asked before them has been answered).
    pub(super) fn release(&mut self, output: &mut Vec<u8>) {
        while let Some(Pending::Refused(error)) = self.pending.front() {
            output.extend_from_slice(error);
            self.pending.pop_front();
        }
    }

    /// Notes a server message with `tag`; `parse` gives its event when the
    /// tracker needs its content (RowDescription).
    pub(super) fn server_message(
        &mut self,
        tag: u8,
        parse: impl FnOnce() -> Option<Event>,
    ) -> Result<ServerStep, Overflow> {
        let step = match tag {
            backend::DATA_ROW => return Ok(self.row()),
            backend::PARSE_COMPLETE | backend::CLOSE_COMPLETE => {
                if let Some(Pending::Close { kind, name }) = self.front_then_pop() {
                    if kind == STATEMENT {
                        self.statements.remove(&name);
                    } else {
                        self.portals.remove(&name);
                    }
                }
                ServerStep::Forward
            }
            backend::BIND_COMPLETE => {
                if let Some(Pending::Bind {
                    portal,
                    statement,
                    formats,
                }) = self.front_then_pop()
                {
                    let shape = self.statements.get(&statement).cloned().flatten();
                    self.name_portal(portal, shape.map(|columns| (columns, Some(formats))))?;
                }
                ServerStep::Forward
            }
            backend::PARAMETER_DESCRIPTION => match self.pending.front() {
                Some(Pending::DescribeStatement { hidden: true, .. }) => ServerStep::Swallow,
                _ => ServerStep::Forward,
            },
            backend::ROW_DESCRIPTION | backend::NO_DATA => match self.pending.front() {
                Some(Pending::DescribeStatement { .. } | Pending::DescribePortal { .. }) => {
                    let shape = match parse() {
                        Some(Event::Columns { columns }) => Some(Arc::from(columns)),
                        _ => None,
                    };
                    match self.front_then_pop() {
                        Some(Pending::DescribeStatement { name, hidden }) => {
                            self.name_statement(name, shape)?;
                            if hidden {
                                ServerStep::Swallow
                            } else {
                                ServerStep::Tracked
                            }
                        }
                        Some(Pending::DescribePortal { name }) => {
                            self.name_portal(name, shape.map(|columns| (columns, None)))?;
                            ServerStep::Tracked
                        }
                        _ => ServerStep::Tracked,
                    }
                }
                _ => ServerStep::Forward,
            },
            backend::COMMAND_COMPLETE
            | backend::EMPTY_QUERY_RESPONSE
            | backend::PORTAL_SUSPENDED => {
                if matches!(self.pending.front(), Some(Pending::Execute { .. })) {
                    self.pending.pop_front();
                }
                ServerStep::Forward
            }
            backend::ERROR_RESPONSE => {
                // The server skips the rest of an extended batch to its Sync;
                // so do the answers (and refusals) expected for it.
                if !matches!(self.pending.front(), Some(Pending::Query) | None) {
                    while !matches!(
                        self.pending.front(),
                        Some(Pending::Sync | Pending::Query) | None
                    ) {
                        self.pending.pop_front();
                    }
                }
                ServerStep::Forward
            }
            backend::READY_FOR_QUERY => {
                while let Some(p) = self.pending.pop_front() {
                    if matches!(p, Pending::Sync | Pending::Query) {
                        break;
                    }
                }
                ServerStep::Forward
            }
            _ => ServerStep::Forward,
        };
        Ok(step)
    }

    fn row(&mut self) -> ServerStep {
        match self.pending.front_mut() {
            Some(Pending::Query) => ServerStep::Forward,
            Some(Pending::Execute { portal, announced }) => {
                let first = !*announced;
                *announced = true;
                match self.portals.get(portal) {
                    Some(Some((columns, formats))) => {
                        ServerStep::Row(first.then(|| match formats {
                            Some(formats) => with_formats(columns, formats),
                            None => columns.to_vec(),
                        }))
                    }
                    _ => ServerStep::Unknown,
                }
            }
            _ => ServerStep::Unknown,
        }
    }

    fn front_then_pop(&mut self) -> Option<Pending> {
        match self.pending.front() {
            Some(Pending::Query | Pending::Sync | Pending::Refused(_)) | None => None,
            Some(_) => self.pending.pop_front(),
        }
    }

    fn push(&mut self, pending: Pending) -> Result<(), Overflow> {
        if self.pending.len() >= MAX_PENDING {
            return Err(Overflow);
        }
        self.pending.push_back(pending);
        Ok(())
    }

    fn name_statement(&mut self, name: Bytes, shape: Shape) -> Result<(), Overflow> {
        if self.statements.len() >= MAX_NAMED && !self.statements.contains_key(&name) {
            return Err(Overflow);
        }
        self.statements.insert(name, shape);
        Ok(())
    }

    fn name_portal(&mut self, name: Bytes, shape: PortalShape) -> Result<(), Overflow> {
        if self.portals.len() >= MAX_NAMED && !self.portals.contains_key(&name) {
            return Err(Overflow);
        }
        self.portals.insert(name, shape);
        Ok(())
    }
}

fn bind_pending(bind: &Bind) -> Pending {
    Pending::Bind {
        portal: bind.portal.clone(),
        statement: bind.statement.clone(),
        formats: bind.result_formats.clone(),
    }
}

/// A statement's columns with the result formats a Bind asked for (none:
/// all text; one: all that; else one per column).
fn with_formats(columns: &[Column], formats: &[i16]) -> Vec<Column> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let code = match formats {
                [] => 0,
                [one] => *one,
                many => many.get(i).copied().unwrap_or(0),
            };
            Column {
                format: if code == 1 {
                    CellFormat::Binary
                } else {
                    CellFormat::Text
                },
                ..c.clone()
            }
        })
        .collect()
}

/// Appends a Describe of statement `name`.
fn describe_statement(name: &Bytes, output: &mut Vec<u8>) {
    // Length counts itself (4), the kind byte and the NUL-terminated name.
    let len = 4 + 1 + name.len() + 1;
    output.put_u8(frontend::DESCRIBE);
    output.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    output.put_u8(STATEMENT);
    output.extend_from_slice(name);
    output.put_u8(0);
}

/// The event a backend message stands for, parsed from its frame.
pub(super) fn columns_of(frame: &hoop_wire::postgres::Frame) -> Option<Event> {
    hoop_wire::postgres::BackendMessage::parse(frame)
        .ok()
        .and_then(|m| backend_event(&m))
}
