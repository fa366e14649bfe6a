//! toy2d stage `energy`: train an `MlpPotential` on the data stage's points with em-core's
//! Energy Matching trainer, checkpointing into the (resumable) stage directory so a killed run
//! continues from its last checkpoint.

use std::path::Path;

use anyhow::{Context, Result};
use burn::prelude::*;
use em_core::checkpoint;
use em_core::nn::{MlpPotential, MlpPotentialConfig};
use em_core::train::{TrainConfig, step_seed};

use super::energy_train::CHECKPOINTS;
use super::energy_train::train_resumable;
use super::{Outcome, Stage, StageCtx, points};
use crate::workflow::plan::Energy;

/// Seed stream of the trainer (minibatches, OT, negatives).
pub const SEED_TRAIN: u64 = 3;
/// Seed stream of the weight initialisation.
pub const SEED_INIT: u64 = 4;

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
        self.cfg
            .train
            .train_config(step_seed(self.seed, SEED_TRAIN))
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
        let total = self.cfg.train.steps as u64;
        let every = self.cfg.train.checkpoint_every as u64;
        let run = train_resumable(ctx, mc.init(&device), settings, &data, total, every)?;
        if run.last.is_none() && checkpoint::latest(&run.ckpt_dir)?.is_none() {
            run.trainer.save_checkpoint()?;
        }
        Ok(run.outcome(total, Vec::new()))
    }
}
