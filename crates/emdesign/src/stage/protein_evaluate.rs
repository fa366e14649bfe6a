//! Protein stage `evaluate`: score every design batch with the task's oracle (GGS's, or
//! emdesign's embedded one on a fresh clone, named in the output) and measure
//! fitness, diversity and novelty per seed (GGS protocol), then mean (std) over seeds per
//! interaction setting; optionally the oracle fitness of the training split for reference.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::prelude::*;
use em_protein::design::evaluate;
use em_protein::metrics::{self, mean_std};
use em_protein::own_oracle::OracleSource;
use serde::{Deserialize, Serialize};

use super::protein_files::{Batch, batch_file, read_json, read_split, read_train, write_json};
use super::{Outcome, Stage, StageCtx};
use crate::workflow::protein::{Design, Evaluate};

/// One batch's oracle evaluation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchEval {
    /// Design seed.
    pub seed: u64,
    /// Interaction setting.
    pub interaction: String,
    /// Designs evaluated.
    pub n_designs: usize,
    /// Median normalised oracle fitness.
    pub fitness: f64,
    /// Mean pairwise edit distance.
    pub diversity: f64,
    /// Median edits to the nearest training sequence.
    pub novelty: f64,
    /// Normalised oracle fitness of each design (batch order).
    pub fitness_per_design: Vec<f64>,
    /// Edits to the nearest training sequence of each design.
    pub edits_from_training: Vec<u32>,
}

/// `mean` and `std` over seeds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
}

/// Mean (std) of the three metrics over seeds, for one interaction setting.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// Fitness.
    pub fitness: Stat,
    /// Diversity.
    pub diversity: Stat,
    /// Novelty.
    pub novelty: Stat,
}

/// `evaluate/evaluation.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluation {
    /// Per batch, in design order.
    pub batches: Vec<BatchEval>,
    /// Per interaction setting (`quadratic`, `none`, ...).
    pub summary: BTreeMap<String, Summary>,
    /// Normalised oracle fitness of every training sequence (empty when not scored).
    pub training_fitness: Vec<f64>,
    /// Which oracle scored (`ggs`, `emdesign-trained`; absent in runs made before it was
    /// recorded, which all used GGS's).
    #[serde(default)]
    pub oracle: Option<String>,
    /// The oracle line of the start message, for the report.
    #[serde(default)]
    pub oracle_note: Option<String>,
}

fn stat(v: &[f64]) -> Stat {
    let m = mean_std(v);
    Stat {
        mean: m.mean,
        std: m.std,
    }
}

/// The `evaluate` stage of a protein workflow.
pub struct ProteinEvaluateStage {
    /// Settings from `[evaluate]`.
    pub cfg: Evaluate,
    /// Which batches exist.
    pub design: Design,
    /// The oracle (GGS checkpoint or emdesign's embedded one).
    pub oracle: OracleSource,
}

impl Stage for ProteinEvaluateStage {
    fn name(&self) -> &str {
        "evaluate"
    }
    fn kind(&self) -> &str {
        "protein.evaluate"
    }
    fn config(&self) -> serde_json::Value {
        // The GGS oracle is keyed as an input file (its checksum), as before; emdesign's
        // embedded one by its pinned checksum, so its scores never pass for GGS's.
        match self.oracle.embedded_sha256() {
            Ok(Some(sha)) => serde_json::json!({
                "evaluate": self.cfg,
                "oracle": format!("emdesign-trained:{sha}"),
            }),
            _ => serde_json::json!({ "evaluate": self.cfg }),
        }
    }
    fn input_files(&self) -> Vec<PathBuf> {
        match &self.oracle {
            OracleSource::Ggs(path) => vec![path.clone()],
            OracleSource::Emdesign { .. } => Vec::new(),
        }
    }
    fn upstream(&self) -> Vec<&str> {
        vec!["data", "design"]
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let data = ctx.input("data")?;
        let split = read_split(data)?;
        let train = read_train(data)?;
        let oracle = self
            .oracle
            .load(&Device::flex())
            .with_context(|| format!("cannot load the {} oracle", self.oracle.name()))?;
        let design_dir = ctx.input("design")?;
        let variants = self.design.variants();
        let mut batches = Vec::new();
        for (_, name) in &variants {
            for &seed in &self.design.seeds {
                let b: Batch = read_json(&design_dir.join(batch_file(seed, name)))?;
                let seqs = b.parsed()?;
                let e = evaluate(
                    &seqs,
                    &oracle,
                    train.sequences(),
                    split.min_gt,
                    split.max_gt,
                );
                batches.push(BatchEval {
                    seed,
                    interaction: name.clone(),
                    n_designs: seqs.len(),
                    fitness: e.fitness,
                    diversity: e.diversity,
                    novelty: e.novelty,
                    fitness_per_design: e.fitness_per_design,
                    edits_from_training: e.edits_from_training,
                });
            }
        }
        let mut summary = BTreeMap::new();
        for (_, name) in &variants {
            let of = |f: fn(&BatchEval) -> f64| -> Vec<f64> {
                batches
                    .iter()
                    .filter(|b| &b.interaction == name)
                    .map(f)
                    .collect()
            };
            summary.insert(
                name.clone(),
                Summary {
                    fitness: stat(&of(|b| b.fitness)),
                    diversity: stat(&of(|b| b.diversity)),
                    novelty: stat(&of(|b| b.novelty)),
                },
            );
        }
        let training_fitness = if self.cfg.score_training {
            let idx: Vec<Vec<u8>> = train
                .sequences()
                .iter()
                .map(|s| s.indices().to_vec())
                .collect();
            let raw: Vec<f64> = oracle.try_score(&idx)?.into_iter().map(f64::from).collect();
            metrics::normalise(&raw, split.min_gt, split.max_gt)
        } else {
            Vec::new()
        };
        let eval = Evaluation {
            batches,
            summary,
            training_fitness,
            oracle: Some(self.oracle.name().into()),
            oracle_note: Some(self.oracle.describe()),
        };
        write_json(&ctx.out.join("evaluation.json"), &eval)?;
        let main = &variants[0].1;
        let mut headline = Vec::new();
        if let Some(s) = eval.summary.get(main) {
            headline.push(("fitness".into(), format!("{:.3}", s.fitness.mean)));
            headline.push(("diversity".into(), format!("{:.2}", s.diversity.mean)));
            headline.push(("novelty".into(), format!("{:.1}", s.novelty.mean)));
        }
        Ok(Outcome {
            headline,
            metrics: serde_json::to_value(&eval.summary)?,
        })
    }
}
