//! Session commands: `hoop connect`, `hoop exec`, `hoop sessions`.
//!
//! `hoop connect` listens on a local port; each local client gets its own
//! tunnel to the gateway (an HTTP upgrade carrying the person's token), so
//! the local port needs no password and any native client works. With an
//! `https://` API URL each tunnel starts with TLS, then the same upgrade.
//! A gateway on this host (a loopback API URL) is handed each client's
//! socket instead, with the same token and checks
//! ([`hoop_gateway::same_host`]): one hop fewer for every byte.
//!
//! When a client's session cannot start (the gateway cannot be reached,
//! it refuses, the agent is offline), `hoop connect` tells the client why
//! in the client's own protocol (`refuse`): psql prints a FATAL error, the
//! mariadb CLI an `ERROR`, rather than "server closed the connection".

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use hoop_gateway::api::EXEC_STREAM;
use hoop_gateway::client::{ApiClient, ApiStream, Endpoint};
use hoop_gateway::same_host::{self, ConnectSocket, HandoffError};
use hyper::StatusCode;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::api::{self, Api};
use crate::login;

/// The most bytes of an HTTP response head accepted from the gateway.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// `hoop connect`: a local port for `name`; `tunnel_always` tunnels every client
/// even to a gateway on this host.
pub(crate) async fn connect(
    name: &str,
    port: Option<u16>,
    bind: &str,
    tunnel_always: bool,
    duration: Option<Duration>,
) -> anyhow::Result<()> {
    let (url, token) = login::settings()?;
    let gateway = login::endpoint(&url)?;
    let client = ApiClient::with_endpoint(gateway.clone(), Some(token.clone()));
    let api = Api::from_login()?;
    let connection = api
        .find(&format!("/api/connections/{}", crate::admin::segment(name)))
        .await?
        .with_context(|| {
            format!("no connection named {name} (`hoop admin get conn` lists them)")
        })?;
    let subtype = connection["subtype"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if connection["access_mode_connect"] == "disabled" {
        bail!("connect access is disabled on connection {name}");
    }
    let (protocol, default_port) = match subtype.as_str() {
        "postgres" => (Protocol::Postgres, 5433),
        "mysql" => (Protocol::Mysql, 3307),
        _ => bail!(
            "connection {name} is of subtype {subtype:?}; hoop connect serves postgres and mysql"
        ),
    };
    if let Some(duration) = duration {
        ask_for_access(&api, name, duration).await?;
    }
    let port = port.unwrap_or(default_port);
    let listener = TcpListener::bind((bind, port)).await.with_context(|| {
        format!("cannot listen on {bind}:{port} (is something else there? choose another port with -p PORT)")
    })?;
    let addr = listener.local_addr()?;
    println!("connection {name} ({subtype}) on {addr}");
    match subtype.as_str() {
        "postgres" => println!(
            "  psql \"host={} port={} user=noop dbname=...\"",
            addr.ip(),
            addr.port()
        ),
        _ => println!(
            "  mariadb -h {} -P {} -u noop --skip-ssl",
            addr.ip(),
            addr.port()
        ),
    }
    let socket = if tunnel_always || !gateway.is_loopback() {
        None
    } else {
        handoff_socket(&client).await
    };
    if let Some(socket) = &socket {
        println!(
            "  (the gateway is on this host: clients go to it directly, through {})",
            socket.path.display()
        );
    }
    println!("  (no password needed; Ctrl-C stops)");
    let path = format!("/api/connections/{}/tunnel", crate::admin::segment(name));
    let serve = async {
        loop {
            let (local, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    eprintln!("accept failed: {error}");
                    continue;
                }
            };
            let (gateway, path, token, socket, name, url) = (
                gateway.clone(),
                path.clone(),
                token.clone(),
                socket.clone(),
                name.to_owned(),
                url.clone(),
            );
            tokio::spawn(async move {
                let local = match socket {
                    Some(socket) => match hand_over(&socket, local, &name, &token).await {
                        Ok(None) => return,
                        // Not this user's socket, or the gateway moved:
                        // the tunnel still reaches it.
                        Ok(Some(local)) => local,
                        Err((local, refusal)) => {
                            eprintln!("hoop: session on {name} refused: {}", refusal.message);
                            refuse(local, protocol, &refusal).await;
                            return;
                        }
                    },
                    None => local,
                };
                match open_tunnel(&gateway, &url, &path, &token).await {
                    Ok((remote, early)) => {
                        if let Err(error) = relay(local, remote, &early).await {
                            eprintln!("hoop: session on {name} ended: {error}");
                        }
                    }
                    Err(refusal) => {
                        eprintln!("hoop: session on {name} refused: {}", refusal.message);
                        refuse(local, protocol, &refusal).await;
                    }
                }
            });
        }
    };
    tokio::select! {
        () = serve => Ok(()),
        () = hoop_gateway::cli::wait_for_shutdown() => Ok(()),
    }
}

