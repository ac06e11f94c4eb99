//! Subcommands and their dispatch.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use hoop_gateway::client::ApiClient;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::login;

/// The hoop command line.
#[derive(Debug, Parser)]
#[command(
    name = "hoop",
    version,
    about = "hoop: access gateway for databases and services"
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
    /// Connections.
    #[command(subcommand)]
    Connections(ConnectionsCommand),
    /// Agents.
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
    },
    /// Run SQL on a connection and print the result (exits non-zero on an error).
    Exec {
        /// The connection's name.
        name: String,
        /// The input to run.
        #[arg(short, long, conflicts_with = "file")]
        input: Option<String>,
        /// A file holding the input (`-` for standard input, the default).
        #[arg(short, long)]
        file: Option<PathBuf>,
        /// Output format: text (tab-separated rows) or json.
        #[arg(short, long, default_value = "text", value_parser = ["text", "json"])]
        output: String,
    },
    /// Recorded sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
}

#[derive(Debug, Subcommand)]
enum SessionsCommand {
    /// List sessions, newest first.
    List {
        /// Only this connection's.
        #[arg(long)]
        connection: Option<String>,
        /// Only with this status (open, done, failed, refused).
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one session and its events.
    Show {
        /// The session's id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConnectionsCommand {
    /// List connections with their status.
    List,
    /// Show one connection.
    Get {
        /// Name or id.
        name: String,
    },
    /// Create a connection from a JSON file (the API's body; `-` for stdin).
    Create {
        /// The file.
        file: PathBuf,
    },
    /// Delete a connection.
    Delete {
        /// Name or id.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum AgentsCommand {
    /// List agents with their link status.
    List,
    /// Register an agent and print its key (HOOP_KEY for hoop-agent).
    Create {
        /// The agent's name.
        name: String,
    },
    /// Delete an agent.
    Delete {
        /// Name or id.
        name: String,
    },
}

pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => crate::up::run(args).await,
        Command::Login { api_url, token } => login::login(&api_url, token).await,
        Command::Connections(command) => {
            let client = login::client()?;
            match command {
                ConnectionsCommand::List => {
                    print(&client, Method::GET, "/api/connections", None).await
                }
                ConnectionsCommand::Get { name } => {
                    print(
                        &client,
                        Method::GET,
                        &format!("/api/connections/{name}"),
                        None,
                    )
                    .await
                }
                ConnectionsCommand::Create { file } => {
                    let body = if file.as_os_str() == "-" {
                        std::io::read_to_string(std::io::stdin())?
                    } else {
                        std::fs::read_to_string(&file)
                            .with_context(|| format!("reading {}", file.display()))?
                    };
                    print(
                        &client,
                        Method::POST,
                        "/api/connections",
                        Some(body.into_bytes()),
                    )
                    .await
                }
                ConnectionsCommand::Delete { name } => {
                    print(
                        &client,
                        Method::DELETE,
                        &format!("/api/connections/{name}"),
                        None,
                    )
                    .await
                }
            }
        }
        Command::Connect {
            name,
            port,
            bind,
            tunnel,
        } => crate::sessions::connect(&name, port, &bind, tunnel).await,
        Command::Exec {
            name,
            input,
            file,
            output,
        } => {
            let code = crate::sessions::exec(&name, input, file, &output).await?;
            if code != 0 {
                use std::io::Write;
                let _ = std::io::stdout().flush();
                std::process::exit(code);
            }
            Ok(())
        }
        Command::Sessions(command) => {
            let client = login::client()?;
            match command {
                SessionsCommand::List { connection, status } => {
                    let mut query = Vec::new();
                    if let Some(connection) = connection {
                        query.push(format!("connection={connection}"));
                    }
                    if let Some(status) = status {
                        query.push(format!("status={status}"));
                    }
                    let path = if query.is_empty() {
                        "/api/sessions".to_owned()
                    } else {
                        format!("/api/sessions?{}", query.join("&"))
                    };
                    print(&client, Method::GET, &path, None).await
                }
                SessionsCommand::Show { id } => {
                    print(&client, Method::GET, &format!("/api/sessions/{id}"), None).await?;
                    let events = client.get(&format!("/api/sessions/{id}/events")).await?;
                    if let Value::String(lines) = &events.body {
                        print!("{lines}");
                    }
                    Ok(())
                }
            }
        }
        Command::Agents(command) => {
            let client = login::client()?;
            match command {
                AgentsCommand::List => print(&client, Method::GET, "/api/agents", None).await,
                AgentsCommand::Create { name } => {
                    let body = json!({"name": name}).to_string().into_bytes();
                    print(&client, Method::POST, "/api/agents", Some(body)).await
                }
                AgentsCommand::Delete { name } => {
                    print(
                        &client,
                        Method::DELETE,
                        &format!("/api/agents/{name}"),
                        None,
                    )
                    .await
                }
            }
        }
    }
}

async fn print(
    client: &ApiClient,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> anyhow::Result<()> {
    let response = client.send(method, path, body).await?;
    if response.status == StatusCode::NO_CONTENT {
        return Ok(());
    }
    let text = match &response.body {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other)?,
    };
    if response.status.is_success() {
        println!("{text}");
        Ok(())
    } else {
        bail!("{}: {text}", response.status)
    }
}
