//! The two Energy Matching losses: the OT flow-matching warm-up on `-grad V` ([`flow`]) and
//! the contrastive term on detached Langevin negatives ([`contrastive`]).

pub mod contrastive;
pub mod flow;

pub use contrastive::{NegativeChains, NegativeInit, cd_loss, negatives};
pub use flow::{FlowBatch, flow_loss, time_weight};