/// Asks for connect access to `name` for `duration` (a `jit` review) and
/// waits until it is approved. A connection without reviewers needs no
/// asking.
async fn ask_for_access(api: &Api, name: &str, duration: Duration) -> anyhow::Result<()> {
    let body = json!({"connection": name, "access_duration_sec": duration.as_secs()});
    let response = api
        .send(hyper::Method::POST, "/api/sessions", Some(&body))
        .await?;
    if response.status == StatusCode::UNPROCESSABLE_ENTITY
        && response.body["field"] == "access_duration_sec"
    {
        return Ok(());
    }
    if response.status != StatusCode::ACCEPTED {
        return Err(api::refusal(&response).context("asking for access"));
    }
    crate::reviews::announce(name, "access", &response.body);
    let id = crate::output::field(&response.body, "id");
    let review = crate::reviews::wait(api, &id, &["PENDING"]).await?;
    eprintln!(
        "hoop: review {id} approved: access to {name} until {}",
        review["revoke_at"]
            .as_i64()
            .map_or_else(|| "-".into(), crate::output::local_time)
    );
    Ok(())
}

/// The gateway's handoff socket, if it has one: asked once, at start.
async fn handoff_socket(client: &ApiClient) -> Option<ConnectSocket> {
    let info = client.get("/api/serverinfo").await.ok()?;
    if !info.status.is_success() {
        return None;
    }
    Some(ConnectSocket {
        path: PathBuf::from(info.body["connect_socket"].as_str()?),
        instance_id: info.body["instance_id"].as_str()?.to_owned(),
    })
}

/// The protocol of `hoop connect`'s local clients, for telling them why a
/// session could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Postgres,
    Mysql,
}

/// Why a client's session could not start.
#[derive(Debug)]
struct Refusal {
    /// What the person reads.
    message: String,
    /// The gateway's HTTP status, when it answered.
    status: Option<StatusCode>,
}

/// Hands `local` to the gateway on this host. `Ok(None)`: the gateway has
/// it. `Ok(Some(local))`: the socket cannot be reached, tunnel instead.
/// `Err`: the gateway refused; the client is given back (its copy of the
/// socket) to be told why.
async fn hand_over(
    socket: &ConnectSocket,
    local: TcpStream,
    name: &str,
    token: &str,
) -> Result<Option<TcpStream>, (TcpStream, Refusal)> {
    // A second handle on the client's socket: the handoff consumes the
    // first, and a refused client must still hear why.
    let (local, spare) = match duplicate(local) {
        Ok(pair) => pair,
        Err(error) => {
            eprintln!("hoop: could not hand a client over: {error}");
            return Ok(None);
        }
    };
    let refused = |message: String| match TcpStream::from_std(spare) {
        Ok(client) => Err((
            client,
            Refusal {
                message,
                status: None,
            },
        )),
        Err(_) => Ok(None),
    };
    match same_host::hand_over(socket, local, name, token).await {
        Ok(()) => Ok(None),
        Err(HandoffError::Unreachable { client, .. }) => Ok(Some(client)),
        Err(HandoffError::Refused(message)) => refused(message),
        Err(error) => refused(error.to_string()),
    }
}

/// The client's socket and a second handle on it (non-blocking, as tokio
/// needs it; the flag belongs to the socket, so both share it).
fn duplicate(local: TcpStream) -> std::io::Result<(TcpStream, std::net::TcpStream)> {
    let local = local.into_std()?;
    let spare = local.try_clone()?;
    Ok((TcpStream::from_std(local)?, spare))
}

