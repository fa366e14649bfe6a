//! `SeqConvPotential`: a residual 1D-convolutional potential over one-hot sequences (flat
//! `[batch, length*channels]`, row-major `[length, channels]`), read out to an MLP head by
//! mean pooling over length (translation invariant: for motifs that may sit anywhere), by
//! flattening (position aware: for aligned variants of one protein), or per position with a
//! position embedding, summed and scaled ([`PositionSum`], as the official potential).

use burn::prelude::*;

use super::activation::Activation;
use super::conv1d::{Conv1d, Conv1dConfig};
use super::head::MlpHead;
use super::mlp::{add_confinement, add_confinement_grad};
use super::pool::{mean_over_length, mean_over_length_vjp};
use super::position_sum::PositionSum;
use super::residual::{ResidualConv1dBlock, ResidualConv1dCache};
use crate::error::Error;
use crate::kernels::seq_conv_train::SeqConvTrainer;
use crate::kernels::{
    HostPotential, HostTrainer, is_flex_f32, is_host_f32, seq_conv::FusedSeqConv,
};
use crate::potential::Potential;

/// How the convolutional features `[b, hidden, L]` reach the MLP head.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum SeqReadout {
    /// Mean over length: `[b, hidden]`; the energy cannot tell positions apart (beyond the
    /// zero padding at the ends).
    Mean,
    /// Flatten: `[b, hidden * L]`; the head sees every position separately.
    Flatten,
    /// Per position: the head `hidden -> 1` runs on every position's features plus a learned
    /// position embedding, and `V = output_scale * sum over positions` ([`PositionSum`]).
    PositionSum,
}

impl SeqReadout {
    /// Features `[b, c, l]` -> head input.
    /// (The position-sum readout goes through [`PositionSum`] instead.)
    fn forward(self, h: Tensor<3>) -> Tensor<2> {
        match self {
            SeqReadout::Mean | SeqReadout::PositionSum => mean_over_length(h),
            SeqReadout::Flatten => {
                let [b, c, l] = h.dims();
                h.reshape([b, c * l])
            }
        }
    }

    /// VJP of [`Self::forward`]: head-input gradient -> `[b, c, l]`.
    fn vjp(self, g: Tensor<2>, channels: usize, length: usize) -> Tensor<3> {
        match self {
            SeqReadout::Mean | SeqReadout::PositionSum => mean_over_length_vjp(g, length),
            SeqReadout::Flatten => {
                let [b, _] = g.dims();
                g.reshape([b, channels, length])
            }
        }
    }

    /// Width of the head input for `channels` features over `length` positions.
    fn width(self, channels: usize, length: usize) -> usize {
        match self {
            SeqReadout::Mean | SeqReadout::PositionSum => channels,
            SeqReadout::Flatten => channels * length,
        }
    }
}

/// Configuration of a [`SeqConvPotential`].
#[derive(Config, Debug)]
pub struct SeqConvPotentialConfig {
    /// Sequence length `L`.
    pub length: usize,
    /// Channels per position (20 for one-hot amino acids).
    pub channels: usize,
    /// Hidden channels of the convolutions.
    #[config(default = 64)]
    pub hidden_channels: usize,
    /// Odd kernel width.
    #[config(default = 5)]
    pub kernel: usize,
    /// Number of residual Conv1d blocks.
    #[config(default = 3)]
    pub blocks: usize,
    /// Hidden width of the MLP head.
    #[config(default = 64)]
    pub head_hidden: usize,
    /// Activation used everywhere.
    #[config(default = "Activation::Silu")]
    pub activation: Activation,
    /// Readout of the features to the head.
    #[config(default = "SeqReadout::Mean")]
    pub readout: SeqReadout,
    /// Output scale of the [`SeqReadout::PositionSum`] readout (unused by the others).
    #[config(default = 1.0)]
    pub output_scale: f64,
    /// Confinement strength `alpha` of an added `alpha/2 ||x||^2` (0 disables it).
    #[config(default = 0.0)]
    pub confinement: f64,
}

impl SeqConvPotentialConfig {
    /// Checks the fields (positive sizes, odd kernel, finite non-negative confinement).
    pub fn check(&self) -> Result<(), Error> {
        for (field, v) in [
            ("length", self.length),
            ("channels", self.channels),
            ("hidden_channels", self.hidden_channels),
            ("head_hidden", self.head_hidden),
        ] {
            if v == 0 {
                return Err(Error::config(field, "must be > 0"));
            }
        }
        if self.kernel.is_multiple_of(2) {
            return Err(Error::config(
                "kernel",
                format!("must be odd for 'same' padding, got {}", self.kernel),
            ));
        }
        if !(self.confinement.is_finite() && self.confinement >= 0.0) {
            return Err(Error::config(
                "confinement",
                format!("must be finite and >= 0, got {}", self.confinement),
            ));
        }
        if !(self.output_scale.is_finite() && self.output_scale > 0.0) {
            return Err(Error::config(
                "output_scale",
                format!("must be finite and > 0, got {}", self.output_scale),
            ));
        }
        Ok(())
    }

