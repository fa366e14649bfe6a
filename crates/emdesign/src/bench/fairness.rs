//! The terms of the EM vs OT-CFM comparison, stated in `bench.md`'s budget note: both priors
//! train the same steps, both samplers guide over the same window `[tau*, t_end)` at the same
//! `dt`, and both networks' parameter counts are given (with their ratio).

use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use em_protein::baselines::ot_cfm::flow_steps;
use em_protein::design::DesignConfig;

use super::config::BenchPlan;
use super::tasks::ot_cfm_net;
use crate::workflow::protein::Protein;

/// Trainable parameters of a task's two priors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSizes {
    /// The energy network `V_theta`.
    pub energy: usize,
    /// The OT-CFM vector field.
    pub field: usize,
}

/// Parameter counts of the energy of `protein` and of the bench's OT-CFM field, for
/// sequences of `length` residues (freshly initialised: the counts do not depend on
/// training).
pub fn model_sizes(plan: &BenchPlan, protein: &Protein, length: usize) -> Result<ModelSizes> {
    let device = Device::flex();
    let energy = protein
        .energy
        .config(plan.seed)
        .model
        .seq_conv(length)?
        .init(&device)
        .num_params();
    let field = ot_cfm_net(plan, length).init(&device).num_params();
    Ok(ModelSizes { energy, field })
}

/// The fairness statement of one task: training steps, guidance window and model sizes.
pub fn statement(protein: &Protein, sampler: &DesignConfig, sizes: ModelSizes) -> String {
    let d = &protein.design;
    let ratio = sizes.energy.max(sizes.field) as f64 / sizes.energy.min(sizes.field).max(1) as f64;
    format!(
        "the energy and the OT-CFM field both train {} steps (batch {}, lr {}, EMA {}); \
         guidance over t in [{}, {}) at dt {} for both (OT-CFM: its flow covers [0, 1] in the \
         first {} steps, guidance alone after); parameters: energy {}, OT-CFM field {} \
         ({ratio:.2}x{})",
        protein.energy.train.steps,
        protein.energy.train.batch_size,
        protein.energy.train.lr,
        protein.energy.train.ema_decay,
        d.tau_star,
        d.t_end,
        d.dt,
        flow_steps(sampler),
        sizes.energy,
        sizes.field,
        if ratio <= 1.5 { ", within 1.5x" } else { "" }
    )
}
