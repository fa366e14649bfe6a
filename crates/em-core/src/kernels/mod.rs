//! Plain-f32 CPU kernels behind the engine's traits: a safe row-major GEMM wrapper
//! ([`gemm`]), fused bias + activation passes with a vectorised `exp` ([`act`]), the fused
//! potentials ([`mlp`], [`seq_conv`]) and the host Langevin loop that runs them
//! ([`langevin`]). The burn tensor paths stay the reference and the autodiff/`cuda` path;
//! these run where a caller holds plain CPU f32 data (Langevin sampling, OT costs).

pub mod act;
pub mod gemm;
pub mod langevin;
pub mod mlp;
pub mod seq_conv;
pub mod seq_conv_train;
pub mod tile_gemm;

/// Rows per independent work unit of the fused kernels. Fixed (ours), never derived from the
/// thread count, so a result does not depend on how many threads rayon runs.
pub const ROW_CHUNK: usize = 32;

use burn::prelude::*;
use burn::tensor::DType;

/// Energy and input gradient of a potential on plain f32 host buffers: the fused counterpart
/// of [`crate::potential::Potential::energy_and_grad`], used by samplers on the CPU backend.
pub trait HostPotential: Sync {
    /// Flat input dimension.
    fn dim(&self) -> usize;

    /// `x: [batch, dim]` row-major in; per-sample energy `[batch]` and gradient
    /// `[batch, dim]` out (`energy.len()` gives the batch).
    fn energy_and_grad(&self, x: &[f32], energy: &mut [f32], grad: &mut [f32]);
}

/// Parameter gradients of the Energy Matching losses on plain f32 host buffers: the fused
/// counterpart of burn's autodiff through [`crate::loss::flow_loss`] and
/// [`crate::loss::cd_loss`], used by the trainer on the CPU backend. Gradients are flat
/// vectors in the kernel's own layout; [`HostTrainer::gradients`] maps one to burn's
/// parameters.
pub trait HostTrainer: Sync {
    /// Flat input dimension.
    fn dim(&self) -> usize;

    /// The flow loss `(1 / B) sum_b w_b (1 / D) |grad V(x_b) + target_b|^2` (`target` is
    /// `x1 - x0`, so this is the squared error of `-grad V` against it) and its parameter
    /// gradient, for `x, target: [B, dim]` and `weight: [B]`.
    fn flow_loss_grad(&self, x: &[f32], target: &[f32], weight: &[f32]) -> (f64, Vec<f32>);

    /// Energies `V(x_b)` and the parameter gradient of `sum_b coef_b V(x_b)`.
    fn energy_grad(&self, x: &[f32], coef: &[f32]) -> (Vec<f32>, Vec<f32>);

    /// A flat gradient as burn tensors keyed by parameter id, on `device`.
    fn gradients(&self, grad: &[f32], device: &Device) -> burn::optim::GradientsParams;
}

/// Whether `t` lives on the flex CPU device in f32, with or without autodiff: where the
/// trainer can use a [`HostTrainer`].
pub fn is_flex_f32<const D: usize>(t: &Tensor<D>) -> bool {
    t.device().inner() == Device::flex() && t.dtype() == DType::F32
}

/// Whether `t` lives on the plain (non-autodiff) flex CPU device in f32: the case the fused
/// kernels reproduce. f64 devices (gradchecks) and autodiff or GPU devices keep burn's path.
pub fn is_host_f32<const D: usize>(t: &Tensor<D>) -> bool {
    let device = t.device();
    !device.is_autodiff() && device == Device::flex() && t.dtype() == DType::F32
}

/// A tensor's values as a row-major `Vec<f32>` (any float dtype).
pub fn host_values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("converted to f32")
}
