//! Guided Langevin design: from `N(0, I)` noise, Langevin on
//! `U = V + guidance - repulsion` over `t in [0, t_end]`, clamped to the box; decode by
//! argmax, deduplicate, keep the top-k by the predictor (on own data under a
//! [`Selection`]: no measured sequence, designs `min_distance` apart); then evaluate.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use em_core::energy::EnergyTerm;
use em_core::interaction::{KernelRepulsion, QuadraticRepulsion};
use em_core::langevin::{LangevinConfig, sample};
use em_core::loss::flow::host_normal;
use em_core::potential::Potential;
use em_core::schedule::Schedule;
use em_core::train::step_seed;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::alphabet::ALPHABET_SIZE;
use crate::cnn::{Cnn, CnnError};
use crate::constraints::Constraints;
use crate::guidance::PredictorGuidance;
use crate::metrics;
use crate::oracle::Oracle;
use crate::representation::{DEFAULT_TEMPERATURE, decode};
use crate::selection::Selection;
use crate::sequence::Sequence;

/// Errors of the model side (energy training, potential files, design); each names the
/// field, file or sequence.
#[derive(Debug, thiserror::Error)]
pub enum DesignError {
    /// A setting outside its range.
    #[error("invalid config: field `{field}`: {why}")]
    Config {
        /// Dotted field name (`design.zeta`, `train.lr`).
        field: String,
        /// What is wrong with the value.
        why: String,
    },
    /// Unusable input sequences.
    #[error("invalid data: {what}")]
    Data {
        /// What is wrong and where.
        what: String,
    },
    /// A potential file that cannot be written or read.
    #[error("potential file {}: {why}", path.display())]
    PotentialFile {
        /// The file.
        path: PathBuf,
        /// What failed.
        why: String,
        /// The I/O error, if any.
        #[source]
        source: Option<std::io::Error>,
    },
    /// The engine failed (training, checkpoints, non-finite samples).
    #[error(transparent)]
    Engine(#[from] em_core::error::Error),
    /// The predictor could not score the designs.
    #[error("predictor: {0}")]
    Predictor(#[from] CnnError),
}

impl DesignError {
    /// An engine error with config field names prefixed by `prefix.` (none if empty).
    pub fn prefixed(prefix: &str, e: em_core::error::Error) -> Self {
        match e {
            em_core::error::Error::InvalidConfig { field, why } => DesignError::Config {
                field: if prefix.is_empty() {
                    field
                } else {
                    format!("{prefix}.{field}")
                },
                why,
            },
            other => DesignError::Engine(other),
        }
    }

    pub(crate) fn potential_file(path: &Path, why: String, source: Option<std::io::Error>) -> Self {
        DesignError::PotentialFile {
            path: path.to_path_buf(),
            why,
            source,
        }
    }

    fn config(field: &str, why: impl Into<String>) -> Self {
        DesignError::Config {
            field: format!("design.{field}"),
            why: why.into(),
        }
    }
}

/// Repulsion between the samples of a batch, subtracted from the energy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Interaction {
    /// No interaction.
    None,
    /// `W = 1/2 sum_{i!=j} ||x_i - x_j||^2 · eps(t)/sigma_w^2` (the paper's; its pull
    /// grows with the batch size).
    Quadratic {
        /// Width `sigma_W` (paper: 11 for AAV hard, 14 for AAV medium).
        sigma_w: f64,
    },
    /// Bounded RBF-kernel repulsion with the median-heuristic bandwidth.
    Kernel {
        /// Width `sigma_W`.
        sigma_w: f64,
    },
}

/// Design sampling settings (TOML `[design]`); unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DesignConfig {
    /// Langevin chains per seed (default 512).
    pub n_samples: usize,
    /// One design batch per seed (default `[0, 1, 2, 3, 4]`).
    pub seeds: Vec<u64>,
    /// Step size (default 0.01).
    pub dt: f64,
    /// Final time; `round(t_end / dt)` steps from t = 0 (default 1.3).
    pub t_end: f64,
    /// Guidance width in normalised fitness (default 0.01); `inf` disables guidance.
    pub zeta: f64,
    /// Temperature schedule eps(t) (default ramp, `tau_star = 0.5`, `eps_max = 0.1`).
    pub schedule: Schedule,
    /// Repulsion between samples (default quadratic, `sigma_w = 11`).
    pub interaction: Interaction,
    /// Box every coordinate is clamped to after each step (default `[-1, 1]`).
    pub clamp: [f64; 2],
    /// Softmax temperature of the relaxed predictor input (default 0.25).
    pub temperature: f64,
    /// Designs kept per seed, the best unique ones by the predictor (default 128).
    pub top_k: usize,
    /// With an ensemble of predictors: guide and rank on `mean - kappa · std` over the
    /// members (default 0, the mean; left out of serialised configs when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub kappa: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl Default for DesignConfig {
    fn default() -> Self {
        Self {
            n_samples: 512,
            seeds: vec![0, 1, 2, 3, 4],
            dt: 0.01,
            t_end: 1.3,
            zeta: 0.01,
            schedule: Schedule::Ramp {
                tau_star: 0.5,
                eps_max: 0.1,
            },
            interaction: Interaction::Quadratic { sigma_w: 11.0 },
            clamp: [-1.0, 1.0],
            temperature: DEFAULT_TEMPERATURE,
            top_k: 128,
            kappa: 0.0,
        }
    }
}

