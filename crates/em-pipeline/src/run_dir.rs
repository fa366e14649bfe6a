//! Ownership of a run directory: a [`Tool`] writes its marker file into each run directory
//! it creates, refuses a run directory that holds the workflow file or someone else's files,
//! and [`clean`] removes only the entries the tool writes (stage folders, their staging
//! folders, its run-level files, lock and marker), never the folder's other contents.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cache::write_atomic;

/// The program that owns run directories, as this module names it in files and messages.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    /// Program name in messages (`emdesign`).
    pub name: &'static str,
    /// Marker file written into every run directory it creates or adopts (`.emdesign-run`).
    pub marker: &'static str,
    /// Contents of the marker file (what the folder is, for a curious user).
    pub marker_text: &'static str,
    /// Files it writes at the top of a run directory besides the stage folders, the marker
    /// and the lock (`resolved.toml`).
    pub run_files: &'static [&'static str],
    /// How a user chooses the run directory, ending error messages
    /// (`` `run_dir` in [workflow], or `--run-dir` ``).
    pub choose_run_dir: &'static str,
    /// The same, as an example for a workflow file stem (`` `run_dir = "runs/NAME"` in
    /// [workflow], or `--run-dir` ``).
    pub example_run_dir: fn(&str) -> String,
}

/// File name of the run lock at the top of a run directory.
pub const LOCK: &str = ".lock";

impl Tool {
    /// Whether `file` is one of the files written at the top of a run directory.
    fn is_run_file(&self, file: &str) -> bool {
        file == self.marker || file == LOCK || self.run_files.contains(&file)
    }

    /// The lock of run directory `dir` (which must exist).
    pub fn lock(&self, dir: &Path) -> Result<crate::RunLock> {
        crate::RunLock::acquire(dir, self.name)
    }

    /// The lock of stage `id` in run directory `dir` (which must exist).
    pub fn lock_stage(&self, dir: &Path, id: &str) -> Result<crate::RunLock> {
        crate::RunLock::acquire_file(
            &stage_lock(dir, id),
            &format!("stage `{id}` of run directory {}", dir.display()),
            &format!("{} unlock WORKFLOW --stage {id}", self.name),
            self.name,
        )
    }
}

/// The lock file of stage `id` in run directory `dir`: `.<id>.lock`.
pub fn stage_lock(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!(".{id}.lock"))
}

/// Whether `name` is a lock file of the run or of one of `stages`, or the temporary file a
/// lock is written to first (`<lock>.<pid>.tmp`).
fn is_lock_file(name: &str, stages: &[&str]) -> bool {
    let lock = name
        .strip_suffix(".tmp")
        .and_then(|n| n.rsplit_once('.'))
        .filter(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        .map_or(name, |(lock, _)| lock);
    lock == LOCK
        || lock
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".lock"))
            .is_some_and(|id| stages.contains(&id))
}

/// Whether `name`, an entry at the top of a run directory, is one `tool` writes for a
/// workflow with these stages: a stage folder, its staging folder (`name.partial`,
/// `.name.tmp`), a run-level file, or an atomic-write temp file of one of those.
pub fn is_ours(tool: &Tool, name: &str, stages: &[&str]) -> bool {
    if tool.is_run_file(name) || stages.contains(&name) || is_lock_file(name, stages) {
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
        let mut run_files = [tool.marker, LOCK]
            .into_iter()
            .chain(tool.run_files.iter().copied());
        return run_files.any(|f| {
            inner
                .strip_prefix(f)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_alphanumeric()))
        });
    }
    false
}

