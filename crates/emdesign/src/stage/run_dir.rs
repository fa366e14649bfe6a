//! Ownership of a run directory: emdesign writes a marker file into each run directory it
//! creates, refuses a run directory that holds the workflow file or someone else's files,
//! and `clean` removes only the entries emdesign writes (stage folders, their staging
//! folders, `resolved.toml`, `summary.json`, lock and marker), never the folder's other
//! contents.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::cache::write_atomic;

/// Marker file emdesign writes into every run directory it creates or adopts.
pub const MARKER: &str = ".emdesign-run";

const MARKER_TEXT: &str = "This folder is an emdesign run directory. `emdesign clean` removes \
only what emdesign wrote here (stage folders, resolved.toml, summary.json, this marker).\n";

/// Files emdesign writes at the top of a run directory besides the stage folders.
const RUN_FILES: [&str; 4] = [MARKER, "resolved.toml", "summary.json", ".lock"];

/// Whether `name`, an entry at the top of a run directory, is one emdesign writes for a
/// workflow with these stages: a stage folder, its staging folder (`name.partial`,
/// `.name.tmp`), a run-level file, or an atomic-write temp file of one of those.
pub fn is_ours(name: &str, stages: &[&str]) -> bool {
    if RUN_FILES.contains(&name) || stages.contains(&name) {
        return true;
    }
    if let Some(stem) = name.strip_suffix(".partial") {
        return stages.contains(&stem);
    }
    if let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) {
        if stages.contains(&inner) {
            return true;
        }
        // Atomic-write temp files: `.resolved.toml.<random>.tmp`, `.summary.json.<random>.tmp`
        return RUN_FILES.iter().any(|f| {
            inner
                .strip_prefix(f)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_alphanumeric()))
        });
    }
    false
}

