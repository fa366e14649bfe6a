//! Protein stage `energy`: train the sequence potential V_theta (em-protein's residual Conv1d
//! network on the `[-1, 1]` one-hot embedding) on the split with em-core's Energy Matching
//! trainer, checkpointing into the resumable stage directory; writes `potential.empot`. With
//! `[latent]` the same potential, one channel wide, trains on the VAE encoder's means.

use std::path::Path;

use anyhow::{Context, Result};
use burn::prelude::*;
use em_core::checkpoint;
use em_core::data::DataMatrix;
use em_core::train::step_seed;
use em_protein::alphabet::ALPHABET_SIZE;
use em_protein::energy_model::save_potential;
use em_protein::latent::{latent_codes, latent_net};
use em_protein::representation::embed;

use super::energy_train::train_resumable;
use super::protein_files::{read_train, write_json};
use super::protein_latent::LatentInput;
use super::{Outcome, Stage, StageCtx};
use crate::workflow::protein::ProteinEnergy;

/// Seed stream of the energy trainer (weights, minibatches, negatives).
pub const SEED_ENERGY: u64 = 11;

/// File name of the trained potential.
pub const POTENTIAL: &str = "potential.empot";

/// File of a latent energy stage describing its representation ([`LatentSummary`]).
pub const LATENT_SUMMARY: &str = "latent.json";

/// What a latent energy stage trained on: the VAE, its latent size and how well it
/// reconstructs the training split (residues recovered by decoding the encoder's mean).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LatentSummary {
    /// The VAE checkpoint's file name.
    pub vae: String,
    /// Latent dimensions.
    pub latent_dim: usize,
    /// Fraction of training residues recovered by `decode(encode_mean(x))`.
    pub reconstruction_accuracy: f64,
}

/// The `energy` stage of a protein workflow.
pub struct ProteinEnergyStage {
    /// Settings from `[energy]`.
    pub cfg: ProteinEnergy,
    /// Workflow seed.
    pub seed: u64,
    /// `[latent]`: train on the VAE's latent codes instead of the one-hot embedding.
    pub latent: Option<LatentInput>,
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
        let mut c = serde_json::json!({ "energy": self.cfg, "seed": self.seed });
        // Latent workflows only, so one-hot keys stay as they were.
        if let Some(l) = &self.latent {
            c["representation"] = l.key();
        }
        c
    }
    fn input_files(&self) -> Vec<std::path::PathBuf> {
        self.latent.iter().map(|l| l.path.clone()).collect()
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
        let settings = cfg
            .train
            .clone()
            .check()
            .context("invalid `[energy.train]`")?;
        let mut headline = Vec::new();
        let (net, data) = match &self.latent {
            None => (
                cfg.model.seq_conv(length)?,
                DataMatrix::new(embed(train.sequences(), length), length * ALPHABET_SIZE)?,
            ),
            Some(l) => {
                let vae = l.load(&Device::flex())?;
                let accuracy = vae.reconstruction_accuracy(train.sequences());
                headline.push(("vae_recon".into(), format!("{accuracy:.4}")));
                write_json(
                    &ctx.out.join(LATENT_SUMMARY),
                    &LatentSummary {
                        vae: l
                            .path
                            .file_name()
                            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                        latent_dim: vae.latent_dim(),
                        reconstruction_accuracy: accuracy,
                    },
                )?;
                (
                    latent_net(&cfg.model, vae.latent_dim())?,
                    latent_codes(&vae, train.sequences())?,
                )
            }
        };
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
        headline.insert(0, ("train".into(), train.len().to_string()));
        Ok(run.outcome(total, headline))
    }
}
