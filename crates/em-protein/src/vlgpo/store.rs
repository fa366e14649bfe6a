//! Loading VLGPO's published flow priors (`flow-prior/flow_{aav,gfp}_{medium,hard}.pt`,
//! PyTorch zip checkpoints with the weights under `state_dict`) into a [`Unet1D`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::pytorch::PytorchReader;
use burn::store::pytorch_reader::{DType, Tensor as TorchTensor};

use super::VlgpoError;
use super::build::{Unet1DConfig, WeightSource};
use super::unet::Unet1D;

/// The checkpoint key holding the weights.
pub const STATE_DICT: &str = "state_dict";

/// Weights of VLGPO's fitness conditioning (`fitness_mlp` of the UNet and of every ResNet
/// block): present in the checkpoints, never used by VLGPO's sampler (it calls the prior
/// without `x_self_cond`), so not loaded.
fn unused_by_sampler(name: &str) -> bool {
    name.starts_with("fitness_mlp.") || name.contains(".fitness_mlp.")
}

/// The tensors of one checkpoint, handed out by name with their shape and dtype checked.
struct CheckpointSource {
    path: PathBuf,
    tensors: BTreeMap<String, TorchTensor>,
    taken: BTreeSet<String>,
}

impl WeightSource for CheckpointSource {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, VlgpoError> {
        let tensor = self
            .tensors
            .get(name)
            .ok_or_else(|| VlgpoError::MissingTensor {
                path: self.path.clone(),
                tensor: name.to_string(),
            })?;
        let bad = |message: String| VlgpoError::BadTensor {
            path: self.path.clone(),
            tensor: name.to_string(),
            message,
        };
        if tensor.shape() != shape {
            return Err(bad(format!(
                "shape {:?}, expected {shape:?} (is `dim` right?)",
                tensor.shape()
            )));
        }
        let bytes = tensor.read().map_err(|e| bad(e.to_string()))?;
        let values = match tensor.dtype() {
            DType::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F64 => bytes
                .chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    f64::from_ne_bytes(b) as f32
                })
                .collect(),
            other => return Err(bad(format!("dtype {other:?}, expected F32 or F64"))),
        };
        self.taken.insert(name.to_string());
        Ok(values)
    }
}

impl Unet1D {
    /// VLGPO's prior from its checkpoint at `path`, built as `Unet1D(dim, dim_mults=(1, 2),
    /// channels=1)` (`dim` is the config's `prior.dim`, 8 for all four published priors).
    /// Every tensor must be present with its shape, and none may be left over except the
    /// fitness conditioning the sampler never uses; errors name the file and the tensor.
    pub fn load_vlgpo(
        path: impl AsRef<Path>,
        dim: usize,
        device: &Device,
    ) -> Result<Unet1D, VlgpoError> {
        let path = path.as_ref();
        let reader =
            PytorchReader::with_top_level_key(path, STATE_DICT).map_err(|e| VlgpoError::Read {
                path: path.to_path_buf(),
                message: format!("{e} (expected a PyTorch checkpoint with `{STATE_DICT}`)"),
            })?;
        let mut source = CheckpointSource {
            path: path.to_path_buf(),
            tensors: reader.into_tensors().into_iter().collect(),
            taken: BTreeSet::new(),
        };
        let unet = Unet1DConfig::vlgpo(dim).build(&mut source, device)?;
        if let Some(name) = source
            .tensors
            .keys()
            .find(|k| !source.taken.contains(*k) && !unused_by_sampler(k))
        {
            return Err(VlgpoError::UnexpectedTensor {
                path: path.to_path_buf(),
                tensor: name.clone(),
            });
        }
        Ok(unet)
    }
}
