//! Residual blocks `h + F(h)` (MLP, Conv1d and Conv2d bodies) with explicit input VJPs:
//! `g + J_F^T g`.

use burn::prelude::*;

use super::activation::Activation;
use super::conv1d::{Conv1d, Conv1dConfig};
use super::conv2d::{Conv2d, Conv2dConfig};
use super::linear::{Linear, LinearConfig};

/// `h + L2(act(L1(h)))` on `[batch, width]`.
#[derive(Module, Debug)]
pub struct ResidualMlpBlock {
    /// First layer `width -> width`.
    pub l1: Linear,
    /// Second layer `width -> width`.
    pub l2: Linear,
    /// Inner activation.
    #[module(skip)]
    pub activation: Activation,
}

/// What [`ResidualMlpBlock::input_vjp`] needs from the forward pass.
#[derive(Debug, Clone)]
pub struct ResidualMlpCache {
    /// Pre-activation `L1(h)`.
    pub pre: Tensor<2>,
}

impl ResidualMlpBlock {
    /// Creates a block of the given width.
    pub fn new(width: usize, activation: Activation, device: &Device) -> Self {
        Self {
            l1: LinearConfig::new(width, width).init(device),
            l2: LinearConfig::new(width, width).init(device),
            activation,
        }
    }

    /// `[batch, width] -> [batch, width]`, keeping the pre-activation.
    pub fn forward_cached(&self, h: Tensor<2>) -> (Tensor<2>, ResidualMlpCache) {
        let pre = self.l1.forward(h.clone());
        let out = h + self.l2.forward(self.activation.forward(pre.clone()));
        (out, ResidualMlpCache { pre })
    }

    /// `g + L1^T (act'(pre) * (L2^T g))`.
    pub fn input_vjp(&self, cache: &ResidualMlpCache, grad_y: Tensor<2>) -> Tensor<2> {
        let g = self.l2.input_vjp(grad_y.clone());
        let g = self.activation.input_vjp(&cache.pre, g);
        grad_y + self.l1.input_vjp(g)
    }
}

/// `h + C2(act(C1(h)))` on `[batch, channels, length]`, 'same' padding.
#[derive(Module, Debug)]
pub struct ResidualConv1dBlock {
    /// First convolution `channels -> channels`.
    pub c1: Conv1d,
    /// Second convolution `channels -> channels`.
    pub c2: Conv1d,
    /// Inner activation.
    #[module(skip)]
    pub activation: Activation,
}

/// What [`ResidualConv1dBlock::input_vjp`] needs from the forward pass.
#[derive(Debug, Clone)]
pub struct ResidualConv1dCache {
    /// Pre-activation `C1(h)`.
    pub pre: Tensor<3>,
}

impl ResidualConv1dBlock {
    /// Creates a block with `channels` channels and an odd `kernel`.
    pub fn new(channels: usize, kernel: usize, activation: Activation, device: &Device) -> Self {
        Self {
            c1: Conv1dConfig::new(channels, channels, kernel).init(device),
            c2: Conv1dConfig::new(channels, channels, kernel).init(device),
            activation,
        }
    }

    /// `[batch, channels, length] -> same`, keeping the pre-activation.
    pub fn forward_cached(&self, h: Tensor<3>) -> (Tensor<3>, ResidualConv1dCache) {
        let pre = self.c1.forward(h.clone());
        let out = h + self.c2.forward(self.activation.forward(pre.clone()));
        (out, ResidualConv1dCache { pre })
    }

    /// `g + C1^T (act'(pre) * (C2^T g))` (transposed convolutions).
    pub fn input_vjp(&self, cache: &ResidualConv1dCache, grad_y: Tensor<3>) -> Tensor<3> {
        let g = self.c2.input_vjp(grad_y.clone());
        let g = self.activation.input_vjp(&cache.pre, g);
        grad_y + self.c1.input_vjp(g)
    }
}

/// `h + C2(act(C1(h)))` on `[batch, channels, h, w]`, 'same' padding.
#[derive(Module, Debug)]
pub struct ResidualConv2dBlock {
    /// First convolution `channels -> channels`.
    pub c1: Conv2d,
    /// Second convolution `channels -> channels`.
    pub c2: Conv2d,
    /// Inner activation.
    #[module(skip)]
    pub activation: Activation,
}

impl ResidualConv2dBlock {
    /// Creates a block with `channels` channels and an odd square `kernel`.
    pub fn new(channels: usize, kernel: usize, activation: Activation, device: &Device) -> Self {
        Self {
            c1: Conv2dConfig::new(channels, channels, kernel).init(device),
            c2: Conv2dConfig::new(channels, channels, kernel).init(device),
            activation,
        }
    }

    /// `[batch, channels, h, w] -> same`, returning the pre-activation `C1(h)` as cache.
    pub fn forward_cached(&self, h: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let pre = self.c1.forward(h.clone());
        let out = h + self.c2.forward(self.activation.forward(pre.clone()));
        (out, pre)
    }

    /// `g + C1^T (act'(pre) * (C2^T g))`.
    pub fn input_vjp(&self, pre: &Tensor<4>, grad_y: Tensor<4>) -> Tensor<4> {
        let g = self.c2.input_vjp(grad_y.clone());
        let g = self.activation.input_vjp(pre, g);
        grad_y + self.c1.input_vjp(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{f64_device, vjp_error};
    use burn::tensor::Distribution;

    fn normal<const D: usize>(shape: [usize; D]) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &f64_device())
    }

    #[test]
    fn mlp_block_vjp_matches_finite_differences() {
        let block = ResidualMlpBlock::new(5, Activation::Silu, &f64_device());
        let err = vjp_error(
            |x| block.forward_cached(x).0,
            |x, u| {
                let (_, cache) = block.forward_cached(x);
                block.input_vjp(&cache, u)
            },
            normal([3, 5]),
            normal([3, 5]),
            1e-5,
        );
        assert!(err < 1e-4, "max rel err {err:e}");
    }

    #[test]
    fn conv1d_block_vjp_matches_finite_differences() {
        let block = ResidualConv1dBlock::new(3, 3, Activation::Tanh, &f64_device());
        let err = vjp_error(
            |x| block.forward_cached(x).0,
            |x, u| {
                let (_, cache) = block.forward_cached(x);
                block.input_vjp(&cache, u)
            },
            normal([2, 3, 6]),
            normal([2, 3, 6]),
            1e-5,
        );
        assert!(err < 1e-4, "max rel err {err:e}");
    }

    #[test]
    fn conv2d_block_vjp_matches_finite_differences() {
        let block = ResidualConv2dBlock::new(2, 3, Activation::Softplus, &f64_device());
        let err = vjp_error(
            |x| block.forward_cached(x).0,
            |x, u| {
                let (_, pre) = block.forward_cached(x);
                block.input_vjp(&pre, u)
            },
            normal([2, 2, 4, 4]),
            normal([2, 2, 4, 4]),
            1e-5,
        );
        assert!(err < 1e-4, "max rel err {err:e}");
    }
}