/// Entries at the top of `dir` that emdesign did not write, sorted (empty if `dir` is
/// missing).
pub fn foreign_entries(dir: &Path, stages: &[&str]) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_ours(&name, stages) {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

fn shown(names: &[String]) -> String {
    let mut s: Vec<String> = names.iter().take(5).map(|n| format!("`{n}`")).collect();
    if names.len() > 5 {
        s.push(format!("and {} more", names.len() - 5));
    }
    s.join(", ")
}

/// Refuse a run directory that is, or lies above, the folder holding the workflow file.
fn refuse_workflow_inside(dir: &Path, workflow: Option<&Path>) -> Result<()> {
    let (Some(wf), Ok(dir_c)) = (workflow, dir.canonicalize()) else {
        return Ok(());
    };
    let Ok(wf_c) = wf.canonicalize() else {
        return Ok(());
    };
    if wf_c.starts_with(&dir_c) {
        bail!(
            "run directory {} contains the workflow file {}: emdesign writes and cleans its run \
             directory, so it must be a folder of its own (e.g. `run_dir = \"runs/{}\"` in \
             [workflow], or `--run-dir`)",
            dir.display(),
            wf.display(),
            wf.file_stem()
                .map_or("NAME".into(), |s| s.to_string_lossy())
        );
    }
    Ok(())
}

/// Make `dir` ready for a run: create it with its marker, or accept it when it holds the
/// marker, is empty, or holds only what emdesign writes (a run directory from before the
/// marker). Refuses a run directory holding the workflow file or other files.
pub fn prepare(dir: &Path, workflow: Option<&Path>, stages: &[&str]) -> Result<()> {
    refuse_workflow_inside(dir, workflow)?;
    if dir.join(MARKER).is_file() {
        return Ok(());
    }
    if dir.exists() {
        if !dir.is_dir() {
            bail!("run directory {} exists and is not a folder", dir.display());
        }
        let foreign = foreign_entries(dir, stages)?;
        if !foreign.is_empty() {
            bail!(
                "run directory {} already exists and holds files emdesign did not write ({}); \
                 choose a new or empty folder (`run_dir` in [workflow], or `--run-dir`)",
                dir.display(),
                shown(&foreign)
            );
        }
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create run directory {}", dir.display()))?;
    write_atomic(&dir.join(MARKER), MARKER_TEXT.as_bytes())
}

/// What [`clean`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// Entries removed (names at the top of the run directory).
    pub removed: Vec<String>,
    /// Entries kept because emdesign did not write them (the folder then stays).
    pub kept: Vec<String>,
    /// Whether the run directory itself was removed.
    pub removed_dir: bool,
}

/// Remove what emdesign wrote in `dir` (see [`is_ours`]), and the folder if nothing else
/// is left. Refuses a folder without the marker that holds other files, and one holding the
/// workflow file; takes the run lock so a running workflow is never cleaned under it.
pub fn clean(dir: &Path, workflow: Option<&Path>, stages: &[&str]) -> Result<Cleaned> {
    refuse_workflow_inside(dir, workflow)?;
    let foreign = foreign_entries(dir, stages)?;
    if !dir.join(MARKER).is_file() && !foreign.is_empty() {
        bail!(
            "{} is not an emdesign run directory (no {MARKER} marker) and holds other files \
             ({}); not removing anything",
            dir.display(),
            shown(&foreign)
        );
    }
    let mut removed = Vec::new();
    {
        let _lock = super::run_lock::RunLock::acquire(dir)?;
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_ours(n, stages) && n != ".lock" && n != MARKER)
            .collect();
        names.sort();
        for name in names {
            let p: PathBuf = dir.join(&name);
            let r = if p.is_dir() && !p.is_symlink() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            r.with_context(|| format!("cannot remove {}", p.display()))?;
            removed.push(name);
        }
    }
    let removed_dir = foreign.is_empty();
    if removed_dir {
        let marker = dir.join(MARKER);
        if marker.exists() {
            std::fs::remove_file(&marker)
                .with_context(|| format!("cannot remove {}", marker.display()))?;
            removed.push(MARKER.into());
        }
        let _ = std::fs::remove_file(dir.join(".lock"));
        std::fs::remove_dir(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    Ok(Cleaned {
        removed,
        kept: foreign,
        removed_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAGES: [&str; 2] = ["data", "energy"];

    #[test]
    fn names_emdesign_writes() {
        for n in [
            "data",
            "energy.partial",
            ".energy.tmp",
            "resolved.toml",
            ".summary.json.a1B2c3.tmp",
            MARKER,
        ] {
            assert!(is_ours(n, &STAGES), "{n}");
        }
        for n in [
            "w.toml",
            "notes",
            "design",
            ".x.tmp",
            ".summary.json.tmp",
            "data.csv",
        ] {
            assert!(!is_ours(n, &STAGES), "{n}");
        }
    }

    #[test]
    fn prepare_refuses_foreign_folders_and_clean_keeps_other_files() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("run");
        prepare(&dir, None, &STAGES).unwrap();
        assert!(dir.join(MARKER).is_file());
        std::fs::create_dir(dir.join("data")).unwrap();
        std::fs::write(dir.join("data/x"), "1").unwrap();
        std::fs::write(dir.join("mine.txt"), "keep").unwrap();
        let c = clean(&dir, None, &STAGES).unwrap();
        assert_eq!(c.removed, ["data"]);
        assert_eq!(c.kept, ["mine.txt"]);
        assert!(!c.removed_dir && dir.join("mine.txt").is_file());

        let user = root.path().join("user");
        std::fs::create_dir(&user).unwrap();
        std::fs::write(user.join("thesis.tex"), "x").unwrap();
        let e = format!("{:#}", prepare(&user, None, &STAGES).unwrap_err());
        assert!(e.contains("`thesis.tex`"), "{e}");
        let e = format!("{:#}", clean(&user, None, &STAGES).unwrap_err());
        assert!(e.contains("not removing anything"), "{e}");
        assert!(user.join("thesis.tex").is_file());
    }
}
