//! Properties of generated Ehrlich functions: the optimum reaches 1.0, infeasible sequences
//! score 0, values lie on the quantised grid, and generation is a pure function of the seed.
//! `cargo test -p em-protein --test ehrlich -- --nocapture` prints the measured figures.

use em_protein::ehrlich::{Ehrlich, EhrlichConfig};
use em_protein::oracle::Oracle;

fn configs() -> Vec<EhrlichConfig> {
    let base = EhrlichConfig::default();
    vec![
        base.clone(),
        EhrlichConfig {
            length: 64,
            motifs: 4,
            seed: 11,
            ..base.clone()
        },
        EhrlichConfig {
            motif_length: 3,
            quantization: 2,
            length: 24,
            seed: 5,
            ..base.clone()
        },
        EhrlichConfig {
            vocab: 8,
            length: 16,
            quantization: 2,
            seed: 2,
            ..base.clone()
        },
        EhrlichConfig {
            length: 256,
            motifs: 5,
            seed: 99,
            ..base
        },
    ]
}

#[test]
fn optimum_reaches_one_for_many_seeds_and_shapes() {
    for config in configs() {
        for seed in 0..20 {
            let f = Ehrlich::generate(EhrlichConfig {
                seed,
                ..config.clone()
            })
            .unwrap();
            let opt = f.optimal_solution();
            assert_eq!(opt.len(), config.length);
            assert!(f.is_feasible(&opt), "{config:?} seed {seed}");
            assert_eq!(f.evaluate(&opt), 1.0, "{config:?} seed {seed}");
            // motifs share no element and each is a feasible path
            let mut all: Vec<u8> = f.motifs().concat();
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), config.motifs * config.motif_length);
        }
    }
}

#[test]
fn infeasible_sequences_score_zero() {
    let f = Ehrlich::generate(EhrlichConfig::default()).unwrap();
    let t = f.transition();
    let (a, b) = (0..20)
        .flat_map(|a| (0..20).map(move |b| (a, b)))
        .find(|&(a, b)| t[a][b] == 0.0)
        .expect("some banned transition");
    // the optimum with one banned transition written over its tail
    let mut x = f.optimal_solution();
    x[30] = a as u8;
    x[31] = b as u8;
    assert!(!f.is_feasible(&x));
    assert_eq!(f.evaluate(&x), 0.0);
    let presence = f.motif_presence(&x);
    println!("banned {a}->{b}; motif presence of the broken optimum {presence:?}");
    assert!(
        presence.iter().all(|&p| p > 0.0),
        "motifs still there, yet 0"
    );
    assert_eq!(f.evaluate(&x[..31]), 0.0, "wrong length");
    let mut y = f.optimal_solution();
    y[0] = 20;
    assert_eq!(f.evaluate(&y), 0.0, "index outside the vocabulary");
    assert_eq!(f.score(&[x, f.optimal_solution()]), vec![0.0, 1.0]);
}

#[test]
fn motif_presence_matches_a_hand_count() {
    let f = Ehrlich::generate(EhrlichConfig {
        quantization: 2,
        ..Default::default()
    })
    .unwrap();
    let (m, o) = (f.motifs(), f.offsets());
    let filler = (0..20u8).find(|r| !m.concat().contains(r)).unwrap();
    let mut x = vec![filler; 32];
    for j in 0..4 {
        x[o[0][j]] = m[0][j]; // motif 0 whole at position 0
    }
    let at = 32 - 1 - o[1][3];
    for j in 0..3 {
        x[at + o[1][j]] = m[1][j]; // 3 of motif 1's 4 elements at the last start
    }
    // q = 2: 4/4 -> 1, 3/4 -> floor(1.5) / 2 = 0.5
    assert_eq!(f.motif_presence(&x), vec![1.0, 0.5]);
    let q4 = Ehrlich::generate(EhrlichConfig::default()).unwrap();
    assert_eq!(q4.motifs(), m, "quantisation does not change the draw");
    assert_eq!(q4.motif_presence(&x), vec![1.0, 0.75]);
}

#[test]
fn values_lie_on_the_quantised_grid() {
    let mut distinct = Vec::new();
    for config in configs() {
        let f = Ehrlich::generate(config.clone()).unwrap();
        let q = config.quantization as f64;
        let scale = q.powi(config.motifs as i32);
        let mut samples = f.sample_feasible(200, 1);
        // and partial optima: the optimum with its head overwritten by a feasible sample
        for (i, s) in f.sample_feasible(50, 2).into_iter().enumerate() {
            let mut x = f.optimal_solution();
            let cut = i * config.length / 50;
            x[..cut].copy_from_slice(&s[..cut]);
            samples.push(x);
        }
        for x in &samples {
            for p in f.motif_presence(x) {
                assert!(
                    (p * q - (p * q).round()).abs() < 1e-12,
                    "{p} off the 1/{q} grid"
                );
            }
            let v = f.evaluate(x);
            assert!((0.0..=1.0).contains(&v));
            assert!((v * scale - (v * scale).round()).abs() < 1e-9, "{v}");
            if !distinct.contains(&v) {
                distinct.push(v);
            }
        }
    }
    distinct.sort_by(f64::total_cmp);
    println!("distinct values seen: {distinct:?}");
    assert!(
        distinct.len() >= 5,
        "the grid is barely explored: {distinct:?}"
    );
}

#[test]
fn generation_and_sampling_are_pure_functions_of_the_seed() {
    let a = Ehrlich::generate(EhrlichConfig::default()).unwrap();
    let b = Ehrlich::generate(EhrlichConfig::default()).unwrap();
    assert_eq!(a, b);
    let c = Ehrlich::generate(EhrlichConfig {
        seed: 1,
        ..Default::default()
    })
    .unwrap();
    assert_ne!(a.motifs(), c.motifs());
    assert_ne!(a.transition(), c.transition());
    println!("seed 0 motifs {:?} offsets {:?}", a.motifs(), a.offsets());
    println!("seed 1 motifs {:?} offsets {:?}", c.motifs(), c.offsets());
    let s = a.sample_feasible(64, 3);
    assert_eq!(s, a.sample_feasible(64, 3));
    assert_ne!(s, a.sample_feasible(64, 4));
    assert!(s.iter().all(|x| a.is_feasible(x)));
    let scores: Vec<f64> = s.iter().map(|x| a.evaluate(x)).collect();
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    let max = scores.iter().copied().fold(0.0, f64::max);
    println!("64 DMP samples (seed 3): mean f {mean:.4}, max f {max:.4}");
    assert!(max < 1.0, "a random feasible sample should not be optimal");
}
