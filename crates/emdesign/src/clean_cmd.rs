//! `emdesign clean`: remove what a workflow's runs wrote in its run directory. Lab rounds
//! (`round-<k>/`, `rounds.csv`, written by `emdesign round`) hold copies of the user's
//! measurements and the history of what was proposed, so they stay unless `--rounds` is given;
//! the message names what was kept. Nothing emdesign did not write is removed.

use std::path::Path;

use anyhow::{Context, Result};
use em_protein::round_log::ROUND_COLUMNS;

use crate::cli::CleanArgs;
use crate::stage::{TOOL, run_dir};
use crate::workflow;

/// The files `emdesign round` writes in a round folder besides its stages' outputs.
const ROUND_TOOL: run_dir::Tool = run_dir::Tool {
    run_files: &[
        "resolved.toml",
        "summary.json",
        "results.csv",
        "measured.csv",
    ],
    ..TOOL
};

/// The lab-round log at the top of a run directory.
const ROUNDS_CSV: &str = "rounds.csv";

/// Run `emdesign clean` (see the module docs).
pub fn clean(args: &CleanArgs) -> Result<()> {
    let wf = &args.workflow.workflow;
    let plan = workflow::load(wf, args.workflow.run_dir.as_deref())?;
    let dir = &plan.workflow.run_dir;
    if !dir.exists() {
        println!("nothing to clean: {} does not exist", dir.display());
        return Ok(());
    }
    let stages = plan.stage_names();
    let rounds_kept = if args.rounds {
        let done = clean_rounds(dir, wf, stages)?;
        for name in &done.removed {
            println!("removed {}", dir.join(name).display());
        }
        done.kept
    } else {
        round_entries(dir)?
    };
    let done = run_dir::clean(&TOOL, dir, Some(wf), stages)?;
    if done.removed_dir {
        println!("removed {}", dir.display());
        return Ok(());
    }
    let other: Vec<&str> = done
        .kept
        .iter()
        .filter(|n| !rounds_kept.contains(n))
        .map(String::as_str)
        .collect();
    println!(
        "removed {} entries emdesign wrote in {}; kept {} other entries ({}) and the folder",
        done.removed.len(),
        dir.display(),
        other.len(),
        other.join(", ")
    );
    let rounds = rounds_kept.join(", ");
    if !rounds_kept.is_empty() && args.rounds {
        println!("kept lab-round entries holding files emdesign did not write: {rounds}");
    } else if !rounds_kept.is_empty() {
        println!(
            "kept the lab rounds ({}): they hold copies of your measurements and what each \
             round proposed; `emdesign clean --rounds {}` removes them too",
            rounds,
            wf.display()
        );
    }
    Ok(())
}

/// What [`clean_rounds`] did (entry names at the top of the run directory).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RoundsCleaned {
    /// Removed entries.
    pub removed: Vec<String>,
    /// Round entries kept because they hold something emdesign did not write (a round folder
    /// with other files, a `rounds.csv` that is not emdesign's log).
    pub kept: Vec<String>,
}

/// Whether `name` is a round folder (`round-<k>`, k >= 1, or the `.round-<k>.tmp` of a
/// creation cut short).
fn is_round_folder(name: &str) -> bool {
    let k = name
        .strip_prefix('.')
        .and_then(|n| n.strip_suffix(".tmp"))
        .unwrap_or(name)
        .strip_prefix("round-");
    k.is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) && k != "0")
}