impl DesignConfig {
    /// Checks every field; errors name `design.<field>`.
    pub fn check(&self) -> Result<(), DesignError> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(DesignError::config(
                    name,
                    format!("must be finite and > 0, got {v}"),
                ))
            }
        };
        if self.n_samples == 0 {
            return Err(DesignError::config("n_samples", "must be >= 1"));
        }
        if self.top_k == 0 {
            return Err(DesignError::config("top_k", "must be >= 1"));
        }
        if self.seeds.is_empty() {
            return Err(DesignError::config("seeds", "needs at least one seed"));
        }
        positive("dt", self.dt)?;
        positive("t_end", self.t_end)?;
        positive("temperature", self.temperature)?;
        if !(self.kappa.is_finite() && self.kappa >= 0.0) {
            return Err(DesignError::config(
                "kappa",
                format!("must be finite and >= 0, got {}", self.kappa),
            ));
        }
        if self.zeta.is_nan() || self.zeta <= 0.0 {
            return Err(DesignError::config(
                "zeta",
                format!("must be > 0 (inf disables guidance), got {}", self.zeta),
            ));
        }
        let [lo, hi] = self.clamp;
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(DesignError::config(
                "clamp",
                format!("need finite lo < hi, got [{lo}, {hi}]"),
            ));
        }
        match self.interaction {
            Interaction::None => {}
            Interaction::Quadratic { sigma_w } | Interaction::Kernel { sigma_w } => {
                positive("interaction.sigma_w", sigma_w)?
            }
        }
        self.langevin()
            .check("design")
            .map_err(|e| DesignError::prefixed("", e))
    }

    /// Number of Langevin steps, `round(t_end / dt)` (at least 1).
    pub fn steps(&self) -> usize {
        ((self.t_end / self.dt).round() as usize).max(1)
    }

    /// The sampler settings these fields describe.
    pub fn langevin(&self) -> LangevinConfig {
        let mut cfg = LangevinConfig::new(self.steps(), self.dt, self.schedule);
        cfg.clamp = Some((self.clamp[0], self.clamp[1]));
        cfg
    }
}

/// The designs of one seed: unique sequences, best first by the predictor.
#[derive(Debug, Clone, PartialEq)]
pub struct DesignBatch {
    /// The seed of the initial noise and the Langevin noise.
    pub seed: u64,
    /// Chains run (`n_samples`).
    pub n_samples: usize,
    /// Distinct sequences after argmax decoding.
    pub n_unique: usize,
    /// Kept designs (`min(top_k, n_unique)`), by decreasing predictor score.
    pub sequences: Vec<Sequence>,
    /// Raw predictor score of each kept design (the ensemble's mean).
    pub predictor_scores: Vec<f64>,
    /// Std of the raw scores over the ensemble's members (population std; 0 for one
    /// predictor). Designs are ranked by `score - kappa · spread`.
    pub predictor_spread: Vec<f64>,
    /// Normalised predictor fitness `(score - min_gt) / (max_gt - min_gt)` of each.
    pub predictor_fitness: Vec<f64>,
    /// Distinct samples passed over because they were already measured (own data).
    pub skipped_measured: usize,
    /// Distinct samples passed over for lying within `min_distance` of a better design.
    pub skipped_close: usize,
}

