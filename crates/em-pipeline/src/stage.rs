//! The [`Stage`] trait: what a stage declares (its key's ingredients, its upstream stages)
//! and does ([`Stage::run`] into the directory of its [`StageCtx`]), and what it reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cache::{self, Key};
use crate::progress::Progress;

/// What a stage reports when it finishes.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    /// Headline numbers for the one-line summary (`("mmd", "0.012")`), in order.
    pub headline: Vec<(String, String)>,
    /// Anything else worth keeping in the record (JSON object).
    pub metrics: serde_json::Value,
}

/// What a running stage sees.
pub struct StageCtx<'a> {
    /// Directory to write outputs into (renamed into place on success). For a resumable
    /// stage it persists across kills and may already hold checkpoints.
    pub out: &'a Path,
    /// Finished output directories of the upstream stages, by name.
    pub upstream: &'a BTreeMap<String, PathBuf>,
    /// Where the stage reports its progress (the application draws it).
    pub progress: &'a dyn Progress,
}

impl StageCtx<'_> {
    /// The finished output directory of upstream stage `name`.
    pub fn input(&self, name: &str) -> Result<&Path> {
        self.upstream
            .get(name)
            .map(PathBuf::as_path)
            .with_context(|| format!("stage input `{name}` is not an upstream stage"))
    }
}

/// One step of a workflow.
///
/// To add a stage kind: write a struct holding its checked settings, return them from
/// [`Stage::config`], name the earlier stages it reads in [`Stage::upstream`] (their keys
/// enter its key; their finished directories come through [`StageCtx::input`]), list
/// external files in [`Stage::input_files`], write outputs under `ctx.out` only, and return
/// headline numbers. A long stage that can continue after a kill returns `true` from
/// [`Stage::resumable`] and keeps its checkpoints under `ctx.out`.
pub trait Stage {
    /// Name, unique in the workflow, and the name of its output directory (`energy`).
    fn name(&self) -> &str;
    /// Kind, part of the key (`toy2d.energy`).
    fn kind(&self) -> &str;
    /// The settings that determine its output (canonicalised and hashed into the key).
    fn config(&self) -> serde_json::Value;
    /// External files it reads (their contents are hashed into the key).
    fn input_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    /// Earlier stages whose outputs it reads.
    fn upstream(&self) -> Vec<&str> {
        Vec::new()
    }
    /// Whether a killed run may resume from what it left in its staging directory.
    fn resumable(&self) -> bool {
        false
    }
    /// Checks made just before the stage runs (not when it is fresh), such as a memory
    /// bound: an error stops the run before the stage starts.
    fn preflight(&self) -> Result<()> {
        Ok(())
    }
    /// The cache key given the upstream stages' keys.
    fn key(&self, upstream: &[(String, Key)]) -> Result<Key> {
        cache::fingerprint(self.kind(), &self.config(), &self.input_files(), upstream)
    }
    /// Do the work, writing outputs under `ctx.out`.
    fn run(&self, ctx: &StageCtx) -> Result<Outcome>;
}
