//! Image stages `sample_em` (Langevin on the EM potential, NFE = steps) and `sample_cfm`
//! (Euler or Heun on the OT-CFM field at the same NFE): `samples.idx`, an 8x8 `grid.png` and
//! a `trajectory.png` strip of the first 8 samples through time.

use std::time::Instant;

use anyhow::Result;
use em_core::langevin::LangevinConfig;
use em_core::schedule::Schedule;
use em_core::train::step_seed;
use em_image::cfm::{OdeMethod, sample_cfm};
use em_image::grid::{save_grid, save_trajectory_strip};
use em_image::train::{ImageSamples, sample_em};

use super::image_data::write_idx;
use super::image_train::{load_cfm, load_em};
use super::{Outcome, Stage, StageCtx};
use crate::workflow::image::Image;

/// Seed stream of the EM sampler (start noise; Langevin noise is the next stream).
pub const SEED_EM: u64 = 21;
/// Seed stream of the OT-CFM sampler's start noise.
pub const SEED_CFM: u64 = 22;
/// Samples shown in a trajectory strip.
const STRIP_ROWS: usize = 8;
/// Output file names.
pub const SAMPLES_IDX: &str = "samples.idx";
/// The 8x8 grid.
pub const GRID_PNG: &str = "grid.png";
/// The trajectory strip.
pub const TRAJECTORY_PNG: &str = "trajectory.png";

/// Writes the samples, the grid and the strip; returns the outcome.
fn write(ctx: &StageCtx, s: &ImageSamples, nfe: usize, secs: f64) -> Result<Outcome> {
    write_idx(&ctx.out.join(SAMPLES_IDX), &s.images)?;
    save_grid(ctx.out.join(GRID_PNG), &s.images)?;
    let rows = STRIP_ROWS.min(s.images.len());
    let mut snaps: Vec<_> = s.trajectory.iter().map(|t| t.slice(0, rows)).collect();
    if snaps.is_empty() {
        snaps.push(s.images.slice(0, rows));
    }
    save_trajectory_strip(ctx.out.join(TRAJECTORY_PNG), &snaps)?;
    let mean = s.values.iter().map(|&v| v as f64).sum::<f64>() / s.values.len().max(1) as f64;
    let outside = s.values.iter().filter(|v| v.abs() > 1.0).count() as f64;
    Ok(Outcome {
        headline: vec![
            ("n".into(), s.images.len().to_string()),
            ("nfe".into(), nfe.to_string()),
            ("secs".into(), format!("{secs:.1}")),
        ],
        metrics: serde_json::json!({
            "n": s.images.len(),
            "nfe": nfe,
            "sampling_secs": secs,
            "mean_value": mean,
            "fraction_outside_unit_box": outside / s.values.len().max(1) as f64,
        }),
    })
}

/// The `sample_em` stage.
pub struct SampleEmStage {
    /// The workflow's settings.
    pub cfg: Image,
    /// Workflow seed.
    pub seed: u64,
}

impl Stage for SampleEmStage {
    fn name(&self) -> &str {
        "sample_em"
    }
    fn kind(&self) -> &str {
        "image.sample_em"
    }
    fn config(&self) -> serde_json::Value {
        let c = &self.cfg;
        serde_json::json!({ "sample": c.sample, "sample_em": c.sample_em, "seed": self.seed })
    }
    fn upstream(&self) -> Vec<&str> {
        vec!["train_em"]
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let model = load_em(ctx.input("train_em")?, &self.cfg)?;
        let (s, e) = (&self.cfg.sample, &self.cfg.sample_em);
        let schedule = Schedule::Ramp {
            tau_star: e.tau_star,
            eps_max: e.eps_max,
        };
        let mut lc = LangevinConfig::new(s.nfe, e.dt, schedule);
        lc.record_every = Some(s.nfe.div_ceil(s.trajectory).max(1));
        let bar = ctx.progress.bar("sample_em", 1);
        let start = Instant::now();
        let out = sample_em(&model, s.n, &lc, step_seed(self.seed, SEED_EM))?;
        bar.finish_and_clear();
        write(ctx, &out, s.nfe, start.elapsed().as_secs_f64())
    }
}

/// The `sample_cfm` stage.
pub struct SampleCfmStage {
    /// The workflow's settings.
    pub cfg: Image,
    /// Workflow seed.
    pub seed: u64,
}

impl Stage for SampleCfmStage {
    fn name(&self) -> &str {
        "sample_cfm"
    }
    fn kind(&self) -> &str {
        "image.sample_cfm"
    }
    fn config(&self) -> serde_json::Value {
        let c = &self.cfg;
        serde_json::json!({ "sample": c.sample, "sample_cfm": c.sample_cfm, "seed": self.seed })
    }
    fn upstream(&self) -> Vec<&str> {
        vec!["train_cfm"]
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let model = load_cfm(ctx.input("train_cfm")?, &self.cfg)?;
        let s = &self.cfg.sample;
        let method = if self.cfg.sample_cfm.method == "heun" {
            OdeMethod::Heun
        } else {
            OdeMethod::Euler
        };
        let bar = ctx.progress.bar("sample_cfm", 1);
        let start = Instant::now();
        let out = sample_cfm(
            &model,
            s.n,
            s.nfe,
            method,
            s.trajectory,
            step_seed(self.seed, SEED_CFM),
        )?;
        bar.finish_and_clear();
        write(ctx, &out, s.nfe, start.elapsed().as_secs_f64())
    }
}
