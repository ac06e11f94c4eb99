//! A standalone PostgreSQL proxy built only from hoop's library crates: the
//! way someone embeds hoop.
//!
//! ```text
//! HOST=127.0.0.1 PORT=5432 USER=app PASS=... DB=app SSLMODE=prefer \
//!   cargo run --release --example pg_proxy -- --listen 127.0.0.1:6432 \
//!     [--client-password SECRET] [--tls-cert cert.pem --tls-key key.pem] [--policy examples/policy.json]
//! psql "host=127.0.0.1 port=6432 user=me"
//! ```
//!
//! The upstream comes from the environment (`HOST`, `PORT`, `USER`, `PASS`,
//! `DB`, `SSLMODE`), the names hoop's connections use. Clients authenticate
//! with `--client-password` if given (sent as their password), otherwise
//! they are let in without one: bind to loopback in that case.

mod proxy_cli;

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;
use hoop_proxy::Credentials;
use hoop_proxy::postgres::PostgresProxy;

use self::proxy_cli::{ProxyArgs, serve_until_ctrl_c};

/// PostgreSQL proxy; the upstream is read from HOST, PORT, USER, PASS, DB, SSLMODE.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:6432")]
    listen: SocketAddr,
    #[command(flatten)]
    proxy: ProxyArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.proxy.run(run(&args))
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let target = Credentials::from_process_env()
        .database_target(5432)
        .context("upstream from the environment")?;
    let proxy = args
        .proxy
        .configure(PostgresProxy::builder(target))?
        .build()?;
    serve_until_ctrl_c("pg_proxy", args.listen, |listener| async move {
        proxy.serve(listener).await;
    })
    .await
}
