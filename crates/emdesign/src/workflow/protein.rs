//! The protein workflow's checked settings (data -> predictor -> energy -> design -> evaluate
//! -> report) and their conversion to em-protein's configs; `protein_build.rs` makes them from
//! the raw TOML.

use anyhow::Result;
use em_core::schedule::Schedule;
use em_core::train::TrainConfig;
use em_protein::benchmark::Difficulty;
use em_protein::datasets::Task;
use em_protein::design::{DesignConfig, Interaction};
use em_protein::energy_model::{ActivationName, EnergyNetConfig, ProteinEnergyConfig, ReadoutName};
use em_protein::gfp_splits::GfpSplit;
use em_protein::predictor::TrainPredictorConfig;
use serde::{Serialize, Serializer};

pub(super) use super::protein_build::build;
use super::toy2d::Train;

/// A protein design workflow.
#[derive(Debug, Clone, Serialize)]
pub struct Protein {
    /// `[data]`.
    pub data: Data,
    /// `[predictor]`.
    pub predictor: Predictor,
    /// `[energy]`.
    pub energy: ProteinEnergy,
    /// `[design]`.
    pub design: Design,
    /// `[evaluate]`.
    pub evaluate: Evaluate,
    /// `[report]`.
    pub report: ProteinReport,
    /// `[latent]`: Energy Matching in a VAE latent (`None`: on the one-hot embedding).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latent: Option<em_protein::latent::LatentConfig>,
}

fn display<T: std::fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// The benchmark split.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ProteinData {
    /// GFP or AAV.
    #[serde(serialize_with = "display")]
    pub task: Task,
    /// Medium or hard.
    #[serde(serialize_with = "display")]
    pub difficulty: Difficulty,
    /// GFP: GGS's split files or the rebuild (`None` for AAV, whose split is always rebuilt;
    /// left out of stage keys then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gfp_split: Option<GfpSplit>,
}

/// Where the training data come from.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Data {
    /// A GGS benchmark split (serialised as before, so benchmark stage keys are unchanged).
    Benchmark(ProteinData),
    /// The user's own data (`[data] source = "file"`).
    File(Box<OwnData>),
}

/// The user's data set, read and checked while the plan was built.
#[derive(Debug, Clone, Serialize)]
pub struct OwnData {
    /// Always `file`.
    pub source: &'static str,
    /// em-protein's settings, paths resolved against the workflow's folder.
    pub file: em_protein::user_data::UserDataConfig,
    /// Sequence length.
    #[serde(skip)]
    pub length: usize,
    /// Distinct sequences (rows after merging repeats).
    #[serde(skip)]
    pub rows: usize,
    /// The checked wild type.
    #[serde(skip)]
    pub wild_type: Option<em_protein::sequence::Sequence>,
}

impl Protein {
    /// The same workflow on another data file of the user's in the checked format (a lab
    /// round's merged `measured.csv`): the file read and checked now, its rows counted and
    /// the predictor's held-out rows redone for them. Errors on a benchmark workflow.
    pub fn with_own_file(&self, file: em_protein::user_data::UserDataConfig) -> Result<Protein> {
        let Data::File(_) = &self.data else {
            anyhow::bail!("a benchmark workflow has no data file of its own");
        };
        let data = em_protein::user_data::load(&file)?;
        let rows = data.table.len();
        let mut out = self.clone();
        if let Predictor::Train { val_samples, .. } = &mut out.predictor {
            *val_samples = file.holdout_rows(rows);
        }
        out.data = Data::File(Box::new(OwnData {
            source: "file",
            length: data.table.length(),
            rows,
            wild_type: data.wild_type,
            file,
        }));
        Ok(out)
    }
}

impl Data {
    /// Sequence length.
    pub fn length(&self) -> usize {
        match self {
            Data::Benchmark(d) => d.task.length(),
            Data::File(f) => f.length,
        }
    }
}

