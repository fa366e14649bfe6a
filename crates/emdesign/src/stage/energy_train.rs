//! Shared glue of the resumable Energy Matching stages (toy2d and protein `energy`): resume a
//! trainer from the stage's checkpoint directory, run it to the last step with a progress bar and
//! pruned checkpoints, and summarise the run as the stage's outcome: the contrastive share of
//! the gradient over the CD phase (`train_summary.json`) and the warnings (stderr and log).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::module::Module;
use em_core::data::DataMatrix;
use em_core::potential::Potential;
use em_core::train::{CdShareSummary, StepReport, TrainSettings, Trainer};

use super::{Outcome, StageCtx};

/// Sub-directory of the stage holding checkpoints.
pub const CHECKPOINTS: &str = "checkpoints";

/// Checkpoints kept in the stage directory (older ones are deleted as training goes).
pub const KEEP_CHECKPOINTS: usize = 2;

/// The loss log: one JSON line per step ([`StepReport`]), then one `{"step", "warning"}` line
/// per warning of the run.
pub const LOG: &str = "train_log.jsonl";

/// The run's summary: steps, the CD-phase gradient share ([`CdShareSummary`]) and warnings.
pub const SUMMARY: &str = "train_summary.json";

/// A trainer run to its last step inside a stage directory.
pub(super) struct EnergyRun<M> {
    /// The trainer after its last step.
    pub trainer: Trainer<M>,
    /// The stage's checkpoint directory.
    pub ckpt_dir: PathBuf,
    /// Step the trainer resumed at (0 for a fresh run).
    pub resumed_at: u64,
    /// Report of the last step run now (`None` when nothing was left to do).
    pub last: Option<StepReport>,
    /// Contrastive share of the gradient over the CD steps of the whole log.
    pub cd_share: Option<CdShareSummary>,
    /// Warnings of the run (also printed and logged).
    pub warnings: Vec<String>,
}

/// Train `model` on `data` up to `total` steps inside the stage directory: resume from its
/// checkpoints, keep the loss log to the steps really done, checkpoint every `every` steps and
/// at the end, keeping the newest [`KEEP_CHECKPOINTS`]. Warns (stderr, log and summary) when
/// the EMA (`[energy.train] ema_decay`) would keep much of the random initialisation, when
/// short negatives were allowed (`allow_short_negatives`), and when the contrastive share of
/// the gradient stays below 1% over the CD phase.
pub(super) fn train_resumable<M: Module + Potential>(
    ctx: &StageCtx,
    model: M,
    settings: TrainSettings,
    data: &DataMatrix,
    total: u64,
    every: u64,
) -> Result<EnergyRun<M>> {
    let mut warnings: Vec<String> = [
        settings.config().ema_warning("energy.train.ema_decay"),
        settings
            .config()
            .negatives_warning("energy.train.allow_short_negatives"),
    ]
    .into_iter()
    .flatten()
    .collect();
    for w in &warnings {
        eprintln!("{w}");
    }
    let ckpt_dir = ctx.out.join(CHECKPOINTS);
    std::fs::create_dir_all(&ckpt_dir)
        .with_context(|| format!("cannot create {}", ckpt_dir.display()))?;
    let trainer = Trainer::new(model, settings)
        .with_checkpoint_dir(&ckpt_dir)
        .resume()?;
    let resumed_at = trainer.step_count();
    let log = ctx.out.join(LOG);
    truncate_log(&log, resumed_at)?;
    let mut trainer = trainer.with_log(&log)?;

    let bar = ctx.progress.bar("energy", total);
    bar.set_position(resumed_at);
    let mut last = None;
    while trainer.step_count() < total {
        let r = trainer.step(data)?;
        bar.set_position(r.step);
        bar.set_message(format!("{} flow {:.4}", r.phase, r.flow));
        if r.step.is_multiple_of(every) || r.step == total {
            trainer.save_checkpoint()?;
            prune_checkpoints(&ckpt_dir, KEEP_CHECKPOINTS)?;
        }
        last = Some(r);
    }
    bar.finish_and_clear();
    let cd_share = CdShareSummary::from_shares(&logged_cd_shares(&log)?);
    if let Some(w) = cd_share
        .as_ref()
        .and_then(|s| s.warning("energy.train.lambda_cd"))
    {
        eprintln!("{w}");
        warnings.push(w);
    }
    append_warnings(&log, total, &warnings)?;
    let summary = serde_json::json!({
        "steps": total,
        "negatives": trainer.settings().config().negatives,
        "neg_horizon": trainer.settings().config().neg_steps as f64
            * trainer.settings().config().neg_dt,
        "allow_short_negatives": trainer.settings().config().allow_short_negatives,
        "cd_share": cd_share,
        "warnings": warnings,
    });
    let path = ctx.out.join(SUMMARY);
    std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(EnergyRun {
        trainer,
        ckpt_dir,
        resumed_at,
        last,
        cd_share,
        warnings,
    })
}

