//! Kernel Inception Distance (Binkowski et al. 2018): the unbiased MMD^2 estimate with the
//! cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, over random subsets as in torch-fidelity.

use crate::error::{Error, Result};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// How KID averages over subsets (torch-fidelity's `kid_subsets` / `kid_subset_size`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KidSubsets {
    /// Number of random subset pairs (torch-fidelity default 100).
    pub subsets: usize,
    /// Size of each subset, drawn without replacement from each set (default 1000; must not
    /// exceed either set).
    pub size: usize,
    /// Seed of the subset draws.
    pub seed: u64,
}

/// A KID estimate: mean over subsets and their (population) standard deviation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Kid {
    /// Mean of the unbiased MMD^2 estimates.
    pub mean: f64,
    /// Standard deviation over subsets (0 for a single full-set estimate).
    pub std: f64,
}

/// KID between feature sets `x` (`m * d` values, row-major) and `y` (`n * d`).
///
/// With `subsets = None` one unbiased estimate over all rows is returned (std 0):
/// `sum_{i!=j} k(x_i,x_j) / m(m-1) + sum_{i!=j} k(y_i,y_j) / n(n-1) - 2 sum k(x_i,y_j) / mn`.
/// With subsets, each draws `size` rows of each set without replacement and the mean and
/// standard deviation over draws are returned. The kernel matrices are computed once in f64.
///
/// ```
/// use em_image::kid::kid;
/// // d = 1, k(a, b) = (ab + 1)^3: k(0,1) = 1, k(2,3) = 343, cross terms 1 + 1 + 27 + 64.
/// let k = kid(&[0.0, 1.0], &[2.0, 3.0], 1, None).unwrap();
/// assert!((k.mean - (1.0 + 343.0 - 2.0 * 93.0 / 4.0)).abs() < 1e-9);
/// ```
pub fn kid(x: &[f32], y: &[f32], d: usize, subsets: Option<KidSubsets>) -> Result<Kid> {
    let m = rows(x, d, "first feature set")?;
    let n = rows(y, d, "second feature set")?;
    let xm = DMatrix::<f64>::from_fn(m, d, |i, j| x[i * d + j] as f64);
    let ym = DMatrix::<f64>::from_fn(n, d, |i, j| y[i * d + j] as f64);
    let kernel = |a: &DMatrix<f64>, b: &DMatrix<f64>| {
        (a * b.transpose()).map(|v| (v / d as f64 + 1.0).powi(3))
    };
    let kxx = kernel(&xm, &xm);
    let kyy = kernel(&ym, &ym);
    let kxy = kernel(&xm, &ym);
    let Some(s) = subsets else {
        let all_x: Vec<usize> = (0..m).collect();
        let all_y: Vec<usize> = (0..n).collect();
        return Ok(Kid {
            mean: mmd2(&kxx, &kyy, &kxy, &all_x, &all_y),
            std: 0.0,
        });
    };
    if s.subsets == 0 || s.size < 2 || s.size > m || s.size > n {
        return Err(Error::invalid(
            "KID subsets",
            format!(
                "{} subsets of size {} from sets of {m} and {n} (need subsets >= 1, 2 <= size <= both)",
                s.subsets, s.size
            ),
        ));
    }
    let mut rng = StdRng::seed_from_u64(s.seed);
    let values: Vec<f64> = (0..s.subsets)
        .map(|_| {
            let ix = rand::seq::index::sample(&mut rng, m, s.size).into_vec();
            let iy = rand::seq::index::sample(&mut rng, n, s.size).into_vec();
            mmd2(&kxx, &kyy, &kxy, &ix, &iy)
        })
        .collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
    Ok(Kid {
        mean,
        std: var.sqrt(),
    })
}

/// Unbiased MMD^2 on the rows `ix` of X and `iy` of Y, from precomputed kernel matrices.
fn mmd2(
    kxx: &DMatrix<f64>,
    kyy: &DMatrix<f64>,
    kxy: &DMatrix<f64>,
    ix: &[usize],
    iy: &[usize],
) -> f64 {
    let off_diag = |k: &DMatrix<f64>, idx: &[usize]| {
        let mut s = 0.0;
        for (a, &i) in idx.iter().enumerate() {
            for &j in &idx[a + 1..] {
                s += k[(i, j)];
            }
        }
        let n = idx.len() as f64;
        2.0 * s / (n * (n - 1.0))
    };
    let mut cross = 0.0;
    for &i in ix {
        for &j in iy {
            cross += kxy[(i, j)];
        }
    }
    off_diag(kxx, ix) + off_diag(kyy, iy) - 2.0 * cross / (ix.len() * iy.len()) as f64
}

