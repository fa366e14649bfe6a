//! The runner: skip fresh stages, run stale ones into a staging directory (`.<name>.tmp`, or
//! `<name>.partial` for resumable stages, which survives a kill), write the completion record
//! last and rename the directory into place; `--force STAGE` redoes it and what follows. A
//! finished stage counts as fresh only when its key matches and every output file still has
//! the checksum its record holds; one that was truncated or altered is run again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use serde::Serialize;

use crate::cache::{self, Key, Record};
use crate::progress::Progress;
use crate::run_dir::Tool;
use crate::stage::{Stage, StageCtx};

/// Whether a stage was reused or run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Output found with a matching key.
    Fresh,
    /// Ran now.
    Ran,
}

/// One stage's result in a run.
#[derive(Debug, Clone)]
pub struct StageReport {
    /// Fresh or ran.
    pub status: Status,
    /// Its completion record (wall time is that of the run that produced it).
    pub record: Record,
    /// Wall time spent in this invocation (0 when fresh).
    pub wall_secs: f64,
}

/// One stage of a plan as [`Runner::plan`] sees it before anything runs.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedStage {
    /// Stage instance id: its name, unique in the workflow, and its directory's name.
    pub id: String,
    /// Stage kind (`toy2d.energy`).
    pub kind: String,
    /// Upstream stage ids whose outputs it reads.
    pub upstream: Vec<String>,
    /// External files it reads.
    pub input_files: Vec<PathBuf>,
    /// The directory its outputs go to.
    pub output: PathBuf,
    /// Its cache key.
    pub key: Key,
    /// Whether its finished output matches the key (it would be reused).
    pub fresh: bool,
}

/// The run directory, what to redo, and where progress goes.
pub struct Runner<P> {
    /// The program whose run directory this is (lock messages).
    pub tool: &'static Tool,
    /// Where every stage's directory lives.
    pub run_dir: PathBuf,
    /// Redo this stage and every one after it.
    pub force: Option<String>,
    /// Progress and summary output.
    pub progress: P,
}

/// Whether `name` is a temporary file of an interrupted atomic write: `.<file>.<random>.tmp`
/// (em-protein's `temp_file_for`) or `.<file>.tmp-<pid>` (em-core's checkpoints).
fn is_temp_file_name(name: &str) -> bool {
    name.starts_with('.') && (name.ends_with(".tmp") || name.contains(".tmp-"))
}

