//! `emdesign bench`: methods x tasks x seeds under one predictor-call budget, on the same
//! splits, predictors and oracles; resumable cell by cell; outputs `bench.{md,csv,json,png}`.
//!
//! [`config`] checks the bench file, [`tasks`] prepares each task once (protein tasks through
//! the protein workflow's cached stages), [`cell`] runs and caches one cell, [`output`] and
//! [`plot`] write the results; [`fairness`] states the EM vs OT-CFM terms in `bench.md`.

pub mod cell;
pub mod config;
pub mod fairness;
pub mod output;
pub mod plot;
pub mod tasks;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use crate::progress::Progress;
use config::{BenchTask, Method, Overrides};

/// Arguments of `emdesign bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The bench file (`workflows/bench.toml`).
    pub bench: PathBuf,
    /// Only these methods (random, adalead, gwg, ot-cfm, em, em-quadratic, em-kernel).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub methods: Option<Vec<String>>,
    /// Only these tasks (gfp-medium, gfp-hard, aav-medium, aav-hard, ehrlich).
    #[arg(long, value_delimiter = ',', value_name = "T1,T2")]
    pub tasks: Option<Vec<String>>,
    /// Only these design seeds.
    #[arg(long, value_delimiter = ',', value_name = "S1,S2")]
    pub seeds: Option<Vec<u64>>,
    /// Run directory (default: the bench file's `run_dir`).
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// No progress bars and no summary lines.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs the bench grid, skipping finished cells, and writes the outputs.
pub fn run(args: &BenchArgs, data_dir: Option<&Path>) -> Result<()> {
    let plan = config::load(
        &args.bench,
        &Overrides {
            methods: args.methods.clone(),
            tasks: args.tasks.clone(),
            seeds: args.seeds.clone(),
            run_dir: args.run_dir.clone(),
        },
    )?;
    // Checks every protein task's settings before any work starts.
    let budget_note = budget_note(&plan)?;
    std::fs::create_dir_all(&plan.run_dir)
        .with_context(|| format!("cannot create {}", plan.run_dir.display()))?;
    let progress = Progress::new(args.quiet);
    let total = plan.tasks.len() * plan.methods.len() * plan.seeds.len();
    let start = Instant::now();
    let mut cells = Vec::new();
    let mut ran = 0;
    let bar = progress.bar("bench", total as u64);
    for &task in &plan.tasks {
        let with_energy = plan.methods.iter().any(|m| m.is_em());
        bar.set_message(format!("{}: preparing", task.name()));
        let mut env = tasks::prepare(&plan, task, with_energy, data_dir, &progress)
            .with_context(|| format!("task {}", task.name()))?;
        for &method in &plan.methods {
            for &seed in &plan.seeds {
                bar.set_message(format!("{} {} seed {seed}", task.name(), method.name()));
                let (c, fresh_run) = cell::run(&plan, &mut env, method, seed, &progress)?;
                ran += usize::from(fresh_run);
                bar.inc(1);
                cells.push(c);
            }
        }
    }
    bar.finish_and_clear();
    let rows = output::write(&plan.run_dir, &plan, &cells, &budget_note)?;
    let panels: Vec<plot::Panel> = plan
        .tasks
        .iter()
        .map(|t| plot::Panel {
            task: t.name(),
            points: cells
                .iter()
                .filter(|c| c.task == t.name())
                .filter_map(|c| {
                    let m = plan.methods.iter().position(|m| m.name() == c.method)?;
                    Some((m, c.diversity?, c.fitness?))
                })
                .collect(),
        })
        .collect();
    let names: Vec<&str> = plan.methods.iter().map(|m| m.name()).collect();
    plot::fitness_vs_diversity(&plan.run_dir.join("bench.png"), &panels, &names)?;
    for r in rows.iter().filter(|r| r.seeds > 0) {
        let f = r
            .fitness
            .map_or("n/a".into(), |[m, s]| format!("{m:.3} ({s:.3})"));
        progress.line(&format!("{:<11} {:<13} fitness {f}", r.task, r.method));
    }
    progress.line(&format!(
        "bench: {total} cells ({ran} ran, {} reused) in {:.1}s; outputs in {}",
        total - ran,
        start.elapsed().as_secs_f64(),
        plan.run_dir.display()
    ));
    Ok(())
}

