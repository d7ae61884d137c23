//! The `estuary` binary: parse the command line, hand off to a crate, map the result to an exit code.

mod cli;
mod reload;
mod sensor_args;
mod site;
mod standalone;
mod stdout;
mod tls;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::init_tracing(cli.verbose);
    match cli.run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("estuary: {err:#}");
            ExitCode::FAILURE
        }
    }
}
