//! `emdesign round`: one lab round of an own-data workflow. The results file is checked in
//! full against the designs proposed so far (em-protein's `rounds`) before anything is
//! written; then `<run_dir>/round-<k>/` gets the results and the merged `measured.csv`, the
//! own-data stages run there on it (cached, so an interrupted round resumes), and a row is
//! appended to `<run_dir>/rounds.csv`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use em_protein::round_log::{RoundRow, read_rounds, write_rounds};
use em_protein::rounds::{History, read_designs, read_results};
use em_protein::user_data::UserDataConfig;

use crate::cli::RoundArgs;
use crate::stage::protein_files::read_train;
use crate::stage::{TOOL, cache, run_dir};
use crate::workflow::plan::Body;
use crate::workflow::protein::Data;
use crate::workflow::{self, Plan};

/// The folder of round `k` (0: the run directory itself).
fn round_dir(run_dir: &Path, k: usize) -> PathBuf {
    if k == 0 {
        run_dir.to_path_buf()
    } else {
        run_dir.join(format!("round-{k}"))
    }
}

fn designs_csv(run_dir: &Path, k: usize) -> PathBuf {
    round_dir(run_dir, k).join("report/designs.csv")
}

/// Run one lab round (see the module docs).
pub fn round(args: &RoundArgs, data_dir: Option<&Path>) -> Result<()> {
    let wf = &args.workflow;
    let plan = workflow::load(wf, args.run_dir.as_deref())?;
    let Body::Protein(p) = &plan.body else {
        bail!(
            "{}: `emdesign round` needs a protein workflow on your own data ([data] source = \
             \"file\"), not kind = \"{}\"",
            wf.display(),
            plan.workflow.kind
        );
    };
    let Data::File(own) = &p.data else {
        bail!(
            "{}: `emdesign round` is for workflows on your own data ([data] source = \"file\"); \
             this one is a benchmark task, whose designs the oracle scores in `evaluate`",
            wf.display()
        );
    };
    let run_dir = &plan.workflow.run_dir;
    let first = designs_csv(run_dir, 0);
    if !first.is_file() {
        bail!(
            "{}: missing, so there is no round 0 to build on: run `emdesign run {}` first and \
             measure its designs",
            first.display(),
            wf.display()
        );
    }
    let _lock = TOOL.lock(run_dir)?;
    let rounds_path = run_dir.join("rounds.csv");
    let mut rows = if rounds_path.is_file() {
        read_rounds(&rounds_path)?
    } else {
        Vec::new()
    };
    let history0 = History::from_data(&read_train(&run_dir.join("data"))?);
    if rows.is_empty() {
        rows.push(RoundRow::new(0, &history0, &read_designs(&first)?));
    }
    let k = rows.len();
    let mut proposed = HashSet::new();
    for j in 0..k {
        let path = designs_csv(run_dir, j);
        proposed.extend(
            read_designs(&path)
                .with_context(|| format!("round {j}'s designs"))?
                .into_iter()
                .map(|d| d.0),
        );
    }
    let previous = if k == 1 {
        history0
    } else {
        History::read(&round_dir(run_dir, k - 1).join("measured.csv"))?
    };
    // Everything about the results file is checked before the round's folder exists.
    let results = read_results(
        &args.measured,
        &own.file,
        own.wild_type.as_ref(),
        own.length,
        &proposed,
    )?;
    let bytes = std::fs::read(&args.measured)
        .with_context(|| format!("cannot read {}", args.measured.display()))?;
    for j in 1..k {
        let earlier = round_dir(run_dir, j).join("results.csv");
        if std::fs::read(&earlier).is_ok_and(|b| b == bytes) {
            bail!(
                "{}: the same file as round {j}'s results ({}), merged already; round {k} \
                 needs the measurements of round {}'s designs",
                args.measured.display(),
                earlier.display(),
                k - 1
            );
        }
    }
    let history = previous.with_round(k, &results);
    let dir = round_dir(run_dir, k);
    if dir.exists() {
        // An interrupted round k: it resumes with the results it started with.
        let stored = dir.join("results.csv");
        if std::fs::read(&stored).ok().as_deref() != Some(bytes.as_slice()) {
            bail!(
                "{}: round {k} was started with another results file ({}); rerun with that \
                 file to finish it, or remove {} to start round {k} again",
                args.measured.display(),
                stored.display(),
                dir.display()
            );
        }
    } else {
        create_round_dir(&plan, wf, &dir, &bytes, &history)?;
    }
    let round_plan = round_plan(&plan, &dir, k, &own.file)?;
    crate::commands::execute(&round_plan, Some(wf), None, args.quiet, data_dir)?;
    let designs = read_designs(&designs_csv(run_dir, k))?;
    let row = RoundRow::new(k, &history, &designs);
    println!(
        "round {k}: {} designs proposed in {}; {} measured so far, best measured {}; best \
         predicted {}; row appended to {}",
        row.batch_size,
        designs_csv(run_dir, k).display(),
        row.n_measured_total,
        row.best_measured,
        row.best_predicted,
        rounds_path.display()
    );
    rows.push(row);
    write_rounds(&rounds_path, &rows)?;
    Ok(())
}

/// Writes the round's folder under a temporary name and renames it into place: its marker,
/// the results file as given (`results.csv`) and the merged history (`measured.csv`).
fn create_round_dir(
    plan: &Plan,
    workflow: &Path,
    dir: &Path,
    results: &[u8],
    history: &History,
) -> Result<()> {
    let name = dir
        .file_name()
        .map_or("round".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.with_file_name(format!(".{name}.tmp"));
    if tmp.exists() {
        // A creation cut short before its rename: nothing in it was used.
        std::fs::remove_dir_all(&tmp)
            .with_context(|| format!("cannot remove {}", tmp.display()))?;
    }
    run_dir::prepare(&TOOL, &tmp, Some(workflow), plan.stage_names())?;
    cache::write_atomic(&tmp.join("results.csv"), results)?;
    history.write(&tmp.join("measured.csv"))?;
    std::fs::rename(&tmp, dir)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), dir.display()))
}

/// How far apart the design seeds of two rounds lie: round `k` designs with each seed `s`
/// of `[design] seeds` as `s + k * ROUND_SEED_STRIDE`, so a round starts its chains from
/// fresh noise instead of walking back to the designs measured in the round before.
pub const ROUND_SEED_STRIDE: u64 = 1000;

/// The workflow of round `k`: the same settings, the run directory `dir`, the design seeds
/// moved by [`ROUND_SEED_STRIDE`], and as data the merged `dir/measured.csv` (a sequence
/// table; constraints and numbering unchanged).
fn round_plan(plan: &Plan, dir: &Path, k: usize, file: &UserDataConfig) -> Result<Plan> {
    let Body::Protein(p) = &plan.body else {
        bail!("not a protein workflow");
    };
    let merged = UserDataConfig {
        sequences: Some(dir.join("measured.csv")),
        mutations: None,
        sequence_column: "sequence".into(),
        score_column: "score".into(),
        ..file.clone()
    };
    let mut out = plan.clone();
    out.workflow.run_dir = dir.to_path_buf();
    out.workflow.name = format!("{} round {k}", plan.workflow.name);
    let mut p = p.with_own_file(merged)?;
    for s in &mut p.design.seeds {
        *s += k as u64 * ROUND_SEED_STRIDE;
    }
    out.body = Body::Protein(p);
    Ok(out)
}
