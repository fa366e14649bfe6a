//! Local intrinsic dimension (LID) at a point from the Hessian of V: directions along the
//! data manifold are flat (near-zero curvature), so LID = number of near-zero eigenvalues.

use burn::prelude::*;
use nalgebra::{DMatrix, SymmetricEigen};

use crate::error::Error;
use crate::gradcheck::{tensor_from_f64, to_vec_f64};
use crate::potential::Potential;

/// The eigen-spectrum of the Hessian at a point and the LID read from it.
#[derive(Debug, Clone, PartialEq)]
pub struct LidEstimate {
    /// Hessian eigenvalues, ascending.
    pub eigenvalues: Vec<f64>,
    /// Eigenvalues with `|lambda| <= threshold`: the local intrinsic dimension.
    pub lid: usize,
    /// The absolute threshold used: `rel_tol * max |lambda|`.
    pub threshold: f64,
}

/// Rows of the Hessian computed per batch, bounding memory at `ROW_CHUNK` copies of `x`.
const ROW_CHUNK: usize = 64;

/// Hessian of `V` at `x` (`dim` values), rows `d/dx (grad_x V)_k`, symmetrised.
///
/// On an autodiff device (the potential's parameters must live on it too) the rows come from
/// first-order backwards through the explicit gradient: `x` is replicated into a batch `X`
/// with one copy per row `k`, and `d/dX sum_k (grad_x V(X_k))_k` has row `k` equal to
/// Hessian row `k` (samples are independent). Elsewhere, central differences of `grad_x` with
/// step `h` are used (use f64 there: in f32 the rounding error is about `1e-7 / h`). Rows are
/// processed in chunks of 64 copies of `x`.
pub fn hessian<P: Potential>(
    potential: &P,
    x: &[f64],
    h: f64,
    device: &Device,
) -> Result<DMatrix<f64>, Error> {
    let d = potential.dim();
    if x.len() != d {
        return Err(Error::Shape {
            what: "LID point".into(),
            expected: format!("{d} values"),
            got: format!("{} values", x.len()),
        });
    }
    let mut rows = Vec::with_capacity(d * d);
    for k0 in (0..d).step_by(ROW_CHUNK) {
        let k1 = (k0 + ROW_CHUNK).min(d);
        let n = k1 - k0;
        if device.is_autodiff() {
            let batch: Vec<f64> = (0..n).flat_map(|_| x.iter().copied()).collect();
            let xb = tensor_from_f64(&batch, [n, d], device).require_grad();
            // mask[r, k0 + r] = 1 picks (grad_x V)_k from copy r = k - k0.
            let mask: Vec<f64> = (0..n * d)
                .map(|i| if i % d == k0 + i / d { 1.0 } else { 0.0 })
                .collect();
            let mask = tensor_from_f64(&mask, [n, d], device);
            let picked = (potential.grad_x(xb.clone()) * mask).sum();
            let grads = picked.backward();
            let gx = xb.grad(&grads).ok_or_else(|| Error::Data {
                what: "LID: no gradient reached x (is the potential on the autodiff device?)"
                    .into(),
            })?;
            rows.extend(to_vec_f64(gx));
        } else {
            // Copies 0..n: x + h e_k; copies n..2n: x - h e_k.
            let mut batch = Vec::with_capacity(2 * n * d);
            for sign in [1.0, -1.0] {
                for k in k0..k1 {
                    batch.extend(x.iter().enumerate().map(
                        |(i, &v)| {
                            if i == k { v + sign * h } else { v }
                        },
                    ));
                }
            }
            let g = to_vec_f64(potential.grad_x(tensor_from_f64(&batch, [2 * n, d], device)));
            rows.extend((0..n * d).map(|i| (g[i] - g[n * d + i]) / (2.0 * h)));
        }
    }
    let m = DMatrix::from_row_slice(d, d, &rows);
    Ok((&m + m.transpose()) * 0.5)
}

/// LID from a symmetric Hessian: the number of eigenvalues with
/// `|lambda| <= rel_tol * max_j |lambda_j|` (relative, so the estimate does not depend on the
/// overall scale of V).
pub fn lid_from_hessian(hessian: &DMatrix<f64>, rel_tol: f64) -> LidEstimate {
    let mut eigenvalues: Vec<f64> = SymmetricEigen::new(hessian.clone())
        .eigenvalues
        .iter()
        .copied()
        .collect();
    eigenvalues.sort_by(f64::total_cmp);
    let max_abs = eigenvalues.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let threshold = rel_tol * max_abs;
    let lid = eigenvalues.iter().filter(|v| v.abs() <= threshold).count();
    LidEstimate {
        eigenvalues,
        lid,
        threshold,
    }
}

