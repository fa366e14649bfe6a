//! Lab rounds: the results of measured designs, checked against what was proposed, merged
//! into the training data with their round as provenance ([`History`], `measured.csv`);
//! `round_log` keeps one summary row per round.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::{self, DuplicatePolicy, LengthRule, ReadOptions, ScoreRule};
use crate::sequence::{ScoredSequences, Sequence};
use crate::user_data::{UserDataConfig, read_rows};

/// One measurement and the round it came from (0: the original data).
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The measured sequence.
    pub sequence: Sequence,
    /// Its score, in the user's units (higher is better).
    pub score: f64,
    /// The round whose results file held it.
    pub round: usize,
}

/// Everything measured so far, in round order: the original data (round 0, repeats already
/// averaged) and each round's results (repeats within one file averaged). A sequence
/// measured in two rounds has two rows; [`History::merged`] averages them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    rows: Vec<Measurement>,
}

impl History {
    /// Round 0: the original training table.
    pub fn from_data(table: &ScoredSequences) -> Self {
        let rows = table
            .sequences()
            .iter()
            .zip(table.scores())
            .map(|(s, &y)| Measurement {
                sequence: s.clone(),
                score: y,
                round: 0,
            })
            .collect();
        Self { rows }
    }

    /// The rows, in round order.
    pub fn rows(&self) -> &[Measurement] {
        &self.rows
    }

    /// The last round in the history (0 for the original data alone).
    pub fn last_round(&self) -> usize {
        self.rows.iter().map(|m| m.round).max().unwrap_or(0)
    }

    /// This history plus round `round`'s results.
    pub fn with_round(&self, round: usize, results: &[(Sequence, f64)]) -> Self {
        let mut rows = self.rows.clone();
        rows.extend(results.iter().map(|(s, y)| Measurement {
            sequence: s.clone(),
            score: *y,
            round,
        }));
        Self { rows }
    }

    /// Every sequence measured so far.
    pub fn measured(&self) -> HashSet<Sequence> {
        self.rows.iter().map(|m| m.sequence.clone()).collect()
    }

    /// One row per distinct sequence (first-seen order) with the mean of its scores: the
    /// training table of the next round. `None` when empty.
    pub fn merged(&self) -> Option<ScoredSequences> {
        let mut index: HashMap<&Sequence, usize> = HashMap::new();
        let mut slots: Vec<(Sequence, f64, usize)> = Vec::new();
        for m in &self.rows {
            match index.get(&m.sequence) {
                Some(&k) => {
                    slots[k].1 += m.score;
                    slots[k].2 += 1;
                }
                None => {
                    index.insert(&m.sequence, slots.len());
                    slots.push((m.sequence.clone(), m.score, 1));
                }
            }
        }
        let (seqs, scores): (Vec<_>, Vec<_>) = slots
            .into_iter()
            .map(|(s, sum, n)| (s, sum / n as f64))
            .unzip();
        ScoredSequences::new(seqs, scores).ok()
    }

    /// Writes `sequence,score,round` atomically.
    ///
    /// ```
    /// use em_protein::rounds::History;
    /// use em_protein::sequence::ScoredSequences;
    /// let t = ScoredSequences::new(vec!["AR".parse().unwrap()], vec![1.5]).unwrap();
    /// let h = History::from_data(&t).with_round(1, &[("AN".parse().unwrap(), 2.0)]);
    /// let dir = tempfile::tempdir().unwrap();
    /// let p = dir.path().join("measured.csv");
    /// h.write(&p).unwrap();
    /// assert_eq!(std::fs::read_to_string(&p).unwrap(), "sequence,score,round\nAR,1.5,0\nAN,2,1\n");
    /// assert_eq!(History::read(&p).unwrap(), h);
    /// ```
    pub fn write(&self, path: &Path) -> Result<()> {
        io::write_atomic(path, |w| {
            writeln!(w, "sequence,score,round")?;
            for m in &self.rows {
                writeln!(w, "{},{},{}", m.sequence, m.score, m.round)?;
            }
            Ok(())
        })
    }

