//! Progress display: indicatif bars on stderr, hidden when stderr is not a terminal or with
//! `--quiet`, and the one-line stage summaries on stdout (suppressed by `--quiet`).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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

    /// A bar of `len` steps labelled `name` (hidden when bars are off).
    pub fn bar(&self, name: &str, len: u64) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(
            Some(len),
            if self.bars {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
        {
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
