//! `emdesign bench`: methods x tasks x seeds under one predictor-call budget, on the same
//! splits, predictors and oracles; resumable cell by cell; outputs `bench.{md,csv,json,png}`.
//!
//! [`config`] checks the bench file, [`tasks`] prepares each task once (protein tasks through
//! the protein workflow's cached stages), [`cell`] runs and caches one cell, [`output`] and
//! [`plot`] write the results ([`sweep_plot`] the App. A.2 `t_end` sweep); [`fairness`]
//! states the EM vs OT-CFM terms in `bench.md`.

pub mod cell;
pub mod config;
pub mod fairness;
pub mod output;
pub mod plot;
pub mod sweep_plot;
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
    /// Only these methods (random, adalead, gwg, ot-cfm, em, em-quadratic, em-kernel,
    /// em-warmup, ot-cfm-unguided, em-unguided, em-warmup-unguided).
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
    let variants = plan.variants();
    let total = plan.tasks.len() * variants.len() * plan.seeds.len();
    let start = Instant::now();
    let mut cells = Vec::new();
    let mut ran = 0;
    let bar = progress.bar("bench", total as u64);
    let needs = tasks::Needs::of(&plan.methods);
    for &task in &plan.tasks {
        bar.set_message(format!("{}: preparing", task.name()));
        let mut env = tasks::prepare(&plan, task, needs, data_dir, &progress)
            .with_context(|| format!("task {}", task.name()))?;
        for &variant in &variants {
            for &seed in &plan.seeds {
                bar.set_message(format!("{} {} seed {seed}", task.name(), variant.label()));
                let (c, fresh_run) = cell::run(&plan, &mut env, variant, seed, &progress)?;
                ran += usize::from(fresh_run);
                bar.inc(1);
                cells.push(c);
            }
        }
    }
    bar.finish_and_clear();
    let rows = output::write(&plan.run_dir, &plan, &cells, &budget_note)?;
    let names: Vec<String> = variants.iter().map(|v| v.label()).collect();
    let panels: Vec<plot::Panel> = plan
        .tasks
        .iter()
        .map(|t| plot::Panel {
            task: t.name(),
            points: cells
                .iter()
                .filter(|c| c.task == t.name())
                .filter_map(|c| {
                    let m = names.iter().position(|n| *n == c.method)?;
                    Some((m, c.diversity?, c.fitness?))
                })
                .collect(),
        })
        .collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    plot::fitness_vs_diversity(&plan.run_dir.join("bench.png"), &panels, &name_refs)?;
    if variants.iter().any(|v| v.t_end.is_some()) {
        sweep_plot::write(&plan.run_dir.join("t_end_sweep.png"), &plan, &cells)?;
    }
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
    let samplers = plan.methods.iter().any(|m| m.prior().is_some());
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
    if plan.methods.iter().any(|m| !m.guided()) {
        notes.push(
            "unguided rows (*-unguided): the same priors and chain counts with guidance off \
             (zeta = inf, no interaction), top-k by the predictor, whose final scores are their \
             only calls"
                .to_string(),
        );
    }
    if plan
        .methods
        .iter()
        .any(|m| m.prior() == Some(config::Prior::FlowOnlyEnergy))
    {
        notes.push(
            "em-warmup rows: the same energy network, seed and steps trained with the flow \
             (warm-up) loss for every step, no contrastive phase"
                .to_string(),
        );
    }
    if plan.variants().iter().any(|v| v.t_end.is_some()) {
        notes.push(format!(
            "t_end sweep (paper App. A.2): the unguided energy rows again at t_end {:?}, \
             with the chain count of the design's own t_end",
            plan.t_end_sweep
        ));
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
            "0.02 (kernel); the energy and the OT-CFM field both train 600 steps",
            "0.1 (kernel); the energy and the OT-CFM field both train 1500 steps",
            "guidance over t in [0.9, 1.3) at dt 0.01 for both",
            "guidance over t in [0.9, 1.7) at dt 0.01 for both",
        ] {
            assert!(note.contains(part), "{part:?} not in {note}");
        }
        // Both parameter counts are stated, with their ratio.
        assert!(note.contains("parameters: energy "), "{note}");
        assert!(note.contains(", OT-CFM field "), "{note}");
        // The ablation's rows say what they are; the sweep runs only with a swept method.
        let plan = config::load(&path, &narrow("em-warmup,em-unguided")).unwrap();
        let note = budget_note(&plan).unwrap();
        for part in [
            "em-warmup rows: the same energy network, seed and steps",
            "unguided rows (*-unguided)",
            "t_end sweep (paper App. A.2): the unguided energy rows again at t_end [1.0, 1.5, 2.0, 3.0]",
        ] {
            assert!(note.contains(part), "{part:?} not in {note}");
        }
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
