//! [`Images`], the 8-bit image stack every part of em-image passes around (greyscale or RGB,
//! CHW per image), and the IDX format: the reader for MNIST and Fashion-MNIST (raw or gzipped,
//! detected by magic bytes) with checked magic numbers, ranks, dimensions and sizes, and the
//! writer the workflow stages use (rank 3 for greyscale, rank 4 `[n, c, h, w]` for colour).

use crate::error::{Error, Result};
use burn::prelude::*;
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

/// IDX type code for unsigned bytes, the only element type MNIST-style files use.
const IDX_U8: u8 = 0x08;
/// First two bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A stack of 8-bit images `[n, channels, rows, cols]`, row-major (each image is CHW: all of
/// channel 0, then channel 1, ...), 0 = black. Greyscale stacks have one channel; colour
/// stacks (CIFAR-10) have three, red, green, blue.
#[derive(Clone, Debug, PartialEq)]
pub struct Images {
    n: usize,
    channels: usize,
    rows: usize,
    cols: usize,
    pixels: Vec<u8>,
}

impl Images {
    /// Builds a greyscale stack from `n * rows * cols` pixels; errors if the length does not
    /// match.
    pub fn new(n: usize, rows: usize, cols: usize, pixels: Vec<u8>) -> Result<Self> {
        Self::with_channels(n, 1, rows, cols, pixels)
    }

    /// Builds a stack of `channels`-channel images from `n * channels * rows * cols` pixels,
    /// each image CHW; errors if the length does not match or `channels` is 0.
    pub fn with_channels(
        n: usize,
        channels: usize,
        rows: usize,
        cols: usize,
        pixels: Vec<u8>,
    ) -> Result<Self> {
        if channels == 0 || Some(pixels.len()) != checked_size(&[n, channels, rows, cols]) {
            return Err(Error::invalid(
                "image pixels",
                format!(
                    "{} bytes for {n} x {channels} x {rows} x {cols} images",
                    pixels.len()
                ),
            ));
        }
        Ok(Self {
            n,
            channels,
            rows,
            cols,
            pixels,
        })
    }

    /// Quantises flat greyscale values in [-1, 1] (`n * rows * cols` of them, as produced by
    /// a sampler) back to 8-bit pixels, clamping values outside the range; NaN becomes 0.
    pub fn from_signed(values: &[f32], n: usize, rows: usize, cols: usize) -> Result<Self> {
        Self::from_signed_channels(values, n, 1, rows, cols)
    }

    /// [`Images::from_signed`] for `channels`-channel images (`n * channels * rows * cols`
    /// values, each image CHW).
    pub fn from_signed_channels(
        values: &[f32],
        n: usize,
        channels: usize,
        rows: usize,
        cols: usize,
    ) -> Result<Self> {
        let pixels = values
            .iter()
            .map(|&v| {
                let v = if v.is_nan() { -1.0 } else { v };
                ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
            })
            .collect();
        Self::with_channels(n, channels, rows, cols, pixels)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when the stack holds no image.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Channels per image (1 = greyscale, 3 = RGB).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Image height.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Image width.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `[channels, rows, cols]` of one image.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.rows, self.cols]
    }

    /// Values per image (`channels * rows * cols`), the flat dimension seen by the models.
    pub fn dim(&self) -> usize {
        self.channels * self.rows * self.cols
    }

    /// All pixels, image after image (each CHW).
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The pixels of image `i`, CHW (panics if `i >= len()`, a programmer error).
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * self.dim()..(i + 1) * self.dim()]
    }

    /// The images `start..end` (clamped to the stack) as a new stack.
    pub fn slice(&self, start: usize, end: usize) -> Images {
        let end = end.min(self.n);
        let start = start.min(end);
        Images {
            n: end - start,
            pixels: self.pixels[start * self.dim()..end * self.dim()].to_vec(),
            ..*self
        }
    }

    /// Pixels mapped to `p / 127.5 - 1` in [-1, 1], flat `[n * channels * rows * cols]`.
    pub fn to_signed(&self) -> Vec<f32> {
        self.pixels
            .iter()
            .map(|&p| p as f32 / 127.5 - 1.0)
            .collect()
    }

    /// The stack as a float tensor `[n, channels * rows * cols]` in [-1, 1] on `device`.
    pub fn to_tensor(&self, device: &Device) -> Tensor<2> {
        Tensor::<1>::from_floats(self.to_signed().as_slice(), device).reshape([self.n, self.dim()])
    }
}

