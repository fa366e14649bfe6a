//! GGS's own GFP training splits (vendored from VLGPO, SHA-256 checked) and the choice between
//! them and the protein-level rebuild of [`crate::benchmark::split`]: published GFP rows are
//! measured on GGS's 2,828 / 2,426 sequences, which the rebuild (3,775 / 3,211) does not give.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::benchmark::{self, Difficulty, Split, SplitSpec};
use crate::datasets::{Task, expected_sha256, verify_bytes};
use crate::error::Result;
use crate::io::{DuplicatePolicy, LengthRule, ReadOptions, parse_scored};
use crate::sequence::ScoredSequences;

/// GGS's GFP medium / hard training splits (uzh-dqbm-cmi/VLGPO `data/gfp_{medium,hard}.csv`,
/// MIT; see `datasets/ATTRIBUTION.md`), gzipped and embedded.
const GFP_MEDIUM: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../datasets/gfp/ggs_train_medium.csv.gz"
));
const GFP_HARD: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../datasets/gfp/ggs_train_hard.csv.gz"
));

/// Where a GFP training split comes from (`[data] gfp_split` in a workflow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GfpSplit {
    /// GGS's own split files (2,828 medium / 2,426 hard rows), comparable with published
    /// GGS / VLGPO / Energy Matching GFP rows (the default).
    #[default]
    Ggs,
    /// Rebuilt here from the protein-level ground truth with GGS's rule (3,775 / 3,211).
    Rebuild,
}

impl GfpSplit {
    /// Both sources, in the order error messages list them.
    pub const ALL: [GfpSplit; 2] = [GfpSplit::Ggs, GfpSplit::Rebuild];

    /// The TOML spelling (`"ggs"`, `"rebuild"`).
    pub fn name(self) -> &'static str {
        match self {
            GfpSplit::Ggs => "ggs",
            GfpSplit::Rebuild => "rebuild",
        }
    }

    /// The source spelled `name` in TOML, if any.
    pub fn from_name(name: &str) -> Option<GfpSplit> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A task's training split: GGS's file, or rebuilt with the split statistics.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainingSplit {
    /// GGS's own GFP split file.
    Ggs(ScoredSequences),
    /// Rebuilt from the ground truth by [`benchmark::split`].
    Rebuilt(Split),
}

impl TrainingSplit {
    /// The training sequences and their scores.
    pub fn data(&self) -> &ScoredSequences {
        match self {
            TrainingSplit::Ggs(d) => d,
            TrainingSplit::Rebuilt(s) => &s.data,
        }
    }
}

/// GGS's own GFP training split of `difficulty` (embedded; SHA-256 checked).
///
/// ```
/// use em_protein::benchmark::Difficulty;
/// let hard = em_protein::gfp_splits::ggs_gfp_split(Difficulty::Hard).unwrap();
/// assert_eq!((hard.len(), hard.length()), (2_426, 237));
/// ```
pub fn ggs_gfp_split(difficulty: Difficulty) -> Result<ScoredSequences> {
    let (bytes, rel) = match difficulty {
        Difficulty::Medium => (GFP_MEDIUM, "gfp/ggs_train_medium.csv.gz"),
        Difficulty::Hard => (GFP_HARD, "gfp/ggs_train_hard.csv.gz"),
    };
    let label = Path::new("datasets").join(rel);
    verify_bytes(&label, bytes, expected_sha256(rel).unwrap_or_default())?;
    let csv = crate::io::decompress(&label, bytes.to_vec())?;
    let options = ReadOptions {
        length: LengthRule::Exactly(Task::Gfp.length()),
        duplicates: DuplicatePolicy::Keep,
        ..ReadOptions::default()
    };
    Ok(parse_scored(&csv, &label, &options)?.0)
}

/// The training split of `task` at `difficulty`: GGS's own file for GFP with
/// [`GfpSplit::Ggs`], otherwise rebuilt from `ground_truth` (AAV always: the rebuild gives
/// GGS's own AAV splits, 2,139 / 3,448 rows).
pub fn training_split(
    task: Task,
    difficulty: Difficulty,
    gfp_split: GfpSplit,
    ground_truth: &ScoredSequences,
) -> Result<TrainingSplit> {
    if task == Task::Gfp && gfp_split == GfpSplit::Ggs {
        return Ok(TrainingSplit::Ggs(ggs_gfp_split(difficulty)?));
    }
    Ok(TrainingSplit::Rebuilt(benchmark::split(
        ground_truth,
        &SplitSpec::ggs(difficulty),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// SHA-256 of VLGPO's plain `data/gfp_{medium,hard}.csv` at commit 9909084 (the shared
    /// mirror's `vlgpo/SHA256SUMS`): the vendored files decompress to exactly these bytes.
    const UPSTREAM: [(Difficulty, &str, &[u8]); 2] = [
        (
            Difficulty::Medium,
            "019d2eb97b4096986fd81ddad61896c351ac7e11d6dee1ebb57ff413fa9c8057",
            GFP_MEDIUM,
        ),
        (
            Difficulty::Hard,
            "4c2725f0ef67041cc8d4f446efa4a904ffd295d6e8345f02cdd3bd521a11a246",
            GFP_HARD,
        ),
    ];

    #[test]
    fn vendored_splits_are_ggs_sizes_and_upstream_bytes() {
        for (difficulty, upstream, gz) in UPSTREAM {
            let plain = crate::io::decompress(Path::new("x.gz"), gz.to_vec()).unwrap();
            let sum: String = Sha256::digest(&plain)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(sum, upstream, "{difficulty}");
            let split = ggs_gfp_split(difficulty).unwrap();
            let want = match difficulty {
                Difficulty::Medium => 2_828,
                Difficulty::Hard => 2_426,
            };
            assert_eq!(split.len(), want, "{difficulty}");
            let mut unique: Vec<_> = split.sequences().iter().collect();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), want, "{difficulty}: all unique");
        }
    }

    #[test]
    fn aav_ignores_the_gfp_source_and_names_round_trip() {
        let seqs: Vec<_> = ["ACDE", "ACDF", "WWWW"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let gt = ScoredSequences::new(seqs, vec![0.0, 1.0, 5.0]).unwrap();
        let s = training_split(Task::Aav, Difficulty::Hard, GfpSplit::Ggs, &gt).unwrap();
        assert!(matches!(s, TrainingSplit::Rebuilt(_)));
        for g in GfpSplit::ALL {
            assert_eq!(GfpSplit::from_name(g.name()), Some(g));
        }
        assert_eq!(GfpSplit::from_name("nope"), None);
        assert_eq!(GfpSplit::default(), GfpSplit::Ggs);
    }
}
