//! The `hoop` command line: `hoop up` runs a gateway and an embedded agent
//! in one process; the other commands talk to a gateway's API.
//!
//! Every failure prints one line, `hoop: <what failed>: <why>`, and exits
//! with status 1 (`hoop exec` exits with the session's code); no backtrace,
//! even with `RUST_BACKTRACE` set, since these are a person's errors.

mod admin;
mod api;
mod commands;
mod login;
mod output;
mod reviews;
mod sessions;
mod up;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

fn main() -> ExitCode {
    let cli = match commands::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage(&error),
    };
    // Before the runtime starts threads: the platform's call is only safe
    // in a process with one.
    output::init_local_offset();
    hoop_gateway::cli::init_tracing();
    let runtime = if cli.serves() {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
    .enable_all()
    .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(commands::run(cli)),
        Err(error) => Err(anyhow::Error::new(error).context("starting the runtime")),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("hoop: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A command line clap refused: help and version print as usual; a
/// mistake prints `hoop: ...` with clap's usage hint, status 1.
fn usage(error: &clap::Error) -> ExitCode {
    if !error.use_stderr() {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    let rendered = error.render().to_string();
    if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        eprint!("hoop: a command is missing\n\n{rendered}");
    } else {
        let text = rendered.strip_prefix("error: ").unwrap_or(&rendered);
        eprint!("hoop: {text}");
    }
    ExitCode::FAILURE
}
