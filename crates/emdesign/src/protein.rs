//! Glue for the protein subcommands onto em-protein: `data split` (GGS splits of the vendored
//! ground truth or of a user's CSV), `data fetch` (check the data directory), `oracle` (score a
//! FASTA/CSV) and `eval` (fitness, diversity, novelty of designs against a split).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use em_protein::benchmark::{self, SplitSpec};
use em_protein::datasets::{self, Checkpoint};
use em_protein::gfp_splits::{GfpSplit, training_split};
use em_protein::io::{self, LengthRule, ReadOptions, ScoreRule};
use em_protein::metrics;
use em_protein::oracle::GgsCnnOracle;
use em_protein::sequence::{ScoredSequences, Sequence};

use crate::cli::{Difficulty, SplitArgs, Task};
use crate::stage::cache::write_atomic;

/// Designs kept for evaluation (the GGS protocol's top 128).
pub const TOP_K: usize = 128;

pub(crate) fn task(t: Task) -> datasets::Task {
    match t {
        Task::Gfp => datasets::Task::Gfp,
        Task::Aav => datasets::Task::Aav,
    }
}

fn difficulty(d: Difficulty) -> benchmark::Difficulty {
    match d {
        Difficulty::Medium => benchmark::Difficulty::Medium,
        Difficulty::Hard => benchmark::Difficulty::Hard,
    }
}

/// A task's ground truth: from the data directory when it holds one, else the vendored
/// (checksum-checked) copy built into the binary.
fn ground_truth(t: datasets::Task, data_dir: Option<&Path>) -> Result<ScoredSequences> {
    let from_dir = data_dir
        .map(|dir| datasets::data_dir(Some(dir)))
        .transpose()?
        .filter(|dir| dir.join(t.name()).join("ground_truth.csv").exists());
    Ok(match from_dir {
        Some(dir) => t.ground_truth_from(&dir)?,
        None => t.ground_truth()?,
    })
}

/// Refuse an output path that is one of the inputs (it would be overwritten while read).
fn refuse_overwriting_input(out: &Path, inputs: &[&Path]) -> Result<()> {
    let Ok(out_c) = out.canonicalize() else {
        return Ok(()); // does not exist yet
    };
    for input in inputs {
        if input.canonicalize().is_ok_and(|i| i == out_c) {
            bail!(
                "--out {} is the input file {}: writing the split would destroy its source; \
                 choose another output path",
                out.display(),
                input.display()
            );
        }
    }
    Ok(())
}

/// `emdesign data split`.
pub fn split(args: &SplitArgs, data_dir: Option<&Path>) -> Result<()> {
    if let Some(input) = &args.input {
        refuse_overwriting_input(&args.out, &[input])?;
    }
    if let Some(dir) = data_dir {
        for t in datasets::Task::ALL {
            refuse_overwriting_input(&args.out, &[&dir.join(t.name()).join("ground_truth.csv")])?;
        }
    }
    let (gt, spec, label) = match (&args.input, args.task, args.difficulty) {
        (Some(input), _, _) => {
            let p = args.percentiles.as_deref().unwrap_or_default();
            let [lo, hi] = p else {
                bail!(
                    "--percentiles: expected two numbers LO,HI, got {} values",
                    p.len()
                )
            };
            let edits = args.min_edits.unwrap_or_default();
            let edits = u32::try_from(edits)
                .with_context(|| format!("--min-edits: {edits} is too large"))?;
            let options = ReadOptions {
                length: LengthRule::SameAsFirst,
                ..ReadOptions::default()
            };
            let (gt, report) = io::read_scored(input, &options)?;
            if report.merged > 0 {
                eprintln!(
                    "note: {}: {} repeated rows merged by averaging their scores ({} with differing scores)",
                    input.display(),
                    report.merged,
                    report.conflicting
                );
            }
            (
                gt,
                SplitSpec::custom(edits, *lo, *hi)?,
                input.display().to_string(),
            )
        }
        (None, Some(t), Some(d)) => {
            let t = task(t);
            (
                ground_truth(t, data_dir)?,
                SplitSpec::ggs(difficulty(d)),
                format!("{} {}", t.name(), difficulty(d).name()),
            )
        }
        _ => bail!("give --task and --difficulty, or --input with --min-edits and --percentiles"),
    };
    if let Some((lo, hi)) = gt.score_range()
        && lo == hi
    {
        bail!(
            "{label}: all {} scores are equal ({lo}); a percentile window cannot select from \
             them and there is no top to keep away from",
            gt.len()
        );
    }
    let s = benchmark::split(&gt, &spec);
    if s.data.is_empty() {
        let (lo, hi) = spec.percentiles();
        bail!(
            "{label}: the split is empty ({} of {} sequences in percentiles {lo}-{hi}, none at \
             least {} edits from the {} top sequences); widen the window or lower --min-edits; \
             nothing written",
            s.n_window,
            gt.len(),
            spec.min_edits(),
            s.n_top
        );
    }
    io::csv::write_scored_csv(&args.out, &s.data)?;
    let (lo, hi) = spec.percentiles();
    println!(
        "{label}: {} of {} sequences (percentiles {lo}-{hi}: {} in window, scores {:.4}..{:.4}; >= {} edits from {} top sequences) -> {}",
        s.data.len(),
        gt.len(),
        s.n_window,
        s.lo_score,
        s.hi_score,
        spec.min_edits(),
        s.n_top,
        args.out.display()
    );
    Ok(())
}

