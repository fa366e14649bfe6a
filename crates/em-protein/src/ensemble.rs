//! An ensemble of GGS CNN predictors trained on the same rows from different initial weights
//! and batch orders, sharing one held-out draw: its mean prediction, its spread (the std over
//! members), and the held-out Spearman of the mean.

use burn::prelude::*;

use crate::cnn::{Cnn, CnnError};
use crate::predictor::{
    EpochReport, PredictorError, TrainPredictorConfig, TrainReport, held_out_agreement,
    train_predictor,
};

/// Trains `k >= 1` members with [`train_predictor`] (member `i` with
/// `config.member = i`: its own initial weights and batch order, the held-out rows of
/// `config.seed`); `progress` sees `(member, epoch)`. One member returns exactly
/// [`train_predictor`]'s result. With more, the report's held-out Spearman, Pearson and
/// `held_out` pairs are the members' mean prediction's, and `members` holds each member's
/// own report.
pub fn train_ensemble(
    data: &[(Vec<u8>, f32)],
    config: &TrainPredictorConfig,
    k: usize,
    device: &Device,
    mut progress: impl FnMut(usize, &EpochReport),
) -> Result<(Vec<Cnn>, TrainReport), PredictorError> {
    if k == 0 {
        return Err(PredictorError::InvalidConfig {
            field: "ensemble",
            value: "0".into(),
            why: "must be at least 1",
        });
    }
    let mut models = Vec::with_capacity(k);
    let mut reports = Vec::with_capacity(k);
    for member in 0..k {
        let cfg = TrainPredictorConfig {
            member: member as u64,
            ..config.clone()
        };
        let (cnn, report) = train_predictor(data, &cfg, device, |e| progress(member, e))?;
        models.push(cnn);
        reports.push(report);
    }
    if k == 1 {
        let report = reports.pop().expect("one member");
        return Ok((models, report));
    }
    let mut report = reports[0].clone();
    // Every member held out the same rows in the same order: average their predictions.
    let held_out: Vec<[f32; 2]> = (0..report.held_out.len())
        .map(|i| {
            let mean = reports
                .iter()
                .map(|r| f64::from(r.held_out[i][1]))
                .sum::<f64>()
                / k as f64;
            [report.held_out[i][0], mean as f32]
        })
        .collect();
    let (truth, pred): (Vec<f32>, Vec<f32>) = held_out.iter().map(|&[t, p]| (t, p)).unzip();
    if !held_out.is_empty() {
        (report.val_spearman, report.val_pearson) = held_out_agreement(&pred, &truth);
    }
    report.held_out = held_out;
    report.members = reports;
    Ok((models, report))
}

/// Mean and population std over the `predictors` of their raw scores of `seqs` (one
/// predictor: its score, std 0).
///
/// ```
/// use burn::prelude::*;
/// use em_protein::cnn::CnnConfig;
/// let cfg = CnnConfig::new().with_kernel_size(3).with_channels(4).with_embedding(8);
/// let members = [cfg.init(1, &Device::flex()), cfg.init(2, &Device::flex())];
/// let (mean, std) = em_protein::ensemble::ensemble_scores(&members, &[vec![0, 1, 2, 3]]).unwrap();
/// assert!(mean[0].is_finite() && std[0] >= 0.0);
/// ```
pub fn ensemble_scores(
    predictors: &[Cnn],
    seqs: &[Vec<u8>],
) -> Result<(Vec<f64>, Vec<f64>), CnnError> {
    let scores: Vec<Vec<f32>> = predictors
        .iter()
        .map(|p| p.score(seqs))
        .collect::<Result<_, _>>()?;
    if let [one] = scores.as_slice() {
        return Ok((
            one.iter().map(|&v| f64::from(v)).collect(),
            vec![0.0; one.len()],
        ));
    }
    let k = scores.len() as f64;
    Ok((0..seqs.len())
        .map(|i| {
            let m = scores.iter().map(|s| f64::from(s[i])).sum::<f64>() / k;
            let var = scores
                .iter()
                .map(|s| (f64::from(s[i]) - m).powi(2))
                .sum::<f64>()
                / k;
            (m, var.sqrt())
        })
        .unzip())
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::predictor::held_out_rows;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn rows() -> Vec<(Vec<u8>, f32)> {
        let mut rng = StdRng::seed_from_u64(3);
        (0..120)
            .map(|_| {
                let s: Vec<u8> = (0..10).map(|_| rng.random_range(0..20u8)).collect();
                let y = s.iter().filter(|&&r| r < 5).count() as f32 / 4.0;
                (s, y)
            })
            .collect()
    }

    fn config() -> TrainPredictorConfig {
        TrainPredictorConfig {
            epochs: 3,
            batch_size: 16,
            learning_rate: 3e-3,
            val_samples: 30,
            keep_best: false,
            channels: 4,
            kernel_size: 3,
            seed: 9,
            ..Default::default()
        }
    }

    /// Members differ in weights but hold out the same rows; one member is
    /// `train_predictor` itself; the report's held-out pairs are the members' mean.
    #[test]
    fn members_differ_share_the_held_out_rows_and_the_report_is_the_mean() {
        let (data, cfg, device) = (rows(), config(), Device::flex());
        let (one, r1) = train_ensemble(&data, &cfg, 1, &device, |_, _| {}).unwrap();
        let (plain, rp) = train_predictor(&data, &cfg, &device, |_| {}).unwrap();
        assert_eq!(one[0].weights(), plain.weights());
        assert_eq!(r1, rp);
        assert!(r1.members.is_empty());
        let mut seen = Vec::new();
        let (models, report) =
            train_ensemble(&data, &cfg, 3, &device, |m, e| seen.push((m, e.epoch))).unwrap();
        assert_eq!(seen.len(), 9);
        assert_eq!(models.len(), 3);
        assert_eq!(models[0].weights(), plain.weights());
        assert_ne!(models[1].weights(), models[0].weights());
        assert_ne!(models[2].weights(), models[1].weights());
        assert_eq!(report.members.len(), 3);
        for (i, m) in report.members.iter().enumerate() {
            assert_eq!(m.config.member, i as u64);
            assert_eq!(
                held_out_rows(data.len(), &m.config),
                held_out_rows(data.len(), &cfg)
            );
            let truth: Vec<f32> = m.held_out.iter().map(|p| p[0]).collect();
            let want: Vec<f32> = report.held_out.iter().map(|p| p[0]).collect();
            assert_eq!(truth, want);
        }
        let val: Vec<Vec<u8>> = held_out_rows(data.len(), &cfg)
            .into_iter()
            .map(|i| data[i].0.clone())
            .collect();
        let (mean, spread) = ensemble_scores(&models, &val).unwrap();
        for ((m, s), pair) in mean.iter().zip(&spread).zip(&report.held_out) {
            assert!((m - f64::from(pair[1])).abs() < 1e-5, "{m} vs {}", pair[1]);
            assert!(*s >= 0.0);
        }
        assert!(spread.iter().any(|&s| s > 0.0));
        let rho = report.val_spearman.unwrap();
        assert!(rho.is_finite() && rho != report.members[0].val_spearman.unwrap());
        assert!(train_ensemble(&data, &cfg, 0, &device, |_, _| {}).is_err());
    }
}
