//! Reader for the CIFAR-10 "binary version" (`cifar-10-binary.tar.gz`), so the image
//! benchmark can run on 3x32x32 colour images as well as on MNIST-style IDX files.
//!
//! Layout: `data_batch_1.bin` .. `data_batch_5.bin` (the training split, 10,000 records each)
//! and `test_batch.bin`; each record is 3073 bytes, one label byte (0..=9) then 3072 pixel
//! bytes (the 1024 red, then green, then blue values of a row-major 32x32 image). That is
//! exactly the CHW layout of [`Images`], so records are copied as they are. The files may sit
//! directly in the folder given or in its `cifar-10-batches-bin/` subfolder (the tarball's).

use crate::error::{Error, Result};
use crate::idx::{Images, Split};
use std::path::{Path, PathBuf};

/// Channels, height and width of a CIFAR-10 image.
pub const SHAPE: [usize; 3] = [3, 32, 32];
/// Pixel bytes of one image (`3 * 32 * 32`).
pub const PIXELS: usize = 3 * 32 * 32;
/// Bytes of one record: the label byte and the pixels.
pub const RECORD: usize = 1 + PIXELS;
/// Number of classes; labels are `0..CLASSES`.
pub const CLASSES: u8 = 10;
/// The subfolder the official tarball unpacks to.
pub const SUBDIR: &str = "cifar-10-batches-bin";
/// The training files, in order.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test file.
pub const TEST_FILE: &str = "test_batch.bin";

/// The folder holding the batch files: `dir` itself when it has any of them, else
/// `dir/cifar-10-batches-bin` when that folder exists, else `dir` (so errors name `dir`).
pub fn batches_dir(dir: impl AsRef<Path>) -> PathBuf {
    let dir = dir.as_ref();
    let has_files = |d: &Path| {
        TRAIN_FILES
            .iter()
            .chain([&TEST_FILE])
            .any(|f| d.join(f).is_file())
    };
    let sub = dir.join(SUBDIR);
    if !has_files(dir) && sub.is_dir() {
        sub
    } else {
        dir.to_path_buf()
    }
}

/// The files of a split, in reading order, under [`batches_dir`] (they may not exist).
pub fn split_files(dir: impl AsRef<Path>, split: Split) -> Vec<PathBuf> {
    let dir = batches_dir(dir);
    match split {
        Split::Train => TRAIN_FILES.iter().map(|f| dir.join(f)).collect(),
        Split::Test => vec![dir.join(TEST_FILE)],
    }
}

/// Reads one batch file into a 3x32x32 stack and its labels. Errors name the file: missing,
/// empty, a size that is not a whole number of 3073-byte records, or a label above 9.
pub fn read_batch(path: impl AsRef<Path>) -> Result<(Images, Vec<u8>)> {
    let path = path.as_ref();
    let bad = |what: String| Error::Cifar {
        path: path.to_path_buf(),
        what,
    };
    if !path.is_file() {
        return Err(bad(format!(
            "file not found; expected the CIFAR-10 binary version ({}, {TEST_FILE}) in the \
             folder or in its {SUBDIR}/ subfolder",
            TRAIN_FILES.join(", ")
        )));
    }
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(bad(format!(
            "{} bytes is not a whole number of {RECORD}-byte records (truncated or not a \
             CIFAR-10 binary file)",
            bytes.len()
        )));
    }
    let n = bytes.len() / RECORD;
    let mut labels = Vec::with_capacity(n);
    let mut pixels = Vec::with_capacity(n * PIXELS);
    for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
        if record[0] >= CLASSES {
            return Err(bad(format!(
                "record {i} has label {}, expected 0..={}",
                record[0],
                CLASSES - 1
            )));
        }
        labels.push(record[0]);
        pixels.extend_from_slice(&record[1..]);
    }
    let [c, h, w] = SHAPE;
    Ok((Images::with_channels(n, c, h, w, pixels)?, labels))
}

