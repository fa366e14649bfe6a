//! em-protein: the protein side of emdesign, before and around the generative model.
//!
//! - [`alphabet`] and [`sequence::Sequence`]: the one residue index table and checked
//!   sequences; [`io`] reads and writes FASTA, CSV and mutation lists with errors that name
//!   file, line and column.
//! - [`benchmark`]: the GGS task splits (GFP/AAV x medium/hard) from the ground truth in
//!   [`datasets`]; [`gfp_splits`]: GGS's own GFP split files, the GFP default.
//! - [`cnn`], [`oracle`], [`predictor`]: the GGS CNN fitness model as a burn module, loaded
//!   from safetensors, differentiable in its one-hot input; training a predictor on a split;
//!   [`ensemble`]: k of them trained from different seeds, their mean and spread.
//! - [`metrics`]: the GGS protocol's fitness, diversity and novelty.
//! - [`user_data`], [`constraints`], [`selection`], [`rounds`]: a lab's own data, the
//!   constraints its designs obey, which ranked designs are kept (never a measured one), and
//!   lab rounds that merge new measurements into the training data with their round.
//! - [`vlgpo`]: VLGPO (ICML 2025) as a bench method, its latent flow prior loaded from the
//!   release and its guided posterior sampler.
//! - [`vae`], [`latent_guidance`], [`latent`]: VLGPO's sequence VAE (loaded from its published
//!   checkpoints or trained here) and predictor guidance through its decoder, for Energy
//!   Matching in the VAE's latent.

pub mod alphabet;
pub mod baselines;
pub mod benchmark;
pub mod cnn;
pub mod constraints;
pub mod datasets;
pub mod design;
pub mod edit_distance;
pub mod ehrlich;
pub mod energy_model;
pub mod ensemble;
pub mod error;
pub mod gfp_splits;
pub mod guidance;
pub mod io;
pub mod latent;
pub mod latent_guidance;
pub mod metrics;
pub mod oracle;
pub mod own_oracle;
pub mod predictor;
pub mod representation;
pub mod round_log;
pub mod rounds;
pub mod selection;
pub mod sequence;
pub mod smoothed_predictor;
pub mod smoothing;
pub mod stats;
pub mod user_data;
pub mod vae;
pub mod vlgpo;
