//! Protein stage `energy`: train the sequence potential V_theta (em-protein's residual Conv1d
//! network on the `[-1, 1]` one-hot embedding) on the split with em-core's Energy Matching
//! trainer, checkpointing into the resumable stage directory; writes `potential.empot`.

use std::path::Path;

use anyhow::{Context, Result};
use burn::prelude::*;
use em_core::checkpoint;
use em_core::data::DataMatrix;
use em_core::train::{Trainer, step_seed};
use em_protein::alphabet::ALPHABET_SIZE;
use em_protein::energy_model::save_potential;
use em_protein::representation::embed;

use super::protein_files::read_train;
use super::toy_energy::{CHECKPOINTS, KEEP_CHECKPOINTS, prune_checkpoints, truncate_log};
use super::{Outcome, Stage, StageCtx};
use crate::workflow::protein::ProteinEnergy;

/// Seed stream of the energy trainer (weights, minibatches, negatives).
pub const SEED_ENERGY: u64 = 11;

/// File name of the trained potential.
pub const POTENTIAL: &str = "potential.empot";

/// The `energy` stage of a protein workflow.
pub struct ProteinEnergyStage {
    /// Settings from `[energy]`.
    pub cfg: ProteinEnergy,
    /// Workflow seed.
    pub seed: u64,
}

/// Path of the potential in a finished energy stage directory.
pub fn potential_path(dir: &Path) -> std::path::PathBuf {
    dir.join(POTENTIAL)
}

impl Stage for ProteinEnergyStage {
    fn name(&self) -> &str {
        "energy"
    }
    fn kind(&self) -> &str {
        "protein.energy"
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
        let train = read_train(ctx.input("data")?)?;
        let length = train.length();
        let cfg = self.cfg.config(step_seed(self.seed, SEED_ENERGY));
        let net = cfg.model.seq_conv(length)?;
        let settings = cfg
            .train
            .clone()
            .check()
            .context("invalid `[energy.train]`")?;
        let data = DataMatrix::new(embed(train.sequences(), length), length * ALPHABET_SIZE)?;
        let device = Device::flex().autodiff();
        device.seed(cfg.train.seed);
        let ckpt_dir = ctx.out.join(CHECKPOINTS);
        std::fs::create_dir_all(&ckpt_dir)
            .with_context(|| format!("cannot create {}", ckpt_dir.display()))?;
        let trainer = Trainer::new(net.init(&device), settings)
            .with_checkpoint_dir(&ckpt_dir)
            .resume()?;
        let resumed_at = trainer.step_count();
        let log = ctx.out.join("train_log.jsonl");
        truncate_log(&log, resumed_at)?;
        let mut trainer = trainer.with_log(&log)?;

        let total = cfg.train.total_steps;
        let every = cfg.train.checkpoint_every.max(1);
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
        save_potential(&potential_path(ctx.out), trainer.ema(), &cfg.model)?;
        // The potential is all later stages need; checkpoints only served resuming.
        if checkpoint::latest(&ckpt_dir)?.is_some() {
            std::fs::remove_dir_all(&ckpt_dir)
                .with_context(|| format!("cannot remove {}", ckpt_dir.display()))?;
        }
        let mut headline = vec![
            ("steps".into(), total.to_string()),
            ("train".into(), train.len().to_string()),
        ];
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