    /// Builds the network on `device` (call [`SeqConvPotentialConfig::check`] first on user
    /// input; an even kernel panics here).
    pub fn init(&self, device: &Device) -> SeqConvPotential {
        SeqConvPotential {
            input: Conv1dConfig::new(self.channels, self.hidden_channels, self.kernel).init(device),
            blocks: (0..self.blocks)
                .map(|_| {
                    ResidualConv1dBlock::new(
                        self.hidden_channels,
                        self.kernel,
                        self.activation,
                        device,
                    )
                })
                .collect(),
            head: MlpHead::new(
                self.readout.width(self.hidden_channels, self.length),
                self.head_hidden,
                self.activation,
                device,
            ),
            position: (self.readout == SeqReadout::PositionSum).then(|| {
                PositionSum::new(self.hidden_channels, self.length, self.output_scale, device)
            }),
            activation: self.activation,
            readout: self.readout,
            length: self.length,
            channels: self.channels,
            confinement: self.confinement,
        }
    }
}

/// `V(x) = head(readout act(B_k(...act(Conv_in(x))))) + alpha/2 ||x||^2`; with the
/// position-sum readout, `V(x) = s * sum_l head(h_l + e_l) + alpha/2 ||x||^2`.
#[derive(Module, Debug)]
pub struct SeqConvPotential {
    /// Input convolution `channels -> hidden_channels`.
    pub input: Conv1d,
    /// Residual blocks.
    pub blocks: Vec<ResidualConv1dBlock>,
    /// Scalar head after the readout (per position for [`SeqReadout::PositionSum`]).
    pub head: MlpHead,
    /// Position embedding and output scale of the [`SeqReadout::PositionSum`] readout.
    pub position: Option<PositionSum>,
    /// Activation after the input convolution and before the readout.
    #[module(skip)]
    pub activation: Activation,
    /// Readout of the features to the head.
    #[module(skip)]
    pub readout: SeqReadout,
    /// Sequence length.
    pub length: usize,
    /// Channels per position.
    pub channels: usize,
    /// Confinement strength `alpha`.
    pub confinement: f64,
}

impl SeqConvPotential {
    /// `[b, L*C]` (row-major `[L, C]`) -> `[b, C, L]`.
    fn to_channels_first(&self, x: Tensor<2>) -> Tensor<3> {
        let [b, _] = x.dims();
        x.reshape([b, self.length, self.channels]).swap_dims(1, 2)
    }

    /// Readout and head: features `[b, hidden, L]` -> (`[b]` energies, head pre-activation).
    fn read_out(&self, h: Tensor<3>) -> (Tensor<1>, Tensor<2>) {
        let [batch, _, _] = h.dims();
        match &self.position {
            Some(ps) => {
                let (out, pre) = self.head.forward_cached(ps.tokens(h));
                (ps.total(out), pre)
            }
            None => {
                let (v, pre) = self.head.forward_cached(self.readout.forward(h));
                (v.reshape([batch]), pre)
            }
        }
    }

    /// VJP of [`Self::read_out`] for an energy cotangent `g: [b]` -> `[b, hidden, L]`.
    fn read_out_vjp(&self, head_pre: &Tensor<2>, g: Tensor<1>, hidden: usize) -> Tensor<3> {
        match &self.position {
            Some(ps) => ps.tokens_vjp(self.head.input_vjp(head_pre, ps.total_vjp(g))),
            None => {
                let [batch] = g.dims();
                let g = self.head.input_vjp(head_pre, g.reshape([batch, 1]));
                self.readout.vjp(g, hidden, self.length)
            }
        }
    }

    /// Inverse of [`Self::to_channels_first`] for gradients.
    fn to_flat(&self, g: Tensor<3>) -> Tensor<2> {
        let [b, _, _] = g.dims();
        g.swap_dims(1, 2).reshape([b, self.length * self.channels])
    }
}

impl Potential for SeqConvPotential {
    fn dim(&self) -> usize {
        self.length * self.channels
    }

    fn energy(&self, x: Tensor<2>) -> Tensor<1> {
        let mut h = self
            .activation
            .forward(self.input.forward(self.to_channels_first(x.clone())));
        for block in &self.blocks {
            h = block.forward_cached(h).0;
        }
        let v = self.read_out(self.activation.forward(h)).0;
        add_confinement(v, x, self.confinement)
    }

