//! FID and KID with pytorch-fid conventions: grey -> 3 channels (RGB images go in as they
//! are), bilinear resize to 299 with align_corners = false, inputs in [-1, 1] (no ImageNet
//! mean/std), pool3 features, f64 stats.

use crate::error::{Error, Result};
use crate::frechet::frechet_distance_features;
use crate::idx::{Images, data_dir};
use crate::inception::{FEATURE_DIM, InceptionV3};
use crate::kid::{KidSubsets, kid};
use burn::prelude::*;
use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use std::path::{Path, PathBuf};

/// Side of the square input the FID network expects.
pub const FID_SIDE: usize = 299;

/// `$EMDESIGN_DATA/images/fid_inception_v3.safetensors` (see [`data_dir`]).
pub fn default_weights_path() -> PathBuf {
    data_dir().join("images/fid_inception_v3.safetensors")
}

/// The FID Inception network with loaded weights, on one device.
#[derive(Debug)]
pub struct FidExtractor {
    net: InceptionV3,
    device: Device,
}

/// Pool3 features of a set of images: `n` rows of [`FEATURE_DIM`] values, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    /// Row-major `[n, 2048]`.
    pub data: Vec<f32>,
}

impl Features {
    /// Number of feature rows.
    pub fn len(&self) -> usize {
        self.data.len() / FEATURE_DIM
    }

    /// True when there is no row.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

impl FidExtractor {
    /// Loads the FID weights (pytorch-fid tensor names, e.g. `Mixed_5b.branch1x1.conv.weight`)
    /// from a safetensors file; errors if the file is missing or any tensor fails to load.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let bad = |what: String| Error::Weights {
            path: path.to_path_buf(),
            what,
        };
        if !path.is_file() {
            return Err(bad(
                "file not found (set EMDESIGN_DATA to the data directory)".into(),
            ));
        }
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(PyTorchToBurnAdapter)
            .with_key_remapping(r"^Conv2d_(\w\w)_\dx\d\.", "conv2d_$1.")
            .with_key_remapping(r"^Mixed_", "mixed_")
            .allow_partial(true);
        let mut net = InceptionV3::new(device);
        let res = net.load_from(&mut store).map_err(|e| bad(e.to_string()))?;
        if !res.errors.is_empty() || !res.missing.is_empty() || res.applied.len() != 470 {
            return Err(bad(format!(
                "{} tensors applied (expected 470), missing {:?}, errors {:?}, unused {:?}",
                res.applied.len(),
                res.missing.iter().take(5).collect::<Vec<_>>(),
                res.errors.iter().take(5).collect::<Vec<_>>(),
                res.unused.iter().take(5).collect::<Vec<_>>()
            )));
        }
        Ok(Self {
            net,
            device: device.clone(),
        })
    }

    /// [`FidExtractor::load`] from [`default_weights_path`].
    pub fn load_default(device: &Device) -> Result<Self> {
        Self::load(default_weights_path(), device)
    }

    /// Pool3 features of a batch `[b, c, h, w]` with `c` = 1 (grey) or 3, values in [-1, 1].
    pub fn features_tensor(&self, x: Tensor<4>) -> Tensor<2> {
        self.net.forward(preprocess(x.to_device(&self.device)))
    }

    /// Features of an 8-bit image stack (greyscale or RGB), `batch` images at a time, calling
    /// `progress(done, total)` after each batch.
    pub fn features(
        &self,
        images: &Images,
        batch: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Features> {
        let [c, h, w] = images.shape();
        self.features_signed(
            &images.to_signed(),
            [images.len(), c, h, w],
            batch,
            progress,
        )
    }

    /// Features of flat images in [-1, 1] with shape `[n, c, h, w]` (`c` = 1 or 3), e.g.
    /// samples straight from a model; `batch` images at a time.
    pub fn features_signed(
        &self,
        values: &[f32],
        shape: [usize; 4],
        batch: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Features> {
        let [n, c, h, w] = shape;
        if values.len() != n * c * h * w || !(c == 1 || c == 3) || n == 0 || batch == 0 {
            return Err(Error::invalid(
                "images for FID",
                format!("{} values for shape {shape:?}, batch {batch}", values.len()),
            ));
        }
        let per = c * h * w;
        let mut data = Vec::with_capacity(n * FEATURE_DIM);
        let mut start = 0;
        while start < n {
            let end = (start + batch).min(n);
            let x = Tensor::<1>::from_floats(&values[start * per..end * per], &self.device)
                .reshape([end - start, c, h, w]);
            let f = self.features_tensor(x).into_data().convert::<f32>();
            let rows = f
                .try_into_vec::<f32>()
                .map_err(|e| Error::invalid("Inception features", format!("{e:?}")))?;
            data.extend_from_slice(&rows);
            progress(end, n);
            start = end;
        }
        if data.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "Inception features".into(),
                step: 0,
            });
        }
        Ok(Features { data })
    }
}

