//! Each baseline climbs a known landscape (a linear additive fitness, an Ehrlich function,
//! a tiny seeded CNN) above its start population within its predictor budget, never spends
//! more than the budget (counted by a wrapper), and is a pure function of its seed.
//! `cargo test -p em-protein --test baselines -- --nocapture` prints the measured figures.

use std::cell::Cell;

use burn::prelude::*;
use em_protein::baselines::adalead::AdaLead;
use em_protein::baselines::gwg::GibbsWithGradients;
use em_protein::baselines::random::RandomMutation;
use em_protein::baselines::{Additive, BaselineError, DesignMethod, Predictor};
use em_protein::cnn::CnnConfig;
use em_protein::ehrlich::{Ehrlich, EhrlichConfig};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Counts every sequence that reaches the wrapped predictor, independently of `Budget`.
struct Counting<'a> {
    inner: &'a dyn Predictor,
    calls: Cell<usize>,
}

impl<'a> Counting<'a> {
    fn new(inner: &'a dyn Predictor) -> Self {
        Self {
            inner,
            calls: Cell::new(0),
        }
    }
}

impl Predictor for Counting<'_> {
    fn alphabet(&self) -> usize {
        self.inner.alphabet()
    }
    fn score(&self, seqs: &[Vec<u8>]) -> Vec<f32> {
        self.calls.set(self.calls.get() + seqs.len());
        self.inner.score(seqs)
    }
    fn gradient(&self, seqs: &[Vec<u8>]) -> Option<(Vec<f32>, Vec<f32>)> {
        self.calls.set(self.calls.get() + seqs.len());
        self.inner.gradient(seqs)
    }
}

fn random_start(n: usize, length: usize, alphabet: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            (0..length)
                .map(|_| rng.random_range(0..alphabet) as u8)
                .collect()
        })
        .collect()
}

fn best(p: &dyn Predictor, seqs: &[Vec<u8>]) -> f32 {
    p.score(seqs).into_iter().fold(f32::NEG_INFINITY, f32::max)
}

/// Run `method` and check the budget, determinism and improvement; returns (start best,
/// design best).
fn climbs(
    method: &dyn DesignMethod,
    predictor: &dyn Predictor,
    start: &[Vec<u8>],
    budget: usize,
) -> (f32, f32) {
    let counting = Counting::new(predictor);
    let design = method.run(start, &counting, budget, 7).unwrap();
    assert!(
        design.calls <= budget,
        "{}: {} calls",
        method.name(),
        design.calls
    );
    assert_eq!(counting.calls.get(), design.calls, "{}", method.name());
    assert!(!design.sequences.is_empty());
    assert!(design.sequences.iter().all(|s| !start.contains(s)));
    assert!(design.predicted.windows(2).all(|w| w[0] >= w[1]), "sorted");
    // reported scores are the predictor's
    let top = design.top(8).to_vec();
    assert_eq!(
        predictor.score(&top),
        design.predicted[..top.len()].to_vec()
    );
    assert_eq!(method.run(start, predictor, budget, 7).unwrap(), design);
    assert_ne!(method.run(start, predictor, budget, 8).unwrap(), design);
    let (before, after) = (best(predictor, start), design.predicted[0]);
    println!(
        "{:>8}: budget {budget}, calls {}, designs {}, best start {before:.4} -> best design {after:.4}",
        method.name(),
        design.calls,
        design.sequences.len()
    );
    assert!(after > before, "{}: {after} <= {before}", method.name());
    (before, after)
}

fn methods() -> Vec<Box<dyn DesignMethod>> {
    vec![
        Box::new(RandomMutation::default()),
        Box::new(AdaLead {
            population: 32,
            ..Default::default()
        }),
        Box::new(GibbsWithGradients {
            chains: 16,
            temperature: 0.1,
        }),
    ]
}

#[test]
fn every_baseline_climbs_an_additive_landscape() {
    let f = Additive::random(24, 20, 3);
    let start = random_start(32, 24, 20, 1);
    let optimum = f.score(&[f.optimum()])[0];
    println!("additive L=24 seed 3: optimum {optimum:.4}");
    let mut gains = Vec::new();
    for m in methods() {
        let (before, after) = climbs(m.as_ref(), &f, &start, 2000);
        gains.push((m.name().to_string(), (after - before) / (optimum - before)));
    }
    println!("fraction of the gap to the optimum closed: {gains:?}");
    // guided search beats the floor
    assert!(
        gains[1].1 > gains[0].1 && gains[2].1 > gains[0].1,
        "{gains:?}"
    );
}

#[test]
fn random_and_adalead_climb_an_ehrlich_function() {
    let f = Ehrlich::generate(EhrlichConfig {
        length: 24,
        motif_length: 3,
        quantization: 3,
        seed: 4,
        ..Default::default()
    })
    .unwrap();
    let start = f.sample_feasible(32, 1);
    for m in &methods()[..2] {
        climbs(m.as_ref(), &f, &start, 3000);
    }
    let err = GibbsWithGradients::default()
        .run(&start, &f, 3000, 0)
        .unwrap_err();
    assert_eq!(err, BaselineError::NotDifferentiable { method: "gwg" });
}

#[test]
fn gwg_climbs_a_tiny_cnn_with_its_input_gradient() {
    let device = Device::flex();
    let cnn = CnnConfig::new()
        .with_kernel_size(5)
        .with_channels(8)
        .with_embedding(16)
        .init(21, &device);
    let start = random_start(16, 20, 20, 2);
    // T on the scale of this CNN's scores (~0.2, single substitutions move them ~0.01)
    let gwg = GibbsWithGradients {
        chains: 16,
        temperature: 0.003,
    };
    let (_, guided) = climbs(&gwg, &cnn, &start, 640);
    let (_, floor) = climbs(&RandomMutation::default(), &cnn, &start, 640);
    assert!(
        guided > floor,
        "gradient guidance {guided} vs random {floor}"
    );
}

#[test]
fn budgets_too_small_for_a_first_step_are_refused() {
    let f = Additive::random(6, 20, 0);
    let start = random_start(10, 6, 20, 0);
    let err = AdaLead::default().run(&start, &f, 5, 0).unwrap_err();
    assert!(err.to_string().contains("budget 5"), "{err}");
    let err = GibbsWithGradients::default()
        .run(&start, &f, 5, 0)
        .unwrap_err();
    assert!(err.to_string().contains("64 calls"), "{err}");
    // random spends even a budget of 1, and 0 gives an empty design
    let d = RandomMutation::default().run(&start, &f, 0, 0).unwrap();
    assert_eq!((d.calls, d.sequences.len()), (0, 0));
}
