//! Test helpers (ripgrep style): [`Dir`], a temporary directory tree to write fixtures into,
//! and [`TestCommand`], the built `emdesign` binary run inside it, with assertions on the
//! exit status and output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The data directory, if this machine has one (tests needing it return early otherwise).
pub fn data_dir() -> Option<PathBuf> {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
    let dir = std::env::var_os("EMDESIGN_DATA")
        .map(PathBuf::from)
        .unwrap_or(shared);
    if dir.join("aav/oracle.safetensors").is_file() {
        Some(dir)
    } else {
        eprintln!("skipping: no data directory with aav/oracle.safetensors");
        None
    }
}

/// `workflows/smoke.toml` with its run directory moved to `run`, plus `edits` applied.
pub fn smoke(edits: &[(&str, &str)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/smoke.toml");
    let mut text = std::fs::read_to_string(path).expect("read smoke.toml");
    text = text.replace("run_dir = \"../runs/smoke\"", "run_dir = \"run\"");
    for (from, to) in edits {
        assert!(text.contains(from), "smoke.toml has no `{from}`");
        text = text.replace(from, to);
    }
    text
}

/// Directory of the shipped fixtures (`tests/fixtures`).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// A temporary directory, removed when dropped.
pub struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    /// A fresh empty directory.
    pub fn new() -> Self {
        Self {
            tmp: tempfile::tempdir().expect("create temp dir"),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// `self.path().join(rel)`.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path().join(rel)
    }

    /// Write `contents` to `rel` (parents created).
    pub fn create(&self, rel: impl AsRef<Path>, contents: &str) -> PathBuf {
        let p = self.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&p, contents).expect("write fixture");
        p
    }

    /// Copy a shipped fixture into this directory under the same name.
    pub fn fixture(&self, name: &str) -> PathBuf {
        let text = std::fs::read_to_string(fixtures().join(name)).expect("read fixture");
        self.create(name, &text)
    }

    /// Read a file below this directory.
    pub fn read(&self, rel: impl AsRef<Path>) -> String {
        let p = self.join(rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    /// Every path below `rel`, relative to it, sorted (for "no partial output" checks).
    pub fn tree(&self, rel: impl AsRef<Path>) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                out.push(p.strip_prefix(root).unwrap().display().to_string());
                if p.is_dir() {
                    walk(root, &p, out);
                }
            }
        }
        let root = self.join(rel);
        let mut out = Vec::new();
        walk(&root, &root, &mut out);
        out.sort();
        out
    }
}

/// The `emdesign` binary with arguments, run in a [`Dir`].
pub struct TestCommand {
    cmd: Command,
}

impl TestCommand {
    /// `emdesign` in `dir`, with `EMDESIGN_DATA` cleared.
    pub fn new(dir: &Dir) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_emdesign"));
        cmd.current_dir(dir.path()).env_remove("EMDESIGN_DATA");
        Self { cmd }
    }

    /// Append arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(
        &mut self,
        args: I,
    ) -> &mut Self {
        self.cmd.args(args);
        self
    }

    /// Set an environment variable for the run.
    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        self.cmd.env(key, value);
        self
    }

    /// Run to completion and return the output, whatever the status.
    pub fn output(&mut self) -> Output {
        self.cmd.output().expect("run emdesign")
    }

    /// Start without waiting (stdout and stderr discarded).
    pub fn spawn(&mut self) -> Child {
        self.cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn emdesign")
    }

    /// Run, assert success, return stdout.
    pub fn stdout(&mut self) -> String {
        let o = self.output();
        assert!(
            o.status.success(),
            "emdesign failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Run, assert exit code `code`, return stderr.
    pub fn assert_exit(&mut self, code: i32) -> String {
        let o = self.output();
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(
            o.status.code(),
            Some(code),
            "expected exit {code}\nstdout:\n{}\nstderr:\n{stderr}",
            String::from_utf8_lossy(&o.stdout)
        );
        stderr
    }

    /// Run, assert it failed with exit 1, return stderr.
    pub fn assert_err(&mut self) -> String {
        self.assert_exit(1)
    }
}

/// Assert `haystack` contains every needle, showing it all on failure.
pub fn assert_contains(haystack: &str, needles: &[&str]) {
    for n in needles {
        assert!(haystack.contains(n), "expected {n:?} in:\n{haystack}");
    }
}

/// Whether `dir` holds a finished em-core checkpoint (`ckpt-*.emck`).
pub fn has_checkpoint(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("ckpt-") && name.ends_with(".emck")
        })
    })
}

/// Every file below `root` with its bytes, leaving out the files that hold wall times
/// (stage records, `summary.json`, the report's stage-time tables).
pub fn outputs(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
                continue;
            }
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            // `.empot`: burn records hold random parameter ids, so equal weights differ in
            // bytes; the designs sampled from them are compared instead.
            if ["stage.json", "summary.json", "report.md", "report.json"].contains(&name.as_str())
                || name.ends_with(".empot")
            {
                continue;
            }
            let mut bytes = std::fs::read(&p).unwrap();
            if name.ends_with(".json") {
                // Batch and evaluation files carry their wall time: compare the rest.
                let mut v: serde_json::Value = serde_json::from_slice(&bytes)
                    .unwrap_or_else(|e| panic!("{rel}: not JSON: {e}"));
                drop_wall_times(&mut v);
                bytes = v.to_string().into_bytes();
            }
            // Paths of the run itself (`resolved.toml`'s run_dir) differ between folders.
            if let (Ok(text), Some(parent)) = (std::str::from_utf8(&bytes), root.parent()) {
                bytes = text
                    .replace(&parent.display().to_string(), "<DIR>")
                    .into_bytes();
            }
            out.insert(rel, bytes);
        }
    }
    fn drop_wall_times(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("wall_secs");
                m.values_mut().for_each(drop_wall_times);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(drop_wall_times),
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Assert two run directories hold the same files with the same bytes (see [`outputs`]).
pub fn assert_same_outputs(a: &Path, b: &Path, what: &str) {
    let (oa, ob) = (outputs(a), outputs(b));
    assert_eq!(
        oa.keys().collect::<Vec<_>>(),
        ob.keys().collect::<Vec<_>>(),
        "{what}: different files"
    );
    for (k, v) in &oa {
        assert!(v == &ob[k], "{what}: {k} differs");
    }
}
