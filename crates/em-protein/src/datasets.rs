//! Where the benchmark data lives: the vendored CC BY ground truths (embedded in the
//! binary, SHA-256 checked on load), the data directory for the GGS checkpoints
//! (`--data-dir` > `EMDESIGN_DATA`), their pinned checksums, and a `fetch` of the originals.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::benchmark::Difficulty;
use crate::error::{Error, Result};
use crate::io::{DuplicatePolicy, LengthRule, ReadOptions, parse_scored};
use crate::sequence::ScoredSequences;

/// Environment variable naming the data directory.
pub const DATA_ENV: &str = "EMDESIGN_DATA";

/// The GGS commit whose checkpoints the checksums pin.
pub const GGS_COMMIT: &str = "033c543c44aa76655e4868bb71e5713c962401ea";

/// The vendored ground truths, embedded at compile time so the binary is self-contained
/// (0.8 MB + 0.6 MB); the repository's `datasets/` holds the same files and their sums.
const GFP_GROUND_TRUTH: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../datasets/gfp/ground_truth.csv.gz"
));
const AAV_GROUND_TRUTH: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../datasets/aav/ground_truth.csv.gz"
));

/// emdesign's own oracles (the GGS CNN architecture trained by `emdesign data train-oracle`
/// on the vendored ground truth; how well they agree with the GGS oracle is in
/// `datasets/<task>/oracle_emdesign.json`), embedded so that a fresh clone can score designs
/// without the data directory (the GGS checkpoints have no licence and are not shipped).
const GFP_OWN_ORACLE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../datasets/gfp/oracle_emdesign.safetensors"
));
const AAV_OWN_ORACLE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../datasets/aav/oracle_emdesign.safetensors"
));

/// SHA-256 of every file emdesign reads, by path relative to the data directory (the
/// `.gz` ground truths and GGS GFP splits are the vendored ones; the rest are the shared
/// mirror's).
pub const CHECKSUMS: &[(&str, &str)] = &[
    (
        "gfp/ground_truth.csv.gz",
        "7a7d06693647abbab95cdfe500af3b4399b70a52571044b542234abd1015369f",
    ),
    (
        "aav/ground_truth.csv.gz",
        "78a069214025512b86dad927ca92b3c48339749beb19e30d494518e0d2a25f43",
    ),
    (
        "gfp/ggs_train_medium.csv.gz",
        "96622eaa1360e20f68690ae130cf68c6105ddb7b7dc1cf1d118d2ffccaa7b9e5",
    ),
    (
        "gfp/ggs_train_hard.csv.gz",
        "27651f1aba545cb5a501f2666b0bd792259f54462a84a004a6e6317e70a892e5",
    ),
    (
        "gfp/oracle_emdesign.safetensors",
        "ab7ef6976c2cacc28b9f575b40a071959c88b31dc114a693f873a5168c399bbd",
    ),
    (
        "aav/oracle_emdesign.safetensors",
        "cbbe99c147447a0f3587c13ea5a25290dd397450b0ee01e63046af0a61032767",
    ),
    (
        "gfp/ground_truth.csv",
        "22138d9b9c65996cc54e979ac6acda855eeeea31bdd60802fb17429ef86e9065",
    ),
    (
        "aav/ground_truth.csv",
        "cca65e1c1c0ed54b66a77a34ce531f9f907341a3596315568aba785e34a8c9ca",
    ),
    (
        "gfp/oracle.safetensors",
        "b542c4ae5e22a0a679c27febbad8aef28c0dc72ae93820e6762a50c48ee5f0c1",
    ),
    (
        "aav/oracle.safetensors",
        "450c2ecefe0ce22a835b4679a4dee28b8716929e81d034b30c4e54f5bc0f034c",
    ),
    (
        "gfp/oracle.ckpt",
        "988bd99bcdd8c1ec8bee5174c968dcd5db3adc33ce33a904ed186554cb0d273a",
    ),
    (
        "aav/oracle.ckpt",
        "5db64072b22c22b24d1b7356faf950e09d28ff66744ec5168715d05143301564",
    ),
    (
        "gfp/ggs_predictor_medium_smoothed.safetensors",
        "8d2e93423395464096a7a3156f3faa6ad1b146ee7530298a649b5e4497df6372",
    ),
    (
        "gfp/ggs_predictor_medium_unsmoothed.safetensors",
        "3ea608e9a79ccd9ebd7d1efebbc154e252bf6930cea03c5037c559b4dc11f93b",
    ),
    (
        "gfp/ggs_predictor_hard_smoothed.safetensors",
        "28d8a080171444e11187e1cb24836ab839aaa108d3d48489070e0d35472582bd",
    ),
    (
        "gfp/ggs_predictor_hard_unsmoothed.safetensors",
        "936cf86d984803bbf4c1414886a7e1b016385ad5e06de7e14a25e9be7549496e",
    ),
    (
        "aav/ggs_predictor_medium_smoothed.safetensors",
        "4255c9c4dc22c52356c87d210594b678eff5c7899069430e30a71c1e53a79bc9",
    ),
    (
        "aav/ggs_predictor_medium_unsmoothed.safetensors",
        "1109b91cdac95656455d1324079ca61629c704102dfc499b2f239f3d8be0c84e",
    ),
    (
        "aav/ggs_predictor_hard_smoothed.safetensors",
        "26b9f803f3fe35142098700370487baacbb90df93592b4af2a66dee83d8fba6a",
    ),
    (
        "aav/ggs_predictor_hard_unsmoothed.safetensors",
        "b886984aaaa4c2b81cbf1cee27b12711f1b5a8e149cce0b49076b59566eda577",
    ),
];

