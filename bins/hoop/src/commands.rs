//! Subcommands and their dispatch.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hyper::Method;
use serde_json::Value;

use crate::admin::{self, Resource};
use crate::api::Api;
use crate::login;
use crate::output::{self, Format, field};

/// The hoop command line.
#[derive(Debug, Parser)]
#[command(
    name = "hoop",
    version,
    about = "hoop: access gateway for databases and services",
    after_help = "Start here: `hoop up`, then `hoop admin create conn ...`, \
                  `hoop admin get conn` and `hoop exec NAME -i 'SELECT 1'`."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// Whether the command serves others (`hoop up`: a gateway and an
    /// agent, worth every core). The rest are one person's client, and
    /// `hoop connect` in particular relays each byte twice: one thread
    /// spares it the wakeups of handing work between threads, which cost
    /// more per round trip than the relaying itself.
    pub(crate) fn serves(&self) -> bool {
        matches!(self.command, Command::Up(_))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a gateway and an embedded agent ("default") in one process.
    Up(crate::up::UpArgs),
    /// Save the API URL and a token for the other commands.
    Login {
        /// The gateway's API URL.
        #[arg(long, env = "HOOP_API_URL", default_value = login::DEFAULT_API_URL)]
        api_url: String,
        /// The token (read from standard input when absent).
        #[arg(long, env = "HOOP_TOKEN")]
        token: Option<String>,
    },
    /// Administration in hoop's shapes: create, get and delete connections,
    /// agents and users; get plugins, sessions and guardrails.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Connections (also `hoop admin ... conn`).
    #[command(subcommand)]
    Connections(ConnectionsCommand),
    /// Agents (also `hoop admin ... agent`).
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Open a local port to a connection; native clients use it with no password.
    Connect {
        /// The connection's name.
        name: String,
        /// Local port (default: 5433 for postgres, 3307 for mysql).
        #[arg(short, long)]
        port: Option<u16>,
        /// Local address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// Tunnel every client over the API, even to a gateway on this
        /// host (which is otherwise handed the client's socket directly).
        #[arg(long)]
        tunnel: bool,
        /// On a connection with reviewers: ask for access for this long
        /// (30m, 2h, 1d), wait for approval, then serve the port.
        #[arg(short, long, value_parser = hoop_gateway::cli::parse_duration)]
        duration: Option<std::time::Duration>,
    },
    /// Run SQL on a connection and print the result (exits non-zero on an error).
    Exec {
        /// The connection's name.
        name: String,
        /// The input to run.
        #[arg(short, long, conflicts_with = "file")]
        input: Option<String>,
        /// A file holding the input (`-` for standard input, the default
        /// when something is piped in).
        #[arg(short, long)]
        file: Option<PathBuf>,
        /// text (a header row, then tab-separated rows, NULL empty) or
        /// json (an array of row objects; numbers, booleans and NULL typed).
        #[arg(short, long, default_value = "text", value_parser = ["text", "json"])]
        output: String,
        /// On a connection with reviewers: request the review and return at
        /// once, printing its id, instead of waiting for the output.
        #[arg(long)]
        no_wait: bool,
    },
    /// Recorded sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Reviews (access requests): list, show, approve, reject, revoke.
    #[command(subcommand)]
    Reviews(crate::reviews::ReviewsCommand),
}

