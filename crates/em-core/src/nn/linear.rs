//! Fully connected layer `y = x W + b` with its input vector-Jacobian product `g W^T`, both
//! ordinary tensor ops so the input gradient is differentiable in `W`.

use burn::module::{Initializer, Param};
use burn::prelude::*;

/// Configuration of a [`Linear`] layer.
#[derive(Config, Debug)]
pub struct LinearConfig {
    /// Input features.
    pub d_input: usize,
    /// Output features.
    pub d_output: usize,
    /// Whether to add a bias.
    #[config(default = true)]
    pub bias: bool,
}

/// `y = x W + b` with `W: [d_input, d_output]` (burn's row layout).
#[derive(Module, Debug)]
pub struct Linear {
    /// Weight `[d_input, d_output]`, Kaiming-uniform with bound `1/sqrt(d_input)`.
    pub weight: Param<Tensor<2>>,
    /// Bias `[d_output]`, same distribution.
    pub bias: Option<Param<Tensor<1>>>,
}

impl LinearConfig {
    /// Creates the layer with PyTorch-style uniform initialisation on `device`.
    pub fn init(&self, device: &Device) -> Linear {
        let init = Initializer::KaimingUniform {
            gain: 1.0 / 3f64.sqrt(),
            fan_out_only: false,
        };
        let weight = init.init_with(
            [self.d_input, self.d_output],
            Some(self.d_input),
            Some(self.d_output),
            device,
        );
        let bias = self.bias.then(|| {
            init.init_with(
                [self.d_output],
                Some(self.d_input),
                Some(self.d_output),
                device,
            )
        });
        Linear { weight, bias }
    }
}

impl Linear {
    /// `[batch, d_input] -> [batch, d_output]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let y = x.matmul(self.weight.val());
        match &self.bias {
            Some(b) => y + b.val().unsqueeze_dim(0),
            None => y,
        }
    }

    /// Vector-Jacobian product w.r.t. the input: `[batch, d_output] -> [batch, d_input]`.
    /// The layer is affine, so no cache is needed.
    pub fn input_vjp(&self, grad_y: Tensor<2>) -> Tensor<2> {
        grad_y.matmul(self.weight.val().transpose())
    }

    /// Output features.
    pub fn d_output(&self) -> usize {
        self.weight.dims()[1]
    }

    /// Input features.
    pub fn d_input(&self) -> usize {
        self.weight.dims()[0]
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
        let layer = LinearConfig::new(4, 3).init(&device);
        let x = Tensor::<2>::random([2, 4], Distribution::Normal(0.0, 1.0), &device);
        let u = Tensor::<2>::random([2, 3], Distribution::Normal(0.0, 1.0), &device);
        let err = vjp_error(|x| layer.forward(x), |_, u| layer.input_vjp(u), x, u, 1e-5);
        assert!(err < 1e-4, "max rel err {err:e}");
    }
}
