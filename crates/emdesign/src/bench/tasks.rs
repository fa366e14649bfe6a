//! What every cell of one bench task shares: the split (through the protein workflow's own
//! cached `data` -> `predictor` -> `energy` stages), predictor, oracle, potential, the cached
//! OT-CFM field; or the Ehrlich function with its feasible start population.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use burn::module::Module;
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use em_core::nn::SeqConvPotential;
use em_core::train::{TrainConfig, step_seed};
use em_protein::baselines::ot_cfm::{SeqVectorField, VectorFieldConfig, train_ot_cfm};
use em_protein::cnn::Cnn;
use em_protein::datasets::{self, Checkpoint};
use em_protein::design::DesignConfig;
use em_protein::ehrlich::Ehrlich;
use em_protein::energy_model::load_potential;
use em_protein::oracle::GgsCnnOracle;
use em_protein::sequence::Sequence;

use super::config::{BenchPlan, BenchTask};
use crate::progress::Progress;
use crate::stage::cache::{self, Key};
use crate::stage::protein_energy::potential_path;
use crate::stage::protein_files::{load_predictor, read_split, read_train};
use crate::stage::{self, Runner};
use crate::workflow::plan::{Body, build};
use crate::workflow::protein::Design;
use crate::workflow::toy2d::Train;
use crate::workflow::{Source, protein::Protein};

/// The upstream name of the warm-up-only energy's stage key.
pub const FLOW_ONLY_STAGE: &str = "energy_flow_only";

/// Seed stream of the OT-CFM trainer (derived from the bench seed).
const SEED_OT_CFM: u64 = 13;

/// A GFP/AAV task: split, models and the design settings of the EM rows.
pub struct ProteinEnv {
    /// Guides and ranks (never the oracle).
    pub predictor: Cnn,
    /// Scores the final designs.
    pub oracle: GgsCnnOracle,
    /// The trained energy, when an EM method runs.
    pub potential: Option<SeqConvPotential>,
    /// The same energy trained with the flow loss only, when a warm-up-only method runs.
    pub flow_only: Option<SeqConvPotential>,
    /// The `[protein.design]` settings (sigma_w, t_end, zeta, ...).
    pub design: Design,
    /// The OT-CFM field, trained (or loaded) on first use.
    pub ot_cfm: Option<SeqVectorField>,
    /// The energy's `[energy.train]` settings (the OT-CFM field trains with the same
    /// steps, batch size, learning rate and EMA decay).
    pub energy_train: Train,
    /// Sequence length.
    pub length: usize,
}

/// The task side of one bench task.
pub enum TaskKind {
    /// A GGS split.
    Protein(Box<ProteinEnv>),
    /// The Ehrlich function (predictor = oracle = the function).
    Ehrlich(Ehrlich),
}

/// One task, ready for its cells.
pub struct TaskEnv {
    /// `aav-hard`, `ehrlich`.
    pub name: String,
    /// Models.
    pub kind: TaskKind,
    /// Start population of the baselines (the training split).
    pub start: Vec<Vec<u8>>,
    /// The same as sequences (novelty reference).
    pub training: Vec<Sequence>,
    /// Fitness normalisation range.
    pub min_gt: f64,
    /// Fitness normalisation range.
    pub max_gt: f64,
    /// Keys of everything the task's cells depend on (stages, settings).
    pub upstream: Vec<(String, Key)>,
    /// The task's directory under the bench run dir.
    pub dir: PathBuf,
}

