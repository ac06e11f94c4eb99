//! `hoop-gateway`: the control plane, agent link server and client
//! listeners. The work is in the library; this parses flags and runs it.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use hoop_gateway::cli::GatewayArgs;

fn main() -> ExitCode {
    let args = GatewayArgs::parse();
    hoop_gateway::cli::init_tracing();
    // One line, `hoop-gateway: what failed: why`, and no backtrace even
    // with RUST_BACKTRACE set (a busy port is a person's error).
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hoop-gateway: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: GatewayArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let gateway = hoop_gateway::Gateway::start(args.into_config())
            .await
            .context("starting the gateway")?;
        hoop_gateway::cli::print_banner(&gateway);
        hoop_gateway::cli::wait_for_shutdown().await;
        // Every session ended and its audit stored before the process goes.
        gateway.shutdown().await;
        anyhow::Ok(())
    })
}
