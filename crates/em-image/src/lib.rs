//! em-image: the image benchmark that checks the Energy Matching engine on the domain where
//! the method was born (MNIST / Fashion-MNIST, and CIFAR-10 in colour), with FID and KID.
//!
//! Data flows one way: [`idx::Images`] (8-bit stacks `[n, c, h, w]`, greyscale or RGB, from
//! the checked IDX reader, raw or gzipped, or the [`cifar`] binary reader) -> models ->
//! samples -> metrics -> PNGs.
//!
//! - Models: [`train::train_em`] trains em-core's `ConvPotential2d` (sized by
//!   [`energy_net::potential_config`]) and [`train::sample_em`] draws Langevin samples;
//!   [`cfm::train_cfm`] / [`cfm::sample_cfm`] are the OT-CFM baseline with the same coupling,
//!   steps and NFE. Both return [`train::ImageSamples`].
//! - Metrics: [`fid::FidExtractor`] runs the FID InceptionV3 ([`inception`]) with pytorch-fid
//!   conventions; [`fid::fid_kid`] gives FID ([`frechet`], f64) and KID ([`kid`]).
//! - Output: [`grid`] writes 8x8 sample grids and Langevin trajectory strips as PNG (grey or
//!   RGB).

pub mod cfm;
pub mod cifar;
pub mod energy_net;
pub mod error;
pub mod fid;
pub mod frechet;
pub mod grid;
pub mod idx;
pub mod inception;
pub mod kid;
pub mod train;

pub use cfm::{OdeMethod, VectorField, VectorFieldConfig, sample_cfm, train_cfm};
pub use error::{Error, Result};
pub use fid::{FidExtractor, FidKid, fid_kid, fid_kid_images};
pub use idx::Images;
pub use train::{ImageSamples, sample_em, train_em};
