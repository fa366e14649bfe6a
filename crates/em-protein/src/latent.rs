//! Energy Matching in a sequence-VAE latent, the Energy Matching paper's protein setting
//! (Balcerak et al. 2025, AAV; official code m1balcerak/EnergyMatching `experiments/proteins`):
//! the energy trains on the VAE encoder's mean of each training sequence, design runs the same
//! guided Langevin sampler in the latent (guidance through the decoder's soft output into the
//! predictor, [`LatentGuidance`]), and sequences come from the decoder's argmax.
//!
//! The potential is em-core's [`SeqConvPotential`] over the latent read as a one-channel signal
//! of `latent_dim` positions (the official potential is a UNet1D over the same `[1, latent]`
//! signal with a scaled sum readout; ours keeps the project's gradient-checked conv potential
//! and its fused kernels).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use em_core::data::DataMatrix;
use em_core::langevin::sample;
use em_core::loss::flow::host_normal;
use em_core::nn::{SeqConvPotential, SeqConvPotentialConfig};
use em_core::potential::Potential;
use em_core::train::step_seed;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::benchmark::Difficulty;
use crate::datasets::Task;

use crate::cnn::Cnn;
use crate::design::{DesignBatch, DesignConfig, DesignError, interaction_term, rank_sequences};
use crate::energy_model::EnergyNetConfig;
use crate::latent_guidance::LatentGuidance;
use crate::sequence::Sequence;
use crate::vae::{SeqVae, SeqVaeConfig};

/// Where the VAE of a latent workflow comes from (TOML `[latent] vae`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VaeSource {
    /// VLGPO's published VAE of the benchmark split (MIT; `vlgpo/vae/vae_<task>_<difficulty>.pt`
    /// in the data directory), the VAE the Energy Matching paper's AAV rows used.
    Vlgpo,
}

/// Settings of Energy Matching in a VAE latent (TOML `[latent]`; its presence switches a
/// benchmark workflow from the one-hot embedding to the latent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatentConfig {
    /// The VAE (default `vlgpo`).
    #[serde(default = "vlgpo")]
    pub vae: VaeSource,
}

fn vlgpo() -> VaeSource {
    VaeSource::Vlgpo
}

impl Default for LatentConfig {
    fn default() -> Self {
        Self { vae: vlgpo() }
    }
}

impl LatentConfig {
    /// The VAE file of `task`'s `difficulty` split under the data directory `data_dir`, and
    /// the architecture it holds.
    pub fn vae_file(
        &self,
        data_dir: &Path,
        task: Task,
        difficulty: Difficulty,
    ) -> (PathBuf, SeqVaeConfig) {
        match self.vae {
            VaeSource::Vlgpo => {
                let cfg = match task {
                    Task::Gfp => SeqVaeConfig::vlgpo_gfp(),
                    Task::Aav => SeqVaeConfig::vlgpo_aav(),
                };
                let name = format!("vae_{task}_{difficulty}.pt");
                (data_dir.join("vlgpo").join("vae").join(name), cfg)
            }
        }
    }
}

/// Sequences encoded per forward pass of the VAE encoder.
const ENCODE_CHUNK: usize = 1024;

/// The VAE encoder's means of `seqs` as a `[n, latent_dim]` data matrix (the official
/// training data: `vae_model.forward(x1)[1]`, the mean, no sampling). Errors on no sequences
/// or non-finite codes.
pub fn latent_codes(vae: &SeqVae, seqs: &[Sequence]) -> Result<DataMatrix, DesignError> {
    if seqs.is_empty() {
        return Err(DesignError::Data {
            what: "no training sequences".into(),
        });
    }
    let mut values = Vec::with_capacity(seqs.len() * vae.latent_dim());
    for chunk in seqs.chunks(ENCODE_CHUNK) {
        values.extend(crate::cnn::tensor_to_vec(vae.encode_mean(chunk)));
    }
    Ok(DataMatrix::new(values, vae.latent_dim())?)
}

/// The energy network over a `latent_dim`-dimensional latent: the configured
/// [`SeqConvPotential`] on `latent_dim` positions of one channel (errors name `model.*`).
pub fn latent_net(
    model: &EnergyNetConfig,
    latent_dim: usize,
) -> Result<SeqConvPotentialConfig, DesignError> {
    model.seq_conv_channels(latent_dim, 1)
}

