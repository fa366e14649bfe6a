//! Plain serde structs mirroring a `kind = "image"` workflow TOML (unknown fields rejected,
//! spans kept so `image.rs` can name the line of a value it refuses).

use serde::Deserialize;
use toml::Spanned;

use super::raw::RawHeader;

/// A whole `kind = "image"` workflow file: one table per stage, `[train]` shared by the EM
/// and OT-CFM trainers and `[sample]` shared by both samplers (equal steps, equal NFE).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawImage {
    /// `[workflow]`.
    pub workflow: RawHeader,
    /// `[data]`: which data set and how many training images.
    pub data: RawImageData,
    /// `[train]`: settings both trainers share.
    #[serde(default)]
    pub train: RawImageTrain,
    /// `[train_em]`: the potential network and the Energy Matching phases.
    #[serde(default)]
    pub train_em: RawTrainEm,
    /// `[train_cfm]`: the OT-CFM vector field.
    #[serde(default)]
    pub train_cfm: RawTrainCfm,
    /// `[sample]`: samples per model, NFE, trajectory snapshots.
    #[serde(default)]
    pub sample: RawImageSample,
    /// `[sample_em]`: the Langevin sampler.
    #[serde(default)]
    pub sample_em: RawSampleEm,
    /// `[sample_cfm]`: the ODE solver.
    #[serde(default)]
    pub sample_cfm: RawSampleCfm,
    /// `[metrics]`: FID/KID set size.
    #[serde(default)]
    pub metrics: RawMetrics,
}

/// `[data]`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawImageData {
    /// `mnist`, `fashion-mnist` or `cifar10`.
    pub dataset: Option<Spanned<String>>,
    /// Training images (the first `n_train` of the training split).
    pub n_train: Option<Spanned<i64>>,
    /// Data directory (relative to the workflow file); default `$EMDESIGN_DATA`, else the
    /// shared datasets directory.
    pub data_dir: Option<Spanned<String>>,
}

/// `[train]`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawImageTrain {
    /// Optimiser steps of each model.
    pub steps: Option<Spanned<i64>>,
    /// Minibatch size.
    pub batch_size: Option<Spanned<i64>>,
    /// Adam learning rate.
    pub lr: Option<Spanned<f64>>,
    /// Linear learning-rate warm-up steps.
    pub lr_warmup_steps: Option<Spanned<i64>>,
    /// EMA decay of the weights.
    pub ema_decay: Option<Spanned<f64>>,
    /// Global gradient-norm clip (0: off).
    pub grad_clip: Option<Spanned<f64>>,
    /// `cpu` or `cuda` (needs the `cuda` feature).
    pub device: Option<Spanned<String>>,
}

/// `[train_em]`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTrainEm {
    /// Flow warm-up steps before the contrastive phase.
    pub warmup_steps: Option<Spanned<i64>>,
    /// Weight of the contrastive term.
    pub lambda_cd: Option<Spanned<f64>>,
    /// Maximum temperature of the negatives' chains.
    pub eps_max: Option<Spanned<f64>>,
    /// Start of the negatives' temperature ramp, in [0, 1).
    pub tau_star: Option<Spanned<f64>>,
    /// Langevin steps per negative chain.
    pub langevin_steps: Option<Spanned<i64>>,
    /// Langevin step size of the negatives.
    pub langevin_dt: Option<Spanned<f64>>,
    /// Where negative chains start: `data` (official protein recipe) or `data_noise`.
    pub negatives: Option<Spanned<String>>,
    /// Accept negative chains shorter than t = 1 or never heated (tiny test runs only).
    pub allow_short_negatives: Option<Spanned<bool>>,
    /// Checkpoint period in steps.
    pub checkpoint_every: Option<Spanned<i64>>,
    /// Hidden channels of the potential's convolutions.
    pub hidden_channels: Option<Spanned<i64>>,
    /// Residual blocks.
    pub blocks: Option<Spanned<i64>>,
    /// Hidden width of the MLP head.
    pub head_hidden: Option<Spanned<i64>>,
}

/// `[train_cfm]`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTrainCfm {
    /// Channels at full resolution (default: the width whose parameter count is closest to
    /// the EM potential's).
    pub hidden: Option<Spanned<i64>>,
}

/// `[sample]`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawImageSample {
    /// Samples per model.
    pub n: Option<Spanned<i64>>,
    /// Function evaluations per sample, the same for both models.
    pub nfe: Option<Spanned<i64>>,
    /// Snapshots in the trajectory strips.
    pub trajectory: Option<Spanned<i64>>,
}

/// `[sample_em]`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSampleEm {
    /// Langevin step size (default `1 / nfe`, so time runs from 0 to 1).
    pub dt: Option<Spanned<f64>>,
    /// Maximum temperature (default: `train_em.eps_max`).
    pub eps_max: Option<Spanned<f64>>,
    /// Start of the temperature ramp (default: `train_em.tau_star`).
    pub tau_star: Option<Spanned<f64>>,
}

/// `[sample_cfm]`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSampleCfm {
    /// `euler` or `heun`.
    pub method: Option<Spanned<String>>,
}

/// `[metrics]`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// Images per set for FID/KID (samples, held-out test images, train images).
    pub n: Option<Spanned<i64>>,
    /// Inception batch size.
    pub batch: Option<Spanned<i64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_is_rejected_with_its_span() {
        let text = "[workflow]\nkind = \"image\"\n[data]\ndataset = \"mnist\"\n[sample]\nnfe = 4\nsteps = 3\n";
        let err = toml::from_str::<RawImage>(text).unwrap_err();
        assert!(err.message().contains("steps"), "{err}");
        assert_eq!(&text[err.span().unwrap()], "steps");
    }
}
