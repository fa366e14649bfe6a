//! Training a GGS CNN predictor on a split's (sequence, score) pairs: MSE, Adam, GGS's
//! hyper-parameters by default, a seeded held-out set for Spearman and best-epoch selection.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::TensorData;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::cnn::{Cnn, CnnConfig, one_hot_tensor, tensor_to_vec};
use crate::stats::{pearson, spearman_f32};

/// Settings for [`train_predictor`]. Defaults follow GGS's predictor config
/// (kirjner/GGS `ckpt/*/predictor/config.yaml`): Adam lr 1e-4, weight decay 1e-4 (L2 added
/// to the gradient, as `torch.optim.Adam` does), batch 1024, 200 held-out sequences,
/// checkpoint kept by held-out Spearman. GGS trains up to 1000 epochs; the default here
/// is 100, pass more for a benchmark-grade predictor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainPredictorConfig {
    /// Passes over the training rows.
    pub epochs: usize,
    /// Rows per Adam step.
    pub batch_size: usize,
    /// Adam step size.
    pub learning_rate: f64,
    /// L2 penalty added to the gradients (0 disables it).
    pub weight_decay: f32,
    /// Adam's epsilon (PyTorch's default 1e-8).
    pub epsilon: f32,
    /// Rows held out (seeded draw) for Spearman; 0 trains on everything and keeps the last epoch.
    pub val_samples: usize,
    /// Keep the epoch with the best held-out Spearman (GGS's checkpoint rule) instead of the last.
    pub keep_best: bool,
    /// Seed for the initial weights, the held-out draw and the batch order.
    pub seed: u64,
    /// CNN convolution channels (GGS `input_size`; embedding is twice this).
    pub channels: usize,
    /// CNN kernel width.
    pub kernel_size: usize,
}

impl Default for TrainPredictorConfig {
    fn default() -> Self {
        Self {
            epochs: 100,
            batch_size: 1024,
            learning_rate: 1e-4,
            weight_decay: 1e-4,
            epsilon: 1e-8,
            val_samples: 200,
            keep_best: true,
            seed: 420,
            channels: 256,
            kernel_size: 5,
        }
    }
}

/// Errors from [`train_predictor`], naming the setting or the row at fault.
#[derive(Debug, thiserror::Error)]
pub enum PredictorError {
    /// A setting is out of range.
    #[error("invalid predictor setting `{field}` = {value}: {why}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// Its value.
        value: String,
        /// Why it is rejected.
        why: &'static str,
    },
    /// The rows cannot be trained on (too few, ragged, bad residue, non-finite score).
    #[error("training data row {row}: {why}")]
    BadRow {
        /// Index of the row.
        row: usize,
        /// What is wrong.
        why: String,
    },
}

/// One epoch's figures, passed to the progress callback and kept in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training MSE over the epoch's batches.
    pub train_mse: f64,
    /// Spearman on the held-out rows (`None` without held-out rows).
    pub val_spearman: Option<f64>,
}

/// What training did, for logs and reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// The settings used.
    pub config: TrainPredictorConfig,
    /// Rows trained on.
    pub train_rows: usize,
    /// Rows held out.
    pub val_rows: usize,
    /// The epoch whose weights were returned.
    pub chosen_epoch: usize,
    /// Held-out Spearman of the returned weights (optimistic when `keep_best` chose it).
    pub val_spearman: Option<f64>,
    /// Held-out Pearson of the returned weights.
    pub val_pearson: Option<f64>,
    /// Every epoch.
    pub history: Vec<EpochReport>,
}