/// Guided Langevin design in the latent of `vae` for one `seed`: from `N(0, I)` codes,
/// Langevin on `V + guidance - interaction` over `t in [0, t_end]` with every coordinate
/// clamped to `cfg.clamp` (the official sampler clamps the latent to `[-1, 1]`), decode by
/// the decoder's argmax, deduplicate, keep the `top_k` best by the predictors. The guidance
/// is [`LatentGuidance`] (softmax of the decoder's logits at temperature 1, so
/// `cfg.temperature` is unused here). Same seed, same designs.
#[allow(clippy::too_many_arguments)]
pub fn design_latent<P: Potential + ?Sized>(
    potential: &P,
    vae: &SeqVae,
    predictors: &[Cnn],
    min_gt: f64,
    max_gt: f64,
    cfg: &DesignConfig,
    seed: u64,
    device: &Device,
) -> Result<DesignBatch, DesignError> {
    cfg.check()?;
    crate::design::check_gt_range(min_gt, max_gt)?;
    let dim = potential.dim();
    if dim != vae.latent_dim() {
        return Err(DesignError::Data {
            what: format!(
                "the potential is over {dim} dimensions, the VAE's latent has {}",
                vae.latent_dim()
            ),
        });
    }
    if predictors.is_empty() {
        return Err(DesignError::Data {
            what: "no predictor to guide and rank with".into(),
        });
    }
    let guidance =
        LatentGuidance::new(vae.clone(), predictors, cfg.kappa, cfg.zeta, min_gt, max_gt);
    let interaction = interaction_term(cfg.interaction)?;
    let mut terms: Vec<&dyn em_core::energy::EnergyTerm> = Vec::new();
    if cfg.zeta.is_finite() {
        terms.push(&guidance);
    }
    if let Some(term) = &interaction {
        terms.push(term.as_ref());
    }
    let mut rng = StdRng::seed_from_u64(step_seed(seed, 0));
    let z0 = host_normal(cfg.n_samples, dim, &mut rng, device);
    let out = sample(potential, &terms, z0, &cfg.langevin(), step_seed(seed, 1))?;
    let decoded = vae.decode(out.x);
    rank_sequences(decoded, predictors, cfg, seed, min_gt, max_gt)
}

/// A latent potential as the design stage loads it: the trained network plus the check that
/// it is one-channel over `latent_dim` positions.
pub fn check_latent_potential(
    potential: &SeqConvPotential,
    latent_dim: usize,
) -> Result<(), DesignError> {
    if potential.channels != 1 || potential.length != latent_dim {
        return Err(DesignError::Data {
            what: format!(
                "the potential is over {} positions x {} channels, a latent of {latent_dim} \
                 needs {latent_dim} x 1 (was the energy trained in another representation?)",
                potential.length, potential.channels
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cnn::CnnConfig;
    use crate::design::Interaction;

    const L: usize = 8;
    const LATENT: usize = 4;

    fn vae() -> SeqVae {
        SeqVaeConfig {
            length: L,
            input_dim: L,
            latent_dim: LATENT,
            embedding_dim: 8,
        }
        .init(3, &Device::flex())
    }

    fn potential(latent: usize) -> SeqConvPotential {
        let model = EnergyNetConfig {
            hidden_channels: 4,
            kernel: 3,
            blocks: 1,
            head_hidden: 4,
            output_scale: 1.0,
            ..Default::default()
        };
        let device = Device::flex();
        device.seed(1);
        latent_net(&model, latent).unwrap().init(&device)
    }

    fn cnn() -> Cnn {
        CnnConfig::new()
            .with_kernel_size(3)
            .with_channels(8)
            .with_embedding(16)
            .init(5, &Device::flex())
    }

    fn cfg() -> DesignConfig {
        DesignConfig {
            n_samples: 16,
            dt: 0.05,
            t_end: 1.3,
            top_k: 6,
            interaction: Interaction::Quadratic { sigma_w: 11.0 },
            ..Default::default()
        }
    }

    #[test]
    fn designs_decode_to_ranked_sequences_and_repeat_for_a_seed() {
        let (vae, v, p) = (vae(), potential(LATENT), vec![cnn()]);
        let run = |seed| design_latent(&v, &vae, &p, -1.0, 1.0, &cfg(), seed, &Device::flex());
        let a = run(7).unwrap();
        assert!(!a.sequences.is_empty() && a.sequences.len() <= 6);
        assert!(a.sequences.iter().all(|s| s.len() == L));
        assert!(a.n_unique >= a.sequences.len());
        let scores = &a.predictor_scores;
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        assert_eq!(run(7).unwrap(), a);
    }

    #[test]
    fn codes_are_the_encoder_means_and_mismatches_are_refused() {
        let vae = vae();
        let seqs: Vec<Sequence> = ["ACDEFGHI", "KLMNPQRS", "TVWYACDE"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let codes = latent_codes(&vae, &seqs).unwrap();
        assert_eq!((codes.n(), codes.dim()), (3, LATENT));
        let direct = crate::cnn::tensor_to_vec(vae.encode_mean(&seqs[1..2]));
        assert_eq!(&codes.values()[LATENT..2 * LATENT], direct.as_slice());
        assert!(latent_codes(&vae, &[]).is_err());

        let wrong = potential(LATENT + 1);
        let e = design_latent(
            &wrong,
            &vae,
            &[cnn()],
            -1.0,
            1.0,
            &cfg(),
            0,
            &Device::flex(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("5 dimensions") && e.contains("has 4"), "{e}");
        let e = check_latent_potential(&wrong, LATENT)
            .unwrap_err()
            .to_string();
        assert!(e.contains("5 positions x 1 channels"), "{e}");
        check_latent_potential(&potential(LATENT), LATENT).unwrap();
    }
}
