//! Protein stage `energy`: train the sequence potential V_theta (em-protein's residual Conv1d
//! network on the `[-1, 1]` one-hot embedding) on the split with em-core's Energy Matching
//! trainer, checkpointing into the resumable stage directory; writes `potential.empot`.

use std::path::Path;

use anyhow::{Context, Result};
use burn::prelude::*;
use em_core::checkpoint;
use em_core::data::DataMatrix;
use em_core::train::step_seed;
use em_protein::alphabet::ALPHABET_SIZE;
use em_protein::energy_model::save_potential;
use em_protein::representation::embed;

use super::energy_train::train_resumable;
use super::protein_files::read_train;
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
        let total = cfg.train.total_steps;
        let every = cfg.train.checkpoint_every.max(1);
        let run = train_resumable(ctx, net.init(&device), settings, &data, total, every)?;
        save_potential(&potential_path(ctx.out), run.trainer.ema(), &cfg.model)?;
        // The potential is all later stages need; checkpoints only served resuming.
        if checkpoint::latest(&run.ckpt_dir)?.is_some() {
            std::fs::remove_dir_all(&run.ckpt_dir)
                .with_context(|| format!("cannot remove {}", run.ckpt_dir.display()))?;
        }
        let train_len = ("train".into(), train.len().to_string());
        Ok(run.outcome(total, vec![train_len]))
    }
}