/// The lab-round entries at the top of `dir`, sorted: round folders and `rounds.csv`.
pub fn round_entries(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            (is_round_folder(&name) && path.is_dir() && !path.is_symlink())
                || (name == ROUNDS_CSV && path.is_file())
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// Remove the lab rounds of the run directory `dir`: each round folder as `clean` removes a
/// run directory (only what emdesign wrote: its stages, marker, `results.csv`, `measured.csv`;
/// a folder without emdesign's marker is kept whole), then `rounds.csv` when
/// it is emdesign's log (its header). Holds the run lock, so no `emdesign round` runs
/// meanwhile.
pub fn clean_rounds(dir: &Path, workflow: &Path, stages: &[&str]) -> Result<RoundsCleaned> {
    let _lock = TOOL.lock(dir)?;
    let mut done = RoundsCleaned::default();
    for name in round_entries(dir)? {
        let path = dir.join(&name);
        if name == ROUNDS_CSV {
            let header = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if header.lines().next() == Some(ROUND_COLUMNS.join(",").as_str()) {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
                done.removed.push(name);
            } else {
                done.kept.push(name);
            }
            continue;
        }
        // `emdesign round` writes its marker first; a folder without it is not one of ours.
        if !path.join(ROUND_TOOL.marker).is_file() {
            done.kept.push(name);
            continue;
        }
        let cleaned = run_dir::clean(&ROUND_TOOL, &path, Some(workflow), stages)?;
        if cleaned.removed_dir {
            done.removed.push(name);
        } else {
            done.kept.push(name);
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAGES: [&str; 2] = ["data", "report"];

    /// A run directory as `emdesign run` + two `emdesign round`s leave it, plus `extra`.
    fn run_dir_with_rounds(root: &Path) -> std::path::PathBuf {
        let dir = root.join("run");
        for d in [dir.clone(), dir.join("round-1"), dir.join("round-2")] {
            run_dir::prepare(&TOOL, &d, None, &STAGES).unwrap();
            std::fs::create_dir_all(d.join("report")).unwrap();
            std::fs::write(d.join("report/designs.csv"), "sequence\n").unwrap();
        }
        for d in ["round-1", "round-2"] {
            std::fs::write(dir.join(d).join("results.csv"), "sequence,score\n").unwrap();
            std::fs::write(dir.join(d).join("measured.csv"), "sequence,score\n").unwrap();
        }
        let header = ROUND_COLUMNS.join(",");
        std::fs::write(dir.join(ROUNDS_CSV), format!("{header}\n0,1,1,1,1\n")).unwrap();
        dir
    }

    #[test]
    fn round_entries_are_round_folders_and_the_log() {
        let root = tempfile::tempdir().unwrap();
        let dir = run_dir_with_rounds(root.path());
        std::fs::create_dir(dir.join("round-x")).unwrap();
        std::fs::create_dir(dir.join("round-0")).unwrap();
        assert_eq!(
            round_entries(&dir).unwrap(),
            ["round-1", "round-2", "rounds.csv"]
        );
        assert!(is_round_folder(".round-3.tmp") && !is_round_folder("round-"));
    }

    #[test]
    fn clean_rounds_removes_what_round_wrote_and_keeps_anything_else() {
        let root = tempfile::tempdir().unwrap();
        let dir = run_dir_with_rounds(root.path());
        let wf = root.path().join("w.toml");
        // the user's own notes in round 2 stay, and so does that folder
        std::fs::write(dir.join("round-2/notes.txt"), "mine").unwrap();
        let done = clean_rounds(&dir, &wf, &STAGES).unwrap();
        assert_eq!(done.removed, ["round-1", "rounds.csv"]);
        assert_eq!(done.kept, ["round-2"]);
        assert!(!dir.join("round-1").exists() && !dir.join(ROUNDS_CSV).exists());
        assert_eq!(
            std::fs::read_to_string(dir.join("round-2/notes.txt")).unwrap(),
            "mine"
        );
        assert!(!dir.join("round-2/results.csv").exists());
        // the top-level stages were not touched
        assert!(dir.join("report/designs.csv").is_file());
    }

    #[test]
    fn a_log_or_folder_emdesign_did_not_write_is_kept() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("run");
        run_dir::prepare(&TOOL, &dir, None, &STAGES).unwrap();
        std::fs::write(dir.join(ROUNDS_CSV), "my,own,columns\n").unwrap();
        std::fs::create_dir(dir.join("round-1")).unwrap();
        std::fs::write(dir.join("round-1/results.csv"), "mine").unwrap();
        let done = clean_rounds(&dir, &root.path().join("w.toml"), &STAGES).unwrap();
        assert!(done.removed.is_empty());
        assert_eq!(done.kept, ["round-1", "rounds.csv"]);
        assert!(dir.join("round-1/results.csv").is_file() && dir.join(ROUNDS_CSV).is_file());
    }
}
