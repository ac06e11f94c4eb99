//! A client's stream during a session, watched closely enough that the
//! gateway can still end the session with an error the client reads: when
//! the agent serving it goes away, or when the person's access is taken
//! away ([`crate::live`]).
//!
//! The bytes to the client are the agent's driver's, relayed in whatever
//! chunks the link carried, so the client may be in the middle of a
//! message (a row) when the session must end; an error appended there is
//! read as the rest of the row (libmariadb: `ERROR 2027 Received malformed
//! packet`). So the stream follows the protocol's framing (lengths only,
//! never contents) in both directions and writes to the client only whole
//! messages, holding back the start of one until its end arrives (up to
//! [`HOLD_LIMIT`]; a longer message passes as it comes, and a session
//! ending inside it closes without a word). At a message boundary the
//! error can always go out:
//!
//! ```text
//!  PostgreSQL  ErrorResponse (FATAL): libpq reads one between any two
//!              messages, in a result or idle
//!  MySQL       ERR with the sequence id the client expects next: after
//!              its command (the command's id + 1); inside a response
//!              (the last packet's id + 1); idle after a response (1, the
//!              answer to its next command, whose id is 0)
//! ```
//!
//! Whether a MySQL response has ended is read from its last packet's first
//! bytes: ERR, or an OK/EOF without "more results". A row that starts like
//! an OK (a first column of `''`, a binary row) reads as an end; the
//! client then finds the id out of order and reports a lost connection
//! instead of the message, which is still not a malformed packet.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use hoop_wire::mysql::{ErrPacket, ServerMessage, encode_packet, status};
use hoop_wire::postgres::tags::startup;
use hoop_wire::postgres::{BackendMessage, Notice};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

/// The most bytes of one unfinished message held back from the client. A
/// row longer than this (rare; a session's usual rows are far shorter)
/// passes as it comes. Bounds what a session can make the gateway hold.
pub const HOLD_LIMIT: usize = 64 * 1024;

/// How long the error that ends a session may take to reach a client that
/// does not read; then the connection is closed anyway.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(5);

/// The protocol a session's client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// PostgreSQL's frontend/backend protocol 3.
    Postgres,
    /// MySQL's client/server protocol 4.1.
    Mysql,
}

impl Protocol {
    /// The protocol of a connection's subtype; `None` for those sessions
    /// do not serve.
    pub fn of_subtype(subtype: &str) -> Option<Self> {
        match subtype {
            "postgres" => Some(Self::Postgres),
            "mysql" => Some(Self::Mysql),
            _ => None,
        }
    }
}

/// Where the conversation is when the stream starts to be watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At the client's first byte: `hoop connect`'s tunnel and handoff,
    /// where the agent's driver answers the startup or greeting.
    Fresh,
    /// After a login the gateway's listener did: the next byte to the
    /// client starts a message, and (MySQL) the last packet was an OK.
    LoggedIn,
}

/// An error for the client in its protocol.
#[derive(Debug, Clone, Copy)]
pub struct Farewell<'a> {
    /// PostgreSQL's SQLSTATE.
    pub sqlstate: &'a str,
    /// MySQL's error code.
    pub mysql_code: u16,
    /// MySQL's SQLSTATE.
    pub mysql_state: &'a [u8; 5],
    /// What the client shows.
    pub message: &'a str,
}

impl<'a> Farewell<'a> {
    /// The session was ended by the gateway, its access withdrawn:
    /// PostgreSQL's admin_shutdown (as `pg_terminate_backend`), MariaDB's
    /// ER_CONNECTION_KILLED (as hoop's driver ends a session).
    pub fn ended_by_gateway(message: &'a str) -> Self {
        let (mysql_code, mysql_state) = hoop_proxy::mysql::error::SESSION_ENDED;
        Self {
            sqlstate: "57P01",
            mysql_code,
            mysql_state,
            message,
        }
    }

    /// The agent serving the session went away: PostgreSQL's
    /// connection_failure; MySQL's ER_NET_READ_ERROR (08S01, a
    /// communication failure). Not a code of 2000 and up, such as
    /// CR_CONNECTION_ERROR: libmariadb takes an ERR carrying one of its
    /// own client codes for a malformed packet (`ERROR 2027`).
    pub fn agent_gone(message: &'a str) -> Self {
        let (mysql_code, mysql_state) = hoop_proxy::mysql::error::PROTOCOL_VIOLATION;
        Self {
            sqlstate: "08006",
            mysql_code,
            mysql_state,
            message,
        }
    }
}

