//! The image workflow's checked settings (EM vs OT-CFM on MNIST-style images) and the step
//! that builds them from the raw TOML, filling defaults and range-checking every value.

use std::path::{Path, PathBuf};

use anyhow::Result;
use em_core::loss::NegativeInit;
use em_core::train::{TrainConfig, ema_decay_for_steps};
use serde::Serialize;
use toml::Spanned;

use super::Source;
use super::image_raw::RawImage;
use super::plan::{Body, Check, Plan, base_dir, header};

/// Data sets the `data` stage knows: MNIST-style IDX files, or the CIFAR-10 binary batches
/// (3x32x32, for a GPU machine), all under `<data dir>/images/<dataset>/`.
pub const IMAGE_DATASETS: [&str; 3] = ["mnist", "fashion-mnist", "cifar10"];

/// The image workflow's stages in run order.
pub const IMAGE_STAGES: [&str; 7] = [
    "data",
    "train_em",
    "train_cfm",
    "sample_em",
    "sample_cfm",
    "metrics",
    "report",
];

/// An image workflow: data -> train_em, train_cfm -> sample_em, sample_cfm -> metrics -> report.
#[derive(Debug, Clone, Serialize)]
pub struct Image {
    /// `[data]`.
    pub data: ImageData,
    /// `[train]`.
    pub train: ImageTrain,
    /// `[train_em]`.
    pub train_em: TrainEm,
    /// `[train_cfm]`.
    pub train_cfm: TrainCfm,
    /// `[sample]`.
    pub sample: ImageSample,
    /// `[sample_em]`.
    pub sample_em: SampleEm,
    /// `[sample_cfm]`.
    pub sample_cfm: SampleCfm,
    /// `[metrics]`.
    pub metrics: Metrics,
}

/// Which images and where they live.
#[derive(Debug, Clone, Serialize)]
pub struct ImageData {
    /// `mnist`, `fashion-mnist` or `cifar10`.
    pub dataset: String,
    /// Training images.
    pub n_train: usize,
    /// Absolute data directory (holds `images/<dataset>/` and the Inception weights).
    pub data_dir: PathBuf,
}

/// Settings both trainers share.
#[derive(Debug, Clone, Serialize)]
pub struct ImageTrain {
    /// Steps of each model.
    pub steps: usize,
    /// Minibatch size.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Learning-rate warm-up steps.
    pub lr_warmup_steps: usize,
    /// EMA decay (default `min(0.999, 1 - 10 / steps)`).
    pub ema_decay: f64,
    /// Gradient-norm clip.
    pub grad_clip: f64,
    /// `cpu` or `cuda`.
    pub device: String,
}

/// Energy Matching: the potential and its two phases.
#[derive(Debug, Clone, Serialize)]
pub struct TrainEm {
    /// Flow warm-up steps.
    pub warmup_steps: usize,
    /// Contrastive weight.
    pub lambda_cd: f64,
    /// Maximum temperature of the negatives.
    pub eps_max: f64,
    /// Start of the negatives' temperature ramp.
    pub tau_star: f64,
    /// Langevin steps per negative chain.
    pub langevin_steps: usize,
    /// Langevin step size of the negatives.
    pub langevin_dt: f64,
    /// Where negative chains start.
    pub negatives: NegativeInit,
    /// Accept short negative chains (reported as a warning).
    pub allow_short_negatives: bool,
    /// Checkpoint period.
    pub checkpoint_every: usize,
    /// Hidden channels.
    pub hidden_channels: usize,
    /// Residual blocks.
    pub blocks: usize,
    /// Head width.
    pub head_hidden: usize,
}

/// The OT-CFM vector field.
#[derive(Debug, Clone, Serialize)]
pub struct TrainCfm {
    /// Hidden channels; absent: sized like the EM potential.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden: Option<usize>,
}

/// Sampling settings both models share.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSample {
    /// Samples per model.
    pub n: usize,
    /// Function evaluations per sample (Langevin steps; ODE evaluations).
    pub nfe: usize,
    /// Snapshots in the trajectory strips.
    pub trajectory: usize,
}

/// Langevin sampling of the EM potential.
#[derive(Debug, Clone, Serialize)]
pub struct SampleEm {
    /// Step size.
    pub dt: f64,
    /// Maximum temperature.
    pub eps_max: f64,
    /// Start of the temperature ramp.
    pub tau_star: f64,
}

/// ODE sampling of the OT-CFM vector field.
#[derive(Debug, Clone, Serialize)]
pub struct SampleCfm {
    /// `euler` or `heun`.
    pub method: String,
}

/// FID/KID settings.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    /// Images per set.
    pub n: usize,
    /// Inception batch size.
    pub batch: usize,
}

