//! The engine's one error type: every variant names what went wrong and where (field, path,
//! step, row/column), so callers can print it without adding context.

use std::path::PathBuf;

/// Errors returned by em-core (configuration, data, training, checkpoints).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration field holds a value the engine cannot use.
    #[error("invalid config: field `{field}`: {why}")]
    InvalidConfig {
        /// Field name, dotted for nested fields (`langevin.dt`).
        field: String,
        /// What is wrong with its value.
        why: String,
    },
    /// Input data is malformed (empty, ragged, non-finite).
    #[error("invalid data: {what}")]
    Data {
        /// What is wrong and where (row/column).
        what: String,
    },
    /// A tensor or matrix has the wrong shape.
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    Shape {
        /// Which input.
        what: String,
        /// Expected shape, in words.
        expected: String,
        /// Shape received.
        got: String,
    },
    /// A loss, gradient or sample became NaN or infinite.
    #[error("non-finite value at step {step}: {what}")]
    NonFinite {
        /// Training or sampling step at which it was seen.
        step: u64,
        /// Which quantity.
        what: String,
    },
    /// A checkpoint could not be written, read or applied.
    #[error("checkpoint {}: {why}", path.display())]
    Checkpoint {
        /// Checkpoint file.
        path: PathBuf,
        /// What failed.
        why: String,
        /// Underlying I/O error, when there is one.
        #[source]
        source: Option<std::io::Error>,
    },
    /// Writing the loss log failed.
    #[error("loss log {}: {source}", path.display())]
    Log {
        /// Log file.
        path: PathBuf,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The optimal-transport assignment solver failed.
    #[error("OT assignment failed for a {n}x{n} cost matrix: {why}")]
    Assignment {
        /// Batch size.
        n: usize,
        /// Solver message.
        why: String,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidConfig`].
    pub fn config(field: impl Into<String>, why: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field: field.into(),
            why: why.into(),
        }
    }

    /// Shorthand for [`Error::Checkpoint`] without an I/O source.
    pub fn checkpoint(path: impl Into<PathBuf>, why: impl Into<String>) -> Self {
        Error::Checkpoint {
            path: path.into(),
            why: why.into(),
            source: None,
        }
    }
}

/// Result alias for em-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_field_and_path() {
        let e = Error::config("lr", "must be > 0, got -1");
        assert_eq!(
            e.to_string(),
            "invalid config: field `lr`: must be > 0, got -1"
        );
        let e = Error::checkpoint("/tmp/x.emck", "bad magic");
        assert!(e.to_string().contains("/tmp/x.emck"));
        let e = Error::NonFinite {
            step: 7,
            what: "flow loss".into(),
        };
        assert_eq!(e.to_string(), "non-finite value at step 7: flow loss");
    }
}
