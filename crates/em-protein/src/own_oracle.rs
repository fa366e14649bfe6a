//! emdesign's own oracle for a benchmark task: the GGS CNN architecture trained on the task's
//! whole CC BY ground truth (as GGS trained theirs), seeded, with its agreement with the GGS
//! oracle measured. It stands in for the GGS oracle when a fresh clone has no data directory
//! (the GGS checkpoints carry no licence and are not shipped); reports then name it.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::cnn::{Cnn, CnnConfig, CnnError};
use crate::datasets::{Checkpoint, Task};
use crate::error::Error;
use crate::oracle::GgsCnnOracle;
use crate::predictor::{
    EpochReport, PredictorError, TrainPredictorConfig, TrainReport, held_out_rows, train_predictor,
};
use crate::stats::spearman_f32;

/// Why an oracle could not be trained or measured.
#[derive(Debug, thiserror::Error)]
pub enum OwnOracleError {
    /// The vendored ground truth failed its checks.
    #[error(transparent)]
    Data(#[from] crate::error::Error),
    /// Training rejected a setting or a row.
    #[error(transparent)]
    Training(#[from] PredictorError),
    /// Scoring with the trained or the reference CNN failed.
    #[error(transparent)]
    Scoring(#[from] CnnError),
}

/// Which oracle scores a benchmark task's designs: the GGS oracle from the data directory
/// (what published comparisons need), or emdesign's own, embedded in the binary, when no data
/// directory is set or it lacks the oracle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OracleSource {
    /// The verified GGS checkpoint.
    Ggs(PathBuf),
    /// emdesign's own oracle of the task; the reason the GGS one was not used.
    Emdesign {
        /// The task.
        task: Task,
        /// Why the GGS oracle was not used (for the start message).
        why: String,
    },
}

impl OracleSource {
    /// The GGS oracle of `task` when `data_dir` (the result of
    /// [`crate::datasets::data_dir`]) holds it; emdesign's own when no data directory is set
    /// or the oracle file is absent from it. A data directory that was named but is not a
    /// folder, or an oracle file that fails its checksum, stays an error.
    pub fn resolve(task: Task, data_dir: Result<PathBuf, Error>) -> Result<Self, Error> {
        let dir = match data_dir {
            Ok(dir) => dir,
            Err(Error::NoDataDir) => {
                return Ok(Self::Emdesign {
                    task,
                    why: "no data directory (--data-dir or EMDESIGN_DATA)".into(),
                });
            }
            Err(e) => return Err(e),
        };
        match task.checkpoint(&dir, Checkpoint::Oracle) {
            Ok(path) => Ok(Self::Ggs(path)),
            Err(Error::MissingData { path, .. }) => Ok(Self::Emdesign {
                task,
                why: format!("{} is absent", path.display()),
            }),
            Err(e) => Err(e),
        }
    }

    /// A short name for reports: `ggs` or `emdesign-trained`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ggs(_) => "ggs",
            Self::Emdesign { .. } => "emdesign-trained",
        }
    }

    /// The line a run prints at start and every report carries.
    pub fn describe(&self) -> String {
        match self {
            Self::Ggs(path) => format!("oracle: GGS ({})", path.display()),
            Self::Emdesign { task, why } => format!(
                "oracle: emdesign-trained (datasets/{}, {why}); published comparisons need \
                 the GGS oracle, `emdesign data fetch`",
                task.own_oracle_file()
            ),
        }
    }

    /// The SHA-256 of emdesign's embedded oracle (a cache-key ingredient: the GGS file is
    /// keyed by its own checksum as an input file); `None` for GGS.
    pub fn embedded_sha256(&self) -> Result<Option<&'static str>, Error> {
        match self {
            Self::Ggs(_) => Ok(None),
            Self::Emdesign { task, .. } => Ok(Some(task.own_oracle_bytes()?.1)),
        }
    }

    /// Load the oracle onto `device`.
    pub fn load(&self, device: &Device) -> Result<GgsCnnOracle, OwnOracleError> {
        match self {
            Self::Ggs(path) => Ok(GgsCnnOracle::load(path, device)?),
            Self::Emdesign { task, .. } => {
                Ok(GgsCnnOracle::from_cnn(load_own_oracle(*task, device)?))
            }
        }
    }
}

/// emdesign's own oracle of `task`, from the bytes embedded in the binary (checksum verified).
pub fn load_own_oracle(task: Task, device: &Device) -> Result<Cnn, OwnOracleError> {
    let (bytes, _) = task.own_oracle_bytes()?;
    let label = Path::new("datasets").join(task.own_oracle_file());
    Ok(CnnConfig::new().load_bytes(&label, bytes, device)?)
}

/// Rows held out of the ground truth to measure the trained oracle (seeded draw).
pub const HELD_OUT: usize = 2000;

/// The training settings of emdesign's shipped oracles: GGS's predictor recipe
/// ([`TrainPredictorConfig`]'s defaults: Adam lr 1e-4, weight decay 1e-4, batch 1024, best
/// held-out Spearman kept) on the whole ground truth less [`HELD_OUT`] rows, for `epochs`
/// passes (our choice, set by the training time on a 2-core CPU; GGS trains up to 1,000).
pub fn oracle_config(epochs: usize, seed: u64) -> TrainPredictorConfig {
    TrainPredictorConfig {
        epochs,
        val_samples: HELD_OUT,
        seed,
        ..TrainPredictorConfig::default()
    }
}

