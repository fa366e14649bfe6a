//! What each subcommand does: load and check the workflow, build its stages, hand them to the
//! runner (or report on them), and write the run-level files (`resolved.toml`, `summary.json`).

use std::path::Path;
use std::time::Instant;

use anyhow::{Result, bail};

use crate::cli::{
    Cli, Command, DataCommand, ExportCommand, PlanArgs, RunArgs, ToyArgs, WorkflowArgs,
};
use crate::progress::Progress;
use crate::protein;
use crate::stage::{self, Runner, Status, TOOL, cache, run_dir};
use crate::workflow::plan::{Body, TOY_TARGETS};
use crate::workflow::{self, Plan, Source};

/// The built-in 2D workflow used by `emdesign toy`.
const TOY2D: &str = include_str!("../../../workflows/toy2d.toml");

/// Run one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let data_dir = cli.data_dir.as_deref();
    match cli.command {
        Command::Run(args) => run_workflow(&args, data_dir),
        Command::Round(args) => crate::rounds_cmd::round(&args, data_dir),
        Command::Check { workflow } => check(&workflow),
        Command::Plan(args) => plan(&args, data_dir),
        Command::Export {
            command: ExportCommand::Snakemake(args),
        } => crate::cluster::export_snakemake(&args, data_dir),
        Command::Clean(args) => crate::clean_cmd::clean(&args),
        Command::Unlock(args) => crate::cluster::unlock(&args),
        Command::Toy(args) => toy(&args),
        Command::Data {
            command: DataCommand::Split(args),
        } => protein::split(&args, data_dir),
        Command::Data {
            command: DataCommand::Fetch,
        } => protein::fetch(data_dir),
        Command::Data {
            command: DataCommand::TrainOracle(args),
        } => crate::oracle_cmd::train_oracle(&args, data_dir),
        Command::Bench(args) => crate::bench::run(&args, data_dir),
        Command::Image { command } => crate::image_cmd::run(command, data_dir),
        Command::Oracle { task, file } => protein::oracle(task, &file, data_dir),
        Command::Eval {
            task,
            difficulty,
            designs,
            out,
        } => protein::eval(task, difficulty, &designs, &out, data_dir),
    }
}

fn run_workflow(args: &RunArgs, data_dir: Option<&Path>) -> Result<()> {
    let plan = workflow::load(&args.workflow, args.run_dir.as_deref())?;
    if let Some(id) = &args.only {
        return crate::cluster::run_only(&plan, args, id, data_dir);
    }
    execute(
        &plan,
        Some(&args.workflow),
        args.force.clone(),
        args.quiet,
        data_dir,
    )
}

/// Run a checked plan: make the run directory ready (refusing one emdesign does not own),
/// write `resolved.toml`, run the stages, write `summary.json`.
pub(crate) fn execute(
    plan: &Plan,
    workflow_file: Option<&Path>,
    force: Option<String>,
    quiet: bool,
    data_dir: Option<&Path>,
) -> Result<()> {
    let stages = stage::build(plan, data_dir)?;
    if let Some(f) = &force
        && !plan.stage_names().contains(&f.as_str())
    {
        bail!(
            "--force: no stage named `{f}` (stages: {})",
            plan.stage_names().join(", ")
        );
    }
    let run_dir = &plan.workflow.run_dir;
    prepare_run_dir(plan, workflow_file)?;
    let progress = Progress::new(quiet);
    let runner = Runner {
        tool: &TOOL,
        run_dir: run_dir.clone(),
        force,
        progress: progress.clone(),
    };
    let start = Instant::now();
    let reports = runner.run(&stages)?;
    let ran = reports.iter().filter(|r| r.status == Status::Ran).count();
    let summary: Vec<_> = reports
        .iter()
        .map(|r| {
            serde_json::json!({
                "stage": r.record.stage,
                "status": if r.status == Status::Ran { "ran" } else { "fresh" },
                "key": r.record.key,
                "wall_secs": r.record.wall_secs,
                "secs_this_run": r.wall_secs,
                "headline": r.record.headline,
            })
        })
        .collect();
    let written = cache::write_atomic(
        &run_dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    );
    match written {
        // A read-only run directory whose stages were all fresh: nothing to record.
        Err(e) if ran == 0 && stage::runner::is_read_only(&e) => {
            eprintln!(
                "note: {} is read-only; summary.json not updated",
                run_dir.display()
            );
        }
        other => other?,
    }
    progress.line(&format!(
        "done: {} stages ({ran} ran, {} fresh) in {:.1}s; outputs in {}",
        reports.len(),
        reports.len() - ran,
        start.elapsed().as_secs_f64(),
        run_dir.display()
    ));
    Ok(())
}

