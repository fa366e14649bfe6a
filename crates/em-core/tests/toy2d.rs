//! End-to-end 2D check: Energy Matching on 8 gaussians (flow warm-up, then a short CD phase),
//! Langevin samples from noise, RBF MMD against the target below a measured bar; the same bar
//! fails for the untrained model.

use burn::prelude::*;
use em_core::langevin::{LangevinConfig, sample};
use em_core::loss::flow::host_normal;
use em_core::nn::{MlpPotential, MlpPotentialConfig};
use em_core::schedule::Schedule;
use em_core::toy::{Toy, mmd_rbf};
use em_core::train::{TrainConfig, Trainer};
use rand::SeedableRng;
use rand::rngs::StdRng;

const N: usize = 2000;
const BANDWIDTH: f64 = 0.5;

fn config() -> TrainConfig {
    TrainConfig {
        lr: 3e-3,
        lr_warmup_steps: 50,
        total_steps: 700,
        flow_steps: 650,
        batch_size: 128,
        lambda_cd: 1e-2,
        cd_clamp: 1.0,
        eps_max: 0.01,
        tau_star: 0.5,
        neg_steps: 100,
        neg_dt: 0.01,
        ema_decay: 0.99,
        checkpoint_every: 0,
        seed: 5,
        ..Default::default()
    }
}

fn untrained() -> MlpPotential {
    let dev = Device::flex().autodiff();
    dev.seed(11);
    MlpPotentialConfig::new(2)
        .with_hidden(64)
        .with_blocks(2)
        .init(&dev)
}

/// MMD between `N` Langevin samples (from N(0, I), t in [0, 1.5], ramp schedule) and `N` fresh
/// target points.
fn score(model: &MlpPotential, eps_max: f64) -> f64 {
    let dev = Device::flex();
    let x0 = host_normal(N, 2, &mut StdRng::seed_from_u64(21), &dev);
    let cfg = LangevinConfig::new(
        150,
        0.01,
        Schedule::Ramp {
            tau_star: 0.5,
            eps_max,
        },
    );
    let xs = sample(&model.valid(), &[], x0, &cfg, 22).unwrap().x;
    let xs = xs.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    let target = Toy::EightGaussians.sample(N, 23).unwrap();
    mmd_rbf(&xs, target.values(), 2, BANDWIDTH)
}

#[test]
fn trained_potential_samples_the_target_and_untrained_does_not() {
    let data = Toy::EightGaussians.sample(4096, 4).unwrap();
    let cfg = config();
    let eps_max = cfg.eps_max;
    let before = score(&untrained(), eps_max);
    let mut trainer = Trainer::new(untrained(), cfg.check().unwrap());
    trainer.fit(&data).unwrap();
    let after = score(trainer.model(), eps_max);
    let ema = score(trainer.ema(), eps_max);
    eprintln!("MMD^2 untrained {before:.5}, trained {after:.5}, EMA {ema:.5}");
    // Measured (seed 5 training, 11 init, 21/22 sampling, 23 target; flex CPU, f32), with the
    // flow loss averaged over coordinates and negatives all from data (issue 14): untrained
    // 0.13795, trained 0.02515, EMA 0.02159 (with the old sum over coordinates and half the
    // negatives from noise: 0.02528 / 0.02167). For scale: 1500 steps gave 0.0220, and
    // sampling with eps_max in {0, 0.01, 0.03, 0.1} or 100-300 steps gave 0.021-0.036, so
    // the residual is model error, not sampler noise. Bar: 0.04, 1.6x the trained value and
    // 3.4x below the untrained one.
    let bar = 0.04;
    assert!(after < bar, "trained MMD^2 {after} >= bar {bar}");
    assert!(before >= bar, "untrained MMD^2 {before} < bar {bar}");
}
