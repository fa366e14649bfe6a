//! Exact minibatch optimal-transport coupling of noise to data on squared Euclidean cost,
//! solved as a linear assignment problem with `lsap` (scipy's LAPJV port; deterministic); the
//! cost matrix is one GEMM.

use burn::prelude::*;

use crate::error::{Error, Result};
use crate::kernels::gemm::{Op, gemm};

/// Squared Euclidean cost matrix `C[i][j] = |x0_i - x1_j|^2`, row-major `[b0, b1]`, as
/// `|a|^2 + |b|^2 - 2 a.b` with the cross term one f32 GEMM (norms summed in f64, negative
/// round-off clamped to 0). Agrees with [`sq_cost_reference`] to about `1e-6 (|a|^2 + |b|^2)`.
pub fn sq_cost(x0: &[f32], x1: &[f32], dim: usize) -> Vec<f64> {
    let b0 = x0.len() / dim;
    let b1 = x1.len() / dim;
    let norms = |x: &[f32]| -> Vec<f64> {
        x.chunks_exact(dim)
            .map(|r| r.iter().map(|&v| f64::from(v) * f64::from(v)).sum())
            .collect()
    };
    let (n0, n1) = (norms(x0), norms(x1));
    let mut dot = vec![0.0f32; b0 * b1];
    gemm(b0, b1, dim, 1.0, x0, Op::N, x1, Op::T, 0.0, &mut dot);
    let mut c = Vec::with_capacity(b0 * b1);
    for (i, row) in dot.chunks_exact(b1.max(1)).enumerate().take(b0) {
        for (j, &ab) in row.iter().enumerate() {
            c.push((n0[i] + n1[j] - 2.0 * f64::from(ab)).max(0.0));
        }
    }
    c
}

/// The cost matrix by the direct O(b0 b1 dim) f64 sum `sum_k (a_k - b_k)^2`: the reference
/// [`sq_cost`] is tested against.
pub fn sq_cost_reference(x0: &[f32], x1: &[f32], dim: usize) -> Vec<f64> {
    let b0 = x0.len() / dim;
    let b1 = x1.len() / dim;
    let mut c = Vec::with_capacity(b0 * b1);
    for i in 0..b0 {
        let a = &x0[i * dim..(i + 1) * dim];
        for j in 0..b1 {
            let b = &x1[j * dim..(j + 1) * dim];
            c.push(
                a.iter()
                    .zip(b)
                    .map(|(p, q)| {
                        let d = f64::from(*p) - f64::from(*q);
                        d * d
                    })
                    .sum(),
            );
        }
    }
    c
}

/// The permutation `perm` minimising `sum_i C[i][perm[i]]` for a square `n x n` cost.
pub fn assignment(cost: &[f64], n: usize) -> Result<Vec<usize>> {
    if cost.len() != n * n {
        return Err(Error::Shape {
            what: "OT cost matrix".into(),
            expected: format!("{n}x{n} = {} entries", n * n),
            got: format!("{} entries", cost.len()),
        });
    }
    if let Some(v) = cost.iter().find(|v| !v.is_finite()) {
        return Err(Error::Assignment {
            n,
            why: format!("non-finite cost {v}"),
        });
    }
    let (rows, cols) = lsap::solve(n, n, &cost.to_vec(), false).map_err(|e| Error::Assignment {
        n,
        why: format!("{e:?}"),
    })?;
    let mut perm = vec![0; n];
    for (r, c) in rows.into_iter().zip(cols) {
        perm[r] = c;
    }
    Ok(perm)
}

/// Exact OT coupling of two equal-size batches: returns `x1` with its rows reordered so that
/// row `i` is the data point paired with noise row `i` (minimising total squared distance).
pub fn couple(x0: &Tensor<2>, x1: Tensor<2>) -> Result<Tensor<2>> {
    let [b0, d0] = x0.dims();
    let [b1, d1] = x1.dims();
    if b0 != b1 || d0 != d1 {
        return Err(Error::Shape {
            what: "OT coupling batches".into(),
            expected: format!("x1 of shape [{b0}, {d0}] like x0"),
            got: format!("[{b1}, {d1}]"),
        });
    }
    let a = to_vec(x0.clone());
    let b = to_vec(x1.clone());
    let perm = assignment(&sq_cost(&a, &b, d0), b0)?;
    let idx: Vec<i64> = perm.iter().map(|&p| p as i64).collect();
    let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [b0]), &x1.device());
    Ok(x1.select(0, idx))
}

