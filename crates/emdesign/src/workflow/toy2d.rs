//! The toy2d workflow's checked settings (`[data]`, `[energy]`, `[sample]`, `[report]`) and the
//! step that builds them from the raw TOML, filling defaults and range-checking every value.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use em_core::loss::NegativeInit;
use em_core::train::TrainConfig;
use serde::Serialize;

use super::Source;
use super::plan::{Body, Check, Plan, base_dir, header};
use super::raw::{RawToy2d, RawTrain};
use toml::Spanned;

/// The 2D targets `em_core::toy` provides.
pub const TOY_TARGETS: [&str; 3] = ["two-moons", "8gaussians", "checkerboard"];

/// A toy2d workflow: data -> energy -> sample -> report.
#[derive(Debug, Clone, Serialize)]
pub struct Toy2d {
    /// `[data]`.
    pub data: ToyData,
    /// `[energy]`.
    pub energy: Energy,
    /// `[sample]`.
    pub sample: Sample,
    /// `[report]`.
    pub report: Report,
}

/// Where the 2D training points come from.
#[derive(Debug, Clone, Serialize)]
pub struct ToyData {
    /// A named `em_core::toy` target (absent when `points` is given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// An `x,y` CSV file, absolute path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points: Option<PathBuf>,
    /// Training points.
    pub n_train: usize,
    /// Held-out points for the MMD check.
    pub n_eval: usize,
}

/// The potential network and its training.
#[derive(Debug, Clone, Serialize)]
pub struct Energy {
    /// Hidden width of the MLP.
    pub hidden: usize,
    /// Hidden layers.
    pub depth: usize,
    /// Trainer settings.
    pub train: Train,
}

/// Energy Matching trainer settings.
#[derive(Debug, Clone, Serialize)]
pub struct Train {
    /// Total steps.
    pub steps: usize,
    /// Flow warm-up steps (then contrastive).
    pub warmup_steps: usize,
    /// Minibatch size.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Contrastive weight.
    pub lambda_cd: f64,
    /// Maximum temperature of the negatives' chains.
    pub eps_max: f64,
    /// Start of the negatives' temperature ramp.
    pub tau_star: f64,
    /// Langevin steps per negative batch.
    pub langevin_steps: usize,
    /// Langevin step size for negatives.
    pub langevin_dt: f64,
    /// Where negative chains start.
    pub negatives: NegativeInit,
    /// Accept short negative chains (reported as a warning).
    pub allow_short_negatives: bool,
    /// EMA decay.
    pub ema_decay: f64,
    /// Checkpoint period in steps.
    pub checkpoint_every: usize,
}

impl Train {
    /// The engine's trainer settings for these `[energy.train]` fields and `seed`; fields the
    /// table does not set keep em-core's defaults.
    pub fn train_config(&self, seed: u64) -> TrainConfig {
        TrainConfig {
            lr: self.lr,
            total_steps: self.steps as u64,
            flow_steps: self.warmup_steps as u64,
            batch_size: self.batch_size,
            lambda_cd: self.lambda_cd,
            eps_max: self.eps_max,
            tau_star: self.tau_star,
            neg_steps: self.langevin_steps,
            neg_dt: self.langevin_dt,
            negatives: self.negatives,
            allow_short_negatives: self.allow_short_negatives,
            ema_decay: self.ema_decay,
            checkpoint_every: self.checkpoint_every as u64,
            seed,
            ..TrainConfig::default()
        }
    }
}

/// Langevin sampling from noise.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Number of samples.
    pub n: usize,
    /// Steps.
    pub steps: usize,
    /// Step size.
    pub dt: f64,
    /// Maximum temperature.
    pub eps_max: f64,
    /// Start of the temperature ramp eps(t).
    pub tau_star: f64,
}

/// Report settings.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Contour grid cells per axis.
    pub grid: usize,
    /// MMD RBF bandwidth.
    pub mmd_bandwidth: f64,
}

