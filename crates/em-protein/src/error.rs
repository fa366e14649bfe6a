//! The error type of em-protein's data side: every variant names where (file, line,
//! column, record, field) and what (the offending value), ripgrep-style.

use std::path::PathBuf;

/// Errors from reading, checking and writing protein data.
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
    /// A letter outside `ARNDCQEGHILKMFPSTWYV` (case-insensitive).
    #[error(
        "{path}:{line}:{column}: unknown residue '{residue}' (expected one of ARNDCQEGHILKMFPSTWYV)"
    )]
    UnknownResidue {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (byte) on that line.
        column: usize,
        /// The offending character.
        residue: char,
    },
    /// A sequence whose length differs from the required fixed length.
    #[error("{path}:{line}: sequence has length {found}, expected {expected}{what}")]
    Ragged {
        /// The file.
        path: PathBuf,
        /// 1-based line where the sequence starts.
        line: usize,
        /// Its length.
        found: usize,
        /// The required length.
        expected: usize,
        /// Where the expected length came from (e.g. " (the length of the first sequence)").
        what: String,
    },
    /// A file with no sequences.
    #[error("{path}: no sequences (empty file)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A CSV header without a required column.
    #[error("{path}:1: missing column '{column}' (header has: {header})")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for.
        column: String,
        /// The header as found, comma-separated.
        header: String,
    },
    /// A score that is absent, not a number, or not finite.
    #[error("{path}:{line}: {field} '{value}' is not a finite number")]
    BadScore {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The column or header key.
        field: String,
        /// The text found ("" when missing).
        value: String,
    },
    /// A required score that is missing altogether (e.g. a FASTA header without `score=`).
    #[error("{path}:{line}: missing {field}")]
    MissingScore {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The column or header key.
        field: String,
    },
    /// The same sequence twice with different scores, under [`DuplicatePolicy::Error`](crate::io::DuplicatePolicy).
    #[error(
        "{path}:{line}: sequence repeats line {first_line} with a different score ({score} vs {first_score}); \
         use the 'average' duplicate policy to merge duplicates"
    )]
    ConflictingDuplicate {
        /// The file.
        path: PathBuf,
        /// 1-based line of the repeat.
        line: usize,
        /// 1-based line of the first occurrence.
        first_line: usize,
        /// Score at the first occurrence.
        first_score: f64,
        /// Score at the repeat.
        score: f64,
    },
    /// A malformed FASTA or CSV structure.
    #[error("{path}:{line}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A mutation token that does not parse (`A109D` is the expected shape).
    #[error("{path}:{line}: bad mutation '{token}': {why}")]
    BadMutation {
        /// The file (or `<string>`).
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The token.
        token: String,
        /// Why it was rejected.
        why: String,
    },
    /// A mutation whose wild-type residue differs from the wild-type sequence.
    #[error(
        "{path}:{line}: mutation '{token}': wild type has '{found}' at position {position}, not '{expected}'"
    )]
    WildTypeMismatch {
        /// The file (or `<string>`).
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The token.
        token: String,
        /// The position as written in the token.
        position: usize,
        /// The residue the token claims.
        expected: char,
        /// The residue the wild type has.
        found: char,
    },
    /// A file whose SHA-256 differs from the pinned checksum.
    #[error("{path}: SHA-256 mismatch: expected {expected}, found {found} (corrupt or wrong file)")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The pinned checksum.
        expected: String,
        /// The checksum of the bytes read.
        found: String,
    },
    /// A file expected in the data directory that is not there.
    #[error("{path}: not found in the data directory ({hint})")]
    MissingData {
        /// The file.
        path: PathBuf,
        /// How to get it.
        hint: String,
    },
    /// No data directory was given.
    #[error(
        "no data directory: pass --data-dir DIR or set the environment variable EMDESIGN_DATA=DIR \
         (a folder holding gfp/ and aav/, e.g. the shared benchmark mirror)"
    )]
    NoDataDir,
    /// An invalid setting (split percentiles, index base, ...).
    #[error("invalid {field} = {value}: {why}")]
    InvalidSetting {
        /// The setting's name.
        field: String,
        /// The value given.
        value: String,
        /// Why it is invalid.
        why: String,
    },
    /// A download that failed.
    #[error("{url}: download failed: {message}")]
    Download {
        /// The address.
        url: String,
        /// What went wrong.
        message: String,
    },
}

/// Result alias for em-protein's data side.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wrap an I/O error with the file it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
