//! Image stage `data`: read the data set from `<data dir>/images/<dataset>/` (MNIST-style IDX
//! files, or the CIFAR-10 binary batches) into `train.idx` (the first `n_train` training
//! images) and `test.idx` (the held-out test split), checking that the images have the shape
//! the models are built for; plus the shared helpers of the image stages (stage list, IDX
//! writing, device choice). IDX files are rank 3 for greyscale and rank 4 `[n, c, h, w]` for
//! colour.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use em_image::cifar;
use em_image::idx::{Images, Split, encode_images, read_images, read_split};

use super::image_train::shape;
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

/// Writes an uncompressed IDX image file: `0x00000803`, dims `[n, rows, cols]`, for greyscale;
/// `0x00000804`, dims `[n, channels, rows, cols]`, for colour.
pub fn write_idx(path: &Path, images: &Images) -> Result<()> {
    super::cache::write_atomic(path, &encode_images(images)?)
}

/// Reads an IDX image file written by a stage.
pub fn read_idx(path: &Path) -> Result<Images> {
    Ok(read_images(path)?)
}

/// The directory of a data set: `<data dir>/images/<dataset>`.
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

impl ImageDataStage {
    fn is_cifar(&self) -> bool {
        self.cfg.dataset == "cifar10"
    }

    /// One split of the data set, checked to hold images of the shape the models expect.
    fn read(&self, dir: &Path, split: Split, what: &str) -> Result<Images> {
        let name = &self.cfg.dataset;
        let (images, _) = if self.is_cifar() {
            cifar::read_split(dir, split)
        } else {
            read_split(dir, split)
        }
        .with_context(|| format!("cannot read the {name} {what} split from {}", dir.display()))?;
        let want = shape(name);
        if images.shape() != [want.channels, want.height, want.width] {
            let [c, h, w] = images.shape();
            bail!(
                "{}: the {name} {what} images are {c}x{h}x{w}, but the {name} models are built \
                 for {}x{}x{}",
                dir.display(),
                want.channels,
                want.height,
                want.width
            );
        }
        Ok(images)
    }
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
        let files = if self.is_cifar() {
            let mut f = cifar::split_files(&dir, Split::Train);
            f.extend(cifar::split_files(&dir, Split::Test));
            f
        } else {
            ["train", "t10k"]
                .iter()
                .map(|s| split_file(&dir, s))
                .collect()
        };
        files.into_iter().filter(|p| p.is_file()).collect()
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let dir = set_dir(&self.cfg);
        let train = self.read(&dir, Split::Train, "training")?;
        let test = self.read(&dir, Split::Test, "test")?;
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
                "shape": train.shape(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Progress;
    use std::collections::BTreeMap;

    #[test]
    fn idx_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let im = Images::new(2, 3, 2, (0..12).collect()).unwrap();
        let p = dir.path().join("a.idx");
        write_idx(&p, &im).unwrap();
        assert_eq!(read_idx(&p).unwrap(), im);
        let rgb = Images::with_channels(2, 3, 1, 2, (0..12).collect()).unwrap();
        write_idx(&p, &rgb).unwrap();
        assert_eq!(read_idx(&p).unwrap(), rgb);
    }

    /// `n` CIFAR-10 records: label `(first + i) % 10`, pixel `p` = `(first + i + p) % 256`.
    fn records(n: usize, first: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                let label = ((first + i) % 10) as u8;
                std::iter::once(label).chain((0..3072).map(move |p| ((first + i + p) % 256) as u8))
            })
            .collect()
    }

    fn stage(dataset: &str, data_dir: &Path, n_train: usize) -> ImageDataStage {
        ImageDataStage {
            cfg: ImageData {
                dataset: dataset.into(),
                n_train,
                data_dir: data_dir.to_path_buf(),
            },
        }
    }

    fn run(stage: &ImageDataStage, out: &Path) -> Result<Outcome> {
        let upstream = BTreeMap::new();
        let progress = Progress::new(true);
        stage.run(&StageCtx {
            out,
            upstream: &upstream,
            progress: &progress,
        })
    }

    #[test]
    fn cifar10_data_stage_writes_colour_idx_files() {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().join("images/cifar10").join(cifar::SUBDIR);
        std::fs::create_dir_all(&dir).unwrap();
        for (k, f) in cifar::TRAIN_FILES.iter().enumerate() {
            std::fs::write(dir.join(f), records(4, 4 * k)).unwrap();
        }
        std::fs::write(dir.join(cifar::TEST_FILE), records(3, 100)).unwrap();
        let st = stage("cifar10", data.path(), 16);
        assert_eq!(st.input_files().len(), 6);
        let out = tempfile::tempdir().unwrap();
        let outcome = run(&st, out.path()).unwrap();
        assert_eq!(outcome.metrics["shape"], serde_json::json!([3, 32, 32]));
        assert_eq!(outcome.metrics["n_train"], 16);
        assert_eq!(outcome.metrics["n_test"], 3);

        let train_path = out.path().join(TRAIN_IDX);
        assert_eq!(&std::fs::read(&train_path).unwrap()[..4], &[0, 0, 8, 4]);
        let train = read_idx(&train_path).unwrap();
        assert_eq!((train.len(), train.shape()), (16, [3, 32, 32]));
        // Image 9 is record 1 of data_batch_3.bin, whose pixels are (9 + p) % 256.
        let want: Vec<u8> = (0..3072).map(|p| ((9 + p) % 256) as u8).collect();
        assert_eq!(train.image(9), want.as_slice());
        let test = read_idx(&out.path().join(TEST_IDX)).unwrap();
        assert_eq!((test.len(), test.image(2)[0]), (3, 102));

        let msg = format!(
            "{:#}",
            run(&stage("cifar10", data.path(), 21), out.path()).unwrap_err()
        );
        assert!(
            msg.contains("n_train = 21") && msg.contains("only 20"),
            "{msg}"
        );
    }

    #[test]
    fn data_stage_errors_name_missing_files_and_wrong_shapes() {
        let data = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let st = stage("cifar10", data.path(), 16);
        assert!(st.input_files().is_empty());
        let msg = format!("{:#}", run(&st, out.path()).unwrap_err());
        assert!(
            msg.contains("cannot read the cifar10 training split")
                && msg.contains("images/cifar10/data_batch_1.bin")
                && msg.contains("not found"),
            "{msg}"
        );
        // MNIST-style files of another size are refused before any model sees them.
        let mnist = data.path().join("images/mnist");
        std::fs::create_dir_all(&mnist).unwrap();
        let idx = |rank: u8, dims: &[u32]| {
            let mut b = vec![0, 0, 8, rank];
            dims.iter()
                .for_each(|d| b.extend_from_slice(&d.to_be_bytes()));
            b.resize(b.len() + dims.iter().product::<u32>() as usize, 0);
            b
        };
        std::fs::write(mnist.join("train-images-idx3-ubyte"), idx(3, &[16, 2, 2])).unwrap();
        std::fs::write(mnist.join("train-labels-idx1-ubyte"), idx(1, &[16])).unwrap();
        let msg = format!(
            "{:#}",
            run(&stage("mnist", data.path(), 16), out.path()).unwrap_err()
        );
        assert!(
            msg.contains("are 1x2x2, but the mnist models are built for 1x28x28"),
            "{msg}"
        );
    }
}
