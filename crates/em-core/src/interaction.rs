//! Repulsion between the samples of a batch, as [`EnergyTerm`]s for Langevin: the paper's
//! quadratic interaction (O(B·D)) and a bounded RBF-kernel variant (median-heuristic bandwidth).

use burn::prelude::*;

use crate::energy::EnergyTerm;
use crate::error::Error;

/// The paper's quadratic interaction, subtracted from U:
/// `W = 1/2 · sum_{i != j} ||x_i - x_j||^2 · eps(t) / sigma_W^2` and the term's energy is `-W`.
///
/// Computed in O(B·D) from `sum_{i != j} ||x_i - x_j||^2 = 2B sum ||x_i||^2 - 2 ||sum x_i||^2`.
/// Per-sample split: each pair's energy is shared equally by its two samples, so
/// `E_i = -(c/2) sum_{j != i} ||x_i - x_j||^2 = -(c/2) (B ||x_i||^2 - 2 x_i·s + sum_j ||x_j||^2)`
/// with `c = eps / sigma_W^2` and `s = sum_j x_j`; the `E_i` sum to `-W`. The gradient of `-W`
/// w.r.t. `x_i` is `-2c (B x_i - s)`. The repulsion is unbounded: it grows with the batch
/// spread, so keep `eps/sigma_W^2` small or use [`KernelRepulsion`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuadraticRepulsion {
    sigma_w: f64,
}

impl QuadraticRepulsion {
    /// Creates the term; `sigma_w` must be finite and > 0.
    pub fn new(sigma_w: f64) -> Result<Self, Error> {
        check_sigma(sigma_w)?;
        Ok(Self { sigma_w })
    }

    fn scale(&self, eps: f64) -> f64 {
        eps / (self.sigma_w * self.sigma_w)
    }
}

impl EnergyTerm for QuadraticRepulsion {
    fn name(&self) -> &str {
        "quadratic_repulsion"
    }

    fn energy(&self, x: Tensor<2>, _t: f64, eps: f64) -> Tensor<1> {
        let [b, _] = x.dims();
        let c = self.scale(eps);
        let sq = x.clone().powi_scalar(2).sum_dim(1); // [b, 1]
        let s = x.clone().sum_dim(0); // [1, d]
        let dot = (x * s).sum_dim(1); // [b, 1]
        let total_sq = sq.clone().sum(); // [1]
        let pair = sq * (b as f64) - dot * 2.0 + total_sq.unsqueeze_dim(0);
        (pair * (-0.5 * c)).reshape([b])
    }

    fn grad(&self, x: Tensor<2>, _t: f64, eps: f64) -> Tensor<2> {
        let [b, _] = x.dims();
        let c = self.scale(eps);
        let s = x.clone().sum_dim(0);
        (x * (b as f64) - s) * (-2.0 * c)
    }
}

/// Bounded repulsion through an RBF kernel, added to U:
/// `E = (eps / sigma_W^2) · sum_{i != j} k(x_i, x_j)`, `k(x, y) = exp(-||x - y||^2 / l)`.
///
/// Minimising E pushes samples apart, but E stays in `[0, c·B(B-1)]`. The bandwidth `l` is
/// fixed if given, else the median heuristic `l = median_{i<j} ||x_i - x_j||^2 / ln(B + 1)`
/// (SVGD's choice), recomputed from the current batch on every call and treated as a constant
/// in the gradient (it is not differentiated). Per-sample split: `E_i = c · sum_{j != i} k_ij`
/// (sums to E). Gradient: `dE/dx_i = -(4c/l) · sum_j k_ij (x_i - x_j)`. Cost O(B²·D).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KernelRepulsion {
    sigma_w: f64,
    bandwidth: Option<f64>,
}

impl KernelRepulsion {
    /// Creates the term with the median-heuristic bandwidth; `sigma_w` finite and > 0.
    pub fn new(sigma_w: f64) -> Result<Self, Error> {
        check_sigma(sigma_w)?;
        Ok(Self {
            sigma_w,
            bandwidth: None,
        })
    }

    /// Uses a fixed bandwidth `l` (finite, > 0) instead of the median heuristic.
    pub fn with_bandwidth(mut self, bandwidth: f64) -> Result<Self, Error> {
        if !(bandwidth.is_finite() && bandwidth > 0.0) {
            return Err(Error::config(
                "bandwidth",
                format!("must be finite and > 0, got {bandwidth}"),
            ));
        }
        self.bandwidth = Some(bandwidth);
        Ok(self)
    }

    /// Squared distances `[b, b]`, the off-diagonal kernel matrix and the bandwidth used.
    fn kernel(&self, x: &Tensor<2>) -> (Tensor<2>, f64) {
        let [b, _] = x.dims();
        let device = x.device();
        let sq = x.clone().powi_scalar(2).sum_dim(1); // [b, 1]
        let d2 = (sq.clone() + sq.transpose() - x.clone().matmul(x.clone().transpose()) * 2.0)
            .clamp_min(0.0);
        let l = self.bandwidth.unwrap_or_else(|| {
            median_bandwidth(&d2.to_data().iter::<f64>().collect::<Vec<_>>(), b)
        });
        let off_diag = Tensor::<2>::ones([b, b], &device) - Tensor::<2>::eye(b, &device);
        ((d2 / -l).exp() * off_diag, l)
    }
}