/// The protein workflow text of `task` built from the bench's `[protein]` tables; with
/// `flow_only`, its energy trains the flow loss for all of its `steps` (no contrastive
/// phase: the ablation's warm-up-only prior, same steps, batch, lr and EMA).
fn protein_source(plan: &BenchPlan, task: BenchTask, flow_only: bool) -> Result<Source> {
    let BenchTask::Protein(t, d) = task else {
        return Err(anyhow!("not a protein task"));
    };
    let suffix = if flow_only { "-flow-only" } else { "" };
    let mut text = format!(
        "[workflow]\nkind = \"protein\"\nname = \"{}-{}{suffix}\"\nseed = {}\n[data]\ntask = \"{}\"\ndifficulty = \"{}\"\n",
        plan.name,
        task.name(),
        plan.seed,
        t.name(),
        d.name()
    );
    let mut tables = plan.protein_tables(&task.name());
    if flow_only {
        let steps = protein_plan(plan, task, &plan.run_dir)?.energy.train.steps as i64;
        let train = tables
            .entry("energy")
            .or_insert_with(|| toml::Value::Table(Default::default()))
            .as_table_mut()
            .and_then(|e| {
                e.entry("train")
                    .or_insert_with(|| toml::Value::Table(Default::default()))
                    .as_table_mut()
            })
            .context("[protein.energy.train] is not a table")?;
        train.insert("steps".into(), steps.into());
        train.insert("warmup_steps".into(), steps.into());
    }
    text.push_str(&toml::to_string(&tables).context("cannot write [protein] tables")?);
    Ok(Source {
        path: format!("{} [protein] for {}", plan.path.display(), task.name()).into(),
        text,
    })
}

/// Checks the `[protein]` tables by building the protein plan of `task` (no I/O).
pub fn protein_plan(plan: &BenchPlan, task: BenchTask, dir: &Path) -> Result<Protein> {
    let p = build(&protein_source(plan, task, false)?, Some(dir))?;
    match p.body {
        Body::Protein(p) => Ok(p),
        _ => Err(anyhow!("[protein] did not give a protein workflow")),
    }
}

/// The trained priors a task's cells need.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    /// The energy with its contrastive phase.
    pub energy: bool,
    /// The warm-up-only energy.
    pub flow_only: bool,
}

impl Needs {
    /// What `methods` sample from.
    pub fn of(methods: &[super::config::Method]) -> Self {
        use super::config::Prior;
        Self {
            energy: methods.iter().any(|m| m.prior() == Some(Prior::Energy)),
            flow_only: methods
                .iter()
                .any(|m| m.prior() == Some(Prior::FlowOnlyEnergy)),
        }
    }
}

/// Builds the workflow of `src` in `dir` and runs (or reuses) its first `n` stages there.
fn run_stages(
    src: &Source,
    dir: &Path,
    n: usize,
    data_dir: Option<&Path>,
    progress: &Progress,
) -> Result<(
    crate::workflow::plan::Plan,
    Vec<crate::stage::runner::StageReport>,
)> {
    let wf = build(src, Some(dir))?;
    let stages = stage::build(&wf, data_dir)?;
    let runner = Runner {
        tool: &stage::TOOL,
        run_dir: dir.to_path_buf(),
        force: None,
        progress: progress.clone(),
    };
    let reports = runner.run(&stages[..n])?;
    Ok((wf, reports))
}

/// Runs (or reuses) the warm-up-only energy of `task` in `<run_dir>/tasks/<task>-flow-only`
/// (its own stage records: the protein workflow's data -> predictor -> energy), returning
/// the potential and its energy stage key.
fn flow_only_energy(
    plan: &BenchPlan,
    task: BenchTask,
    data_dir: Option<&Path>,
    progress: &Progress,
) -> Result<(SeqConvPotential, Key)> {
    let dir = plan
        .run_dir
        .join("tasks")
        .join(format!("{}-flow-only", task.name()));
    let (_, reports) = run_stages(
        &protein_source(plan, task, true)?,
        &dir,
        3,
        data_dir,
        progress,
    )?;
    let key = reports
        .iter()
        .find(|r| r.record.stage == "energy")
        .map(|r| r.record.key.clone())
        .context("the warm-up-only workflow has no energy stage")?;
    let potential = load_potential(&potential_path(&dir.join("energy")), &Device::flex())?.0;
    Ok((potential, key))
}