/// Whether the session must end, and why: the sending side is held by
/// [`crate::live`]; `None` until then.
pub type EndSignal = watch::Receiver<Option<Arc<str>>>;

/// The client's stream, framed as described in the module docs.
pub struct SessionStream<S> {
    inner: S,
    framing: Framing,
    /// Bytes taken from the writer and not yet written to the client:
    /// whole messages first (`sendable` bytes of them), then the start of
    /// one.
    held: BytesMut,
    sendable: usize,
    /// A message longer than [`HOLD_LIMIT`] is passing: the client is
    /// inside it until it ends.
    passing: bool,
    end: Option<EndWatch>,
    ending: Option<Ending>,
}

impl<S> std::fmt::Debug for SessionStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStream")
            .field("held", &self.held.len())
            .field("passing", &self.passing)
            .field("ending", &self.ending.is_some())
            .finish_non_exhaustive()
    }
}

struct EndWatch {
    signal: EndSignal,
    fired: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl EndWatch {
    fn new(signal: EndSignal) -> Self {
        let mut waiting = signal.clone();
        Self {
            signal,
            fired: Box::pin(async move {
                if waiting.wait_for(Option::is_some).await.is_err() {
                    // The registry is gone: nothing will end the session.
                    std::future::pending::<()>().await;
                }
            }),
        }
    }
}

/// A session being ended: the bytes still to write (whole messages held,
/// then the error), and how long they may take.
struct Ending {
    out: BytesMut,
    shut: bool,
    deadline: Pin<Box<tokio::time::Sleep>>,
    reason: Arc<str>,
}

fn ended(reason: &str) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, reason.to_owned())
}

impl<S> SessionStream<S> {
    /// Watches `inner`, a client of `protocol` from `start`. With `end`,
    /// the stream ends the session when it fires: the client is sent the
    /// reason ([`Farewell::ended_by_gateway`]) at the next message
    /// boundary, then every read and write fails, so whatever serves the
    /// session (the link's pump, the in-place driver) ends it.
    pub fn new(inner: S, protocol: Protocol, start: Start, end: Option<EndSignal>) -> Self {
        Self {
            inner,
            framing: Framing::new(protocol, start),
            held: BytesMut::new(),
            sendable: 0,
            passing: false,
            end: end.map(EndWatch::new),
            ending: None,
        }
    }

    /// The stream watched.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Follows client bytes read from the stream before it was watched
    /// (read past a login the gateway made), as if read through it.
    pub fn read_before(&mut self, bytes: &[u8]) {
        self.framing.client(bytes);
    }

    /// The whole messages held back, then `farewell` when the client can
    /// read it there; `None` for the error when the client is inside a
    /// message (or the stream is encrypted end to end), where nothing but
    /// closing is safe.
    fn last_bytes(&mut self, farewell: &Farewell<'_>) -> BytesMut {
        let mut out = self.held.split_to(self.sendable);
        self.held.clear();
        self.sendable = 0;
        if !self.passing
            && let Some(bytes) = self.framing.farewell(farewell)
        {
            out.extend_from_slice(&bytes);
        }
        out
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> SessionStream<S> {
    /// Writes the whole messages held back, as far as the client takes
    /// them.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sendable > 0 {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.held[..self.sendable]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.held.advance(n);
            self.sendable -= n;
        }
        Poll::Ready(Ok(()))
    }

