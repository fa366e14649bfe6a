//! Extra energy terms added to the potential at sampling time (predictor guidance, repulsion
//! between samples). The sampler sees one trait; later crates add their own terms.

use burn::prelude::*;

/// An energy term `E(x, t)` over a batch, added to `V` inside Langevin dynamics.
///
/// `t` is sampler time and `eps` the current temperature eps(t), because several published
/// terms (guidance, interaction) scale with eps(t).
pub trait EnergyTerm {
    /// Short name used in logs and reports.
    fn name(&self) -> &str;

    /// Per-sample energy `[batch, dim] -> [batch]` (a batch-coupled term such as repulsion
    /// splits its total evenly over samples).
    fn energy(&self, x: Tensor<2>, t: f64, eps: f64) -> Tensor<1>;

    /// Gradient of the term's total energy with respect to `x`: `[batch, dim]`.
    fn grad(&self, x: Tensor<2>, t: f64, eps: f64) -> Tensor<2>;
}
