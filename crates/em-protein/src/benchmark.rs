//! The GGS benchmark splits (Kirjner et al. 2024) as a pure function of a ground truth
//! and a [`SplitSpec`]: a score-percentile window, minus every sequence within
//! `min_edits - 1` Levenshtein edits of a top-percentile sequence.

use std::fmt;
use std::str::FromStr;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::metrics::levenshtein_within;
use crate::sequence::ScoredSequences;

/// GGS task difficulty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Difficulty {
    /// 20th-40th score percentile, at least 6 edits from the top 1%.
    Medium,
    /// 0th-30th score percentile, at least 7 edits from the top 1%.
    Hard,
}

impl Difficulty {
    /// Lower-case name (`medium`, `hard`), as used in file names and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Difficulty::Medium => "medium",
            Difficulty::Hard => "hard",
        }
    }
}

impl fmt::Display for Difficulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Difficulty {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "medium" => Ok(Difficulty::Medium),
            "hard" => Ok(Difficulty::Hard),
            _ => Err(Error::InvalidSetting {
                field: "difficulty".into(),
                value: s.into(),
                why: "expected 'medium' or 'hard'".into(),
            }),
        }
    }
}

/// A checked split rule: keep scores in `[lo, hi]` percentiles (inclusive) that are at
/// least `min_edits` Levenshtein edits from every sequence scoring at or above the
/// `top` percentile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitSpec {
    lo: f64,
    hi: f64,
    top: f64,
    min_edits: u32,
}

impl SplitSpec {
    /// The published GGS rule for a difficulty.
    ///
    /// ```
    /// use em_protein::benchmark::{Difficulty, SplitSpec};
    /// let s = SplitSpec::ggs(Difficulty::Hard);
    /// assert_eq!((s.percentiles(), s.min_edits()), ((0.0, 30.0), 7));
    /// ```
    pub fn ggs(difficulty: Difficulty) -> SplitSpec {
        match difficulty {
            Difficulty::Medium => SplitSpec {
                lo: 20.0,
                hi: 40.0,
                top: 99.0,
                min_edits: 6,
            },
            Difficulty::Hard => SplitSpec {
                lo: 0.0,
                hi: 30.0,
                top: 99.0,
                min_edits: 7,
            },
        }
    }

    /// A custom rule (for a user's own CSV); percentiles in `[0, 100]`, `lo <= hi`; the
    /// top set stays the 99th percentile and up. `min_edits = 0` disables the distance rule.
    ///
    /// ```
    /// use em_protein::benchmark::SplitSpec;
    /// assert!(SplitSpec::custom(5, 10.0, 50.0).is_ok());
    /// assert!(SplitSpec::custom(5, 50.0, 10.0).is_err());
    /// ```
    pub fn custom(min_edits: u32, lo: f64, hi: f64) -> Result<SplitSpec> {
        let ok = |q: f64| (0.0..=100.0).contains(&q);
        if !ok(lo) || !ok(hi) || lo > hi {
            return Err(Error::InvalidSetting {
                field: "percentiles".into(),
                value: format!("{lo},{hi}"),
                why: "need 0 <= LO <= HI <= 100".into(),
            });
        }
        Ok(SplitSpec {
            lo,
            hi,
            top: 99.0,
            min_edits,
        })
    }

    /// The (lo, hi) score percentiles.
    pub fn percentiles(&self) -> (f64, f64) {
        (self.lo, self.hi)
    }

    /// The minimum Levenshtein distance to every top sequence.
    pub fn min_edits(&self) -> u32 {
        self.min_edits
    }
}

/// A split: the kept rows of the ground truth and the thresholds that chose them.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The kept sequences and their ground-truth scores, in ground-truth order.
    pub data: ScoredSequences,
    /// Their row indices in the ground truth.
    pub rows: Vec<usize>,
    /// Score at the lower percentile.
    pub lo_score: f64,
    /// Score at the upper percentile.
    pub hi_score: f64,
    /// Score at the top percentile.
    pub top_score: f64,
    /// Number of top sequences (score >= `top_score`).
    pub n_top: usize,
    /// Rows in the score window before the distance rule.
    pub n_window: usize,
}

