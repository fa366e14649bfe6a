//! Pooling with explicit input VJPs: 2x2 average pooling for images and global mean/sum
//! pooling over sequence length or image space. All are linear, so their VJPs need no cache.

use burn::prelude::*;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;

/// 2x2 average pooling, stride 2: `[b, c, h, w] -> [b, c, h/2, w/2]` (`h`, `w` even).
pub fn avg_pool2x2(x: Tensor<4>) -> Tensor<4> {
    avg_pool2d(x, AvgPoolOptions::new([2, 2]))
}

/// VJP of [`avg_pool2x2`]: every input pixel receives a quarter of its window's cotangent.
pub fn avg_pool2x2_vjp(grad_y: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = grad_y.dims();
    grad_y
        .reshape([b, c, h, 1, w, 1])
        .repeat_dim(3, 2)
        .repeat_dim(5, 2)
        .reshape([b, c, 2 * h, 2 * w])
        * 0.25
}

/// Mean over length: `[b, c, l] -> [b, c]`.
pub fn mean_over_length(x: Tensor<3>) -> Tensor<2> {
    let [b, c, _] = x.dims();
    x.mean_dim(2).reshape([b, c])
}

/// VJP of [`mean_over_length`]: `[b, c] -> [b, c, length]`, each position gets `g / length`.
pub fn mean_over_length_vjp(grad_y: Tensor<2>, length: usize) -> Tensor<3> {
    sum_over_length_vjp(grad_y, length) / length as f64
}

/// Sum over length: `[b, c, l] -> [b, c]`.
pub fn sum_over_length(x: Tensor<3>) -> Tensor<2> {
    let [b, c, _] = x.dims();
    x.sum_dim(2).reshape([b, c])
}

/// VJP of [`sum_over_length`]: broadcast `g` along length.
pub fn sum_over_length_vjp(grad_y: Tensor<2>, length: usize) -> Tensor<3> {
    let [b, c] = grad_y.dims();
    grad_y.reshape([b, c, 1]).repeat_dim(2, length)
}

/// Mean over both spatial dims: `[b, c, h, w] -> [b, c]`.
pub fn mean_over_space(x: Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = x.dims();
    mean_over_length(x.reshape([b, c, h * w]))
}

/// VJP of [`mean_over_space`]: `[b, c] -> [b, c, h, w]`.
pub fn mean_over_space_vjp(grad_y: Tensor<2>, h: usize, w: usize) -> Tensor<4> {
    let [b, c] = grad_y.dims();
    mean_over_length_vjp(grad_y, h * w).reshape([b, c, h, w])
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
    fn avg_pool_vjp_matches_finite_differences() {
        let err = vjp_error(
            avg_pool2x2,
            |_, u| avg_pool2x2_vjp(u),
            normal([2, 2, 4, 6]),
            normal([2, 2, 2, 3]),
            1e-5,
        );
        assert!(err < 1e-4, "max rel err {err:e}");
    }

    #[test]
    fn global_pool_vjps_match_finite_differences() {
        let err = vjp_error(
            mean_over_length,
            |_, u| mean_over_length_vjp(u, 5),
            normal([2, 3, 5]),
            normal([2, 3]),
            1e-5,
        );
        assert!(err < 1e-4, "mean over length: {err:e}");
        let err = vjp_error(
            sum_over_length,
            |_, u| sum_over_length_vjp(u, 5),
            normal([2, 3, 5]),
            normal([2, 3]),
            1e-5,
        );
        assert!(err < 1e-4, "sum over length: {err:e}");
        let err = vjp_error(
            mean_over_space,
            |_, u| mean_over_space_vjp(u, 3, 4),
            normal([2, 3, 3, 4]),
            normal([2, 3]),
            1e-5,
        );
        assert!(err < 1e-4, "mean over space: {err:e}");
    }
}