/// The `cd_share` of every logged CD step of the log at `path`.
fn logged_cd_shares(path: &Path) -> Result<Vec<f64>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("cd_share").and_then(serde_json::Value::as_f64))
        .collect())
}

/// Appends one `{"step": step, "warning": w}` line per warning to the log at `path`.
fn append_warnings(path: &Path, step: u64, warnings: &[String]) -> Result<()> {
    use std::io::Write as _;
    if warnings.is_empty() {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    for w in warnings {
        let line = serde_json::json!({ "step": step, "warning": w });
        writeln!(f, "{line}").with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

impl<M> EnergyRun<M> {
    /// The stage outcome of a run of `total` steps; `extra` headline items follow `steps`.
    pub(super) fn outcome(&self, total: u64, extra: Vec<(String, String)>) -> Outcome {
        let (resumed_at, last) = (self.resumed_at, &self.last);
        let mut headline = vec![("steps".into(), total.to_string())];
        headline.extend(extra);
        if resumed_at > 0 {
            headline.push(("resumed_at".into(), resumed_at.to_string()));
        }
        if let Some(r) = last {
            headline.push(("flow".into(), format!("{:.4}", r.flow)));
            if let Some(cd) = r.cd {
                headline.push(("cd".into(), format!("{cd:.4}")));
            }
        }
        if let Some(s) = &self.cd_share {
            headline.push(("cd_share".into(), format!("{:.2}%", 100.0 * s.median)));
        }
        Outcome {
            headline,
            metrics: serde_json::json!({
                "steps": total,
                "resumed_at": resumed_at,
                "final_flow_loss": last.as_ref().map(|r| r.flow),
                "final_cd": last.as_ref().and_then(|r| r.cd),
                "cd_share": self.cd_share,
                "warnings": self.warnings,
            }),
        }
    }
}

/// Delete all but the newest `keep` `ckpt-*.emck` files of `dir` (names sort by step).
pub(super) fn prune_checkpoints(dir: &Path, keep: usize) -> Result<()> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("ckpt-") && n.ends_with(".emck"))
        })
        .collect();
    names.sort();
    for old in names.iter().rev().skip(keep) {
        std::fs::remove_file(old)
            .with_context(|| format!("cannot remove old checkpoint {}", old.display()))?;
    }
    Ok(())
}

/// Keep only the log lines of steps `<= step` (the steps a resumed trainer has really done);
/// warning lines go too (the end of the run writes them again).
pub(super) fn truncate_log(path: &Path, step: u64) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .filter(|v| v.get("warning").is_none())
                .and_then(|v| v.get("step").and_then(serde_json::Value::as_u64))
                .is_some_and(|s| s <= step)
        })
        .collect();
    let mut out = kept.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| format!("cannot rewrite {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use em_core::checkpoint;

    #[test]
    fn prune_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for step in [5u64, 10, 100, 20] {
            std::fs::write(dir.path().join(checkpoint::file_name(step)), b"x").unwrap();
        }
        std::fs::write(dir.path().join("other.txt"), b"x").unwrap();
        prune_checkpoints(dir.path(), 2).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                checkpoint::file_name(20),
                checkpoint::file_name(100),
                "other.txt".into()
            ]
        );
    }

    #[test]
    fn truncate_log_keeps_done_steps() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.jsonl");
        std::fs::write(
            &p,
            "{\"step\":1}\n{\"step\":2}\n{\"step\":2,\"warning\":\"w\"}\n{\"step\":3}\n{\"ste",
        )
        .unwrap();
        truncate_log(&p, 2).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"step\":1}\n{\"step\":2}\n"
        );
    }
}
