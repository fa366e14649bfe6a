//! Training a GGS CNN predictor on a split's (sequence, score) pairs: MSE, Adam, GGS's
//! hyper-parameters by default, a seeded held-out set for Spearman and best-epoch selection.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::TensorData;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::cnn::{
    Cnn, CnnAdam, CnnConfig, CnnWeights, mse_and_grads, one_hot_tensor, tensor_to_vec,
};
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
    /// Ensemble member index ([`crate::ensemble::train_ensemble`]): offsets the seed of the
    /// initial weights and of the batch order (member 0 is the plain `seed`); the held-out
    /// draw stays `seed`'s. Left out of serialised configs when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub member: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
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
            member: 0,
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
    /// `[measured, predicted]` of every held-out row under the returned weights (for a
    /// scatter plot; empty in reports written before it was recorded).
    #[serde(default)]
    pub held_out: Vec<[f32; 2]>,
    /// An ensemble's member reports (empty for one predictor). When present, the fields
    /// above describe the ensemble's mean prediction, except `config`, `chosen_epoch` and
    /// `history`, which are member 0's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<TrainReport>,
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

    /// Seed of the initial weights: `seed + member`.
    pub fn init_seed(&self) -> u64 {
        self.seed.wrapping_add(self.member)
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

/// Train a CNN predictor on `(sequence indices, score)` rows of one length; `progress` sees
/// every epoch. On the plain CPU device this runs the fused step
/// ([`crate::cnn::mse_and_grads`] + [`CnnAdam`], same loss, gradients and Adam as burn's, in
/// a fraction of the time); elsewhere (a GPU device, an autodiff one) burn's autodiff path,
/// [`train_predictor_reference`]. Same data, config and device kind give the same weights.
pub fn train_predictor(
    data: &[(Vec<u8>, f32)],
    config: &TrainPredictorConfig,
    device: &Device,
    progress: impl FnMut(&EpochReport),
) -> Result<(Cnn, TrainReport), PredictorError> {
    if *device != Device::flex() || device.is_autodiff() {
        return train_predictor_reference(data, config, device, progress);
    }
    config.check(data.len())?;
    let mut trainer = fused_trainer(config, device);
    fit(data, config, &mut trainer, progress)
}

/// [`train_predictor`] on all of `train`, with `held_out` as the held-out rows (Spearman,
/// best-epoch choice and the report's scatter) instead of a seeded draw of `config.val_samples`
/// from the data: for a predictor trained on other rows (graph-smoothed labels,
/// [`crate::smoothed_predictor`]) measured on the same measured rows as the plain one.
/// Batch order is drawn from `config.seed`. The plain CPU device runs the fused step.
pub fn train_predictor_held_out(
    train: &[(Vec<u8>, f32)],
    held_out: &[(Vec<u8>, f32)],
    config: &TrainPredictorConfig,
    device: &Device,
    progress: impl FnMut(&EpochReport),
) -> Result<(Cnn, TrainReport), PredictorError> {
    let config = TrainPredictorConfig {
        val_samples: held_out.len(),
        ..config.clone()
    };
    let data: Vec<(Vec<u8>, f32)> = train.iter().chain(held_out).cloned().collect();
    config.check(data.len())?;
    let val: Vec<usize> = (train.len()..data.len()).collect();
    let rows: Vec<usize> = (0..train.len()).collect();
    let rng = StdRng::seed_from_u64(config.init_seed());
    if *device != Device::flex() || device.is_autodiff() {
        let mut trainer = burn_trainer(&config, device);
        return fit_rows(&data, &val, rows, rng, &config, &mut trainer, progress);
    }
    let mut trainer = fused_trainer(&config, device);
    fit_rows(&data, &val, rows, rng, &config, &mut trainer, progress)
}

/// The fused CPU trainer at `config`'s initial weights.
fn fused_trainer(config: &TrainPredictorConfig, device: &Device) -> FusedTrainer {
    let cnn = config.cnn();
    let weights = cnn.init(config.init_seed(), device).weights();
    FusedTrainer {
        adam: CnnAdam::new(&weights, config.epsilon, config.weight_decay),
        cnn,
        weights,
        lr: config.learning_rate,
        device: device.clone(),
    }
}

/// burn's autodiff trainer at `config`'s initial weights (autodiff added to `device`).
fn burn_trainer(config: &TrainPredictorConfig, device: &Device) -> BurnTrainer {
    let ad = if device.is_autodiff() {
        device.clone()
    } else {
        device.clone().autodiff()
    };
    let weight_decay =
        (config.weight_decay > 0.0).then(|| WeightDecayConfig::new(config.weight_decay));
    let optim = AdamConfig::new()
        .with_epsilon(config.epsilon)
        .with_weight_decay(weight_decay)
        .init();
    BurnTrainer {
        model: Some(config.cnn().init(config.init_seed(), &ad)),
        optim,
        lr: config.learning_rate,
        device: ad,
    }
}

/// [`train_predictor`] through burn's autodiff and optimiser on `device` (autodiff added if
/// absent): the reference the fused CPU step is tested against, and the GPU path.
pub fn train_predictor_reference(
    data: &[(Vec<u8>, f32)],
    config: &TrainPredictorConfig,
    device: &Device,
    progress: impl FnMut(&EpochReport),
) -> Result<(Cnn, TrainReport), PredictorError> {
    config.check(data.len())?;
    let mut trainer = burn_trainer(config, device);
    fit(data, config, &mut trainer, progress)
}

/// One training path: an optimiser step on a batch, and the current weights.
trait Trainer {
    /// One step on `seqs` (checked index sequences of one length) against `targets`;
    /// returns the batch's mean squared error before the step.
    fn step(&mut self, seqs: &[&[u8]], targets: &[f32]) -> f64;
    /// The current weights as a plain (non-autodiff) CNN.
    fn snapshot(&self) -> Cnn;
}

/// The fused CPU step on plain weight buffers.
struct FusedTrainer {
    cnn: CnnConfig,
    weights: CnnWeights,
    adam: CnnAdam,
    lr: f64,
    device: Device,
}

impl Trainer for FusedTrainer {
    fn step(&mut self, seqs: &[&[u8]], targets: &[f32]) -> f64 {
        let (loss, grads) = mse_and_grads(&self.cnn, &self.weights, seqs, targets);
        self.adam.step(self.lr, &mut self.weights, &grads);
        loss
    }
    fn snapshot(&self) -> Cnn {
        self.cnn
            .from_weights(&self.weights, &self.device)
            .expect("weights keep the shape they were initialised with")
    }
}

/// burn's autodiff and Adam (the reference).
struct BurnTrainer {
    /// `None` only inside a step.
    model: Option<Cnn>,
    optim: ModuleOptimizer,
    lr: f64,
    device: Device,
}

impl Trainer for BurnTrainer {
    fn step(&mut self, seqs: &[&[u8]], targets: &[f32]) -> f64 {
        let owned: Vec<Vec<u8>> = seqs.iter().map(|s| s.to_vec()).collect();
        let x = one_hot_tensor(&owned, owned[0].len(), &self.device);
        let y: Tensor<1> = Tensor::from_data(
            TensorData::new(targets.to_vec(), [targets.len()]),
            &self.device,
        );
        let model = self.model.take().expect("a model between steps");
        let diff = model.forward(x) - y;
        let loss = (diff.clone() * diff).mean();
        let value = tensor_to_vec(loss.clone().detach())[0] as f64;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        self.model = Some(self.optim.step(self.lr, model, grads));
        value
    }
    fn snapshot(&self) -> Cnn {
        self.model.as_ref().expect("a model between steps").valid()
    }
}

/// The epoch loop both training paths share: row checks, the seeded held-out draw, batch
/// order, held-out Spearman, best-epoch choice and the report.
fn fit(
    data: &[(Vec<u8>, f32)],
    config: &TrainPredictorConfig,
    trainer: &mut impl Trainer,
    progress: impl FnMut(&EpochReport),
) -> Result<(Cnn, TrainReport), PredictorError> {
    let (order, mut rng) = shuffled_rows(data.len(), config.seed);
    if config.member > 0 {
        // Another member: the same held-out rows, its own batch order.
        rng = StdRng::seed_from_u64(config.init_seed() ^ 0x5851_F42D_4C95_7F2D);
    }
    let (val, train) = order.split_at(config.val_samples);
    fit_rows(data, val, train.to_vec(), rng, config, trainer, progress)
}

/// The epoch loop on given held-out rows `val` and training rows `train` of `data`, batch
/// order drawn from `rng`.
fn fit_rows(
    data: &[(Vec<u8>, f32)],
    val: &[usize],
    mut train: Vec<usize>,
    mut rng: StdRng,
    config: &TrainPredictorConfig,
    trainer: &mut impl Trainer,
    mut progress: impl FnMut(&EpochReport),
) -> Result<(Cnn, TrainReport), PredictorError> {
    check_rows(data, config.kernel_size)?;
    let val_seqs: Vec<Vec<u8>> = val.iter().map(|&i| data[i].0.clone()).collect();
    let val_truth: Vec<f32> = val.iter().map(|&i| data[i].1).collect();
    let mut history = Vec::with_capacity(config.epochs);
    let mut best: Option<(f64, usize, Cnn)> = None;
    for epoch in 1..=config.epochs {
        train.shuffle(&mut rng);
        let (mut sum, mut batches) = (0.0, 0);
        for chunk in train.chunks(config.batch_size) {
            let seqs: Vec<&[u8]> = chunk.iter().map(|&i| data[i].0.as_slice()).collect();
            let y: Vec<f32> = chunk.iter().map(|&i| data[i].1).collect();
            sum += trainer.step(&seqs, &y);
            batches += 1;
        }
        let model = trainer.snapshot();
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
            best = Some((rho, epoch, model));
        }
    }
    let (chosen_epoch, chosen) = match best {
        Some((_, epoch, m)) => (epoch, m),
        None => (config.epochs, trainer.snapshot()),
    };
    let pred = if val_seqs.is_empty() {
        Vec::new()
    } else {
        score_valid(&chosen, &val_seqs)
    };
    let (val_spearman, val_pearson) = held_out_agreement(&pred, &val_truth);
    let report = TrainReport {
        config: config.clone(),
        train_rows: train.len(),
        val_rows: val_seqs.len(),
        chosen_epoch,
        val_spearman,
        val_pearson,
        history,
        held_out: val_truth.iter().zip(&pred).map(|(&t, &p)| [t, p]).collect(),
        members: Vec::new(),
    };
    Ok((chosen, report))
}

