//! Image stage `data`: read the data set's IDX files from the data directory into
//! `train.idx` (the first `n_train` training images) and `test.idx` (the held-out test split),
//! plus the shared helpers of the image stages (stage list, IDX writing, device choice).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use em_image::idx::{Images, Split, read_images, read_split};

use super::{Outcome, Stage, StageCtx};
use super::{image_metrics, image_report, image_sample, image_train};
use crate::workflow::image::{Image, ImageData};
use crate::workflow::plan::Header;

/// File names of the data stage's outputs.
pub const TRAIN_IDX: &str = "train.idx";
/// Held-out test images.
pub const TEST_IDX: &str = "test.idx";

/// The stages of an image workflow, in run order.
pub fn stages(i: &Image, header: &Header) -> Vec<Box<dyn Stage>> {
    let seed = header.seed;
    vec![
        Box::new(ImageDataStage {
            cfg: i.data.clone(),
        }),
        Box::new(image_train::TrainEmStage {
            cfg: i.clone(),
            seed,
        }),
        Box::new(image_train::TrainCfmStage {
            cfg: i.clone(),
            seed,
        }),
        Box::new(image_sample::SampleEmStage {
            cfg: i.clone(),
            seed,
        }),
        Box::new(image_sample::SampleCfmStage {
            cfg: i.clone(),
            seed,
        }),
        Box::new(image_metrics::MetricsStage { cfg: i.clone() }),
        Box::new(image_report::ReportStage {
            cfg: i.clone(),
            header: header.clone(),
        }),
    ]
}

/// The device named in `[train] device` (`cuda` only exists with the `cuda` feature).
pub fn device(name: &str) -> Device {
    #[cfg(feature = "cuda")]
    if name == "cuda" {
        return Device::cuda(0);
    }
    let _ = name;
    Device::flex()
}

/// Writes an uncompressed IDX image file (`0x00000803`, dims `[n, rows, cols]`).
pub fn write_idx(path: &Path, images: &Images) -> Result<()> {
    let mut bytes = vec![0u8, 0, 0x08, 3];
    for d in [images.len(), images.rows(), images.cols()] {
        let d = u32::try_from(d).context("IDX dimension exceeds u32")?;
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(images.pixels());
    super::cache::write_atomic(path, &bytes)
}

/// Reads an IDX image file written by a stage.
pub fn read_idx(path: &Path) -> Result<Images> {
    Ok(read_images(path)?)
}

/// The directory of an MNIST-style data set.
fn set_dir(cfg: &ImageData) -> PathBuf {
    cfg.data_dir.join("images").join(&cfg.dataset)
}

/// The image file of a split, gzipped name first (as em-image picks it).
fn split_file(dir: &Path, stem: &str) -> PathBuf {
    let gz = dir.join(format!("{stem}-images-idx3-ubyte.gz"));
    if gz.exists() {
        gz
    } else {
        dir.join(format!("{stem}-images-idx3-ubyte"))
    }
}

/// The `data` stage of an image workflow.
pub struct ImageDataStage {
    /// Settings from `[data]`.
    pub cfg: ImageData,
}

impl Stage for ImageDataStage {
    fn name(&self) -> &str {
        "data"
    }
    fn kind(&self) -> &str {
        "image.data"
    }
    fn config(&self) -> serde_json::Value {
        // The files enter the key through their contents, not the directory's path.
        serde_json::json!({ "dataset": self.cfg.dataset, "n_train": self.cfg.n_train })
    }
    fn input_files(&self) -> Vec<PathBuf> {
        let dir = set_dir(&self.cfg);
        ["train", "t10k"]
            .iter()
            .map(|s| split_file(&dir, s))
            .filter(|p| p.is_file())
            .collect()
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        if self.cfg.dataset == "cifar10" {
            bail!(
                "data set `cifar10` is not implemented: em-image has no reader for the CIFAR-10 \
                 binary files yet, so the CIFAR-10 workflow cannot run (MNIST and Fashion-MNIST can)"
            );
        }
        let dir = set_dir(&self.cfg);
        let (train, _) = read_split(&dir, Split::Train)
            .with_context(|| format!("cannot read the {} training split", self.cfg.dataset))?;
        let (test, _) = read_split(&dir, Split::Test)
            .with_context(|| format!("cannot read the {} test split", self.cfg.dataset))?;
        if train.len() < self.cfg.n_train {
            bail!(
                "data.n_train = {} but {} holds only {} training images",
                self.cfg.n_train,
                dir.display(),
                train.len()
            );
        }
        let train = train.slice(0, self.cfg.n_train);
        write_idx(&ctx.out.join(TRAIN_IDX), &train)?;
        write_idx(&ctx.out.join(TEST_IDX), &test)?;
        Ok(Outcome {
            headline: vec![
                ("train".into(), train.len().to_string()),
                ("test".into(), test.len().to_string()),
            ],
            metrics: serde_json::json!({
                "n_train": train.len(),
                "n_test": test.len(),
                "shape": [1, train.rows(), train.cols()],
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idx_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let im = Images::new(2, 3, 2, (0..12).collect()).unwrap();
        let p = dir.path().join("a.idx");
        write_idx(&p, &im).unwrap();
        assert_eq!(read_idx(&p).unwrap(), im);
    }
}
