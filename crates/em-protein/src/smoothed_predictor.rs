//! GGS's smoothed predictor (kirjner/GGS v2: `GS.py`, then `train_predictor.py` on its output):
//! a plain predictor trained on the measured labels scores the training sequences and random
//! single mutants of them, those scores are smoothed over the sequences' kNN graph
//! ([`crate::smoothing`]), and a second predictor is trained on the smoothed labels. Both are
//! measured on the same held-out measured rows, which no graph node repeats.

use std::collections::HashSet;

use burn::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::alphabet::ALPHABET_SIZE;
use crate::cnn::{Cnn, CnnError};
use crate::predictor::{
    EpochReport, PredictorError, TrainPredictorConfig, TrainReport, held_out_rows, train_predictor,
    train_predictor_held_out,
};
use crate::smoothing::{SmoothingError, ggs_neighbours, knn_graph, tikhonov_smooth};

/// Settings of the smoothing step. GGS's GFP/AAV-hard runs (`tik-gamma-1_smoothed/ham1_n-250K`)
/// use gamma 1, 250,000 nodes and 50 epochs; the node count here defaults to 20,000 so that a
/// 2-core CPU builds the graph (all pairs) and trains on it in minutes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabelSmoothing {
    /// Tikhonov weight: smoothed labels solve `(I + gamma L) y_s = y`.
    pub gamma: f64,
    /// Graph nodes: the training sequences, then random single mutants of them (GGS's `ham1`
    /// exploration, seeded by the predictor seed) up to this count.
    pub nodes: usize,
    /// Epochs of the predictor trained on the smoothed labels.
    pub epochs: usize,
}

impl Default for LabelSmoothing {
    fn default() -> Self {
        Self {
            gamma: 1.0,
            nodes: 20_000,
            epochs: 50,
        }
    }
}

/// What smoothing did, for `predictor.json` and the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmoothingReport {
    /// The settings.
    pub settings: LabelSmoothing,
    /// Graph nodes (training sequences + mutants).
    pub nodes: usize,
    /// Of them, distinct training sequences.
    pub measured_nodes: usize,
    /// Neighbours per node (GGS: `floor(sqrt(nodes))`).
    pub neighbours: usize,
    /// `y^T L y` of the plain predictor's scores on the nodes.
    pub roughness_before: f64,
    /// `y^T L y` of the smoothed labels.
    pub roughness_after: f64,
    /// The plain predictor's training (its held-out Spearman is the one to compare with).
    pub plain: TrainReport,
}

/// A trained smoothed predictor with the plain one it was smoothed from.
#[derive(Debug, Clone)]
pub struct Smoothed {
    /// The predictor trained on the smoothed labels.
    pub predictor: Cnn,
    /// Its training (held-out rows: the plain predictor's, measured labels).
    pub report: TrainReport,
    /// The graph and the plain predictor's report.
    pub smoothing: SmoothingReport,
    /// The plain predictor (measured labels), whose scores were smoothed.
    pub plain: Cnn,
}

