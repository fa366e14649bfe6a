//! Protein stage `design`: for each seed, guided Langevin design with the trained potential
//! and the predictor (em-protein's `design`), with the configured interaction and, for the
//! ablation, without it. On own data the top-k skip every sequence of the data stage's
//! `train.csv` (all measured ones) and keep `min_distance`. Each batch is written as it
//! finishes, so a killed stage resumes. With `[latent]` the chains run in the VAE's latent
//! and the decoder's argmax gives the sequences.

use std::time::Instant;

use anyhow::Result;
use burn::prelude::*;
use em_protein::constraints::Constraints;
use em_protein::design::design_constrained;
use em_protein::energy_model::load_potential;
use em_protein::io::{Annotated, csv::write_csv};
use em_protein::latent::{check_latent_potential, design_latent};
use em_protein::selection::Selection;

use super::protein_energy::potential_path;
use super::protein_files::{
    Batch, batch_file, load_predictors, read_json, read_split, read_train, write_json,
};
use super::protein_latent::LatentInput;
use super::{Outcome, Stage, StageCtx};
use crate::workflow::protein::{Design, Predictor};

/// The `design` stage of a protein workflow.
pub struct ProteinDesignStage {
    /// Settings from `[design]`.
    pub cfg: Design,
    /// How the predictor was made (its shape).
    pub predictor: Predictor,
    /// What own data adds (`None` for a benchmark): no measured sequence, and the
    /// constraints when set.
    pub constraints: Option<OwnRules>,
    /// `[latent]`: design in the VAE's latent and decode with it.
    pub latent: Option<LatentInput>,
}

/// The design rules on own data: every sequence of the data stage's `train.csv` (all
/// measured ones) is excluded from the top-k, and `[design.constraints]` checked against
/// the wild type (the settings are in the stage's `cfg`, the wild type in the data stage's
/// key) when set.
#[derive(Debug, Clone)]
pub struct OwnRules {
    /// The checked constraints (with a wild type), `min_distance` among them.
    pub constraints: Option<Constraints>,
}

/// CSV name of a batch: `designs_seed<k>.csv` with the configured interaction,
/// `designs_seed<k>_<interaction>.csv` for the ablation.
pub fn csv_name(seed: u64, interaction: &str, primary: bool) -> String {
    if primary {
        format!("designs_seed{seed}.csv")
    } else {
        format!("designs_seed{seed}_{interaction}.csv")
    }
}

