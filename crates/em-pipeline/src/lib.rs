//! Staged, cached, resumable pipelines, knowing nothing of what the stages compute.
//!
//! A [`Stage`] declares its kind, config, input files and upstream stages (together its
//! cache [`Key`], see [`cache`]) and writes its outputs into the directory its [`StageCtx`]
//! gives it. The [`Runner`] runs a list of stages in one run directory: it skips fresh ones
//! (key and output checksums match the completion [`Record`]), runs stale ones into a
//! staging directory renamed into place on success (resumable stages keep theirs across a
//! kill), holds the [`RunLock`] meanwhile and tells a [`Progress`] what happens, which the
//! application renders. [`Runner::only`] runs one stage instance whose upstream stages are
//! finished (a cluster engine's job). [`run_dir`] makes a run directory owned by its [`Tool`], so that
//! cleaning it removes only what the tool wrote. [`snakemake`] writes the plan as a Snakefile
//! whose rules call the tool's `--only`.
//!
//! ```
//! use em_pipeline::{Outcome, Runner, Silent, Stage, StageCtx, Status, Tool};
//!
//! struct Hello;
//! impl Stage for Hello {
//!     fn name(&self) -> &str { "hello" }
//!     fn kind(&self) -> &str { "example.hello" }
//!     fn config(&self) -> serde_json::Value { serde_json::json!({ "greeting": "hi" }) }
//!     fn run(&self, ctx: &StageCtx) -> anyhow::Result<Outcome> {
//!         std::fs::write(ctx.out.join("hello.txt"), "hi")?;
//!         Ok(Outcome::default())
//!     }
//! }
//!
//! const TOOL: Tool = Tool {
//!     name: "example",
//!     marker: ".example-run",
//!     marker_text: "an example run directory\n",
//!     run_files: &[],
//!     choose_run_dir: "another folder",
//!     example_run_dir: |stem| format!("`runs/{stem}`"),
//! };
//! let dir = tempfile::tempdir()?;
//! let runner = Runner { tool: &TOOL, run_dir: dir.path().into(), force: None, progress: Silent };
//! let stages: Vec<Box<dyn Stage>> = vec![Box::new(Hello)];
//! assert_eq!(runner.run(&stages)?[0].status, Status::Ran);
//! assert_eq!(runner.run(&stages)?[0].status, Status::Fresh); // key and checksums match
//! assert_eq!(std::fs::read_to_string(dir.path().join("hello/hello.txt"))?, "hi");
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod cache;
pub mod only;
pub mod progress;
pub mod run_dir;
pub mod run_lock;
pub mod runner;
pub mod snakemake;
pub mod stage;

pub use cache::{Key, Record};
pub use only::{Only, UpstreamNotReady};
pub use progress::{Bar, Progress, ProgressBar, Silent};
pub use run_dir::Tool;
pub use run_lock::RunLock;
pub use runner::{PlannedStage, Runner, StageReport, Status};
pub use stage::{Outcome, Stage, StageCtx};

/// The version entered into every cache key and completion record: the workspace version
/// (the application's version too; a new version makes every stage stale).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