/// Opens a fresh API connection (TLS first for `https://`) and upgrades
/// it to a tunnel; returns it with any bytes that came after the answer.
async fn open_tunnel(
    gateway: &Endpoint,
    url: &str,
    path: &str,
    token: &str,
) -> Result<(ApiStream, Bytes), Refusal> {
    let mut remote = gateway.connect().await.map_err(|error| Refusal {
        message: format!("{:#}", api::unreachable(url, error)),
        status: None,
    })?;
    let upgraded = match &mut remote {
        ApiStream::Plain(stream) => upgrade(stream, gateway.address(), path, token).await,
        ApiStream::Tls(stream) => upgrade(stream, gateway.address(), path, token).await,
    };
    upgraded.map(|early| (remote, early))
}

/// Sends the tunnel's upgrade request on `remote` and reads the answer.
async fn upgrade<S>(
    remote: &mut S,
    gateway: &str,
    path: &str,
    token: &str,
) -> Result<Bytes, Refusal>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let broken = |what: &str| Refusal {
        message: format!("the gateway at {gateway} {what}"),
        status: None,
    };
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {gateway}\r\nAuthorization: Bearer {token}\r\n\
         Connection: Upgrade\r\nUpgrade: {}\r\nContent-Length: 0\r\n\r\n",
        hoop_gateway::api::TUNNEL_PROTOCOL
    );
    remote
        .write_all(request.as_bytes())
        .await
        .map_err(|_| broken("closed the connection"))?;
    // TLS may hold the request's records until flushed.
    remote
        .flush()
        .await
        .map_err(|_| broken("closed the connection"))?;
    let mut head = Vec::with_capacity(1024);
    let end = loop {
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if head.len() > MAX_RESPONSE_HEAD {
            return Err(broken("sent an answer too large"));
        }
        let mut chunk = [0u8; 4096];
        match remote.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(broken("closed the connection")),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let status = text.split_whitespace().nth(1).unwrap_or_default();
    if status == "101" {
        return Ok(Bytes::copy_from_slice(&head[end..]));
    }
    let mut body = head[end..].to_vec();
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        remote.take(MAX_RESPONSE_HEAD as u64).read_to_end(&mut body),
    )
    .await;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Err(Refusal {
        message: api::message(&body)
            .unwrap_or_else(|| format!("the gateway refused the session (HTTP {status})")),
        status: status
            .parse()
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok()),
    })
}

/// Relays bytes between `local` and the tunnel until either ends.
async fn relay(mut local: TcpStream, remote: ApiStream, early: &[u8]) -> std::io::Result<()> {
    local.set_nodelay(true)?;
    local.write_all(early).await?;
    // One match here, so the relay is compiled for each stream and the
    // plain path relays straight between two sockets.
    match remote {
        ApiStream::Plain(mut remote) => {
            tokio::io::copy_bidirectional(&mut local, &mut remote).await?;
        }
        ApiStream::Tls(mut remote) => {
            tokio::io::copy_bidirectional(&mut local, &mut remote).await?;
        }
    }
    Ok(())
}

/// The most bytes read from a refused client before answering it: a
/// startup packet (or an SSLRequest and then one) fits many times over.
const MAX_REFUSED_READ: usize = 16 * 1024;

/// How long a refused client has to send what its protocol sends first.
const REFUSED_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Tells a local client, in its own protocol, why its session could not
/// start, then closes it. PostgreSQL: decline TLS, read the startup
/// message, answer with a FATAL ErrorResponse (the SQLSTATE as the
/// gateway's listener would send it). MySQL: the server speaks first, so
/// an ERR packet takes the greeting's place. Best effort: a client that
/// sends nothing, or something else, is closed.
async fn refuse(mut local: TcpStream, protocol: Protocol, refusal: &Refusal) {
    let message = format!("hoop connect: {}", refusal.message);
    match protocol {
        Protocol::Postgres => {
            let code = match refusal.status {
                Some(StatusCode::UNAUTHORIZED) => "28P01",
                Some(StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY) => "28000",
                Some(StatusCode::FORBIDDEN) => "42501",
                _ => "08001",
            };
            let answered = tokio::time::timeout(
                REFUSED_READ_TIMEOUT,
                postgres_refusal(&mut local, code, &message),
            )
            .await;
            if !matches!(answered, Ok(Ok(()))) {
                return;
            }
        }
        Protocol::Mysql => {
            let (code, state) = match refusal.status {
                Some(StatusCode::UNAUTHORIZED) => (1045, b"28000"),
                Some(StatusCode::NOT_FOUND) => (1044, b"42000"),
                Some(StatusCode::FORBIDDEN) => (1227, b"42000"),
                // ER_UNKNOWN_ERROR: libmariadb reads a client-range code
                // (2000-2999, such as 2002) in a greeting's place as a
                // malformed packet and drops the message.
                _ => (1105, b"08001"),
            };
            let mut payload = BytesMut::new();
            hoop_wire::mysql::ServerMessage::Err(hoop_wire::mysql::ErrPacket::new(
                code, state, &message,
            ))
            .encode_payload(&mut payload);
            let mut packet = BytesMut::new();
            hoop_wire::mysql::encode_packet(&mut packet, 0, &payload);
            if local.write_all(&packet).await.is_err() {
                return;
            }
        }
    }
    let _ = local.shutdown().await;
}

