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
