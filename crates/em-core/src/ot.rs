//! Exact minibatch optimal-transport coupling of noise to data on squared Euclidean cost,
//! solved as a linear assignment problem with `lsap` (scipy's LAPJV port; deterministic).

use burn::prelude::*;

use crate::error::{Error, Result};

/// Squared Euclidean cost matrix `C[i][j] = |x0_i - x1_j|^2`, row-major `[b0, b1]`, in f64.
pub fn sq_cost(x0: &[f32], x1: &[f32], dim: usize) -> Vec<f64> {
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