impl TrainPredictorConfig {
    fn check(&self, rows: usize) -> Result<(), PredictorError> {
        let bad =
            |field, value: String, why| Err(PredictorError::InvalidConfig { field, value, why });
        if self.epochs == 0 {
            return bad("epochs", "0".into(), "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "0".into(), "must be at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(
                "learning_rate",
                self.learning_rate.to_string(),
                "must be finite and > 0",
            );
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(
                "weight_decay",
                self.weight_decay.to_string(),
                "must be finite and >= 0",
            );
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return bad(
                "epsilon",
                self.epsilon.to_string(),
                "must be finite and > 0",
            );
        }
        if self.channels == 0 || self.kernel_size == 0 {
            return bad(
                "channels/kernel_size",
                format!("{}/{}", self.channels, self.kernel_size),
                "must be at least 1",
            );
        }
        if self.val_samples + 1 > rows {
            return bad(
                "val_samples",
                self.val_samples.to_string(),
                "leaves no rows to train on",
            );
        }
        Ok(())
    }

    /// The CNN shape these settings train (GGS: embedding = 2 x channels).
    pub fn cnn(&self) -> CnnConfig {
        CnnConfig::new()
            .with_channels(self.channels)
            .with_embedding(2 * self.channels)
            .with_kernel_size(self.kernel_size)
    }
}

fn check_rows(data: &[(Vec<u8>, f32)], kernel: usize) -> Result<usize, PredictorError> {
    let length = data.first().map(|r| r.0.len()).unwrap_or(0);
    for (row, (seq, score)) in data.iter().enumerate() {
        let why = if seq.len() != length {
            format!("length {} differs from the first row's {length}", seq.len())
        } else if seq.len() < kernel {
            format!("length {} is shorter than the kernel ({kernel})", seq.len())
        } else if let Some(r) = seq.iter().find(|&&r| r >= 20) {
            format!("residue index {r} is outside the alphabet")
        } else if !score.is_finite() {
            format!("score {score} is not finite")
        } else {
            continue;
        };
        return Err(PredictorError::BadRow { row, why });
    }
    Ok(length)
}

/// Train a CNN predictor on `(sequence indices, score)` rows of one length. Runs on
/// `device` with autodiff (added if absent); `progress` sees every epoch. Same data,
/// config and device kind give the same weights.
pub fn train_predictor(
    data: &[(Vec<u8>, f32)],
    config: &TrainPredictorConfig,
    device: &Device,
    mut progress: impl FnMut(&EpochReport),
) -> Result<(Cnn, TrainReport), PredictorError> {
    config.check(data.len())?;
    let length = check_rows(data, config.kernel_size)?;
    let ad = if device.is_autodiff() {
        device.clone()
    } else {
        device.clone().autodiff()
    };
    let (order, mut rng) = shuffled_rows(data.len(), config.seed);
    let (val, train) = order.split_at(config.val_samples);
    let mut train = train.to_vec();
    let val_seqs: Vec<Vec<u8>> = val.iter().map(|&i| data[i].0.clone()).collect();
    let val_truth: Vec<f32> = val.iter().map(|&i| data[i].1).collect();

    let mut model = config.cnn().init(config.seed, &ad);
    let weight_decay =
        (config.weight_decay > 0.0).then(|| WeightDecayConfig::new(config.weight_decay));
    let mut optim = AdamConfig::new()
        .with_epsilon(config.epsilon)
        .with_weight_decay(weight_decay)
        .init();
    let mut history = Vec::with_capacity(config.epochs);
    let mut best: Option<(f64, usize, Cnn)> = None;
    for epoch in 1..=config.epochs {
        train.shuffle(&mut rng);
        let (mut sum, mut batches) = (0.0, 0);
        for chunk in train.chunks(config.batch_size) {
            let seqs: Vec<Vec<u8>> = chunk.iter().map(|&i| data[i].0.clone()).collect();
            let y: Vec<f32> = chunk.iter().map(|&i| data[i].1).collect();
            let x = one_hot_tensor(&seqs, length, &ad);
            let y: Tensor<1> = Tensor::from_data(TensorData::new(y, [chunk.len()]), &ad);
            let diff = model.forward(x) - y;
            let loss = (diff.clone() * diff).mean();
            sum += tensor_to_vec(loss.clone().detach())[0] as f64;
            batches += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(config.learning_rate, model, grads);
        }
        let val_spearman = if val_seqs.is_empty() {
            None
        } else {
            let pred = score_valid(&model, &val_seqs);
            spearman_f32(&pred, &val_truth)
        };
        let report = EpochReport {
            epoch,
            train_mse: sum / batches as f64,
            val_spearman,
        };
        progress(&report);
        history.push(report);
        if config.keep_best
            && let Some(rho) = val_spearman
            && best.as_ref().is_none_or(|(b, _, _)| rho > *b)
        {
            best = Some((rho, epoch, model.valid()));
        }
    }
    let (chosen_epoch, chosen) = match best {
        Some((_, epoch, m)) => (epoch, m),
        None => (config.epochs, model.valid()),
    };
    let (val_spearman, val_pearson) = if val_seqs.is_empty() {
        (None, None)
    } else {
        let pred = score_valid(&chosen, &val_seqs);
        let p: Vec<f64> = pred.iter().map(|&v| v as f64).collect();
        let t: Vec<f64> = val_truth.iter().map(|&v| v as f64).collect();
        (spearman_f32(&pred, &val_truth), pearson(&p, &t))
    };
    let report = TrainReport {
        config: config.clone(),
        train_rows: train.len(),
        val_rows: val_seqs.len(),
        chosen_epoch,
        val_spearman,
        val_pearson,
        history,
    };
    Ok((chosen, report))
}

/// `0..n` shuffled by the seeded generator [`train_predictor`] goes on to draw batch orders
/// from; its first `val_samples` entries are the held-out rows.
fn shuffled_rows(n: usize, seed: u64) -> (Vec<usize>, StdRng) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    (order, rng)
}

