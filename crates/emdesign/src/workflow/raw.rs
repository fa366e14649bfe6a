//! Plain serde structs mirroring the workflow TOML, with unknown fields rejected and the
//! spans of checked values kept, so `plan.rs` can name the line of a value it refuses.
//! Every file has a `[workflow]` table whose `kind` picks the schema of the rest, read in a
//! second pass: one table per stage (`toy2d`: data, energy, sample, report; later `protein`:
//! data, predictor, energy, design, evaluate, report), `[energy.train]` shared by all kinds.

use serde::Deserialize;
use toml::Spanned;

/// The `[workflow]` table every workflow file starts with; `kind` picks the schema of the rest.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawHeader {
    /// Which workflow: `toy2d` (later `protein`, `image`).
    pub kind: Spanned<String>,
    /// A name for reports.
    pub name: Option<String>,
    /// Master seed; every stage derives its own seed from it.
    pub seed: Option<u64>,
    /// Run directory, relative to the workflow file.
    pub run_dir: Option<String>,
}

/// Only the header, read first (other tables ignored) to choose the full schema.
#[derive(Deserialize, Debug)]
pub struct RawHeadOnly {
    /// The `[workflow]` table.
    pub workflow: RawHeader,
}

/// A whole `kind = "toy2d"` workflow file.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawToy2d {
    /// `[workflow]`.
    pub workflow: RawHeader,
    /// `[data]`: the 2D target.
    pub data: RawToyData,
    /// `[energy]`: the potential network and its training.
    #[serde(default)]
    pub energy: RawEnergy,
    /// `[sample]`: Langevin sampling from noise.
    #[serde(default)]
    pub sample: RawSample,
    /// `[report]`: plots and the MMD check.
    #[serde(default)]
    pub report: RawReport,
}

/// `[data]` of a toy2d workflow: a named target or a CSV of `x,y` points.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawToyData {
    /// `two-moons`, `8gaussians` or `checkerboard`.
    pub target: Option<Spanned<String>>,
    /// A CSV file of 2D points (`x,y` per line), relative to the workflow file.
    pub points: Option<Spanned<String>>,
    /// Training points drawn from the target.
    pub n_train: Option<Spanned<i64>>,
    /// Held-out points for the MMD check.
    pub n_eval: Option<Spanned<i64>>,
}

/// `[energy]`: the potential network (an MLP here) and `[energy.train]`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawEnergy {
    /// Hidden width.
    pub hidden: Option<Spanned<i64>>,
    /// Number of hidden layers.
    pub depth: Option<Spanned<i64>>,
    /// Energy Matching training settings.
    #[serde(default)]
    pub train: RawTrain,
}

/// `[energy.train]`: the Energy Matching trainer (shared by every workflow kind).
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTrain {
    /// Total optimiser steps.
    pub steps: Option<Spanned<i64>>,
    /// Steps of the OT flow warm-up before the contrastive phase.
    pub warmup_steps: Option<Spanned<i64>>,
    /// Minibatch size.
    pub batch_size: Option<Spanned<i64>>,
    /// Adam learning rate.
    pub lr: Option<Spanned<f64>>,
    /// Weight of the contrastive term.
    pub lambda_cd: Option<Spanned<f64>>,
    /// Maximum Langevin temperature eps_max.
    pub eps_max: Option<Spanned<f64>>,
    /// Start of the temperature ramp of noise-started negatives, in [0, 1).
    pub tau_star: Option<Spanned<f64>>,
    /// Langevin steps for the contrastive negatives.
    pub langevin_steps: Option<Spanned<i64>>,
    /// Langevin step size for the negatives.
    pub langevin_dt: Option<Spanned<f64>>,
    /// Where negative chains start: `data` (official protein recipe) or `data_noise`.
    pub negatives: Option<Spanned<String>>,
    /// Accept negative chains shorter than t = 1 or never heated (tiny test runs only).
    pub allow_short_negatives: Option<Spanned<bool>>,
    /// EMA decay of the weights.
    pub ema_decay: Option<Spanned<f64>>,
    /// Save a checkpoint every this many steps (a killed run resumes from it).
    pub checkpoint_every: Option<Spanned<i64>>,
}

/// `[sample]`: Langevin from noise with the trained potential.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSample {
    /// Number of chains (samples).
    pub n: Option<Spanned<i64>>,
    /// Langevin steps.
    pub steps: Option<Spanned<i64>>,
    /// Step size.
    pub dt: Option<Spanned<f64>>,
    /// Maximum temperature eps_max.
    pub eps_max: Option<Spanned<f64>>,
    /// Start of the temperature ramp, in [0, 1).
    pub tau_star: Option<Spanned<f64>>,
}

/// `[report]`: plot resolution and the MMD bandwidth.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawReport {
    /// Grid cells per axis for the contours of V.
    pub grid: Option<Spanned<i64>>,
    /// RBF bandwidth of the MMD between samples and held-out target points.
    pub mmd_bandwidth: Option<Spanned<f64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_is_rejected_with_its_name() {
        let text = "[workflow]\nkind = \"toy2d\"\n[data]\ntarget = \"two-moons\"\nbogus = 1\n";
        let err = toml::from_str::<RawToy2d>(text).unwrap_err();
        assert!(err.message().contains("bogus"), "{err}");
        let span = err.span().unwrap();
        assert_eq!(&text[span], "bogus");
    }

    #[test]
    fn spans_point_at_values() {
        let text = "[workflow]\nkind = \"toy2d\"\n[data]\nn_train = 12\n";
        let raw: RawToy2d = toml::from_str(text).unwrap();
        let n = raw.data.n_train.unwrap();
        assert_eq!(*n.get_ref(), 12);
        assert_eq!(&text[n.span()], "12");
    }
}
