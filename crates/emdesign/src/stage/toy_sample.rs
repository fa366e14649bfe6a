//! toy2d stage `sample`: Langevin dynamics from N(0, I) noise on the trained potential under
//! the ramp schedule eps(t), written to `samples.csv`.

use anyhow::Result;
use burn::prelude::*;
use em_core::langevin::{LangevinConfig, sample};
use em_core::schedule::Schedule;
use em_core::train::step_seed;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use super::toy_energy::load_potential;
use super::{Outcome, Stage, StageCtx, points};
use crate::workflow::plan::{Energy, Sample};

/// Seed stream of the starting noise.
pub const SEED_NOISE: u64 = 5;
/// Seed stream of the Langevin noise.
pub const SEED_LANGEVIN: u64 = 6;

/// The `sample` stage of a toy2d workflow.
pub struct ToySampleStage {
    /// Settings from `[sample]`.
    pub cfg: Sample,
    /// The energy settings (to rebuild the network's architecture).
    pub energy: Energy,
    /// Workflow seed.
    pub seed: u64,
}

/// `n` standard-normal 2D points drawn with `seed`.
pub fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..2 * n)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect()
}

impl Stage for ToySampleStage {
    fn name(&self) -> &str {
        "sample"
    }
    fn kind(&self) -> &str {
        "toy2d.sample"
    }
    fn config(&self) -> serde_json::Value {
        // Architecture comes in through the energy stage's key.
        serde_json::json!({ "sample": self.cfg, "seed": self.seed })
    }
    fn upstream(&self) -> Vec<&str> {
        vec!["energy"]
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let potential = load_potential(ctx.input("energy")?, &self.energy)?;
        let device = Device::flex();
        let x0 = Tensor::<2>::from_data(
            TensorData::new(
                noise(self.cfg.n, step_seed(self.seed, SEED_NOISE)),
                [self.cfg.n, 2],
            ),
            &device,
        );
        let schedule = Schedule::Ramp {
            tau_star: self.cfg.tau_star,
            eps_max: self.cfg.eps_max,
        };
        let lc = LangevinConfig::new(self.cfg.steps, self.cfg.dt, schedule);
        let bar = ctx.progress.bar("sample", 1);
        let out = sample(
            &potential,
            &[],
            x0,
            &lc,
            step_seed(self.seed, SEED_LANGEVIN),
        )?;
        bar.finish_and_clear();
        let values: Vec<f32> = out
            .x
            .into_data()
            .convert::<f32>()
            .try_to_vec()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        points::write(&ctx.out.join("samples.csv"), &values)?;
        Ok(Outcome {
            headline: vec![
                ("n".into(), self.cfg.n.to_string()),
                ("steps".into(), self.cfg.steps.to_string()),
            ],
            metrics: serde_json::json!({ "n": self.cfg.n, "t_end": self.cfg.steps as f64 * self.cfg.dt }),
        })
    }
}