/// `median_{i<j} d2_ij / ln(b + 1)`, or 1 when the batch has < 2 distinct points.
fn median_bandwidth(d2: &[f64], b: usize) -> f64 {
    let mut off: Vec<f64> = (0..b)
        .flat_map(|i| (i + 1..b).map(move |j| (i, j)))
        .map(|(i, j)| d2[i * b + j])
        .collect();
    if off.is_empty() {
        return 1.0;
    }
    off.sort_by(f64::total_cmp);
    let n = off.len();
    let median = if !n.is_multiple_of(2) {
        off[n / 2]
    } else {
        0.5 * (off[n / 2 - 1] + off[n / 2])
    };
    let l = median / ((b + 1) as f64).ln();
    if l.is_finite() && l > 0.0 { l } else { 1.0 }
}

impl EnergyTerm for KernelRepulsion {
    fn name(&self) -> &str {
        "kernel_repulsion"
    }

    fn energy(&self, x: Tensor<2>, _t: f64, eps: f64) -> Tensor<1> {
        let [b, _] = x.dims();
        let c = eps / (self.sigma_w * self.sigma_w);
        let (k, _) = self.kernel(&x);
        k.sum_dim(1).reshape([b]) * c
    }

    fn grad(&self, x: Tensor<2>, _t: f64, eps: f64) -> Tensor<2> {
        let c = eps / (self.sigma_w * self.sigma_w);
        let (k, l) = self.kernel(&x);
        let row = k.clone().sum_dim(1); // [b, 1]
        (x.clone() * row - k.matmul(x)) * (-4.0 * c / l)
    }
}

fn check_sigma(sigma_w: f64) -> Result<(), Error> {
    if sigma_w.is_finite() && sigma_w > 0.0 {
        Ok(())
    } else {
        Err(Error::config(
            "sigma_w",
            format!("must be finite and > 0, got {sigma_w}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{
        central_difference, f64_device, max_relative_error, tensor_from_f64, to_vec_f64,
    };
    use burn::tensor::Distribution;

    const B: usize = 5;
    const D: usize = 3;

    fn batch() -> Tensor<2> {
        Tensor::random([B, D], Distribution::Normal(0.0, 1.0), &f64_device())
    }

    fn total(term: &dyn EnergyTerm, v: &[f64], eps: f64) -> f64 {
        let x = tensor_from_f64(v, [B, D], &f64_device());
        term.energy(x, 0.5, eps).sum().into_scalar::<f64>()
    }

    fn grad_error(term: &dyn EnergyTerm, x: Tensor<2>, eps: f64) -> f64 {
        let v = to_vec_f64(x.clone());
        let analytic = to_vec_f64(term.grad(x, 0.5, eps));
        let numeric = central_difference(|p| total(term, p, eps), &v, 1e-5);
        max_relative_error(&analytic, &numeric)
    }

    #[test]
    fn quadratic_matches_naive_double_sum_and_finite_differences() {
        let term = QuadraticRepulsion::new(0.7).expect("valid");
        let (eps, x) = (0.3, batch());
        let v = to_vec_f64(x.clone());
        let mut naive = 0.0;
        for i in 0..B {
            for j in 0..B {
                if i != j {
                    naive += (0..D)
                        .map(|k| (v[i * D + k] - v[j * D + k]).powi(2))
                        .sum::<f64>();
                }
            }
        }
        let w = 0.5 * naive * eps / (0.7 * 0.7);
        let fast = total(&term, &v, eps);
        assert!(
            (fast + w).abs() < 1e-12 * w.abs().max(1.0),
            "{fast} vs -{w}"
        );
        let err = grad_error(&term, x, eps);
        assert!(err < 1e-6, "max rel err {err:e}");
    }

    #[test]
    fn kernel_gradient_matches_finite_differences_with_fixed_bandwidth() {
        let term = KernelRepulsion::new(0.5)
            .and_then(|t| t.with_bandwidth(1.3))
            .expect("valid");
        let err = grad_error(&term, batch(), 0.2);
        assert!(err < 1e-6, "max rel err {err:e}");
    }

    #[test]
    fn kernel_energy_is_bounded_and_median_bandwidth_gradient_is_a_constant_bandwidth_one() {
        let term = KernelRepulsion::new(1.0).expect("valid");
        let x = batch();
        let e = to_vec_f64(term.energy(x.clone(), 0.0, 1.0));
        assert!(
            e.iter().all(|&v| (0.0..=(B - 1) as f64).contains(&v)),
            "{e:?}"
        );
        // With the median bandwidth frozen at its value for this batch, the gradient is the
        // fixed-bandwidth one (the bandwidth is a constant in the gradient, by design).
        let (_, l) = term.kernel(&x);
        let fixed = term.with_bandwidth(l).expect("valid");
        let a = to_vec_f64(term.grad(x.clone(), 0.0, 1.0));
        let b = to_vec_f64(fixed.grad(x.clone(), 0.0, 1.0));
        assert!(max_relative_error(&a, &b) < 1e-12);
        assert!(grad_error(&fixed, x, 1.0) < 1e-6);
    }

    #[test]
    fn rejects_bad_sigma() {
        assert!(QuadraticRepulsion::new(0.0).is_err());
        assert!(KernelRepulsion::new(f64::NAN).is_err());
    }
}
