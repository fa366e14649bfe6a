//! `ConvPotential2d`: a residual 2D-convolutional potential over images (flat
//! `[batch, c*h*w]`, row-major `[c, h, w]`) with 2x2 average pooling, global mean pooling and
//! an MLP head.

use burn::prelude::*;

use super::activation::Activation;
use super::conv2d::{Conv2d, Conv2dConfig};
use super::head::MlpHead;
use super::mlp::{add_confinement, add_confinement_grad};
use super::pool::{avg_pool2x2, avg_pool2x2_vjp, mean_over_space, mean_over_space_vjp};
use super::residual::ResidualConv2dBlock;
use crate::error::Error;
use crate::potential::Potential;

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
            activation: self.activation,
            pools,
            shape: vec![self.channels, self.height, self.width],
            confinement: self.confinement,
        }
    }
}

/// `V(x) = head(mean_hw act(...pool(B_1(act(Conv_in(x)))))) + alpha/2 ||x||^2`.
#[derive(Module, Debug)]
pub struct ConvPotential2d {
    /// Input convolution `channels -> hidden_channels`.
    pub input: Conv2d,
    /// Residual blocks.
    pub blocks: Vec<ResidualConv2dBlock>,
    /// Scalar head after global mean pooling.
    pub head: MlpHead,
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
    fn run(&self, x: Tensor<2>) -> (Tensor<2>, Tape) {
        let pre_in = self.input.forward(self.image(x));
        let mut h = self.activation.forward(pre_in.clone());
        let mut block_pre = Vec::new();
        for (block, &pool) in self.blocks.iter().zip(&self.pools) {
            let (out, pre) = block.forward_cached(h);
            h = if pool { avg_pool2x2(out) } else { out };
            block_pre.push(pre);
        }
        let [_, _, hh, ww] = h.dims();
        let (v, head_pre) = self
            .head
            .forward_cached(mean_over_space(self.activation.forward(h.clone())));
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
        let [batch, _] = v.dims();
        add_confinement(v.reshape([batch]), x, self.confinement)
    }

    fn energy_and_grad(&self, x: Tensor<2>) -> (Tensor<1>, Tensor<2>) {
        let (v, tape) = self.run(x.clone());
        let [batch, _] = v.dims();
        let ones = Tensor::<2>::ones([batch, 1], &v.device());
        let energy = add_confinement(v.reshape([batch]), x.clone(), self.confinement);

        let g = self.head.input_vjp(&tape.head_pre, ones);
        let [hh, ww] = tape.last_hw;
        let mut g = self
            .activation
            .input_vjp(&tape.last, mean_over_space_vjp(g, hh, ww));
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
        // 6x4 image: pooled once to 3x2, then the odd height stops pooling.
        let config = ConvPotential2dConfig::new(2, 6, 4)
            .with_hidden_channels(3)
            .with_blocks(2)
            .with_head_hidden(5)
            .with_activation(Activation::GeluTanh);
        config.check().expect("valid config");
        let model = config.init(&device);
        assert_eq!(model.pools, vec![true, false]);
        let x = Tensor::<2>::random([2, 48], Distribution::Normal(0.0, 1.0), &device);
        let err = input_gradient_error(&model, x, 1e-5);
        assert!(err < 1e-4, "max rel err {err:e}");
    }
}