fn rows(v: &[f32], d: usize, what: &str) -> Result<usize> {
    if d == 0 || !v.len().is_multiple_of(d) || v.len() / d < 2 {
        return Err(Error::invalid(
            what,
            format!("{} values: need at least 2 whole rows of {d}", v.len()),
        ));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(Error::invalid(what, "contains NaN or infinity"));
    }
    Ok(v.len() / d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(a: f64, b: f64) -> f64 {
        (a * b + 1.0).powi(3)
    }

    #[test]
    fn matches_hand_computed_one_d_value() {
        let x = [0.0f32, 1.0];
        let y = [2.0f32, -1.0, 1.0];
        let (xs, ys) = ([0.0, 1.0], [2.0, -1.0, 1.0]);
        let kxx = 2.0 * k(xs[0], xs[1]) / 2.0;
        let kyy = 2.0 * (k(2.0, -1.0) + k(2.0, 1.0) + k(-1.0, 1.0)) / 6.0;
        let kxy: f64 = xs
            .iter()
            .flat_map(|&a| ys.iter().map(move |&b| k(a, b)))
            .sum();
        let want = kxx + kyy - 2.0 * kxy / 6.0;
        let got = kid(&x, &y, 1, None).unwrap();
        assert!((got.mean - want).abs() < 1e-12, "{} vs {want}", got.mean);
        assert_eq!(got.std, 0.0);
    }

    #[test]
    fn kernel_divides_by_dimension() {
        // d = 2: x.y/2 + 1.
        let x = [1.0f32, 1.0, 0.0, 0.0];
        let y = [1.0f32, 0.0, 0.0, 1.0];
        let kxx = (1.0f64 * 0.0 / 2.0 + 1.0).powi(3); // (1,1).(0,0) = 0
        let kyy = 1.0f64; // (1,0).(0,1) = 0
        let kxy = (1.5f64).powi(3) + 1.5f64.powi(3) + 1.0 + 1.0;
        let want = kxx + kyy - 2.0 * kxy / 4.0;
        assert!((kid(&x, &y, 2, None).unwrap().mean - want).abs() < 1e-12);
    }

    #[test]
    fn same_distribution_near_zero_shifted_positive_and_subsets_reproducible() {
        // Deterministic pseudo-Gaussian features from a seeded rng.
        use rand::RngExt;
        let mut rng = StdRng::seed_from_u64(1);
        let d = 4;
        let mut draw = |n: usize, shift: f32| -> Vec<f32> {
            (0..n * d)
                .map(|_| (0..12).map(|_| rng.random::<f32>()).sum::<f32>() - 6.0 + shift)
                .collect()
        };
        let a = draw(300, 0.0);
        let b = draw(300, 0.0);
        let c = draw(300, 1.0);
        let cfg = KidSubsets {
            subsets: 20,
            size: 100,
            seed: 7,
        };
        let same = kid(&a, &b, d, Some(cfg)).unwrap();
        let shifted = kid(&a, &c, d, Some(cfg)).unwrap();
        assert!(same.mean.abs() < 3.0 * same.std.max(1e-3), "{same:?}");
        assert!(
            shifted.mean > 10.0 * same.mean.abs().max(same.std),
            "{shifted:?} vs {same:?}"
        );
        assert_eq!(kid(&a, &c, d, Some(cfg)).unwrap(), shifted);
    }

    #[test]
    fn rejects_bad_inputs() {
        assert!(kid(&[1.0], &[1.0, 2.0], 1, None).is_err());
        assert!(kid(&[1.0, f32::NAN], &[1.0, 2.0], 1, None).is_err());
        let cfg = KidSubsets {
            subsets: 5,
            size: 3,
            seed: 0,
        };
        assert!(kid(&[1.0, 2.0], &[1.0, 2.0, 3.0], 1, Some(cfg)).is_err());
    }
}
