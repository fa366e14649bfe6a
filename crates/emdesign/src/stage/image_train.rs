//! Image stages `train_em` (Energy Matching, resumable from its checkpoints) and `train_cfm`
//! (the OT-CFM baseline at the same steps, batch, seed and a similar parameter count), with
//! the loaders the sampling stages use.

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::Module;
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use em_core::checkpoint;
use em_core::nn::{ConvPotential2d, ConvPotential2dConfig};
use em_core::train::{StepReport, TrainConfig, step_seed};
use em_image::cfm::{VectorField, VectorFieldConfig, train_cfm};
use em_image::energy_net::{ImageShape, param_count, potential_config};
use em_image::train::train_em;

use super::image_data::{TRAIN_IDX, device, read_idx};
use super::{Outcome, Stage, StageCtx, cache};
use crate::workflow::image::Image;

/// Seed stream of both trainers (minibatches, OT coupling, negatives): the same for both.
pub const SEED_TRAIN: u64 = 11;
/// Seed stream of the weight initialisation.
pub const SEED_INIT: u64 = 12;
/// Sub-directory of `train_em` holding checkpoints.
pub const CHECKPOINTS: &str = "checkpoints";
/// The OT-CFM weights (EMA) in `train_cfm`.
pub const VECTOR_FIELD: &str = "vector_field.bin";
/// Loss log written by both trainers, one JSON object per logged step.
pub const LOG: &str = "train_log.jsonl";

/// The image shape of a data set (1x28x28 for MNIST and Fashion-MNIST, 3x32x32 for
/// CIFAR-10): the models are built for it, and the `data` stage checks that the files hold
/// images of this shape, so training and sampling use the data's shape.
pub fn shape(dataset: &str) -> ImageShape {
    if dataset == "cifar10" {
        ImageShape::CIFAR10
    } else {
        ImageShape::MNIST
    }
}

/// The EM potential's architecture.
pub fn em_net(cfg: &Image) -> ConvPotential2dConfig {
    let e = &cfg.train_em;
    potential_config(shape(&cfg.data.dataset))
        .with_hidden_channels(e.hidden_channels)
        .with_blocks(e.blocks)
        .with_head_hidden(e.head_hidden)
}

/// The OT-CFM vector field: `train_cfm.hidden`, or sized like the EM potential.
pub fn cfm_net(cfg: &Image) -> VectorFieldConfig {
    let s = shape(&cfg.data.dataset);
    match cfg.train_cfm.hidden {
        Some(h) => VectorFieldConfig::for_shape(s).with_hidden(h),
        None => {
            let params = param_count(&em_net(cfg).init(&Device::flex()));
            VectorFieldConfig::sized_like(s, params)
        }
    }
}

/// The trainer settings both models share (EM-only fields matter only to EM).
pub fn train_config(cfg: &Image, seed: u64) -> TrainConfig {
    let (t, e) = (&cfg.train, &cfg.train_em);
    TrainConfig {
        lr: t.lr,
        lr_warmup_steps: t.lr_warmup_steps as u64,
        total_steps: t.steps as u64,
        flow_steps: e.warmup_steps as u64,
        batch_size: t.batch_size,
        lambda_cd: e.lambda_cd,
        eps_max: e.eps_max,
        tau_star: e.tau_star,
        neg_steps: e.langevin_steps,
        neg_dt: e.langevin_dt,
        negatives: e.negatives,
        allow_short_negatives: e.allow_short_negatives,
        ema_decay: t.ema_decay,
        grad_clip: t.grad_clip,
        checkpoint_every: e.checkpoint_every as u64,
        seed: step_seed(seed, SEED_TRAIN),
        ..TrainConfig::default()
    }
}

/// [`train_config`], printing a warning when its EMA would keep much of the random init.
fn warned_train_config(cfg: &Image, seed: u64) -> TrainConfig {
    let train = train_config(cfg, seed);
    if let Some(w) = train.ema_warning("train.ema_decay") {
        eprintln!("{w}");
    }
    train
}

/// The trained EM potential (EMA weights, plain device) from a finished `train_em` directory.
pub fn load_em(dir: &Path, cfg: &Image) -> Result<ConvPotential2d> {
    let ckpts = dir.join(CHECKPOINTS);
    let path = checkpoint::latest(&ckpts)?
        .with_context(|| format!("no checkpoint in {}", ckpts.display()))?;
    let ad = device(&cfg.train.device).autodiff();
    let net = em_net(cfg);
    let loaded = checkpoint::load(
        &path,
        net.init(&ad),
        net.init(&ad),
        burn::optim::AdamConfig::new().init(),
    )?;
    Ok(loaded.ema.valid())
}

/// The trained OT-CFM vector field from a finished `train_cfm` directory.
pub fn load_cfm(dir: &Path, cfg: &Image) -> Result<VectorField> {
    let path = dir.join(VECTOR_FIELD);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let rec = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| anyhow::anyhow!("{}: corrupt record: {e}", path.display()))?;
    cfm_net(cfg)
        .init(&device(&cfg.train.device))
        .try_load_record(rec)
        .map_err(|e| anyhow::anyhow!("{}: does not match the architecture: {e}", path.display()))
}

/// Appends every 10th step (and the last) to the loss log and moves the bar.
struct Logger {
    file: std::fs::File,
    bar: em_pipeline::Bar,
    total: u64,
    last: Option<StepReport>,
}

impl Logger {
    fn new(path: &Path, bar: em_pipeline::Bar, total: u64) -> Result<Self> {
        Self::resuming(path, bar, total, 0)
    }

