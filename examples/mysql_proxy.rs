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

mod proxy_cli;

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;
use hoop_proxy::Credentials;
use hoop_proxy::mysql::MysqlProxy;

use self::proxy_cli::{ProxyArgs, serve_until_ctrl_c};

/// MySQL proxy; the upstream is read from HOST, PORT, USER, PASS, DB, SSLMODE.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3307")]
    listen: SocketAddr,
    /// Let the server read client files with LOAD DATA LOCAL INFILE.
    #[arg(long)]
    allow_local_infile: bool,
    #[command(flatten)]
    proxy: ProxyArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.proxy.run(run(&args))
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let target = Credentials::from_process_env()
        .database_target(3306)
        .context("upstream from the environment")?;
    let builder = MysqlProxy::builder(target).allow_local_infile(args.allow_local_infile);
    let proxy = args.proxy.configure(builder)?.build()?;
    serve_until_ctrl_c("mysql_proxy", args.listen, |listener| async move {
        proxy.serve(listener).await;
    })
    .await
}
