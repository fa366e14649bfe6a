//! What a cluster engine calls: `run WORKFLOW --only ID`, one stage instance into the shared
//! run directory, written exactly as a full run writes it (the engine runs the instances in
//! the plan's order, in parallel where the graph allows).

use std::path::Path;

use anyhow::Result;
use em_pipeline::UpstreamNotReady;

use crate::cli::RunArgs;
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
