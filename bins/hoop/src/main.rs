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
    let runtime = if cli.serves() {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
    .enable_all()
    .build()?;
    runtime.block_on(commands::run(cli))
}
