//! 2D toy targets (two moons, 8 gaussians, checkerboard) drawn from a seed, and an RBF-kernel
//! MMD with a fixed bandwidth to score samples against them.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::data::DataMatrix;
use crate::error::Result;

/// A 2D target distribution, scaled to roughly [-2.5, 2.5]^2 so that N(0, I) noise covers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Toy {
    /// Two interleaved half circles (noise 0.05 before scaling by 1.5).
    TwoMoons,
    /// Eight gaussians (std 0.15) on a circle of radius 2.
    EightGaussians,
    /// A 4x4 checkerboard on [-2, 2]^2 (8 filled unit squares).
    Checkerboard,
}

impl Toy {
    /// `n` points drawn with `seed`, as an `[n, 2]` matrix.
    pub fn sample(&self, n: usize, seed: u64) -> Result<DataMatrix> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut v = Vec::with_capacity(2 * n);
        for i in 0..n {
            let (x, y) = match self {
                Toy::TwoMoons => {
                    let th = rng.random::<f64>() * std::f64::consts::PI;
                    let (x, y) = if i % 2 == 0 {
                        (th.cos(), th.sin())
                    } else {
                        (1.0 - th.cos(), 0.5 - th.sin())
                    };
                    let nx: f64 = rng.sample(StandardNormal);
                    let ny: f64 = rng.sample(StandardNormal);
                    ((x + 0.05 * nx - 0.5) * 1.5, (y + 0.05 * ny - 0.25) * 1.5)
                }
                Toy::EightGaussians => {
                    let k = rng.random_range(0..8u32);
                    let a = f64::from(k) * std::f64::consts::FRAC_PI_4;
                    let nx: f64 = rng.sample(StandardNormal);
                    let ny: f64 = rng.sample(StandardNormal);
                    (2.0 * a.cos() + 0.15 * nx, 2.0 * a.sin() + 0.15 * ny)
                }
                Toy::Checkerboard => {
                    let x = rng.random::<f64>() * 4.0 - 2.0;
                    let row = rng.random_range(0..2u32);
                    let col = x.floor().rem_euclid(2.0);
                    let y = rng.random::<f64>() + 2.0 * f64::from(row) + col - 2.0;
                    (x, y)
                }
            };
            v.push(x as f32);
            v.push(y as f32);
        }
        DataMatrix::new(v, 2)
    }
}

/// Unbiased estimate of squared MMD between samples `a` and `b` (flat `[n, dim]`) with the
/// Gaussian kernel `k(x, y) = exp(-|x - y|^2 / (2 bandwidth^2))`. Near 0 when the two
/// distributions agree; computed on the host in f64.
pub fn mmd_rbf(a: &[f32], b: &[f32], dim: usize, bandwidth: f64) -> f64 {
    let n = a.len() / dim;
    let m = b.len() / dim;
    let g = 1.0 / (2.0 * bandwidth * bandwidth);
    let k = |p: &[f32], q: &[f32]| {
        let d: f64 = p
            .iter()
            .zip(q)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum();
        (-g * d).exp()
    };
    fn row(s: &[f32], i: usize, dim: usize) -> &[f32] {
        &s[i * dim..(i + 1) * dim]
    }
    let within = |s: &[f32], len: usize| {
        let mut t = 0.0;
        for i in 0..len {
            for j in (i + 1)..len {
                t += k(row(s, i, dim), row(s, j, dim));
            }
        }
        2.0 * t / (len as f64 * (len as f64 - 1.0))
    };
    let mut cross = 0.0;
    for i in 0..n {
        for j in 0..m {
            cross += k(row(a, i, dim), row(b, j, dim));
        }
    }
    within(a, n) + within(b, m) - 2.0 * cross / (n as f64 * m as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_seeded_and_in_range() {
        for toy in [Toy::TwoMoons, Toy::EightGaussians, Toy::Checkerboard] {
            let a = toy.sample(500, 3).unwrap();
            assert_eq!(a, toy.sample(500, 3).unwrap());
            assert!(a.values().iter().all(|v| v.abs() < 3.5), "{toy:?}");
        }
        // checkerboard: squares alternate, so (floor x + floor y) is always even
        let c = Toy::Checkerboard.sample(400, 1).unwrap();
        for i in 0..c.n() {
            let r = c.row(i);
            let s = (r[0].floor() + r[1].floor()) as i64;
            assert_eq!(s.rem_euclid(2), 0, "{r:?}");
        }
    }

    #[test]
    fn mmd_separates_distributions() {
        let a = Toy::EightGaussians.sample(400, 1).unwrap();
        let b = Toy::EightGaussians.sample(400, 2).unwrap();
        let c = Toy::TwoMoons.sample(400, 3).unwrap();
        let same = mmd_rbf(a.values(), b.values(), 2, 0.5);
        let diff = mmd_rbf(a.values(), c.values(), 2, 0.5);
        assert!(same.abs() < 0.01, "{same}");
        assert!(diff > 0.1, "{diff}");
    }
}
