//! `SeqConvPotential`: a residual 1D-convolutional potential over one-hot sequences (flat
//! `[batch, length*channels]`, row-major `[length, channels]`), read out to an MLP head either
//! by mean pooling over length (translation invariant: for motifs that may sit anywhere) or by
//! flattening (position aware: for aligned variants of one protein, where which residue sits
//! at which position is most of what the density has to learn).

use burn::prelude::*;

use super::activation::Activation;
use super::conv1d::{Conv1d, Conv1dConfig};
use super::head::MlpHead;
use super::mlp::{add_confinement, add_confinement_grad};
use super::pool::{mean_over_length, mean_over_length_vjp};
use super::residual::{ResidualConv1dBlock, ResidualConv1dCache};
use crate::error::Error;
use crate::kernels::{HostPotential, is_host_f32, seq_conv::FusedSeqConv};
use crate::potential::Potential;

/// How the convolutional features `[b, hidden, L]` reach the MLP head.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum SeqReadout {
    /// Mean over length: `[b, hidden]`; the energy cannot tell positions apart (beyond the
    /// zero padding at the ends).
    Mean,
    /// Flatten: `[b, hidden * L]`; the head sees every position separately.
    Flatten,
}

impl SeqReadout {
    /// Features `[b, c, l]` -> head input.
    fn forward(self, h: Tensor<3>) -> Tensor<2> {
        match self {
            SeqReadout::Mean => mean_over_length(h),
            SeqReadout::Flatten => {
                let [b, c, l] = h.dims();
                h.reshape([b, c * l])
            }
        }
    }

    /// VJP of [`Self::forward`]: head-input gradient -> `[b, c, l]`.
    fn vjp(self, g: Tensor<2>, channels: usize, length: usize) -> Tensor<3> {
        match self {
            SeqReadout::Mean => mean_over_length_vjp(g, length),
            SeqReadout::Flatten => {
                let [b, _] = g.dims();
                g.reshape([b, channels, length])
            }
        }
    }

    /// Width of the head input for `channels` features over `length` positions.
    fn width(self, channels: usize, length: usize) -> usize {
        match self {
            SeqReadout::Mean => channels,
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
            activation: self.activation,
            readout: self.readout,
            length: self.length,
            channels: self.channels,
            confinement: self.confinement,
        }
    }
}

/// `V(x) = head(readout act(B_k(...act(Conv_in(x))))) + alpha/2 ||x||^2`.
#[derive(Module, Debug)]
pub struct SeqConvPotential {
    /// Input convolution `channels -> hidden_channels`.
    pub input: Conv1d,
    /// Residual blocks.
    pub blocks: Vec<ResidualConv1dBlock>,
    /// Scalar head after the readout.
    pub head: MlpHead,
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
        let pooled = self.readout.forward(self.activation.forward(h));
        let v = self.head.forward_cached(pooled).0;
        let [batch, _] = v.dims();
        add_confinement(v.reshape([batch]), x, self.confinement)
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
        let pooled = self.readout.forward(self.activation.forward(h.clone()));
        let (v, head_pre) = self.head.forward_cached(pooled);
        let [batch, _] = v.dims();

        let ones = Tensor::<2>::ones([batch, 1], &v.device());
        let g = self.head.input_vjp(&head_pre, ones);
        let [_, hidden, _] = h.dims();
        let mut g = self
            .activation
            .input_vjp(&h, self.readout.vjp(g, hidden, self.length));
        for (block, cache) in self.blocks.iter().zip(&caches).rev() {
            g = block.input_vjp(cache, g);
        }
        let g = self.input.input_vjp(self.activation.input_vjp(&pre_in, g));
        let g = self.to_flat(g);

        let energy = add_confinement(v.reshape([batch]), x.clone(), self.confinement);
        (energy, add_confinement_grad(g, x, self.confinement))
    }

    fn host_kernel(&self) -> Option<Box<dyn HostPotential>> {
        is_host_f32(&self.input.weight.val()).then(|| Box::new(FusedSeqConv::new(self)) as _)
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
        for readout in [SeqReadout::Mean, SeqReadout::Flatten] {
            let config = SeqConvPotentialConfig::new(6, 4)
                .with_hidden_channels(5)
                .with_kernel(3)
                .with_blocks(2)
                .with_head_hidden(7)
                .with_readout(readout)
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
    fn flatten_readout_tells_positions_apart_and_mean_does_not() {
        // A motif moved by one position (away from the padded ends) keeps the mean-pooled
        // features, but not the flattened ones.
        let device = f64_device();
        let at = |pos: usize| {
            let mut v = vec![0.0f64; 16 * 2];
            v[pos * 2] = 1.0;
            Tensor::<2>::from_data(TensorData::new(v, [1, 32]), &device)
        };
        for (readout, moves) in [(SeqReadout::Mean, false), (SeqReadout::Flatten, true)] {
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
    }
}