/// Reads a split (the five training batches in order, or the test batch) from `dir` or its
/// `cifar-10-batches-bin/` subfolder.
pub fn read_split(dir: impl AsRef<Path>, split: Split) -> Result<(Images, Vec<u8>)> {
    let mut labels = Vec::new();
    let mut pixels = Vec::new();
    for path in split_files(dir, split) {
        let (images, l) = read_batch(&path)?;
        labels.extend(l);
        pixels.extend_from_slice(images.pixels());
    }
    let [c, h, w] = SHAPE;
    Ok((
        Images::with_channels(labels.len(), c, h, w, pixels)?,
        labels,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` records whose label is `(first + i) % 10` and whose pixel `p` is `(i + p) % 251`.
    fn records(n: usize, first: u8) -> Vec<u8> {
        let mut b = Vec::with_capacity(n * RECORD);
        for i in 0..n {
            b.push((first + i as u8) % CLASSES);
            b.extend((0..PIXELS).map(|p| ((i + p) % 251) as u8));
        }
        b
    }

    #[test]
    fn batch_values_round_trip_in_chw_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(TEST_FILE);
        std::fs::write(&p, records(3, 4)).unwrap();
        let (images, labels) = read_batch(&p).unwrap();
        assert_eq!(labels, [4, 5, 6]);
        assert_eq!((images.len(), images.shape()), (3, SHAPE));
        // Image 2: red (0, 0) is pixel 0, green (0, 0) pixel 1024, blue (31, 31) pixel 3071.
        let im = images.image(2);
        assert_eq!(im[0], 2);
        assert_eq!(im[1024], ((2 + 1024) % 251) as u8);
        assert_eq!(im[3071], ((2 + 3071) % 251) as u8);
        let raw = records(3, 4);
        for i in 0..3 {
            assert_eq!(images.image(i), &raw[i * RECORD + 1..(i + 1) * RECORD]);
        }
    }

    #[test]
    fn splits_read_from_the_folder_or_its_tarball_subfolder() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join(SUBDIR);
        std::fs::create_dir(&sub).unwrap();
        for (k, f) in TRAIN_FILES.iter().enumerate() {
            std::fs::write(sub.join(f), records(2, 2 * k as u8)).unwrap();
        }
        std::fs::write(sub.join(TEST_FILE), records(1, 9)).unwrap();
        assert_eq!(batches_dir(dir.path()), sub);
        let (train, labels) = read_split(dir.path(), Split::Train).unwrap();
        assert_eq!(labels, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!((train.len(), train.channels()), (10, 3));
        // Batch 3's second record (i = 1) is image 5.
        assert_eq!(train.image(5)[0], 1);
        let (test, labels) = read_split(&sub, Split::Test).unwrap();
        assert_eq!((test.len(), labels), (1, vec![9]));
    }

    #[test]
    fn bad_files_give_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let msg = read_split(dir.path(), Split::Train)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("data_batch_1.bin") && msg.contains("not found"),
            "{msg}"
        );
        let mut cut = records(3, 0);
        cut.truncate(2 * RECORD + 100);
        let p = dir.path().join("cut.bin");
        std::fs::write(&p, &cut).unwrap();
        let msg = read_batch(&p).unwrap_err().to_string();
        assert!(
            msg.contains("cut.bin") && msg.contains("6246 bytes") && msg.contains("3073"),
            "{msg}"
        );
        let mut bad = records(3, 0);
        bad[RECORD] = 10;
        let p = dir.path().join("label.bin");
        std::fs::write(&p, &bad).unwrap();
        let msg = read_batch(&p).unwrap_err().to_string();
        assert!(
            msg.contains("label.bin") && msg.contains("record 1 has label 10"),
            "{msg}"
        );
        std::fs::write(&p, []).unwrap();
        assert!(read_batch(&p).unwrap_err().to_string().contains("0 bytes"));
    }
}
