//! Image stage `report`: `report.json` and `report.md` with the FID/KID table (EM, OT-CFM and
//! the real-vs-real floor at the same N, with steps, NFE, seed and wall times) and copies of
//! both models' 8x8 grids and trajectory strips.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use serde::Serialize;

use super::image_metrics::{METRICS_JSON, Row};
use super::image_sample::{GRID_PNG, TRAJECTORY_PNG};
use super::{Outcome, Stage, StageCtx, cache};
use crate::report::StageTime;
use crate::workflow::image::Image;
use crate::workflow::plan::Header;

/// Stages whose wall time the report lists.
const TIMED: [&str; 6] = [
    "data",
    "train_em",
    "train_cfm",
    "sample_em",
    "sample_cfm",
    "metrics",
];

/// One line of the results table.
#[derive(Debug, Clone, Serialize)]
pub struct TableRow {
    /// Method (or the floor).
    pub method: String,
    /// FID.
    pub fid: f64,
    /// KID mean.
    pub kid_mean: f64,
    /// KID standard deviation over subsets.
    pub kid_std: f64,
    /// Images per FID set.
    pub n: usize,
    /// Training steps (none for the floor).
    pub train_steps: Option<usize>,
    /// Function evaluations per sample (none for the floor).
    pub nfe: Option<usize>,
    /// Trainable parameters of the model (the energy network for EM, the vector field for
    /// OT-CFM; from the training stage's record; none for the floor).
    pub params: Option<u64>,
    /// Workflow seed.
    pub seed: u64,
    /// Wall time of the model's training stage, seconds.
    pub train_secs: Option<f64>,
    /// Wall time of its sampling stage, seconds.
    pub sample_secs: Option<f64>,
}

/// The report as written to `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    /// Workflow name.
    pub name: String,
    /// Data set.
    pub dataset: String,
    /// Training images.
    pub n_train: usize,
    /// OT-CFM sampler.
    pub ode: String,
    /// The results table.
    pub table: Vec<TableRow>,
    /// Every stage's wall time.
    pub stages: Vec<StageTime>,
}

impl ImageReport {
    /// Markdown: the results table, the stage times and the pictures.
    pub fn markdown(&self) -> String {
        let opt = |v: Option<usize>| v.map_or("-".into(), |v| v.to_string());
        let secs = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
        let mut s = format!(
            "# {} ({}, {} training images)\n\n\
             | method | FID | KID mean (std) | N | parameters | train steps | NFE | seed | train (s) | sample (s) |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
            self.name, self.dataset, self.n_train
        );
        for r in &self.table {
            let _ = writeln!(
                s,
                "| {} | {:.2} | {:.4} ({:.4}) | {} | {} | {} | {} | {} | {} | {} |",
                r.method,
                r.fid,
                r.kid_mean,
                r.kid_std,
                r.n,
                r.params.map_or("-".into(), |p| p.to_string()),
                opt(r.train_steps),
                opt(r.nfe),
                r.seed,
                secs(r.train_secs),
                secs(r.sample_secs)
            );
        }
        let _ = write!(
            s,
            "\nFID/KID against N held-out test images; the floor is N training images against the \
             same test images. OT-CFM sampler: {}.\n\n| stage | wall time (s) | key |\n|---|---|---|\n",
            self.ode
        );
        for t in &self.stages {
            let _ = writeln!(s, "| {} | {:.1} | `{}` |", t.stage, t.wall_secs, t.key);
        }
        s.push_str(
            "\n| EM samples | OT-CFM samples |\n|---|---|\n| ![](em_grid.png) | ![](cfm_grid.png) |\n\n\
             Trajectories (rows: samples, columns: time), EM then OT-CFM:\n\n\
             ![](em_trajectory.png)\n\n![](cfm_trajectory.png)\n",
        );
        s
    }
}

/// The `report` stage.
pub struct ReportStage {
    /// The workflow's settings.
    pub cfg: Image,
    /// Name and seed.
    pub header: Header,
}

impl Stage for ReportStage {
    fn name(&self) -> &str {
        "report"
    }
    fn kind(&self) -> &str {
        "image.report"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "name": self.header.name, "seed": self.header.seed })
    }
    fn upstream(&self) -> Vec<&str> {
        TIMED.to_vec()
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let path = ctx.input("metrics")?.join(METRICS_JSON);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let rows: Vec<Row> = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a metrics table", path.display()))?;
        let mut stages = Vec::new();
        let mut params = std::collections::BTreeMap::new();
        for name in TIMED {
            if let Some(r) = cache::read_record(ctx.input(name)?) {
                if let Some(p) = r.metrics.get("params").and_then(serde_json::Value::as_u64) {
                    params.insert(name, p);
                }
                stages.push(StageTime {
                    stage: name.into(),
                    wall_secs: r.wall_secs,
                    key: r.key.short().into(),
                });
            }
        }
        let wall = |name: &str| stages.iter().find(|t| t.stage == name).map(|t| t.wall_secs);
        let c = &self.cfg;
        let table = rows
            .iter()
            .map(|r| {
                let (train, sample) = match r.method.as_str() {
                    "EM" => ("train_em", "sample_em"),
                    "OT-CFM" => ("train_cfm", "sample_cfm"),
                    _ => ("", ""),
                };
                let model = !train.is_empty();
                TableRow {
                    method: r.method.clone(),
                    fid: r.fid,
                    kid_mean: r.kid_mean,
                    kid_std: r.kid_std,
                    n: r.n,
                    train_steps: model.then_some(c.train.steps),
                    nfe: model.then_some(c.sample.nfe),
                    params: params.get(train).copied(),
                    seed: self.header.seed,
                    train_secs: wall(train),
                    sample_secs: wall(sample),
                }
            })
            .collect();
        for (stage, prefix) in [("sample_em", "em"), ("sample_cfm", "cfm")] {
            for (file, suffix) in [(GRID_PNG, "grid"), (TRAJECTORY_PNG, "trajectory")] {
                let from = ctx.input(stage)?.join(file);
                let to = ctx.out.join(format!("{prefix}_{suffix}.png"));
                std::fs::copy(&from, &to).with_context(|| {
                    format!("cannot copy {} to {}", from.display(), to.display())
                })?;
            }
        }
        let report = ImageReport {
            name: self.header.name.clone(),
            dataset: c.data.dataset.clone(),
            n_train: c.data.n_train,
            ode: c.sample_cfm.method.clone(),
            table,
            stages,
        };
        cache::write_atomic(
            &ctx.out.join("report.json"),
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )?;
        cache::write_atomic(&ctx.out.join("report.md"), report.markdown().as_bytes())?;
        let fid = |i: usize| rows.get(i).map_or("-".into(), |r| format!("{:.2}", r.fid));
        Ok(Outcome {
            headline: vec![
                ("fid_em".into(), fid(0)),
                ("fid_cfm".into(), fid(1)),
                ("fid_floor".into(), fid(2)),
            ],
            metrics: serde_json::json!({ "rows": rows }),
        })
    }
}