    fn energy_and_grad(&self, x: Tensor<2>) -> (Tensor<1>, Tensor<2>) {
        let pre_in = self.input.forward(self.to_channels_first(x.clone()));
        let mut h = self.activation.forward(pre_in.clone());
        let mut caches: Vec<ResidualConv1dCache> = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let (out, cache) = block.forward_cached(h);
            h = out;
            caches.push(cache);
        }
        let (v, head_pre) = self.read_out(self.activation.forward(h.clone()));
        let [batch] = v.dims();

        let ones = Tensor::<1>::ones([batch], &v.device());
        let [_, hidden, _] = h.dims();
        let g = self.read_out_vjp(&head_pre, ones, hidden);
        let mut g = self.activation.input_vjp(&h, g);
        for (block, cache) in self.blocks.iter().zip(&caches).rev() {
            g = block.input_vjp(cache, g);
        }
        let g = self.input.input_vjp(self.activation.input_vjp(&pre_in, g));
        let g = self.to_flat(g);

        let energy = add_confinement(v, x.clone(), self.confinement);
        (energy, add_confinement_grad(g, x, self.confinement))
    }

    /// The fused kernel, for every readout, on the plain f32 flex device.
    fn host_kernel(&self) -> Option<Box<dyn HostPotential>> {
        is_host_f32(&self.input.weight.val()).then(|| Box::new(FusedSeqConv::new(self)) as _)
    }

    /// The hand-derived training gradients, for the position-sum readout on the flex f32
    /// device (mean and flatten readouts train through burn's autodiff).
    fn host_trainer(&self) -> Option<Box<dyn HostTrainer>> {
        if !is_flex_f32(&self.input.weight.val()) {
            return None;
        }
        SeqConvTrainer::new(self).map(|t| Box::new(t) as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{f64_device, input_gradient_error};
    use burn::tensor::Distribution;

    #[test]
    fn input_gradient_matches_finite_differences() {
        let device = f64_device();
        for readout in [
            SeqReadout::Mean,
            SeqReadout::Flatten,
            SeqReadout::PositionSum,
        ] {
            let config = SeqConvPotentialConfig::new(6, 4)
                .with_hidden_channels(5)
                .with_kernel(3)
                .with_blocks(2)
                .with_head_hidden(7)
                .with_readout(readout)
                .with_output_scale(20.0)
                .with_confinement(0.1);
            config.check().expect("valid config");
            let model = config.init(&device);
            assert_eq!(model.dim(), 24);
            let x = Tensor::<2>::random([3, 24], Distribution::Normal(0.0, 1.0), &device);
            let err = input_gradient_error(&model, x, 1e-5);
            assert!(err < 1e-4, "{readout:?}: max rel err {err:e}");
        }
    }

    #[test]
    fn flatten_and_position_sum_tell_positions_apart_and_mean_does_not() {
        // A motif moved by one position (away from the padded ends) keeps the mean-pooled
        // features, but not the flattened ones.
        let device = f64_device();
        let at = |pos: usize| {
            let mut v = vec![0.0f64; 16 * 2];
            v[pos * 2] = 1.0;
            Tensor::<2>::from_data(TensorData::new(v, [1, 32]), &device)
        };
        for (readout, moves) in [
            (SeqReadout::Mean, false),
            (SeqReadout::Flatten, true),
            (SeqReadout::PositionSum, true),
        ] {
            let model = SeqConvPotentialConfig::new(16, 2)
                .with_hidden_channels(3)
                .with_kernel(3)
                .with_blocks(1)
                .with_readout(readout)
                .init(&device);
            let diff = (model.energy(at(7)) - model.energy(at(8)))
                .abs()
                .into_scalar::<f64>();
            assert_eq!(diff > 1e-9, moves, "{readout:?}: |dV| = {diff:e}");
        }
    }

    #[test]
    fn check_rejects_even_kernel() {
        assert!(
            SeqConvPotentialConfig::new(6, 4)
                .with_kernel(4)
                .check()
                .is_err()
        );
        assert!(SeqConvPotentialConfig::new(0, 4).check().is_err());
        let e = SeqConvPotentialConfig::new(6, 4)
            .with_output_scale(0.0)
            .check()
            .unwrap_err();
        assert!(e.to_string().contains("output_scale"), "{e}");
    }

    #[test]
    fn position_sum_head_is_shared_across_positions() {
        // The per-position head reads `hidden` features, not `hidden * L`: the parameter
        // count does not grow with the length beyond the embedding's `hidden * L`.
        use burn::module::Module;
        let device = f64_device();
        let count = |length: usize| {
            SeqConvPotentialConfig::new(length, 4)
                .with_hidden_channels(5)
                .with_kernel(3)
                .with_blocks(1)
                .with_readout(SeqReadout::PositionSum)
                .init(&device)
                .num_params()
        };
        assert_eq!(count(20) - count(10), 5 * 10);
    }
}
