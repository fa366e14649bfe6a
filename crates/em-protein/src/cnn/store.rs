//! Reading and writing a [`Cnn`] as safetensors with the GGS/PyTorch tensor names and
//! layout (burn-store and its PyTorch adapters), with errors naming the file and tensor.

use std::path::Path;

use burn::prelude::*;
use burn::store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter,
    PytorchStore, SafetensorsStore,
};

use super::{Cnn, CnnConfig, CnnError};

impl CnnConfig {
    /// Load weights saved with the GGS tensor names (PyTorch layout) from a safetensors file.
    /// Every tensor must be present with the configured shape, and no other may be.
    pub fn load(&self, path: impl AsRef<Path>, device: &Device) -> Result<Cnn, CnnError> {
        let path = path.as_ref();
        self.load_safetensors(path, SafetensorsStore::from_file(path), device)
    }

    /// [`CnnConfig::load`] from safetensors bytes held in memory (e.g. weights embedded in
    /// the binary); `label` names them in errors.
    pub fn load_bytes(&self, label: &Path, bytes: &[u8], device: &Device) -> Result<Cnn, CnnError> {
        self.load_safetensors(
            label,
            SafetensorsStore::from_bytes(Some(bytes.to_vec())),
            device,
        )
    }

    fn load_safetensors(
        &self,
        label: &Path,
        store: SafetensorsStore,
        device: &Device,
    ) -> Result<Cnn, CnnError> {
        let mut cnn = self.skeleton(device);
        let mut store = store
            .with_from_adapter(PyTorchToBurnAdapter)
            .allow_partial(true)
            .validate(false);
        let result = cnn.load_from(&mut store).map_err(|e| CnnError::Store {
            path: label.to_path_buf(),
            message: e.to_string(),
        })?;
        check_applied(label, &result)?;
        Ok(cnn)
    }
}

impl CnnConfig {
    /// Load weights from an original GGS PyTorch Lightning checkpoint (`.ckpt`, a PyTorch
    /// zip whose `state_dict` keys carry the prefix `predictor.`), as `emdesign data fetch`
    /// downloads it. Same checks as [`CnnConfig::load`].
    pub fn load_ckpt(&self, path: impl AsRef<Path>, device: &Device) -> Result<Cnn, CnnError> {
        let path = path.as_ref();
        let mut cnn = self.skeleton(device);
        let mut store = PytorchStore::from_file(path)
            .with_top_level_key("state_dict")
            .with_key_remapping("^predictor\\.", "")
            .allow_partial(true)
            .validate(false);
        let result = cnn.load_from(&mut store).map_err(|e| CnnError::Store {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        check_applied(path, &result)?;
        Ok(cnn)
    }
}

/// The tensor and a message for one of burn-store's apply errors (shared by the GGS CNN and
/// VAE loaders); `model` and `hint` complete a shape mismatch's message.
pub(crate) fn apply_error(err: &ApplyError, model: &str, hint: &str) -> (String, String) {
    match err {
        ApplyError::ShapeMismatch {
            path,
            expected,
            found,
        } => (
            path.clone(),
            format!("shape {found:?} does not fit {model} ({expected:?} expected; {hint})"),
        ),
        ApplyError::DTypeMismatch {
            path,
            expected,
            found,
        } => (
            path.clone(),
            format!("dtype {found:?}, expected {expected:?}"),
        ),
        ApplyError::AdapterError { path, message } | ApplyError::LoadError { path, message } => {
            (path.clone(), message.clone())
        }
    }
}

/// Turn burn-store's apply report into the first error, naming the file and tensor.
fn check_applied(path: &Path, result: &ApplyResult) -> Result<(), CnnError> {
    if let Some(err) = result.errors.first() {
        let (tensor, message) = apply_error(
            err,
            "the configured model",
            "PyTorch layout for Linear weights",
        );
        return Err(CnnError::BadTensor {
            path: path.to_path_buf(),
            tensor,
            message,
        });
    }
    if let Some((tensor, _)) = result.missing.first() {
        return Err(CnnError::MissingTensor {
            path: path.to_path_buf(),
            tensor: tensor.clone(),
        });
    }
    if let Some(tensor) = result.unused.first() {
        return Err(CnnError::UnexpectedTensor {
            path: path.to_path_buf(),
            tensor: tensor.clone(),
        });
    }
    Ok(())
}

impl Cnn {
    /// The GGS oracle/predictor shape ([`CnnConfig::new`] defaults) loaded from `path`.
    /// A `.ckpt` path is read as the original PyTorch Lightning checkpoint, anything else as
    /// safetensors.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self, CnnError> {
        let path = path.as_ref();
        if path.extension().is_some_and(|e| e == "ckpt") {
            CnnConfig::new().load_ckpt(path, device)
        } else {
            CnnConfig::new().load(path, device)
        }
    }

    /// Save to safetensors with the GGS/PyTorch names and layout, loadable by
    /// [`CnnConfig::load`]. The write is atomic (scratch file, then rename over `path`).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), CnnError> {
        let path = path.as_ref();
        let mut store = SafetensorsStore::from_file(path)
            .with_to_adapter(BurnToPyTorchAdapter)
            .metadata("model", "ggs-cnn")
            .overwrite(true);
        self.save_into(&mut store).map_err(|e| CnnError::Store {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> CnnConfig {
        CnnConfig::new()
            .with_kernel_size(3)
            .with_channels(4)
            .with_embedding(6)
    }

    #[test]
    fn save_then_load_round_trips_and_errors_name_the_tensor() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cnn.safetensors");
        let cnn = tiny().init(9, &device);
        cnn.save(&path).unwrap();
        cnn.save(&path).unwrap(); // overwrites
        let back = tiny().load(&path, &device).unwrap();
        assert_eq!(back.weights(), cnn.weights());
        // a different shape: the message names file and tensor
        let err = tiny()
            .with_channels(5)
            .load(&path, &device)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cnn.safetensors") && err.contains("encoder"),
            "{err}"
        );
        let err = tiny()
            .load(dir.path().join("absent.safetensors"), &device)
            .unwrap_err()
            .to_string();
        assert!(err.contains("absent.safetensors"), "{err}");
    }

    #[test]
    fn bytes_load_like_the_file_and_errors_name_the_label() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cnn.safetensors");
        let cnn = tiny().init(4, &device);
        cnn.save(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let label = Path::new("embedded/cnn.safetensors");
        let back = tiny().load_bytes(label, &bytes, &device).unwrap();
        assert_eq!(back.weights(), cnn.weights());
        let err = tiny()
            .with_embedding(7)
            .load_bytes(label, &bytes, &device)
            .unwrap_err()
            .to_string();
        assert!(err.contains("embedded/cnn.safetensors"), "{err}");
        let err = tiny()
            .load_bytes(label, &bytes[..bytes.len() / 2], &device)
            .unwrap_err()
            .to_string();
        assert!(err.contains("embedded/cnn.safetensors"), "{err}");
    }
}
