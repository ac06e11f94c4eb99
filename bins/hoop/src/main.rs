//! The `hoop` command line: `hoop up` runs a gateway and an embedded agent
//! in one process; the other commands talk to a gateway's API.

mod commands;
mod login;
mod sessions;
mod up;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = commands::Cli::parse();
    hoop_gateway::cli::init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(commands::run(cli))
}
