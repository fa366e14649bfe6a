//! A killed-and-resumed training run continues where it stopped (step, Adam state, EMA, RNG)
//! and ends with the same weights, bitwise, as an uninterrupted run; a checkpoint written
//! under another config is refused with an error naming the file and the field.

use burn::module::Module;
use burn::prelude::*;
use em_core::nn::{MlpPotential, MlpPotentialConfig};
use em_core::toy::Toy;
use em_core::train::{TrainConfig, Trainer};

fn weights<M: Module>(m: &M) -> Vec<f32> {
    em_core::gradcheck::param_values(m)
}

fn model(seed: u64) -> MlpPotential {
    let dev = Device::flex().autodiff();
    dev.seed(seed);
    MlpPotentialConfig::new(2)
        .with_hidden(16)
        .with_blocks(1)
        .init(&dev)
}

/// k = 6: total 12 steps, CD from step 4 (so both phases straddle the resume point),
/// a checkpoint every 3 steps.
fn config() -> TrainConfig {
    TrainConfig {
        lr: 1e-2,
        lr_warmup_steps: 5,
        total_steps: 12,
        flow_steps: 4,
        batch_size: 16,
        lambda_cd: 0.1,
        neg_steps: 5,
        allow_short_negatives: true, // 5 x 0.01: a test of resuming, not of the negatives
        ema_decay: 0.9,
        checkpoint_every: 3,
        seed: 7,
        ..Default::default()
    }
}

#[test]
fn resumed_run_matches_uninterrupted_run_bitwise() {
    let data = Toy::TwoMoons.sample(256, 1).unwrap();

    let dir_a = tempfile::tempdir().unwrap();
    let mut straight = Trainer::new(model(42), config().check().unwrap())
        .with_checkpoint_dir(dir_a.path())
        .with_log(dir_a.path().join("log.jsonl"))
        .unwrap();
    straight.fit(&data).unwrap();
    assert_eq!(straight.step_count(), 12);
    let log = std::fs::read_to_string(dir_a.path().join("log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 12);
    assert!(log.lines().last().unwrap().contains("\"phase\":\"cd\""));

    // Same seed + config -> same weights.
    let mut again = Trainer::new(model(42), config().check().unwrap());
    again.fit(&data).unwrap();
    assert_eq!(weights(straight.model()), weights(again.model()));

    // Interrupted at step 6 ("killed": the trainer is dropped), then resumed into a model
    // initialised differently, whose weights must all come from the checkpoint.
    let dir_b = tempfile::tempdir().unwrap();
    {
        let mut first =
            Trainer::new(model(42), config().check().unwrap()).with_checkpoint_dir(dir_b.path());
        first.fit_until(&data, 6).unwrap();
    }
    let mut resumed = Trainer::new(model(999), config().check().unwrap())
        .with_checkpoint_dir(dir_b.path())
        .resume()
        .unwrap();
    assert_eq!(resumed.step_count(), 6);
    resumed.fit(&data).unwrap();
    assert_eq!(resumed.step_count(), 12);
    assert_eq!(weights(straight.model()), weights(resumed.model()));
    assert_eq!(weights(straight.ema()), weights(resumed.ema()));
    assert_ne!(weights(straight.model()), weights(&model(42).valid()));
}

#[test]
fn checkpoint_from_another_config_is_refused() {
    let data = Toy::TwoMoons.sample(64, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        total_steps: 2,
        flow_steps: 2,
        ..config()
    };
    Trainer::new(model(1), cfg.clone().check().unwrap())
        .with_checkpoint_dir(dir.path())
        .fit(&data)
        .unwrap();
    let other = TrainConfig { lr: 0.5, ..cfg };
    let err = Trainer::new(model(1), other.check().unwrap())
        .with_checkpoint_dir(dir.path())
        .resume()
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("ckpt-000000002.emck") && err.contains("lr"),
        "{err}"
    );
}

#[test]
fn overflowing_loss_and_wrong_dim_are_errors_not_panics() {
    // Finite data so large that the squared flow residual overflows f32.
    let huge = em_core::data::DataMatrix::new(vec![1e30; 64], 2).unwrap();
    let mut t = Trainer::new(model(1), config().check().unwrap());
    let err = t.step(&huge).unwrap_err();
    assert!(
        matches!(err, em_core::error::Error::NonFinite { step: 0, ref what } if what == "flow loss"),
        "{err}"
    );
    let wide = em_core::data::DataMatrix::new(vec![0.5; 30], 3).unwrap();
    let err = t.step(&wide).unwrap_err().to_string();
    assert!(
        err.contains("training data") && err.contains("3 columns"),
        "{err}"
    );
}
