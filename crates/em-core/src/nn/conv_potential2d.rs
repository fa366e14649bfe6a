//! `ConvPotential2d`: a residual 2D-convolutional potential over images (flat
//! `[batch, c*h*w]`, row-major `[c, h, w]`) with 2x2 average pooling and an MLP head, read out
//! by global mean pooling (translation invariant) or per position with a position embedding,
//! summed and scaled ([`PositionSum`], position aware).

use burn::prelude::*;

use super::activation::Activation;
use super::conv2d::{Conv2d, Conv2dConfig};
use super::head::MlpHead;
use super::mlp::{add_confinement, add_confinement_grad};
use super::pool::{avg_pool2x2, avg_pool2x2_vjp, mean_over_space, mean_over_space_vjp};
use super::position_sum::PositionSum;
use super::residual::ResidualConv2dBlock;
use crate::error::Error;
use crate::potential::Potential;

/// How the last feature map `[b, hidden, h', w']` reaches the scalar head.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum ImageReadout {
    /// Global mean over space, then the head: translation invariant (a digit shifted by one
    /// pooled cell, away from the borders, keeps its energy).
    Mean,
    /// The head on every position's features plus a learned position embedding, summed and
    /// multiplied by `output_scale` ([`PositionSum`]): position aware.
    PositionSum,
}

/// Configuration of a [`ConvPotential2d`].
#[derive(Config, Debug)]
pub struct ConvPotential2dConfig {
    /// Image channels.
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Hidden channels of the convolutions.
    #[config(default = 32)]
    pub hidden_channels: usize,
    /// Odd square kernel size.
    #[config(default = 3)]
    pub kernel: usize,
    /// Number of residual Conv2d blocks; each is followed by 2x2 average pooling while both
    /// spatial sizes are even.
    #[config(default = 2)]
    pub blocks: usize,
    /// Hidden width of the MLP head.
    #[config(default = 64)]
    pub head_hidden: usize,
    /// Activation used everywhere.
    #[config(default = "Activation::Silu")]
    pub activation: Activation,
    /// Readout of the last feature map to the head.
    #[config(default = "ImageReadout::Mean")]
    pub readout: ImageReadout,
    /// Output scale of the [`ImageReadout::PositionSum`] readout (unused by `Mean`).
    #[config(default = 1.0)]
    pub output_scale: f64,
    /// Confinement strength `alpha` of an added `alpha/2 ||x||^2` (0 disables it).
    #[config(default = 0.0)]
    pub confinement: f64,
}

