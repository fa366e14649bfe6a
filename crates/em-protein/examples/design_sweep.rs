//! Scratch measurement (not a test): guided-Langevin design settings swept on one trained
//! energy model (e.g. a workflow's `potential.empot`), scored by the GGS oracle.
//!
//! Run: `cargo run -p em-protein --example design_sweep -- TASK DIFFICULTY POTENTIAL.empot
//! SPEC [SPEC ...]` where each SPEC is `key=value,key=value` over `zeta`, `t_end`, `sigma_w`
//! (0 = no interaction), `kernel` (1 = kernel repulsion), `temperature`, `eps_max`, `tau`, `dt`,
//! `n`, `seed`, `smoothed` (1/0). Unset keys take `DesignConfig`'s defaults.

use std::time::Instant;

use burn::prelude::*;
use em_core::schedule::Schedule;
use em_protein::benchmark::{Difficulty, SplitSpec, split};
use em_protein::cnn::Cnn;
use em_protein::datasets::{Checkpoint, Task};
use em_protein::design::{DesignConfig, Interaction, design, evaluate};
use em_protein::energy_model::load_potential;
use em_protein::oracle::GgsCnnOracle;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        return Err("usage: design_sweep TASK DIFFICULTY POTENTIAL SPEC...".into());
    }
    let task = match args[1].as_str() {
        "aav" => Task::Aav,
        "gfp" => Task::Gfp,
        t => return Err(format!("unknown task {t}").into()),
    };
    let difficulty = match args[2].as_str() {
        "hard" => Difficulty::Hard,
        "medium" => Difficulty::Medium,
        d => return Err(format!("unknown difficulty {d}").into()),
    };
    let device = Device::flex();
    let data_buf = em_protein::datasets::data_dir(None)?;
    let data = data_buf.as_path();
    let gt = task.ground_truth()?;
    let (min_gt, max_gt) = gt.score_range().ok_or("empty ground truth")?;
    let sp = split(&gt, &SplitSpec::ggs(difficulty));
    let train = sp.data.sequences().to_vec();
    let potential = load_potential(std::path::Path::new(&args[3]), &device)?.0;
    let oracle = GgsCnnOracle::load(task.checkpoint(data, Checkpoint::Oracle)?, &device)?;
    let mut predictors = std::collections::HashMap::new();

    for spec in &args[4..] {
        let mut c = DesignConfig {
            seeds: vec![0],
            ..Default::default()
        };
        let (mut seed, mut smoothed, mut eps_max) = (0u64, difficulty == Difficulty::Hard, 0.1);
        let mut tau_star = 0.5;
        let mut sigma_w = 11.0;
        let mut kernel = false;
        for kv in spec.split(',').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').ok_or(format!("bad spec item {kv}"))?;
            let f: f64 = v.parse()?;
            match k {
                "zeta" => c.zeta = f,
                "t_end" => c.t_end = f,
                "sigma_w" => sigma_w = f,
                "kernel" => kernel = f != 0.0,
                "temperature" => c.temperature = f,
                "eps_max" => eps_max = f,
                "tau" => tau_star = f,
                "dt" => c.dt = f,
                "n" => c.n_samples = f as usize,
                "seed" => seed = f as u64,
                "smoothed" => smoothed = f != 0.0,
                _ => return Err(format!("unknown key {k}").into()),
            }
        }
        c.schedule = Schedule::Ramp { tau_star, eps_max };
        c.interaction = if sigma_w == 0.0 {
            Interaction::None
        } else if kernel {
            Interaction::Kernel { sigma_w }
        } else {
            Interaction::Quadratic { sigma_w }
        };
        if let std::collections::hash_map::Entry::Vacant(slot) = predictors.entry(smoothed) {
            let path = task.checkpoint(
                data,
                Checkpoint::Predictor {
                    difficulty,
                    smoothed,
                },
            )?;
            slot.insert(Cnn::load(path, &device)?);
        }
        let predictor = &predictors[&smoothed];
        let t = Instant::now();
        let batch = design(&potential, predictor, min_gt, max_gt, &c, seed, &device)?;
        let secs = t.elapsed().as_secs_f64();
        let e = evaluate(&batch.sequences, &oracle, &train, min_gt, max_gt);
        let pf = batch.predictor_fitness.iter().sum::<f64>() / batch.predictor_fitness.len() as f64;
        println!(
            "{spec:50} unique {:3}/{} | fitness {:.3} diversity {:.2} novelty {:.1} | pred {:.3} | {secs:.0}s",
            batch.n_unique, batch.n_samples, e.fitness, e.diversity, e.novelty, pf
        );
    }
    Ok(())
}
