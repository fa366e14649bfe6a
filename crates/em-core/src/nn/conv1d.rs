//! 1D convolution over sequence length with 'same' padding (odd kernel, stride 1); its input
//! VJP is the transposed convolution with the same weight, differentiable in that weight.

use burn::module::{Initializer, Param};
use burn::prelude::*;
use burn::tensor::module::{conv_transpose1d, conv1d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

/// Configuration of a [`Conv1d`] layer.
#[derive(Config, Debug)]
pub struct Conv1dConfig {
    /// Input channels.
    pub channels_in: usize,
    /// Output channels.
    pub channels_out: usize,
    /// Kernel width; must be odd so 'same' padding is symmetric.
    pub kernel: usize,
}

/// `[batch, c_in, length] -> [batch, c_out, length]`, zero 'same' padding.
#[derive(Module, Debug)]
pub struct Conv1d {
    /// Weight `[c_out, c_in, kernel]`.
    pub weight: Param<Tensor<3>>,
    /// Bias `[c_out]`.
    pub bias: Param<Tensor<1>>,
}

impl Conv1dConfig {
    /// Creates the layer (uniform init, bound `1/sqrt(c_in * kernel)`).
    ///
    /// # Panics
    /// If `kernel` is even or zero (a programmer error; checked configs never pass one).
    pub fn init(&self, device: &Device) -> Conv1d {
        assert!(
            !self.kernel.is_multiple_of(2),
            "Conv1d kernel must be odd, got {}",
            self.kernel
        );
        let fan_in = self.channels_in * self.kernel;
        let init = Initializer::KaimingUniform {
            gain: 1.0 / 3f64.sqrt(),
            fan_out_only: false,
        };
        Conv1d {
            weight: init.init_with(
                [self.channels_out, self.channels_in, self.kernel],
                Some(fan_in),
                None,
                device,
            ),
            bias: init.init_with([self.channels_out], Some(fan_in), None, device),
        }
    }
}

impl Conv1d {
    fn padding(&self) -> usize {
        (self.weight.dims()[2] - 1) / 2
    }

    /// Forward convolution.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let p = self.padding();
        conv1d(
            x,
            self.weight.val(),
            Some(self.bias.val()),
            ConvOptions::new([1], [p], [1], 1),
        )
    }

    /// Input VJP: `[batch, c_out, length] -> [batch, c_in, length]`, the transposed
    /// convolution with the same weight (no cache: the layer is affine).
    pub fn input_vjp(&self, grad_y: Tensor<3>) -> Tensor<3> {
        let p = self.padding();
        conv_transpose1d(
            grad_y,
            self.weight.val(),
            None,
            ConvTransposeOptions::new([1], [p], [0], [1], 1),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{f64_device, vjp_error};
    use burn::tensor::Distribution;

    #[test]
    fn input_vjp_is_the_transposed_convolution() {
        let device = f64_device();
        for kernel in [1, 3, 5] {
            let layer = Conv1dConfig::new(3, 4, kernel).init(&device);
            let x = Tensor::<3>::random([2, 3, 7], Distribution::Normal(0.0, 1.0), &device);
            let u = Tensor::<3>::random([2, 4, 7], Distribution::Normal(0.0, 1.0), &device);
            assert_eq!(layer.forward(x.clone()).dims(), [2, 4, 7]);
            let err = vjp_error(|x| layer.forward(x), |_, u| layer.input_vjp(u), x, u, 1e-5);
            assert!(err < 1e-4, "kernel {kernel}: max rel err {err:e}");
        }
    }
}
