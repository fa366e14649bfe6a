//! The trainer's hand-derived f32 gradients (`Potential::host_trainer`, position-sum
//! `SeqConvPotential`) track burn's autodiff, the reference path, step by step through the
//! warm-up and the contrastive phase: same losses, same gradient norms, nearby weights.

use burn::module::Module;
use burn::prelude::*;
use em_core::data::DataMatrix;
use em_core::nn::{SeqConvPotential, SeqConvPotentialConfig, SeqReadout};
use em_core::potential::Potential;
use em_core::train::{StepReport, TrainConfig, Trainer};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

fn weights<M: Module>(m: &M) -> Vec<f32> {
    em_core::gradcheck::param_values(m)
}

const LEN: usize = 9;
const CH: usize = 4;

/// The device RNG is shared by the tests of this binary, which run in parallel: seed and
/// draw under one lock so every call gets the same initial weights.
fn model() -> SeqConvPotential {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    let dev = Device::flex().autodiff();
    dev.seed(3);
    let model = SeqConvPotentialConfig::new(LEN, CH)
        .with_hidden_channels(8)
        .with_blocks(2)
        .with_head_hidden(6)
        .with_readout(SeqReadout::PositionSum)
        .with_output_scale(10.0)
        .init(&dev);
    // burn initialises parameters lazily, at first use: draw them now, under the lock.
    weights(&model);
    model
}

/// One-hot rows in [-1, 1] with a preferred residue per position (data with structure).
fn data() -> DataMatrix {
    let mut rng = StdRng::seed_from_u64(5);
    let rows = 96;
    let mut v = Vec::with_capacity(rows * LEN * CH);
    for _ in 0..rows {
        for l in 0..LEN {
            let hot = if rng.random::<f32>() < 0.7 {
                l % CH
            } else {
                rng.random_range(0..CH)
            };
            v.extend((0..CH).map(|a| if a == hot { 1.0 } else { -1.0 }));
        }
    }
    assert_eq!(v.len(), rows * LEN * CH);
    DataMatrix::new(v, LEN * CH).unwrap()
}

/// 10 steps, the contrastive term from step 5 with 20 x 0.05 negatives.
fn config() -> TrainConfig {
    TrainConfig {
        lr: 2e-3,
        lr_warmup_steps: 2,
        total_steps: 10,
        flow_steps: 5,
        batch_size: 24,
        lambda_cd: 0.05,
        neg_steps: 20,
        neg_dt: 0.05,
        ema_decay: 0.9,
        seed: 11,
        ..Default::default()
    }
}

fn run(host: bool) -> (Vec<StepReport>, Vec<f32>) {
    let data = data();
    let mut trainer = Trainer::new(model(), config().check().unwrap()).with_host_kernels(host);
    let reports = (0..10).map(|_| trainer.step(&data).unwrap()).collect();
    (reports, weights(trainer.model()))
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (a.abs().max(b.abs()) + 1e-12)
}

#[test]
fn host_gradients_track_burn_autodiff_through_both_phases() {
    assert!(
        model().host_trainer().is_some(),
        "position-sum f32 model has a host trainer"
    );
    let (fused, fused_w) = run(true);
    let (reference, reference_w) = run(false);
    for (f, r) in fused.iter().zip(&reference) {
        assert_eq!(f.phase, r.phase);
        assert!(
            close(f.flow, r.flow, 1e-3),
            "step {}: flow {} vs {}",
            f.step,
            f.flow,
            r.flow
        );
        assert!(
            close(f.grad_norm, r.grad_norm, 1e-3),
            "step {}: grad norm {} vs {}",
            f.step,
            f.grad_norm,
            r.grad_norm
        );
        match (f.cd, r.cd, f.grad_cd, r.grad_cd) {
            (None, None, None, None) => {}
            (Some(a), Some(b), Some(ga), Some(gb)) => {
                assert!(close(a, b, 1e-3), "step {}: cd {a} vs {b}", f.step);
                assert!(close(ga, gb, 1e-3), "step {}: cd grad {ga} vs {gb}", f.step);
            }
            other => panic!("step {}: phases disagree {other:?}", f.step),
        }
    }
    assert_eq!(fused.last().unwrap().phase, "cd");
    // The contrastive gradient was exercised (not clamped away).
    assert!(fused.iter().any(|r| r.grad_cd.is_some_and(|g| g > 0.0)));
    let scale = reference_w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let worst = fused_w
        .iter()
        .zip(&reference_w)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        worst < 1e-4 * scale.max(1.0),
        "weights differ by {worst} (scale {scale})"
    );
}

/// The host path is reproducible: same seed, same config, same weights bitwise.
#[test]
fn host_training_is_reproducible() {
    assert_eq!(run(true).1, run(true).1);
}