/// Local intrinsic dimension of `potential` at `x`: [`hessian`] (finite-difference step
/// `1e-4` on non-autodiff devices) then [`lid_from_hessian`].
pub fn local_intrinsic_dimension<P: Potential>(
    potential: &P,
    x: &[f64],
    rel_tol: f64,
    device: &Device,
) -> Result<LidEstimate, Error> {
    if !(rel_tol.is_finite() && rel_tol >= 0.0) {
        return Err(Error::config(
            "rel_tol",
            format!("must be finite and >= 0, got {rel_tol}"),
        ));
    }
    Ok(lid_from_hessian(
        &hessian(potential, x, 1e-4, device)?,
        rel_tol,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{f64_autodiff_device, f64_device};

    /// `V(x) = 1/2 x^T A x` with `A = Q diag(lambda) Q^T` of known rank.
    struct Quadratic {
        a: Vec<f64>,
        d: usize,
        device: Device,
    }

    impl Quadratic {
        /// Rank-`r` PSD matrix: eigenvalues 1..=r along a rotated basis, zero elsewhere.
        fn new(d: usize, r: usize, device: &Device) -> Self {
            let q = DMatrix::from_fn(d, d, |i, j| {
                ((i * 7 + j * 3) as f64).sin() + if i == j { 2.0 } else { 0.0 }
            })
            .qr()
            .q();
            let lambda = DMatrix::from_fn(
                d,
                d,
                |i, j| if i == j && i < r { (i + 1) as f64 } else { 0.0 },
            );
            let a = &q * lambda * q.transpose();
            let a = (0..d * d).map(|k| a[(k / d, k % d)]).collect();
            Self {
                a,
                d,
                device: device.clone(),
            }
        }

        fn matrix(&self) -> Tensor<2> {
            tensor_from_f64(&self.a, [self.d, self.d], &self.device)
        }
    }

    impl Potential for Quadratic {
        fn dim(&self) -> usize {
            self.d
        }

        fn energy(&self, x: Tensor<2>) -> Tensor<1> {
            let [b, _] = x.dims();
            (x.clone().matmul(self.matrix()) * x)
                .sum_dim(1)
                .reshape([b])
                * 0.5
        }

        fn energy_and_grad(&self, x: Tensor<2>) -> (Tensor<1>, Tensor<2>) {
            (self.energy(x.clone()), x.matmul(self.matrix()))
        }
    }

    #[test]
    fn lid_of_a_rank_deficient_quadratic_is_its_nullity() {
        for device in [f64_device(), f64_autodiff_device()] {
            let v = Quadratic::new(6, 4, &device);
            let x = [0.3, -1.0, 0.5, 2.0, 0.0, -0.7];
            let est = local_intrinsic_dimension(&v, &x, 1e-3, &device).expect("valid");
            assert_eq!(est.lid, 2, "autodiff {}: {est:?}", device.is_autodiff());
            let top = est.eigenvalues[5];
            assert!((top - 4.0).abs() < 1e-6, "largest eigenvalue {top}");
        }
    }

    #[test]
    fn hessian_rows_are_assembled_across_chunks() {
        // 70 > ROW_CHUNK rows: two chunks on both paths.
        for device in [f64_device(), f64_autodiff_device()] {
            let v = Quadratic::new(70, 50, &device);
            let x: Vec<f64> = (0..70).map(|i| (i as f64 * 0.37).cos()).collect();
            let h = hessian(&v, &x, 1e-4, &device).expect("valid");
            let a = DMatrix::from_row_slice(70, 70, &v.a);
            let err = (h - a).abs().max();
            assert!(err < 1e-6, "autodiff {}: {err:e}", device.is_autodiff());
            let est = local_intrinsic_dimension(&v, &x, 1e-3, &device).expect("valid");
            assert_eq!(est.lid, 20);
        }
    }

    #[test]
    fn rejects_wrong_length() {
        let device = f64_device();
        let v = Quadratic::new(3, 1, &device);
        assert!(local_intrinsic_dimension(&v, &[0.0; 2], 1e-3, &device).is_err());
    }
}