/// Make the plan's run directory ready (refusing one emdesign does not own) and write its
/// `resolved.toml`, unless unchanged (an all-fresh rerun then writes nothing it need not).
pub(crate) fn prepare_run_dir(plan: &Plan, workflow_file: Option<&Path>) -> Result<()> {
    let run_dir = &plan.workflow.run_dir;
    run_dir::prepare(&TOOL, run_dir, workflow_file, plan.stage_names())?;
    let resolved = plan.resolved_toml()?;
    let resolved_path = run_dir.join("resolved.toml");
    if std::fs::read_to_string(&resolved_path).ok().as_deref() != Some(resolved.as_str()) {
        cache::write_atomic(&resolved_path, resolved.as_bytes())?;
    }
    Ok(())
}

fn check(path: &Path) -> Result<()> {
    let plan = workflow::load(path, None)?;
    if let Body::Protein(p) = &plan.body {
        for (stage, estimate) in stage::memory::protein(p) {
            stage::memory::check(stage, &estimate)?;
        }
    }
    println!(
        "ok: {} ({}, seed {}): stages {}; run dir {}",
        path.display(),
        plan.workflow.kind,
        plan.workflow.seed,
        plan.stage_names().join(" -> "),
        plan.workflow.run_dir.display()
    );
    Ok(())
}

/// A workflow's checked plan and its stages as the runner sees them (keys, freshness).
pub(crate) fn planned(
    wf: &WorkflowArgs,
    data_dir: Option<&Path>,
) -> Result<(Plan, Vec<em_pipeline::PlannedStage>)> {
    let plan = workflow::load(&wf.workflow, wf.run_dir.as_deref())?;
    let runner = Runner {
        tool: &TOOL,
        run_dir: plan.workflow.run_dir.clone(),
        force: None,
        progress: Progress::new(true),
    };
    let stages = runner.plan(&stage::build(&plan, data_dir)?)?;
    Ok((plan, stages))
}

/// `emdesign plan`: each stage's key and freshness, one line per stage or (`--json`) the stage
/// graph: `{workflow, kind, run_dir, stages: [{id, kind, upstream, input_files, output, key,
/// fresh}]}` in run order.
fn plan(args: &PlanArgs, data_dir: Option<&Path>) -> Result<()> {
    let wf = &args.workflow;
    let (plan, stages) = planned(wf, data_dir)?;
    if args.json {
        /// The printed graph (a struct, so fields keep this order).
        #[derive(serde::Serialize)]
        struct Graph<'a> {
            workflow: &'a Path,
            kind: &'a str,
            run_dir: &'a Path,
            stages: &'a [em_pipeline::PlannedStage],
        }
        let graph = Graph {
            workflow: &wf.workflow,
            kind: &plan.workflow.kind,
            run_dir: &plan.workflow.run_dir,
            stages: &stages,
        };
        println!("{}", serde_json::to_string_pretty(&graph)?);
        return Ok(());
    }
    for s in stages {
        println!(
            "{:<10} {:<6} {}",
            s.id,
            if s.fresh { "fresh" } else { "stale" },
            s.key.short()
        );
    }
    Ok(())
}

fn toy(args: &ToyArgs) -> Result<()> {
    if !TOY_TARGETS.contains(&args.target.as_str()) {
        bail!(
            "--target: unknown target `{}`, expected one of {}",
            args.target,
            TOY_TARGETS.join(", ")
        );
    }
    let src = Source {
        path: "<built-in workflows/toy2d.toml>".into(),
        text: TOY2D.to_string(),
    };
    let mut plan = workflow::plan::build(&src, Some(&args.out))?;
    let Body::Toy2d(t) = &mut plan.body else {
        bail!("the built-in toy2d workflow is not a toy2d workflow");
    };
    t.data.target = Some(args.target.clone());
    t.data.points = None;
    plan.workflow.name = format!("toy2d-{}", args.target);
    execute(&plan, None, args.force.clone(), args.quiet, None)
}