#[derive(Debug, Subcommand)]
enum SessionsCommand {
    /// List sessions, newest first.
    List {
        /// At most this many.
        #[arg(long)]
        limit: Option<usize>,
        /// Only this connection's.
        #[arg(long)]
        connection: Option<String>,
        /// Only this user's (e-mail).
        #[arg(long)]
        user: Option<String>,
        /// Only those started since: a duration back (30m, 2h, 7d), an
        /// RFC 3339 time or milliseconds since the epoch.
        #[arg(long)]
        since: Option<String>,
        /// Only with this status (open, done, failed, refused).
        #[arg(long)]
        status: Option<String>,
        /// table, json or yaml.
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Show one session and its events.
    Show {
        /// The session's id.
        id: String,
        /// table (the session, then its events as JSON lines), json or yaml
        /// (the session alone).
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
}

#[derive(Debug, Subcommand)]
enum ConnectionsCommand {
    /// List connections with their status (`hoop admin get conn`).
    List {
        /// table, json or yaml.
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Show one connection (`hoop admin get conn NAME`).
    Get {
        /// Name or id.
        name: String,
        /// table, json or yaml.
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Create a connection from a JSON file (the API's body; `-` for stdin).
    Create {
        /// The file.
        file: PathBuf,
    },
    /// Delete a connection (`hoop admin delete conn NAME`).
    Delete {
        /// Name or id.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum AgentsCommand {
    /// List agents with their link status (`hoop admin get agents`).
    List {
        /// table, json or yaml.
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Register an agent and print its key (`hoop admin create agent NAME`).
    Create {
        /// The agent's name.
        name: String,
    },
    /// Delete an agent (`hoop admin delete agent NAME`).
    Delete {
        /// Name or id.
        name: String,
    },
}

/// Runs the command; the process's exit status is what it returns.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Up(args) => crate::up::run(args).await.map(|()| 0),
        Command::Login { api_url, token } => login::login(&api_url, token)
            .await
            .with_context(|| format!("logging in to {api_url}"))
            .map(|()| 0),
        Command::Admin(command) => admin::run(command).await.map(|()| 0),
        Command::Connections(command) => connections(command).await.map(|()| 0),
        Command::Agents(command) => agents(command).await.map(|()| 0),
        Command::Connect {
            name,
            port,
            bind,
            tunnel,
            duration,
        } => crate::sessions::connect(&name, port, &bind, tunnel, duration)
            .await
            .with_context(|| format!("connecting to {name}"))
            .map(|()| 0),
        Command::Exec {
            name,
            input,
            file,
            output,
            no_wait,
        } => crate::sessions::exec(&name, input, file, &output, no_wait)
            .await
            .with_context(|| format!("exec on {name}")),
        Command::Sessions(command) => sessions(command).await.map(|()| 0),
        Command::Reviews(command) => crate::reviews::run(command).await.map(|()| 0),
    }
}

async fn connections(command: ConnectionsCommand) -> anyhow::Result<()> {
    let api = Api::from_login()?;
    match command {
        ConnectionsCommand::List { output } => {
            admin::get(&api, Resource::Connections, None, output)
                .await
                .context("listing connections")
        }
        ConnectionsCommand::Get { name, output } => {
            admin::get(&api, Resource::Connections, Some(&name), output)
                .await
                .with_context(|| format!("getting connection {name}"))
        }
        ConnectionsCommand::Create { file } => {
            let body = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading standard input")?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let body: Value = serde_json::from_str(&body)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let created = api
                .call(Method::POST, "/api/connections", Some(&body))
                .await
                .context("creating a connection")?;
            println!(
                "connection {} created ({})",
                field(&created, "name"),
                field(&created, "status")
            );
            Ok(())
        }
        ConnectionsCommand::Delete { name } => {
            api.call(
                Method::DELETE,
                &format!("/api/connections/{}", admin::segment(&name)),
                None,
            )
            .await
            .with_context(|| format!("deleting connection {name}"))?;
            println!("connection {name} deleted");
            Ok(())
        }
    }
}

async fn agents(command: AgentsCommand) -> anyhow::Result<()> {
    let api = Api::from_login()?;
    match command {
        AgentsCommand::List { output } => admin::get(&api, Resource::Agents, None, output)
            .await
            .context("listing agents"),
        AgentsCommand::Create { name } => {
            let created = api
                .call(
                    Method::POST,
                    "/api/agents",
                    Some(&serde_json::json!({"name": name})),
                )
                .await
                .with_context(|| format!("creating agent {name}"))?;
            println!("{}", field(&created, "token"));
            Ok(())
        }
        AgentsCommand::Delete { name } => {
            api.call(
                Method::DELETE,
                &format!("/api/agents/{}", admin::segment(&name)),
                None,
            )
            .await
            .with_context(|| format!("deleting agent {name}"))?;
            println!("agent {name} deleted");
            Ok(())
        }
    }
}

/// `value` percent-encoded for a query string.
pub(crate) fn query_value(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

async fn sessions(command: SessionsCommand) -> anyhow::Result<()> {
    let api = Api::from_login()?;
    match command {
        SessionsCommand::List {
            limit,
            connection,
            user,
            since,
            status,
            output,
        } => {
            let mut query = Vec::new();
            for (key, value) in [
                ("connection", connection),
                ("user", user),
                ("status", status),
            ] {
                if let Some(value) = value {
                    query.push(format!("{key}={}", query_value(&value)));
                }
            }
            if let Some(since) = since {
                query.push(format!(
                    "since={}",
                    output::parse_since(&since, output::now_ms())?
                ));
            }
            let path = if query.is_empty() {
                "/api/sessions".to_owned()
            } else {
                format!("/api/sessions?{}", query.join("&"))
            };
            let mut listed = api.get(&path).await.context("listing sessions")?;
            // The gateway returns the newest first (1,000 at most).
            if let (Some(limit), Value::Array(items)) = (limit, &mut listed) {
                items.truncate(limit);
            }
            let items = listed.as_array().cloned().unwrap_or_default();
            output::print(output, &listed, || admin::sessions_table(&items));
            Ok(())
        }
        SessionsCommand::Show { id, output } => {
            let path = format!("/api/sessions/{}", admin::segment(&id));
            let session = api
                .get(&path)
                .await
                .with_context(|| format!("getting session {id}"))?;
            if output != Format::Table {
                output::print(output, &session, || output::Table::new(&[]));
                return Ok(());
            }
            print!(
                "{}",
                admin::sessions_table(std::slice::from_ref(&session)).render()
            );
            if let Some(error) = session["error"].as_str() {
                println!("error: {error}");
            }
            let events = api
                .get(&format!("{path}/events"))
                .await
                .with_context(|| format!("getting the events of session {id}"))?;
            match events {
                Value::String(lines) => print!("{lines}"),
                Value::Null => {}
                // A single event line parses as JSON on its own.
                other => println!("{other}"),
            }
            Ok(())
        }
    }
}
