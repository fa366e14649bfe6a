//! `emdesign image ...`: image subcommands outside workflows; `image fid A B` prints FID and
//! KID between two image sets (IDX files, raw or gzipped, or folders of PNGs).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use clap::{Args, Subcommand};
use em_image::Images;
use em_image::fid::{FidExtractor, fid_kid};
use em_image::grid::read_png_dir;
use em_image::idx::read_images;

use crate::progress::Progress;
use crate::stage::cache::write_atomic;

/// `emdesign image ...`.
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// FID and KID between two image sets (IDX file, raw or gzipped, or a folder of PNGs).
    Fid(FidArgs),
}

/// Arguments of `emdesign image fid`.
#[derive(Args, Debug)]
pub struct FidArgs {
    /// First set: an IDX image file (raw or .gz) or a folder of PNGs (greyscale or RGB).
    pub a: PathBuf,
    /// Second set, same forms.
    pub b: PathBuf,
    /// Use the first N images of each set (default: all; both sets must then hold N).
    #[arg(long, value_name = "N")]
    pub n: Option<usize>,
    /// Inception batch size.
    #[arg(long, value_name = "B", default_value_t = 16)]
    pub batch: usize,
    /// Also write the numbers as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// FID Inception weights (default: `images/fid_inception_v3.safetensors` in the data
    /// directory).
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Run an image subcommand.
pub fn run(command: ImageCommand, data_dir: Option<&Path>) -> Result<()> {
    match command {
        ImageCommand::Fid(args) => fid(&args, data_dir),
    }
}

/// An IDX file or a PNG folder as an image stack.
fn load_set(path: &Path) -> Result<Images> {
    let images = if path.is_dir() {
        read_png_dir(path)?
    } else {
        read_images(path)?
    };
    Ok(images)
}

/// The first `n` images of a set, or an error naming the set when it is smaller.
fn take(images: Images, n: Option<usize>, path: &Path) -> Result<Images> {
    match n {
        Some(n) if n > images.len() => bail!(
            "--n {n}: {} holds only {} images",
            path.display(),
            images.len()
        ),
        Some(n) => Ok(images.slice(0, n)),
        None => Ok(images),
    }
}

fn fid(args: &FidArgs, data_dir: Option<&Path>) -> Result<()> {
    if args.batch == 0 {
        bail!("--batch must be >= 1");
    }
    if args.n.is_some_and(|n| n < 2) {
        bail!("--n must be >= 2 (FID needs a covariance)");
    }
    let a = take(load_set(&args.a)?, args.n, &args.a)?;
    let b = take(load_set(&args.b)?, args.n, &args.b)?;
    for (set, path) in [(&a, &args.a), (&b, &args.b)] {
        if set.len() < 2 {
            bail!(
                "{}: {} image(s); FID and KID need at least 2",
                path.display(),
                set.len()
            );
        }
    }
    let weights = match (&args.weights, data_dir) {
        (Some(w), _) => w.clone(),
        (None, Some(d)) => d.join("images/fid_inception_v3.safetensors"),
        (None, None) => em_image::fid::default_weights_path(),
    };
    let extractor = FidExtractor::load(&weights, &Device::flex())
        .context("FID needs the Inception weights (--weights, --data-dir or EMDESIGN_DATA)")?;
    let progress = Progress::new(args.quiet);
    let bar = progress.bar("inception", (a.len() + b.len()) as u64);
    let start = Instant::now();
    let fa = extractor.features(&a, args.batch, &mut |d, _| bar.set_position(d as u64))?;
    let fb = extractor.features(&b, args.batch, &mut |d, _| {
        bar.set_position((a.len() + d) as u64)
    })?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let r = fid_kid(&fa, &fb)?;
    println!("set  images  size   path");
    for (name, set, path) in [("A", &a, &args.a), ("B", &b, &args.b)] {
        // Greyscale prints as before (`28x28`); colour adds the channels (`3x32x32`).
        let size = match set.shape() {
            [1, h, w] => format!("{h:>2}x{w:<2}"),
            [c, h, w] => format!("{c}x{h}x{w}"),
        };
        println!("{name:<4} {:>6}  {size}  {}", set.len(), path.display());
    }
    println!("FID  {:.4}", r.fid);
    println!("KID  {:.6} (std {:.6})", r.kid_mean, r.kid_std);
    println!(
        "inception: {} images in {secs:.1} s ({:.2} images/s)",
        a.len() + b.len(),
        (a.len() + b.len()) as f64 / secs.max(1e-9)
    );
    if let Some(out) = &args.out {
        let json = serde_json::json!({
            "a": args.a, "b": args.b, "n_a": a.len(), "n_b": b.len(),
            "fid": r.fid, "kid_mean": r.kid_mean, "kid_std": r.kid_std,
            "kid_subsets": 100, "kid_subset_size": 1000.min(a.len().min(b.len()) / 2).max(2),
            "weights": weights, "inception_secs": secs,
        });
        write_atomic(out, serde_json::to_string_pretty(&json)?.as_bytes())?;
    }
    Ok(())
}