/// The pinned SHA-256 of a data-directory file (`"gfp/oracle.safetensors"`), if any.
///
/// ```
/// assert!(em_protein::datasets::expected_sha256("aav/oracle.safetensors").is_some());
/// assert!(em_protein::datasets::expected_sha256("aav/other").is_none());
/// ```
pub fn expected_sha256(relative: &str) -> Option<&'static str> {
    CHECKSUMS
        .iter()
        .find(|(p, _)| *p == relative)
        .map(|(_, s)| *s)
}

/// A GGS benchmark task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    /// avGFP brightness, 237 residues, 51,715 variants.
    Gfp,
    /// AAV capsid viability, 28 residues, 44,128 variants.
    Aav,
}

impl Task {
    /// Both tasks.
    pub const ALL: [Task; 2] = [Task::Gfp, Task::Aav];

    /// Lower-case name, also the task's folder in the data directory.
    pub fn name(self) -> &'static str {
        match self {
            Task::Gfp => "gfp",
            Task::Aav => "aav",
        }
    }

    /// Sequence length of every variant.
    ///
    /// ```
    /// use em_protein::datasets::Task;
    /// assert_eq!((Task::Gfp.length(), Task::Aav.length()), (237, 28));
    /// ```
    pub fn length(self) -> usize {
        match self {
            Task::Gfp => 237,
            Task::Aav => 28,
        }
    }

    /// The vendored ground truth (embedded; SHA-256 checked), every row kept as published
    /// (AAV has 1,788 repeated sequences; GGS's split sizes count them).
    ///
    /// ```
    /// use em_protein::datasets::Task;
    /// let gt = Task::Aav.ground_truth().unwrap();
    /// assert_eq!((gt.len(), gt.length()), (44_128, 28));
    /// ```
    pub fn ground_truth(self) -> Result<ScoredSequences> {
        let (bytes, rel) = match self {
            Task::Gfp => (GFP_GROUND_TRUTH, "gfp/ground_truth.csv.gz"),
            Task::Aav => (AAV_GROUND_TRUTH, "aav/ground_truth.csv.gz"),
        };
        let label = Path::new("datasets").join(rel);
        verify_bytes(&label, bytes, expected_sha256(rel).unwrap_or_default())?;
        self.parse_ground_truth(&label, bytes.to_vec())
    }

    /// Path of emdesign's own oracle of the task, relative to `datasets/`.
    ///
    /// ```
    /// assert_eq!(em_protein::datasets::Task::Gfp.own_oracle_file(), "gfp/oracle_emdesign.safetensors");
    /// ```
    pub fn own_oracle_file(self) -> String {
        format!("{}/oracle_emdesign.safetensors", self.name())
    }

    /// The safetensors bytes of emdesign's own oracle of the task (embedded in the binary),
    /// after checking them against their pinned SHA-256; also returns that hex digest.
    pub fn own_oracle_bytes(self) -> Result<(&'static [u8], &'static str)> {
        let bytes = match self {
            Task::Gfp => GFP_OWN_ORACLE,
            Task::Aav => AAV_OWN_ORACLE,
        };
        let rel = self.own_oracle_file();
        let expected = expected_sha256(&rel).unwrap_or_default();
        verify_bytes(&Path::new("datasets").join(&rel), bytes, expected)?;
        Ok((bytes, expected))
    }

    /// Load the ground truth from a data directory (`{dir}/{task}/ground_truth.csv[.gz]`),
    /// verifying its pinned checksum.
    pub fn ground_truth_from(self, data_dir: &Path) -> Result<ScoredSequences> {
        let gz = format!("{}/ground_truth.csv.gz", self.name());
        let plain = format!("{}/ground_truth.csv", self.name());
        let rel = if data_dir.join(&gz).exists() {
            gz
        } else {
            plain
        };
        let path = verified_path(data_dir, &rel)?;
        let raw = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        self.parse_ground_truth(&path, raw)
    }

    fn parse_ground_truth(self, label: &Path, raw: Vec<u8>) -> Result<ScoredSequences> {
        let bytes = crate::io::decompress(label, raw)?;
        let options = ReadOptions {
            length: LengthRule::Exactly(self.length()),
            duplicates: DuplicatePolicy::Keep,
            ..ReadOptions::default()
        };
        Ok(parse_scored(&bytes, label, &options)?.0)
    }

    /// Path of a checkpoint in the data directory, after checking it exists and matches its
    /// pinned SHA-256.
    pub fn checkpoint(self, data_dir: &Path, checkpoint: Checkpoint) -> Result<PathBuf> {
        // The oracle's original Lightning checkpoint (what `emdesign data fetch` downloads)
        // stands in for the derived safetensors file when only it is present.
        if checkpoint == Checkpoint::Oracle {
            let st = data_dir
                .join(self.name())
                .join(Checkpoint::Oracle.file_name());
            let ckpt = data_dir
                .join(self.name())
                .join(Checkpoint::OracleCkpt.file_name());
            if !st.exists() && ckpt.exists() {
                return self.checkpoint(data_dir, Checkpoint::OracleCkpt);
            }
        }
        verified_path(
            data_dir,
            &format!("{}/{}", self.name(), checkpoint.file_name()),
        )
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Task {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "gfp" => Ok(Task::Gfp),
            "aav" => Ok(Task::Aav),
            _ => Err(Error::InvalidSetting {
                field: "task".into(),
                value: s.into(),
                why: "expected 'gfp' or 'aav'".into(),
            }),
        }
    }
}