/// Runs guided Langevin design for one `seed` with the potential `V` (on `device`, plain,
/// over flat `[batch, L*20]`), the `predictor` for guidance and ranking, and the ground
/// truth's score range `[min_gt, max_gt]` for normalising it.
///
/// Same seed, same designs (noise from host `StdRng`s derived from `seed`). Errors on an
/// invalid config (named `design.*`), a potential whose dim is not a multiple of 20,
/// non-finite samples, or a predictor that cannot score the designs.
pub fn design<P: Potential + ?Sized>(
    potential: &P,
    predictor: &Cnn,
    min_gt: f64,
    max_gt: f64,
    cfg: &DesignConfig,
    seed: u64,
    device: &Device,
) -> Result<DesignBatch, DesignError> {
    design_constrained(
        potential,
        std::slice::from_ref(predictor),
        min_gt,
        max_gt,
        cfg,
        seed,
        device,
        None,
        None,
    )
}

/// [`design`] under `constraints` (when given): a [`crate::constraints::ConstraintTerm`]
/// pins forbidden coordinates to the clamp box after every step, decoding is the argmax over
/// allowed residues with the mutation cap applied, and every kept design is re-checked (a
/// violation is an error, never a silent drop). Under `selection` (own data) the top-k
/// skip measured sequences and keep designs `min_distance` apart, re-checked the same way;
/// fewer than `top_k` designs come back when the samples run out (the skip counts say why).
/// `predictors` is an ensemble (at least one member): guidance and ranking use
/// `mean - cfg.kappa · std` over its members. With one predictor and neither constraints
/// nor selection this is [`design`].
#[allow(clippy::too_many_arguments)]
pub fn design_constrained<P: Potential + ?Sized>(
    potential: &P,
    predictors: &[Cnn],
    min_gt: f64,
    max_gt: f64,
    cfg: &DesignConfig,
    seed: u64,
    device: &Device,
    constraints: Option<&Constraints>,
    selection: Option<&Selection>,
) -> Result<DesignBatch, DesignError> {
    cfg.check()?;
    let dim = potential.dim();
    if dim == 0 || !dim.is_multiple_of(ALPHABET_SIZE) {
        return Err(DesignError::Data {
            what: format!("potential dim {dim} is not a positive multiple of {ALPHABET_SIZE}"),
        });
    }
    check_gt_range(min_gt, max_gt)?;
    if predictors.is_empty() {
        return Err(DesignError::Data {
            what: "no predictor to guide and rank with".into(),
        });
    }
    let length = dim / ALPHABET_SIZE;
    if let Some(c) = constraints
        && c.length() != length
    {
        return Err(DesignError::Data {
            what: format!(
                "constraints are for length {}, the potential for {length}",
                c.length()
            ),
        });
    }
    let pin = constraints.map(|c| c.term(cfg.clamp, cfg.dt, device));
    let guidance = PredictorGuidance::ensemble(
        predictors,
        cfg.kappa,
        length,
        cfg.zeta,
        cfg.temperature,
        min_gt,
        max_gt,
    );
    let interaction = interaction_term(cfg.interaction)?;
    let mut terms: Vec<&dyn EnergyTerm> = Vec::new();
    if cfg.zeta.is_finite() {
        terms.push(&guidance);
    }
    if let Some(term) = &interaction {
        terms.push(term.as_ref());
    }
    if let Some(pin) = &pin {
        terms.push(pin);
    }
    let mut rng = StdRng::seed_from_u64(step_seed(seed, 0));
    let x0 = host_normal(cfg.n_samples, dim, &mut rng, device);
    let out = sample(potential, &terms, x0, &cfg.langevin(), step_seed(seed, 1))?;
    let decoded = match constraints {
        Some(c) => c.decode(&crate::cnn::tensor_to_vec(out.x)),
        None => decode(out.x, length),
    };
    let none = Selection::default();
    let rules = selection.unwrap_or(&none);
    let batch = rank_decoded(decoded, predictors, cfg, seed, min_gt, max_gt, rules)?;
    for s in &batch.sequences {
        let v = constraints.map_or(Vec::new(), |c| c.violations(s));
        if !v.is_empty() {
            return Err(DesignError::Data {
                what: format!("design {s} violates the constraints: {}", v.join("; ")),
            });
        }
    }
    let v = rules.violations(&batch.sequences);
    if !v.is_empty() {
        return Err(DesignError::Data {
            what: format!(
                "seed {seed}: the designs break the selection: {}",
                v.join("; ")
            ),
        });
    }
    Ok(batch)
}

