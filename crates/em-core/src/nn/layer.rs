//! The one layer contract of [`crate::nn`]: a forward pass that returns what its input VJP
//! needs, and that VJP as differentiable tensor ops. Implemented by every layer here.

use burn::prelude::*;

use super::activation::Activation;
use super::conv1d::Conv1d;
use super::conv2d::Conv2d;
use super::head::MlpHead;
use super::linear::Linear;
use super::residual::{
    ResidualConv1dBlock, ResidualConv1dCache, ResidualConv2dBlock, ResidualMlpBlock,
    ResidualMlpCache,
};

/// A layer `Tensor<I> -> Tensor<O>` with an explicit input vector-Jacobian product.
///
/// `input_vjp(cache, g)` must equal `J(x)^T g` for the `x` that produced `cache`, built from
/// tensor ops only (no `backward`), so that it stays differentiable in the parameters.
/// Affine layers use `Cache = ()` and also offer an inherent `input_vjp(g)`.
pub trait VjpLayer<const I: usize, const O: usize> {
    /// What the VJP needs from the forward pass (pre-activations, usually).
    type Cache;

    /// Forward pass keeping the cache.
    fn forward_cached(&self, x: Tensor<I>) -> (Tensor<O>, Self::Cache);

    /// `J^T grad_y` at the point the cache came from.
    fn input_vjp(&self, cache: &Self::Cache, grad_y: Tensor<O>) -> Tensor<I>;
}

impl VjpLayer<2, 2> for Linear {
    type Cache = ();
    fn forward_cached(&self, x: Tensor<2>) -> (Tensor<2>, ()) {
        (self.forward(x), ())
    }
    fn input_vjp(&self, _: &(), grad_y: Tensor<2>) -> Tensor<2> {
        Linear::input_vjp(self, grad_y)
    }
}

impl VjpLayer<3, 3> for Conv1d {
    type Cache = ();
    fn forward_cached(&self, x: Tensor<3>) -> (Tensor<3>, ()) {
        (self.forward(x), ())
    }
    fn input_vjp(&self, _: &(), grad_y: Tensor<3>) -> Tensor<3> {
        Conv1d::input_vjp(self, grad_y)
    }
}

impl VjpLayer<4, 4> for Conv2d {
    type Cache = ();
    fn forward_cached(&self, x: Tensor<4>) -> (Tensor<4>, ()) {
        (self.forward(x), ())
    }
    fn input_vjp(&self, _: &(), grad_y: Tensor<4>) -> Tensor<4> {
        Conv2d::input_vjp(self, grad_y)
    }
}

impl<const D: usize> VjpLayer<D, D> for Activation {
    type Cache = Tensor<D>;
    fn forward_cached(&self, x: Tensor<D>) -> (Tensor<D>, Tensor<D>) {
        Activation::forward_cached(self, x)
    }
    fn input_vjp(&self, pre: &Tensor<D>, grad_y: Tensor<D>) -> Tensor<D> {
        Activation::input_vjp(self, pre, grad_y)
    }
}

impl VjpLayer<2, 2> for ResidualMlpBlock {
    type Cache = ResidualMlpCache;
    fn forward_cached(&self, x: Tensor<2>) -> (Tensor<2>, ResidualMlpCache) {
        ResidualMlpBlock::forward_cached(self, x)
    }
    fn input_vjp(&self, cache: &ResidualMlpCache, grad_y: Tensor<2>) -> Tensor<2> {
        ResidualMlpBlock::input_vjp(self, cache, grad_y)
    }
}

impl VjpLayer<3, 3> for ResidualConv1dBlock {
    type Cache = ResidualConv1dCache;
    fn forward_cached(&self, x: Tensor<3>) -> (Tensor<3>, ResidualConv1dCache) {
        ResidualConv1dBlock::forward_cached(self, x)
    }
    fn input_vjp(&self, cache: &ResidualConv1dCache, grad_y: Tensor<3>) -> Tensor<3> {
        ResidualConv1dBlock::input_vjp(self, cache, grad_y)
    }
}

impl VjpLayer<4, 4> for ResidualConv2dBlock {
    type Cache = Tensor<4>;
    fn forward_cached(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        ResidualConv2dBlock::forward_cached(self, x)
    }
    fn input_vjp(&self, pre: &Tensor<4>, grad_y: Tensor<4>) -> Tensor<4> {
        ResidualConv2dBlock::input_vjp(self, pre, grad_y)
    }
}

impl VjpLayer<2, 2> for MlpHead {
    type Cache = Tensor<2>;
    fn forward_cached(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        MlpHead::forward_cached(self, x)
    }
    fn input_vjp(&self, pre: &Tensor<2>, grad_y: Tensor<2>) -> Tensor<2> {
        MlpHead::input_vjp(self, pre, grad_y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{f64_device, layer_vjp_error};
    use crate::nn::{Conv1dConfig, Conv2dConfig, LinearConfig};
    use burn::tensor::Distribution;

    fn normal<const D: usize>(shape: [usize; D]) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &f64_device())
    }

    #[test]
    fn every_layer_passes_the_generic_vjp_check() {
        let dev = f64_device();
        let act = Activation::GeluTanh;
        let errs = [
            layer_vjp_error(
                &LinearConfig::new(3, 4).init(&dev),
                normal([2, 3]),
                normal([2, 4]),
            ),
            layer_vjp_error(&act, normal([2, 3]), normal([2, 3])),
            layer_vjp_error(&act, normal([2, 3, 4]), normal([2, 3, 4])),
            layer_vjp_error(
                &Conv1dConfig::new(2, 3, 3).init(&dev),
                normal([2, 2, 5]),
                normal([2, 3, 5]),
            ),
            layer_vjp_error(
                &Conv2dConfig::new(2, 3, 3).init(&dev),
                normal([1, 2, 3, 4]),
                normal([1, 3, 3, 4]),
            ),
            layer_vjp_error(
                &ResidualMlpBlock::new(3, act, &dev),
                normal([2, 3]),
                normal([2, 3]),
            ),
            layer_vjp_error(
                &ResidualConv1dBlock::new(2, 3, act, &dev),
                normal([2, 2, 5]),
                normal([2, 2, 5]),
            ),
            layer_vjp_error(
                &ResidualConv2dBlock::new(2, 3, act, &dev),
                normal([1, 2, 4, 4]),
                normal([1, 2, 4, 4]),
            ),
            layer_vjp_error(
                &MlpHead::new(3, 5, act, &dev),
                normal([2, 3]),
                normal([2, 1]),
            ),
        ];
        eprintln!("layer VJP max rel errs: {errs:?}");
        for (i, err) in errs.iter().enumerate() {
            assert!(*err < 1e-4, "layer {i}: max rel err {err:e}");
        }
    }
}
