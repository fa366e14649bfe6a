//! The scalar potential V(x) and its explicit input gradient: the one trait the whole engine
//! is written against. burn has no double backward, so `grad_x` is built from ordinary
//! differentiable tensor ops and standard backprop through it trains the parameters.

use burn::prelude::*;

use crate::kernels::{HostPotential, HostTrainer};

/// A time-free scalar potential over flat inputs `x: [batch, dim]`.
///
/// Implementors must make [`Potential::grad_x`] an explicit expression of the parameters (each
/// layer's vector-Jacobian product written as tensor ops), so that a loss on `-grad_x V` can be
/// differentiated with respect to the parameters by burn's ordinary autodiff.
pub trait Potential {
    /// Flat input dimension `dim` this potential expects.
    fn dim(&self) -> usize;

    /// Per-sample energy `V(x_b)`: `[batch, dim] -> [batch]`.
    fn energy(&self, x: Tensor<2>) -> Tensor<1>;

    /// Input gradient `d V(x_b) / d x_b` for every sample: `[batch, dim] -> [batch, dim]`.
    fn grad_x(&self, x: Tensor<2>) -> Tensor<2> {
        self.energy_and_grad(x).1
    }

    /// Energy and input gradient from one forward pass (the default recomputes nothing twice
    /// when overridden; implementors usually override this one).
    fn energy_and_grad(&self, x: Tensor<2>) -> (Tensor<1>, Tensor<2>);

    /// A fused plain-f32 CPU kernel for [`Potential::energy_and_grad`], when this potential
    /// has one and its parameters sit on the plain flex device in f32. Samplers call it once
    /// per run (it snapshots the weights) and use it instead of the tensor path; the default
    /// is `None` (burn's path everywhere).
    fn host_kernel(&self) -> Option<Box<dyn HostPotential>> {
        None
    }

    /// Hand-derived parameter gradients of the Energy Matching losses on plain f32, when
    /// this potential has them and its parameters sit on the flex device in f32 (with or
    /// without autodiff). The trainer snapshots it once per step and uses it instead of
    /// burn's autodiff; the default is `None` (burn's autodiff everywhere).
    fn host_trainer(&self) -> Option<Box<dyn HostTrainer>> {
        None
    }
}
