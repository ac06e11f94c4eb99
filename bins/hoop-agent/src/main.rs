//! `hoop-agent`: reads its key from `HOOP_KEY` and serves until killed.

use std::process::ExitCode;

use anyhow::Context;

fn main() -> ExitCode {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    // One line, `hoop-agent: what failed: why`, and no backtrace even with
    // RUST_BACKTRACE set: these are a person's errors, not the program's.
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hoop-agent: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve() -> anyhow::Result<()> {
    let key: hoop_proxy::link::AgentKey = std::env::var("HOOP_KEY")
        .context("no key: set HOOP_KEY to the key `hoop admin create agent NAME` prints")?
        .parse()
        .context("HOOP_KEY is not an agent key")?;
    let tls = match std::env::var_os("HOOP_TLS_CA") {
        Some(path) => Some(
            hoop_proxy::agent::tls_client_config(std::path::Path::new(&path))
                .context("HOOP_TLS_CA is unusable")?,
        ),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(hoop_proxy::agent::run(hoop_proxy::agent::AgentConfig {
        key,
        tls,
    }));
    Ok(())
}
