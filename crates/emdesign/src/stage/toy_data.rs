//! toy2d stage `data`: draw training and held-out points from an `em_core::toy` target (or
//! read a user's `x,y` CSV) into `train.csv` and `eval.csv`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use em_core::toy::Toy;
use em_core::train::step_seed;

use super::{Outcome, Stage, StageCtx, points};
use crate::workflow::plan::ToyData;

/// Seed streams derived from the workflow seed, one per random use.
pub const SEED_TRAIN_POINTS: u64 = 1;
/// Held-out points.
pub const SEED_EVAL_POINTS: u64 = 2;

/// The `data` stage of a toy2d workflow.
pub struct ToyDataStage {
    /// Settings from `[data]`.
    pub cfg: ToyData,
    /// Workflow seed.
    pub seed: u64,
}

/// The em-core target for a checked target name.
pub fn target(name: &str) -> Result<Toy> {
    Ok(match name {
        "two-moons" => Toy::TwoMoons,
        "8gaussians" => Toy::EightGaussians,
        "checkerboard" => Toy::Checkerboard,
        other => bail!("unknown 2D target `{other}`"),
    })
}

impl Stage for ToyDataStage {
    fn name(&self) -> &str {
        "data"
    }
    fn kind(&self) -> &str {
        "toy2d.data"
    }
    fn config(&self) -> serde_json::Value {
        // The points file enters the key through its contents, not its path.
        let mut cfg = self.cfg.clone();
        cfg.points = None;
        serde_json::json!({ "data": cfg, "seed": self.seed, "from_file": self.cfg.points.is_some() })
    }
    fn input_files(&self) -> Vec<PathBuf> {
        self.cfg.points.iter().cloned().collect()
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let (train, eval) = match (&self.cfg.target, &self.cfg.points) {
            (_, Some(path)) => {
                let all = points::read(path)?;
                (all.clone(), all)
            }
            (Some(name), None) => {
                let toy = target(name)?;
                (
                    toy.sample(self.cfg.n_train, step_seed(self.seed, SEED_TRAIN_POINTS))?,
                    toy.sample(self.cfg.n_eval, step_seed(self.seed, SEED_EVAL_POINTS))?,
                )
            }
            (None, None) => bail!("no target and no points file"),
        };
        points::write(&ctx.out.join("train.csv"), train.values())?;
        points::write(&ctx.out.join("eval.csv"), eval.values())?;
        Ok(Outcome {
            headline: vec![
                ("train".into(), train.n().to_string()),
                ("eval".into(), eval.n().to_string()),
            ],
            metrics: serde_json::json!({ "n_train": train.n(), "n_eval": eval.n() }),
        })
    }
}