/// The repulsion term of `interaction` (`None` for [`Interaction::None`]), shared by the
/// one-hot and the latent designers.
pub(crate) fn interaction_term(
    interaction: Interaction,
) -> Result<Option<Box<dyn EnergyTerm>>, DesignError> {
    Ok(match interaction {
        Interaction::None => None,
        Interaction::Quadratic { sigma_w } => Some(Box::new(QuadraticRepulsion::new(sigma_w)?)),
        Interaction::Kernel { sigma_w } => Some(Box::new(KernelRepulsion::new(sigma_w)?)),
    })
}

/// Errors (as `design.min_gt/max_gt`) unless `[min_gt, max_gt]` is a finite, non-empty range.
pub(crate) fn check_gt_range(min_gt: f64, max_gt: f64) -> Result<(), DesignError> {
    if !(min_gt.is_finite() && max_gt.is_finite() && min_gt < max_gt) {
        return Err(DesignError::config(
            "min_gt/max_gt",
            format!("need finite min < max, got [{min_gt}, {max_gt}]"),
        ));
    }
    Ok(())
}

/// Decodes the final states `x` (`[n_samples, length*20]`) by argmax, drops repeated
/// sequences (first kept), scores the unique ones with the `predictors` and keeps the
/// `cfg.top_k` best by `mean - cfg.kappa · std`, best first (shared by the EM and OT-CFM
/// designers).
pub(crate) fn rank_designs(
    x: Tensor<2>,
    length: usize,
    predictors: &[Cnn],
    cfg: &DesignConfig,
    seed: u64,
    min_gt: f64,
    max_gt: f64,
) -> Result<DesignBatch, DesignError> {
    rank_sequences(decode(x, length), predictors, cfg, seed, min_gt, max_gt)
}

/// [`rank_designs`] on sequences already decoded (the latent designer's decoder output).
pub(crate) fn rank_sequences(
    decoded: Vec<Sequence>,
    predictors: &[Cnn],
    cfg: &DesignConfig,
    seed: u64,
    min_gt: f64,
    max_gt: f64,
) -> Result<DesignBatch, DesignError> {
    let none = Selection::default();
    rank_decoded(decoded, predictors, cfg, seed, min_gt, max_gt, &none)
}

/// [`rank_designs`] on sequences already decoded, the top-k taken under `selection`.
fn rank_decoded(
    decoded: Vec<Sequence>,
    predictors: &[Cnn],
    cfg: &DesignConfig,
    seed: u64,
    min_gt: f64,
    max_gt: f64,
    selection: &Selection,
) -> Result<DesignBatch, DesignError> {
    let mut seen = HashSet::new();
    let unique: Vec<Sequence> = decoded
        .into_iter()
        .filter(|s| seen.insert(s.indices().to_vec()))
        .collect();
    let indices: Vec<Vec<u8>> = unique.iter().map(|s| s.indices().to_vec()).collect();
    let (mean, spread) = crate::ensemble::ensemble_scores(predictors, &indices)?;
    let ranked: Vec<f64> = mean
        .iter()
        .zip(&spread)
        .map(|(m, s)| m - cfg.kappa * s)
        .collect();
    let mut order: Vec<usize> = (0..unique.len()).collect();
    order.sort_by(|&a, &b| ranked[b].total_cmp(&ranked[a]));
    let ranked_seqs: Vec<Sequence> = order.iter().map(|&i| unique[i].clone()).collect();
    let picked = selection.pick(&ranked_seqs, cfg.top_k);
    let order: Vec<usize> = picked.rows.iter().map(|&r| order[r]).collect();
    let predictor_scores: Vec<f64> = order.iter().map(|&i| mean[i]).collect();
    Ok(DesignBatch {
        seed,
        n_samples: cfg.n_samples,
        n_unique: unique.len(),
        sequences: order.iter().map(|&i| unique[i].clone()).collect(),
        predictor_fitness: metrics::normalise(&predictor_scores, min_gt, max_gt),
        predictor_spread: order.iter().map(|&i| spread[i]).collect(),
        predictor_scores,
        skipped_measured: picked.skipped_measured,
        skipped_close: picked.skipped_close,
    })
}