/// Percentile `q` in `[0, 100]` with linear interpolation between closest ranks (numpy's
/// default); NaN when empty.
///
/// ```
/// use em_protein::benchmark::percentile;
/// assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), 2.5);
/// assert_eq!(percentile(&[4.0, 1.0, 3.0, 2.0], 100.0), 4.0);
/// assert!((percentile(&[1.0, 2.0, 3.0, 4.0], 30.0) - 1.9).abs() < 1e-12);
/// ```
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    percentile_sorted(&v, q)
}

fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * (q / 100.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Build a split (pure function; rayon over candidate rows). Duplicated sequences in the
/// ground truth are kept as rows, as GGS does.
///
/// ```
/// use em_protein::benchmark::{split, SplitSpec};
/// use em_protein::sequence::ScoredSequences;
/// let seqs = ["AAAA", "AAAR", "WWWW", "WWWR", "CCCC"].map(|s| s.parse().unwrap()).to_vec();
/// let gt = ScoredSequences::new(seqs, vec![0.0, 1.0, 2.0, 3.0, 10.0]).unwrap();
/// // keep the bottom 80% that are at least 4 edits from the top sequence CCCC:
/// let s = split(&gt, &SplitSpec::custom(4, 0.0, 80.0).unwrap());
/// assert_eq!(s.rows, vec![0, 1, 2, 3]);
/// let s = split(&gt, &SplitSpec::custom(0, 0.0, 50.0).unwrap());
/// assert_eq!(s.rows, vec![0, 1, 2]);
/// ```
pub fn split(ground_truth: &ScoredSequences, spec: &SplitSpec) -> Split {
    let scores = ground_truth.scores();
    let mut sorted = scores.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (lo_score, hi_score, top_score) = if sorted.is_empty() {
        (f64::NAN, f64::NAN, f64::NAN)
    } else {
        (
            percentile_sorted(&sorted, spec.lo),
            percentile_sorted(&sorted, spec.hi),
            percentile_sorted(&sorted, spec.top),
        )
    };
    let seqs = ground_truth.sequences();
    let top: Vec<_> = (0..seqs.len())
        .filter(|&i| scores[i] >= top_score)
        .map(|i| &seqs[i])
        .collect();
    let window: Vec<usize> = (0..seqs.len())
        .filter(|&i| scores[i] >= lo_score && scores[i] <= hi_score)
        .collect();
    let rows: Vec<usize> = if spec.min_edits == 0 {
        window.clone()
    } else {
        let k = spec.min_edits - 1;
        window
            .par_iter()
            .copied()
            .filter(|&i| {
                top.iter()
                    .all(|t| levenshtein_within(&seqs[i], t, k).is_none())
            })
            .collect()
    };
    Split {
        data: ground_truth.select(&rows),
        rows,
        lo_score,
        hi_score,
        top_score,
        n_top: top.len(),
        n_window: window.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([3, 1, 4, 1, 5, 9, 2, 6], [0, 20, 40, 99, 100])
        let v = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        let want = [1.0, 1.4, 2.8, 8.79, 9.0];
        for (q, w) in [0.0, 20.0, 40.0, 99.0, 100.0].iter().zip(want) {
            assert!((percentile(&v, *q) - w).abs() < 1e-12, "q={q}");
        }
    }

    #[test]
    fn distance_rule_is_levenshtein_not_hamming() {
        // ARNDC vs RNDCA: Hamming 5, Levenshtein 2 (shift by one).
        let seqs = ["RNDCA", "WWWWW", "ARNDC"]
            .map(|s| s.parse().unwrap())
            .to_vec();
        let gt = ScoredSequences::new(seqs, vec![0.0, 0.0, 5.0]).unwrap();
        let s = split(&gt, &SplitSpec::custom(3, 0.0, 50.0).unwrap());
        assert_eq!((s.n_top, s.n_window, s.rows.clone()), (1, 2, vec![1]));
    }

    #[test]
    fn difficulty_parses() {
        assert_eq!("HARD".parse::<Difficulty>().unwrap(), Difficulty::Hard);
        assert!("easy".parse::<Difficulty>().is_err());
    }
}
