//! Oracles: black-box scorers of designed sequences. [`GgsCnnOracle`] is the GGS benchmark's
//! CNN oracle; [`normalise`] maps its raw score onto the task's ground-truth range.

use std::path::Path;

use burn::prelude::*;

use crate::cnn::{Cnn, CnnError};

/// A scorer of index sequences (indices per [`crate::alphabet`]); higher is fitter.
pub trait Oracle {
    /// One score per sequence, in input order.
    ///
    /// Sequences must already be checked (every index < 20, the task's length); an
    /// implementation may panic otherwise. Fallible scoring lives on the concrete types
    /// (e.g. [`GgsCnnOracle::try_score`]).
    fn score(&self, seqs: &[Vec<u8>]) -> Vec<f32>;
}

/// The GGS CNN oracle of a task (`{gfp,aav}/oracle.safetensors`), scoring raw (not
/// normalised) values on the ground truth's scale.
#[derive(Debug, Clone)]
pub struct GgsCnnOracle {
    cnn: Cnn,
}

impl GgsCnnOracle {
    /// Load the oracle weights (GGS tensor names, default shape) onto `device`.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self, CnnError> {
        Ok(Self {
            cnn: Cnn::load(path, device)?,
        })
    }

    /// Wrap an already built CNN (e.g. a trained predictor used as a scorer).
    pub fn from_cnn(cnn: Cnn) -> Self {
        Self { cnn }
    }

    /// The underlying CNN (for input gradients or saving).
    pub fn cnn(&self) -> &Cnn {
        &self.cnn
    }

    /// Raw scores, with an error naming the first sequence that is too short or holds an
    /// index outside the alphabet.
    pub fn try_score(&self, seqs: &[Vec<u8>]) -> Result<Vec<f32>, CnnError> {
        self.cnn.score(seqs)
    }
}

impl Oracle for GgsCnnOracle {
    /// Panics on an unchecked sequence (shorter than 5 or an index >= 20).
    fn score(&self, seqs: &[Vec<u8>]) -> Vec<f32> {
        match self.try_score(seqs) {
            Ok(scores) => scores,
            Err(e) => panic!("GgsCnnOracle::score on an unchecked sequence: {e}"),
        }
    }
}

/// The GGS protocol's normalised fitness `(score - min_gt) / (max_gt - min_gt)`, with
/// min/max over the task's whole ground truth (GFP 1.2834 / 4.1231 on the protein-level
/// file). Values outside `[0, 1]` are kept (a design may beat the best measured sequence).
///
/// ```
/// use em_protein::oracle::normalise;
/// assert_eq!(normalise(3.0, 1.0, 5.0), 0.5);
/// assert_eq!(normalise(6.0, 1.0, 5.0), 1.25);
/// ```
pub fn normalise(score: f32, min_gt: f32, max_gt: f32) -> f32 {
    (score - min_gt) / (max_gt - min_gt)
}

/// Minimum and maximum of ground-truth scores, for [`normalise`]; `None` when empty or
/// when any score is NaN.
///
/// ```
/// use em_protein::oracle::score_range;
/// assert_eq!(score_range(&[2.0, -1.0, 4.0]), Some((-1.0, 4.0)));
/// ```
pub fn score_range(scores: &[f32]) -> Option<(f32, f32)> {
    if scores.is_empty() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let min = scores.iter().copied().fold(f32::INFINITY, f32::min);
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    Some((min, max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cnn::CnnConfig;

    #[test]
    fn normalise_ends_and_middle() {
        assert_eq!(normalise(1.2834, 1.2834, 4.1231), 0.0);
        assert_eq!(normalise(4.1231, 1.2834, 4.1231), 1.0);
        assert!((normalise(2.0, 0.0, 8.0) - 0.25).abs() < 1e-7);
        assert_eq!(score_range(&[]), None);
        assert_eq!(score_range(&[1.0, f32::NAN]), None);
    }

    #[test]
    fn trait_and_try_score_agree() {
        let device = Device::flex();
        let cnn = CnnConfig::new()
            .with_channels(3)
            .with_embedding(4)
            .init(11, &device);
        let oracle = GgsCnnOracle::from_cnn(cnn);
        let seqs = vec![vec![1u8; 8], vec![19u8; 8]];
        assert_eq!(oracle.score(&seqs), oracle.try_score(&seqs).unwrap());
        assert!(oracle.try_score(&[vec![1u8; 4]]).is_err());
    }
}