async fn postgres_refusal(local: &mut TcpStream, code: &str, message: &str) -> std::io::Result<()> {
    use hoop_wire::postgres::{BackendMessage, FrontendDecoder, FrontendMessage, Limits, Notice};
    let mut decoder = FrontendDecoder::new(Limits::default());
    let mut buffer = BytesMut::new();
    loop {
        match decoder.decode(&mut buffer) {
            Ok(Some(FrontendMessage::SslRequest | FrontendMessage::GssEncRequest)) => {
                local.write_all(b"N").await?;
            }
            Ok(Some(FrontendMessage::Startup(_))) => break,
            Ok(Some(_)) | Err(_) => return Err(std::io::ErrorKind::InvalidData.into()),
            Ok(None) => {
                if buffer.len() > MAX_REFUSED_READ || local.read_buf(&mut buffer).await? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
        }
    }
    let mut out = BytesMut::new();
    BackendMessage::ErrorResponse(Notice::error("FATAL", code, message)).encode(&mut out);
    local.write_all(&out).await
}

/// `hoop exec`: runs the input, prints the output; returns the exit code
/// the session ended with.
///
/// The gateway is always asked for JSON (typed values, columns in order);
/// the text format is made from it here: a header row of column names,
/// then tab-separated rows, NULL empty, and a new header whenever a
/// result set with other columns begins.
///
/// # Errors
///
/// No input, an unreadable file, or a gateway that cannot be reached.
pub(crate) async fn exec(
    name: &str,
    input: Option<String>,
    file: Option<PathBuf>,
    output: &str,
    no_wait: bool,
) -> anyhow::Result<u8> {
    let script = match (input, file) {
        (Some(input), _) => input,
        (None, Some(file)) if file.as_os_str() != "-" => {
            std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?
        }
        (None, file) => {
            if file.is_none() && std::io::stdin().is_terminal() {
                bail!(
                    "no input: give the statement with -i \"SELECT 1\", a file with -f FILE, \
                     or pipe it in (echo \"SELECT 1\" | hoop exec {name})"
                );
            }
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading standard input")?;
            text
        }
    };
    if script.trim().is_empty() {
        bail!("the input is empty: give the statement with -i \"SELECT 1\" or -f FILE");
    }
    let api = Api::from_login()?;
    let body = json!({"connection": name, "script": script, "output": "json"});
    let mut response = api
        .post_streaming("/api/sessions", &body, EXEC_STREAM)
        .await?;
    if !response.content_type.starts_with(EXEC_STREAM) {
        // A refusal, a review to wait for, or a gateway that answers
        // whole: one JSON body.
        let status = response.status;
        let mut success = status.is_success();
        let mut body = response.json().await?;
        if status == StatusCode::ACCEPTED {
            crate::reviews::announce(name, "exec", &body);
            let id = crate::output::field(&body, "id");
            if no_wait {
                println!("{id}");
                return Ok(0);
            }
            // Ctrl-C stops the waiting; the review stays pending.
            body = crate::reviews::wait(&api, &id, &["PENDING", "APPROVED", "PROCESSING"]).await?;
            success = body["exit_code"] == 0;
        }
        if let Some(text) = body["output"].as_str() {
            let mut stdout = std::io::stdout().lock();
            let mut rows = Printer::new(output == "json");
            rows.write(&mut stdout, text.as_bytes())?;
            rows.finish(&mut stdout)?;
        }
        return Ok(print_end(name, success, &body));
    }
    // The output streams: each row is printed as it arrives, so a result
    // of any size passes through in bounded memory.
    match print_stream(name, output == "json", &mut response).await {
        // The reader of the output left (`hoop exec ... | head`): stop
        // quietly, as a client killed by SIGPIPE does; the gateway stops
        // the script when the answer's connection closes.
        Err(error)
            if error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(SIGPIPE_EXIT)
        }
        other => other,
    }
}

