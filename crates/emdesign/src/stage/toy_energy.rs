//! toy2d stage `energy`: train an `MlpPotential` on the data stage's points with em-core's
//! Energy Matching trainer, checkpointing into the (resumable) stage directory so a killed run
//! continues from its last checkpoint.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::prelude::*;
use em_core::checkpoint;
use em_core::nn::{MlpPotential, MlpPotentialConfig};
use em_core::train::{TrainConfig, Trainer, step_seed};

use super::{Outcome, Stage, StageCtx, points};
use crate::workflow::plan::Energy;

/// Seed stream of the trainer (minibatches, OT, negatives).
pub const SEED_TRAIN: u64 = 3;
/// Seed stream of the weight initialisation.
pub const SEED_INIT: u64 = 4;

/// Sub-directory of the stage holding checkpoints.
pub const CHECKPOINTS: &str = "checkpoints";

/// The `energy` stage of a toy2d workflow.
pub struct ToyEnergyStage {
    /// Settings from `[energy]`.
    pub cfg: Energy,
    /// Workflow seed.
    pub seed: u64,
}

impl ToyEnergyStage {
    fn model_config(&self) -> MlpPotentialConfig {
        MlpPotentialConfig::new(2)
            .with_hidden(self.cfg.hidden)
            .with_blocks(self.cfg.depth)
    }

    fn train_config(&self) -> TrainConfig {
        let t = &self.cfg.train;
        TrainConfig {
            lr: t.lr,
            total_steps: t.steps as u64,
            flow_steps: t.warmup_steps as u64,
            batch_size: t.batch_size,
            lambda_cd: t.lambda_cd,
            eps_max: t.eps_max,
            tau_star: t.tau_star,
            neg_steps: t.langevin_steps,
            neg_dt: t.langevin_dt,
            ema_decay: t.ema_decay,
            checkpoint_every: t.checkpoint_every as u64,
            seed: step_seed(self.seed, SEED_TRAIN),
            ..TrainConfig::default()
        }
    }
}

/// The trained potential (EMA weights, no autodiff) from a finished energy stage directory.
pub fn load_potential(energy_dir: &Path, cfg: &Energy) -> Result<MlpPotential> {
    let dir = energy_dir.join(CHECKPOINTS);
    let path =
        checkpoint::latest(&dir)?.with_context(|| format!("no checkpoint in {}", dir.display()))?;
    let device = Device::flex().autodiff();
    let mc = MlpPotentialConfig::new(2)
        .with_hidden(cfg.hidden)
        .with_blocks(cfg.depth);
    let loaded = checkpoint::load(
        &path,
        mc.init(&device),
        mc.init(&device),
        burn::optim::AdamConfig::new().init(),
    )?;
    Ok(loaded.ema.valid())
}

/// Checkpoints kept in the stage directory (older ones are deleted as training goes).
pub const KEEP_CHECKPOINTS: usize = 2;

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

/// Keep only the log lines of steps `<= step` (the steps a resumed trainer has really done).
pub(super) fn truncate_log(path: &Path, step: u64) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
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

impl Stage for ToyEnergyStage {
    fn name(&self) -> &str {
        "energy"
    }
    fn kind(&self) -> &str {
        "toy2d.energy"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "energy": self.cfg, "seed": self.seed })
    }
    fn upstream(&self) -> Vec<&str> {
        vec!["data"]
    }
    fn resumable(&self) -> bool {
        true
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let data = points::read(&ctx.input("data")?.join("train.csv"))?;
        let settings = self.train_config().check()?;
        let mc = self.model_config();
        mc.check()?;
        let device = Device::flex().autodiff();
        device.seed(step_seed(self.seed, SEED_INIT));
        let ckpt_dir: PathBuf = ctx.out.join(CHECKPOINTS);
        std::fs::create_dir_all(&ckpt_dir)
            .with_context(|| format!("cannot create {}", ckpt_dir.display()))?;
        let trainer = Trainer::new(mc.init(&device), settings)
            .with_checkpoint_dir(&ckpt_dir)
            .resume()?;
        let resumed_at = trainer.step_count();
        let log = ctx.out.join("train_log.jsonl");
        truncate_log(&log, resumed_at)?;
        let mut trainer = trainer.with_log(&log)?;

        let total = self.cfg.train.steps as u64;
        let every = self.cfg.train.checkpoint_every as u64;
        let bar = ctx.progress.bar("energy", total);
        bar.set_position(resumed_at);
        let mut last = None;
        while trainer.step_count() < total {
            let r = trainer.step(&data)?;
            bar.set_position(r.step);
            bar.set_message(format!("{} flow {:.4}", r.phase, r.flow));
            if r.step.is_multiple_of(every) || r.step == total {
                trainer.save_checkpoint()?;
                prune_checkpoints(&ckpt_dir, KEEP_CHECKPOINTS)?;
            }
            last = Some(r);
        }
        bar.finish_and_clear();
        if last.is_none() && checkpoint::latest(&ckpt_dir)?.is_none() {
            trainer.save_checkpoint()?;
        }
        let mut headline = vec![("steps".into(), total.to_string())];
        if resumed_at > 0 {
            headline.push(("resumed_at".into(), resumed_at.to_string()));
        }
        if let Some(r) = &last {
            headline.push(("flow".into(), format!("{:.4}", r.flow)));
            if let Some(cd) = r.cd {
                headline.push(("cd".into(), format!("{cd:.4}")));
            }
        }
        Ok(Outcome {
            headline,
            metrics: serde_json::json!({
                "steps": total,
                "resumed_at": resumed_at,
                "final_flow_loss": last.as_ref().map(|r| r.flow),
                "final_cd": last.as_ref().and_then(|r| r.cd),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        std::fs::write(&p, "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n{\"ste").unwrap();
        truncate_log(&p, 2).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"step\":1}\n{\"step\":2}\n"
        );
    }
}
