//! `MlpPotential`: a residual MLP `x -> scalar` for flat inputs, with its input gradient
//! assembled from the layers' VJPs (the default potential for 2D toys and one-hot sequences).

use burn::prelude::*;

use super::activation::Activation;
use super::linear::{Linear, LinearConfig};
use super::residual::ResidualMlpBlock;
use crate::error::Error;
use crate::kernels::{HostPotential, is_host_f32, mlp::FusedMlp};
use crate::potential::Potential;

/// Configuration of an [`MlpPotential`].
#[derive(Config, Debug)]
pub struct MlpPotentialConfig {
    /// Flat input dimension.
    pub dim: usize,
    /// Hidden width.
    #[config(default = 128)]
    pub hidden: usize,
    /// Number of residual blocks.
    #[config(default = 3)]
    pub blocks: usize,
    /// Activation used everywhere.
    #[config(default = "Activation::Silu")]
    pub activation: Activation,
    /// Strength `alpha` of an optional confinement `alpha/2 ||x||^2` added to V, so that V is
    /// bounded below and grows far from the data (0 disables it).
    #[config(default = 0.0)]
    pub confinement: f64,
}

impl MlpPotentialConfig {
    /// Checks the fields (positive sizes, finite non-negative confinement).
    pub fn check(&self) -> Result<(), Error> {
        if self.dim == 0 {
            return Err(Error::config("dim", "must be > 0"));
        }
        if self.hidden == 0 {
            return Err(Error::config("hidden", "must be > 0"));
        }
        if !(self.confinement.is_finite() && self.confinement >= 0.0) {
            return Err(Error::config(
                "confinement",
                format!("must be finite and >= 0, got {}", self.confinement),
            ));
        }
        Ok(())
    }

    /// Builds the network on `device` (call [`MlpPotentialConfig::check`] first on user input).
    pub fn init(&self, device: &Device) -> MlpPotential {
        MlpPotential {
            input: LinearConfig::new(self.dim, self.hidden).init(device),
            blocks: (0..self.blocks)
                .map(|_| ResidualMlpBlock::new(self.hidden, self.activation, device))
                .collect(),
            head: LinearConfig::new(self.hidden, 1).init(device),
            activation: self.activation,
            confinement: self.confinement,
        }
    }
}

/// `V(x) = head(act(B_k(...B_1(act(W_in x + b))))) + alpha/2 ||x||^2`.
#[derive(Module, Debug)]
pub struct MlpPotential {
    /// Input layer `dim -> hidden`.
    pub input: Linear,
    /// Residual blocks of width `hidden`.
    pub blocks: Vec<ResidualMlpBlock>,
    /// Scalar head `hidden -> 1`.
    pub head: Linear,
    /// Activation after the input layer and before the head.
    #[module(skip)]
    pub activation: Activation,
    /// Confinement strength `alpha`.
    pub confinement: f64,
}

impl Potential for MlpPotential {
    fn dim(&self) -> usize {
        self.input.d_input()
    }

    fn energy(&self, x: Tensor<2>) -> Tensor<1> {
        let mut h = self.activation.forward(self.input.forward(x.clone()));
        for block in &self.blocks {
            h = block.forward_cached(h).0;
        }
        let v = self.head.forward(self.activation.forward(h));
        let [batch, _] = v.dims();
        add_confinement(v.reshape([batch]), x, self.confinement)
    }

    fn energy_and_grad(&self, x: Tensor<2>) -> (Tensor<1>, Tensor<2>) {
        let pre_in = self.input.forward(x.clone());
        let mut h = self.activation.forward(pre_in.clone());
        let mut caches = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let (out, cache) = block.forward_cached(h);
            h = out;
            caches.push(cache);
        }
        let v = self.head.forward(self.activation.forward(h.clone()));
        let [batch, _] = v.dims();

        let ones = Tensor::<2>::ones([batch, 1], &v.device());
        let mut g = self.activation.input_vjp(&h, self.head.input_vjp(ones));
        for (block, cache) in self.blocks.iter().zip(&caches).rev() {
            g = block.input_vjp(cache, g);
        }
        let g = self.input.input_vjp(self.activation.input_vjp(&pre_in, g));

        let energy = add_confinement(v.reshape([batch]), x.clone(), self.confinement);
        (energy, add_confinement_grad(g, x, self.confinement))
    }

    fn host_kernel(&self) -> Option<Box<dyn HostPotential>> {
        is_host_f32(&self.input.weight.val()).then(|| Box::new(FusedMlp::new(self)) as _)
    }
}

/// `v + alpha/2 ||x_b||^2` per sample (no-op for `alpha = 0`).
pub(crate) fn add_confinement(v: Tensor<1>, x: Tensor<2>, alpha: f64) -> Tensor<1> {
    if alpha == 0.0 {
        return v;
    }
    let [batch, _] = x.dims();
    v + x.powi_scalar(2).sum_dim(1).reshape([batch]) * (0.5 * alpha)
}

/// `g + alpha x` (no-op for `alpha = 0`).
pub(crate) fn add_confinement_grad(g: Tensor<2>, x: Tensor<2>, alpha: f64) -> Tensor<2> {
    if alpha == 0.0 { g } else { g + x * alpha }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{f64_device, input_gradient_error};

    #[test]
    fn mlp_input_gradient_matches_finite_differences() {
        let device = f64_device();
        device.seed(7);
        for activation in [
            Activation::Silu,
            Activation::Softplus,
            Activation::Tanh,
            Activation::GeluTanh,
        ] {
            let model = MlpPotentialConfig::new(3)
                .with_hidden(16)
                .with_blocks(2)
                .with_activation(activation)
                .with_confinement(0.3)
                .init(&device);
            let x = Tensor::<2>::random(
                [4, 3],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                &device,
            );
            let err = input_gradient_error(&model, x, 1e-5);
            assert!(err < 1e-4, "{activation:?}: max rel err {err:e}");
            eprintln!("mlp {activation:?}: max rel err {err:e}");
        }
    }

    #[test]
    fn config_check_rejects_bad_fields() {
        assert!(MlpPotentialConfig::new(0).check().is_err());
        assert!(
            MlpPotentialConfig::new(2)
                .with_confinement(-1.0)
                .check()
                .is_err()
        );
        assert!(MlpPotentialConfig::new(2).check().is_ok());
    }
}
