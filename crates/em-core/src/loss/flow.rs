//! Energy Matching warm-up loss: `-grad V(x_t)` regressed on the OT-coupled conditional
//! velocity `x1 - x0`, with a time weight that fades out near the data (t > t_cut). The
//! squared error is averaged over coordinates, as the official code does, so `lambda_cd` keeps
//! the paper's meaning whatever the dimension.

use burn::prelude::*;
use rand::RngExt;
use rand::rngs::StdRng;
use rand_distr::StandardNormal;

use crate::error::Result;
use crate::ot;
use crate::potential::Potential;

/// One warm-up minibatch: noise `x0`, OT-coupled data `x1` (row i paired with noise row i),
/// and times `t` in [0, 1].
#[derive(Debug, Clone)]
pub struct FlowBatch {
    /// Noise, `[B, D]`.
    pub x0: Tensor<2>,
    /// Data, reordered by the OT coupling, `[B, D]`.
    pub x1: Tensor<2>,
    /// Times, one per row.
    pub t: Vec<f32>,
}

/// The time weight w(t): 1 for t < `t_cut`, falling linearly to 0 at t = 1 (0 after).
pub fn time_weight(t: f64, t_cut: f64) -> f64 {
    if t < t_cut {
        1.0
    } else if t >= 1.0 {
        0.0
    } else {
        (1.0 - t) / (1.0 - t_cut)
    }
}

