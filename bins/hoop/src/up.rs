//! `hoop up`: a gateway on the embedded store plus an embedded agent named
//! `default`, in one process: the quickest way to try everything.

use std::path::PathBuf;

use anyhow::Context;
use hoop_gateway::cli::GatewayFlags;
use hoop_gateway::{Gateway, config};

/// The embedded agent's name; connections without an agent get it.
const EMBEDDED_AGENT: &str = "default";

/// `hoop up` flags.
#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    gateway: GatewayFlags,
    /// Connections to create or update on start (TOML; see examples/hoop.toml).
    #[arg(long, env = "HOOP_CONFIG")]
    config: Option<PathBuf>,
    /// CA certificate (PEM) the embedded agent trusts when the agent
    /// listener has TLS; defaults to --tls-cert itself. The banner's
    /// examples name it for curl and the CLI (which read HOOP_TLS_CA too).
    #[arg(long, env = "HOOP_TLS_CA")]
    tls_ca: Option<PathBuf>,
}

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    let connections = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            config::parse_connections(&text, EMBEDDED_AGENT)
                .with_context(|| format!("in {}", path.display()))?
        }
        None => Vec::new(),
    };
    let tls_ca = args
        .tls_ca
        .clone()
        .or_else(|| args.gateway.tls_cert.clone());
    let gateway = Gateway::start(args.gateway.into_config())
        .await
        .context("starting the gateway")?;
    let key = gateway.embedded_agent_key(EMBEDDED_AGENT).await?;
    gateway.serve_in_place(EMBEDDED_AGENT).await?;
    let tls = match (&key.tls, &tls_ca) {
        (true, Some(ca)) => Some(hoop_proxy::agent::tls_client_config(ca)?),
        _ => None,
    };
    // The embedded agent journals its sessions' events with the gateway's
    // own: a crash of this process takes both.
    let journal = gateway
        .state()
        .events
        .journal()
        .context("the gateway keeps no audit journal")?;
    let agent = tokio::spawn(hoop_proxy::agent::run_embedded(
        hoop_proxy::agent::AgentConfig { key, tls },
        journal,
    ));
    let applied = gateway.apply_connections(&connections).await?;
    hoop_gateway::cli::print_banner(&gateway);
    println!("  agent:        {EMBEDDED_AGENT} (embedded)");
    for connection in &applied {
        println!(
            "  connection:   {} ({})",
            connection["name"].as_str().unwrap_or("?"),
            connection["subtype"].as_str().unwrap_or("custom")
        );
    }
    let tls = if gateway.listener_tls { " (TLS)" } else { "" };
    let mut listeners = Vec::new();
    if let Some(addr) = gateway.postgres_addr {
        listeners.push(format!("postgres {addr}{tls}"));
    }
    if let Some(addr) = gateway.mysql_addr {
        listeners.push(format!("mysql {addr}{tls}"));
    }
    if listeners.is_empty() {
        println!("  client listeners: none (--postgres-listen off, --mysql-listen off)");
    } else {
        println!(
            "  client listeners: {} (user = connection name, password = your token)",
            listeners.join(", ")
        );
    }
    println!("                    or: hoop connect NAME (a local port needing no password)");
    println!();
    let api = gateway.api_url();
    // With TLS, curl and the CLI must trust the CA that signed the
    // certificate, the one the embedded agent trusts.
    let (cacert, ca_env) = match (&gateway.listener_tls, &tls_ca) {
        (true, Some(ca)) => (
            format!("--cacert {} ", ca.display()),
            format!("HOOP_TLS_CA={} ", ca.display()),
        ),
        _ => (String::new(), String::new()),
    };
    // The CLI finds this gateway by itself when it listens where `hoop up`
    // does by default; otherwise it needs the URL.
    let url_env = if api == crate::login::DEFAULT_API_URL {
        String::new()
    } else {
        format!("HOOP_API_URL={api} ")
    };
    let env = format!("{ca_env}{url_env}");
    println!("  next (with hoop on your PATH: cargo install --path bins/hoop):");
    println!(
        "    {env}hoop admin create conn pg -a {EMBEDDED_AGENT} -t database/postgres \\
      \
         -e HOST=127.0.0.1 -e PORT=5432 -e USER=postgres"
    );
    println!("    {env}hoop admin get conn");
    println!("    {env}hoop exec pg -i 'select 1 as one'");
    println!("    curl -s {cacert}-H \"Authorization: Bearer $HOOP_TOKEN\" {api}/api/connections");
    hoop_gateway::cli::wait_for_shutdown().await;
    // The agent stays while the gateway stops, so its sessions' last audit
    // batches still arrive over its link.
    gateway.shutdown().await;
    agent.abort();
    Ok(())
}
