//! 2D convolution with 'same' padding (odd kernel, stride 1) for images; its input VJP is the
//! transposed convolution with the same weight, differentiable in that weight.

use burn::module::{Initializer, Param};
use burn::prelude::*;
use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

/// Configuration of a [`Conv2d`] layer.
#[derive(Config, Debug)]
pub struct Conv2dConfig {
    /// Input channels.
    pub channels_in: usize,
    /// Output channels.
    pub channels_out: usize,
    /// Square kernel size; must be odd so 'same' padding is symmetric.
    pub kernel: usize,
}

/// `[batch, c_in, h, w] -> [batch, c_out, h, w]`, zero 'same' padding.
#[derive(Module, Debug)]
pub struct Conv2d {
    /// Weight `[c_out, c_in, k, k]`.
    pub weight: Param<Tensor<4>>,
    /// Bias `[c_out]`.
    pub bias: Param<Tensor<1>>,
}

impl Conv2dConfig {
    /// Creates the layer (uniform init, bound `1/sqrt(c_in * k * k)`).
    ///
    /// # Panics
    /// If `kernel` is even or zero (a programmer error; checked configs never pass one).
    pub fn init(&self, device: &Device) -> Conv2d {
        assert!(
            !self.kernel.is_multiple_of(2),
            "Conv2d kernel must be odd, got {}",
            self.kernel
        );
        let fan_in = self.channels_in * self.kernel * self.kernel;
        let init = Initializer::KaimingUniform {
            gain: 1.0 / 3f64.sqrt(),
            fan_out_only: false,
        };
        Conv2d {
            weight: init.init_with(
                [
                    self.channels_out,
                    self.channels_in,
                    self.kernel,
                    self.kernel,
                ],
                Some(fan_in),
                None,
                device,
            ),
            bias: init.init_with([self.channels_out], Some(fan_in), None, device),
        }
    }
}

impl Conv2d {
    fn padding(&self) -> usize {
        (self.weight.dims()[2] - 1) / 2
    }

    /// Forward convolution.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let p = self.padding();
        conv2d(
            x,
            self.weight.val(),
            Some(self.bias.val()),
            ConvOptions::new([1, 1], [p, p], [1, 1], 1),
        )
    }

    /// Input VJP `[batch, c_out, h, w] -> [batch, c_in, h, w]`: the transposed convolution
    /// with the same weight (no cache: the layer is affine).
    pub fn input_vjp(&self, grad_y: Tensor<4>) -> Tensor<4> {
        let p = self.padding();
        conv_transpose2d(
            grad_y,
            self.weight.val(),
            None,
            ConvTransposeOptions::new([1, 1], [p, p], [0, 0], [1, 1], 1),
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
        for kernel in [1, 3] {
            let layer = Conv2dConfig::new(2, 3, kernel).init(&device);
            let x = Tensor::<4>::random([2, 2, 4, 5], Distribution::Normal(0.0, 1.0), &device);
            let u = Tensor::<4>::random([2, 3, 4, 5], Distribution::Normal(0.0, 1.0), &device);
            assert_eq!(layer.forward(x.clone()).dims(), [2, 3, 4, 5]);
            let err = vjp_error(|x| layer.forward(x), |_, u| layer.input_vjp(u), x, u, 1e-5);
            assert!(err < 1e-4, "kernel {kernel}: max rel err {err:e}");
        }
    }
}
