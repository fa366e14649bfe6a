//! One stage instance on its own (`run --only ID`, what a cluster engine calls per job):
//! [`Runner::only`] checks that the stage exists and that every upstream stage it reads is
//! finished and fresh, before anything is written; [`Only::run`] then runs it exactly as a
//! full run would (same key, staging folder, record and rename), or reuses it when fresh.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::cache::{self, Key};
use crate::progress::Progress;
use crate::runner::{Runner, StageReport, fresh_record, is_read_only, upstream_keys};
use crate::stage::Stage;

/// An upstream stage that must finish (again) before the stage asked for can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamNotReady {
    /// The stage asked for.
    pub stage: String,
    /// The upstream stage it reads.
    pub upstream: String,
    /// What is wrong with the upstream's output (`has not run: no DIR/stage.json`).
    pub why: String,
}

impl fmt::Display for UpstreamNotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stage `{}` reads upstream stage `{}`, which {}",
            self.stage, self.upstream, self.why
        )
    }
}

impl std::error::Error for UpstreamNotReady {}

/// A checked single-stage job of [`Runner::only`], ready to run.
pub struct Only<'a, P> {
    runner: &'a Runner<P>,
    stage: &'a dyn Stage,
    key: Key,
    dirs: BTreeMap<String, PathBuf>,
    forcing: bool,
}

impl<P: Progress> Runner<P> {
    /// The job that runs stage `id` alone. Fails, writing nothing, when no stage has that
    /// name (listing those that do), when `force` names another stage, or when an upstream
    /// stage of `id` is missing, stale or damaged ([`UpstreamNotReady`]). `force` equal to
    /// `id` redoes it even when fresh.
    pub fn only<'a>(&'a self, stages: &'a [Box<dyn Stage>], id: &str) -> Result<Only<'a, P>> {
        let Some(pos) = stages.iter().position(|s| s.name() == id) else {
            let names: Vec<_> = stages.iter().map(|s| s.name()).collect();
            bail!(
                "--only: no stage named `{id}` (stages: {})",
                names.join(", ")
            );
        };
        if let Some(f) = &self.force
            && f != id
        {
            bail!(
                "--force `{f}` with --only `{id}`: with --only, --force can only redo that same \
                 stage (`--only {id} --force {id}`)"
            );
        }
        let mut keys: BTreeMap<String, Key> = BTreeMap::new();
        for stage in &stages[..=pos] {
            let key = stage.key(&upstream_keys(stage.as_ref(), &keys)?)?;
            keys.insert(stage.name().to_string(), key);
        }
        let stage = stages[pos].as_ref();
        let mut dirs = BTreeMap::new();
        for up in stage.upstream() {
            let dir = self.run_dir.join(up);
            if let Err(why) = fresh_record(&dir, &keys[up]) {
                let why = match (why, cache::read_record(&dir)) {
                    (Some(damaged), _) => format!("is damaged ({damaged} since it finished)"),
                    (None, Some(_)) => format!(
                        "is stale: {} holds the output of other settings, inputs or upstream \
                         outputs",
                        dir.display()
                    ),
                    (None, None) => format!(
                        "has not finished (no {})",
                        dir.join(cache::RECORD).display()
                    ),
                };
                return Err(UpstreamNotReady {
                    stage: id.to_string(),
                    upstream: up.to_string(),
                    why,
                }
                .into());
            }
            dirs.insert(up.to_string(), dir);
        }
        Ok(Only {
            runner: self,
            stage,
            key: keys.remove(id).context("the stage's own key")?,
            dirs,
            forcing: self.force.is_some(),
        })
    }
}

