//! Progress display, em-pipeline's [`em_pipeline::Progress`] drawn: indicatif bars on stderr
//! when it is a terminal; when it is not (output redirected to a log), a line when each stage
//! starts and a plain-text progress line every [`PLAIN_EVERY`]; nothing with `--quiet`. The
//! one-line stage summaries go to stdout (suppressed by `--quiet`).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// How often a plain-text progress line is written when stderr is not a terminal.
pub const PLAIN_EVERY: Duration = Duration::from_secs(15);

/// An indicatif "terminal" that writes the bar as a plain line to stderr at most every
/// [`PLAIN_EVERY`] (no cursor movement, no redraws).
#[derive(Debug)]
struct PlainLines {
    last: Mutex<Option<Instant>>,
}

impl PlainLines {
    fn emit(&self, s: &str) -> std::io::Result<()> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(());
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < PLAIN_EVERY) {
            return Ok(());
        }
        *last = Some(Instant::now());
        eprintln!("{s}");
        Ok(())
    }
}

impl TermLike for PlainLines {
    fn width(&self) -> u16 {
        120
    }
    fn move_cursor_up(&self, _n: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _n: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _n: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _n: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.emit(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.emit(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where progress and summaries go for one command.
#[derive(Clone, Debug)]
pub struct Progress {
    quiet: bool,
    bars: bool,
}

impl Progress {
    /// Bars only on a terminal and when not quiet.
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            bars: !quiet && std::io::stderr().is_terminal(),
        }
    }

    /// Whether progress goes to stderr as plain lines (not quiet, stderr not a terminal).
    fn plain(&self) -> bool {
        !self.quiet && !self.bars
    }

    /// A bar of `len` steps labelled `name`: drawn on a terminal, plain periodic lines
    /// otherwise, hidden when quiet.
    pub fn bar(&self, name: &str, len: u64) -> ProgressBar {
        let target = if self.bars {
            ProgressDrawTarget::stderr()
        } else if self.plain() {
            ProgressDrawTarget::term_like(Box::new(PlainLines {
                last: Mutex::new(None),
            }))
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(len), target);
        let template = if self.bars {
            "{prefix:>8} [{bar:30}] {pos}/{len} {msg} ({elapsed})"
        } else {
            "{prefix}: {pos}/{len} {msg} ({elapsed})"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(name.to_string());
        bar
    }

    /// Print one summary line (stdout) unless quiet.
    pub fn line(&self, text: &str) {
        if !self.quiet {
            println!("{text}");
        }
    }
}

/// An indicatif bar as a stage's [`em_pipeline::ProgressBar`].
struct Shown(ProgressBar);

impl em_pipeline::ProgressBar for Shown {
    fn set_position(&self, pos: u64) {
        self.0.set_position(pos);
    }
    fn inc(&self, delta: u64) {
        self.0.inc(delta);
    }
    fn set_message(&self, msg: String) {
        self.0.set_message(msg);
    }
    fn finish_and_clear(&self) {
        self.0.finish_and_clear();
    }
}

impl em_pipeline::Progress for Progress {
    fn bar(&self, name: &str, len: u64) -> em_pipeline::Bar {
        Box::new(Shown(Progress::bar(self, name, len)))
    }

    /// Say on stderr that stage `name` starts, when progress is plain text (on a terminal
    /// the bar says it).
    fn stage_started(&self, name: &str) {
        if self.plain() {
            eprintln!("{name}: running");
        }
    }

    /// The stage's one-line summary (stdout) unless quiet.
    fn stage_done(&self, report: &em_pipeline::StageReport) {
        self.line(&em_pipeline::runner::summary_line(report));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hides_bars() {
        let p = Progress::new(true);
        let bar = p.bar("energy", 10);
        assert!(bar.is_hidden());
        bar.inc(3);
        assert_eq!(bar.position(), 3);
    }
}
