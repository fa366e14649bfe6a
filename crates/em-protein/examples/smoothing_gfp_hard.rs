//! Measures GGS label smoothing for the fallback predictor of GFP hard (what `emdesign run
//! workflows/gfp.toml` trains without the data directory): the plain predictor (raw labels)
//! against the one on graph-smoothed labels, on the same held-out rows, and against the GGS
//! oracle on a fixed seeded sample of the ground truth outside the split.
//!
//! `EMDESIGN_DATA=DIR cargo run --release -p em-protein --example smoothing_gfp_hard -- \
//!   [seed=0] [nodes=20000] [epochs=50] [plain_epochs=100]`

use std::collections::HashSet;
use std::time::Instant;

use burn::prelude::*;
use em_protein::benchmark::Difficulty;
use em_protein::cnn::Cnn;
use em_protein::datasets::{Checkpoint, Task, data_dir};
use em_protein::gfp_splits::ggs_gfp_split;
use em_protein::predictor::{TrainPredictorConfig, held_out_rows};
use em_protein::smoothed_predictor::{LabelSmoothing, train_smoothed_predictor};
use em_protein::stats::spearman_f32;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Ground-truth sequences outside the split scored by the oracle.
const SAMPLE: usize = 2_000;

fn arg(name: &str, default: u64) -> u64 {
    std::env::args()
        .skip(1)
        .find_map(|a| a.strip_prefix(&format!("{name}=")).map(str::to_owned))
        .map_or(default, |v| v.parse().expect("an integer"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seed = arg("seed", 0);
    let smoothing = LabelSmoothing {
        nodes: arg("nodes", 20_000) as usize,
        epochs: arg("epochs", 50) as usize,
        ..LabelSmoothing::default()
    };
    let config = TrainPredictorConfig {
        seed,
        epochs: arg("plain_epochs", 100) as usize,
        ..TrainPredictorConfig::default()
    };
    let device = Device::flex();
    let split = ggs_gfp_split(Difficulty::Hard)?;
    let rows: Vec<(Vec<u8>, f32)> = split
        .sequences()
        .iter()
        .zip(split.scores())
        .map(|(s, &y)| (s.indices().to_vec(), y as f32))
        .collect();
    let start = Instant::now();
    let trained = train_smoothed_predictor(&rows, &config, &smoothing, &device, |phase, e| {
        if e.epoch % 10 == 0 {
            eprintln!(
                "{phase} epoch {} mse {:.4} held-out rho {:?}",
                e.epoch, e.train_mse, e.val_spearman
            );
        }
    })?;
    let sm = &trained.smoothing;
    println!(
        "seed {seed}; nodes {} ({} measured), k {}, gamma {}; roughness {:.4} -> {:.4}; {:.0} s",
        sm.nodes,
        sm.measured_nodes,
        sm.neighbours,
        smoothing.gamma,
        sm.roughness_before,
        sm.roughness_after,
        start.elapsed().as_secs_f64()
    );
    println!(
        "held-out Spearman vs measured ({} rows): raw labels {:?} (epoch {}), smoothed {:?} (epoch {})",
        trained.report.val_rows,
        sm.plain.val_spearman,
        sm.plain.chosen_epoch,
        trained.report.val_spearman,
        trained.report.chosen_epoch
    );

    let dir = data_dir(None)?;
    let oracle = Cnn::load(Task::Gfp.checkpoint(&dir, Checkpoint::Oracle)?, &device)?;
    let published = Cnn::load(
        Task::Gfp.checkpoint(
            &dir,
            Checkpoint::Predictor {
                difficulty: Difficulty::Hard,
                smoothed: true,
            },
        )?,
        &device,
    )?;
    let in_split: HashSet<&[u8]> = rows.iter().map(|r| r.0.as_slice()).collect();
    let gt = Task::Gfp.ground_truth()?;
    let mut outside: Vec<Vec<u8>> = gt
        .sequences()
        .iter()
        .map(|s| s.indices().to_vec())
        .filter(|s| !in_split.contains(s.as_slice()))
        .collect();
    outside.shuffle(&mut StdRng::seed_from_u64(seed));
    outside.truncate(SAMPLE);
    let held: Vec<Vec<u8>> = held_out_rows(rows.len(), &config)
        .iter()
        .map(|&i| rows[i].0.clone())
        .collect();
    for (name, seqs) in [("ground-truth sample", &outside), ("held-out rows", &held)] {
        let truth = oracle.score(seqs)?;
        let rho = |m: &Cnn| -> Result<Option<f64>, Box<dyn std::error::Error>> {
            Ok(spearman_f32(&m.score(seqs)?, &truth))
        };
        println!(
            "Spearman vs GGS oracle on {} {name}: raw labels {:?}, smoothed {:?}, GGS smoothed predictor {:?}",
            seqs.len(),
            rho(&trained.plain)?,
            rho(&trained.predictor)?,
            rho(&published)?
        );
    }
    Ok(())
}