/// The exit code of a process ended by SIGPIPE, as shells report it.
const SIGPIPE_EXIT: u8 = 128 + 13;

/// Prints a streamed exec answer's output as it arrives; returns the exit
/// code from its last line.
async fn print_stream(
    name: &str,
    json: bool,
    response: &mut hoop_gateway::client::StreamingResponse,
) -> anyhow::Result<u8> {
    let mut stdout = std::io::stdout().lock();
    let mut rows = Printer::new(json);
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line: Value = serde_json::from_slice(&line)
                .context("the gateway sent a line that is not JSON")?;
            if let Some(text) = line["output"].as_str() {
                rows.write(&mut stdout, text.as_bytes())?;
            } else if line.get("status").is_some() {
                rows.finish(&mut stdout)?;
                stdout.flush()?;
                return Ok(print_end(name, true, &line));
            }
        }
        if pending.len() > MAX_EXEC_LINE {
            bail!("the gateway sent a line longer than {MAX_EXEC_LINE} bytes");
        }
        stdout.flush()?;
    }
    bail!("the gateway ended the answer before the session's end")
}

/// The longest line of a streamed exec answer the CLI holds: the gateway
/// sends one per link frame (at most 32 KiB of output, six times that
/// escaped).
const MAX_EXEC_LINE: usize = 16 * 1024 * 1024;

/// Reports how an exec ended (truncation, the error); returns the exit
/// code.
fn print_end(name: &str, success: bool, body: &Value) -> u8 {
    if body["truncated"] == true {
        eprintln!("hoop: exec on {name}: the output was cut short at the gateway's limit");
    }
    let code = body["exit_code"]
        .as_i64()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(1);
    if code != 0 || !success {
        let error = body["error"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| api::message(body))
            .unwrap_or_else(|| "the session failed".into());
        eprintln!("hoop: exec on {name}: {error}");
        return if code == 0 { 1 } else { code };
    }
    0
}

/// One row of exec's JSON: its columns in order, repeated names kept
/// (`serde_json`'s map would sort and merge them), each value as the
/// agent wrote it (a `numeric` keeps every digit).
struct Row(Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RowVisitor;
        impl<'de> Visitor<'de> for RowVisitor {
            type Value = Row;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a row object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
                let mut cells = Vec::new();
                while let Some(cell) = map.next_entry::<String, Box<RawValue>>()? {
                    cells.push(cell);
                }
                Ok(Row(cells))
            }
        }
        deserializer.deserialize_map(RowVisitor)
    }
}

/// Prints exec's JSON output as it streams in: as it came with `-o json`;
/// otherwise as text, a header row of column names, then tab-separated
/// values (strings as they are, NULL empty), and a new header whenever a
/// result set with other columns begins.
///
/// The JSON array arrives cut anywhere; each row object is printed once
/// it is whole, so memory holds one row. Output that is not such an array
/// (an older agent's text) is printed as it came from where it stops
/// making sense.
struct Printer {
    json: bool,
    state: Scan,
    /// The row object read so far.
    object: Vec<u8>,
    header: Option<Vec<String>>,
}

/// Where the text printer is in the JSON array.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Between row objects: `[`, `,`, `]` and white space.
    Between,
    /// Inside a row object, at this depth of braces and brackets.
    Object {
        depth: u32,
        string: bool,
        escape: bool,
    },
    /// Not exec's JSON: everything passes as it is.
    Raw,
}

/// The largest row object the text printer holds: a row is at most one
/// server packet (64 MiB), far more than any terminal wants to show.
const MAX_ROW_JSON: usize = 64 * 1024 * 1024;

impl Printer {
    fn new(json: bool) -> Self {
        Self {
            json,
            state: Scan::Between,
            object: Vec::new(),
            header: None,
        }
    }