impl ConvPotential2dConfig {
    /// Checks the fields (positive sizes, odd kernel, finite non-negative confinement).
    pub fn check(&self) -> Result<(), Error> {
        for (field, v) in [
            ("channels", self.channels),
            ("height", self.height),
            ("width", self.width),
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

    /// Builds the network on `device` (call [`ConvPotential2dConfig::check`] first on user
    /// input; an even kernel panics here).
    pub fn init(&self, device: &Device) -> ConvPotential2d {
        let (mut h, mut w) = (self.height, self.width);
        let pools = (0..self.blocks)
            .map(|_| {
                let pool = h.is_multiple_of(2) && w.is_multiple_of(2);
                if pool {
                    (h, w) = (h / 2, w / 2);
                }
                pool
            })
            .collect();
        let c = self.hidden_channels;
        ConvPotential2d {
            input: Conv2dConfig::new(self.channels, c, self.kernel).init(device),
            blocks: (0..self.blocks)
                .map(|_| ResidualConv2dBlock::new(c, self.kernel, self.activation, device))
                .collect(),
            head: MlpHead::new(c, self.head_hidden, self.activation, device),
            position: (self.readout == ImageReadout::PositionSum)
                .then(|| PositionSum::new(c, h * w, self.output_scale, device)),
            activation: self.activation,
            pools,
            shape: vec![self.channels, self.height, self.width],
            confinement: self.confinement,
        }
    }
}

/// `V(x) = head(mean_hw act(...pool(B_1(act(Conv_in(x)))))) + alpha/2 ||x||^2`, or with the
/// position-sum readout `V(x) = s * sum_p head(h_p + e_p) + alpha/2 ||x||^2`.
#[derive(Module, Debug)]
pub struct ConvPotential2d {
    /// Input convolution `channels -> hidden_channels`.
    pub input: Conv2d,
    /// Residual blocks.
    pub blocks: Vec<ResidualConv2dBlock>,
    /// Scalar head after global mean pooling (per position with [`ImageReadout::PositionSum`]).
    pub head: MlpHead,
    /// Position embedding and output scale of the [`ImageReadout::PositionSum`] readout.
    pub position: Option<PositionSum>,
    /// Activation after the input convolution and before pooling.
    #[module(skip)]
    pub activation: Activation,
    /// Whether block `i` is followed by 2x2 average pooling.
    pub pools: Vec<bool>,
    /// Image shape `[c, h, w]`.
    pub shape: Vec<usize>,
    /// Confinement strength `alpha`.
    pub confinement: f64,
}

impl ConvPotential2d {
    fn image(&self, x: Tensor<2>) -> Tensor<4> {
        let [b, _] = x.dims();
        x.reshape([b, self.shape[0], self.shape[1], self.shape[2]])
    }

    /// Shared forward pass, recording what the VJPs need (dropped when only V is wanted).
    fn run(&self, x: Tensor<2>) -> (Tensor<1>, Tape) {
        let pre_in = self.input.forward(self.image(x));
        let mut h = self.activation.forward(pre_in.clone());
        let mut block_pre = Vec::new();
        for (block, &pool) in self.blocks.iter().zip(&self.pools) {
            let (out, pre) = block.forward_cached(h);
            h = if pool { avg_pool2x2(out) } else { out };
            block_pre.push(pre);
        }
        let [b, c, hh, ww] = h.dims();
        let feats = self.activation.forward(h.clone());
        let (v, head_pre) = match &self.position {
            Some(ps) => {
                let (out, pre) =
                    self.head
                        .forward_cached(ps.tokens(feats.reshape([b, c, hh * ww])));
                (ps.total(out), pre)
            }
            None => {
                let (v, pre) = self.head.forward_cached(mean_over_space(feats));
                (v.reshape([b]), pre)
            }
        };
        let tape = Tape {
            pre_in,
            block_pre,
            last: h,
            last_hw: [hh, ww],
            head_pre,
        };
        (v, tape)
    }
}

/// Intermediate values of one forward pass of [`ConvPotential2d`].
struct Tape {
    pre_in: Tensor<4>,
    block_pre: Vec<Tensor<4>>,
    last: Tensor<4>,
    last_hw: [usize; 2],
    head_pre: Tensor<2>,
}

impl Potential for ConvPotential2d {
    fn dim(&self) -> usize {
        self.shape.iter().product()
    }

    fn energy(&self, x: Tensor<2>) -> Tensor<1> {
        let (v, _) = self.run(x.clone());
        add_confinement(v, x, self.confinement)
    }

    fn energy_and_grad(&self, x: Tensor<2>) -> (Tensor<1>, Tensor<2>) {
        let (v, tape) = self.run(x.clone());
        let [batch] = v.dims();
        let ones = Tensor::<1>::ones([batch], &v.device());
        let energy = add_confinement(v, x.clone(), self.confinement);

        let [hh, ww] = tape.last_hw;
        let g_feats = match &self.position {
            Some(ps) => {
                let g = ps.tokens_vjp(self.head.input_vjp(&tape.head_pre, ps.total_vjp(ones)));
                let [_, c, _] = g.dims();
                g.reshape([batch, c, hh, ww])
            }
            None => {
                let g = self
                    .head
                    .input_vjp(&tape.head_pre, ones.reshape([batch, 1]));
                mean_over_space_vjp(g, hh, ww)
            }
        };
        let mut g = self.activation.input_vjp(&tape.last, g_feats);
        for ((block, &pool), pre) in self
            .blocks
            .iter()
            .zip(&self.pools)
            .zip(&tape.block_pre)
            .rev()
        {
            if pool {
                g = avg_pool2x2_vjp(g);
            }
            g = block.input_vjp(pre, g);
        }
        let g = self
            .input
            .input_vjp(self.activation.input_vjp(&tape.pre_in, g));
        let g = g.reshape([batch, self.dim()]);
        (energy, add_confinement_grad(g, x, self.confinement))
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
        for readout in [ImageReadout::Mean, ImageReadout::PositionSum] {
            // 6x4 image: pooled once to 3x2, then the odd height stops pooling.
            let config = ConvPotential2dConfig::new(2, 6, 4)
                .with_hidden_channels(3)
                .with_blocks(2)
                .with_head_hidden(5)
                .with_activation(Activation::GeluTanh)
                .with_readout(readout)
                .with_output_scale(30.0);
            config.check().expect("valid config");
            let model = config.init(&device);
            assert_eq!(model.pools, vec![true, false]);
            let x = Tensor::<2>::random([2, 48], Distribution::Normal(0.0, 1.0), &device);
            let err = input_gradient_error(&model, x, 1e-5);
            assert!(err < 1e-4, "{readout:?}: max rel err {err:e}");
        }
    }

    #[test]
    fn position_sum_tells_a_shifted_image_apart_and_mean_does_not() {
        // One bright pixel moved by one pooled cell (2 pixels), away from the borders: the
        // global mean keeps the energy, the per-position readout does not.
        let device = f64_device();
        // Three 3x3 convolutions spread a pixel by 3 and the zero padding reaches 3 pixels
        // in: columns 6 and 8 of 16 stay clear of the borders.
        let at = |col: usize| {
            let mut v = vec![0.0f64; 16 * 16];
            v[7 * 16 + col] = 1.0;
            Tensor::<2>::from_data(TensorData::new(v, [1, 256]), &device)
        };
        for (readout, moves) in [
            (ImageReadout::Mean, false),
            (ImageReadout::PositionSum, true),
        ] {
            let model = ConvPotential2dConfig::new(1, 16, 16)
                .with_hidden_channels(3)
                .with_blocks(1)
                .with_readout(readout)
                .init(&device);
            let diff = (model.energy(at(6)) - model.energy(at(8)))
                .abs()
                .into_scalar::<f64>();
            assert_eq!(diff > 1e-9, moves, "{readout:?}: |dV| = {diff:e}");
        }
    }

    #[test]
    fn check_rejects_a_bad_output_scale() {
        let e = ConvPotential2dConfig::new(1, 4, 4)
            .with_output_scale(f64::NAN)
            .check()
            .unwrap_err();
        assert!(e.to_string().contains("output_scale"), "{e}");
    }
}