/// One of `allowed`, or an error at the value naming the field.
fn choice(
    src: &Source,
    field: &str,
    v: &Option<Spanned<String>>,
    default: &str,
    allowed: &[&str],
) -> Result<String> {
    let Some(v) = v else {
        return Ok(default.to_string());
    };
    if allowed.contains(&v.get_ref().as_str()) {
        return Ok(v.get_ref().clone());
    }
    Err(src.error_at(
        v.span(),
        field,
        format!(
            "unknown value `{}`, expected one of {}",
            v.get_ref(),
            allowed.join(", ")
        ),
    ))
}

/// The data directory: the file's `data_dir` (relative to it), else `$EMDESIGN_DATA`, else
/// em-image's default.
fn data_dir(src: &Source, v: &Option<Spanned<String>>) -> Result<PathBuf> {
    let dir = match v {
        Some(d) => base_dir(src).join(d.get_ref()),
        None => em_image::idx::data_dir(),
    };
    Ok(std::path::absolute(&dir)?)
}

pub(super) fn build(src: &Source, run_dir: Option<&Path>) -> Result<Plan> {
    let raw: RawImage = toml::from_str(&src.text).map_err(|e| src.toml_error(&e))?;
    let c = Check { src };
    let workflow = header(src, &raw.workflow, run_dir)?;
    let d = &raw.data;
    let data = ImageData {
        dataset: choice(src, "data.dataset", &d.dataset, "mnist", &IMAGE_DATASETS)?,
        n_train: c.int("data.n_train", &d.n_train, 10_000, 16, 60_000)?,
        data_dir: data_dir(src, &d.data_dir)?,
    };
    let t = &raw.train;
    let steps = c.int("train.steps", &t.steps, 2000, 1, 100_000_000)?;
    let batch_size = c.int("train.batch_size", &t.batch_size, 64, 2, 100_000)?;
    let device = choice(src, "train.device", &t.device, "cpu", &["cpu", "cuda"])?;
    if device == "cuda" && !cfg!(feature = "cuda") {
        let span = t.device.as_ref().map_or(0..0, Spanned::span);
        return Err(src.error_at(
            span,
            "train.device",
            "this emdesign was built without the `cuda` feature (cargo build --features cuda)",
        ));
    }
    let train = ImageTrain {
        steps,
        batch_size,
        lr: c.float("train.lr", &t.lr, 1e-3, 0.0, 1.0, true)?,
        lr_warmup_steps: c.int("train.lr_warmup_steps", &t.lr_warmup_steps, 100, 0, steps)?,
        ema_decay: c.float(
            "train.ema_decay",
            &t.ema_decay,
            ema_decay_for_steps(steps as u64),
            0.0,
            0.999_999,
            false,
        )?,
        grad_clip: c.float("train.grad_clip", &t.grad_clip, 1.0, 0.0, 1e9, false)?,
        device,
    };
    let e = &raw.train_em;
    let train_em = TrainEm {
        warmup_steps: c.int(
            "train_em.warmup_steps",
            &e.warmup_steps,
            steps * 3 / 4,
            0,
            steps,
        )?,
        lambda_cd: c.float("train_em.lambda_cd", &e.lambda_cd, 1e-3, 0.0, 1e6, false)?,
        eps_max: c.float("train_em.eps_max", &e.eps_max, 0.01, 0.0, 100.0, false)?,
        tau_star: c.float("train_em.tau_star", &e.tau_star, 0.5, 0.0, 0.999_999, false)?,
        langevin_steps: c.int("train_em.langevin_steps", &e.langevin_steps, 20, 1, 100_000)?,
        langevin_dt: c.float(
            "train_em.langevin_dt",
            &e.langevin_dt,
            0.05,
            0.0,
            10.0,
            true,
        )?,
        checkpoint_every: c.int(
            "train_em.checkpoint_every",
            &e.checkpoint_every,
            100,
            1,
            100_000_000,
        )?,
        hidden_channels: c.int("train_em.hidden_channels", &e.hidden_channels, 32, 1, 4096)?,
        blocks: c.int("train_em.blocks", &e.blocks, 2, 1, 16)?,
        head_hidden: c.int("train_em.head_hidden", &e.head_hidden, 64, 1, 65_536)?,
        negatives: c.negatives("train_em.negatives", &e.negatives, NegativeInit::Data)?,
        allow_short_negatives: e
            .allow_short_negatives
            .as_ref()
            .is_some_and(|v| *v.get_ref()),
    };
    c.negative_horizon(
        &TrainConfig {
            total_steps: train.steps as u64,
            flow_steps: train_em.warmup_steps as u64,
            lambda_cd: train_em.lambda_cd,
            tau_star: train_em.tau_star,
            neg_steps: train_em.langevin_steps,
            neg_dt: train_em.langevin_dt,
            allow_short_negatives: train_em.allow_short_negatives,
            ..TrainConfig::default()
        },
        "train_em",
        [
            (
                "langevin_steps",
                e.langevin_steps.as_ref().map(Spanned::span),
            ),
            ("langevin_dt", e.langevin_dt.as_ref().map(Spanned::span)),
            ("tau_star", e.tau_star.as_ref().map(Spanned::span)),
            ("warmup_steps", e.warmup_steps.as_ref().map(Spanned::span)),
        ],
    )?;
    let train_cfm = TrainCfm {
        hidden: match &raw.train_cfm.hidden {
            Some(_) => Some(c.int("train_cfm.hidden", &raw.train_cfm.hidden, 0, 1, 256)?),
            None => None,
        },
    };
    let s = &raw.sample;
    let nfe = c.int("sample.nfe", &s.nfe, 100, 1, 1_000_000)?;
    let sample = ImageSample {
        n: c.int("sample.n", &s.n, 500, 1, 1_000_000)?,
        nfe,
        trajectory: c.int("sample.trajectory", &s.trajectory, 8, 2, 64)?,
    };
    let se = &raw.sample_em;
    let sample_em = SampleEm {
        dt: c.float("sample_em.dt", &se.dt, 1.0 / nfe as f64, 0.0, 10.0, true)?,
        eps_max: c.float(
            "sample_em.eps_max",
            &se.eps_max,
            train_em.eps_max,
            0.0,
            100.0,
            false,
        )?,
        tau_star: c.float(
            "sample_em.tau_star",
            &se.tau_star,
            train_em.tau_star,
            0.0,
            0.999_999,
            false,
        )?,
    };
    let m = &raw.sample_cfm.method;
    let method = choice(src, "sample_cfm.method", m, "euler", &["euler", "heun"])?;
    if method == "heun" && !nfe.is_multiple_of(2) {
        let span = m.as_ref().map_or(0..0, Spanned::span);
        return Err(src.error_at(
            span,
            "sample_cfm.method",
            format!("heun takes two evaluations per step: sample.nfe must be even, got {nfe}"),
        ));
    }
    let r = &raw.metrics;
    let metrics = Metrics {
        n: c.int("metrics.n", &r.n, 300, 2, 100_000)?,
        batch: c.int("metrics.batch", &r.batch, 16, 1, 4096)?,
    };
    if metrics.n > sample.n || metrics.n > data.n_train {
        let span = r.n.as_ref().map_or(0..0, Spanned::span);
        return Err(src.error_at(
            span,
            "metrics.n",
            format!(
                "{} images per FID set, but only {} samples (sample.n) and {} training images (data.n_train)",
                metrics.n, sample.n, data.n_train
            ),
        ));
    }
    Ok(Plan {
        workflow,
        body: Body::Image(Image {
            data,
            train,
            train_em,
            train_cfm,
            sample,
            sample_em,
            sample_cfm: SampleCfm { method },
            metrics,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Source {
        Source {
            path: "dir/img.toml".into(),
            text: text.into(),
        }
    }

    const MIN: &str = "[workflow]\nkind = \"image\"\n[data]\ndataset = \"mnist\"\n";

    #[test]
    fn minimal_file_gets_defaults_and_round_trips() {
        let plan = build(&src(MIN), None).unwrap();
        let Body::Image(i) = &plan.body else {
            panic!("not an image plan")
        };
        assert_eq!((i.train.steps, i.sample.nfe, i.metrics.n), (2000, 100, 300));
        assert!((i.sample_em.dt - 0.01).abs() < 1e-12);
        // The EMA default follows the 2000 steps: 1 - 10/2000, not 0.999 (13% of the init).
        assert!(
            (i.train.ema_decay - 0.995).abs() < 1e-12,
            "{}",
            i.train.ema_decay
        );
        let text = plan.resolved_toml().unwrap();
        let again = build(&src(&text), None).unwrap();
        assert_eq!(again.resolved_toml().unwrap(), text);
    }

    #[test]
    fn bad_values_name_field_and_line() {
        let text = format!("{MIN}[sample_cfm]\nmethod = \"rk4\"\n");
        let err = build(&src(&text), None).unwrap_err().to_string();
        assert!(
            err.starts_with("dir/img.toml:6:10: field `sample_cfm.method`: unknown value `rk4`"),
            "{err}"
        );
        let text = format!("{MIN}[metrics]\nn = 900\n[sample]\nn = 100\n");
        let err = build(&src(&text), None).unwrap_err().to_string();
        assert!(err.contains("img.toml:6:5: field `metrics.n`"), "{err}");
        let text = MIN.replace("mnist", "svhn");
        let err = build(&src(&text), None).unwrap_err().to_string();
        assert!(err.contains("img.toml:4:11: field `data.dataset`"), "{err}");
    }
}