/// A GGS checkpoint in the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Checkpoint {
    /// The CNN oracle (trained on the whole ground truth), safetensors.
    Oracle,
    /// The oracle's original PyTorch Lightning checkpoint (what [`fetch`] downloads).
    OracleCkpt,
    /// A GGS predictor trained on a split, on smoothed or raw labels, safetensors.
    Predictor {
        /// The split it was trained on.
        difficulty: Difficulty,
        /// Whether it was trained on GGS's graph-smoothed labels.
        smoothed: bool,
    },
}

impl Checkpoint {
    /// File name inside the task folder.
    ///
    /// ```
    /// use em_protein::{benchmark::Difficulty, datasets::Checkpoint};
    /// let c = Checkpoint::Predictor { difficulty: Difficulty::Hard, smoothed: true };
    /// assert_eq!(c.file_name(), "ggs_predictor_hard_smoothed.safetensors");
    /// ```
    pub fn file_name(self) -> String {
        match self {
            Checkpoint::Oracle => "oracle.safetensors".into(),
            Checkpoint::OracleCkpt => "oracle.ckpt".into(),
            Checkpoint::Predictor {
                difficulty,
                smoothed,
            } => format!(
                "ggs_predictor_{}_{}.safetensors",
                difficulty.name(),
                if smoothed { "smoothed" } else { "unsmoothed" }
            ),
        }
    }
}

/// The data directory: `explicit` (e.g. `--data-dir`) if given, else `$EMDESIGN_DATA`,
/// else an error that says how to set it. The directory must exist.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let d = em_protein::datasets::data_dir(Some(dir.path())).unwrap();
/// assert_eq!(d, dir.path());
/// ```
pub fn data_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    let dir = match explicit {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os(DATA_ENV) {
            Some(v) if !v.is_empty() => PathBuf::from(v),
            _ => return Err(Error::NoDataDir),
        },
    };
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(Error::MissingData {
            path: dir,
            hint: format!("the data directory (from --data-dir or {DATA_ENV}) is not a folder"),
        })
    }
}

/// Hex SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io(path, e))?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks in-memory `bytes` (labelled `label` in errors) against `expected` (hex SHA-256).
pub(crate) fn verify_bytes(label: &Path, bytes: &[u8], expected: &str) -> Result<()> {
    let found = hex(&Sha256::digest(bytes));
    if found == expected {
        Ok(())
    } else {
        Err(Error::Checksum {
            path: label.to_path_buf(),
            expected: expected.to_string(),
            found,
        })
    }
}

