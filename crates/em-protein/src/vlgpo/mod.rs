//! VLGPO (Bogensperger et al., ICML 2025) as a method of our harness: its latent
//! flow-matching prior [`Unet1D`] (a port of `src/vlgpo/models/unet_1d.py`, loaded from the
//! published checkpoints by [`Unet1D::load_vlgpo`]) and its posterior sampler
//! ([`sample`], after `src/vlgpo/sample.py`): Euler steps of the prior's ODE in the VAE
//! latent, each followed by `J` gradient steps on the predictor's fitness of the decoded
//! one-step estimate (manifold-constrained guidance), then argmax decoding, deduplication
//! and the top `k` by the predictor.

mod blocks;
mod build;
mod decoder;
mod layers;
mod sampler;
mod settings;
mod store;
mod unet;

pub use build::{Unet1DConfig, WeightSource};
pub use sampler::{
    LatentDecoder, VlgpoDesigns, guidance_gradient, guidance_loss, guided_latents, initial_latents,
    sample,
};
pub use settings::{PRIOR_DIM, VlgpoSettings, latent_dim, prior_file};
pub use store::STATE_DICT;
pub use unet::{Unet1D, sinusoidal_embedding};

use std::path::PathBuf;

/// Errors from loading a VLGPO prior or checking sampler settings; each names the file and
/// tensor, or the setting.
#[derive(Debug, thiserror::Error)]
pub enum VlgpoError {
    /// The checkpoint could not be opened or parsed.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the reader reported.
        message: String,
    },
    /// A tensor the UNet needs is not in the checkpoint.
    #[error("{path}: tensor `{tensor}` is missing")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The `state_dict` name.
        tensor: String,
    },
    /// A tensor has the wrong shape or dtype, or could not be read.
    #[error("{path}: tensor `{tensor}`: {message}")]
    BadTensor {
        /// The file.
        path: PathBuf,
        /// The `state_dict` name.
        tensor: String,
        /// Expected vs found.
        message: String,
    },
    /// The checkpoint holds a tensor the UNet does not know (a different architecture).
    #[error("{path}: unexpected tensor `{tensor}` (not part of VLGPO's Unet1D)")]
    UnexpectedTensor {
        /// The file.
        path: PathBuf,
        /// The `state_dict` name.
        tensor: String,
    },
    /// The predictor refused the decoded designs.
    #[error("scoring the decoded designs: {0}")]
    Predictor(#[from] crate::cnn::CnnError),
    /// The decoder produced logits of the wrong width (not the 20 residues).
    #[error("decoder: {0}")]
    Decoder(String),
    /// A sampler setting out of range.
    #[error("VLGPO setting `{field}`: {message}")]
    Setting {
        /// The setting.
        field: &'static str,
        /// Why it is rejected.
        message: String,
    },
}