/// Prepares `task`: runs (or reuses) its protein stages, `energy` only when `needs.energy`,
/// the warm-up-only energy only when `needs.flow_only`.
pub fn prepare(
    plan: &BenchPlan,
    task: BenchTask,
    needs: Needs,
    data_dir: Option<&Path>,
    progress: &Progress,
) -> Result<TaskEnv> {
    let with_energy = needs.energy;
    let dir = plan.run_dir.join("tasks").join(task.name());
    match task {
        BenchTask::Ehrlich => ehrlich(plan, dir),
        BenchTask::Protein(t, _) => {
            let n = if with_energy { 3 } else { 2 };
            let src = protein_source(plan, task, false)?;
            let (wf, reports) = run_stages(&src, &dir, n, data_dir, progress)?;
            let Body::Protein(p) = &wf.body else {
                return Err(anyhow!("[protein] did not give a protein workflow"));
            };
            let mut upstream: Vec<(String, Key)> = reports
                .iter()
                .map(|r| (r.record.stage.clone(), r.record.key.clone()))
                .collect();
            let flow_only = if needs.flow_only {
                let (potential, key) = flow_only_energy(plan, task, data_dir, progress)?;
                upstream.push((FLOW_ONLY_STAGE.into(), key));
                Some(potential)
            } else {
                None
            };
            let device = Device::flex();
            let split = read_split(&dir.join("data"))?;
            let train = read_train(&dir.join("data"))?;
            let predictor = load_predictor(&dir.join("predictor"), &p.predictor, &device)?;
            let ddir = datasets::data_dir(data_dir)?;
            let oracle_path = t.checkpoint(&ddir, Checkpoint::Oracle)?;
            let oracle = GgsCnnOracle::load(&oracle_path, &device)
                .with_context(|| format!("cannot load oracle {}", oracle_path.display()))?;
            let potential = if with_energy {
                Some(load_potential(&potential_path(&dir.join("energy")), &device)?.0)
            } else {
                None
            };
            let training = train.sequences().to_vec();
            Ok(TaskEnv {
                name: task.name(),
                start: training.iter().map(|s| s.indices().to_vec()).collect(),
                training,
                min_gt: split.min_gt,
                max_gt: split.max_gt,
                upstream,
                dir,
                kind: TaskKind::Protein(Box::new(ProteinEnv {
                    predictor,
                    oracle,
                    potential,
                    flow_only,
                    design: p.design.clone(),
                    ot_cfm: None,
                    energy_train: p.energy.train.clone(),
                    length: split.length,
                })),
            })
        }
    }
}

fn ehrlich(plan: &BenchPlan, dir: PathBuf) -> Result<TaskEnv> {
    let s = &plan.ehrlich;
    let f = Ehrlich::generate(s.config()).context("invalid [ehrlich]")?;
    let start = f.sample_feasible(s.n_start, step_seed(s.seed, 1));
    let training = start
        .iter()
        .map(|x| Sequence::from_indices(x.clone()))
        .collect::<Result<Vec<_>, _>>()
        .context("ehrlich start population")?;
    let key = cache::fingerprint("bench.ehrlich", &serde_json::to_value(s)?, &[], &[])?;
    Ok(TaskEnv {
        name: "ehrlich".into(),
        kind: TaskKind::Ehrlich(f),
        start,
        training,
        min_gt: 0.0,
        max_gt: 1.0,
        upstream: vec![("ehrlich".into(), key)],
        dir,
    })
}

/// The design settings of one sampler cell: `[protein.design]` with `n_samples` from the
/// budget (`budget / (steps + 1)`: one guidance gradient per sample and step plus one final
/// score each) and the bench's `top_k`.
pub fn sampler_config(
    design: &Design,
    interaction: em_protein::design::Interaction,
    budget: usize,
    top_k: usize,
) -> Result<DesignConfig> {
    let mut cfg = design.config(false);
    cfg.interaction = interaction;
    cfg.top_k = top_k;
    cfg.n_samples = budget / (cfg.steps() + 1);
    if cfg.n_samples == 0 {
        anyhow::bail!(
            "bench.budget {budget} is below one sampler chain ({} steps + 1 calls)",
            cfg.steps()
        );
    }
    Ok(cfg)
}