/// `emdesign data fetch`: download each task's GGS oracle checkpoint (the original
/// `oracle.ckpt` from the pinned GGS commit, SHA-256 checked, written atomically) when the
/// data directory has no oracle yet, then report which files are present and verified.
/// The GGS predictors have no pinned originals: train one instead (`[predictor] source =
/// "train"`), from the CC BY ground truth.
pub fn fetch(data_dir: Option<&Path>) -> Result<()> {
    let dir = datasets::data_dir(data_dir)?;
    let mut missing = 0;
    for t in datasets::Task::ALL {
        if t.checkpoint(&dir, Checkpoint::Oracle).is_err() {
            download_oracle(&dir, t)?;
        }
        let mut checks = vec![Checkpoint::Oracle];
        for d in [benchmark::Difficulty::Medium, benchmark::Difficulty::Hard] {
            for smoothed in [true, false] {
                checks.push(Checkpoint::Predictor {
                    difficulty: d,
                    smoothed,
                });
            }
        }
        for c in checks {
            match t.checkpoint(&dir, c) {
                Ok(path) => println!("ok       {}", path.display()),
                Err(e) => {
                    missing += 1;
                    println!("missing  {}/{}: {e}", t.name(), c.file_name());
                }
            }
        }
    }
    if missing > 0 {
        bail!(
            "{missing} file(s) missing or unverified in {}: the GGS predictors are not \
             downloadable from a pinned source; use `[predictor] source = \"train\"` or copy \
             them from the shared data mirror",
            dir.display()
        );
    }
    Ok(())
}

#[cfg(feature = "fetch")]
fn download_oracle(dir: &Path, t: datasets::Task) -> Result<()> {
    println!("fetching {}", datasets::oracle_ckpt_url(t));
    let path = datasets::fetch(dir, t)?;
    println!("verified {}", path.display());
    Ok(())
}

#[cfg(not(feature = "fetch"))]
fn download_oracle(_dir: &Path, t: datasets::Task) -> Result<()> {
    println!(
        "not fetching {}: this build has no `fetch` feature",
        datasets::oracle_ckpt_url(t)
    );
    Ok(())
}

/// The records of a designs file checked for the task's length; scores in it are not read
/// (a stale or NaN score column must not block scoring).
fn read_design_records(path: &Path, t: datasets::Task) -> Result<Vec<io::Record>> {
    let options = ReadOptions {
        score: ScoreRule::Ignored,
        length: LengthRule::Exactly(t.length()),
        ..ReadOptions::default()
    };
    io::read_records(path, &options).map_err(|e| {
        let hint = match &e {
            em_protein::error::Error::Ragged {
                found, expected, ..
            } if *found == expected + 1 && t == datasets::Task::Gfp => {
                "; the GFP benchmark's sequences are avGFP without its initial Met (237 \
                 residues, numbered from S2): drop the leading M"
            }
            _ => "",
        };
        anyhow::anyhow!("{e}{hint}")
    })
}

fn read_designs(path: &Path, t: datasets::Task) -> Result<Vec<Sequence>> {
    Ok(read_design_records(path, t)?
        .into_iter()
        .map(|r| r.sequence)
        .collect())
}

fn load_cnn(path: PathBuf) -> Result<GgsCnnOracle> {
    GgsCnnOracle::load(&path, &Device::flex())
        .with_context(|| format!("cannot load {}", path.display()))
}

fn score(model: &GgsCnnOracle, seqs: &[Sequence]) -> Result<Vec<f64>> {
    let idx: Vec<Vec<u8>> = seqs.iter().map(|s| s.indices().to_vec()).collect();
    Ok(model.try_score(&idx)?.into_iter().map(f64::from).collect())
}