/// How each method spends the budget and the settings it ran with (the note under the
/// table), with the fairness terms of the EM vs OT-CFM comparison: equal training steps,
/// the same guidance window, both parameter counts, and more chains than `top_k`. Building
/// it checks every protein task's `[protein]` tables, and that top-k selection applies.
fn budget_note(plan: &config::BenchPlan) -> Result<String> {
    let mut notes = Vec::new();
    let samplers = plan
        .methods
        .iter()
        .any(|m| m.is_em() || *m == Method::OtCfm);
    for &task in &plan.tasks {
        if let BenchTask::Protein(t, _) = task {
            let p = tasks::protein_plan(plan, task, &plan.run_dir)?;
            if samplers {
                let cfg = tasks::sampler_config(
                    &p.design,
                    em_protein::design::Interaction::None,
                    plan.budget,
                    plan.top_k,
                )?;
                if cfg.n_samples <= plan.top_k {
                    anyhow::bail!(
                        "{}: bench.budget {} gives {} EM/OT-CFM chains on {}, not more than \
                         bench.top_k {}: top-k selection would not apply (raise the budget or \
                         lower top_k)",
                        plan.path.display(),
                        plan.budget,
                        cfg.n_samples,
                        task.name(),
                        plan.top_k
                    );
                }
                let d = &p.design;
                let sizes = fairness::model_sizes(plan, &p, t.length())?;
                notes.push(format!(
                    "{}: EM/OT-CFM run {} chains x {} steps (+1 final score each; top {} of \
                     them kept), zeta {}, t_end {}, sigma_W {} (quadratic), {} (kernel); {}",
                    task.name(),
                    cfg.n_samples,
                    cfg.steps(),
                    plan.top_k,
                    d.zeta,
                    d.t_end,
                    d.sigma_w,
                    d.kernel_sigma_w(),
                    fairness::statement(&p, &cfg, sizes),
                ));
            }
        }
    }
    if plan.methods.contains(&Method::Gwg) {
        notes.push(format!(
            "GWG: temperature {}, {} chains",
            plan.gwg.temperature, plan.gwg.chains
        ));
    }
    Ok(if notes.is_empty() {
        "baselines count calls with em-protein's Budget".to_string()
    } else {
        format!(
            "baselines count calls with em-protein's Budget; {}",
            notes.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_note_states_chains_and_each_tasks_settings() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/bench.toml");
        let narrow = |methods: &str| Overrides {
            methods: Some(methods.split(',').map(String::from).collect()),
            tasks: Some(vec!["gfp-hard".into(), "aav-medium".into()]),
            ..Default::default()
        };
        let plan = config::load(&path, &narrow("em-kernel,gwg")).unwrap();
        let note = budget_note(&plan).unwrap();
        // 32768 calls / (130 + 1) = 250 chains; aav-medium runs t_end 1.7: 170 steps, 191
        // chains; both more than top_k 128.
        for part in [
            "gfp-hard: EM/OT-CFM run 250 chains x 130 steps (+1 final score each; top 128 of \
             them kept), zeta 0.01, t_end 1.3, sigma_W 2.87 (quadratic), 0.02 (kernel)",
            "aav-medium: EM/OT-CFM run 191 chains x 170 steps",
            "sigma_W 6.11 (quadratic), 0.1 (kernel)",
            "GWG: temperature 0.03, 64 chains",
            "gfp-hard: the energy and the OT-CFM field both train 600 steps",
            "aav-medium: the energy and the OT-CFM field both train 1500 steps",
            "guidance over t in [0.5, 1.3) at dt 0.01 for both",
            "guidance over t in [0.5, 1.7) at dt 0.01 for both",
        ] {
            assert!(note.contains(part), "{part:?} not in {note}");
        }
        // Both parameter counts are stated, with their ratio.
        assert!(note.contains("parameters: energy "), "{note}");
        assert!(note.contains(", OT-CFM field "), "{note}");
        let plan = config::load(&path, &narrow("random")).unwrap();
        assert_eq!(
            budget_note(&plan).unwrap(),
            "baselines count calls with em-protein's Budget"
        );
    }

    #[test]
    fn too_few_chains_for_top_k_is_an_error() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/bench.toml");
        let mut plan = config::load(
            &path,
            &Overrides {
                methods: Some(vec!["ot-cfm".into()]),
                tasks: Some(vec!["aav-hard".into()]),
                ..Default::default()
            },
        )
        .unwrap();
        plan.budget = 16384; // 125 chains of 131 calls: fewer than top_k 128
        let e = budget_note(&plan).unwrap_err().to_string();
        assert!(
            e.contains("125 EM/OT-CFM chains on aav-hard") && e.contains("top_k 128"),
            "{e}"
        );
    }
}
