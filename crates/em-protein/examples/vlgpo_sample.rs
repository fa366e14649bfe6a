//! VLGPO (published VAE + flow prior of a split) sampled by our port, guided by the GGS
//! predictor of the split, scored by the GGS oracle with our metrics (one seed).
//!
//! `EMDESIGN_DATA=/path/to/datasets cargo run -p em-protein --example vlgpo_sample -- aav medium 0`
//! (the dev profile optimises burn fully; see the workspace `Cargo.toml`).
//! Optional fourth argument: `n_samples` (default 512, the published setting).

use std::time::Instant;

use burn::prelude::*;
use em_protein::benchmark::{Difficulty, SplitSpec, split};
use em_protein::cnn::Cnn;
use em_protein::datasets::{Checkpoint, Task};
use em_protein::design::evaluate;
use em_protein::oracle::GgsCnnOracle;
use em_protein::vae::{SeqVae, SeqVaeConfig};
use em_protein::vlgpo::{PRIOR_DIM, Unet1D, VlgpoSettings, prior_file, sample};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: vlgpo_sample TASK DIFFICULTY SEED [N_SAMPLES]".into());
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
    let seed: u64 = args[3].parse()?;
    let mut settings = VlgpoSettings::published(task, difficulty);
    if let Some(n) = args.get(4) {
        settings.n_samples = n.parse()?;
    }
    let device = Device::flex();
    let data = em_protein::datasets::data_dir(None)?;
    let vlgpo = data.join("vlgpo");
    let split_name = format!("{}_{}", task.name(), difficulty.name());
    let unet = Unet1D::load_vlgpo(vlgpo.join(prior_file(task, difficulty)), PRIOR_DIM, &device)?;
    let vae_config = match task {
        Task::Aav => SeqVaeConfig::vlgpo_aav(),
        Task::Gfp => SeqVaeConfig::vlgpo_gfp(),
    };
    let vae = SeqVae::load_vlgpo(
        &vlgpo.join(format!("vae/vae_{split_name}.pt")),
        &vae_config,
        &device,
    )?;
    let predictor = Cnn::load(
        task.checkpoint(
            &data,
            Checkpoint::Predictor {
                difficulty,
                smoothed: false,
            },
        )?,
        &device,
    )?;
    let oracle = GgsCnnOracle::load(task.checkpoint(&data, Checkpoint::Oracle)?, &device)?;
    let gt = task.ground_truth()?;
    let (min_gt, max_gt) = gt.score_range().ok_or("empty ground truth")?;
    let train = split(&gt, &SplitSpec::ggs(difficulty))
        .data
        .sequences()
        .to_vec();

    let start = Instant::now();
    let designs = sample(&unet, &vae, &predictor, &settings, seed)?;
    let secs = start.elapsed().as_secs_f64();
    let e = evaluate(&designs.sequences, &oracle, &train, min_gt, max_gt);
    println!(
        "VLGPO {split_name} seed {seed}: {} samples, {} unique, top {} | fitness {:.3} diversity {:.2} novelty {:.1} | {secs:.0} s",
        settings.n_samples,
        designs.n_unique,
        designs.sequences.len(),
        e.fitness,
        e.diversity,
        e.novelty
    );
    Ok(())
}
