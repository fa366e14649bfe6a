//! A lab's own measurements as a training table: a CSV of `sequence,score` rows, or a wild
//! type plus a CSV of mutation lists (`A23G:K45R,1.7`), checked row by row (file:line).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::mutations::{MutationOptions, read_mutations};
use crate::io::{DuplicatePolicy, LengthRule, ReadOptions, ReadReport, apply_duplicates};
use crate::sequence::{ScoredSequences, Sequence};

/// Settings of a user's data set (workflow `[data.file]`); unknown fields are rejected.
/// Exactly one of `sequences` and `mutations` is set; `mutations` needs `wild_type`.
/// Repeated sequences are merged into one row with the mean of their scores (our choice:
/// replicate measurements of a variant are averaged, as the GGS ground truths are).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserDataConfig {
    /// CSV (optionally gzipped) with a sequence and a score column.
    pub sequences: Option<PathBuf>,
    /// CSV (optionally gzipped) with a mutation-list column and a score column.
    pub mutations: Option<PathBuf>,
    /// The wild type as residue letters (required with `mutations`; with `sequences` it
    /// enables constraints and edits from the wild type).
    pub wild_type: Option<String>,
    /// Column holding the sequences (default `sequence`).
    pub sequence_column: String,
    /// Column holding the mutation lists (default `mutations`; `wt` means none).
    pub mutation_column: String,
    /// Column holding the measured scores, higher is better (default `score`).
    pub score_column: String,
    /// Number of the wild type's first residue in mutation tokens and constraint
    /// positions (default 1: 1-based numbering).
    pub first_position: usize,
    /// Separator between the mutations of one list (default `:`).
    pub separator: char,
    /// Fraction of rows held out (seeded) to validate the predictor (default 0.1).
    pub holdout: f64,
}

impl Default for UserDataConfig {
    fn default() -> Self {
        Self {
            sequences: None,
            mutations: None,
            wild_type: None,
            sequence_column: "sequence".into(),
            mutation_column: "mutations".into(),
            score_column: "score".into(),
            first_position: 1,
            separator: ':',
            holdout: 0.1,
        }
    }
}

/// A loaded user data set.
#[derive(Debug, Clone, PartialEq)]
pub struct UserData {
    /// The wild type, when given.
    pub wild_type: Option<Sequence>,
    /// One row per distinct sequence (scores of repeats averaged).
    pub table: ScoredSequences,
    /// Rows read and repeats merged.
    pub report: ReadReport,
    /// The file read.
    pub file: PathBuf,
}

fn invalid(field: &str, value: impl ToString, why: impl Into<String>) -> Error {
    Error::InvalidSetting {
        field: format!("data.file.{field}"),
        value: value.to_string(),
        why: why.into(),
    }
}

impl UserDataConfig {
    /// The same settings with relative file paths taken from `base` (the workflow's folder).
    pub fn resolved(&self, base: &Path) -> Self {
        let join = |p: &Option<PathBuf>| p.as_ref().map(|p| base.join(p));
        Self {
            sequences: join(&self.sequences),
            mutations: join(&self.mutations),
            ..self.clone()
        }
    }

    /// The wild type, checked (error names `data.file.wild_type` and the column).
    pub fn wild_type(&self) -> Result<Option<Sequence>> {
        let Some(w) = &self.wild_type else {
            return Ok(None);
        };
        let s = Sequence::parse(w.trim().as_bytes()).map_err(|e| {
            invalid(
                "wild_type",
                w,
                format!("column {}: unknown residue '{}'", e.column, e.residue),
            )
        })?;
        if s.is_empty() {
            return Err(invalid("wild_type", w, "is empty"));
        }
        Ok(Some(s))
    }

