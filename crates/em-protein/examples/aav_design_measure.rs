//! Scratch measurement (not a test): EM design on AAV hard at a modest CPU budget, scored by
//! the GGS oracle, with and without repulsion and guidance.
//! Run: `cargo run -p em-protein --example aav_design_measure -- [STEPS] [ZETAS] [SIGMA_W] [T_END] [quad]`.

use std::time::Instant;

use burn::prelude::*;
use em_core::train::TrainConfig;
use em_protein::benchmark::{Difficulty, SplitSpec, split};
use em_protein::cnn::Cnn;
use em_protein::datasets::{Checkpoint, Task};
use em_protein::design::{DesignConfig, Interaction, design, evaluate};
use em_protein::energy_model::{
    EnergyNetConfig, ProteinEnergyConfig, load_potential, save_potential, train_energy,
};
use em_protein::oracle::GgsCnnOracle;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let steps: u64 = args.get(1).map_or(Ok(600), |s| s.parse())?;
    let zetas: Vec<f64> = args
        .get(2)
        .map_or("0.01".into(), |s| s.clone())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let sigma_w: f64 = args.get(3).map_or(Ok(11.0), |s| s.parse())?;
    let t_end: f64 = args.get(4).map_or(Ok(1.3), |s| s.parse())?;
    let only_full = args.get(5).is_some_and(|s| s == "quad");
    let device = Device::flex();
    let data_buf = em_protein::datasets::data_dir(None)?;
    let data = data_buf.as_path();
    let t = Instant::now();
    let gt = Task::Aav.ground_truth()?;
    let (min_gt, max_gt) = gt.score_range().ok_or("empty ground truth")?;
    let sp = split(&gt, &SplitSpec::ggs(Difficulty::Hard));
    let train = sp.data.sequences().to_vec();
    eprintln!(
        "split: {} seqs in {:.1}s; gt range [{min_gt:.3}, {max_gt:.3}]",
        train.len(),
        t.elapsed().as_secs_f64()
    );

    let cfg = ProteinEnergyConfig {
        model: EnergyNetConfig {
            hidden_channels: 32,
            blocks: 2,
            head_hidden: 64,
            ..Default::default()
        },
        train: TrainConfig {
            total_steps: steps,
            flow_steps: steps * 4 / 5,
            batch_size: 128,
            lr: 2e-3,
            lr_warmup_steps: 50,
            neg_steps: 50,
            ema_decay: 0.99,
            checkpoint_every: 0,
            seed: 1,
            ..Default::default()
        },
    };
    let cache = std::env::temp_dir().join(format!("emdesign-aav-hard-{steps}.empot"));
    let t = Instant::now();
    let potential = if cache.exists() {
        load_potential(&cache, &device)?.0
    } else {
        let p = train_energy(&train, &cfg, None, None, &device)?;
        save_potential(&cache, &p, &cfg.model)?;
        p
    };
    eprintln!(
        "energy: {steps} steps in {:.1}s ({})",
        t.elapsed().as_secs_f64(),
        cache.display()
    );

    let pred_path = Task::Aav.checkpoint(
        data,
        Checkpoint::Predictor {
            difficulty: Difficulty::Hard,
            smoothed: true,
        },
    )?;
    let predictor = Cnn::load(pred_path, &device)?;
    let oracle = GgsCnnOracle::load(Task::Aav.checkpoint(data, Checkpoint::Oracle)?, &device)?;

    let base = DesignConfig {
        seeds: vec![0],
        interaction: Interaction::Quadratic { sigma_w },
        t_end,
        ..Default::default()
    };
    let mut runs: Vec<(String, DesignConfig)> = Vec::new();
    for &z in &zetas {
        runs.push((
            format!("zeta {z} + quadratic {sigma_w}, t_end {t_end}"),
            DesignConfig {
                zeta: z,
                ..base.clone()
            },
        ));
        if only_full {
            continue;
        }
        runs.push((
            format!("zeta {z}, no interaction"),
            DesignConfig {
                zeta: z,
                interaction: Interaction::None,
                ..base.clone()
            },
        ));
    }
    if !only_full {
        runs.push((
            format!("no guidance + quadratic {sigma_w}"),
            DesignConfig {
                zeta: f64::INFINITY,
                ..base.clone()
            },
        ));
    }
    for (name, c) in runs {
        let t = Instant::now();
        let batch = design(&potential, &predictor, min_gt, max_gt, &c, 0, &device)?;
        let secs = t.elapsed().as_secs_f64();
        let e = evaluate(&batch.sequences, &oracle, &train, min_gt, max_gt);
        let pf = batch.predictor_fitness.iter().sum::<f64>() / batch.predictor_fitness.len() as f64;
        println!(
            "{name:40} unique {:3}/{} kept {:3} | fitness {:.3} diversity {:.2} novelty {:.1} | mean pred {:.3} | {secs:.1}s",
            batch.n_unique,
            batch.n_samples,
            batch.sequences.len(),
            e.fitness,
            e.diversity,
            e.novelty,
            pf
        );
    }
    Ok(())
}
