//! FID/KID on real MNIST with the shared Inception weights: the weights load completely,
//! features are finite and 2048-d, and real-vs-real is far below real-vs-noise.

use burn::prelude::*;
use em_image::fid::{FidExtractor, fid_kid_with};
use em_image::idx::{Images, Split, data_dir, read_split};
use em_image::inception::FEATURE_DIM;
use em_image::kid::KidSubsets;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::time::Instant;

/// Images per set: kept small because flex runs Inception at 1.4-1.9 images/s on this
/// 2-core CPU (3 sets = 72 images, about 40-50 s); FID is strongly biased at this N.
const N: usize = 24;

#[test]
fn real_vs_real_is_far_below_real_vs_noise() {
    let device = Device::default();
    let fid = FidExtractor::load_default(&device).expect("FID weights (set EMDESIGN_DATA)");
    let (test, _) = read_split(data_dir().join("images/mnist"), Split::Test).unwrap();
    let a = test.slice(0, N);
    let b = test.slice(5000, 5000 + N);
    let mut rng = StdRng::seed_from_u64(0);
    let noise: Vec<u8> = (0..N * 784).map(|_| rng.random::<u8>()).collect();
    let noise = Images::new(N, 28, 28, noise).unwrap();

    let t = Instant::now();
    let fa = fid.features(&a, 16, &mut |_, _| {}).unwrap();
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "Inception features: {N} images in {secs:.1} s = {:.2} images/s",
        N as f64 / secs
    );
    let fb = fid.features(&b, 16, &mut |_, _| {}).unwrap();
    let mut calls = 0;
    let fnoise = fid.features(&noise, 16, &mut |_, _| calls += 1).unwrap();
    assert_eq!(calls, N.div_ceil(16));
    assert_eq!(fa.data.len(), N * FEATURE_DIM);
    // pool3 follows a ReLU and an average pool: non-negative, and not all zero.
    assert!(fa.data.iter().all(|v| v.is_finite() && *v >= 0.0));
    assert!(fa.data.iter().sum::<f32>() > 0.0);

    let kid = KidSubsets {
        subsets: 50,
        size: N / 2,
        seed: 0,
    };
    let real = fid_kid_with(&fa, &fb, kid).unwrap();
    let vs_noise = fid_kid_with(&fa, &fnoise, kid).unwrap();
    eprintln!("N = {N}: real-vs-real {real:?}, real-vs-noise {vs_noise:?}");
    assert!(vs_noise.fid > 3.0 * real.fid, "{real:?} vs {vs_noise:?}");
    assert!(
        vs_noise.kid_mean > 10.0 * real.kid_mean.abs(),
        "{real:?} vs {vs_noise:?}"
    );
    let same = fid_kid_with(&fa, &fa, kid).unwrap();
    assert!(same.fid < 1e-3 * real.fid, "{same:?}");
}
