//! The files protein stages hand to each other: the split summary (`data/split.json`), the
//! training table (`data/train.csv`), the predictor (`predictor/predictor.safetensors`, an
//! ensemble's further members `predictor_1.safetensors`, ...),
//! design batches (`design/batch_seed<k>_<interaction>.json`) and `evaluate/evaluation.json`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::prelude::*;
use em_protein::cnn::{Cnn, CnnConfig};
use em_protein::io::{self, DuplicatePolicy, LengthRule, ReadOptions};
use em_protein::sequence::{ScoredSequences, Sequence};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::cache::write_atomic;
use crate::workflow::protein::Predictor;

/// The data stage's summary of the split.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SplitInfo {
    /// `gfp` / `aav`.
    pub task: String,
    /// `medium` / `hard`.
    pub difficulty: String,
    /// `ggs` (GGS's own split file) or `rebuild` (from the ground truth).
    #[serde(default = "rebuild")]
    pub source: String,
    /// Sequence length.
    pub length: usize,
    /// Rows of the whole ground truth.
    pub n_ground_truth: usize,
    /// Rows of the training split.
    pub n_train: usize,
    /// Rows inside the percentile window (before the edit filter; rebuilt splits only).
    pub n_window: Option<usize>,
    /// Top-percentile sequences the split keeps its distance from (rebuilt splits only).
    pub n_top: Option<usize>,
    /// Score window of the split (for GGS's files: their score range).
    pub lo_score: f64,
    /// Upper end of the window.
    pub hi_score: f64,
    /// Ground-truth minimum (normalisation).
    pub min_gt: f64,
    /// Ground-truth maximum (normalisation).
    pub max_gt: f64,
}

fn rebuild() -> String {
    "rebuild".into()
}

/// One seed's designs with one interaction setting, best first by the predictor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    /// Design seed.
    pub seed: u64,
    /// `quadratic`, `kernel` or `none`.
    pub interaction: String,
    /// Chains run.
    pub n_samples: usize,
    /// Distinct decoded sequences.
    pub n_unique: usize,
    /// Kept designs, as letters.
    pub sequences: Vec<String>,
    /// Raw predictor score of each.
    pub predictor_scores: Vec<f64>,
    /// Normalised predictor fitness of each.
    pub predictor_fitness: Vec<f64>,
    /// Distinct samples passed over as already measured (own data; 0 in older files).
    #[serde(default)]
    pub skipped_measured: usize,
    /// Distinct samples passed over as within `min_distance` of a better design.
    #[serde(default)]
    pub skipped_close: usize,
    /// Std of the raw scores over the predictor ensemble's members (absent for one
    /// predictor).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub predictor_spread: Vec<f64>,
    /// Wall time of this batch, seconds.
    pub wall_secs: f64,
}

impl Batch {
    /// The designs as checked sequences.
    pub fn parsed(&self) -> Result<Vec<Sequence>> {
        self.sequences
            .iter()
            .map(|s| {
                s.parse::<Sequence>()
                    .map_err(|e| anyhow::anyhow!("design `{s}`: {e}"))
            })
            .collect()
    }
}

/// File name of a design batch.
pub fn batch_file(seed: u64, interaction: &str) -> String {
    format!("batch_seed{seed}_{interaction}.json")
}

/// Write `value` as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, serde_json::to_string_pretty(value)?.as_bytes())
}

/// Read a JSON file written by [`write_json`].
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))
}

/// The data stage's split summary.
pub fn read_split(data_dir: &Path) -> Result<SplitInfo> {
    read_json(&data_dir.join("split.json"))
}

/// The data stage's training table (`sequence,score`).
pub fn read_train(data_dir: &Path) -> Result<ScoredSequences> {
    let options = ReadOptions {
        length: LengthRule::SameAsFirst,
        duplicates: DuplicatePolicy::Keep,
        ..ReadOptions::default()
    };
    Ok(io::read_scored(&data_dir.join("train.csv"), &options)?.0)
}

/// Path of the predictor inside the predictor stage's directory.
pub fn predictor_path(dir: &Path) -> PathBuf {
    dir.join("predictor.safetensors")
}

/// Path of ensemble member `member` (0: [`predictor_path`]; then `predictor_<member>`).
pub fn member_path(dir: &Path, member: usize) -> PathBuf {
    match member {
        0 => predictor_path(dir),
        m => dir.join(format!("predictor_{m}.safetensors")),
    }
}

/// Load the predictor a predictor stage wrote (shape from the plan's settings; an
/// ensemble's member 0).
pub fn load_predictor(dir: &Path, cfg: &Predictor, device: &Device) -> Result<Cnn> {
    load_member(dir, cfg, 0, device)
}

/// Load every member of the predictor ensemble a predictor stage wrote.
pub fn load_predictors(dir: &Path, cfg: &Predictor, device: &Device) -> Result<Vec<Cnn>> {
    (0..cfg.ensemble())
        .map(|m| load_member(dir, cfg, m, device))
        .collect()
}

fn load_member(dir: &Path, cfg: &Predictor, member: usize, device: &Device) -> Result<Cnn> {
    let path = member_path(dir, member);
    let shape = cfg.train_config(0).map_or_else(CnnConfig::new, |t| t.cnn());
    shape
        .load(&path, device)
        .with_context(|| format!("cannot load predictor {}", path.display()))
}