    /// Reads a file [`History::write`] wrote (errors name file:line).
    pub fn read(path: &Path) -> Result<Self> {
        let records = io::read_records(
            path,
            &ReadOptions {
                length: LengthRule::SameAsFirst,
                ..ReadOptions::default()
            },
        )?;
        let rounds = read_column(path, "round")?;
        let rows = records
            .into_iter()
            .zip(rounds)
            .map(|(r, (line, round))| {
                let round = round.trim().parse().map_err(|_| Error::Format {
                    path: path.to_path_buf(),
                    line,
                    message: format!("round '{round}' is not a round number"),
                })?;
                Ok(Measurement {
                    sequence: r.sequence,
                    score: r.score.unwrap_or(f64::NAN),
                    round,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { rows })
    }
}

/// `(line, value)` of every row's `column` (the reader of the other columns checked the
/// structure already).
fn read_column(path: &Path, column: &str) -> Result<Vec<(usize, String)>> {
    let bytes = io::read_bytes(path)?;
    let mut reader = ::csv::Reader::from_reader(&bytes[..]);
    let fmt = |line: usize, message: String| Error::Format {
        path: path.to_path_buf(),
        line,
        message,
    };
    let header = reader
        .headers()
        .map_err(|e| fmt(1, format!("malformed CSV: {e}")))?
        .clone();
    let col = header
        .iter()
        .position(|h| h.trim() == column)
        .ok_or_else(|| Error::MissingColumn {
            path: path.to_path_buf(),
            column: column.into(),
            header: header.iter().collect::<Vec<_>>().join(","),
        })?;
    reader
        .records()
        .map(|r| {
            let r = r.map_err(|e| fmt(0, format!("malformed CSV: {e}")))?;
            let line = r.position().map_or(0, |p| p.line() as usize);
            Ok((line, r.get(col).unwrap_or("").to_string()))
        })
        .collect()
}

/// Reads a results file in the format of the workflow's data file (`cfg`: sequence or
/// mutation column and score column; `wild_type` for mutation lists; sequences `length`
/// long) and checks that every row is a design proposed in an earlier round (`proposed`).
/// Repeats within the file are averaged. Errors name file:line (file:line:column for a
/// residue), before anything is merged.
///
/// ```
/// use std::collections::HashSet;
/// use em_protein::rounds::read_results;
/// use em_protein::user_data::UserDataConfig;
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("r.csv");
/// std::fs::write(&p, "mutations,score\nA1G,2.0\nR2K,1.0\n").unwrap();
/// let cfg = UserDataConfig { mutations: Some("data.csv".into()), wild_type: Some("AR".into()), ..Default::default() };
/// let wt = "AR".parse().unwrap();
/// let proposed: HashSet<_> = ["GR".parse().unwrap()].into_iter().collect();
/// let e = read_results(&p, &cfg, Some(&wt), 2, &proposed).unwrap_err().to_string();
/// assert!(e.ends_with("r.csv:3: AK was never proposed (it is in no earlier round's designs.csv)"), "{e}");
/// ```
pub fn read_results(
    path: &Path,
    cfg: &UserDataConfig,
    wild_type: Option<&Sequence>,
    length: usize,
    proposed: &HashSet<Sequence>,
) -> Result<Vec<(Sequence, f64)>> {
    let records = read_rows(cfg, path, wild_type, Some(length))?;
    if let Some(r) = records.iter().find(|r| r.sequence.len() != length) {
        return Err(Error::Ragged {
            path: path.to_path_buf(),
            line: r.line,
            found: r.sequence.len(),
            expected: length,
            what: " (the length of the training sequences)".into(),
        });
    }
    if let Some(r) = records.iter().find(|r| !proposed.contains(&r.sequence)) {
        return Err(Error::Format {
            path: path.to_path_buf(),
            line: r.line,
            message: format!(
                "{} was never proposed (it is in no earlier round's designs.csv)",
                r.sequence
            ),
        });
    }
    Ok(io::apply_duplicates(records, path, DuplicatePolicy::Average)?.0)
}

/// The designs of a round's `designs.csv` (columns `sequence`, `pred`), best first; an
/// empty list for a file with a header only.
pub fn read_designs(path: &Path) -> Result<Vec<(Sequence, f64)>> {
    let options = ReadOptions {
        score_column: "pred".into(),
        score: ScoreRule::Optional,
        ..ReadOptions::default()
    };
    match io::read_records(path, &options) {
        Ok(records) => Ok(records
            .into_iter()
            .map(|r| (r.sequence, r.score.unwrap_or(f64::NAN)))
            .collect()),
        Err(Error::Empty { .. }) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(s: &str) -> Sequence {
        s.parse().unwrap()
    }

    #[test]
    fn history_merges_rounds_and_keeps_provenance() {
        let t = ScoredSequences::new(vec![seq("AR"), seq("AN")], vec![1.0, 2.0]).unwrap();
        let h = History::from_data(&t)
            .with_round(1, &[(seq("GR"), 3.0)])
            .with_round(2, &[(seq("GR"), 5.0), (seq("GN"), 0.5)]);
        assert_eq!(h.last_round(), 2);
        let rounds: Vec<usize> = h.rows().iter().map(|m| m.round).collect();
        assert_eq!(rounds, [0, 0, 1, 2, 2]);
        let m = h.merged().unwrap();
        let got: Vec<String> = m.sequences().iter().map(ToString::to_string).collect();
        assert_eq!(got, ["AR", "AN", "GR", "GN"]);
        assert_eq!(m.scores(), &[1.0, 2.0, 4.0, 0.5]); // GR measured twice: averaged
        assert_eq!(h.measured().len(), 4);
    }

    #[test]
    fn results_are_checked_row_by_row() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv");
        let cfg = UserDataConfig {
            sequences: Some("d.csv".into()),
            ..Default::default()
        };
        let proposed: HashSet<Sequence> = [seq("ARN"), seq("GRN")].into_iter().collect();
        let err = |text: &str| {
            std::fs::write(&p, text).unwrap();
            read_results(&p, &cfg, None, 3, &proposed)
                .unwrap_err()
                .to_string()
        };
        std::fs::write(&p, "sequence,score\nARN,1\nGRN,2\nARN,3\n").unwrap();
        let got = read_results(&p, &cfg, None, 3, &proposed).unwrap();
        assert_eq!(got, [(seq("ARN"), 2.0), (seq("GRN"), 2.0)]);
        let e = err("sequence,score\nARN,1\nGXN,2\n");
        assert!(
            e.ends_with("r.csv:3:2: unknown residue 'X' (expected one of ARNDCQEGHILKMFPSTWYV)"),
            "{e}"
        );
        let e = err("sequence,score\nARN,1\nAR,2\n");
        assert!(
            e.ends_with("r.csv:3: sequence has length 2, expected 3"),
            "{e}"
        );
        let e = err("sequence,score\nARN,1\nDRN,2\n");
        assert!(
            e.ends_with(
                "r.csv:3: DRN was never proposed (it is in no earlier round's designs.csv)"
            ),
            "{e}"
        );
        let e = err("sequence,score\nARN,nan\n");
        assert!(
            e.contains("r.csv:2: score 'nan' is not a finite number"),
            "{e}"
        );
    }

    #[test]
    fn designs_csv_with_no_rows_is_an_empty_batch() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("designs.csv");
        std::fs::write(&p, "id,sequence\n").unwrap();
        assert!(read_designs(&p).unwrap().is_empty());
        std::fs::write(&p, "id,sequence,pred,muts\nd0001,ARN,1.5,wt\n").unwrap();
        assert_eq!(read_designs(&p).unwrap(), [(seq("ARN"), 1.5)]);
    }
}
