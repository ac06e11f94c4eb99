//! `hoop-agent`: reads its key from `HOOP_KEY` and serves until killed.

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let key: hoop_agent::AgentKey = std::env::var("HOOP_KEY")
        .context("set HOOP_KEY to the key from POST /api/agents")?
        .parse()?;
    let tls = match std::env::var_os("HOOP_TLS_CA") {
        Some(path) => Some(hoop_agent::tls_client_config(std::path::Path::new(&path))?),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(hoop_agent::run(hoop_agent::AgentConfig { key, tls }));
    Ok(())
}