/// `emdesign oracle`: print `id,sequence,oracle,normalised` for every record of `file` (ids
/// as in the file: FASTA ids, a CSV `id` column, else `row_<line>`). A closed pipe
/// (`| head`) ends the output quietly. Without the data directory (or its oracle file)
/// emdesign's embedded oracle scores, and stderr says so.
pub fn oracle(t: Task, file: &Path, data_dir: Option<&Path>) -> Result<()> {
    let t = task(t);
    let dir = datasets::data_dir(data_dir);
    let dir_path = dir.as_ref().ok().cloned();
    let source = em_protein::own_oracle::OracleSource::resolve(t, dir)?;
    let records = read_design_records(file, t)?;
    let seqs: Vec<Sequence> = records.iter().map(|r| r.sequence.clone()).collect();
    eprintln!("{}", source.describe());
    let oracle = source
        .load(&Device::flex())
        .with_context(|| format!("cannot load the {} oracle", source.name()))?;
    let scores = score(&oracle, &seqs)?;
    let (min, max) = ground_truth(t, dir_path.as_deref())?
        .score_range()
        .context("empty ground truth")?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let write = |out: &mut dyn std::io::Write| -> std::io::Result<()> {
        writeln!(out, "id,sequence,oracle,normalised")?;
        for (r, y) in records.iter().zip(&scores) {
            writeln!(
                out,
                "{},{},{y},{}",
                csv_field(&r.id),
                r.sequence,
                (y - min) / (max - min)
            )?;
        }
        out.flush()
    };
    match write(&mut out) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("cannot write to stdout"),
    }
}

/// `text` as one CSV field (quoted when it holds a comma, quote or line break).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// `emdesign eval`: deduplicate, keep the top 128 by the GGS predictor of the split when there
/// are more, score with the oracle, and write fitness/diversity/novelty to JSON (+ Markdown).
pub fn eval(
    t: Task,
    d: Difficulty,
    designs: &Path,
    out: &Path,
    data_dir: Option<&Path>,
) -> Result<()> {
    let (t, d) = (task(t), difficulty(d));
    let dir = datasets::data_dir(data_dir)?;
    let read = read_designs(designs, t)?;
    let mut seen = HashSet::new();
    let mut unique: Vec<Sequence> = read
        .iter()
        .filter(|s| seen.insert(s.indices().to_vec()))
        .cloned()
        .collect();
    let n_unique = unique.len();
    let mut selection = "all".to_string();
    if unique.len() > TOP_K {
        let ckpt = Checkpoint::Predictor {
            difficulty: d,
            smoothed: true,
        };
        let predictor = load_cnn(t.checkpoint(&dir, ckpt)?)?;
        let pred = score(&predictor, &unique)?;
        let mut order: Vec<usize> = (0..unique.len()).collect();
        order.sort_by(|&a, &b| pred[b].total_cmp(&pred[a]).then(a.cmp(&b)));
        unique = order[..TOP_K].iter().map(|&i| unique[i].clone()).collect();
        selection = format!("top {TOP_K} by the GGS predictor {}", ckpt.file_name());
    }
    let gt = ground_truth(t, Some(&dir))?;
    let (min, max) = gt.score_range().context("empty ground truth")?;
    // Novelty against the benchmark's default training split (GGS's own files for GFP).
    let training = training_split(t, d, GfpSplit::default(), &gt)?
        .data()
        .clone();
    let oracle = load_cnn(t.checkpoint(&dir, Checkpoint::Oracle)?)?;
    let scores = score(&oracle, &unique)?;
    let fitness = metrics::fitness(&scores, min, max);
    let diversity = metrics::diversity(&unique);
    let novelty = metrics::novelty(&unique, training.sequences());
    let report = serde_json::json!({
        "task": t.name(), "difficulty": d.name(), "designs": designs.display().to_string(),
        "n_read": read.len(), "n_unique": n_unique, "n_evaluated": unique.len(), "selection": selection,
        "fitness": fitness, "diversity": diversity, "novelty": novelty,
        "n_training": training.len(), "min_gt": min, "max_gt": max,
    });
    write_atomic(out, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!("| task | designs | fitness | diversity | novelty |\n|---|---|---|---|---|");
    println!(
        "| {} {} | {} of {} ({selection}) | {fitness:.3} | {diversity:.2} | {novelty:.1} |",
        t.name(),
        d.name(),
        unique.len(),
        read.len()
    );
    Ok(())
}