/// Where the guiding predictor comes from.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Predictor {
    /// The published GGS predictor of the split, from the data directory.
    Ggs {
        /// Trained on GGS's smoothed labels.
        smoothed: bool,
    },
    /// A CNN trained here on the split.
    Train {
        /// Epochs.
        epochs: usize,
        /// Rows per step.
        batch_size: usize,
        /// Adam step size.
        learning_rate: f64,
        /// Held-out rows.
        val_samples: usize,
        /// CNN channels.
        channels: usize,
        /// CNN kernel width.
        kernel_size: usize,
        /// Members of the ensemble (left out of stage keys when 1, a single predictor).
        #[serde(skip_serializing_if = "is_one")]
        ensemble: usize,
    },
}

fn is_one(v: &usize) -> bool {
    *v == 1
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl Predictor {
    /// GGS's predictor recipe ([`TrainPredictorConfig`]'s defaults: 100 epochs, batch 1024,
    /// Adam lr 1e-4, 200 held-out rows, 256 channels, kernel 5), what a benchmark workflow
    /// trains when the published GGS predictor is not in the data directory.
    pub fn ggs_recipe() -> Self {
        let d = TrainPredictorConfig::default();
        Predictor::Train {
            epochs: d.epochs,
            batch_size: d.batch_size,
            learning_rate: d.learning_rate,
            val_samples: d.val_samples,
            channels: d.channels,
            kernel_size: d.kernel_size,
            ensemble: 1,
        }
    }

    /// Members of the predictor ensemble (1: a single predictor, and for GGS's).
    pub fn ensemble(&self) -> usize {
        match *self {
            Predictor::Ggs { .. } => 1,
            Predictor::Train { ensemble, .. } => ensemble,
        }
    }

    /// The trainer settings for `source = "train"` (seeded from the workflow seed).
    pub fn train_config(&self, seed: u64) -> Option<TrainPredictorConfig> {
        match *self {
            Predictor::Ggs { .. } => None,
            Predictor::Train {
                epochs,
                batch_size,
                learning_rate,
                val_samples,
                channels,
                kernel_size,
                ensemble: _,
            } => Some(TrainPredictorConfig {
                epochs,
                batch_size,
                learning_rate,
                val_samples,
                channels,
                kernel_size,
                seed,
                ..TrainPredictorConfig::default()
            }),
        }
    }
}

/// The sequence potential and its training.
#[derive(Debug, Clone, Serialize)]
pub struct ProteinEnergy {
    /// Convolution channels.
    pub hidden_channels: usize,
    /// Kernel width (odd).
    pub kernel: usize,
    /// Residual blocks.
    pub blocks: usize,
    /// Head width.
    pub head_hidden: usize,
    /// Activation name.
    pub activation: String,
    /// Readout name (`flatten`, `mean` or `position_sum`).
    pub readout: String,
    /// Output scale of the `position_sum` readout.
    pub output_scale: f64,
    /// Confinement strength.
    pub confinement: f64,
    /// Trainer settings.
    pub train: Train,
}

impl ProteinEnergy {
    /// em-protein's energy settings, with the trainer seeded by `seed`.
    pub fn config(&self, seed: u64) -> ProteinEnergyConfig {
        let activation = match self.activation.as_str() {
            "softplus" => ActivationName::Softplus,
            "tanh" => ActivationName::Tanh,
            "gelu_tanh" => ActivationName::GeluTanh,
            _ => ActivationName::Silu,
        };
        let readout =
            ReadoutName::from_name(&self.readout).unwrap_or(EnergyNetConfig::default().readout);
        let t = &self.train;
        ProteinEnergyConfig {
            model: EnergyNetConfig {
                hidden_channels: self.hidden_channels,
                kernel: self.kernel,
                blocks: self.blocks,
                head_hidden: self.head_hidden,
                activation,
                readout,
                output_scale: self.output_scale,
                confinement: self.confinement,
            },
            train: TrainConfig {
                lr_warmup_steps: (t.steps as u64 / 10).min(100),
                ..t.train_config(seed)
            },
        }
    }
}

/// Guided Langevin design settings.
#[derive(Debug, Clone, Serialize)]
pub struct Design {
    /// Chains per seed.
    pub n_samples: usize,
    /// Seeds, one design batch each.
    pub seeds: Vec<u64>,
    /// Step size.
    pub dt: f64,
    /// Final time.
    pub t_end: f64,
    /// Guidance width.
    pub zeta: f64,
    /// Temperature at t >= 1.
    pub eps_max: f64,
    /// Ramp start.
    pub tau_star: f64,
    /// `none`, `quadratic` or `kernel`.
    pub interaction: String,
    /// Width of the quadratic interaction.
    pub sigma_w: f64,
    /// Width of the kernel interaction; `None` (not written to stage keys) means
    /// [`DEFAULT_KERNEL_SIGMA_W`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_sigma_w: Option<f64>,
    /// Clamp box.
    pub clamp: [f64; 2],
    /// Softmax temperature of the predictor input.
    pub temperature: f64,
    /// Designs kept per seed.
    pub top_k: usize,
    /// Guide and rank on the ensemble's `mean - kappa · spread` (left out of stage keys
    /// when 0, the mean).
    #[serde(skip_serializing_if = "is_zero")]
    pub kappa: f64,
    /// Also design without interaction.
    pub ablation: bool,
    /// Constraints (own data with a wild type only; left out of stage keys when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Box<em_protein::constraints::ConstraintsConfig>>,
}

/// Kernel-interaction width when none is set: on AAV hard at 512 chains, 0.2 gave fitness
/// 0.613 / diversity 3.47 (seed 0), about what quadratic sigma_W 9 gives there.
pub const DEFAULT_KERNEL_SIGMA_W: f64 = 0.2;

impl Design {
    /// Width of the kernel interaction.
    pub fn kernel_sigma_w(&self) -> f64 {
        self.kernel_sigma_w.unwrap_or(DEFAULT_KERNEL_SIGMA_W)
    }

    /// Width of the configured interaction (quadratic or kernel; the quadratic one for none).
    pub fn interaction_width(&self) -> f64 {
        if self.interaction == "kernel" {
            self.kernel_sigma_w()
        } else {
            self.sigma_w
        }
    }

    /// em-protein's design settings, with the configured interaction or none.
    pub fn config(&self, with_interaction: bool) -> DesignConfig {
        let interaction = match (with_interaction, self.interaction.as_str()) {
            (true, "quadratic") => Interaction::Quadratic {
                sigma_w: self.sigma_w,
            },
            (true, "kernel") => Interaction::Kernel {
                sigma_w: self.kernel_sigma_w(),
            },
            _ => Interaction::None,
        };
        DesignConfig {
            n_samples: self.n_samples,
            seeds: self.seeds.clone(),
            dt: self.dt,
            t_end: self.t_end,
            zeta: self.zeta,
            schedule: Schedule::Ramp {
                tau_star: self.tau_star,
                eps_max: self.eps_max,
            },
            interaction,
            clamp: self.clamp,
            temperature: self.temperature,
            top_k: self.top_k,
            kappa: self.kappa,
        }
    }

    /// The design variants to run: the configured interaction, then (ablation) none.
    pub fn variants(&self) -> Vec<(bool, String)> {
        let mut v = vec![(true, self.interaction.clone())];
        if self.ablation && self.interaction != "none" {
            v.push((false, "none".into()));
        }
        v
    }
}

/// Evaluation settings.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluate {
    /// Oracle-score the training split too.
    pub score_training: bool,
}

/// Report settings.
#[derive(Debug, Clone, Serialize)]
pub struct ProteinReport {
    /// Histogram bins.
    pub bins: usize,
}