impl Stage for ProteinDesignStage {
    fn name(&self) -> &str {
        "design"
    }
    fn kind(&self) -> &str {
        "protein.design"
    }
    fn config(&self) -> serde_json::Value {
        let mut c = serde_json::json!({ "design": self.cfg, "predictor": self.predictor });
        // Own data only, so benchmark keys stay as they were.
        if self.constraints.is_some() {
            c["selection"] = serde_json::json!({ "exclude_measured": true });
        }
        if let Some(l) = &self.latent {
            c["representation"] = l.key();
        }
        c
    }
    fn input_files(&self) -> Vec<std::path::PathBuf> {
        self.latent.iter().map(|l| l.path.clone()).collect()
    }
    fn upstream(&self) -> Vec<&str> {
        vec!["data", "predictor", "energy"]
    }
    fn resumable(&self) -> bool {
        true
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let device = Device::flex();
        let split = read_split(ctx.input("data")?)?;
        let predictors = load_predictors(ctx.input("predictor")?, &self.predictor, &device)?;
        let ensemble = predictors.len() > 1;
        let (potential, _) = load_potential(&potential_path(ctx.input("energy")?), &device)?;
        let vae = match &self.latent {
            Some(l) => {
                let vae = l.load(&device)?;
                check_latent_potential(&potential, vae.latent_dim())?;
                Some(vae)
            }
            None => None,
        };
        let constraints = self
            .constraints
            .as_ref()
            .and_then(|r| r.constraints.as_ref());
        let selection = match &self.constraints {
            Some(_) => Some(Selection::new(
                read_train(ctx.input("data")?)?.into_parts().0,
                constraints.and_then(Constraints::min_distance),
            )),
            None => None,
        };
        let variants = self.cfg.variants();
        let jobs: Vec<(u64, bool, String)> = variants
            .iter()
            .flat_map(|(with, name)| self.cfg.seeds.iter().map(|&s| (s, *with, name.clone())))
            .collect();
        let bar = ctx.progress.bar("design", jobs.len() as u64);
        let mut resumed = 0;
        let mut batches = Vec::new();
        for (seed, with, name) in &jobs {
            let path = ctx.out.join(batch_file(*seed, name));
            let batch: Batch = if path.is_file() {
                resumed += 1;
                read_json(&path)?
            } else {
                bar.set_message(format!("seed {seed}, interaction {name}"));
                let start = Instant::now();
                let cfg = self.cfg.config(*with);
                let b = match &vae {
                    Some(vae) => design_latent(
                        &potential,
                        vae,
                        &predictors,
                        split.min_gt,
                        split.max_gt,
                        &cfg,
                        *seed,
                        &device,
                    )?,
                    None => design_constrained(
                        &potential,
                        &predictors,
                        split.min_gt,
                        split.max_gt,
                        &cfg,
                        *seed,
                        &device,
                        constraints,
                        selection.as_ref(),
                    )?,
                };
                if selection.is_some() && b.sequences.len() < cfg.top_k {
                    ctx.progress.warning(&format!(
                        "design seed {seed} ({name}): {} of top_k = {} designs found among {} \
                         distinct samples ({} already measured, {} within min_distance of a \
                         better design)",
                        b.sequences.len(),
                        cfg.top_k,
                        b.n_unique,
                        b.skipped_measured,
                        b.skipped_close
                    ));
                }
                let batch = Batch {
                    seed: *seed,
                    interaction: name.clone(),
                    n_samples: b.n_samples,
                    n_unique: b.n_unique,
                    sequences: b.sequences.iter().map(ToString::to_string).collect(),
                    predictor_scores: b.predictor_scores,
                    predictor_fitness: b.predictor_fitness,
                    skipped_measured: b.skipped_measured,
                    skipped_close: b.skipped_close,
                    // Kept only for an ensemble: one predictor's batch files are unchanged.
                    predictor_spread: if ensemble {
                        b.predictor_spread
                    } else {
                        Vec::new()
                    },
                    wall_secs: start.elapsed().as_secs_f64(),
                };
                let records: Vec<Annotated> = b
                    .sequences
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let mut fields = vec![
                            (
                                "predictor".into(),
                                format!("{:.4}", batch.predictor_scores[i]),
                            ),
                            (
                                "predictor_fitness".into(),
                                format!("{:.4}", batch.predictor_fitness[i]),
                            ),
                        ];
                        if let Some(sd) = batch.predictor_spread.get(i) {
                            fields.push(("predictor_spread".into(), format!("{sd:.4}")));
                        }
                        fields.push(("seed".into(), seed.to_string()));
                        fields.push(("interaction".into(), name.clone()));
                        Annotated {
                            id: format!("s{seed}_{name}_{:04}", i + 1),
                            sequence: s.clone(),
                            fields,
                        }
                    })
                    .collect();
                write_csv(&ctx.out.join(csv_name(*seed, name, *with)), &records)?;
                // The batch file is written last: its presence marks the batch done.
                write_json(&path, &batch)?;
                batch
            };
            bar.inc(1);
            batches.push(batch);
        }
        bar.finish_and_clear();
        let unique: usize = batches.iter().map(|b| b.n_unique).sum();
        let kept: usize = batches.iter().map(|b| b.sequences.len()).sum();
        let mut headline = vec![
            ("batches".into(), batches.len().to_string()),
            ("unique".into(), unique.to_string()),
            ("kept".into(), kept.to_string()),
        ];
        if resumed > 0 {
            headline.push(("resumed".into(), resumed.to_string()));
        }
        Ok(Outcome {
            headline,
            metrics: serde_json::json!({
                "batches": batches.iter().map(|b| serde_json::json!({
                    "seed": b.seed, "interaction": b.interaction, "n_unique": b.n_unique,
                    "kept": b.sequences.len(), "wall_secs": b.wall_secs,
                    "skipped_measured": b.skipped_measured, "skipped_close": b.skipped_close,
                })).collect::<Vec<_>>(),
            }),
        })
    }
}