fn to_vec(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for p in permutations(n - 1) {
            for k in 0..n {
                let mut q = p.clone();
                q.insert(k, n - 1);
                out.push(q);
            }
        }
        out
    }

    fn total(cost: &[f64], n: usize, perm: &[usize]) -> f64 {
        (0..n).map(|i| cost[i * n + perm[i]]).sum()
    }

    #[test]
    fn matches_brute_force_on_small_batches() {
        let mut rng = StdRng::seed_from_u64(11);
        for n in 1..=6 {
            for _ in 0..5 {
                let dim = 3;
                let x0: Vec<f32> = (0..n * dim)
                    .map(|_| rng.random::<f32>() * 4.0 - 2.0)
                    .collect();
                let x1: Vec<f32> = (0..n * dim)
                    .map(|_| rng.random::<f32>() * 4.0 - 2.0)
                    .collect();
                let c = sq_cost(&x0, &x1, dim);
                let perm = assignment(&c, n).unwrap();
                let best = permutations(n)
                    .iter()
                    .map(|p| total(&c, n, p))
                    .fold(f64::INFINITY, f64::min);
                assert!((total(&c, n, &perm) - best).abs() < 1e-9, "n={n}");
            }
        }
    }

    /// The GEMM cost against the direct f64 sum, and the assignment it yields unchanged, on
    /// Gaussian batches like the warm-up's (noise vs shifted data), including a dimension
    /// under matrixmultiply's small-size cut-off.
    #[test]
    fn gemm_cost_matches_the_direct_sum_and_keeps_the_assignment() {
        let mut rng = StdRng::seed_from_u64(21);
        for (n, dim) in [(48, 300), (20, 2), (9, 7)] {
            let normal = |rng: &mut StdRng, shift: f32| -> Vec<f32> {
                (0..n * dim)
                    .map(|_| rng.sample::<f32, _>(rand_distr::StandardNormal) + shift)
                    .collect()
            };
            let x0 = normal(&mut rng, 0.0);
            let x1 = normal(&mut rng, 0.5);
            let fast = sq_cost(&x0, &x1, dim);
            let slow = sq_cost_reference(&x0, &x1, dim);
            for i in 0..n {
                for j in 0..n {
                    let scale: f64 = [&x0[i * dim..(i + 1) * dim], &x1[j * dim..(j + 1) * dim]]
                        .iter()
                        .flat_map(|r| r.iter())
                        .map(|&v| f64::from(v).powi(2))
                        .sum();
                    let (f, s) = (fast[i * n + j], slow[i * n + j]);
                    assert!(
                        (f - s).abs() <= 1e-5 * scale,
                        "n {n} dim {dim} [{i},{j}]: {f} vs {s}"
                    );
                }
            }
            assert_eq!(assignment(&fast, n).unwrap(), assignment(&slow, n).unwrap());
        }
    }

    #[test]
    fn couple_pairs_the_obvious_hand_case() {
        // Noise at 0 and 10 on a line; data given as [10.5, 0.5] must be swapped.
        let dev = crate::gradcheck::f64_device();
        let x0 = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 10.0], [2, 1]), &dev);
        let x1 = Tensor::<2>::from_data(TensorData::new(vec![10.5f32, 0.5], [2, 1]), &dev);
        let c = couple(&x0, x1).unwrap();
        assert_eq!(
            c.into_data().convert::<f32>().try_to_vec::<f32>().unwrap(),
            vec![0.5, 10.5]
        );
        let bad = Tensor::<2>::zeros([3, 1], &dev);
        assert!(couple(&x0, bad).is_err());
    }
}
