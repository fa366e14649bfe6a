//! `PositionSum`: the per-position summed readout of a feature map `[b, c, P]`,
//! `V = s * sum_p head(h_p + e_p)`, with a learned position embedding `e: [c, P]` and a fixed
//! output scale `s`, and the VJPs of both ends. Source: the official Energy Matching potentials
//! return `output_scale * unet_out.sum(...)`, a scaled sum of per-position outputs
//! (m1balcerak/EnergyMatching `experiments/proteins/model_proteins.py`,
//! `Unet1DModelWrapper.potential`). The position embedding is ours: our per-position head is
//! shared across positions, so without it the readout could not tell positions apart.

use burn::module::{Initializer, Param};
use burn::prelude::*;

/// Standard deviation of the position embedding's normal initialisation (ours; ViT-like).
const EMBEDDING_INIT_STD: f64 = 0.02;

/// Position embedding and output scale of a per-position summed readout. The per-position
/// head itself (an [`super::MlpHead`] `c -> 1`) belongs to the potential using this readout:
/// [`Self::tokens`] feeds it, [`Self::total`] sums its outputs.
#[derive(Module, Debug)]
pub struct PositionSum {
    /// Learned position embedding `[channels, positions]`, added to the features.
    pub embedding: Param<Tensor<2>>,
    /// Output scale `s` multiplying the sum of per-position outputs.
    pub scale: f64,
}

impl PositionSum {
    /// A readout for `channels` features at `positions` positions with output scale `scale`.
    pub fn new(channels: usize, positions: usize, scale: f64, device: &Device) -> Self {
        let init = Initializer::Normal {
            mean: 0.0,
            std: EMBEDDING_INIT_STD,
        };
        Self {
            embedding: init.init([channels, positions], device),
            scale,
        }
    }

    /// Positions `P` of the feature maps this readout takes.
    pub fn positions(&self) -> usize {
        self.embedding.dims()[1]
    }

    /// `[b, c, P] -> [b * P, c]`: the features plus the embedding, one row per (sample,
    /// position), sample-major.
    pub fn tokens(&self, h: Tensor<3>) -> Tensor<2> {
        let [b, c, p] = h.dims();
        (h + self.embedding.val().unsqueeze_dim(0))
            .swap_dims(1, 2)
            .reshape([b * p, c])
    }

    /// VJP of [`Self::tokens`] (the embedding is a constant shift): `[b * P, c] -> [b, c, P]`.
    pub fn tokens_vjp(&self, g: Tensor<2>) -> Tensor<3> {
        let [bp, c] = g.dims();
        let p = self.positions();
        g.reshape([bp / p, p, c]).swap_dims(1, 2)
    }

    /// `[b * P, 1]` per-position outputs -> `[b]` energies `s * sum_p out_p`.
    pub fn total(&self, out: Tensor<2>) -> Tensor<1> {
        let [bp, _] = out.dims();
        let p = self.positions();
        out.reshape([bp / p, p]).sum_dim(1).reshape([bp / p]) * self.scale
    }

    /// VJP of [`Self::total`] for a cotangent `g: [b]`: `[b * P, 1]`, each position gets
    /// `s * g_b`.
    pub fn total_vjp(&self, g: Tensor<1>) -> Tensor<2> {
        let [b] = g.dims();
        let p = self.positions();
        (g.reshape([b, 1]).repeat_dim(1, p) * self.scale).reshape([b * p, 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{f64_device, vjp_error};
    use crate::nn::{Activation, MlpHead};
    use burn::tensor::Distribution;

    #[test]
    fn readout_vjp_matches_finite_differences() {
        let device = f64_device();
        let (c, p) = (3, 5);
        let readout = PositionSum::new(c, p, 7.5, &device);
        let head = MlpHead::new(c, 4, Activation::Silu, &device);
        let f = |h: Tensor<3>| readout.total(head.forward_cached(readout.tokens(h)).0);
        let vjp = |h: Tensor<3>, u: Tensor<1>| {
            let (_, pre) = head.forward_cached(readout.tokens(h));
            readout.tokens_vjp(head.input_vjp(&pre, readout.total_vjp(u)))
        };
        let h = Tensor::<3>::random([2, c, p], Distribution::Normal(0.0, 1.0), &device);
        let u = Tensor::<1>::random([2], Distribution::Normal(0.0, 1.0), &device);
        let err = vjp_error(f, vjp, h, u, 1e-5);
        assert!(err < 1e-4, "max rel err {err:e}");
    }

    #[test]
    fn energy_is_the_scaled_sum_of_per_position_outputs() {
        // Hand-computed: a zero embedding and an identity-like head make V = s * sum of the
        // one feature over positions.
        let device = f64_device();
        let mut readout = PositionSum::new(1, 3, 10.0, &device);
        readout.embedding = Param::from_tensor(Tensor::zeros([1, 3], &device));
        let h = Tensor::<3>::from_data(TensorData::new(vec![1.0, 2.0, -0.5], [1, 1, 3]), &device);
        let tokens = readout.tokens(h);
        assert_eq!(tokens.dims(), [3, 1]);
        let v = readout.total(tokens).into_scalar::<f64>();
        assert!((v - 25.0).abs() < 1e-12, "{v}");
    }
}
