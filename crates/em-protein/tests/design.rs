//! Design sampling end to end at toy scale on AAV (length 28): a tiny energy model trained
//! for a few steps on 200 ground-truth sequences, the GGS AAV predictor for guidance, and
//! checks on validity, determinism, and the effect of guidance and repulsion.

use std::path::PathBuf;
use std::sync::OnceLock;

use burn::prelude::*;
use em_core::nn::SeqConvPotential;
use em_core::schedule::Schedule;
use em_core::train::TrainConfig;
use em_protein::benchmark::Difficulty;
use em_protein::cnn::Cnn;
use em_protein::datasets::{Checkpoint, Task, data_dir};
use em_protein::design::{DesignBatch, DesignConfig, Interaction, design};
use em_protein::energy_model::{EnergyNetConfig, ProteinEnergyConfig, train_energy};
use em_protein::sequence::Sequence;

struct Fixture {
    potential: SeqConvPotential,
    predictor: Cnn,
    min_gt: f64,
    max_gt: f64,
}

fn data() -> PathBuf {
    data_dir(None).unwrap_or_else(|_| {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/datasets"
        ))
    })
}

/// Trained once per test binary: 40 steps (30 flow, 10 flow + CD) on 200 evenly spaced
/// ground-truth rows; about a second on one core.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let device = Device::flex();
        let gt = Task::Aav.ground_truth().unwrap();
        let (min_gt, max_gt) = gt.score_range().unwrap();
        let step = gt.len() / 200;
        let train: Vec<Sequence> = (0..200).map(|i| gt.sequences()[i * step].clone()).collect();
        let cfg = ProteinEnergyConfig {
            model: EnergyNetConfig {
                hidden_channels: 8,
                blocks: 1,
                head_hidden: 16,
                ..Default::default()
            },
            train: TrainConfig {
                total_steps: 40,
                flow_steps: 30,
                batch_size: 64,
                lr: 3e-3,
                lr_warmup_steps: 5,
                neg_steps: 10,
                allow_short_negatives: true, // a design-plumbing test on a tiny model
                ema_decay: 0.8,
                checkpoint_every: 0,
                seed: 3,
                ..Default::default()
            },
        };
        let potential = train_energy(&train, &cfg, None, None, &device).unwrap();
        let path = Task::Aav
            .checkpoint(
                &data(),
                Checkpoint::Predictor {
                    difficulty: Difficulty::Hard,
                    smoothed: false,
                },
            )
            .unwrap();
        let predictor = Cnn::load(&path, &device).unwrap();
        Fixture {
            potential,
            predictor,
            min_gt,
            max_gt,
        }
    })
}

/// 64 chains, 65 steps of dt = 0.02 to t = 1.3, top 32.
fn small() -> DesignConfig {
    DesignConfig {
        n_samples: 64,
        seeds: vec![7],
        dt: 0.02,
        t_end: 1.3,
        top_k: 32,
        interaction: Interaction::None,
        schedule: Schedule::Ramp {
            tau_star: 0.5,
            eps_max: 0.1,
        },
        ..Default::default()
    }
}

fn run(cfg: &DesignConfig, seed: u64) -> DesignBatch {
    let f = fixture();
    design(
        &f.potential,
        &f.predictor,
        f.min_gt,
        f.max_gt,
        cfg,
        seed,
        &Device::flex(),
    )
    .unwrap()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn designs_are_valid_unique_ranked_and_deterministic() {
    let cfg = small();
    let a = run(&cfg, 7);
    let b = run(&cfg, 7);
    assert_eq!(a, b, "same seed must give identical designs");
    assert!(!a.sequences.is_empty() && a.sequences.len() <= cfg.top_k);
    assert_eq!(a.sequences.len(), a.n_unique.min(cfg.top_k));
    assert!(a.n_unique <= a.n_samples);
    let mut seen = std::collections::HashSet::new();
    for s in &a.sequences {
        assert_eq!(s.len(), 28);
        assert!(seen.insert(s.clone()), "duplicate design {s}");
    }
    assert!(a.predictor_scores.windows(2).all(|w| w[0] >= w[1]));
    let c = run(&cfg, 8);
    assert_ne!(a.sequences, c.sequences, "another seed gives other designs");
}

#[test]
fn guidance_raises_predicted_fitness() {
    let guided = run(&small(), 7);
    let unguided = run(
        &DesignConfig {
            zeta: f64::INFINITY,
            ..small()
        },
        7,
    );
    let (g, u) = (
        mean(&guided.predictor_fitness),
        mean(&unguided.predictor_fitness),
    );
    eprintln!(
        "mean predictor fitness: guided {g:.4} ({} unique), unguided {u:.4} ({} unique)",
        guided.n_unique, unguided.n_unique
    );
    // Measured (seed 7, this fixture; flex CPU f32): guided 0.3128, unguided 0.2197, both
    // 64 unique. Bar: a gain of at least 0.03, a third of the measured 0.093.
    assert!(g > u + 0.03, "guided {g} vs unguided {u}");
}

/// At this toy scale the potential is barely trained, samples sit near the middle of the box
/// and decode to near-random sequences (diversity ~24 of a possible ~27), so repulsion
/// cannot raise diversity measurably. Measured diversity (none / quadratic sigma_W = 11 /
/// quadratic 3 / kernel 1) at seeds 7, 8, 9: 24.34/24.38/23.64/24.35,
/// 24.21/24.18/23.73/24.22, 24.18/24.15/23.84/24.20; not asserted. The diversity gain shows
/// at benchmark scale (AAV hard, 512 samples: 18.45 -> 19.40, see the design report). Here
/// we check only that the term acts (other designs at the same seed) and keeps them valid.
#[test]
fn quadratic_repulsion_changes_designs_and_keeps_them_valid() {
    let none = run(&small(), 7);
    let repelled = run(
        &DesignConfig {
            interaction: Interaction::Quadratic { sigma_w: 3.0 },
            ..small()
        },
        7,
    );
    assert_ne!(none.sequences, repelled.sequences);
    assert!(repelled.sequences.iter().all(|s| s.len() == 28));
    assert_eq!(repelled.sequences.len(), repelled.n_unique.min(32));
}
