//! The error type of em-image: every variant names the file (or the argument) and what is
//! wrong with it, so a bad IDX or CIFAR-10 file or a missing weight file reads as one clear
//! line.

use std::path::PathBuf;

/// Errors from reading image data and weights, checking inputs and running the benchmark.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O failure on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An IDX file whose header or size is wrong (bad magic, wrong rank, truncated, ...).
    #[error("{path}: not a valid IDX file: {what}")]
    Idx {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the values found and expected.
        what: String,
    },
    /// A CIFAR-10 binary batch file that is missing or malformed (size, label).
    #[error("{path}: CIFAR-10 binary batch: {what}")]
    Cifar {
        /// The batch file.
        path: PathBuf,
        /// What is wrong, with the values found and expected.
        what: String,
    },
    /// An image file and a label file that do not go together.
    #[error("{images} and {labels}: {what}")]
    Mismatch {
        /// The image file.
        images: PathBuf,
        /// The label file.
        labels: PathBuf,
        /// What differs.
        what: String,
    },
    /// The Inception weights could not be loaded or are incomplete.
    #[error("{path}: cannot load FID Inception weights: {what}")]
    Weights {
        /// The safetensors file.
        path: PathBuf,
        /// What went wrong (missing tensors, shape errors, ...).
        what: String,
    },
    /// A PNG that could not be written.
    #[error("{path}: cannot write PNG: {what}")]
    Png {
        /// The output file.
        path: PathBuf,
        /// The encoder's message.
        what: String,
    },
    /// An argument that is out of range or inconsistent (empty set, wrong dimension, ...).
    #[error("invalid {what}: {why}")]
    Invalid {
        /// The argument or field.
        what: String,
        /// Why it is rejected, with the value.
        why: String,
    },
    /// A training or sampling run that produced NaN or infinity.
    #[error("non-finite {what} at step {step}")]
    NonFinite {
        /// The quantity (loss, samples, ...).
        what: String,
        /// The step at which it was seen.
        step: usize,
    },
    /// An error from the Energy Matching engine (config check, training, sampling).
    #[error(transparent)]
    Engine(#[from] em_core::error::Error),
    /// A piece of the engine that em-image needs but that is not available in this build.
    #[error("not available: {what}")]
    Unavailable {
        /// What is missing and why.
        what: String,
    },
}

/// Shorthand for results in this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An [`Error::Invalid`] from any two displayable parts.
    pub fn invalid(what: impl Into<String>, why: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            why: why.into(),
        }
    }
}