/// Reads an IDX image file into an [`Images`] stack: rank 3 (`magic 0x00000803`, dims
/// `[n, rows, cols]`, greyscale) or rank 4 (`0x00000804`, dims `[n, channels, rows, cols]`).
pub fn read_images(path: impl AsRef<Path>) -> Result<Images> {
    let path = path.as_ref();
    let (dims, data) = parse(path, &read_maybe_gz(path)?, &[3, 4])?;
    match dims[..] {
        [n, rows, cols] => Images::new(n, rows, cols, data),
        [n, c, rows, cols] => Images::with_channels(n, c, rows, cols, data),
        _ => unreachable!("parse checked the rank"),
    }
}

/// The bytes of an uncompressed IDX image file holding `images`: rank 3 (`[n, rows, cols]`,
/// what MNIST readers expect) for greyscale, rank 4 (`[n, channels, rows, cols]`) otherwise.
/// [`read_images`] reads both back. Errors if a dimension does not fit in 32 bits.
pub fn encode_images(images: &Images) -> Result<Vec<u8>> {
    let dims: Vec<usize> = if images.channels() == 1 {
        vec![images.len(), images.rows(), images.cols()]
    } else {
        vec![
            images.len(),
            images.channels(),
            images.rows(),
            images.cols(),
        ]
    };
    let mut bytes = Vec::with_capacity(4 + 4 * dims.len() + images.pixels().len());
    bytes.extend_from_slice(&[0, 0, IDX_U8, dims.len() as u8]);
    for d in dims {
        let d = u32::try_from(d)
            .map_err(|_| Error::invalid("IDX dimension", format!("{d} exceeds u32")))?;
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(images.pixels());
    Ok(bytes)
}

/// The product of `dims`, or `None` on overflow.
fn checked_size(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Reads an IDX label file (`magic 0x00000801`, rank 1) into one byte per label.
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let (_, data) = parse(path, &read_maybe_gz(path)?, &[1])?;
    Ok(data)
}

/// Which half of a data set (MNIST-style IDX files here, CIFAR-10 in [`crate::cifar`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The 60,000 training images (`train-*`).
    Train,
    /// The 10,000 test images (`t10k-*`).
    Test,
}

/// Reads `{train,t10k}-images-idx3-ubyte[.gz]` and the matching labels from `dir` (gzipped
/// names are tried first) and checks that both hold the same number of items.
pub fn read_split(dir: impl AsRef<Path>, split: Split) -> Result<(Images, Vec<u8>)> {
    let dir = dir.as_ref();
    let stem = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images_path = pick(dir, &format!("{stem}-images-idx3-ubyte"));
    let labels_path = pick(dir, &format!("{stem}-labels-idx1-ubyte"));
    let images = read_images(&images_path)?;
    let labels = read_labels(&labels_path)?;
    if images.len() != labels.len() {
        return Err(Error::Mismatch {
            images: images_path,
            labels: labels_path,
            what: format!("{} images but {} labels", images.len(), labels.len()),
        });
    }
    Ok((images, labels))
}

/// The data directory: `$EMDESIGN_DATA` if set, else `../shared/datasets` (the shared data
/// folder beside a checkout, relative to the working directory). Images live
/// under `images/mnist`, `images/fashion-mnist`, `images/cifar10` and
/// `images/fid_inception_v3.safetensors`.
pub fn data_dir() -> PathBuf {
    std::env::var_os("EMDESIGN_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/datasets"))
}

fn pick(dir: &Path, name: &str) -> PathBuf {
    let gz = dir.join(format!("{name}.gz"));
    if gz.exists() { gz } else { dir.join(name) }
}