/// Why a smoothed predictor could not be trained.
#[derive(Debug, thiserror::Error)]
pub enum SmoothedError {
    /// Either training rejected a setting or a row.
    #[error(transparent)]
    Training(#[from] PredictorError),
    /// The graph or the solve failed.
    #[error(transparent)]
    Smoothing(#[from] SmoothingError),
    /// Scoring the nodes failed.
    #[error(transparent)]
    Scoring(#[from] CnnError),
    /// A setting is out of range.
    #[error("invalid smoothing setting `{0}`: {1}")]
    Setting(&'static str, &'static str),
}

/// Train the plain predictor on `data` under `config` (as [`train_predictor`] does), smooth its
/// scores over the graph of the training sequences and their mutants, and train the predictor
/// returned on the smoothed labels (`smoothing.epochs`, otherwise `config`'s settings), keeping
/// the epoch best on the plain predictor's held-out rows. `progress` sees `"plain"` then
/// `"smoothed"` epochs. Same inputs give the same weights.
pub fn train_smoothed_predictor(
    data: &[(Vec<u8>, f32)],
    config: &TrainPredictorConfig,
    smoothing: &LabelSmoothing,
    device: &Device,
    mut progress: impl FnMut(&str, &EpochReport),
) -> Result<Smoothed, SmoothedError> {
    if smoothing.epochs == 0 {
        return Err(SmoothedError::Setting("epochs", "must be at least 1"));
    }
    if !(smoothing.gamma.is_finite() && smoothing.gamma >= 0.0) {
        return Err(SmoothedError::Setting("gamma", "must be finite and >= 0"));
    }
    let (plain, plain_report) = train_predictor(data, config, device, |e| progress("plain", e))?;
    let held: Vec<usize> = held_out_rows(data.len(), config);
    let held_set: HashSet<usize> = held.iter().copied().collect();
    let held_out: Vec<(Vec<u8>, f32)> = held.iter().map(|&i| data[i].clone()).collect();
    let train: Vec<&[u8]> = (0..data.len())
        .filter(|i| !held_set.contains(i))
        .map(|i| data[i].0.as_slice())
        .collect();
    let taken: HashSet<&[u8]> = held_out.iter().map(|r| r.0.as_slice()).collect();
    let nodes = graph_nodes(&train, &taken, smoothing.nodes, config.seed);
    let measured_nodes = nodes.iter().filter(|n| n.1).count();
    let nodes: Vec<Vec<u8>> = nodes.into_iter().map(|n| n.0).collect();
    if nodes.len() < 2 {
        return Err(SmoothingError::TooSmall {
            n: nodes.len(),
            k: 1,
        }
        .into());
    }
    let y: Vec<f64> = plain.score(&nodes)?.into_iter().map(f64::from).collect();
    let k = ggs_neighbours(nodes.len()).max(1);
    let graph = knn_graph(&nodes, k)?;
    let ys = tikhonov_smooth(&graph, &y, smoothing.gamma)?;
    let report = SmoothingReport {
        settings: smoothing.clone(),
        nodes: nodes.len(),
        measured_nodes,
        neighbours: k,
        roughness_before: graph.quadratic_form(&y),
        roughness_after: graph.quadratic_form(&ys),
        plain: plain_report,
    };
    let rows: Vec<(Vec<u8>, f32)> = nodes
        .into_iter()
        .zip(ys.iter().map(|&v| v as f32))
        .collect();
    let smoothed_config = TrainPredictorConfig {
        epochs: smoothing.epochs,
        ..config.clone()
    };
    let (predictor, trained) =
        train_predictor_held_out(&rows, &held_out, &smoothed_config, device, |e| {
            progress("smoothed", e)
        })?;
    Ok(Smoothed {
        predictor,
        report: trained,
        smoothing: report,
        plain,
    })
}

/// The distinct `train` sequences (marked `true`), then distinct single mutants of them (GGS's
/// `ham1`: a seeded random position and residue, the next parent taken only after a new
/// sequence was found) until `target` nodes or `2 * target` draws. Nothing in `taken` becomes
/// a node.
fn graph_nodes(
    train: &[&[u8]],
    taken: &HashSet<&[u8]>,
    target: usize,
    seed: u64,
) -> Vec<(Vec<u8>, bool)> {
    let mut seen: HashSet<Vec<u8>> = taken.iter().map(|s| s.to_vec()).collect();
    let mut nodes: Vec<(Vec<u8>, bool)> = Vec::new();
    for s in train {
        if seen.insert(s.to_vec()) {
            nodes.push((s.to_vec(), true));
        }
    }
    let parents = nodes.len();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6A09_E667_F3BC_C908);
    let (mut pointer, mut draws) = (0, 0);
    while parents > 0 && !nodes[0].0.is_empty() && nodes.len() < target && draws < 2 * target {
        draws += 1;
        let mut child = nodes[pointer].0.clone();
        let at = rng.random_range(0..child.len());
        child[at] = rng.random_range(0..ALPHABET_SIZE as u8);
        if seen.insert(child.clone()) {
            nodes.push((child, false));
            pointer = (pointer + 1) % parents;
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::spearman_f32;

    fn rows(n: usize, seed: u64) -> Vec<(Vec<u8>, f32)> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let s: Vec<u8> = (0..10).map(|_| rng.random_range(0..20u8)).collect();
                let y = s.iter().filter(|&&r| r < 5).count() as f32 / 4.0;
                (s, y)
            })
            .collect()
    }

    #[test]
    fn nodes_are_the_training_sequences_then_distinct_single_mutants_never_a_held_out_one() {
        let data = rows(30, 1);
        let train: Vec<&[u8]> = data[..25].iter().map(|r| r.0.as_slice()).collect();
        let taken: HashSet<&[u8]> = data[25..].iter().map(|r| r.0.as_slice()).collect();
        let nodes = graph_nodes(&train, &taken, 200, 3);
        assert_eq!(nodes.len(), 200);
        assert!(nodes[..25].iter().all(|n| n.1) && nodes[25..].iter().all(|n| !n.1));
        let distinct: HashSet<&Vec<u8>> = nodes.iter().map(|n| &n.0).collect();
        assert_eq!(distinct.len(), 200);
        for n in &nodes[25..] {
            assert!(!taken.contains(n.0.as_slice()));
            let parent_distance = train
                .iter()
                .map(|t| t.iter().zip(&n.0).filter(|(a, b)| a != b).count())
                .min();
            assert_eq!(parent_distance, Some(1));
        }
        assert_eq!(nodes, graph_nodes(&train, &taken, 200, 3));
    }

    #[test]
    fn the_smoothed_predictor_is_measured_on_the_plain_ones_held_out_rows() {
        let data = rows(120, 3);
        let config = TrainPredictorConfig {
            epochs: 6,
            batch_size: 32,
            learning_rate: 3e-3,
            val_samples: 20,
            channels: 8,
            kernel_size: 3,
            seed: 5,
            ..TrainPredictorConfig::default()
        };
        let smoothing = LabelSmoothing {
            gamma: 1.0,
            nodes: 400,
            epochs: 4,
        };
        let device = Device::flex();
        let mut phases = Vec::new();
        let Smoothed {
            predictor: cnn,
            report,
            smoothing: sm,
            ..
        } = train_smoothed_predictor(&data, &config, &smoothing, &device, |p, _| {
            phases.push(p.to_string())
        })
        .unwrap();
        assert_eq!(phases.iter().filter(|p| *p == "plain").count(), 6);
        assert_eq!(phases.iter().filter(|p| *p == "smoothed").count(), 4);
        assert_eq!((sm.nodes, sm.measured_nodes, sm.neighbours), (400, 100, 20));
        assert!(sm.roughness_after < sm.roughness_before);
        // the same held-out rows, measured, in the same order
        let held = held_out_rows(data.len(), &config);
        let truth: Vec<f32> = held.iter().map(|&i| data[i].1).collect();
        let plain_truth: Vec<f32> = sm.plain.held_out.iter().map(|p| p[0]).collect();
        let smoothed_truth: Vec<f32> = report.held_out.iter().map(|p| p[0]).collect();
        assert_eq!(plain_truth, truth);
        assert_eq!(smoothed_truth, truth);
        assert_eq!(report.train_rows, 400);
        let seqs: Vec<Vec<u8>> = held.iter().map(|&i| data[i].0.clone()).collect();
        let pred = cnn.score(&seqs).unwrap();
        assert_eq!(spearman_f32(&pred, &truth), report.val_spearman);
        let again =
            train_smoothed_predictor(&data, &config, &smoothing, &device, |_, _| {}).unwrap();
        assert_eq!(again.predictor.score(&seqs).unwrap(), pred);
    }
}
