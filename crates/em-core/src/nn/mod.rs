//! Layers that carry their own input vector-Jacobian products as differentiable tensor ops,
//! and the potentials built from them ([`MlpPotential`], [`SeqConvPotential`],
//! [`ConvPotential2d`]).
//!
//! Every layer implements [`VjpLayer`]: `forward_cached(x) -> (y, cache)` and
//! `input_vjp(&cache, grad_y) -> grad_x` (affine layers also have a cache-free inherent
//! `input_vjp(grad_y)`); [`pool`] holds the linear pooling maps and their VJPs. A potential runs the forward pass, then the
//! VJPs in reverse starting from `dV/dout = 1`, which gives `grad_x V` as an ordinary tensor
//! expression of the parameters: burn's first-order autodiff of a loss on it trains them.

pub mod activation;
pub mod conv1d;
pub mod conv2d;
pub mod conv_potential2d;
pub mod head;
pub mod layer;
pub mod linear;
pub mod mlp;
pub mod pool;
pub mod position_sum;
pub mod residual;
pub mod seq_conv;

pub use activation::Activation;
pub use conv_potential2d::{ConvPotential2d, ConvPotential2dConfig, ImageReadout};
pub use conv1d::{Conv1d, Conv1dConfig};
pub use conv2d::{Conv2d, Conv2dConfig};
pub use head::MlpHead;
pub use layer::VjpLayer;
pub use linear::{Linear, LinearConfig};
pub use mlp::{MlpPotential, MlpPotentialConfig};
pub use position_sum::PositionSum;
pub use residual::{ResidualConv1dBlock, ResidualConv2dBlock, ResidualMlpBlock};
pub use seq_conv::{SeqConvPotential, SeqConvPotentialConfig, SeqReadout};