/// pytorch-fid's input transform for images already in [-1, 1]: grey is repeated to 3
/// channels (3-channel input is kept as it is) and the image is resized bilinearly to 299x299 with `align_corners = false`
/// (burn's default is `true`). pytorch-fid maps [0, 1] to [-1, 1] after resizing; bilinear
/// weights sum to one, so resizing values already in [-1, 1] is the same. No ImageNet mean/std.
pub fn preprocess(x: Tensor<4>) -> Tensor<4> {
    let [_, c, h, w] = x.dims();
    let x = if c == 1 { x.repeat_dim(1, 3) } else { x };
    if h == FID_SIDE && w == FID_SIDE {
        return x;
    }
    let opts = InterpolateOptions::new(InterpolateMode::Bilinear)
        .with_align_corners(false)
        .with_output_size([FID_SIDE, FID_SIDE]);
    interpolate(x, opts)
}

/// FID and KID between two feature sets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FidKid {
    /// Frechet Inception distance.
    pub fid: f64,
    /// KID mean over subsets.
    pub kid_mean: f64,
    /// KID standard deviation over subsets.
    pub kid_std: f64,
}

/// FID and KID between feature sets `a` and `b`. KID uses 100 subsets (seed 0) of
/// `min(1000, n / 2)` rows with `n = min(n_a, n_b)`: torch-fidelity's 1000 once both sets
/// have 2000 rows; below that half the set, so the subsets differ and the std means something.
pub fn fid_kid(a: &Features, b: &Features) -> Result<FidKid> {
    let size = 1000.min(a.len().min(b.len()) / 2).max(2);
    fid_kid_with(
        a,
        b,
        KidSubsets {
            subsets: 100,
            size,
            seed: 0,
        },
    )
}

/// Features of both image stacks, then [`fid_kid`]: what `emdesign image fid A B` reports.
/// `progress(done, total)` counts images over both sets.
pub fn fid_kid_images(
    extractor: &FidExtractor,
    a: &Images,
    b: &Images,
    batch: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<FidKid> {
    let total = a.len() + b.len();
    let fa = extractor.features(a, batch, &mut |done, _| progress(done, total))?;
    let fb = extractor.features(b, batch, &mut |done, _| progress(a.len() + done, total))?;
    fid_kid(&fa, &fb)
}

/// [`fid_kid`] with explicit KID subset settings.
pub fn fid_kid_with(a: &Features, b: &Features, subsets: KidSubsets) -> Result<FidKid> {
    let fid = frechet_distance_features(&a.data, &b.data, FEATURE_DIM)?;
    let k = kid(&a.data, &b.data, FEATURE_DIM, Some(subsets))?;
    Ok(FidKid {
        fid,
        kid_mean: k.mean,
        kid_std: k.std,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preprocess_repeats_grey_and_resizes_without_corner_alignment() {
        let d = Device::default();
        // 2x2 image [[-1, 1], [1, -1]] -> 299x299, 3 equal channels.
        let x = Tensor::<1>::from_floats([-1.0, 1.0, 1.0, -1.0], &d).reshape([1, 1, 2, 2]);
        let y = preprocess(x);
        assert_eq!(y.dims(), [1, 3, FID_SIDE, FID_SIDE]);
        let v = y
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap();
        let at = |c: usize, i: usize, j: usize| v[c * FID_SIDE * FID_SIDE + i * FID_SIDE + j];
        // align_corners = false: source coordinate (i + 0.5) * 2/299 - 0.5 is clamped at 0 for
        // the first rows, so the corner pixel equals the input corner exactly...
        assert!((at(0, 0, 0) + 1.0).abs() < 1e-6);
        // ...and the centre (source 0.5) is the mean of the four pixels, 0.
        assert!(at(1, 149, 149).abs() < 1e-6);
        // Pixel 100: source x = 100.5 * 2 / 299 - 0.5 = 0.17224; bilinear along the row.
        let s = 100.5f32 * 2.0 / 299.0 - 0.5;
        assert!(
            (at(2, 0, 100) - (-1.0 + 2.0 * s)).abs() < 1e-5,
            "{}",
            at(2, 0, 100)
        );
    }

    #[test]
    fn rgb_with_equal_channels_gives_the_features_of_grey() {
        let d = Device::default();
        let grey: Vec<u8> = (0..16 * 16).map(|i| (i * 7 % 256) as u8).collect();
        let rgb = grey.repeat(3);
        let x1 = Images::new(1, 16, 16, grey).unwrap();
        let x3 = Images::with_channels(1, 3, 16, 16, rgb).unwrap();
        let p1 = preprocess(x1.to_tensor(&d).reshape([1, 1, 16, 16]));
        let p3 = preprocess(x3.to_tensor(&d).reshape([1, 3, 16, 16]));
        assert_eq!(p3.dims(), [1, 3, FID_SIDE, FID_SIDE]);
        p1.into_data().assert_eq(&p3.into_data(), true);
        // One image through the network (about a second on a CPU).
        let fid = FidExtractor::load_default(&d).unwrap();
        let f1 = fid.features(&x1, 1, &mut |_, _| {}).unwrap();
        let f3 = fid.features(&x3, 1, &mut |_, _| {}).unwrap();
        assert_eq!(f1.len(), 1);
        assert_eq!(f1, f3);
    }
}
