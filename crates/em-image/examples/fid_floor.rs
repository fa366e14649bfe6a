//! Measures Inception throughput and the FID/KID floor on MNIST: N test images vs N other
//! test images (real vs real) and vs N uniform-noise images (seeded).
//! Run: `cargo run -p em-image --example fid_floor -- [N] [seed]` (default 128, 0).

use burn::prelude::*;
use em_image::fid::{FidExtractor, fid_kid};
use em_image::idx::{Images, Split, data_dir, read_split};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(128);
    let seed: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(0);
    let device = Device::default();
    let fid = FidExtractor::load_default(&device)?;
    let (test, _) = read_split(data_dir().join("images/mnist"), Split::Test)?;
    let a = test.slice(0, n);
    let b = test.slice(5000, 5000 + n);
    let mut rng = StdRng::seed_from_u64(seed);
    let noise = Images::new(
        n,
        28,
        28,
        (0..n * 784).map(|_| rng.random::<u8>()).collect(),
    )?;
    let t = Instant::now();
    let fa = fid.features(&a, 32, &mut |_, _| {})?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "inception: {n} images in {secs:.1} s = {:.2} images/s (batch 32)",
        n as f64 / secs
    );
    let fb = fid.features(&b, 32, &mut |_, _| {})?;
    let fnoise = fid.features(&noise, 32, &mut |_, _| {})?;
    let real = fid_kid(&fa, &fb)?;
    let vs_noise = fid_kid(&fa, &fnoise)?;
    println!("N = {n}, seed = {seed}");
    println!(
        "real vs real : FID {:.2}  KID {:.4} +- {:.4}",
        real.fid, real.kid_mean, real.kid_std
    );
    println!(
        "real vs noise: FID {:.2}  KID {:.4} +- {:.4}",
        vs_noise.fid, vs_noise.kid_mean, vs_noise.kid_std
    );
    Ok(())
}