    /// Whether the session goes on: `Ready(Ok)` while it does; once the
    /// end signal fired, `Pending` while the farewell goes out, then
    /// `Ready(Err)` for every read and write from then on.
    fn poll_live(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.ending.is_none() {
            let Some(end) = &mut self.end else {
                return Poll::Ready(Ok(()));
            };
            if end.fired.as_mut().poll(cx).is_pending() {
                return Poll::Ready(Ok(()));
            }
            let reason = end.signal.borrow().clone().unwrap_or_else(|| Arc::from(""));
            let out = self.last_bytes(&Farewell::ended_by_gateway(&reason));
            self.ending = Some(Ending {
                out,
                shut: false,
                deadline: Box::pin(tokio::time::sleep(FAREWELL_TIMEOUT)),
                reason,
            });
        }
        let Some(ending) = &mut self.ending else {
            return Poll::Ready(Ok(()));
        };
        if ending.shut || ending.deadline.as_mut().poll(cx).is_ready() {
            ending.shut = true;
            return Poll::Ready(Err(ended(&ending.reason)));
        }
        while !ending.out.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, &ending.out) {
                Poll::Ready(Ok(n)) if n > 0 => ending.out.advance(n),
                Poll::Ready(_) => {
                    ending.shut = true;
                    return Poll::Ready(Err(ended(&ending.reason)));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        // Flushed (a TLS stream may hold the record), then closed: a TLS
        // stream sends its close_notify, a plain one its FIN.
        if Pin::new(&mut self.inner).poll_flush(cx).is_pending()
            || Pin::new(&mut self.inner).poll_shutdown(cx).is_pending()
        {
            return Poll::Pending;
        }
        ending.shut = true;
        Poll::Ready(Err(ended(&ending.reason)))
    }

    /// Tells the client why its session ended, where it can read it (see
    /// the module docs), then closes the sending side: for a session whose
    /// serving stopped on its own (the agent went away).
    pub async fn say_farewell(&mut self, farewell: Farewell<'_>) {
        use tokio::io::AsyncWriteExt;
        let out = self.last_bytes(&farewell);
        let inner = &mut self.inner;
        let _ = tokio::time::timeout(FAREWELL_TIMEOUT, async {
            if inner.write_all(&out).await.is_ok() && inner.flush().await.is_ok() {
                let _ = inner.shutdown().await;
            }
        })
        .await;
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for SessionStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_live(cx))?;
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        this.framing.client(&buf.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for SessionStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_live(cx))?;
        ready!(this.poll_drain(cx))?;
        if this.held.is_empty() && !this.passing {
            // The common case: write straight through up to the last
            // message that ends in `buf`; only its unfinished tail is held.
            let mut probe = this.framing;
            if let Some(whole) = probe.server(buf, false) {
                let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &buf[..whole]))?;
                if whole == buf.len() {
                    // Usually: the probe followed exactly what was taken.
                    this.framing = probe;
                } else {
                    this.framing.server(&buf[..whole], false);
                }
                // What the client did not take of those whole messages is
                // kept, so it never stops inside one at our doing.
                this.held.extend_from_slice(&buf[n..whole]);
                this.sendable = this.held.len();
                return Poll::Ready(Ok(whole));
            }
        }
        // Inside a message: take `buf` up to where it ends (or all of it),
        // held until then; or passing through when it is too long to hold.
        let mut probe = this.framing;
        let take = probe.server(buf, true).unwrap_or(buf.len());
        let ends = this.framing.server(&buf[..take], true).is_some();
        this.held.extend_from_slice(&buf[..take]);
        if ends {
            this.sendable = this.held.len();
            this.passing = false;
        } else if this.passing || this.held.len() > HOLD_LIMIT || this.framing.is_opaque() {
            this.passing = true;
            this.sendable = this.held.len();
        }
        Poll::Ready(Ok(take))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_live(cx))?;
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        // Once ended, the stream was shut down with the farewell.
        if ready!(this.poll_live(cx)).is_err() {
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The framing the stream follows: lengths and a few first bytes, never
/// contents. `Copy`, so a write can probe where messages end before it
/// knows how much the client takes.
#[derive(Debug, Clone, Copy)]
enum Framing {
    Postgres(PostgresFraming),
    Mysql(MysqlFraming),
}

impl Framing {
    fn new(protocol: Protocol, start: Start) -> Self {
        match protocol {
            Protocol::Postgres => Self::Postgres(PostgresFraming::new(start)),
            Protocol::Mysql => Self::Mysql(MysqlFraming::new(start)),
        }
    }

    /// Follows bytes read from the client.
    fn client(&mut self, bytes: &[u8]) {
        match self {
            Self::Postgres(framing) => framing.client(bytes),
            Self::Mysql(framing) => framing.client(bytes),
        }
    }

    /// Follows bytes to the client; returns how many of them run to the
    /// end of the last message that ends among them (with `first`, of the
    /// first), or `None` when none ends. `bytes` must be followed whole.
    fn server(&mut self, bytes: &[u8], first: bool) -> Option<usize> {
        match self {
            Self::Postgres(framing) => framing.server(bytes, first),
            Self::Mysql(framing) => framing.server(bytes, first),
        }
    }

    /// The stream is encrypted end to end (TLS inside a tunnel) or made
    /// no sense: no message boundary can be known any more.
    fn is_opaque(&self) -> bool {
        match self {
            Self::Postgres(framing) => framing.opaque,
            Self::Mysql(framing) => framing.opaque,
        }
    }

    /// The error for a client at the boundary after the last whole
    /// message; `None` where it cannot be read.
    fn farewell(&self, farewell: &Farewell<'_>) -> Option<BytesMut> {
        match self {
            Self::Postgres(framing) => framing.farewell(farewell),
            Self::Mysql(framing) => framing.farewell(farewell),
        }
    }
}

/// PostgreSQL: backend messages are a type byte and a length counting
/// itself; during the startup, an SSLRequest or GSSENCRequest from the
/// client is answered with one byte (`S` or `G` start encryption, which
/// makes the rest opaque).
#[derive(Debug, Clone, Copy)]
struct PostgresFraming {
    /// Still reading the client's untyped startup messages.
    client_startup: bool,
    client_header: [u8; 8],
    client_have: usize,
    client_skip: usize,
    /// One-byte answers the server owes for encryption requests.
    answers_owed: u8,
    header: [u8; 5],
    have: usize,
    remaining: usize,
    opaque: bool,
}

/// The length field of a message counts itself.
const PG_LENGTH_SIZE: usize = 4;

impl PostgresFraming {
    fn new(start: Start) -> Self {
        Self {
            client_startup: start == Start::Fresh,
            client_header: [0; 8],
            client_have: 0,
            client_skip: 0,
            answers_owed: 0,
            header: [0; 5],
            have: 0,
            remaining: 0,
            opaque: false,
        }
    }

    fn client(&mut self, mut bytes: &[u8]) {
        while self.client_startup && !bytes.is_empty() {
            if self.client_skip > 0 {
                let n = self.client_skip.min(bytes.len());
                self.client_skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (8 - self.client_have).min(bytes.len());
            self.client_header[self.client_have..self.client_have + n].copy_from_slice(&bytes[..n]);
            self.client_have += n;
            bytes = &bytes[n..];
            if self.client_have < 8 {
                return;
            }
            self.client_have = 0;
            let [l0, l1, l2, l3, c0, c1, c2, c3] = self.client_header;
            let length = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
            let code = u32::from_be_bytes([c0, c1, c2, c3]);
            let Some(rest) = length.checked_sub(8) else {
                self.opaque = true;
                return;
            };
            self.client_skip = rest;
            match code {
                startup::SSL_REQUEST | startup::GSSENC_REQUEST => {
                    self.answers_owed = self.answers_owed.saturating_add(1);
                }
                // A StartupMessage (or a cancel request): typed messages
                // from here on, which need no following.
                _ => self.client_startup = false,
            }
        }
    }

    fn server(&mut self, bytes: &[u8], first: bool) -> Option<usize> {
        let mut at = 0;
        let mut boundary = None;
        while at < bytes.len() && !self.opaque {
            if self.remaining > 0 {
                let n = self.remaining.min(bytes.len() - at);
                self.remaining -= n;
                at += n;
            } else if self.have == 0 && self.answers_owed > 0 && bytes[at] != b'E' {
                // The answer to an encryption request: `N` declines it;
                // anything else starts encryption (or makes no sense).
                self.answers_owed -= 1;
                self.opaque = bytes[at] != b'N';
                at += 1;
            } else {
                self.header[self.have] = bytes[at];
                self.have += 1;
                at += 1;
                if self.have < self.header.len() {
                    continue;
                }
                self.have = 0;
                self.answers_owed = 0;
                let [_, l0, l1, l2, l3] = self.header;
                match (u32::from_be_bytes([l0, l1, l2, l3]) as usize).checked_sub(PG_LENGTH_SIZE) {
                    Some(body) => self.remaining = body,
                    None => self.opaque = true,
                }
            }
            if self.have == 0 && self.remaining == 0 && !self.opaque {
                boundary = Some(at);
                if first {
                    break;
                }
            }
        }
        boundary
    }

    fn farewell(&self, farewell: &Farewell<'_>) -> Option<BytesMut> {
        if self.opaque {
            return None;
        }
        let mut out = BytesMut::new();
        BackendMessage::ErrorResponse(Notice::error("FATAL", farewell.sqlstate, farewell.message))
            .encode(&mut out);
        Some(out)
    }
}

/// MySQL: packets are a 3-byte length and a sequence id, both ways. A
/// packet of the largest length continues in the next.
#[derive(Debug, Clone, Copy)]
struct MysqlFraming {
    client: PacketHeader,
    server: PacketHeader,
    /// The first bytes of the server's packet in progress, to tell an
    /// end of a response.
    prefix: [u8; 24],
    /// Where the client is, from what last completed.
    client_spoke_last: bool,
    client_seq: u8,
    server_seq: u8,
    /// The server's last whole packet ended a response.
    server_ended: bool,
    /// The server's last whole packet continues in the next.
    continued: bool,
    /// Before the client's first packet (its SSLRequest would start TLS).
    client_first: bool,
    opaque: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct PacketHeader {
    bytes: [u8; 4],
    have: usize,
    remaining: usize,
    length: usize,
}

/// The length of a packet that continues in the next.
const MYSQL_MAX_PAYLOAD: usize = 0xff_ff_ff;
/// An SSLRequest's payload length; any HandshakeResponse is longer.
const MYSQL_SSL_REQUEST_LEN: usize = 32;
/// First bytes of server packets that can end a response.
const MYSQL_OK: u8 = 0x00;
const MYSQL_EOF: u8 = 0xfe;
const MYSQL_ERR: u8 = 0xff;
/// An EOF packet is shorter than this; an OK packet with an EOF's first
/// byte (CLIENT_DEPRECATE_EOF) is not.
const MYSQL_EOF_MAX_LEN: usize = 9;

impl PacketHeader {
    /// Consumes header and payload bytes of one packet; returns how many,
    /// and whether the packet ended (its length is then in `length`).
    fn advance(&mut self, bytes: &[u8]) -> (usize, bool, bool) {
        let mut at = 0;
        let mut started = false;
        while at < bytes.len() {
            if self.have < 4 {
                self.bytes[self.have] = bytes[at];
                self.have += 1;
                at += 1;
                if self.have == 4 {
                    let [a, b, c, _] = self.bytes;
                    self.length = usize::from(a) | usize::from(b) << 8 | usize::from(c) << 16;
                    self.remaining = self.length;
                    started = true;
                    if self.remaining == 0 {
                        self.have = 0;
                        return (at, started, true);
                    }
                }
                continue;
            }
            let n = self.remaining.min(bytes.len() - at);
            self.remaining -= n;
            at += n;
            if self.remaining == 0 {
                self.have = 0;
                return (at, started, true);
            }
        }
        (at, started, false)
    }

    fn seq(&self) -> u8 {
        self.bytes[3]
    }

    /// Bytes of the current packet's payload consumed so far (none while
    /// its header is incomplete).
    fn payload_seen(&self) -> usize {
        if self.have == 4 {
            self.length - self.remaining
        } else {
            0
        }
    }
}

impl MysqlFraming {
    fn new(start: Start) -> Self {
        let logged_in = start == Start::LoggedIn;
        Self {
            client: PacketHeader::default(),
            server: PacketHeader::default(),
            prefix: [0; 24],
            client_spoke_last: false,
            client_seq: 0,
            server_seq: 0,
            // The gateway's OK ended the login.
            server_ended: logged_in,
            continued: false,
            client_first: !logged_in,
            opaque: false,
        }
    }

    fn client(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && !self.opaque {
            let (n, started, _) = self.client.advance(bytes);
            bytes = &bytes[n..];
            if started {
                self.client_spoke_last = true;
                self.client_seq = self.client.seq();
                if std::mem::take(&mut self.client_first)
                    && self.client.length == MYSQL_SSL_REQUEST_LEN
                {
                    self.opaque = true;
                }
            }
        }
    }

    fn server(&mut self, bytes: &[u8], first: bool) -> Option<usize> {
        let mut at = 0;
        let mut boundary = None;
        while at < bytes.len() && !self.opaque {
            let before = self.server.payload_seen();
            let (n, _, done) = self.server.advance(&bytes[at..]);
            let after = if done {
                self.server.length
            } else {
                self.server.payload_seen()
            };
            // The payload bytes of this step end the chunk it consumed;
            // keep those that fall among the packet's first bytes.
            let payload = &bytes[at + n - (after - before)..at + n];
            for (slot, byte) in self.prefix.iter_mut().skip(before).zip(payload) {
                *slot = *byte;
            }
            at += n;
            if done {
                self.complete_server_packet();
                boundary = Some(at);
                if first {
                    break;
                }
            }
        }
        boundary
    }

    fn complete_server_packet(&mut self) {
        let length = self.server.length;
        self.client_spoke_last = false;
        self.server_seq = self.server.seq();
        self.continued = length == MYSQL_MAX_PAYLOAD;
        let prefix = &self.prefix[..length.min(self.prefix.len())];
        self.server_ended = !self.continued && ends_response(prefix, length);
        self.prefix = [0; 24];
    }

    fn farewell(&self, farewell: &Farewell<'_>) -> Option<BytesMut> {
        if self.opaque || self.continued {
            return None;
        }
        let seq = if self.client_spoke_last {
            self.client_seq.wrapping_add(1)
        } else if self.server_ended {
            // Idle: the answer to the client's next command (id 0).
            1
        } else {
            self.server_seq.wrapping_add(1)
        };
        let mut payload = BytesMut::new();
        ServerMessage::Err(ErrPacket::new(
            farewell.mysql_code,
            farewell.mysql_state,
            farewell.message,
        ))
        .encode_payload(&mut payload);
        let mut out = BytesMut::with_capacity(payload.len() + 4);
        encode_packet(&mut out, seq, &payload);
        Some(out)
    }
}

/// Whether a server packet (its first bytes, and its length) ends a
/// response: an ERR, or an OK or EOF without SERVER_MORE_RESULTS_EXISTS.
fn ends_response(prefix: &[u8], length: usize) -> bool {
    let status = match prefix.first() {
        Some(&MYSQL_ERR) => return true,
        Some(&MYSQL_EOF) if length < MYSQL_EOF_MAX_LEN => {
            // EOF: header, warnings (2), status (2).
            prefix.get(3..5)
        }
        Some(&MYSQL_OK | &MYSQL_EOF) => {
            // OK: header, affected rows and last insert id (length-encoded),
            // status (2).
            skip_lenenc(prefix, 1)
                .and_then(|at| skip_lenenc(prefix, at))
                .and_then(|at| prefix.get(at..at + 2))
        }
        _ => None,
    };
    status.is_some_and(|flags| {
        u16::from_le_bytes([flags[0], flags[1]]) & status::MORE_RESULTS_EXISTS == 0
    })
}

/// The offset past the length-encoded integer at `at`.
fn skip_lenenc(bytes: &[u8], at: usize) -> Option<usize> {
    let width = match *bytes.get(at)? {
        0..=0xfa => 1,
        0xfc => 3,
        0xfd => 4,
        0xfe => 9,
        _ => return None,
    };
    let end = at + width;
    (end <= bytes.len()).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    fn mysql_packet(seq: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_packet(&mut out, seq, payload);
        out.to_vec()
    }

    /// A text result as MariaDB sends it under CLIENT_DEPRECATE_EOF: the
    /// column count, a definition, rows (one starting with `0xfe`-free
    /// bytes of all kinds), then an OK with the EOF's first byte.
    fn mysql_result() -> Vec<(u8, Vec<u8>)> {
        let mut packets = vec![
            (1, vec![1]),
            (
                2,
                b"\x03def\0\0\0\x01n\0\x0c\x21\0\x0b\0\0\0\x03\0\0\0\0\0".to_vec(),
            ),
        ];
        for (i, row) in [&b"\x03abc"[..], b"\x00", b"\xfb", b"\x05hello"]
            .iter()
            .enumerate()
        {
            packets.push((3 + i as u8, row.to_vec()));
        }
        packets.push((7, vec![0xfe, 0, 0, 0x02, 0, 0, 0]));
        packets
    }

    /// Whole packets, and nothing after the last.
    fn mysql_packets(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut packets = Vec::new();
        while !bytes.is_empty() {
            assert!(bytes.len() >= 4, "a partial header: {bytes:?}");
            let length =
                usize::from(bytes[0]) | usize::from(bytes[1]) << 8 | usize::from(bytes[2]) << 16;
            assert!(bytes.len() >= 4 + length, "a partial packet: {bytes:?}");
            packets.push((bytes[3], bytes[4..4 + length].to_vec()));
            bytes = &bytes[4 + length..];
        }
        packets
    }

    async fn write_in(stream: &mut SessionStream<DuplexStream>, bytes: &[u8], piece: usize) {
        for chunk in bytes.chunks(piece.max(1)) {
            stream.write_all(chunk).await.unwrap();
        }
        stream.flush().await.unwrap();
    }

    async fn client_reads(mut far: DuplexStream) -> Vec<u8> {
        let mut got = Vec::new();
        far.read_to_end(&mut got).await.unwrap();
        got
    }

    #[tokio::test]
    async fn a_mysql_client_cut_off_anywhere_reads_whole_packets_then_an_err_it_expects() {
        let packets = mysql_result();
        let wire: Vec<u8> = packets
            .iter()
            .flat_map(|(seq, p)| mysql_packet(*seq, p))
            .collect();
        for piece in [1, 3, 7, wire.len()] {
            for cut in 0..=wire.len() {
                let (near, mut far) = tokio::io::duplex(1 << 16);
                let mut stream = SessionStream::new(near, Protocol::Mysql, Start::LoggedIn, None);
                far.write_all(&mysql_packet(0, b"\x03SELECT n"))
                    .await
                    .unwrap();
                let mut command = [0u8; 13];
                stream.read_exact(&mut command).await.unwrap();
                write_in(&mut stream, &wire[..cut], piece).await;
                stream
                    .say_farewell(Farewell::agent_gone("the agent went away"))
                    .await;
                drop(stream);
                let got = mysql_packets(&client_reads(far).await);
                let whole = mysql_packets(&wire)
                    .iter()
                    .scan(0, |end, p| {
                        *end += 4 + p.1.len();
                        Some(*end)
                    })
                    .filter(|end| *end <= cut)
                    .count();
                assert_eq!(&got[..got.len() - 1], &packets[..whole], "cut {cut}");
                let (seq, err) = got.last().unwrap();
                assert_eq!(err[0], 0xff, "cut {cut}");
                assert!(String::from_utf8_lossy(err).ends_with("#08S01the agent went away"));
                // After the command: its id + 1; inside the result: the
                // last packet's + 1; after it ended: 1, for the next command.
                let expected = match whole {
                    0 => 1,
                    n if n == packets.len() => 1,
                    n => packets[n - 1].0 + 1,
                };
                assert_eq!(*seq, expected, "cut {cut} piece {piece}");
            }
        }
    }

    #[test]
    fn a_mysql_response_ends_at_err_or_an_ok_or_eof_without_more_results() {
        assert!(ends_response(&[0xff, 0x10, 0x04], 20));
        assert!(ends_response(&[0x00, 0, 0, 0x02, 0], 7));
        assert!(!ends_response(&[0x00, 0, 0, 0x0a, 0], 7), "more results");
        assert!(ends_response(&[0xfe, 0, 0, 0x02, 0], 5), "EOF");
        assert!(
            !ends_response(&[0xfe, 0, 0, 0x08, 0], 5),
            "EOF, more results"
        );
        assert!(
            ends_response(&[0xfe, 0xfc, 1, 0, 0, 0x02, 0], 11),
            "OK as EOF"
        );
        assert!(!ends_response(&[0x03, b'a', b'b', b'c'], 4), "a row");
        assert!(!ends_response(&[0x00, 0xfe], 2), "too short to be an OK");
    }

    fn pg_message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn pg_messages(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut messages = Vec::new();
        while !bytes.is_empty() {
            assert!(bytes.len() >= 5, "a partial header: {bytes:?}");
            let length = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
            assert!(bytes.len() > length, "a partial message: {bytes:?}");
            messages.push((bytes[0], bytes[5..1 + length].to_vec()));
            bytes = &bytes[1 + length..];
        }
        messages
    }

    #[tokio::test]
    async fn a_postgres_client_cut_off_anywhere_reads_whole_messages_then_a_fatal_error() {
        let messages = [
            (
                b'T',
                b"\0\x01n\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0".to_vec(),
            ),
            (b'D', b"\0\x01\0\0\0\x03abc".to_vec()),
            (b'D', b"\0\x01\xff\xff\xff\xff".to_vec()),
            (b'C', b"SELECT 2\0".to_vec()),
            (b'Z', b"I".to_vec()),
        ];
        let wire: Vec<u8> = messages
            .iter()
            .flat_map(|(t, b)| pg_message(*t, b))
            .collect();
        for piece in [1, 4, wire.len()] {
            for cut in 0..=wire.len() {
                let (near, far) = tokio::io::duplex(1 << 16);
                let mut stream =
                    SessionStream::new(near, Protocol::Postgres, Start::LoggedIn, None);
                write_in(&mut stream, &wire[..cut], piece).await;
                stream
                    .say_farewell(Farewell::agent_gone("the agent went away"))
                    .await;
                drop(stream);
                let got = pg_messages(&client_reads(far).await);
                let (tag, body) = got.last().unwrap();
                assert_eq!(*tag, b'E', "cut {cut}");
                assert!(String::from_utf8_lossy(body).contains("the agent went away"));
                assert_eq!(
                    &got[..got.len() - 1],
                    &messages[..got.len() - 1],
                    "cut {cut}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_message_too_long_to_hold_passes_and_then_nothing_is_appended() {
        let row = pg_message(b'D', &vec![b'x'; HOLD_LIMIT + 10]);
        let (near, far) = tokio::io::duplex(1 << 20);
        let mut stream = SessionStream::new(near, Protocol::Postgres, Start::LoggedIn, None);
        write_in(&mut stream, &row[..HOLD_LIMIT + 5], 4096).await;
        stream.say_farewell(Farewell::agent_gone("gone")).await;
        drop(stream);
        assert_eq!(client_reads(far).await, &row[..HOLD_LIMIT + 5]);
    }

    #[tokio::test]
    async fn bytes_pass_unchanged_when_nothing_ends_the_session() {
        let wire: Vec<u8> = mysql_result()
            .iter()
            .flat_map(|(s, p)| mysql_packet(*s, p))
            .collect();
        let (near, far) = tokio::io::duplex(1 << 16);
        let mut stream = SessionStream::new(near, Protocol::Mysql, Start::LoggedIn, None);
        write_in(&mut stream, &wire, 5).await;
        stream.shutdown().await.unwrap();
        drop(stream);
        assert_eq!(client_reads(far).await, wire);
    }

    #[tokio::test]
    async fn a_tunnelled_postgres_startup_is_followed_through_its_encryption_answer() {
        let ssl_request = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
        for (answer, readable) in [(b'N', true), (b'S', false)] {
            let (near, mut far) = tokio::io::duplex(1 << 16);
            let mut stream = SessionStream::new(near, Protocol::Postgres, Start::Fresh, None);
            far.write_all(&ssl_request).await.unwrap();
            let mut request = [0u8; 8];
            stream.read_exact(&mut request).await.unwrap();
            stream.write_all(&[answer]).await.unwrap();
            stream
                .write_all(&pg_message(b'R', &[0, 0, 0, 3]))
                .await
                .unwrap();
            stream.say_farewell(Farewell::agent_gone("gone")).await;
            drop(stream);
            let got = client_reads(far).await;
            assert_eq!(got[0], answer);
            let messages = pg_messages(&got[1..]);
            assert_eq!(messages.last().unwrap().0 == b'E', readable, "{answer}");
        }
    }

    #[tokio::test]
    async fn a_session_ended_while_its_client_reads_slowly_ends_between_packets() {
        let packets = mysql_result();
        let wire: Vec<u8> = packets
            .iter()
            .flat_map(|(s, p)| mysql_packet(*s, p))
            .collect();
        for read_before_end in 0..wire.len() {
            let (sender, signal) = watch::channel(None);
            // A client that takes a few bytes at a time: writes are partial.
            let (near, mut far) = tokio::io::duplex(5);
            let mut stream =
                SessionStream::new(near, Protocol::Mysql, Start::LoggedIn, Some(signal));
            let writing = {
                let wire = wire.clone();
                tokio::spawn(async move {
                    let _ = stream.write_all(&wire).await;
                    let _ = stream.flush().await;
                })
            };
            let mut got = vec![0u8; read_before_end];
            far.read_exact(&mut got).await.unwrap();
            sender.send_replace(Some(Arc::from("ended")));
            far.read_to_end(&mut got).await.unwrap();
            writing.await.unwrap();
            let got = mysql_packets(&got);
            let (last_seq, last) = got.last().unwrap();
            if last[0] == 0xff {
                assert_eq!(&got[..got.len() - 1], &packets[..got.len() - 1]);
                let whole = got.len() - 1;
                // Nothing yet after the login's OK, or the whole result:
                // idle (1); inside the result: the last packet's id + 1.
                let expected = if whole == 0 || whole == packets.len() {
                    1
                } else {
                    packets[whole - 1].0 + 1
                };
                assert_eq!(*last_seq, expected, "after {read_before_end}");
            } else {
                // The whole result went out before the signal was seen.
                assert_eq!(got, packets, "after {read_before_end}");
            }
        }
    }

    #[tokio::test]
    async fn an_end_signal_reaches_an_idle_client_in_its_protocol() {
        for protocol in [Protocol::Postgres, Protocol::Mysql] {
            let (sender, signal) = watch::channel(None);
            let (near, far) = tokio::io::duplex(1 << 16);
            let mut stream = SessionStream::new(near, protocol, Start::LoggedIn, Some(signal));
            let reader = tokio::spawn(async move {
                let mut byte = [0u8; 1];
                stream.read(&mut byte).await
            });
            tokio::task::yield_now().await;
            sender.send_replace(Some(Arc::from("the access token was revoked")));
            let read = reader.await.unwrap();
            assert_eq!(read.unwrap_err().kind(), io::ErrorKind::ConnectionAborted);
            let got = client_reads(far).await;
            match protocol {
                Protocol::Postgres => {
                    let messages = pg_messages(&got);
                    assert_eq!(messages.len(), 1);
                    assert_eq!(messages[0].0, b'E');
                    let body = String::from_utf8_lossy(&messages[0].1).into_owned();
                    assert!(
                        body.contains("C57P01") && body.contains("the access token was revoked"),
                        "{body}"
                    );
                }
                Protocol::Mysql => {
                    let packets = mysql_packets(&got);
                    assert_eq!(packets.len(), 1);
                    assert_eq!(packets[0].0, 1);
                    assert!(
                        String::from_utf8_lossy(&packets[0].1)
                            .ends_with("#70100the access token was revoked")
                    );
                }
            }
        }
    }
}