/// `[rows, cols]` standard-normal noise drawn from a host RNG (exactly reproducible).
pub fn host_normal(rows: usize, cols: usize, rng: &mut StdRng, device: &Device) -> Tensor<2> {
    let v: Vec<f32> = (0..rows * cols)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

impl FlowBatch {
    /// Draws noise and times from `rng` and OT-couples the noise to the data batch `x1`
    /// (`ot = false` keeps the random pairing, for ablations).
    pub fn draw(x1: Tensor<2>, ot: bool, rng: &mut StdRng) -> Result<Self> {
        let [b, d] = x1.dims();
        let x0 = host_normal(b, d, rng, &x1.device());
        let x1 = if ot { ot::couple(&x0, x1)? } else { x1 };
        let t = (0..b).map(|_| rng.random::<f32>()).collect();
        Ok(Self { x0, x1, t })
    }

    /// Interpolants `x_t = (1 - t) x0 + t x1`, `[B, D]`.
    pub fn x_t(&self) -> Tensor<2> {
        let [b, _] = self.x0.dims();
        let t = Tensor::<1>::from_data(TensorData::new(self.t.clone(), [b]), &self.x0.device())
            .unsqueeze_dim::<2>(1);
        self.x0.clone() * (t.clone().neg() + 1.0) + self.x1.clone() * t
    }

    /// The regression target `x1 - x0` (the conditional velocity), `[B, D]`.
    pub fn velocity(&self) -> Tensor<2> {
        self.x1.clone() - self.x0.clone()
    }

    /// The time weights `w(t_b)` of the rows ([`time_weight`]).
    pub fn weights(&self, t_cut: f64) -> Vec<f32> {
        self.t
            .iter()
            .map(|&t| time_weight(f64::from(t), t_cut) as f32)
            .collect()
    }
}

/// Warm-up loss `mean_b w(t_b) (1/D) |-grad V(x_t,b) - (x1_b - x0_b)|^2` as a one-element
/// tensor, differentiable with respect to the potential's parameters.
///
/// The per-row squared error is the mean over the `D` coordinates, then weighted and averaged
/// over the batch: `torch.mean(w_flow * flow_mse.mean(dim=[1, 2]))` in the official
/// `experiments/proteins/train_proteins.py` (m1balcerak/EnergyMatching; the CIFAR trainer
/// does the same over `dim=[1, 2, 3]`). A sum over coordinates would weaken the contrastive
/// term `D` times relative to this one.
pub fn flow_loss<P: Potential + ?Sized>(potential: &P, batch: &FlowBatch, t_cut: f64) -> Tensor<1> {
    let [b, _] = batch.x0.dims();
    let device = batch.x0.device();
    let v = potential.grad_x(batch.x_t()).neg();
    let sq = (v - batch.velocity())
        .powi_scalar(2)
        .mean_dim(1)
        .squeeze_dim::<1>(1);
    let w = Tensor::<1>::from_data(TensorData::new(batch.weights(t_cut), [b]), &device);
    (sq * w).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::langevin::tests::Quad;
    use rand::SeedableRng;

    #[test]
    fn weight_shape() {
        assert_eq!(time_weight(0.5, 0.9), 1.0);
        assert!((time_weight(0.95, 0.9) - 0.5).abs() < 1e-12);
        assert_eq!(time_weight(1.0, 0.9), 0.0);
    }

    #[test]
    fn matches_hand_computed_value() {
        let dev = crate::gradcheck::f64_device();
        let t2 = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [2, 2]), &dev);
        let batch = FlowBatch {
            x0: t2(vec![1.0, 0.0, 0.0, 2.0]),
            x1: t2(vec![3.0, 1.0, -1.0, 0.0]),
            t: vec![0.5, 0.95],
        };
        // row 0: x_t = (2, 0.5); -grad V = (-4, -1) with a = 2; target (2, 1); sq = 36 + 4 = 40,
        //        mean over D = 2: 20; w = 1
        // row 1: x_t = (-0.95, 0.1); -grad V = (1.9, -0.2); target (-1, -2); sq = 8.41 + 3.24
        //        = 11.65, mean 5.825; w = 0.5
        // loss = (20 + 2.9125) / 2 = 11.45625
        let l = flow_loss(&Quad(2.0), &batch, 0.9).into_scalar::<f32>();
        assert!((l - 11.45625).abs() < 1e-4, "{l}");
    }

    /// V(x) = sum_j a_j x_j^2 / 2 with a = (1, 2, 3): grad V = (x_1, 2 x_2, 3 x_3).
    struct Diag3;
    impl Potential for Diag3 {
        fn dim(&self) -> usize {
            3
        }
        fn energy(&self, x: Tensor<2>) -> Tensor<1> {
            let (_, g) = self.energy_and_grad(x.clone());
            (g * x).sum_dim(1).squeeze_dim::<1>(1) / 2.0
        }
        fn energy_and_grad(&self, x: Tensor<2>) -> (Tensor<1>, Tensor<2>) {
            let a = Tensor::<2>::from_data(
                TensorData::new(vec![1.0f32, 2.0, 3.0], [1, 3]),
                &x.device(),
            );
            let g = x.clone() * a;
            ((g.clone() * x).sum_dim(1).squeeze_dim::<1>(1) / 2.0, g)
        }
    }

    /// D = 3, where a sum over coordinates would give 3x the mean (see: issue 14).
    #[test]
    fn averages_over_coordinates_in_three_dimensions() {
        let dev = crate::gradcheck::f64_device();
        let t3 = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [2, 3]), &dev);
        let batch = FlowBatch {
            x0: t3(vec![1.0, 0.0, -1.0, 0.0, 1.0, 0.0]),
            x1: t3(vec![1.0, 2.0, 1.0, 2.0, -1.0, 1.0]),
            t: vec![0.5, 0.25],
        };
        // t_cut = 0.2, so w(0.5) = 0.5 / 0.8 = 0.625 and w(0.25) = 0.75 / 0.8 = 0.9375.
        // row 0: x_t = (1, 1, 0); -grad V = (-1, -2, 0); target (0, 2, 2); residual
        //        (-1, -4, -2); squares 1 + 16 + 4 = 21, mean 7; weighted 4.375
        // row 1: x_t = (0.5, 0.5, 0.25); -grad V = (-0.5, -1, -0.75); target (2, -2, 1);
        //        residual (-2.5, 1, -1.75); squares 6.25 + 1 + 3.0625 = 10.3125, mean
        //        3.4375; weighted 3.22265625
        // loss = (4.375 + 3.22265625) / 2 = 3.798828125 (the sum would give 11.396484375)
        let l = flow_loss(&Diag3, &batch, 0.2).into_scalar::<f64>();
        assert!((l - 3.798_828_125).abs() < 1e-5, "{l}");
    }

    #[test]
    fn draw_is_seeded_and_coupled() {
        let dev = crate::gradcheck::f64_device();
        let x1 = Tensor::<2>::from_data(
            TensorData::new((0..16).map(|v| v as f32).collect::<Vec<_>>(), [8, 2]),
            &dev,
        );
        let a = FlowBatch::draw(x1.clone(), true, &mut StdRng::seed_from_u64(1)).unwrap();
        let b = FlowBatch::draw(x1, true, &mut StdRng::seed_from_u64(1)).unwrap();
        assert_eq!(a.t, b.t);
        assert_eq!(a.x1.into_data(), b.x1.into_data());
    }
}