impl<P: Progress> Only<'_, P> {
    /// Run the stage (or reuse it when fresh) in the run directory, holding its stage lock
    /// only (other instances of the workflow may run meanwhile).
    pub fn run(self) -> Result<StageReport> {
        let r = self.runner;
        std::fs::create_dir_all(&r.run_dir)
            .with_context(|| format!("cannot create run directory {}", r.run_dir.display()))?;
        let fresh =
            || !self.forcing && fresh_record(&r.run_dir.join(self.stage.name()), &self.key).is_ok();
        // A read-only run directory can still be reused when the stage is fresh.
        let _lock = match r.lock_stage(self.stage.name()) {
            Ok(lock) => Some(lock),
            Err(e) if is_read_only(&e) && fresh() => None,
            Err(e) => return Err(e),
        };
        r.visit(self.stage, &self.key, &self.dirs, self.forcing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::Status;
    use crate::stage::{Outcome, StageCtx};
    use std::path::Path;

    /// Writes `value` plus its upstream values to `out.txt`.
    struct Sum(&'static str, u32, Vec<&'static str>);

    impl Stage for Sum {
        fn name(&self) -> &str {
            self.0
        }
        fn kind(&self) -> &str {
            "test.sum"
        }
        fn config(&self) -> serde_json::Value {
            serde_json::json!({ "value": self.1 })
        }
        fn upstream(&self) -> Vec<&str> {
            self.2.clone()
        }
        fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
            let mut total = self.1;
            for u in &self.2 {
                total += std::fs::read_to_string(ctx.input(u)?.join("out.txt"))?.parse::<u32>()?;
            }
            std::fs::write(ctx.out.join("out.txt"), total.to_string())?;
            Ok(Outcome::default())
        }
    }

    use crate::runner::tests::runner;

    fn stages(a: u32) -> Vec<Box<dyn Stage>> {
        vec![
            Box::new(Sum("a", a, vec![])),
            Box::new(Sum("b", 2, vec!["a"])),
            Box::new(Sum("c", 3, vec!["b"])),
        ]
    }

    fn only(dir: &Path, stages: &[Box<dyn Stage>], id: &str) -> Result<Status> {
        Ok(runner(dir, None).only(stages, id)?.run()?.status)
    }

    #[test]
    fn stage_by_stage_equals_a_full_run_with_the_same_records() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let st = stages(1);
        runner(a.path(), None).run(&st).unwrap();
        for id in ["a", "b", "c"] {
            assert_eq!(only(b.path(), &st, id).unwrap(), Status::Ran, "{id}");
        }
        assert_eq!(only(b.path(), &st, "b").unwrap(), Status::Fresh);
        for id in ["a", "b", "c"] {
            let read = |d: &Path| std::fs::read_to_string(d.join(id).join("out.txt")).unwrap();
            assert_eq!(read(a.path()), read(b.path()), "{id}");
            let key = |d: &Path| cache::read_record(&d.join(id)).unwrap().key;
            assert_eq!(key(a.path()), key(b.path()), "{id}");
        }
        let r = runner(b.path(), None).run(&st).unwrap();
        assert!(r.iter().all(|r| r.status == Status::Fresh));
        let forced = runner(b.path(), Some("b")).only(&st, "b").unwrap().run();
        assert_eq!(forced.unwrap().status, Status::Ran);
    }

    #[test]
    fn a_missing_or_stale_upstream_is_named_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let err = only(&run, &stages(1), "b").unwrap_err();
        let not_ready = err.downcast_ref::<UpstreamNotReady>().unwrap();
        assert_eq!(
            (not_ready.stage.as_str(), not_ready.upstream.as_str()),
            ("b", "a")
        );
        assert!(not_ready.why.starts_with("has not finished"), "{err}");
        assert!(!run.exists());

        only(&run, &stages(1), "a").unwrap();
        let err = only(&run, &stages(5), "b").unwrap_err().to_string();
        assert!(err.contains("upstream stage `a`, which is stale"), "{err}");
        std::fs::write(run.join("a/out.txt"), "").unwrap();
        let err = only(&run, &stages(1), "b").unwrap_err().to_string();
        assert!(err.contains("`a`, which is damaged"), "{err}");
        assert!(!run.join("b").exists());
    }

    #[test]
    fn an_unknown_id_lists_the_stages_and_force_must_name_the_same_one() {
        let dir = tempfile::tempdir().unwrap();
        let st = stages(1);
        let err = only(dir.path(), &st, "zz").unwrap_err().to_string();
        assert_eq!(err, "--only: no stage named `zz` (stages: a, b, c)");
        let err = runner(dir.path(), Some("a")).only(&st, "b").err().unwrap();
        assert!(err.to_string().contains("`--only b --force b`"), "{err}");
    }
}