/// Reads a whole file, gunzipping it when it starts with the gzip magic bytes.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    if raw.len() >= 2 && raw[..2] == GZIP_MAGIC {
        let mut out = Vec::with_capacity(raw.len() * 4);
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| Error::Idx {
                path: path.to_path_buf(),
                what: format!("corrupt or truncated gzip stream: {e}"),
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Checks the IDX header (u8 elements, one of the expected ranks, non-zero dims) and the
/// payload size, and returns the dims and the payload.
fn parse(path: &Path, bytes: &[u8], ranks: &[usize]) -> Result<(Vec<usize>, Vec<u8>)> {
    let bad = |what: String| Error::Idx {
        path: path.to_path_buf(),
        what,
    };
    if bytes.len() < 4 {
        return Err(bad(format!(
            "file is {} bytes, shorter than the 4-byte magic number",
            bytes.len()
        )));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let rank = bytes[3] as usize;
    if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != IDX_U8 || !ranks.contains(&rank) {
        let expected: Vec<String> = ranks
            .iter()
            .map(|r| format!("{:#010x}", 0x0800 | *r as u32))
            .collect();
        let dims: Vec<String> = ranks.iter().map(usize::to_string).collect();
        return Err(bad(format!(
            "magic number {magic:#010x}, expected {} (unsigned bytes, {} dimension{})",
            expected.join(" or "),
            dims.join(" or "),
            if ranks == [1] { "" } else { "s" }
        )));
    }
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(bad(format!(
            "truncated header: {} bytes, expected {header}",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    if let Some(i) = dims.iter().position(|&d| d == 0) {
        return Err(bad(format!("dimension {i} is zero (dims {dims:?})")));
    }
    let size = checked_size(&dims).ok_or_else(|| bad(format!("dims {dims:?} overflow")))?;
    let payload = bytes.len() - header;
    if payload != size {
        return Err(bad(format!(
            "{} data: {payload} bytes after the header, expected {size} for dims {dims:?}",
            if payload < size { "truncated" } else { "extra" }
        )));
    }
    Ok((dims, bytes[header..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn idx(rank: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, IDX_U8, rank];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_raw_and_gzipped_images_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..2 * 3 * 4).map(|i| (i * 10) as u8).collect();
        let raw = idx(3, &[2, 3, 4], &pixels);
        for (name, bytes) in [("a", raw.clone()), ("b.gz", gz(&raw))] {
            let im = read_images(write(dir.path(), name, &bytes)).unwrap();
            assert_eq!((im.len(), im.rows(), im.cols()), (2, 3, 4));
            assert_eq!(im.image(1), &pixels[12..]);
        }
        let labels =
            read_labels(write(dir.path(), "l.gz", &gz(&idx(1, &[3], &[7, 0, 9])))).unwrap();
        assert_eq!(labels, vec![7, 0, 9]);
    }

    #[test]
    fn signed_conversion_maps_0_and_255_to_minus_one_and_one() {
        let im = Images::new(1, 1, 3, vec![0, 255, 51]).unwrap();
        let s = im.to_signed();
        assert_eq!(s[0], -1.0);
        assert_eq!(s[1], 1.0);
        assert!((s[2] - (51.0 / 127.5 - 1.0)).abs() < 1e-7);
        let back = Images::from_signed(&s, 1, 1, 3).unwrap();
        assert_eq!(back, im);
        let t = im.to_tensor(&Device::default());
        assert_eq!(t.dims(), [1, 3]);
    }

    #[test]
    fn bad_files_give_errors_naming_path_and_problem() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("short", vec![0, 0], "shorter than the 4-byte magic"),
            (
                "labels_as_images",
                idx(1, &[3], &[1, 2, 3]),
                "magic number 0x00000801",
            ),
            (
                "float_type",
                vec![0, 0, 0x0d, 3, 0, 0, 0, 1],
                "expected 0x00000803",
            ),
            ("header", vec![0, 0, 8, 3, 0, 0, 0, 1], "truncated header"),
            (
                "truncated",
                idx(3, &[2, 2, 2], &[0; 7]),
                "truncated data: 7 bytes",
            ),
            ("extra", idx(3, &[1, 2, 2], &[0; 5]), "extra data: 5 bytes"),
            ("zero", idx(3, &[0, 2, 2], &[]), "dimension 0 is zero"),
        ];
        for (name, bytes, want) in cases {
            let p = write(dir.path(), name, &bytes);
            let msg = read_images(&p).unwrap_err().to_string();
            assert!(msg.contains(name), "{msg}");
            assert!(msg.contains(want), "{name}: {msg}");
        }
        let mut broken = gz(&idx(3, &[1, 2, 2], &[0; 4]));
        broken.truncate(broken.len() - 6);
        let msg = read_images(write(dir.path(), "cut.gz", &broken))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("cut.gz") && msg.contains("gzip"), "{msg}");
        let msg = read_images(dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("missing"), "{msg}");
    }

    #[test]
    fn colour_stacks_slice_by_image_and_round_trip_through_rank_4_idx() {
        let pixels: Vec<u8> = (0..3 * 3 * 2 * 2).map(|i| i as u8).collect();
        let im = Images::with_channels(3, 3, 2, 2, pixels.clone()).unwrap();
        assert_eq!((im.channels(), im.dim(), im.shape()), (3, 12, [3, 2, 2]));
        assert_eq!(im.image(1), &pixels[12..24]);
        let s = im.slice(1, 9);
        assert_eq!((s.len(), s.channels(), s.image(0)), (2, 3, &pixels[12..24]));
        assert_eq!(im.to_signed().len(), 36);
        assert_eq!(im.to_tensor(&Device::default()).dims(), [3, 12]);
        let back = Images::from_signed_channels(&im.to_signed(), 3, 3, 2, 2).unwrap();
        assert_eq!(back, im);
        assert!(Images::with_channels(3, 3, 2, 2, vec![0; 35]).is_err());
        assert!(Images::with_channels(1, 0, 2, 2, vec![]).is_err());

        let dir = tempfile::tempdir().unwrap();
        let bytes = encode_images(&im).unwrap();
        assert_eq!(&bytes[..4], &[0, 0, 8, 4]);
        assert_eq!(
            read_images(write(dir.path(), "rgb.idx", &bytes)).unwrap(),
            im
        );
        // Greyscale stays rank 3, the layout MNIST readers expect; rank 4 with c = 1 reads too.
        let grey = Images::new(2, 1, 3, vec![1, 2, 3, 4, 5, 6]).unwrap();
        let bytes = encode_images(&grey).unwrap();
        assert_eq!(bytes, idx(3, &[2, 1, 3], grey.pixels()));
        assert_eq!(
            read_images(write(dir.path(), "g.idx", &bytes)).unwrap(),
            grey
        );
        let r4 = idx(4, &[2, 1, 1, 3], grey.pixels());
        assert_eq!(read_images(write(dir.path(), "g4.idx", &r4)).unwrap(), grey);
    }

    #[test]
    fn split_checks_image_and_label_counts() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "t10k-images-idx3-ubyte",
            &idx(3, &[2, 1, 1], &[1, 2]),
        );
        write(
            dir.path(),
            "t10k-labels-idx1-ubyte.gz",
            &gz(&idx(1, &[3], &[0, 1, 2])),
        );
        let msg = read_split(dir.path(), Split::Test).unwrap_err().to_string();
        assert!(msg.contains("2 images but 3 labels"), "{msg}");
    }

    #[test]
    fn reads_real_mnist_test_set() {
        let dir = data_dir().join("images/mnist");
        let (images, labels) = read_split(&dir, Split::Test).unwrap();
        assert_eq!(
            (images.len(), images.rows(), images.cols()),
            (10_000, 28, 28)
        );
        assert_eq!(labels.len(), 10_000);
        assert!(labels.iter().all(|&l| l < 10));
        // The first MNIST test digit is a 7.
        assert_eq!(labels[0], 7);
        let mean = images.pixels().iter().map(|&p| p as f64).sum::<f64>() / 7_840_000.0;
        assert!((mean - 33.79).abs() < 0.5, "mean pixel {mean}");
    }
}
