//! Staged, cached, resumable pipelines, knowing nothing of what the stages compute.
//!
//! A [`Stage`] declares its kind, config, input files and upstream stages (together its
//! cache [`Key`], see [`cache`]) and writes its outputs into the directory its [`StageCtx`]
//! gives it. The [`Runner`] runs a list of stages in one run directory: it skips fresh ones
//! (key and output checksums match the completion [`Record`]), runs stale ones into a
//! staging directory renamed into place on success (resumable stages keep theirs across a
//! kill), holds the [`RunLock`] meanwhile and tells a [`Progress`] what happens, which the
//! application renders. [`run_dir`] makes a run directory owned by its [`Tool`], so that
//! cleaning it removes only what the tool wrote.

pub mod cache;
pub mod progress;
pub mod run_dir;
pub mod run_lock;
pub mod runner;
pub mod stage;

pub use cache::{Key, Record};
pub use progress::{Bar, Progress, ProgressBar, Silent};
pub use run_dir::Tool;
pub use run_lock::RunLock;
pub use runner::{PlannedStage, Runner, StageReport, Status};
pub use stage::{Outcome, Stage, StageCtx};

/// The version entered into every cache key and completion record: the workspace version
/// (the application's version too; a new version makes every stage stale).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
