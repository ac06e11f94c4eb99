//! A standalone MySQL/MariaDB proxy built only from hoop's library crates:
//! the way someone embeds hoop.
//!
//! ```text
//! HOST=127.0.0.1 PORT=3306 USER=app PASS=... DB=app SSLMODE=prefer \
//!   cargo run --release --example mysql_proxy -- --listen 127.0.0.1:3307 \
//!     [--client-password SECRET] [--tls-cert cert.pem --tls-key key.pem] [--policy examples/policy.json]
//! mariadb -h 127.0.0.1 -P 3307 -u me
//! ```
//!
//! The upstream comes from the environment (`HOST`, `PORT`, `USER`, `PASS`,
//! `DB`, `SSLMODE`), the names hoop's connections use. Clients authenticate
//! with `--client-password` if given: hoop asks them for it with
//! `mysql_clear_password`, so use `--tls-cert`/`--tls-key` or a loopback
//! address. Without it clients are let in with any password: bind to
//! loopback in that case.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use hoop_proxy::auth::SharedSecret;
use hoop_proxy::mysql::MysqlProxy;
use hoop_proxy::policy::PolicyPipeline;
use hoop_proxy::{Credentials, Secret};

/// MySQL proxy; the upstream is read from HOST, PORT, USER, PASS, DB, SSLMODE.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3307")]
    listen: SocketAddr,
    /// Password clients must send; without it, clients need none.
    #[arg(long, env = "HOOP_CLIENT_PASSWORD", hide_env_values = true)]
    client_password: Option<String>,
    /// PEM certificate chain for TLS on the client leg.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS on the client leg.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Let the server read client files with LOAD DATA LOCAL INFILE.
    #[arg(long)]
    allow_local_infile: bool,
    /// Masking and guardrail policy (JSON, see `examples/policy.json`);
    /// without it, traffic passes untouched.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads);
    }
    runtime.enable_all().build()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let target = Credentials::from_process_env()
        .database_target(3306)
        .context("upstream from the environment")?;
    let mut builder = MysqlProxy::builder(target).allow_local_infile(args.allow_local_infile);
    if let Some(password) = args.client_password {
        builder = builder.authenticator(Arc::new(SharedSecret::new(Secret::new(password))));
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        builder = builder.client_tls(hoop_proxy::tls::acceptor_from_files(cert, key)?);
    }
    if let Some(path) = &args.policy {
        let json = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the policy {}", path.display()))?;
        let pipeline = PolicyPipeline::from_json(&json)
            .with_context(|| format!("policy {}", path.display()))?;
        builder = builder.pipeline(Arc::new(pipeline));
    }
    let proxy = builder.build()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!("mysql_proxy listening on {}", listener.local_addr()?);
    tokio::select! {
        () = proxy.serve(listener) => Ok(()),
        signal = tokio::signal::ctrl_c() => Ok(signal?),
    }
}
