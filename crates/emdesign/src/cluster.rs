//! What a cluster engine calls: `run WORKFLOW --only ID`, one stage instance into the shared
//! run directory, written exactly as a full run writes it (the engine runs the instances in
//! the plan's order, in parallel where the graph allows); `unlock`, which removes the locks
//! a process left behind where emdesign cannot take them over (another host); and `export
//! snakemake`, which writes the plan as a Snakefile whose rules call `--only`.

use std::path::Path;

use anyhow::{Result, bail};
use em_pipeline::UpstreamNotReady;

use crate::cli::{RunArgs, UnlockArgs, WorkflowArgs};
use crate::progress::Progress;
use crate::stage::{self, Runner, TOOL};
use crate::workflow::Plan;

/// `emdesign run WORKFLOW --only ID`: check that `id` exists and its upstream stages are
/// finished and fresh (writing nothing otherwise), make the run directory ready as a full
/// run does, and run (or reuse) that one stage. `summary.json` belongs to plain runs.
pub fn run_only(plan: &Plan, args: &RunArgs, id: &str, data_dir: Option<&Path>) -> Result<()> {
    let stages = stage::build(plan, data_dir)?;
    let progress = Progress::new(args.quiet);
    let runner = Runner {
        tool: &TOOL,
        run_dir: plan.workflow.run_dir.clone(),
        force: args.force.clone(),
        progress: progress.clone(),
    };
    let job = runner.only(&stages, id).map_err(|e| with_hint(e, args))?;
    crate::commands::prepare_run_dir(plan, Some(&args.workflow))?;
    let report = job.run()?;
    progress.line(&format!(
        "done: stage `{id}` {} in {:.1}s; outputs in {}",
        if report.status == stage::Status::Ran {
            "ran"
        } else {
            "was fresh"
        },
        report.wall_secs,
        plan.workflow.run_dir.join(id).display()
    ));
    Ok(())
}

/// An upstream that is not ready, with the command that produces it.
fn with_hint(err: anyhow::Error, args: &RunArgs) -> anyhow::Error {
    let Some(not_ready) = err.downcast_ref::<UpstreamNotReady>() else {
        return err;
    };
    let run_dir = args
        .run_dir
        .as_ref()
        .map(|d| format!(" --run-dir {}", d.display()))
        .unwrap_or_default();
    let wf = args.workflow.display();
    anyhow::anyhow!(
        "{not_ready}; produce it first with `emdesign run {wf}{run_dir} --only {up}` (or run \
         every stage with `emdesign run {wf}{run_dir}`)",
        up = not_ready.upstream
    )
}

/// `emdesign unlock WORKFLOW [--stage ID]`: remove the run lock and every stage lock (or
/// that stage's), all or nothing: a lock a running process of this host holds is refused.
pub fn unlock(args: &UnlockArgs) -> Result<()> {
    use em_pipeline::run_lock::{self, Holder};
    let plan = crate::workflow::load(&args.workflow.workflow, args.workflow.run_dir.as_deref())?;
    let dir = &plan.workflow.run_dir;
    let names = plan.stage_names();
    let paths = match &args.stage {
        Some(id) if !names.contains(&id.as_str()) => bail!(
            "--stage: no stage named `{id}` (stages: {})",
            names.join(", ")
        ),
        Some(id) => vec![stage::run_dir::stage_lock(dir, id)],
        None => std::iter::once(dir.join(stage::run_dir::LOCK))
            .chain(names.iter().map(|id| stage::run_dir::stage_lock(dir, id)))
            .collect(),
    };
    for path in &paths {
        if let Some(Holder::Running(owner)) = run_lock::holder(path)? {
            bail!(
                "{} is held by a running emdesign process ({owner}); stop that process \
                 instead (nothing removed)",
                path.display()
            );
        }
    }
    let mut removed = 0;
    for path in &paths {
        if let Some(owner) = run_lock::remove(path, TOOL.name)? {
            println!("removed {} ({owner})", path.display());
            removed += 1;
        }
    }
    if removed == 0 {
        println!("no locks to remove in {}", dir.display());
    }
    Ok(())
}

/// `emdesign export snakemake WORKFLOW`: the planned stages as a Snakefile on stdout, every
/// path absolute (the workflow, the run directory, this binary, the data directory if given),
/// so the file works from any directory and on any node that sees the same paths.
pub fn export_snakemake(args: &WorkflowArgs, data_dir: Option<&Path>) -> Result<()> {
    let (plan, stages) = crate::commands::planned(args, data_dir)?;
    // Absolute but not canonical: the data directory's path is written as given (the
    // evaluation records it), so a job's outputs equal a plain run's with the same flag.
    let absolute =
        |p: &Path| std::path::absolute(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()));
    let workflow = absolute(&args.workflow)?;
    let program = std::env::current_exe()?;
    let global_args = match data_dir {
        Some(d) => vec!["--data-dir".to_string(), absolute(d)?.display().to_string()],
        None => Vec::new(),
    };
    let text = em_pipeline::snakemake::Snakefile {
        tool: TOOL.name,
        version: em_pipeline::VERSION,
        program: &program,
        global_args: &global_args,
        workflow: &workflow,
        run_dir: &plan.workflow.run_dir,
        stages: &stages,
    }
    .render()?;
    print!("{text}");
    Ok(())
}