/// Oracle scores and GGS metrics of a set of designs.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Raw oracle score per design.
    pub oracle_scores: Vec<f64>,
    /// Normalised oracle fitness per design.
    pub fitness_per_design: Vec<f64>,
    /// Levenshtein distance from each design to its nearest training sequence.
    pub edits_from_training: Vec<u32>,
    /// GGS fitness: median normalised oracle fitness.
    pub fitness: f64,
    /// GGS diversity: mean pairwise Levenshtein distance.
    pub diversity: f64,
    /// GGS novelty: median distance to the training split.
    pub novelty: f64,
}

/// Scores `designs` with `oracle` (normalised by the ground truth's `[min_gt, max_gt]`) and
/// measures them against the `training` split (NaN fitness/novelty for no designs).
///
/// ```
/// use em_protein::design::evaluate;
/// struct Len; // a toy oracle: the count of alanines
/// impl em_protein::oracle::Oracle for Len {
///     fn score(&self, s: &[Vec<u8>]) -> Vec<f32> {
///         s.iter().map(|q| q.iter().filter(|&&r| r == 0).count() as f32).collect()
///     }
/// }
/// let p = |t: &str| t.parse().unwrap();
/// let e = evaluate(&[p("AAR"), p("AAA")], &Len, &[p("AAA")], 0.0, 4.0);
/// assert_eq!(e.fitness_per_design, vec![0.5, 0.75]);
/// assert_eq!((e.fitness, e.diversity, e.novelty), (0.625, 1.0, 0.5));
/// ```
pub fn evaluate(
    designs: &[Sequence],
    oracle: &dyn Oracle,
    training: &[Sequence],
    min_gt: f64,
    max_gt: f64,
) -> Evaluation {
    let indices: Vec<Vec<u8>> = designs.iter().map(|s| s.indices().to_vec()).collect();
    let oracle_scores: Vec<f64> = if indices.is_empty() {
        Vec::new()
    } else {
        oracle.score(&indices).into_iter().map(f64::from).collect()
    };
    let fitness_per_design = metrics::normalise(&oracle_scores, min_gt, max_gt);
    let edits_from_training = metrics::min_distances(designs, training);
    let edits: Vec<f64> = edits_from_training.iter().map(|&d| f64::from(d)).collect();
    Evaluation {
        fitness: metrics::median(&fitness_per_design),
        diversity: metrics::diversity(designs),
        novelty: metrics::median(&edits),
        oracle_scores,
        fitness_per_design,
        edits_from_training,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_parse_and_checks_name_fields() {
        let c: DesignConfig = serde_json::from_str(
            r#"{"interaction": {"kind": "kernel", "sigma_w": 3.0}, "top_k": 10}"#,
        )
        .unwrap();
        assert_eq!(c.interaction, Interaction::Kernel { sigma_w: 3.0 });
        assert_eq!((c.n_samples, c.steps(), c.top_k), (512, 130, 10));
        c.check().unwrap();
        assert!(serde_json::from_str::<DesignConfig>(r#"{"n_sample": 3}"#).is_err());
        let bad = |c: DesignConfig, field: &str| {
            let e = c.check().unwrap_err().to_string();
            assert!(e.contains(&format!("`{field}`")), "{e}");
        };
        bad(
            DesignConfig {
                zeta: 0.0,
                ..Default::default()
            },
            "design.zeta",
        );
        bad(
            DesignConfig {
                clamp: [1.0, -1.0],
                ..Default::default()
            },
            "design.clamp",
        );
        bad(
            DesignConfig {
                interaction: Interaction::Quadratic { sigma_w: -1.0 },
                ..Default::default()
            },
            "design.interaction.sigma_w",
        );
        bad(
            DesignConfig {
                schedule: Schedule::Ramp {
                    tau_star: 2.0,
                    eps_max: 0.1,
                },
                ..Default::default()
            },
            "design.schedule.tau_star",
        );
        DesignConfig {
            zeta: f64::INFINITY,
            ..Default::default()
        }
        .check()
        .unwrap();
    }
}
