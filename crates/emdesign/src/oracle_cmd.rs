//! `emdesign data train-oracle`: train emdesign's own oracle for a benchmark task (the
//! science lives in `em_protein::own_oracle`), with a progress bar, and write the weights and
//! their JSON report atomically.

use std::path::Path;

use anyhow::{Context, Result};
use burn::prelude::*;
use em_protein::datasets::{self, Checkpoint};
use em_protein::oracle::GgsCnnOracle;
use em_protein::own_oracle::train_own_oracle;

use crate::cli::TrainOracleArgs;
use crate::progress::Progress;
use crate::stage::protein_files::write_json;

/// Train, compare with the GGS oracle when the data directory holds it, write `args.out` and
/// `args.out` with extension `.json`.
pub fn train_oracle(args: &TrainOracleArgs, data_dir: Option<&Path>) -> Result<()> {
    let task = crate::protein::task(args.task);
    let reference = match datasets::data_dir(data_dir) {
        Ok(dir) => {
            let path = task.checkpoint(&dir, Checkpoint::Oracle)?;
            eprintln!("comparing with the GGS oracle {}", path.display());
            Some(
                GgsCnnOracle::load(&path, &Device::flex())
                    .with_context(|| format!("cannot load {}", path.display()))?,
            )
        }
        Err(_) => {
            eprintln!("no data directory: the GGS oracle comparison is left out of the report");
            None
        }
    };
    let progress = Progress::new(false);
    let bar = progress.bar("oracle", args.epochs as u64);
    let (cnn, report) = train_own_oracle(
        task,
        args.epochs,
        args.seed,
        reference.as_ref(),
        &Device::flex(),
        |e| {
            bar.set_position(e.epoch as u64);
            bar.set_message(format!(
                "mse {:.4} held-out spearman {}",
                e.train_mse,
                e.val_spearman.map_or("-".into(), |r| format!("{r:.3}"))
            ));
        },
    )?;
    bar.finish_and_clear();
    cnn.save(&args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let json = args.out.with_extension("json");
    write_json(&json, &report)?;
    let fmt = |r: Option<f64>| r.map_or("-".into(), |r| format!("{r:.3}"));
    println!(
        "{}: {} rows, epoch {} kept, held-out Spearman {} (GGS oracle {}), Spearman vs GGS oracle {} held-out / {} all -> {}",
        task.name(),
        report.rows,
        report.training.chosen_epoch,
        fmt(report.training.val_spearman),
        fmt(report.ggs_spearman_held_out),
        fmt(report.spearman_vs_ggs_held_out),
        fmt(report.spearman_vs_ggs_all),
        args.out.display()
    );
    Ok(())
}
