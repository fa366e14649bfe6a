//! emdesign, the application: workflow files become checked plans, plans become
//! em-pipeline stages, and the runner runs them in a run directory.
//!
//! [`cli::Cli`] is the command line; [`run`] carries out one parsed command. A workflow file
//! is read and checked into a `workflow::Plan` in one step (`workflow::load`); `stage::build`
//! turns a plan into its stages (data, predictor/energy, design, evaluate, report for
//! proteins; the toy2d and image kinds beside them), and em-pipeline's `Runner` runs them,
//! skipping fresh ones. `bench` runs design methods x tasks x seeds under one budget; the
//! science lives in em-core, em-protein and em-image.

mod bench;
mod clean_cmd;
pub mod cli;
mod cluster;
mod commands;
mod image_cmd;
mod oracle_cmd;
mod plot;
mod plot_protein;
mod progress;
mod protein;
mod report;
mod rounds_cmd;
mod stage;
mod workflow;

pub use commands::run;

#[cfg(test)]
mod tests {
    /// Cache keys and records carry em-pipeline's version: it must stay the app's, or a
    /// release would not make old stages stale (or would make them stale for nothing).
    #[test]
    fn pipeline_version_is_the_app_version() {
        assert_eq!(em_pipeline::VERSION, env!("CARGO_PKG_VERSION"));
    }
}