/// The rows [`train_predictor`] holds out of `n` under `config` (for measuring its result on
/// rows it never trained on).
pub fn held_out_rows(n: usize, config: &TrainPredictorConfig) -> Vec<usize> {
    let (mut order, _) = shuffled_rows(n, config.seed);
    order.truncate(config.val_samples.min(n));
    order
}

/// Scores of rows already checked by [`check_rows`].
fn score_valid(model: &Cnn, seqs: &[Vec<u8>]) -> Vec<f32> {
    model
        .score(seqs)
        .expect("rows were checked before training")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_with_defaults_and_rejects_unknown_keys() {
        let c: TrainPredictorConfig = serde_json::from_str(r#"{"epochs": 3}"#).unwrap();
        assert_eq!(c.epochs, 3);
        assert_eq!(c.batch_size, 1024);
        assert!(serde_json::from_str::<TrainPredictorConfig>(r#"{"epoch": 3}"#).is_err());
    }

    #[test]
    fn bad_settings_and_rows_are_named() {
        let device = Device::flex();
        let data = vec![
            (vec![0u8; 8], 1.0),
            (vec![1u8; 8], 2.0),
            (vec![2u8; 8], 3.0),
        ];
        let mut c = TrainPredictorConfig {
            val_samples: 1,
            ..Default::default()
        };
        c.learning_rate = -1.0;
        let err = train_predictor(&data, &c, &device, |_| {}).unwrap_err();
        assert!(err.to_string().contains("learning_rate"), "{err}");
        c.learning_rate = 1e-3;
        c.val_samples = 3;
        let err = train_predictor(&data, &c, &device, |_| {}).unwrap_err();
        assert!(err.to_string().contains("val_samples"), "{err}");
        c.val_samples = 1;
        let mut ragged = data.clone();
        ragged[2].0.push(0);
        let err = train_predictor(&ragged, &c, &device, |_| {}).unwrap_err();
        assert!(err.to_string().contains("row 2"), "{err}");
        ragged[2] = (vec![0u8; 8], f32::NAN);
        let err = train_predictor(&ragged, &c, &device, |_| {}).unwrap_err();
        assert!(err.to_string().contains("not finite"), "{err}");
    }

    /// A tiny CNN learns a motif rule (2 x [contains AAA] + [contains RR], which max
    /// pooling over windows can express) and training is reproducible: same seed, same
    /// weights.
    #[test]
    fn learns_a_motif_rule_reproducibly() {
        let device = Device::flex();
        let mut rng = StdRng::seed_from_u64(1);
        let has = |s: &[u8], m: &[u8]| s.windows(m.len()).any(|w| w == m);
        let data: Vec<(Vec<u8>, f32)> = (0..400)
            .map(|_| {
                let s: Vec<u8> = (0..10)
                    .map(|_| rand::RngExt::random_range(&mut rng, 0..3u8))
                    .collect();
                let score = 2.0 * has(&s, &[0, 0, 0]) as u8 as f32 + has(&s, &[1, 1]) as u8 as f32;
                (s, score)
            })
            .collect();
        let config = TrainPredictorConfig {
            epochs: 80,
            batch_size: 16,
            learning_rate: 1e-2,
            val_samples: 80,
            channels: 8,
            kernel_size: 3,
            seed: 5,
            ..Default::default()
        };
        let mut seen = 0;
        let (a, report) = train_predictor(&data, &config, &device, |_| seen += 1).unwrap();
        assert_eq!(seen, 80);
        assert_eq!(report.train_rows, 320);
        assert!(report.history[79].train_mse < report.history[0].train_mse);
        let rho = report.val_spearman.unwrap();
        // The truth takes 4 values, so ties cap Spearman below 1 even for a near-perfect
        // fit (predictions differ within a tie group); Pearson shows the fit itself.
        let r = report.val_pearson.unwrap();
        assert!(
            rho > 0.85 && r > 0.95,
            "held-out Spearman {rho}, Pearson {r}"
        );
        let (b, _) = train_predictor(&data, &config, &device, |_| {}).unwrap();
        assert_eq!(a.weights(), b.weights());
    }
}
