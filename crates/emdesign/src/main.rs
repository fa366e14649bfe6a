//! The `emdesign` binary: parse the command line, run the command, print any error as one
//! `error: a: b: c` chain and exit 1 (clap itself exits 2 on a usage error).

mod bench;
mod cli;
mod commands;
mod image_cmd;
mod plot;
mod plot_protein;
mod progress;
mod protein;
mod report;
mod stage;
mod workflow;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(err) = commands::run(cli) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
