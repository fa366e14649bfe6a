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
pub mod protein_latent;
pub mod protein_report;
pub mod published;
pub mod toy_data;
pub mod toy_energy;
pub mod toy_report;
pub mod toy_sample;

use std::path::Path;

use anyhow::Result;
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

/// The stages of a plan, in run order. A benchmark protein workflow uses the data directory
/// (`--data-dir` / `EMDESIGN_DATA`) when there is one: its oracle and GGS predictor are
/// located and verified here, before anything runs; without it (a fresh clone) emdesign's
/// embedded oracle scores the designs and the predictor is trained from the split, and a
/// message says so.
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
    use crate::workflow::protein::Data;
    use em_protein::datasets;
    use em_protein::own_oracle::OracleSource;
    let seed = plan.workflow.seed;
    let data = match &p.data {
        Data::Benchmark(d) => *d,
        Data::File(own) => return own_protein::stages(plan, p, own.as_ref()),
    };
    let dir = datasets::data_dir(data_dir);
    let dir_path = dir.as_ref().ok().cloned();
    let oracle = OracleSource::resolve(data.task, dir)?;
    eprintln!("{}", oracle.describe());
    let (predictor, ggs_path, smoothing) =
        protein_data::resolve_predictor(&p.predictor, &data, dir_path.as_deref())?;
    let bounded = memory_bounded(p);
    let latent = protein_latent::resolve(p.latent.as_ref(), &data, dir_path.as_deref())?;
    Ok(vec![
        Box::new(protein_data::ProteinDataStage { cfg: data }),
        Box::new(protein_data::PredictorStage {
            cfg: predictor.clone(),
            data: p.data.clone(),
            ggs_path,
            seed,
            smoothing,
        }),
        bounded(Box::new(protein_energy::ProteinEnergyStage {
            cfg: p.energy.clone(),
            seed,
            latent: latent.clone(),
        })),
        bounded(Box::new(protein_design::ProteinDesignStage {
            cfg: p.design.clone(),
            predictor: predictor.clone(),
            constraints: None,
            latent,
        })),
        Box::new(protein_evaluate::ProteinEvaluateStage {
            cfg: p.evaluate.clone(),
            design: p.design.clone(),
            oracle,
        }),
        Box::new(protein_report::ProteinReportStage {
            cfg: p.report.clone(),
            design: p.design.clone(),
            header: plan.workflow.clone(),
            predictor,
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
