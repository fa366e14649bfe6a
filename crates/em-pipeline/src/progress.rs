//! Progress as callbacks the application renders (burn-train's renderer idea): the runner
//! says when a stage starts and finishes, a stage moves a [`ProgressBar`] it asks for; the
//! pipeline draws nothing itself. [`Silent`] draws nothing at all.

use crate::runner::StageReport;

/// One progress bar of a running stage (terminal bar, log lines, or nothing).
pub trait ProgressBar: Send + Sync {
    /// Set the number of steps done.
    fn set_position(&self, pos: u64);
    /// Add `delta` steps done.
    fn inc(&self, delta: u64);
    /// Set the text shown beside the bar.
    fn set_message(&self, msg: String);
    /// The work is done: remove the bar.
    fn finish_and_clear(&self);
}

/// A bar handed to a stage.
pub type Bar = Box<dyn ProgressBar>;

/// Where a run reports what happens.
pub trait Progress: Send + Sync {
    /// A bar of `len` steps labelled `name`.
    fn bar(&self, name: &str, len: u64) -> Bar;
    /// Stage `name` starts running (not called for fresh stages).
    fn stage_started(&self, _name: &str) {}
    /// A stage finished or was found fresh.
    fn stage_done(&self, _report: &StageReport) {}
    /// Something the user should know that does not stop the run.
    fn warning(&self, text: &str) {
        eprintln!("warning: {text}");
    }
}

/// Progress that shows nothing (tests, `--quiet` tools); warnings still go to stderr.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl ProgressBar for Silent {
    fn set_position(&self, _pos: u64) {}
    fn inc(&self, _delta: u64) {}
    fn set_message(&self, _msg: String) {}
    fn finish_and_clear(&self) {}
}

impl Progress for Silent {
    fn bar(&self, _name: &str, _len: u64) -> Bar {
        Box::new(Silent)
    }
}
