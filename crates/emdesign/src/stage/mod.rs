//! Stages and the runner. A [`Stage`] declares its config, input files and upstream stages
//! (which make up its cache key) and writes its outputs into the directory it is given; the
//! [`Runner`] skips fresh stages, runs stale ones into a staging directory and renames it into
//! place when the stage succeeds, completion record last.

pub mod cache;
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
pub mod run_dir;
pub mod run_lock;
pub mod runner;
pub mod toy_data;
pub mod toy_energy;
pub mod toy_report;
pub mod toy_sample;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::progress::Progress;
use crate::workflow::plan::{Body, Plan};
use cache::Key;
pub use runner::{Runner, Status};

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

/// What a stage reports when it finishes.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    /// Headline numbers for the one-line summary (`("mmd", "0.012")`), in order.
    pub headline: Vec<(String, String)>,
    /// Anything else worth keeping in the record (JSON object).
    pub metrics: serde_json::Value,
}

/// What a running stage sees.
pub struct StageCtx<'a> {
    /// Directory to write outputs into (renamed into place on success). For a resumable
    /// stage it persists across kills and may already hold checkpoints.
    pub out: &'a Path,
    /// Finished output directories of the upstream stages, by name.
    pub upstream: &'a BTreeMap<String, PathBuf>,
    /// Progress bars.
    pub progress: &'a Progress,
}

impl StageCtx<'_> {
    /// The finished output directory of upstream stage `name`.
    pub fn input(&self, name: &str) -> Result<&Path> {
        self.upstream
            .get(name)
            .map(PathBuf::as_path)
            .with_context(|| format!("stage input `{name}` is not an upstream stage"))
    }
}

/// One step of a workflow.
///
/// To add a stage kind (e.g. the protein `predictor`): write a struct holding its checked
/// settings from the plan and the seed, return them from [`Stage::config`], name the earlier
/// stages it reads in [`Stage::upstream`] (their keys enter its key; their finished
/// directories come through [`StageCtx::input`]), list external files in
/// [`Stage::input_files`], write outputs under `ctx.out` only, and return headline numbers.
/// A long stage that can continue after a kill returns `true` from [`Stage::resumable`] and
/// keeps its checkpoints under `ctx.out`. Then list it in [`build`] for its workflow kind.
pub trait Stage {
    /// Name, unique in the workflow, and the name of its output directory (`energy`).
    fn name(&self) -> &str;
    /// Kind, part of the key (`toy2d.energy`).
    fn kind(&self) -> &str;
    /// The settings that determine its output (canonicalised and hashed into the key).
    fn config(&self) -> serde_json::Value;
    /// External files it reads (their contents are hashed into the key).
    fn input_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    /// Earlier stages whose outputs it reads.
    fn upstream(&self) -> Vec<&str> {
        Vec::new()
    }
    /// Whether a killed run may resume from what it left in its staging directory.
    fn resumable(&self) -> bool {
        false
    }
    /// Estimated peak memory, checked against the machine's before the stage starts.
    fn memory_estimate(&self) -> Option<&memory::Estimate> {
        None
    }
    /// The cache key given the upstream stages' keys.
    fn key(&self, upstream: &[(String, Key)]) -> Result<Key> {
        cache::fingerprint(self.kind(), &self.config(), &self.input_files(), upstream)
    }
    /// Do the work, writing outputs under `ctx.out`.
    fn run(&self, ctx: &StageCtx) -> Result<Outcome>;
}
