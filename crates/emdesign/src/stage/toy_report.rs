//! toy2d stage `report`: MMD between the samples and held-out target points (and, for scale,
//! between N(0, I) noise and the target), the PNG of samples over contours of V, and
//! `report.json` / `report.md` with every stage's wall time.

use anyhow::Result;
use burn::prelude::*;
use em_core::potential::Potential;
use em_core::toy::mmd_rbf;
use em_core::train::step_seed;

use super::toy_energy::load_potential;
use super::toy_sample::noise;
use super::{Outcome, Stage, StageCtx, cache, points};
use crate::plot::{self, Field};
use crate::report::{Report, StageTime};
use crate::workflow::plan::{Energy, Header, Report as ReportCfg};

/// Seed stream of the reference noise.
pub const SEED_REFERENCE: u64 = 7;

/// The `report` stage of a toy2d workflow.
pub struct ToyReportStage {
    /// Settings from `[report]`.
    pub cfg: ReportCfg,
    /// Architecture, to reload the potential for the contours.
    pub energy: Energy,
    /// Name, kind and seed for the report header.
    pub header: Header,
}

impl Stage for ToyReportStage {
    fn name(&self) -> &str {
        "report"
    }
    fn kind(&self) -> &str {
        "toy2d.report"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "report": self.cfg, "name": self.header.name, "seed": self.header.seed })
    }
    fn upstream(&self) -> Vec<&str> {
        vec!["data", "energy", "sample"]
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let eval = points::read(&ctx.input("data")?.join("eval.csv"))?;
        let samples = points::read(&ctx.input("sample")?.join("samples.csv"))?;
        let bw = self.cfg.mmd_bandwidth;
        let mmd = mmd_rbf(samples.values(), eval.values(), 2, bw);
        let reference = noise(samples.n(), step_seed(self.header.seed, SEED_REFERENCE));
        let mmd_noise = mmd_rbf(&reference, eval.values(), 2, bw);

        let potential = load_potential(ctx.input("energy")?, &self.energy)?;
        let (lo, hi, g) = (-3.0, 3.0, self.cfg.grid);
        let step = (hi - lo) / g as f64;
        let grid: Vec<f32> = (0..g * g)
            .flat_map(|i| {
                [
                    lo + (i % g) as f64 * step + step / 2.0,
                    lo + (i / g) as f64 * step + step / 2.0,
                ]
            })
            .map(|v| v as f32)
            .collect();
        let x = Tensor::<2>::from_data(TensorData::new(grid, [g * g, 2]), &Device::flex());
        let v: Vec<f64> = potential
            .energy(x)
            .into_data()
            .convert::<f64>()
            .try_to_vec()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let field = Field {
            lo,
            hi,
            grid: g,
            values: v,
        };
        plot::toy2d(
            &ctx.out.join("samples.png"),
            &field,
            eval.values(),
            samples.values(),
        )?;

        let mut stages = Vec::new();
        for name in ["data", "energy", "sample"] {
            if let Some(r) = cache::read_record(ctx.input(name)?) {
                stages.push(StageTime {
                    stage: name.into(),
                    wall_secs: r.wall_secs,
                    key: r.key.short().into(),
                });
            }
        }
        let report = Report {
            name: self.header.name.clone(),
            kind: self.header.kind.clone(),
            seed: self.header.seed,
            metrics: vec![
                (
                    "mmd".into(),
                    mmd,
                    format!("samples vs held-out target, RBF bandwidth {bw}"),
                ),
                (
                    "mmd_noise".into(),
                    mmd_noise,
                    "N(0, I) noise vs held-out target (scale reference)".into(),
                ),
            ],
            stages,
            details: serde_json::json!({ "n_samples": samples.n(), "n_eval": eval.n() }),
        };
        report.write(ctx.out)?;
        Ok(Outcome {
            headline: vec![
                ("mmd".into(), format!("{mmd:.4}")),
                ("mmd_noise".into(), format!("{mmd_noise:.4}")),
            ],
            metrics: serde_json::json!({ "mmd": mmd, "mmd_noise": mmd_noise }),
        })
    }
}
