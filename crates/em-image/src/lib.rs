//! em-image: the image benchmark that checks the Energy Matching engine on the domain where
//! the method was born (MNIST / Fashion-MNIST), with FID and KID.

pub mod cfm;
pub mod energy_net;
pub mod error;
pub mod fid;
pub mod frechet;
pub mod grid;
pub mod idx;
pub mod inception;
pub mod kid;
pub mod train;

pub use error::{Error, Result};