    /// A logger that first drops the lines of steps after `done` (logged by a killed run past
    /// its last checkpoint, so they are about to be redone).
    fn resuming(path: &Path, bar: em_pipeline::Bar, total: u64, done: u64) -> Result<Self> {
        if let Ok(text) = std::fs::read_to_string(path) {
            let kept: String = text
                .lines()
                .filter(|l| {
                    serde_json::from_str::<serde_json::Value>(l)
                        .ok()
                        .and_then(|v| v.get("step").and_then(serde_json::Value::as_u64))
                        .is_some_and(|s| s <= done)
                })
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(path, kept)
                .with_context(|| format!("cannot rewrite {}", path.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Self {
            file,
            bar,
            total,
            last: None,
        })
    }

    fn step(&mut self, r: &StepReport) {
        self.bar.set_position(r.step);
        self.bar.set_message(format!("{} {:.3}", r.phase, r.flow));
        if r.step.is_multiple_of(10) || r.step == self.total {
            // A failed log write loses a log line, not the training run.
            let line = serde_json::to_string(r).unwrap_or_default();
            let _ = writeln!(self.file, "{line}");
        }
        self.last = Some(r.clone());
    }

    fn headline(&self, steps: usize, secs: f64) -> Vec<(String, String)> {
        let mut h = vec![("steps".into(), steps.to_string())];
        if let Some(r) = &self.last {
            h.push(("loss".into(), format!("{:.3}", r.flow)));
            if let Some(cd) = r.cd {
                h.push(("cd".into(), format!("{cd:.4}")));
            }
        }
        h.push((
            "s_per_step".into(),
            format!("{:.2}", secs / steps.max(1) as f64),
        ));
        h
    }
}

/// The `train_em` stage.
pub struct TrainEmStage {
    /// The workflow's settings.
    pub cfg: Image,
    /// Workflow seed.
    pub seed: u64,
}

impl Stage for TrainEmStage {
    fn name(&self) -> &str {
        "train_em"
    }
    fn kind(&self) -> &str {
        "image.train_em"
    }
    fn config(&self) -> serde_json::Value {
        let c = &self.cfg;
        serde_json::json!({ "train": c.train, "train_em": c.train_em, "seed": self.seed })
    }
    fn upstream(&self) -> Vec<&str> {
        vec!["data"]
    }
    fn resumable(&self) -> bool {
        true
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let images = read_idx(&ctx.input("data")?.join(TRAIN_IDX))?;
        let dev = device(&self.cfg.train.device);
        let init = step_seed(self.seed, SEED_INIT);
        dev.seed(init);
        dev.clone().autodiff().seed(init);
        let total = self.cfg.train.steps as u64;
        let bar = ctx.progress.bar("train_em", total);
        let ckpts = ctx.out.join(CHECKPOINTS);
        let done = match checkpoint::latest(&ckpts)? {
            Some(p) => checkpoint::read_meta(&p)?.step,
            None => 0,
        };
        let mut log = Logger::resuming(&ctx.out.join(LOG), bar, total, done)?;
        let start = Instant::now();
        let mut first = None;
        train_em(
            &images,
            &em_net(&self.cfg),
            &warned_train_config(&self.cfg, self.seed),
            &dev,
            Some(&ckpts),
            &mut |r| {
                first.get_or_insert(r.step);
                log.step(r);
            },
        )?;
        log.bar.finish_and_clear();
        let ran = first.map_or(0, |f| total + 1 - f) as usize;
        let secs = start.elapsed().as_secs_f64();
        let mut headline = log.headline(self.cfg.train.steps, secs);
        if let Some(f) = first.filter(|&f| f > 1) {
            headline.push(("resumed_at".into(), (f - 1).to_string()));
        }
        let params = param_count(&em_net(&self.cfg).init(&dev));
        Ok(Outcome {
            headline,
            metrics: serde_json::json!({
                "steps": total,
                "steps_this_run": ran,
                "params": params,
                "final": log.last,
            }),
        })
    }
}

/// The `train_cfm` stage.
pub struct TrainCfmStage {
    /// The workflow's settings.
    pub cfg: Image,
    /// Workflow seed.
    pub seed: u64,
}

impl Stage for TrainCfmStage {
    fn name(&self) -> &str {
        "train_cfm"
    }
    fn kind(&self) -> &str {
        "image.train_cfm"
    }
    fn config(&self) -> serde_json::Value {
        let c = &self.cfg;
        serde_json::json!({ "train": c.train, "hidden": cfm_net(c).hidden, "seed": self.seed })
    }
    fn upstream(&self) -> Vec<&str> {
        vec!["data"]
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let images = read_idx(&ctx.input("data")?.join(TRAIN_IDX))?;
        let dev = device(&self.cfg.train.device);
        let init = step_seed(self.seed, SEED_INIT);
        dev.seed(init);
        dev.clone().autodiff().seed(init);
        let total = self.cfg.train.steps as u64;
        let bar = ctx.progress.bar("train_cfm", total);
        let mut log = Logger::new(&ctx.out.join(LOG), bar, total)?;
        let net = cfm_net(&self.cfg);
        let start = Instant::now();
        let model = train_cfm(
            &images,
            &net,
            &warned_train_config(&self.cfg, self.seed),
            &dev,
            &mut |r| log.step(r),
        )?;
        log.bar.finish_and_clear();
        let secs = start.elapsed().as_secs_f64();
        let params = model.num_params();
        let bytes = model
            .into_record()
            .into_bytes()
            .map_err(|e| anyhow::anyhow!("cannot encode the vector field: {e}"))?;
        cache::write_atomic(&ctx.out.join(VECTOR_FIELD), &bytes)?;
        Ok(Outcome {
            headline: log.headline(self.cfg.train.steps, secs),
            metrics: serde_json::json!({
                "steps": total,
                "hidden": net.hidden,
                "params": params,
                "final": log.last,
            }),
        })
    }
}
