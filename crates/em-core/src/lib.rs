//! em-core: the Energy Matching engine (Balcerak et al., arXiv 2504.10612). It knows nothing
//! of proteins or images, only flat inputs `x: [batch, dim]`.
//!
//! - [`potential::Potential`]: a scalar potential V(x) with an explicit, differentiable input
//!   gradient, built from [`nn`] layers that carry their own vector-Jacobian products.
//! - [`loss`]: the optimal-transport flow-matching warm-up on `-grad V` ([`ot`] couples noise
//!   to data) and the contrastive term on Langevin negatives; [`train`] runs them (Adam,
//!   warm-up, clipping, EMA, [`checkpoint`]/resume); `train::cfm` is the OT-CFM loop that the
//!   domains' flow-matching baselines share.
//! - [`langevin`]: Langevin dynamics on `V + sum of energy::EnergyTerm`s (guidance,
//!   [`interaction`]) under a temperature [`schedule`] eps(t); on the CPU backend it runs a
//!   potential's fused f32 path from [`kernels`] when the potential offers one.

pub mod checkpoint;
pub mod data;
pub mod energy;
pub mod error;
pub mod gradcheck;
pub mod interaction;
pub mod kernels;
pub mod langevin;
pub mod lid;
pub mod loss;
pub mod nn;
pub mod ot;
pub mod potential;
pub mod schedule;
pub mod toy;
pub mod train;