/// Spearman and Pearson correlation of held-out predictions with the measurements (`None`
/// for no rows): the figures a [`TrainReport`] gives for one predictor or an ensemble mean.
pub(crate) fn held_out_agreement(pred: &[f32], truth: &[f32]) -> (Option<f64>, Option<f64>) {
    if pred.is_empty() {
        return (None, None);
    }
    let p: Vec<f64> = pred.iter().map(|&v| f64::from(v)).collect();
    let t: Vec<f64> = truth.iter().map(|&v| f64::from(v)).collect();
    (spearman_f32(pred, truth), pearson(&p, &t))
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

    /// The fused CPU step trains like burn's autodiff path: same losses epoch by epoch and
    /// nearly the same weights after 40 Adam steps (rounding differs: folded sums).
    #[test]
    fn fused_training_tracks_the_burn_reference() {
        let mut rng = StdRng::seed_from_u64(3);
        let data: Vec<(Vec<u8>, f32)> = (0..200)
            .map(|_| {
                let s: Vec<u8> = (0..12)
                    .map(|_| rand::RngExt::random_range(&mut rng, 0..20u8))
                    .collect();
                let y = s.iter().filter(|&&r| r < 5).count() as f32 / 4.0;
                (s, y)
            })
            .collect();
        let config = TrainPredictorConfig {
            epochs: 4,
            batch_size: 16,
            learning_rate: 3e-3,
            val_samples: 40,
            channels: 8,
            kernel_size: 3,
            seed: 2,
            ..Default::default()
        };
        let device = Device::flex();
        let (fused, a) = train_predictor(&data, &config, &device, |_| {}).unwrap();
        let (reference, b) = train_predictor_reference(&data, &config, &device, |_| {}).unwrap();
        for (x, y) in a.history.iter().zip(&b.history) {
            assert!(
                (x.train_mse - y.train_mse).abs() < 1e-4 * y.train_mse.max(1.0),
                "epoch {}: fused mse {} vs burn {}",
                x.epoch,
                x.train_mse,
                y.train_mse
            );
        }
        assert!(a.history[3].train_mse < a.history[0].train_mse);
        let (wf, wr) = (fused.weights(), reference.weights());
        let max_diff = |p: &[f32], q: &[f32]| {
            p.iter()
                .zip(q)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max)
        };
        for (name, p, q) in [
            ("encoder", &wf.encoder_weight, &wr.encoder_weight),
            ("embedding", &wf.embedding_weight, &wr.embedding_weight),
            ("decoder", &wf.decoder_weight, &wr.decoder_weight),
        ] {
            assert!(max_diff(p, q) < 1e-3, "{name}: {}", max_diff(p, q));
        }
    }
}
