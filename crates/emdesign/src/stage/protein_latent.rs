//! The `[latent]` part of a protein workflow's energy and design stages: the VAE file located
//! in the data directory before anything runs, its checksum in both stages' keys, and the
//! loaded VAE with its reconstruction accuracy on the training split.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use em_protein::latent::LatentConfig;
use em_protein::vae::{SeqVae, SeqVaeConfig};

use crate::workflow::protein::ProteinData;

/// A latent workflow's VAE, located and checked while the stages are built.
#[derive(Debug, Clone)]
pub struct LatentInput {
    /// `[latent]` as written.
    pub cfg: LatentConfig,
    /// The VAE checkpoint (its contents enter the energy and design keys).
    pub path: PathBuf,
    /// The architecture the checkpoint holds.
    pub vae: SeqVaeConfig,
}

impl LatentInput {
    /// The part of a stage key that says "latent" (the file's checksum enters through the
    /// stage's input files).
    pub fn key(&self) -> serde_json::Value {
        serde_json::json!({ "latent": self.cfg })
    }

    /// Loads the VAE onto `device`.
    pub fn load(&self, device: &Device) -> Result<SeqVae> {
        SeqVae::load_vlgpo(&self.path, &self.vae, device)
            .with_context(|| format!("cannot load the VAE {}", self.path.display()))
    }
}

/// Locates the VAE of `[latent]` (`None`: a one-hot workflow) for the benchmark split `data`
/// under the data directory. Errors when there is no data directory or it lacks the file.
pub fn resolve(
    cfg: Option<&LatentConfig>,
    data: &ProteinData,
    data_dir: Option<&Path>,
) -> Result<Option<LatentInput>> {
    let Some(cfg) = cfg else {
        return Ok(None);
    };
    let Some(dir) = data_dir else {
        bail!(
            "[latent] needs the data directory (--data-dir or EMDESIGN_DATA) holding VLGPO's \
             VAEs under vlgpo/vae/"
        );
    };
    let (path, vae) = cfg.vae_file(dir, data.task, data.difficulty);
    if !path.is_file() {
        bail!(
            "[latent]: the VAE of {} {} is not in the data directory: {} not found",
            data.task,
            data.difficulty,
            path.display()
        );
    }
    Ok(Some(LatentInput {
        cfg: cfg.clone(),
        path,
        vae,
    }))
}