    fn write(&mut self, out: &mut impl Write, bytes: &[u8]) -> anyhow::Result<()> {
        if self.json {
            out.write_all(bytes)?;
            return Ok(());
        }
        for (at, &byte) in bytes.iter().enumerate() {
            self.state = match self.state {
                Scan::Raw => {
                    out.write_all(&bytes[at..])?;
                    return Ok(());
                }
                Scan::Between => match byte {
                    b'{' => {
                        self.object.push(byte);
                        Scan::Object {
                            depth: 1,
                            string: false,
                            escape: false,
                        }
                    }
                    b'[' | b',' | b']' | b' ' | b'\n' | b'\r' | b'\t' => Scan::Between,
                    _ => {
                        out.write_all(&bytes[at..])?;
                        Scan::Raw
                    }
                },
                Scan::Object {
                    depth,
                    string,
                    escape,
                } => {
                    self.object.push(byte);
                    if self.object.len() > MAX_ROW_JSON {
                        bail!("the gateway sent a row longer than {MAX_ROW_JSON} bytes");
                    }
                    match (string, escape, byte) {
                        (true, true, _) => Scan::Object {
                            depth,
                            string,
                            escape: false,
                        },
                        (true, false, b'\\') => Scan::Object {
                            depth,
                            string,
                            escape: true,
                        },
                        (true, false, b'"') | (false, _, b'"') => Scan::Object {
                            depth,
                            string: !string,
                            escape: false,
                        },
                        (false, _, b'{' | b'[') => Scan::Object {
                            depth: depth + 1,
                            string,
                            escape,
                        },
                        (false, _, b'}' | b']') if depth == 1 => {
                            self.print_row(out)?;
                            Scan::Between
                        }
                        (false, _, b'}' | b']') => Scan::Object {
                            depth: depth - 1,
                            string,
                            escape,
                        },
                        _ => Scan::Object {
                            depth,
                            string,
                            escape,
                        },
                    }
                }
            };
            if self.state == Scan::Raw {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Prints what an unfinished row held (a cut answer) as it came.
    fn finish(&mut self, out: &mut impl Write) -> anyhow::Result<()> {
        out.write_all(&std::mem::take(&mut self.object))?;
        Ok(())
    }

    fn print_row(&mut self, out: &mut impl Write) -> anyhow::Result<()> {
        let object = std::mem::take(&mut self.object);
        let Ok(Row(cells)) = serde_json::from_slice::<Row>(&object) else {
            out.write_all(&object)?;
            return Ok(());
        };
        let names: Vec<String> = cells.iter().map(|(name, _)| name.clone()).collect();
        if self.header.as_ref() != Some(&names) {
            if self.header.is_some() {
                out.write_all(b"\n")?;
            }
            writeln!(out, "{}", names.join("\t"))?;
            self.header = Some(names);
        }
        let values: Vec<String> = cells
            .iter()
            .map(|(_, value)| match value.get() {
                "null" => String::new(),
                raw if raw.starts_with('"') => serde_json::from_str(raw).unwrap_or_default(),
                raw => raw.to_owned(),
            })
            .collect();
        writeln!(out, "{}", values.join("\t"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text printer's output for `json` fed in pieces of `cut` bytes.
    fn text_output(json: &str, cut: usize) -> String {
        let mut out = Vec::new();
        let mut printer = Printer::new(false);
        for piece in json.as_bytes().chunks(cut) {
            printer.write(&mut out, piece).unwrap();
        }
        printer.finish(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_output_has_a_header_per_result_shape_however_it_is_cut() {
        let cases = [
            ("[{\"one\":1}]\n", "one\n1\n"),
            (
                "[{\"d\":1.50,\"s\":\"tab\\there } \\\" [\"}]",
                "d\ts\n1.50\ttab\there } \" [\n",
            ),
            (
                "[{\"b\":\"x\",\"a\":null,\"a\":true},{\"b\":\"y\",\"a\":2.5,\"a\":false},{\"n\":7}]",
                "b\ta\ta\nx\t\ttrue\ny\t2.5\tfalse\n\nn\n7\n",
            ),
            ("[]\n", ""),
            ("[{\"cut", "{\"cut"),
            ("plain text\n", "plain text\n"),
        ];
        for (json, text) in cases {
            for cut in 1..=json.len() {
                assert_eq!(text_output(json, cut), text, "{json} cut every {cut}");
            }
        }
    }
}