    /// Checks the settings that need no file.
    pub fn check(&self) -> Result<()> {
        if !(self.holdout.is_finite() && (0.0..0.9).contains(&self.holdout)) {
            return Err(invalid("holdout", self.holdout, "must be in [0, 0.9)"));
        }
        match (&self.sequences, &self.mutations) {
            (Some(_), Some(_)) => Err(invalid(
                "mutations",
                "(set)",
                "give either `sequences` or `mutations`, not both",
            )),
            (None, None) => Err(invalid(
                "sequences",
                "(unset)",
                "give `sequences` (a sequence,score CSV) or `mutations` (a mutation-list CSV \
                 with `wild_type`)",
            )),
            (None, Some(_)) if self.wild_type.is_none() => Err(invalid(
                "wild_type",
                "(unset)",
                "a mutation-list file needs the wild type it mutates",
            )),
            _ => self.wild_type().map(|_| ()),
        }
    }

    /// Rows held out to validate the predictor: `round(holdout * rows)`, at least 1 when
    /// `holdout > 0`, always leaving a training row.
    pub fn holdout_rows(&self, rows: usize) -> usize {
        if self.holdout == 0.0 || rows < 2 {
            return 0;
        }
        ((self.holdout * rows as f64).round() as usize).clamp(1, rows - 1)
    }
}

/// Reads the data set `cfg` names (paths as given: resolve them first). Errors name the
/// file and line (and column, for residues): unequal lengths (against the wild type when
/// given, else the first row), unknown residues, bad mutation tokens, a mutation whose
/// wild-type residue does not match, missing or non-finite scores.
///
/// ```
/// use em_protein::user_data::{UserDataConfig, load};
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("m.csv");
/// std::fs::write(&p, "mutations,score\nwt,1.0\nA1G:R2K,2.0\nA1G:R2K,3.0\n").unwrap();
/// let cfg = UserDataConfig { mutations: Some(p), wild_type: Some("ARN".into()), ..Default::default() };
/// let d = load(&cfg).unwrap();
/// assert_eq!(d.table.sequences()[1].to_string(), "GKN");
/// assert_eq!(d.table.scores(), &[1.0, 2.5]); // repeats averaged
/// ```
pub fn load(cfg: &UserDataConfig) -> Result<UserData> {
    cfg.check()?;
    let wild_type = cfg.wild_type()?;
    let file = cfg
        .sequences
        .clone()
        .or_else(|| cfg.mutations.clone())
        .expect("checked: one file is set");
    let records = read_rows(cfg, &file, wild_type.as_ref(), None)?;
    let (rows, report) = apply_duplicates(records, &file, DuplicatePolicy::Average)?;
    let (seqs, scores): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
    let table = ScoredSequences::new(seqs, scores).map_err(|e| Error::Format {
        path: file.clone(),
        line: 0,
        message: e.to_string(),
    })?;
    Ok(UserData {
        wild_type,
        table,
        report,
        file,
    })
}

