//! The stages of each workflow kind and [`build`], which lists a plan's stages in run order.
//! The [`Stage`] trait, the [`Runner`], cache keys and run directories are em-pipeline's,
//! re-exported here; [`TOOL`] is how emdesign names itself in the run directories it owns.

pub mod energy_train;
pub mod image_data;
pub mod image_metrics;
pub mod image_report;
pub mod image_sample;
pub mod image_train;
pub mod memory;
pub mod own_protein;
pub mod own_report;
pub mod points;
pub mod protein_data;
pub mod protein_design;
pub mod protein_energy;
pub mod protein_evaluate;
pub mod protein_fasta;
pub mod protein_files;
pub mod protein_report;
pub mod published;
pub mod toy_data;
pub mod toy_energy;
pub mod toy_report;
pub mod toy_sample;

use std::path::Path;

use anyhow::{Context, Result};
pub use em_pipeline::{Outcome, Stage, StageCtx, cache, run_dir, runner};
pub use runner::{Runner, Status};

use crate::workflow::plan::{Body, Plan};

/// emdesign as the owner of its run directories: the marker file and run-level files it
/// writes there (what `clean` may remove) and how a user picks another folder.
pub const TOOL: run_dir::Tool = run_dir::Tool {
    name: "emdesign",
    marker: ".emdesign-run",
    marker_text: "This folder is an emdesign run directory. `emdesign clean` removes only \
                  what emdesign wrote here (stage folders, resolved.toml, summary.json, this \
                  marker).\n",
    run_files: &["resolved.toml", "summary.json"],
    choose_run_dir: "`run_dir` in [workflow], or `--run-dir`",
    example_run_dir: |stem| format!("`run_dir = \"runs/{stem}\"` in [workflow], or `--run-dir`"),
};

/// The stages of a plan, in run order. Protein workflows need the data directory
/// (`--data-dir` / `EMDESIGN_DATA`): its oracle and GGS predictor are located and verified
/// here, before anything runs.
pub fn build(plan: &Plan, data_dir: Option<&Path>) -> Result<Vec<Box<dyn Stage>>> {
    let seed = plan.workflow.seed;
    Ok(match &plan.body {
        Body::Protein(p) => protein_stages(plan, p, data_dir)?,
        Body::Toy2d(t) => vec![
            Box::new(toy_data::ToyDataStage {
                cfg: t.data.clone(),
                seed,
            }),
            Box::new(toy_energy::ToyEnergyStage {
                cfg: t.energy.clone(),
                seed,
            }),
            Box::new(toy_sample::ToySampleStage {
                cfg: t.sample.clone(),
                energy: t.energy.clone(),
                seed,
            }),
            Box::new(toy_report::ToyReportStage {
                cfg: t.report.clone(),
                energy: t.energy.clone(),
                header: plan.workflow.clone(),
            }),
        ],
        Body::Image(i) => image_data::stages(i, &plan.workflow),
    })
}

fn protein_stages(
    plan: &Plan,
    p: &crate::workflow::protein::Protein,
    data_dir: Option<&Path>,
) -> Result<Vec<Box<dyn Stage>>> {
    use crate::workflow::protein::{Data, Predictor};
    use em_protein::datasets::{self, Checkpoint};
    let seed = plan.workflow.seed;
    let data = match &p.data {
        Data::Benchmark(d) => *d,
        Data::File(own) => return own_protein::stages(plan, p, own.as_ref()),
    };
    let dir = datasets::data_dir(data_dir)
        .context("protein workflows need the data directory (oracle, GGS predictors)")?;
    let task = data.task;
    let oracle_path = task.checkpoint(&dir, Checkpoint::Oracle)?;
    let ggs_path = match p.predictor {
        Predictor::Ggs { smoothed } => Some(
            task.checkpoint(
                &dir,
                Checkpoint::Predictor {
                    difficulty: data.difficulty,
                    smoothed,
                },
            )
            .map_err(|e| match e {
                em_protein::error::Error::MissingData { path, .. } => anyhow::anyhow!(
                    "{}: missing. `[predictor] source = \"ggs\"` needs the published GGS \
                     predictor of this split, which `emdesign data fetch` cannot download (it \
                     has no pinned source): set `[predictor] source = \"train\"` to train one \
                     from the ground truth, or copy the file from the shared benchmark mirror",
                    path.display()
                ),
                other => other.into(),
            })?,
        ),
        Predictor::Train { .. } => None,
    };
    let bounded = memory_bounded(p);
    Ok(vec![
        Box::new(protein_data::ProteinDataStage { cfg: data }),
        Box::new(protein_data::PredictorStage {
            cfg: p.predictor.clone(),
            data: p.data.clone(),
            ggs_path,
            seed,
        }),
        bounded(Box::new(protein_energy::ProteinEnergyStage {
            cfg: p.energy.clone(),
            seed,
        })),
        bounded(Box::new(protein_design::ProteinDesignStage {
            cfg: p.design.clone(),
            predictor: p.predictor.clone(),
            constraints: None,
        })),
        Box::new(protein_evaluate::ProteinEvaluateStage {
            cfg: p.evaluate.clone(),
            design: p.design.clone(),
            oracle_path,
        }),
        Box::new(protein_report::ProteinReportStage {
            cfg: p.report.clone(),
            design: p.design.clone(),
            header: plan.workflow.clone(),
            predictor: p.predictor.clone(),
        }),
    ])
}

/// Wraps a stage in its memory bound when [`memory::protein`] estimates one for it.
pub(crate) fn memory_bounded(
    p: &crate::workflow::protein::Protein,
) -> impl Fn(Box<dyn Stage>) -> Box<dyn Stage> {
    let estimates = memory::protein(p);
    move |inner: Box<dyn Stage>| -> Box<dyn Stage> {
        match estimates.iter().find(|(name, _)| *name == inner.name()) {
            Some((_, e)) => Box::new(memory::Bounded {
                inner,
                estimate: e.clone(),
            }),
            None => inner,
        }
    }
}
