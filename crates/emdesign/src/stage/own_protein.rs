//! The stages of a workflow on the user's own data (`[data] source = "file"`): `data` reads
//! and checks the file (em-protein's `user_data`) into `train.csv` + `split.json`, then the
//! benchmark's `predictor`, `energy` and `design` stages run (design under the constraints,
//! never proposing a measured sequence), and `evaluate` / `report` (see `own_report.rs`) work
//! without an oracle. A lab round (`emdesign round`) runs these stages on its merged table.

use std::path::PathBuf;

use anyhow::{Context, Result};
use em_protein::io;
use em_protein::user_data;

use super::own_report::{OwnEvaluateStage, OwnReportStage};
use super::protein_files::{SplitInfo, write_json};
use super::{
    Outcome, Stage, StageCtx, memory_bounded, protein_data, protein_design, protein_energy,
};
use crate::workflow::plan::Plan;
use crate::workflow::protein::{OwnData, Protein};

/// The stage list of a protein workflow on own data (no data directory, no oracle).
pub fn stages(plan: &Plan, p: &Protein, own: &OwnData) -> Result<Vec<Box<dyn Stage>>> {
    let seed = plan.workflow.seed;
    let constraints = match (&p.design.constraints, &own.wild_type) {
        (Some(c), Some(wt)) => Some(c.check(wt, own.file.first_position)?),
        (Some(_), None) => anyhow::bail!("design.constraints need data.file.wild_type"),
        (None, _) => None,
    };
    let bounded = memory_bounded(p);
    Ok(vec![
        Box::new(OwnDataStage { cfg: own.clone() }),
        Box::new(protein_data::PredictorStage {
            cfg: p.predictor.clone(),
            data: p.data.clone(),
            ggs_path: None,
            seed,
            smoothing: None,
        }),
        bounded(Box::new(protein_energy::ProteinEnergyStage {
            cfg: p.energy.clone(),
            seed,
            latent: None,
        })),
        bounded(Box::new(protein_design::ProteinDesignStage {
            cfg: p.design.clone(),
            predictor: p.predictor.clone(),
            constraints: Some(protein_design::OwnRules {
                constraints: constraints.clone(),
            }),
            latent: None,
        })),
        Box::new(OwnEvaluateStage {
            design: p.design.clone(),
            wild_type: own.wild_type.clone(),
        }),
        Box::new(OwnReportStage {
            design: p.design.clone(),
            header: plan.workflow.clone(),
            data: own.clone(),
            constraints,
        }),
    ])
}

/// The `data` stage on own data: the checked table as `train.csv` (repeats averaged) and
/// its summary as `split.json` (score range = the measured range, which normalises
/// predicted fitness: 0 the worst measured variant, 1 the best).
pub struct OwnDataStage {
    /// The data set.
    pub cfg: OwnData,
}

impl Stage for OwnDataStage {
    fn name(&self) -> &str {
        "data"
    }
    fn kind(&self) -> &str {
        "protein.own_data"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "data": self.cfg })
    }
    fn input_files(&self) -> Vec<PathBuf> {
        [&self.cfg.file.sequences, &self.cfg.file.mutations]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let data = user_data::load(&self.cfg.file)?;
        let (lo, hi) = data.table.score_range().context("empty data set")?;
        if lo >= hi {
            anyhow::bail!(
                "{}: every score is {lo}; a predictor needs scores that differ",
                data.file.display()
            );
        }
        io::csv::write_scored_csv(&ctx.out.join("train.csv"), &data.table)?;
        let info = SplitInfo {
            task: "own".into(),
            difficulty: "-".into(),
            source: "file".into(),
            length: data.table.length(),
            n_ground_truth: data.report.rows,
            n_train: data.table.len(),
            n_window: None,
            n_top: None,
            lo_score: lo,
            hi_score: hi,
            min_gt: lo,
            max_gt: hi,
        };
        write_json(&ctx.out.join("split.json"), &info)?;
        write_json(
            &ctx.out.join("own_data.json"),
            &serde_json::json!({
                "file": data.file,
                "rows_read": data.report.rows,
                "repeats_merged": data.report.merged,
                "repeats_with_different_scores": data.report.conflicting,
                "distinct_sequences": data.table.len(),
                "duplicates_policy": "mean of the scores of a repeated sequence",
                "wild_type": data.wild_type.as_ref().map(ToString::to_string),
            }),
        )?;
        Ok(Outcome {
            headline: vec![
                ("rows".into(), data.report.rows.to_string()),
                ("distinct".into(), data.table.len().to_string()),
                ("length".into(), info.length.to_string()),
            ],
            metrics: serde_json::to_value(&info)?,
        })
    }
}
