//! `hoop-gateway`: the control plane, agent link server and (later) client
//! listeners. The work is in the library; this parses flags and runs it.

use clap::Parser;
use hoop_gateway::cli::GatewayArgs;

fn main() -> anyhow::Result<()> {
    let args = GatewayArgs::parse();
    hoop_gateway::cli::init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let gateway = hoop_gateway::Gateway::start(args.into_config()).await?;
        hoop_gateway::cli::print_banner(&gateway);
        hoop_gateway::cli::wait_for_shutdown().await;
        // Every session ended and its audit stored before the process goes.
        gateway.shutdown().await;
        anyhow::Ok(())
    })
}