/// Check a file's SHA-256 against `expected` (hex).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("f");
/// std::fs::write(&p, b"abc").unwrap();
/// let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
/// assert!(em_protein::datasets::verify_sha256(&p, abc).is_ok());
/// assert!(em_protein::datasets::verify_sha256(&p, &"0".repeat(64)).is_err());
/// ```
pub fn verify_sha256(path: &Path, expected: &str) -> Result<()> {
    let found = sha256_file(path)?;
    if found == expected {
        Ok(())
    } else {
        Err(Error::Checksum {
            path: path.to_path_buf(),
            expected: expected.to_string(),
            found,
        })
    }
}

/// `data_dir/relative` after checking it exists and matches its entry in [`CHECKSUMS`].
pub fn verified_path(data_dir: &Path, relative: &str) -> Result<PathBuf> {
    let path = data_dir.join(relative);
    if !path.is_file() {
        return Err(Error::MissingData {
            path,
            hint: format!(
                "point --data-dir or {DATA_ENV} at a folder with gfp/ and aav/ (e.g. the shared \
                 benchmark mirror), or download the originals with `emdesign data fetch`"
            ),
        });
    }
    let expected = expected_sha256(relative).ok_or_else(|| Error::InvalidSetting {
        field: "data file".into(),
        value: relative.into(),
        why: "no pinned checksum for this file".into(),
    })?;
    verify_sha256(&path, expected)?;
    Ok(path)
}

/// Raw address of a task's oracle checkpoint at the pinned GGS commit.
pub fn oracle_ckpt_url(task: Task) -> String {
    let folder = match task {
        Task::Gfp => "GFP",
        Task::Aav => "AAV",
    };
    format!(
        "https://raw.githubusercontent.com/kirjner/GGS/{GGS_COMMIT}/ckpt/{folder}/mutations_0/percentile_0.0_1.0/cnn_oracle.ckpt"
    )
}

/// Download a task's original oracle checkpoint (`cnn_oracle.ckpt` at [`GGS_COMMIT`]) to
/// `{data_dir}/{task}/oracle.ckpt`, verifying its SHA-256 before the file appears there
/// (feature `fetch`). Only the oracles have pinned sums; the GGS predictors and the
/// `.ckpt` -> safetensors conversion (what the shared mirror did) are not done here.
#[cfg(feature = "fetch")]
pub fn fetch(data_dir: &Path, task: Task) -> Result<PathBuf> {
    let url = oracle_ckpt_url(task);
    let rel = format!("{}/oracle.ckpt", task.name());
    let dest = data_dir.join(&rel);
    let folder = data_dir.join(task.name());
    std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
    let download = |message: String| Error::Download {
        url: url.clone(),
        message,
    };
    let response = ureq::get(&url)
        .call()
        .map_err(|e| download(e.to_string()))?;
    let mut reader = response.into_body().into_reader();
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let tmp = crate::io::temp_file_for(&folder, &name).map_err(|e| Error::io(&folder, e))?;
    std::io::copy(&mut reader, &mut tmp.as_file()).map_err(|e| download(e.to_string()))?;
    verify_sha256(tmp.path(), expected_sha256(&rel).unwrap_or_default())?;
    tmp.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_table_matches_the_repository_sums() {
        let sums = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../datasets/SHA256SUMS"
        ));
        let mut n = 0;
        for line in sums.lines().filter(|l| !l.trim().is_empty()) {
            let (sum, file) = line.split_once(char::is_whitespace).unwrap();
            assert_eq!(expected_sha256(file.trim()), Some(sum), "{file}");
            n += 1;
        }
        assert_eq!(n, 6);
    }

    #[test]
    fn tampered_file_is_rejected_with_both_sums() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("aav")).unwrap();
        std::fs::write(dir.path().join("aav/oracle.ckpt"), b"not a checkpoint").unwrap();
        let e = Task::Aav
            .checkpoint(dir.path(), Checkpoint::OracleCkpt)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("aav/oracle.ckpt: SHA-256 mismatch: expected 5db64072"),
            "{e}"
        );
        // Without oracle.safetensors the oracle falls back to the original checkpoint, and
        // its checksum is still enforced.
        let e = Task::Aav
            .checkpoint(dir.path(), Checkpoint::Oracle)
            .unwrap_err()
            .to_string();
        assert!(e.contains("aav/oracle.ckpt: SHA-256 mismatch"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        let e = Task::Aav
            .checkpoint(empty.path(), Checkpoint::Oracle)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not found in the data directory"), "{e}");
    }

    #[test]
    fn no_data_dir_says_how_to_set_it() {
        let e = Error::NoDataDir.to_string();
        assert!(e.contains("--data-dir") && e.contains("EMDESIGN_DATA"));
        assert!(data_dir(Some(Path::new("/nonexistent/emdesign"))).is_err());
    }
}
