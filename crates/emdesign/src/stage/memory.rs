//! Resource bounds: a coarse memory estimate of each heavy stage, made from its settings
//! before it starts, compared with the memory this machine has available (or
//! `EMDESIGN_MEMORY_LIMIT`), so an impossible setting (`batch_size = 100000`: a 100000^2
//! OT cost matrix) is refused with the estimate and the limit instead of aborting mid-run.
//!
//! The estimates are our own upper-bound models, not measurements: quadratic terms (exact OT
//! cost matrix and its solver copy, pairwise interaction distances) at 2 x 8 bytes per
//! pair, plus activations at 4 bytes x sequence length x max(channels, 20) x 24 per sample
//! and layer (forward, explicit input gradient and autodiff tapes).

use anyhow::{Result, bail};

use super::{Outcome, Stage, StageCtx};
use crate::workflow::protein::Protein;

/// Environment variable that overrides the memory limit (bytes, or with a K/M/G suffix).
pub const LIMIT_ENV: &str = "EMDESIGN_MEMORY_LIMIT";

/// A stage's estimated peak memory and what dominates it.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Bytes.
    pub bytes: u64,
    /// What dominates, with the setting to change (`[energy.train] batch_size`).
    pub why: String,
}

fn gb(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

/// Per-sample activation bytes of the residual Conv1d potential.
fn activations(length: usize, channels: usize, blocks: usize) -> u64 {
    4 * length as u64 * channels.max(20) as u64 * 24 * (blocks as u64 + 2)
}

/// Estimates of a protein workflow's `energy` and `design` stages.
pub fn protein(p: &Protein) -> Vec<(&'static str, Estimate)> {
    let length = p.data.length();
    let e = &p.energy;
    let per = activations(length, e.hidden_channels.max(e.head_hidden), e.blocks);
    let b = e.train.batch_size as u64;
    let ot = 16 * b * b; // exact OT: always on for the protein trainer
    let energy = Estimate {
        bytes: ot + b * per,
        why: format!(
            "batch_size {b}: exact OT cost matrix {} + activations {}; lower `[energy.train] \
             batch_size`",
            gb(ot),
            gb(b * per)
        ),
    };
    let n = p.design.n_samples as u64;
    let pairs = if p.design.interaction == "none" {
        0
    } else {
        16 * n * n
    };
    let design = Estimate {
        bytes: pairs + n * per,
        why: format!(
            "n_samples {n}: pairwise interaction {} + activations {}; lower `[design] \
             n_samples`",
            gb(pairs),
            gb(n * per)
        ),
    };
    vec![("energy", energy), ("design", design)]
}

/// Parse `12345`, `512M`, `8G` (powers of 1024).
fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last()? {
        (i, 'K' | 'k') => (&t[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&t[..i], 1 << 20),
        (i, 'G' | 'g') => (&t[..i], 1 << 30),
        (i, 'T' | 't') => (&t[..i], 1 << 40),
        _ => (t, 1),
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| *v > 0.0)
        .map(|v| (v * mult as f64) as u64)
}

/// The memory limit: `EMDESIGN_MEMORY_LIMIT` when set, else `MemAvailable` of
/// `/proc/meminfo`; `None` when neither can be read (no check then).
pub fn limit() -> Result<Option<(u64, String)>> {
    if let Ok(v) = std::env::var(LIMIT_ENV) {
        return match parse_size(&v) {
            Some(b) => Ok(Some((b, format!("{LIMIT_ENV}={v}")))),
            None => bail!("{LIMIT_ENV}: expected bytes or a size like 8G, got `{v}`"),
        };
    }
    let Ok(info) = std::fs::read_to_string("/proc/meminfo") else {
        return Ok(None);
    };
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|kb| (kb * 1024, "memory available now".into())))
}

/// Refuse `stage` when its estimate exceeds the limit.
pub fn check(stage: &str, est: &Estimate) -> Result<()> {
    if let Some((limit, source)) = limit()?
        && est.bytes > limit
    {
        bail!(
            "stage `{stage}` would need about {} of memory ({}), more than the {} limit ({}); \
             not starting it",
            gb(est.bytes),
            est.why,
            gb(limit),
            source
        );
    }
    Ok(())
}

/// A stage with a memory estimate, checked by the runner before it starts (its preflight).
pub struct Bounded {
    /// The stage.
    pub inner: Box<dyn Stage>,
    /// Its estimate.
    pub estimate: Estimate,
}

impl Stage for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn kind(&self) -> &str {
        self.inner.kind()
    }
    fn config(&self) -> serde_json::Value {
        self.inner.config()
    }
    fn input_files(&self) -> Vec<std::path::PathBuf> {
        self.inner.input_files()
    }
    fn upstream(&self) -> Vec<&str> {
        self.inner.upstream()
    }
    fn resumable(&self) -> bool {
        self.inner.resumable()
    }
    fn key(&self, upstream: &[(String, super::cache::Key)]) -> Result<super::cache::Key> {
        self.inner.key(upstream)
    }
    fn preflight(&self) -> Result<()> {
        self.inner.preflight()?;
        check(self.name(), &self.estimate)
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        self.inner.run(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("8G"), Some(8 << 30));
        assert_eq!(parse_size("512 M"), Some(512 << 20));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("-1G"), None);
    }

    #[test]
    fn activation_model_by_hand() {
        // 4 bytes x 28 residues x max(8, 20) channels x 24 x (1 block + 2)
        assert_eq!(activations(28, 8, 1), 4 * 28 * 20 * 24 * 3);
    }
}
