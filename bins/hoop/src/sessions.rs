//! Session commands: `hoop connect`, `hoop exec`, `hoop sessions`.
//!
//! `hoop connect` listens on a local port; each local client gets its own
//! tunnel to the gateway (an HTTP upgrade carrying the person's token), so
//! the local port needs no password and any native client works. With an
//! `https://` API URL each tunnel starts with TLS, then the same upgrade.
//! A gateway on this host (a loopback API URL) is handed each client's
//! socket instead, with the same token and checks
//! ([`hoop_gateway::same_host`]): one hop fewer for every byte.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use hoop_gateway::api::EXEC_STREAM;
use hoop_gateway::client::{ApiClient, ApiStream, Endpoint};
use hoop_gateway::same_host::{self, ConnectSocket, HandoffError};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
) -> anyhow::Result<()> {
    let (url, token) = login::settings()?;
    let gateway = login::endpoint(&url)?;
    let client = ApiClient::with_endpoint(gateway.clone(), Some(token.clone()));
    let connection = client.get(&format!("/api/connections/{name}")).await?;
    if !connection.status.is_success() {
        bail!("connection {name}: {}", message(&connection.body));
    }
    let subtype = connection.body["subtype"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if connection.body["access_mode_connect"] == "disabled" {
        bail!("connect access is disabled on connection {name}");
    }
    let port = port.unwrap_or(match subtype.as_str() {
        "postgres" => 5433,
        "mysql" => 3307,
        _ => bail!(
            "connection {name} is of subtype {subtype:?}; hoop connect serves postgres and mysql"
        ),
    });
    let listener = TcpListener::bind((bind, port))
        .await
        .with_context(|| format!("listening on {bind}:{port}"))?;
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
    let path = format!("/api/connections/{name}/tunnel");
    let serve = async {
        loop {
            let (local, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    eprintln!("accept failed: {error}");
                    continue;
                }
            };
            let (gateway, path, token, socket, name) = (
                gateway.clone(),
                path.clone(),
                token.clone(),
                socket.clone(),
                name.to_owned(),
            );
            tokio::spawn(async move {
                let local = match socket {
                    Some(socket) => match same_host::hand_over(&socket, local, &name, &token).await
                    {
                        Ok(()) => return,
                        // Not this user's socket, or the gateway moved:
                        // the tunnel still reaches it.
                        Err(HandoffError::Unreachable { client, .. }) => client,
                        Err(error) => {
                            eprintln!("session refused: {error}");
                            return;
                        }
                    },
                    None => local,
                };
                if let Err(error) = tunnel(local, &gateway, &path, &token).await {
                    eprintln!("session refused: {error:#}");
                }
            });
        }
    };
    tokio::select! {
        () = serve => Ok(()),
        () = hoop_gateway::cli::wait_for_shutdown() => Ok(()),
    }
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

fn message(body: &Value) -> String {
    body["message"]
        .as_str()
        .map_or_else(|| body.to_string(), str::to_owned)
}

/// One local client: open a fresh API connection (TLS first for
/// `https://`), upgrade it, then relay.
async fn tunnel(
    local: TcpStream,
    gateway: &Endpoint,
    path: &str,
    token: &str,
) -> anyhow::Result<()> {
    local.set_nodelay(true)?;
    let remote = gateway
        .connect()
        .await
        .with_context(|| format!("reaching the gateway at {}", gateway.address()))?;
    // One match here, so the relay below is compiled for each stream and
    // the plain path relays straight between two sockets, as before TLS.
    match remote {
        ApiStream::Plain(remote) => {
            upgrade_and_relay(local, remote, gateway.address(), path, token).await
        }
        ApiStream::Tls(remote) => {
            upgrade_and_relay(local, remote, gateway.address(), path, token).await
        }
    }
}

/// Sends the tunnel's upgrade request on `remote`, reads the answer, then
/// relays bytes between `local` and `remote` until either ends.
async fn upgrade_and_relay<S>(
    mut local: TcpStream,
    mut remote: S,
    gateway: &str,
    path: &str,
    token: &str,
) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {gateway}\r\nAuthorization: Bearer {token}\r\n\
         Connection: Upgrade\r\nUpgrade: {}\r\nContent-Length: 0\r\n\r\n",
        hoop_gateway::api::TUNNEL_PROTOCOL
    );
    remote.write_all(request.as_bytes()).await?;
    // TLS may hold the request's records until flushed.
    remote.flush().await?;
    let mut head = Vec::with_capacity(1024);
    let end = loop {
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if head.len() > MAX_RESPONSE_HEAD {
            bail!("the gateway's answer is too large");
        }
        let mut chunk = [0u8; 4096];
        let n = remote.read(&mut chunk).await?;
        if n == 0 {
            bail!("the gateway closed the connection");
        }
        head.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let status = text.split_whitespace().nth(1).unwrap_or_default();
    if status != "101" {
        let mut body = head[end..].to_vec();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            remote.read_to_end(&mut body),
        )
        .await;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        bail!("{} ({status})", message(&body));
    }
    local.write_all(&head[end..]).await?;
    tokio::io::copy_bidirectional(&mut local, &mut remote).await?;
    Ok(())
}

/// `hoop exec`: runs the input, prints the output; the exit code follows.
pub(crate) async fn exec(
    name: &str,
    input: Option<String>,
    file: Option<PathBuf>,
    output: &str,
) -> anyhow::Result<i32> {
    let script = match (input, file) {
        (Some(input), _) => input,
        (None, Some(file)) if file.as_os_str() != "-" => {
            std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?
        }
        _ => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            text
        }
    };
    let client = login::client()?;
    let body = json!({"connection": name, "script": script, "output": output});
    let mut response = client
        .post_streaming("/api/sessions", &body, EXEC_STREAM)
        .await?;
    if !response.content_type.starts_with(EXEC_STREAM) {
        // A refusal, or a gateway that answers whole: one JSON body.
        let status = response.status;
        return Ok(print_answer(status.is_success(), &response.json().await?));
    }
    // The output streams: each line is printed as it arrives, so a result
    // of any size passes through in bounded memory.
    match print_stream(&mut response).await {
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
const SIGPIPE_EXIT: i32 = 128 + 13;

/// Prints a streamed exec answer's output as it arrives; returns the exit
/// code from its last line.
async fn print_stream(
    response: &mut hoop_gateway::client::StreamingResponse,
) -> anyhow::Result<i32> {
    let mut stdout = std::io::stdout().lock();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line: Value = serde_json::from_slice(&line)
                .context("the gateway sent a line that is not JSON")?;
            if let Some(text) = line["output"].as_str() {
                stdout.write_all(text.as_bytes())?;
            } else if line.get("status").is_some() {
                stdout.flush()?;
                return Ok(print_answer(true, &line));
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

/// Prints an exec answer's output (when it has any) and error; returns the
/// exit code.
fn print_answer(success: bool, body: &Value) -> i32 {
    if let Some(text) = body["output"].as_str() {
        print!("{text}");
    }
    if body["truncated"] == true {
        eprintln!("(output truncated)");
    }
    let code = body["exit_code"]
        .as_i64()
        .and_then(|c| i32::try_from(c).ok())
        .unwrap_or(1);
    if code != 0 || !success {
        let error = body["error"]
            .as_str()
            .or_else(|| body["message"].as_str())
            .unwrap_or("the session failed");
        eprintln!("{error}");
        return if code == 0 { 1 } else { code };
    }
    0
}
