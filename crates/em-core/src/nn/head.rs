//! Scalar MLP head `Linear -> act -> Linear(1)` used after pooling by the convolutional
//! potentials, with its input VJP.

use burn::prelude::*;

use super::activation::Activation;
use super::linear::{Linear, LinearConfig};

/// `[batch, d_in] -> [batch, 1]`: `L2(act(L1(h)))`.
#[derive(Module, Debug)]
pub struct MlpHead {
    /// `d_in -> hidden`.
    pub l1: Linear,
    /// `hidden -> 1`.
    pub l2: Linear,
    /// Hidden activation.
    #[module(skip)]
    pub activation: Activation,
}

impl MlpHead {
    /// Creates the head.
    pub fn new(d_in: usize, hidden: usize, activation: Activation, device: &Device) -> Self {
        Self {
            l1: LinearConfig::new(d_in, hidden).init(device),
            l2: LinearConfig::new(hidden, 1).init(device),
            activation,
        }
    }

    /// Forward pass, keeping the hidden pre-activation.
    pub fn forward_cached(&self, h: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let pre = self.l1.forward(h);
        (self.l2.forward(self.activation.forward(pre.clone())), pre)
    }

    /// VJP `[batch, 1] -> [batch, d_in]` given the cached pre-activation.
    pub fn input_vjp(&self, pre: &Tensor<2>, grad_y: Tensor<2>) -> Tensor<2> {
        self.l1
            .input_vjp(self.activation.input_vjp(pre, self.l2.input_vjp(grad_y)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{f64_device, vjp_error};
    use burn::tensor::Distribution;

    #[test]
    fn input_vjp_matches_finite_differences() {
        let device = f64_device();
        let head = MlpHead::new(4, 6, Activation::GeluTanh, &device);
        let x = Tensor::<2>::random([3, 4], Distribution::Normal(0.0, 1.0), &device);
        let u = Tensor::<2>::random([3, 1], Distribution::Normal(0.0, 1.0), &device);
        let err = vjp_error(
            |x| head.forward_cached(x).0,
            |x, u| {
                let (_, pre) = head.forward_cached(x);
                head.input_vjp(&pre, u)
            },
            x,
            u,
            1e-5,
        );
        assert!(err < 1e-4, "max rel err {err:e}");
    }
}