/// Removes the temporary files of interrupted writes anywhere below `dir`.
fn remove_stale_temp_files(dir: &Path) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_stale_temp_files(&path)?;
        } else if is_temp_file_name(&entry.file_name().to_string_lossy()) {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

/// Name of a resumable stage's working directory.
fn partial_dir(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(format!("{name}.partial"))
}

/// Name of a non-resumable stage's staging directory.
fn tmp_dir(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(format!(".{name}.tmp"))
}

const PARTIAL_KEY: &str = ".key";

impl<P: Progress> Runner<P> {
    /// The stage graph: each stage's inputs, output directory, key and whether its finished
    /// output matches the key, without running anything.
    pub fn plan(&self, stages: &[Box<dyn Stage>]) -> Result<Vec<PlannedStage>> {
        let mut keys: BTreeMap<String, Key> = BTreeMap::new();
        let mut out = Vec::new();
        for stage in stages {
            let key = stage.key(&upstream_keys(stage.as_ref(), &keys)?)?;
            let output = self.run_dir.join(stage.name());
            let fresh = fresh_record(&output, &key).is_ok();
            keys.insert(stage.name().to_string(), key.clone());
            out.push(PlannedStage {
                id: stage.name().to_string(),
                kind: stage.kind().to_string(),
                upstream: stage.upstream().into_iter().map(String::from).collect(),
                input_files: stage.input_files(),
                output,
                key,
                fresh,
            });
        }
        Ok(out)
    }

    /// Each stage's key and whether its finished output matches it, without running anything.
    pub fn status(&self, stages: &[Box<dyn Stage>]) -> Result<Vec<(String, Key, bool)>> {
        Ok(self
            .plan(stages)?
            .into_iter()
            .map(|s| (s.id, s.key, s.fresh))
            .collect())
    }

    /// Run the stages in order: fresh ones are reused, the rest run atomically.
    pub fn run(&self, stages: &[Box<dyn Stage>]) -> Result<Vec<StageReport>> {
        if let Some(f) = &self.force
            && !stages.iter().any(|s| s.name() == f)
        {
            let names: Vec<_> = stages.iter().map(|s| s.name()).collect();
            bail!(
                "--force: no stage named `{f}` (stages: {})",
                names.join(", ")
            );
        }
        std::fs::create_dir_all(&self.run_dir)
            .with_context(|| format!("cannot create run directory {}", self.run_dir.display()))?;
        // A read-only run directory can still be reused when everything in it is fresh.
        let _lock = match self.tool.lock(&self.run_dir) {
            Ok(lock) => Some(self.announced(lock)),
            Err(e)
                if is_read_only(&e)
                    && self.force.is_none()
                    && self.status(stages)?.iter().all(|s| s.2) =>
            {
                None
            }
            Err(e) => return Err(e),
        };
        let mut keys: BTreeMap<String, Key> = BTreeMap::new();
        let mut dirs: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut forcing = false;
        let mut reports = Vec::new();
        for stage in stages {
            let name = stage.name().to_string();
            forcing |= self.force.as_deref() == Some(name.as_str());
            let key = stage.key(&upstream_keys(stage.as_ref(), &keys)?)?;
            // Each stage under its own lock too, so a `--only` job on it is never clobbered.
            let _stage_lock = match &_lock {
                Some(_) => Some(self.lock_stage(&name)?),
                None => None,
            };
            let report = self.visit(stage.as_ref(), &key, &dirs, forcing)?;
            keys.insert(name.clone(), key);
            dirs.insert(name.clone(), self.run_dir.join(&name));
            reports.push(report);
        }
        Ok(reports)
    }

    /// The lock of stage `name`, saying so when it took over one left by a gone process.
    pub(crate) fn lock_stage(&self, name: &str) -> Result<crate::RunLock> {
        Ok(self.announced(self.tool.lock_stage(&self.run_dir, name)?))
    }

    /// `lock`, after warning when it took over one left by a gone process.
    fn announced(&self, lock: crate::RunLock) -> crate::RunLock {
        if let Some(why) = lock.took_over() {
            self.progress.warning(why);
        }
        lock
    }

    /// One stage of a run: reused when fresh (unless `forcing`), else checked, run
    /// atomically and recorded; the progress hears of it either way.
    pub(crate) fn visit(
        &self,
        stage: &dyn Stage,
        key: &Key,
        dirs: &BTreeMap<String, PathBuf>,
        forcing: bool,
    ) -> Result<StageReport> {
        let name = stage.name();
        let final_dir = self.run_dir.join(name);
        let found = if forcing {
            Err(None)
        } else {
            fresh_record(&final_dir, key)
        };
        let report = match found {
            Ok(record) => StageReport {
                status: Status::Fresh,
                record,
                wall_secs: 0.0,
            },
            Err(why) => {
                if let Some(why) = why {
                    self.progress.warning(&format!(
                        "stage `{name}`: {why} since it finished; running it again"
                    ));
                }
                stage.preflight()?;
                self.progress.stage_started(name);
                self.run_one(stage, key, dirs, forcing)?
            }
        };
        self.progress.stage_done(&report);
        Ok(report)
    }

    fn run_one(
        &self,
        stage: &dyn Stage,
        key: &Key,
        dirs: &BTreeMap<String, PathBuf>,
        forcing: bool,
    ) -> Result<StageReport> {
        let name = stage.name();
        let final_dir = self.run_dir.join(name);
        let staging = if stage.resumable() {
            partial_dir(&self.run_dir, name)
        } else {
            tmp_dir(&self.run_dir, name)
        };
        let reuse = stage.resumable()
            && !forcing
            && std::fs::read_to_string(staging.join(PARTIAL_KEY)).is_ok_and(|k| k.trim() == key.0);
        if !reuse && staging.exists() {
            std::fs::remove_dir_all(&staging)
                .with_context(|| format!("cannot remove {}", staging.display()))?;
        }
        if reuse {
            // A kill mid-write leaves the writer's temporary file behind; the resumed stage
            // writes its own, so the old ones would end up among the outputs.
            remove_stale_temp_files(&staging)?;
        }
        std::fs::create_dir_all(&staging)
            .with_context(|| format!("cannot create {}", staging.display()))?;
        if stage.resumable() {
            cache::write_atomic(&staging.join(PARTIAL_KEY), key.0.as_bytes())?;
        }
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir)
                .with_context(|| format!("cannot remove stale {}", final_dir.display()))?;
        }
        let start = Instant::now();
        let ctx = StageCtx {
            out: &staging,
            upstream: dirs,
            progress: &self.progress,
        };
        let outcome = match stage.run(&ctx) {
            Ok(o) => o,
            Err(err) if stage.resumable() => {
                return Err(err.context(format!(
                    "stage `{name}` failed (its partial work stays in {} and is resumed on the next run; `--force {name}` starts it over)",
                    staging.display()
                )));
            }
            Err(err) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(err.context(format!("stage `{name}` failed")));
            }
        };
        let wall_secs = start.elapsed().as_secs_f64();
        let record = Record {
            stage: name.to_string(),
            kind: stage.kind().to_string(),
            key: key.clone(),
            version: crate::VERSION.to_string(),
            wall_secs,
            headline: outcome.headline,
            metrics: outcome.metrics,
            outputs: BTreeMap::new(),
        };
        if stage.resumable() {
            std::fs::remove_file(staging.join(PARTIAL_KEY))?;
        }
        let record = Record {
            outputs: cache::hash_outputs(&staging)?,
            ..record
        };
        cache::write_atomic(
            &staging.join(cache::RECORD),
            serde_json::to_string_pretty(&record)?.as_bytes(),
        )?;
        std::fs::rename(&staging, &final_dir).with_context(|| {
            format!(
                "cannot move {} to {}",
                staging.display(),
                final_dir.display()
            )
        })?;
        Ok(StageReport {
            status: Status::Ran,
            record,
            wall_secs,
        })
    }
}

