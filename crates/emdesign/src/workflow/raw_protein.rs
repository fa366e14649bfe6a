//! Plain serde structs mirroring a `kind = "protein"` workflow file (tables `[data]`,
//! `[predictor]`, `[energy]` + `[energy.train]`, `[design]`, `[evaluate]`, `[report]`), unknown
//! fields rejected and spans kept so `protein.rs` can name the line of a value it refuses.

use serde::Deserialize;
use toml::Spanned;

use super::raw::{RawHeader, RawTrain};

/// A whole `kind = "protein"` workflow file.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawProtein {
    /// `[workflow]`.
    pub workflow: RawHeader,
    /// `[data]`: the benchmark task and split.
    pub data: RawProteinData,
    /// `[predictor]`: the fitness predictor guiding design.
    #[serde(default)]
    pub predictor: RawPredictor,
    /// `[energy]`: the sequence potential and its Energy Matching training.
    #[serde(default)]
    pub energy: RawProteinEnergy,
    /// `[design]`: guided Langevin design.
    #[serde(default)]
    pub design: RawDesign,
    /// `[evaluate]`: oracle scoring.
    #[serde(default)]
    pub evaluate: RawEvaluate,
    /// `[report]`: plots.
    #[serde(default)]
    pub report: RawProteinReport,
    /// `[latent]`: Energy Matching in a sequence-VAE latent instead of on the one-hot
    /// embedding (em-protein's settings, deserialised as they are).
    pub latent: Option<em_protein::latent::LatentConfig>,
}

/// `[data]`: a GGS benchmark split, or (`source = "file"`) the user's own data.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawProteinData {
    /// `benchmark` (default) or `file`.
    pub source: Option<Spanned<String>>,
    /// `[data.file]` (`source = "file"`): em-protein's settings of a user data set.
    pub file: Option<em_protein::user_data::UserDataConfig>,
    /// `gfp` or `aav` (benchmark).
    pub task: Option<Spanned<String>>,
    /// `medium` or `hard` (benchmark).
    pub difficulty: Option<Spanned<String>>,
    /// GFP only: `ggs` (GGS's own split files, the default) or `rebuild`.
    pub gfp_split: Option<Spanned<String>>,
}

/// `[predictor]`: a GGS predictor from the data directory or one trained on the split.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawPredictor {
    /// `ggs` (default) or `train`.
    pub source: Option<Spanned<String>>,
    /// GGS predictor on smoothed labels (default: true for hard, false for medium).
    pub smoothed: Option<Spanned<bool>>,
    /// Training epochs (`source = "train"`).
    pub epochs: Option<Spanned<i64>>,
    /// Rows per Adam step (`source = "train"`).
    pub batch_size: Option<Spanned<i64>>,
    /// Adam step size (`source = "train"`).
    pub learning_rate: Option<Spanned<f64>>,
    /// Held-out rows for Spearman (`source = "train"`).
    pub val_samples: Option<Spanned<i64>>,
    /// CNN channels (`source = "train"`).
    pub channels: Option<Spanned<i64>>,
    /// CNN kernel width (`source = "train"`).
    pub kernel_size: Option<Spanned<i64>>,
    /// Members of the trained ensemble (`source = "train"`).
    pub ensemble: Option<Spanned<i64>>,
}

/// `[energy]`: the residual Conv1d potential and `[energy.train]`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawProteinEnergy {
    /// Hidden channels of the convolutions.
    pub hidden_channels: Option<Spanned<i64>>,
    /// Odd kernel width.
    pub kernel: Option<Spanned<i64>>,
    /// Residual blocks.
    pub blocks: Option<Spanned<i64>>,
    /// Hidden width of the MLP head.
    pub head_hidden: Option<Spanned<i64>>,
    /// `silu`, `softplus`, `tanh` or `gelu_tanh`.
    pub activation: Option<Spanned<String>>,
    /// `flatten` / `position_sum` (position aware) or `mean` (translation invariant).
    pub readout: Option<Spanned<String>>,
    /// Output scale of the `position_sum` readout.
    pub output_scale: Option<Spanned<f64>>,
    /// Strength of an added `alpha/2 ||x||^2`.
    pub confinement: Option<Spanned<f64>>,
    /// Energy Matching training settings.
    #[serde(default)]
    pub train: RawTrain,
}

/// `[design]`: Langevin on `V + guidance - interaction` from noise.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDesign {
    /// Chains per seed.
    pub n_samples: Option<Spanned<i64>>,
    /// One design batch per seed.
    pub seeds: Option<Spanned<Vec<i64>>>,
    /// Step size.
    pub dt: Option<Spanned<f64>>,
    /// Final time.
    pub t_end: Option<Spanned<f64>>,
    /// Guidance width in normalised fitness (`inf` disables guidance).
    pub zeta: Option<Spanned<f64>>,
    /// Temperature reached at t = 1.
    pub eps_max: Option<Spanned<f64>>,
    /// Start of the temperature ramp.
    pub tau_star: Option<Spanned<f64>>,
    /// `none`, `quadratic` or `kernel`.
    pub interaction: Option<Spanned<String>>,
    /// Width of the quadratic interaction.
    pub sigma_w: Option<Spanned<f64>>,
    /// Width of the kernel interaction (its scale differs from the quadratic one's).
    pub kernel_sigma_w: Option<Spanned<f64>>,
    /// Box `[lo, hi]` the states are clamped to.
    pub clamp: Option<Spanned<Vec<f64>>>,
    /// Softmax temperature of the relaxed predictor input.
    pub temperature: Option<Spanned<f64>>,
    /// Designs kept per seed (best by the predictor).
    pub top_k: Option<Spanned<i64>>,
    /// Guide and rank on `mean - kappa · spread` of the predictor ensemble.
    pub kappa: Option<Spanned<f64>>,
    /// Also design without interaction, same seeds.
    pub ablation: Option<bool>,
    /// `[design.constraints]`: em-protein's constraint settings (needs a wild type).
    pub constraints: Option<em_protein::constraints::ConstraintsConfig>,
}

/// `[evaluate]`: oracle scoring.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawEvaluate {
    /// Also oracle-score the training split (for the histogram and the reference row).
    pub score_training: Option<bool>,
}

/// `[report]`: plots.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawProteinReport {
    /// Bins of the fitness histogram.
    pub bins: Option<Spanned<i64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_design_field_is_rejected() {
        let text = "[workflow]\nkind = \"protein\"\n[data]\ntask = \"aav\"\ndifficulty = \"hard\"\n[design]\nn_sample = 3\n";
        let err = toml::from_str::<RawProtein>(text).unwrap_err();
        assert!(err.message().contains("n_sample"), "{err}");
        assert_eq!(&text[err.span().unwrap()], "n_sample");
    }
}
