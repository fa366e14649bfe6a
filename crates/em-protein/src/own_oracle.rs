//! emdesign's own oracle for a benchmark task: the GGS CNN architecture trained on the task's
//! whole CC BY ground truth (as GGS trained theirs), seeded, with its agreement with the GGS
//! oracle measured. It stands in for the GGS oracle when a fresh clone has no data directory
//! (the GGS checkpoints carry no licence and are not shipped); reports then name it.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::cnn::{Cnn, CnnError};
use crate::datasets::Task;
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