pub(super) fn build(src: &Source, run_dir: Option<&Path>) -> Result<Plan> {
    let raw: RawToy2d = toml::from_str(&src.text).map_err(|e| src.toml_error(&e))?;
    let c = Check { src };
    let workflow = header(src, &raw.workflow, run_dir)?;
    let d = &raw.data;
    let (target, points) = match (&d.target, &d.points) {
        (Some(_), Some(p)) => {
            return Err(src.error_at(
                p.span(),
                "data.points",
                "give either `target` or `points`, not both",
            ));
        }
        (None, None) => bail!(
            "{}: table `[data]` needs `target` or `points`",
            src.path.display()
        ),
        (Some(t), None) => {
            if !TOY_TARGETS.contains(&t.get_ref().as_str()) {
                return Err(src.error_at(
                    t.span(),
                    "data.target",
                    format!(
                        "unknown target `{}`, expected one of {}",
                        t.get_ref(),
                        TOY_TARGETS.join(", ")
                    ),
                ));
            }
            (Some(t.get_ref().clone()), None)
        }
        (None, Some(p)) => {
            let path = base_dir(src).join(p.get_ref());
            if !path.is_file() {
                return Err(src.error_at(
                    p.span(),
                    "data.points",
                    format!("file not found: {}", path.display()),
                ));
            }
            (None, Some(path))
        }
    };
    let data = ToyData {
        target,
        points,
        n_train: c.int("data.n_train", &d.n_train, 4096, 16, 10_000_000)?,
        n_eval: c.int("data.n_eval", &d.n_eval, 2000, 16, 1_000_000)?,
    };
    let train = check_train(&c, &raw.energy.train, &TOY_TRAIN, |steps| steps * 3 / 4)?;
    let e = &raw.energy;
    let energy = Energy {
        hidden: c.int("energy.hidden", &e.hidden, 64, 1, 65_536)?,
        depth: c.int("energy.depth", &e.depth, 3, 1, 64)?,
        train,
    };
    let s = &raw.sample;
    let sample = Sample {
        n: c.int("sample.n", &s.n, 2000, 1, 10_000_000)?,
        steps: c.int("sample.steps", &s.steps, 200, 1, 1_000_000)?,
        dt: c.float("sample.dt", &s.dt, 0.01, 0.0, 10.0, true)?,
        eps_max: c.float("sample.eps_max", &s.eps_max, 0.01, 0.0, 100.0, false)?,
        tau_star: c.float("sample.tau_star", &s.tau_star, 0.5, 0.0, 0.999_999, false)?,
    };
    let r = &raw.report;
    let report = Report {
        grid: c.int("report.grid", &r.grid, 60, 4, 1000)?,
        mmd_bandwidth: c.float(
            "report.mmd_bandwidth",
            &r.mmd_bandwidth,
            0.5,
            0.0,
            1e6,
            true,
        )?,
    };
    Ok(Plan {
        workflow,
        body: Body::Toy2d(Toy2d {
            data,
            energy,
            sample,
            report,
        }),
    })
}

/// The toy2d trainer defaults (ours: the paper has no 2D protocol); negatives 100 x 0.01 reach
/// t = 1, the shortest horizon the engine accepts (`em_core::train::MIN_NEG_HORIZON`).
const TOY_TRAIN: Train = Train {
    steps: 2000,
    warmup_steps: 1500,
    batch_size: 256,
    lr: 1e-3,
    lambda_cd: 0.1,
    eps_max: 0.01,
    tau_star: 0.5,
    langevin_steps: 100,
    langevin_dt: 0.01,
    negatives: NegativeInit::Data,
    allow_short_negatives: false,
    ema_decay: 0.99,
    checkpoint_every: 100,
};

/// Check `[energy.train]` (shared by every workflow kind) against defaults `d`; the warm-up
/// default is `warmup(steps)`.
pub(super) fn check_train(
    c: &Check,
    t: &RawTrain,
    d: &Train,
    warmup: impl Fn(usize) -> usize,
) -> Result<Train> {
    let steps = c.int("energy.train.steps", &t.steps, d.steps, 1, 100_000_000)?;
    Ok(Train {
        steps,
        warmup_steps: c.int(
            "energy.train.warmup_steps",
            &t.warmup_steps,
            warmup(steps),
            0,
            steps,
        )?,
        batch_size: c.int(
            "energy.train.batch_size",
            &t.batch_size,
            d.batch_size,
            2,
            1_000_000,
        )?,
        lr: c.float("energy.train.lr", &t.lr, d.lr, 0.0, 1.0, true)?,
        lambda_cd: c.float(
            "energy.train.lambda_cd",
            &t.lambda_cd,
            d.lambda_cd,
            0.0,
            1e6,
            false,
        )?,
        eps_max: c.float(
            "energy.train.eps_max",
            &t.eps_max,
            d.eps_max,
            0.0,
            100.0,
            false,
        )?,
        tau_star: c.float(
            "energy.train.tau_star",
            &t.tau_star,
            d.tau_star,
            0.0,
            0.999_999,
            false,
        )?,
        langevin_steps: c.int(
            "energy.train.langevin_steps",
            &t.langevin_steps,
            d.langevin_steps,
            1,
            100_000,
        )?,
        langevin_dt: c.float(
            "energy.train.langevin_dt",
            &t.langevin_dt,
            d.langevin_dt,
            0.0,
            10.0,
            true,
        )?,
        negatives: c.negatives("energy.train.negatives", &t.negatives, d.negatives)?,
        allow_short_negatives: t
            .allow_short_negatives
            .as_ref()
            .map_or(d.allow_short_negatives, |v| *v.get_ref()),
        ema_decay: c.float(
            "energy.train.ema_decay",
            &t.ema_decay,
            d.ema_decay,
            0.0,
            0.999_999,
            false,
        )?,
        checkpoint_every: c.int(
            "energy.train.checkpoint_every",
            &t.checkpoint_every,
            d.checkpoint_every,
            1,
            100_000_000,
        )?,
    })
    .and_then(|train| {
        c.negative_horizon(
            &train.train_config(0),
            "energy.train",
            [
                (
                    "langevin_steps",
                    t.langevin_steps.as_ref().map(Spanned::span),
                ),
                ("langevin_dt", t.langevin_dt.as_ref().map(Spanned::span)),
                ("tau_star", t.tau_star.as_ref().map(Spanned::span)),
                ("warmup_steps", t.warmup_steps.as_ref().map(Spanned::span)),
            ],
        )?;
        Ok(train)
    })
}
