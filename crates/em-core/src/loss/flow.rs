//! Energy Matching warm-up loss: `-grad V(x_t)` regressed on the OT-coupled conditional
//! velocity `x1 - x0`, with a time weight that fades out near the data (t > t_cut).

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
}

/// Warm-up loss `mean_b w(t_b) |-grad V(x_t,b) - (x1_b - x0_b)|^2` as a one-element tensor,
/// differentiable with respect to the potential's parameters.
pub fn flow_loss<P: Potential + ?Sized>(potential: &P, batch: &FlowBatch, t_cut: f64) -> Tensor<1> {
    let [b, _] = batch.x0.dims();
    let device = batch.x0.device();
    let v = potential.grad_x(batch.x_t()).neg();
    let target = batch.x1.clone() - batch.x0.clone();
    let sq = (v - target).powi_scalar(2).sum_dim(1).squeeze_dim::<1>(1);
    let w: Vec<f32> = batch
        .t
        .iter()
        .map(|&t| time_weight(f64::from(t), t_cut) as f32)
        .collect();
    let w = Tensor::<1>::from_data(TensorData::new(w, [b]), &device);
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
        // row 0: x_t = (2, 0.5); -grad V = (-4, -1) with a = 2; target (2, 1); sq = 36 + 4 = 40; w = 1
        // row 1: x_t = (-0.95, 0.1); -grad V = (1.9, -0.2); target (-1, -2); sq = 8.41 + 3.24
        //        = 11.65; w = 0.5
        // loss = (40 + 5.825) / 2 = 22.9125
        let l = flow_loss(&Quad(2.0), &batch, 0.9).into_scalar::<f32>();
        assert!((l - 22.9125).abs() < 1e-4, "{l}");
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
