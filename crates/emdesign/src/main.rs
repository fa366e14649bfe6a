//! The `emdesign` binary: parse the command line, run the command, print any error as one
//! `error: a: b: c` chain and exit 1 (clap itself exits 2 on a usage error).

use clap::Parser;

fn main() {
    let cli = emdesign::cli::Cli::parse();
    if let Err(err) = emdesign::run(cli) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