/// Reads `path` in the format `cfg` describes (a sequence CSV or mutation lists applied to
/// `wild_type`) into records with their lines, repeats not merged: the data file itself, or
/// a later file of measurements in the same format (a lab round's results). Sequences must
/// be `length` long when given, else the wild type's, else the first row's.
pub fn read_rows(
    cfg: &UserDataConfig,
    path: &Path,
    wild_type: Option<&Sequence>,
    length: Option<usize>,
) -> Result<Vec<crate::io::Record>> {
    if cfg.mutations.is_some() {
        let wt = wild_type.ok_or_else(|| {
            invalid(
                "wild_type",
                "(unset)",
                "a mutation-list file needs the wild type it mutates",
            )
        })?;
        let options = MutationOptions {
            genotype_column: cfg.mutation_column.clone(),
            score_column: cfg.score_column.clone(),
            index_base: cfg.first_position,
            separator: cfg.separator,
            skip_stops: false,
        };
        return Ok(read_mutations(path, wt, &options)?.0);
    }
    let options = ReadOptions {
        sequence_column: cfg.sequence_column.clone(),
        score_column: cfg.score_column.clone(),
        length: match (length, wild_type) {
            (Some(n), _) => LengthRule::Exactly(n),
            (None, Some(w)) => LengthRule::Exactly(w.len()),
            (None, None) => LengthRule::SameAsFirst,
        },
        duplicates: DuplicatePolicy::Average,
        ..ReadOptions::default()
    };
    crate::io::read_records(path, &options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn err(cfg: &UserDataConfig) -> String {
        load(cfg).unwrap_err().to_string()
    }

    #[test]
    fn sequence_csv_with_named_columns_and_errors_with_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "s.csv", "seq,fit\nARN,1\nARD,2\nARN,3\n");
        let cfg = UserDataConfig {
            sequences: Some(p.clone()),
            sequence_column: "seq".into(),
            score_column: "fit".into(),
            ..Default::default()
        };
        let d = load(&cfg).unwrap();
        assert_eq!(d.table.scores(), &[2.0, 2.0]);
        assert_eq!((d.report.rows, d.report.merged), (3, 1));
        write(dir.path(), "s.csv", "seq,fit\nARN,1\nAR,2\n");
        assert!(err(&cfg).ends_with("s.csv:3: sequence has length 2, expected 3 (the length of the first sequence, line 2)"), "{}", err(&cfg));
        write(dir.path(), "s.csv", "seq,fit\nARN,1\nAXN,2\n");
        assert!(
            err(&cfg)
                .ends_with("s.csv:3:2: unknown residue 'X' (expected one of ARNDCQEGHILKMFPSTWYV)"),
            "{}",
            err(&cfg)
        );
        let with_wt = UserDataConfig {
            wild_type: Some("ARNA".into()),
            ..cfg.clone()
        };
        write(dir.path(), "s.csv", "seq,fit\nARNA,1\nARN,2\n");
        assert!(
            err(&with_wt).ends_with("s.csv:3: sequence has length 3, expected 4"),
            "{}",
            err(&with_wt)
        );
    }

    #[test]
    fn mutation_lists_check_the_wild_type_and_the_numbering() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "m.csv",
            "mutations,score\nR11K,1\nA10G:N12D,2\n",
        );
        let cfg = UserDataConfig {
            mutations: Some(p),
            wild_type: Some("ARN".into()),
            first_position: 10,
            ..Default::default()
        };
        let d = load(&cfg).unwrap();
        let got: Vec<String> = d
            .table
            .sequences()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["AKN", "GRD"]);
        write(
            dir.path(),
            "m.csv",
            "mutations,score\nR11K,1\nA10G:R12D,2\n",
        );
        assert!(
            err(&cfg)
                .ends_with("m.csv:3: mutation 'R12D': wild type has 'N' at position 12, not 'R'"),
            "{}",
            err(&cfg)
        );
        write(dir.path(), "m.csv", "mutations,score\nR11B,1\n");
        assert!(
            err(&cfg).contains("m.csv:2: bad mutation 'R11B': unknown new residue 'B'"),
            "{}",
            err(&cfg)
        );
    }

    #[test]
    fn settings_are_checked_and_name_the_field() {
        let bad = |cfg: UserDataConfig, want: &str| {
            let e = cfg.check().unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        };
        bad(UserDataConfig::default(), "data.file.sequences");
        bad(
            UserDataConfig {
                mutations: Some("m.csv".into()),
                ..Default::default()
            },
            "data.file.wild_type",
        );
        bad(
            UserDataConfig {
                sequences: Some("s.csv".into()),
                wild_type: Some("AZ".into()),
                ..Default::default()
            },
            "column 2: unknown residue 'Z'",
        );
        bad(
            UserDataConfig {
                sequences: Some("s.csv".into()),
                holdout: 0.95,
                ..Default::default()
            },
            "data.file.holdout",
        );
        let c = UserDataConfig::default();
        assert_eq!(
            (c.holdout_rows(1000), c.holdout_rows(3), c.holdout_rows(1)),
            (100, 1, 0)
        );
    }
}
