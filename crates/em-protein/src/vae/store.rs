//! Loading VLGPO's published VAE checkpoints (PyTorch zip files whose weights sit under the
//! top-level `state_dict` record) with burn-store's PyTorch reader, and the VAE's errors,
//! each naming the file and the PyTorch tensor key.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::{ApplyResult, ModuleSnapshot, PytorchStore};

use super::{SeqVae, SeqVaeConfig};

/// Errors from building, loading or feeding a [`SeqVae`].
#[derive(Debug, thiserror::Error)]
pub enum VaeError {
    /// A shape setting is invalid.
    #[error("VAE config `{field}`: {why}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
    /// A sequence does not have the VAE's length.
    #[error("sequence {index}: length {found}, the VAE takes {expected}")]
    Length {
        /// Position in the given slice.
        index: usize,
        /// Its length.
        found: usize,
        /// The VAE's length.
        expected: usize,
    },
    /// The checkpoint could not be read.
    #[error("{path}: {message}")]
    Store {
        /// The file.
        path: PathBuf,
        /// What the reader reported.
        message: String,
    },
    /// A tensor the VAE needs is not in the checkpoint.
    #[error("{path}: tensor `{tensor}` is missing from `state_dict`")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The PyTorch key.
        tensor: String,
    },
    /// The checkpoint holds a tensor the VAE does not know.
    #[error("{path}: unexpected tensor `{tensor}` (not part of VLGPO's VAE)")]
    UnexpectedTensor {
        /// The file.
        path: PathBuf,
        /// The PyTorch key.
        tensor: String,
    },
    /// A tensor has the wrong shape or dtype for the configured VAE.
    #[error("{path}: tensor `{tensor}`: {message}")]
    BadTensor {
        /// The file.
        path: PathBuf,
        /// The PyTorch key.
        tensor: String,
        /// Expected vs found.
        message: String,
    },
    /// Training was asked for with no sequences or bad settings.
    #[error("train_vae: {0}")]
    Train(String),
}

/// Our module path prefixes and VLGPO's PyTorch key prefixes (`nn.Sequential` indices).
const RENAMES: [(&str, &str); 6] = [
    ("enc1.", "encoder.0."),
    ("enc2.", "encoder.2."),
    ("enc3.", "encoder.4."),
    ("dec1.", "decoder.0."),
    ("dec2.", "decoder.2."),
    ("dec3.", "decoder.4."),
];

/// The PyTorch key of one of our parameter paths.
fn torch_key(path: &str) -> String {
    for (ours, theirs) in RENAMES {
        if let Some(rest) = path.strip_prefix(ours) {
            return format!("{theirs}{rest}");
        }
    }
    path.to_string()
}

impl SeqVae {
    /// Load VLGPO's published VAE (`vae_{aav,gfp}_{medium,hard}.pt`) of shape `cfg`. Every
    /// tensor of `state_dict` must be present with the configured shape, and no other.
    pub fn load_vlgpo(path: &Path, cfg: &SeqVaeConfig, device: &Device) -> Result<Self, VaeError> {
        cfg.check()?;
        if !path.is_file() {
            return Err(VaeError::Store {
                path: path.to_path_buf(),
                message: "no such checkpoint file".into(),
            });
        }
        let mut vae = cfg.skeleton(device);
        let mut store = PytorchStore::from_file(path)
            .with_top_level_key("state_dict")
            .map_indices_contiguous(false)
            .allow_partial(true)
            .validate(false);
        for (ours, theirs) in RENAMES {
            store = store.with_key_remapping(format!("^{}", regex_escape(theirs)), ours);
        }
        let result = vae.load_from(&mut store).map_err(|e| VaeError::Store {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        check_applied(path, &result)?;
        Ok(vae)
    }
}

fn regex_escape(s: &str) -> String {
    s.replace('.', "\\.")
}

/// burn-store's apply report as the first error, naming the file and PyTorch key.
fn check_applied(path: &Path, result: &ApplyResult) -> Result<(), VaeError> {
    if let Some(err) = result.errors.first() {
        let (tensor, message) = crate::cnn::store::apply_error(
            err,
            "the configured VAE",
            "burn layout; check length/input_dim/latent_dim",
        );
        return Err(VaeError::BadTensor {
            path: path.to_path_buf(),
            tensor: torch_key(&tensor),
            message,
        });
    }
    if let Some((tensor, _)) = result.missing.first() {
        return Err(VaeError::MissingTensor {
            path: path.to_path_buf(),
            tensor: torch_key(tensor),
        });
    }
    if let Some(tensor) = result.unused.first() {
        return Err(VaeError::UnexpectedTensor {
            path: path.to_path_buf(),
            tensor: torch_key(tensor),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_vlgpo_names_and_a_missing_file_is_named() {
        assert_eq!(torch_key("enc2.weight"), "encoder.2.weight");
        assert_eq!(torch_key("dec3.bias"), "decoder.4.bias");
        assert_eq!(torch_key("fc_mu.weight"), "fc_mu.weight");
        let err = SeqVae::load_vlgpo(
            Path::new("/nonexistent/vae_aav_medium.pt"),
            &SeqVaeConfig::vlgpo_aav(),
            &Device::flex(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/nonexistent/vae_aav_medium.pt"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_checkpoint_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("garbage.pt");
        std::fs::write(&path, b"not a zip").unwrap();
        let err = SeqVae::load_vlgpo(&path, &SeqVaeConfig::vlgpo_aav(), &Device::flex())
            .unwrap_err()
            .to_string();
        assert!(err.contains("garbage.pt"), "{err}");
    }
}
