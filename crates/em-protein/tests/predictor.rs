//! Training a CNN predictor on real AAV rows (small, seeded), saving and reloading it, and
//! (ignored, a measurement) the shipped GGS predictors and an AAV-hard predictor scored
//! against the whole ground truth:
//! `cargo test -p em-protein --test predictor -- --ignored --nocapture`.

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use em_protein::benchmark::{Difficulty, SplitSpec, split};
use em_protein::cnn::Cnn;
use em_protein::datasets::Task;
use em_protein::predictor::{TrainPredictorConfig, train_predictor};
use em_protein::stats::spearman_f32;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

fn data_dir() -> PathBuf {
    std::env::var_os("EMDESIGN_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/datasets"
            ))
        })
}

fn rows(task: Task) -> Vec<(Vec<u8>, f32)> {
    let gt = task
        .ground_truth_from(&data_dir())
        .expect("ground truth loads");
    gt.sequences()
        .iter()
        .zip(gt.scores())
        .map(|(s, &y)| (s.indices().to_vec(), y as f32))
        .collect()
}

fn spearman_on(cnn: &Cnn, data: &[(Vec<u8>, f32)]) -> f64 {
    let seqs: Vec<Vec<u8>> = data.iter().map(|r| r.0.clone()).collect();
    let truth: Vec<f32> = data.iter().map(|r| r.1).collect();
    spearman_f32(&cnn.score(&seqs).expect("checked rows"), &truth).expect("defined")
}

/// 500 seeded AAV rows, 100 held out; the GGS-sized CNN for 8 epochs at batch 32 and
/// lr 1e-3 (a small-budget stand-in for GGS's 1e-4 x 1000 epochs x batch 1024).
/// Measured: held-out Spearman 0.680 after 8 epochs (shuffle seed 1, training seed 420,
/// 2.7 s); the bar 0.5 leaves room for platform differences while still meaning "learned".
#[test]
fn predictor_learns_aav_from_500_rows_and_round_trips() {
    let device = Device::flex();
    let mut all = rows(Task::Aav);
    all.shuffle(&mut StdRng::seed_from_u64(1));
    all.truncate(500);
    let config = TrainPredictorConfig {
        epochs: 8,
        batch_size: 32,
        learning_rate: 1e-3,
        val_samples: 100,
        ..Default::default()
    };
    let start = Instant::now();
    let (cnn, report) = train_predictor(&all, &config, &device, |e| {
        eprintln!(
            "epoch {} mse {:.3} val Spearman {:?}",
            e.epoch, e.train_mse, e.val_spearman
        )
    })
    .expect("trains");
    let rho = report.val_spearman.expect("held-out rows");
    eprintln!(
        "held-out Spearman {rho:.3} (epoch {}), {:.1} s",
        report.chosen_epoch,
        start.elapsed().as_secs_f64()
    );
    assert!(rho > 0.5, "held-out Spearman {rho}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("predictor.safetensors");
    cnn.save(&path).unwrap();
    let back = Cnn::load(&path, &device).unwrap();
    let probe: Vec<Vec<u8>> = all[..5].iter().map(|r| r.0.clone()).collect();
    assert_eq!(cnn.score(&probe).unwrap(), back.score(&probe).unwrap());
}

/// Measurement, not a check: Spearman over the whole ground truth of the oracle and the
/// shipped unsmoothed GGS predictors, and of a predictor trained here on AAV-hard.
#[test]
#[ignore]
fn measure_predictors_against_ground_truth() {
    let device = Device::flex();
    for task in [Task::Aav, Task::Gfp] {
        let data = rows(task);
        for file in [
            "oracle.safetensors",
            "ggs_predictor_medium_unsmoothed.safetensors",
            "ggs_predictor_hard_unsmoothed.safetensors",
        ] {
            let start = Instant::now();
            let cnn = Cnn::load(data_dir().join(task.name()).join(file), &device).unwrap();
            let rho = spearman_on(&cnn, &data);
            eprintln!(
                "MEASURE {}/{file}: Spearman {rho:.4} on all {} rows ({:.0} s)",
                task.name(),
                data.len(),
                start.elapsed().as_secs_f64()
            );
        }
    }
    let gt = Task::Aav.ground_truth_from(&data_dir()).unwrap();
    let hard = split(&gt, &SplitSpec::ggs(Difficulty::Hard));
    let train: Vec<(Vec<u8>, f32)> = hard
        .data
        .sequences()
        .iter()
        .zip(hard.data.scores())
        .map(|(s, &y)| (s.indices().to_vec(), y as f32))
        .collect();
    let epochs = std::env::var("EMDESIGN_MEASURE_EPOCHS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let config = TrainPredictorConfig {
        epochs,
        batch_size: 128,
        learning_rate: 1e-3,
        ..Default::default()
    };
    let start = Instant::now();
    let (cnn, report) = train_predictor(&train, &config, &device, |e| {
        eprintln!(
            "epoch {} mse {:.3} val {:?}",
            e.epoch, e.train_mse, e.val_spearman
        )
    })
    .unwrap();
    let all = rows(Task::Aav);
    eprintln!(
        "MEASURE aav hard ({} rows) trained predictor: held-out Spearman {:?} (epoch {}), \
         all ground truth {:.4}, {:.0} s",
        train.len(),
        report.val_spearman,
        report.chosen_epoch,
        spearman_on(&cnn, &all),
        start.elapsed().as_secs_f64()
    );
}