/// Whether `err` comes from a folder that cannot be written (permissions, read-only mount).
pub fn is_read_only(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            )
        })
    })
}

/// The record of a finished stage directory when it is fresh: its key is `key` and every
/// output file matches its checksum. `Err(None)`: absent or another key (plainly stale);
/// `Err(Some(why))`: the key matches but an output was damaged.
pub(crate) fn fresh_record(dir: &Path, key: &Key) -> std::result::Result<Record, Option<String>> {
    match cache::read_record(dir) {
        Some(r) if &r.key == key => match cache::verify_outputs(dir, &r) {
            Ok(()) => Ok(r),
            Err(why) => Err(Some(why)),
        },
        _ => Err(None),
    }
}

pub(crate) fn upstream_keys(
    stage: &dyn Stage,
    keys: &BTreeMap<String, Key>,
) -> Result<Vec<(String, Key)>> {
    stage
        .upstream()
        .into_iter()
        .map(|u| match keys.get(u) {
            Some(k) => Ok((u.to_string(), k.clone())),
            None => bail!(
                "stage `{}` reads `{u}`, which does not run before it",
                stage.name()
            ),
        })
        .collect()
}

/// `energy    ran     12.3s  loss=0.12 steps=2000  key 3fa2c1d0e5b7`.
pub fn summary_line(r: &StageReport) -> String {
    let status = match r.status {
        Status::Fresh => "fresh",
        Status::Ran => "ran",
    };
    let nums: Vec<String> = r
        .record
        .headline
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "{:<10} {:<6} {:>7.1}s  {}  key {}",
        r.record.stage,
        status,
        r.record.wall_secs,
        nums.join(" "),
        r.record.key.short()
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::progress::Silent;
    use crate::stage::Outcome;
    use std::cell::Cell;

    #[test]
    fn stale_temp_files_of_interrupted_writes_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("checkpoints");
        std::fs::create_dir_all(&sub).unwrap();
        for f in [
            ".designs_seed0.csv.PcCePM.tmp",
            "keep.csv",
            ".key",
            "notes.tmp",
        ] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        std::fs::write(sub.join(".ckpt_00000050.emck.tmp-4242"), "x").unwrap();
        std::fs::write(sub.join("ckpt_00000050.emck"), "x").unwrap();
        remove_stale_temp_files(dir.path()).unwrap();
        let mut left: Vec<String> = walkdir(dir.path());
        left.sort();
        assert_eq!(
            left,
            [
                ".key",
                "checkpoints/ckpt_00000050.emck",
                "keep.csv",
                "notes.tmp"
            ]
        );
    }

    fn walkdir(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(root).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                out.extend(
                    walkdir(&e.path())
                        .into_iter()
                        .map(|n| format!("{name}/{n}")),
                );
            } else {
                out.push(name);
            }
        }
        out
    }

    /// Writes `value` to `out.txt`; counts its runs; optionally fails.
    struct Toy {
        name: &'static str,
        value: u32,
        up: Vec<&'static str>,
        runs: Cell<u32>,
        fail: bool,
        refuse: bool,
    }

    impl Toy {
        fn boxed(name: &'static str, value: u32, up: Vec<&'static str>) -> Box<dyn Stage> {
            Box::new(Toy {
                name,
                value,
                up,
                runs: Cell::new(0),
                fail: false,
                refuse: false,
            })
        }
    }

    impl Stage for Toy {
        fn name(&self) -> &str {
            self.name
        }
        fn kind(&self) -> &str {
            "test.toy"
        }
        fn config(&self) -> serde_json::Value {
            serde_json::json!({ "value": self.value })
        }
        fn upstream(&self) -> Vec<&str> {
            self.up.clone()
        }
        fn preflight(&self) -> Result<()> {
            if self.refuse {
                bail!("too big");
            }
            Ok(())
        }
        fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
            self.runs.set(self.runs.get() + 1);
            let mut total = self.value;
            for u in &self.up {
                total += std::fs::read_to_string(ctx.input(u)?.join("out.txt"))?.parse::<u32>()?;
            }
            std::fs::write(ctx.out.join("out.txt"), total.to_string())?;
            if self.fail {
                bail!("boom");
            }
            Ok(Outcome {
                headline: vec![("total".into(), total.to_string())],
                metrics: serde_json::json!({}),
            })
        }
    }

    const TOOL: Tool = Tool {
        name: "test",
        marker: ".test-run",
        marker_text: "a test run directory\n",
        run_files: &[],
        choose_run_dir: "another folder",
        example_run_dir: |stem| format!("`runs/{stem}`"),
    };

    /// A silent runner over `dir` for the unit tests here and in `only`.
    pub(crate) fn runner(dir: &Path, force: Option<&str>) -> Runner<Silent> {
        Runner {
            tool: &TOOL,
            run_dir: dir.to_path_buf(),
            force: force.map(String::from),
            progress: Silent,
        }
    }

    fn statuses(r: &[StageReport]) -> Vec<Status> {
        r.iter().map(|r| r.status).collect()
    }

    #[test]
    fn rerun_is_fresh_and_force_redoes_downstream() {
        let dir = tempfile::tempdir().unwrap();
        let stages = vec![
            Toy::boxed("a", 1, vec![]),
            Toy::boxed("b", 2, vec!["a"]),
            Toy::boxed("c", 3, vec!["b"]),
        ];
        let r = runner(dir.path(), None).run(&stages).unwrap();
        assert_eq!(statuses(&r), [Status::Ran; 3]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("c/out.txt")).unwrap(),
            "6"
        );
        let r = runner(dir.path(), None).run(&stages).unwrap();
        assert_eq!(statuses(&r), [Status::Fresh; 3]);
        let r = runner(dir.path(), Some("b")).run(&stages).unwrap();
        assert_eq!(statuses(&r), [Status::Fresh, Status::Ran, Status::Ran]);
        assert!(runner(dir.path(), Some("zz")).run(&stages).is_err());
    }

    #[test]
    fn changed_config_invalidates_it_and_what_follows() {
        let dir = tempfile::tempdir().unwrap();
        let stages = vec![
            Toy::boxed("a", 1, vec![]),
            Toy::boxed("b", 2, vec!["a"]),
            Toy::boxed("c", 3, vec![]),
        ];
        runner(dir.path(), None).run(&stages).unwrap();
        let stages = vec![
            Toy::boxed("a", 5, vec![]),
            Toy::boxed("b", 2, vec!["a"]),
            Toy::boxed("c", 3, vec![]),
        ];
        let st = runner(dir.path(), None).status(&stages).unwrap();
        assert_eq!(
            st.iter().map(|s| s.2).collect::<Vec<_>>(),
            [false, false, true]
        );
        let r = runner(dir.path(), None).run(&stages).unwrap();
        assert_eq!(statuses(&r), [Status::Ran, Status::Ran, Status::Fresh]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b/out.txt")).unwrap(),
            "7"
        );
    }

    #[test]
    fn failed_stage_leaves_no_output() {
        let dir = tempfile::tempdir().unwrap();
        let bad = Box::new(Toy {
            name: "a",
            value: 1,
            up: vec![],
            runs: Cell::new(0),
            fail: true,
            refuse: false,
        }) as Box<dyn Stage>;
        let err = runner(dir.path(), None).run(&[bad]).unwrap_err();
        assert_eq!(format!("{err:#}"), "stage `a` failed: boom");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    /// See: issue 20. A truncated output of a finished stage is not taken for fresh: the
    /// stage runs again (its key is unchanged, so what follows stays fresh).
    #[test]
    fn damaged_output_reruns_its_stage() {
        let dir = tempfile::tempdir().unwrap();
        let stages = vec![Toy::boxed("a", 1, vec![]), Toy::boxed("b", 2, vec!["a"])];
        runner(dir.path(), None).run(&stages).unwrap();
        std::fs::write(dir.path().join("a/out.txt"), "").unwrap();
        let st = runner(dir.path(), None).status(&stages).unwrap();
        assert_eq!(st.iter().map(|s| s.2).collect::<Vec<_>>(), [false, true]);
        let r = runner(dir.path(), None).run(&stages).unwrap();
        assert_eq!(statuses(&r), [Status::Ran, Status::Fresh]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a/out.txt")).unwrap(),
            "1"
        );
    }

    #[test]
    fn upstream_must_run_first() {
        let dir = tempfile::tempdir().unwrap();
        let stages = vec![Toy::boxed("b", 2, vec!["a"])];
        assert!(runner(dir.path(), None).run(&stages).is_err());
    }

    #[test]
    fn plan_lists_ids_inputs_outputs_keys_and_freshness() {
        let dir = tempfile::tempdir().unwrap();
        let stages = vec![Toy::boxed("a", 1, vec![]), Toy::boxed("b", 2, vec!["a"])];
        runner(dir.path(), None).run(&stages[..1]).unwrap();
        let plan = runner(dir.path(), None).plan(&stages).unwrap();
        let ids: Vec<_> = plan.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(plan[1].upstream, ["a"]);
        assert_eq!(plan[1].output, dir.path().join("b"));
        assert_eq!((plan[0].fresh, plan[1].fresh), (true, false));
        let status = runner(dir.path(), None).status(&stages).unwrap();
        assert_eq!(status[1].1, plan[1].key);
        let r = runner(dir.path(), None).run(&stages).unwrap();
        assert_eq!(r[1].record.key, plan[1].key);
    }

    #[test]
    fn preflight_stops_a_stale_stage_before_it_starts_and_skips_a_fresh_one() {
        let dir = tempfile::tempdir().unwrap();
        let refusing = |value| {
            Box::new(Toy {
                name: "a",
                value,
                up: vec![],
                runs: Cell::new(0),
                fail: false,
                refuse: true,
            }) as Box<dyn Stage>
        };
        let err = runner(dir.path(), None).run(&[refusing(1)]).unwrap_err();
        assert_eq!(format!("{err:#}"), "too big");
        assert!(!dir.path().join("a").exists() && !dir.path().join(".a.tmp").exists());
        runner(dir.path(), None)
            .run(&[Toy::boxed("a", 1, vec![])])
            .unwrap();
        let r = runner(dir.path(), None).run(&[refusing(1)]).unwrap();
        assert_eq!(statuses(&r), [Status::Fresh]);
    }
}