/// How the trained oracle compares, for its JSON sidecar and the README.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnOracleReport {
    /// `gfp` or `aav`.
    pub task: String,
    /// Ground-truth rows in all.
    pub rows: usize,
    /// Training run (settings, chosen epoch, held-out Spearman against the measurements).
    pub training: TrainReport,
    /// Spearman against the GGS oracle's scores on the held-out rows (when it was given).
    pub spearman_vs_ggs_held_out: Option<f64>,
    /// Spearman against the GGS oracle's scores on the whole ground truth.
    pub spearman_vs_ggs_all: Option<f64>,
    /// Spearman of the GGS oracle itself against the measurements on the held-out rows.
    pub ggs_spearman_held_out: Option<f64>,
}

/// Train emdesign's oracle for `task` on its vendored ground truth with
/// [`oracle_config`]`(epochs, seed)`; with `reference` (the GGS oracle), also measure how its
/// ranking agrees with it. `progress` sees every epoch.
pub fn train_own_oracle(
    task: Task,
    epochs: usize,
    seed: u64,
    reference: Option<&GgsCnnOracle>,
    device: &Device,
    progress: impl FnMut(&EpochReport),
) -> Result<(Cnn, OwnOracleReport), OwnOracleError> {
    let gt = task.ground_truth()?;
    let rows: Vec<(Vec<u8>, f32)> = gt
        .sequences()
        .iter()
        .zip(gt.scores())
        .map(|(s, &y)| (s.indices().to_vec(), y as f32))
        .collect();
    let config = oracle_config(epochs, seed);
    let (cnn, training) = train_predictor(&rows, &config, device, progress)?;
    let held_out = held_out_rows(rows.len(), &config);
    let mut report = OwnOracleReport {
        task: task.name().into(),
        rows: rows.len(),
        training,
        spearman_vs_ggs_held_out: None,
        spearman_vs_ggs_all: None,
        ggs_spearman_held_out: None,
    };
    if let Some(reference) = reference {
        let seqs: Vec<Vec<u8>> = rows.iter().map(|r| r.0.clone()).collect();
        let truth: Vec<f32> = held_out.iter().map(|&i| rows[i].1).collect();
        let ours = cnn.score(&seqs)?;
        let theirs = reference.try_score(&seqs)?;
        let pick = |v: &[f32]| held_out.iter().map(|&i| v[i]).collect::<Vec<f32>>();
        report.spearman_vs_ggs_all = spearman_f32(&ours, &theirs);
        report.spearman_vs_ggs_held_out = spearman_f32(&pick(&ours), &pick(&theirs));
        report.ggs_spearman_held_out = spearman_f32(&pick(&theirs), &truth);
    }
    Ok((cnn, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_data_dir_or_a_missing_oracle_falls_back_and_a_bad_one_is_an_error() {
        let s = OracleSource::resolve(Task::Aav, Err(Error::NoDataDir)).unwrap();
        assert_eq!(s.name(), "emdesign-trained");
        assert!(
            s.describe().contains("emdesign data fetch"),
            "{}",
            s.describe()
        );
        let dir = tempfile::tempdir().unwrap();
        let s = OracleSource::resolve(Task::Aav, Ok(dir.path().to_path_buf())).unwrap();
        assert!(
            matches!(&s, OracleSource::Emdesign { why, .. } if why.contains("oracle.safetensors")),
            "{s:?}"
        );
        std::fs::create_dir(dir.path().join("aav")).unwrap();
        std::fs::write(dir.path().join("aav/oracle.safetensors"), b"tampered").unwrap();
        let e = OracleSource::resolve(Task::Aav, Ok(dir.path().to_path_buf())).unwrap_err();
        assert!(e.to_string().contains("SHA-256 mismatch"), "{e}");
        let named = Err(Error::MissingData {
            path: dir.path().join("nope"),
            hint: "not a folder".into(),
        });
        assert!(OracleSource::resolve(Task::Aav, named).is_err());
    }

    #[test]
    fn embedded_oracles_load_and_score_the_ground_truth_in_order() {
        let device = Device::flex();
        for task in Task::ALL {
            let source = OracleSource::Emdesign {
                task,
                why: String::new(),
            };
            assert_eq!(source.embedded_sha256().unwrap().map(str::len), Some(64));
            let oracle = source.load(&device).unwrap();
            // the ground truth's best and worst 200 rows must be ranked apart
            let gt = task.ground_truth().unwrap();
            let mut order: Vec<usize> = (0..gt.len()).collect();
            order.sort_by(|&a, &b| gt.scores()[a].total_cmp(&gt.scores()[b]));
            let pick = |rows: &[usize]| -> f32 {
                let seqs: Vec<Vec<u8>> = rows
                    .iter()
                    .map(|&i| gt.sequences()[i].indices().to_vec())
                    .collect();
                let s = oracle.try_score(&seqs).unwrap();
                s.iter().sum::<f32>() / s.len() as f32
            };
            let (low, high) = (pick(&order[..200]), pick(&order[order.len() - 200..]));
            assert!(high > low, "{task}: best rows {high} <= worst rows {low}");
        }
    }
}