/// The design settings of one sampler cell of `variant`: [`sampler_config`] (chains from
/// the budget at the design's own `t_end`), then the sweep's `t_end` in place of the
/// design's (same chains), and guidance off for an unguided method (`zeta = inf`; its only
/// predictor calls are the final scores).
pub fn variant_config(
    design: &Design,
    variant: super::config::Variant,
    interaction: em_protein::design::Interaction,
    budget: usize,
    top_k: usize,
) -> Result<DesignConfig> {
    let mut cfg = sampler_config(design, interaction, budget, top_k)?;
    if let Some(t) = variant.t_end {
        cfg.t_end = t;
    }
    if !variant.method.guided() {
        cfg.zeta = f64::INFINITY;
    }
    Ok(cfg)
}

/// The OT-CFM vector field of the bench for sequences of `length` residues.
pub fn ot_cfm_net(plan: &BenchPlan, length: usize) -> VectorFieldConfig {
    let s = &plan.ot_cfm;
    VectorFieldConfig::new(length)
        .with_hidden_channels(s.hidden_channels)
        .with_kernel(s.kernel)
        .with_blocks(s.blocks)
}

/// The OT-CFM trainer: the task energy's steps, batch size, learning rate, warm-up rule and
/// EMA decay (flow loss only), seeded from the bench seed.
pub fn ot_cfm_train(plan: &BenchPlan, energy: &Train) -> TrainConfig {
    let steps = energy.steps as u64;
    TrainConfig {
        total_steps: steps,
        flow_steps: steps,
        batch_size: energy.batch_size,
        lr: energy.lr,
        lr_warmup_steps: (steps / 10).min(100),
        ema_decay: energy.ema_decay,
        checkpoint_every: 0,
        seed: step_seed(plan.seed, SEED_OT_CFM),
        ..TrainConfig::default()
    }
}

impl TaskEnv {
    /// The OT-CFM field of this task, trained on the training split once and cached as
    /// `ot_cfm/<key>.bin` in the task directory (reused by later runs).
    pub fn ot_cfm(
        &mut self,
        plan: &BenchPlan,
        progress: &Progress,
    ) -> Result<(&SeqVectorField, Key)> {
        let TaskKind::Protein(env) = &mut self.kind else {
            return Err(anyhow!("OT-CFM runs on protein tasks only"));
        };
        let s = &plan.ot_cfm;
        let net = ot_cfm_net(plan, env.length);
        let train = ot_cfm_train(plan, &env.energy_train);
        let data_key: Vec<_> = self
            .upstream
            .iter()
            .filter(|(n, _)| n == "data")
            .cloned()
            .collect();
        let key = cache::fingerprint(
            "bench.ot_cfm",
            // `arch` names the field's layout: a cached field of another layout is not reused.
            &serde_json::json!({
                "settings": s, "seed": train.seed, "arch": "conv+position",
                "steps": train.total_steps, "batch_size": train.batch_size, "lr": train.lr,
                "ema_decay": train.ema_decay,
            }),
            &[],
            &data_key,
        )?;
        if env.ot_cfm.is_none() {
            let path = self.dir.join("ot_cfm").join(format!("{}.bin", key.short()));
            let device = Device::flex();
            let field = if path.is_file() {
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
                    .map_err(|e| anyhow!("{}: corrupt weights: {e}", path.display()))?;
                net.init(&device)
                    .try_load_record(record)
                    .map_err(|e| anyhow!("{}: weights do not fit: {e}", path.display()))?
            } else {
                progress.line(&format!(
                    "{}: training OT-CFM ({} steps)",
                    self.name, train.total_steps
                ));
                let field = train_ot_cfm(&self.training, &net, &train, &device)?;
                let bytes = field
                    .clone()
                    .into_record()
                    .into_bytes()
                    .map_err(|e| anyhow!("cannot encode OT-CFM weights: {e}"))?;
                std::fs::create_dir_all(self.dir.join("ot_cfm"))
                    .with_context(|| format!("cannot create {}", self.dir.display()))?;
                cache::write_atomic(&path, &bytes)?;
                field
            };
            env.ot_cfm = Some(field);
        }
        let field = env
            .ot_cfm
            .as_ref()
            .ok_or_else(|| anyhow!("no OT-CFM field"))?;
        Ok((field, key))
    }
}