/// Entries at the top of `dir` that `tool` did not write, sorted (empty if `dir` is
/// missing).
pub fn foreign_entries(tool: &Tool, dir: &Path, stages: &[&str]) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_ours(tool, &name, stages) {
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
fn refuse_workflow_inside(tool: &Tool, dir: &Path, workflow: Option<&Path>) -> Result<()> {
    let (Some(wf), Ok(dir_c)) = (workflow, dir.canonicalize()) else {
        return Ok(());
    };
    let Ok(wf_c) = wf.canonicalize() else {
        return Ok(());
    };
    if wf_c.starts_with(&dir_c) {
        bail!(
            "run directory {} contains the workflow file {}: {} writes and cleans its run \
             directory, so it must be a folder of its own (e.g. {})",
            dir.display(),
            wf.display(),
            tool.name,
            (tool.example_run_dir)(
                &wf.file_stem()
                    .map_or("NAME".into(), |s| s.to_string_lossy())
            )
        );
    }
    Ok(())
}

/// Make `dir` ready for a run: create it with its marker, or accept it when it holds the
/// marker, is empty, or holds only what `tool` writes (a run directory from before the
/// marker). Refuses a run directory holding the workflow file or other files.
pub fn prepare(tool: &Tool, dir: &Path, workflow: Option<&Path>, stages: &[&str]) -> Result<()> {
    refuse_workflow_inside(tool, dir, workflow)?;
    if dir.join(tool.marker).is_file() {
        return Ok(());
    }
    if dir.exists() {
        if !dir.is_dir() {
            bail!("run directory {} exists and is not a folder", dir.display());
        }
        let foreign = foreign_entries(tool, dir, stages)?;
        if !foreign.is_empty() {
            bail!(
                "run directory {} already exists and holds files {} did not write ({}); \
                 choose a new or empty folder ({})",
                dir.display(),
                tool.name,
                shown(&foreign),
                tool.choose_run_dir
            );
        }
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create run directory {}", dir.display()))?;
    write_atomic(&dir.join(tool.marker), tool.marker_text.as_bytes())
}

/// What [`clean`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// Entries removed (names at the top of the run directory).
    pub removed: Vec<String>,
    /// Entries kept because the tool did not write them (the folder then stays).
    pub kept: Vec<String>,
    /// Whether the run directory itself was removed.
    pub removed_dir: bool,
}

/// Remove what `tool` wrote in `dir` (see [`is_ours`]), and the folder if nothing else
/// is left. Refuses a folder without the marker that holds other files, and one holding the
/// workflow file; takes the run lock so a running workflow is never cleaned under it.
pub fn clean(tool: &Tool, dir: &Path, workflow: Option<&Path>, stages: &[&str]) -> Result<Cleaned> {
    refuse_workflow_inside(tool, dir, workflow)?;
    let foreign = foreign_entries(tool, dir, stages)?;
    let marker = tool.marker;
    if !dir.join(marker).is_file() && !foreign.is_empty() {
        bail!(
            "{} is not an {} run directory (no {marker} marker) and holds other files \
             ({}); not removing anything",
            dir.display(),
            tool.name,
            shown(&foreign)
        );
    }
    let mut removed = Vec::new();
    {
        let _lock = tool.lock(dir)?;
        // Nor a stage a `--only` job is running.
        let _stage_locks = stages
            .iter()
            .map(|id| tool.lock_stage(dir, id))
            .collect::<Result<Vec<_>>>()?;
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_ours(tool, n, stages) && !is_lock_file(n, stages) && n != marker)
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
        let marker_path = dir.join(marker);
        if marker_path.exists() {
            std::fs::remove_file(&marker_path)
                .with_context(|| format!("cannot remove {}", marker_path.display()))?;
            removed.push(marker.into());
        }
        let _ = std::fs::remove_file(dir.join(LOCK));
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
    const MARKER: &str = ".emdesign-run";
    const TOOL: Tool = Tool {
        name: "emdesign",
        marker: MARKER,
        marker_text: "an emdesign run directory\n",
        run_files: &["resolved.toml", "summary.json"],
        choose_run_dir: "`run_dir` in [workflow], or `--run-dir`",
        example_run_dir: |stem| format!("`runs/{stem}`"),
    };

    #[test]
    fn names_emdesign_writes() {
        for n in [
            "data",
            ".energy.lock",
            ".energy.lock.4242.tmp",
            ".lock.17.tmp",
            "energy.partial",
            ".energy.tmp",
            "resolved.toml",
            ".summary.json.a1B2c3.tmp",
            MARKER,
        ] {
            assert!(is_ours(&TOOL, n, &STAGES), "{n}");
        }
        for n in [
            "w.toml",
            "notes",
            "design",
            ".x.tmp",
            ".summary.json.tmp",
            ".design.lock",
            ".energy.lock.x.tmp",
            "data.csv",
        ] {
            assert!(!is_ours(&TOOL, n, &STAGES), "{n}");
        }
    }

    #[test]
    fn prepare_refuses_foreign_folders_and_clean_keeps_other_files() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("run");
        prepare(&TOOL, &dir, None, &STAGES).unwrap();
        assert!(dir.join(MARKER).is_file());
        std::fs::create_dir(dir.join("data")).unwrap();
        std::fs::write(dir.join("data/x"), "1").unwrap();
        std::fs::write(dir.join("mine.txt"), "keep").unwrap();
        let c = clean(&TOOL, &dir, None, &STAGES).unwrap();
        assert_eq!(c.removed, ["data"]);
        assert_eq!(c.kept, ["mine.txt"]);
        assert!(!c.removed_dir && dir.join("mine.txt").is_file());

        let user = root.path().join("user");
        std::fs::create_dir(&user).unwrap();
        std::fs::write(user.join("thesis.tex"), "x").unwrap();
        let e = format!("{:#}", prepare(&TOOL, &user, None, &STAGES).unwrap_err());
        assert!(e.contains("`thesis.tex`"), "{e}");
        let e = format!("{:#}", clean(&TOOL, &user, None, &STAGES).unwrap_err());
        assert!(e.contains("not removing anything"), "{e}");
        assert!(user.join("thesis.tex").is_file());
    }
}
