//! What a cluster engine drives: `run --only ID` stage by stage into a shared run directory
//! (ending where a plain run ends, file by file), its refusals (unknown id, an upstream that
//! is missing or stale), per-stage run locks and `unlock`, and `export snakemake`.

use std::path::Path;

use std::collections::BTreeMap;

use crate::util::{Dir, TestCommand, assert_contains, data_dir, outputs, smoke};

/// `emdesign [--data-dir DATA] ARGS` in `dir`.
fn emdesign(dir: &Dir, data: Option<&Path>) -> TestCommand {
    let mut cmd = TestCommand::new(dir);
    if let Some(d) = data {
        cmd.args(["--data-dir"]).args([d]);
    }
    cmd
}

/// `plan --json` of `workflow` in `dir`.
fn plan(dir: &Dir, data: Option<&Path>, workflow: &str) -> serde_json::Value {
    let out = emdesign(dir, data)
        .args(["plan", workflow, "--json"])
        .stdout();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The stage ids of a plan, in its order.
fn ids(plan: &serde_json::Value) -> Vec<String> {
    plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

/// Run `workflow` plainly in `a` and with `--only` stage by stage (plan order) in `b`: the
/// same files with the same bytes, and every stage of `b` fresh under `a`'s keys.
fn stage_by_stage_equals_plain(workflow: &str, text: &str, data: Option<&Path>) {
    let (a, b) = (Dir::new(), Dir::new());
    a.create(workflow, text);
    b.create(workflow, text);
    emdesign(&a, data).args(["run", workflow, "-q"]).stdout();
    let stages = ids(&plan(&b, data, workflow));
    for id in &stages {
        let out = emdesign(&b, data)
            .args(["run", workflow, "--only", id])
            .stdout();
        assert_contains(&out, &[&format!("done: stage `{id}` ran")]);
    }
    assert_same_files(&a.join("run"), &b.join("run"));
    assert!(
        !b.join("run/summary.json").exists(),
        "summary.json is a plain run's"
    );
    let (pa, pb) = (plan(&a, data, workflow), plan(&b, data, workflow));
    for (sa, sb) in pa["stages"]
        .as_array()
        .unwrap()
        .iter()
        .zip(pb["stages"].as_array().unwrap())
    {
        assert_eq!(
            (&sb["fresh"], &sb["key"]),
            (&serde_json::json!(true), &sa["key"]),
            "{sb}"
        );
    }
    let again = emdesign(&b, data)
        .args(["run", workflow, "--only", &stages[1]])
        .stdout();
    assert_contains(&again, &["was fresh"]);
}

/// [`outputs`] of two run directories are equal, the training checkpoints (`.emck`) left
/// out: like `.empot` they hold burn's random parameter ids (two plain runs differ there
/// too); the weights in them are compared through the samples drawn from them.
fn assert_same_files(a: &Path, b: &Path) {
    let files = |d: &Path| -> BTreeMap<String, Vec<u8>> {
        let mut o = outputs(d);
        o.retain(|k, _| !k.ends_with(".emck"));
        o
    };
    let (fa, fb) = (files(a), files(b));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (k, v) in &fa {
        assert!(v == &fb[k], "--only stage by stage: {k} differs");
    }
}

#[test]
fn only_stage_by_stage_equals_a_plain_run_on_toy2d() {
    let text = std::fs::read_to_string(crate::util::fixtures().join("toy2d-tiny.toml")).unwrap();
    stage_by_stage_equals_plain("toy2d-tiny.toml", &text, None);
}

#[test]
fn only_stage_by_stage_equals_a_plain_run_on_smoke() {
    let Some(data) = data_dir() else { return };
    stage_by_stage_equals_plain("w.toml", &smoke(&[]), Some(&data));
}

#[test]
fn only_refuses_an_unknown_id_and_a_missing_or_stale_upstream() {
    let dir = Dir::new();
    dir.fixture("toy2d-tiny.toml");
    let only = |id: &str| {
        TestCommand::new(&dir)
            .args(["run", "toy2d-tiny.toml", "--only", id])
            .assert_err()
    };
    assert_contains(
        &only("zz"),
        &["--only: no stage named `zz` (stages: data, energy, sample, report)"],
    );
    assert_contains(
        &only("energy"),
        &[
            "stage `energy` reads upstream stage `data`, which has not finished (no ",
            "run/data/stage.json)",
            "produce it first with `emdesign run toy2d-tiny.toml --only data`",
        ],
    );
    assert!(!dir.join("run").exists(), "{:?}", dir.tree("run"));
    TestCommand::new(&dir)
        .args(["run", "toy2d-tiny.toml", "--only", "data", "-q"])
        .stdout();
    let text = dir
        .read("toy2d-tiny.toml")
        .replace("n_train = 256", "n_train = 200");
    dir.create("toy2d-tiny.toml", &text);
    assert_contains(&only("energy"), &["upstream stage `data`, which is stale"]);
    assert!(!dir.join("run/energy").exists() && !dir.join("run/energy.partial").exists());
    let err = TestCommand::new(&dir)
        .args([
            "run",
            "toy2d-tiny.toml",
            "--only",
            "energy",
            "--force",
            "data",
        ])
        .assert_err();
    assert_contains(&err, &["`--only energy --force energy`"]);
}

/// A lock of another host is never taken over (the run fails naming host, pid and
/// `unlock`); one of a gone process on this host is, with a warning; `unlock` removes
/// locks and says which; a held stage lock blocks only that stage.
#[test]
fn locks_record_host_and_pid_and_unlock_removes_them() {
    let dir = Dir::new();
    dir.fixture("toy2d-tiny.toml");
    let run = |args: &[&str]| {
        TestCommand::new(&dir)
            .args(["run", "toy2d-tiny.toml"])
            .args(args)
            .output()
    };
    assert!(run(&["--only", "data", "-q"]).status.success());
    std::fs::write(
        dir.join("run/.energy.lock"),
        "pid 4242\nhost elsewhere-node-7\n",
    )
    .unwrap();
    let o = run(&["--only", "energy"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert_contains(
        &err,
        &[
            "stage `energy` of run directory",
            "is locked by emdesign pid 4242 on host elsewhere-node-7",
            "`emdesign unlock WORKFLOW --stage energy`",
        ],
    );
    assert!(
        !run(&["-q"]).status.success(),
        "a plain run must not take it either"
    );
    let out = TestCommand::new(&dir)
        .args(["unlock", "toy2d-tiny.toml", "--stage", "energy"])
        .stdout();
    assert_contains(
        &out,
        &[
            "removed ",
            ".energy.lock (pid 4242 on host elsewhere-node-7)",
        ],
    );
    // Left on this host by a process that is gone: taken over, with a warning.
    std::fs::write(dir.join("run/.lock"), "pid 999999\n").unwrap();
    let o = run(&["-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_contains(
        &String::from_utf8_lossy(&o.stderr),
        &["took over the lock", "which no longer runs"],
    );
    assert!(!dir.join("run/.lock").exists() && !dir.join("run/.energy.lock").exists());
    let out = TestCommand::new(&dir)
        .args(["unlock", "toy2d-tiny.toml"])
        .stdout();
    assert_contains(&out, &["no locks to remove"]);
    let err = TestCommand::new(&dir)
        .args(["unlock", "toy2d-tiny.toml", "--stage", "zz"])
        .assert_err();
    assert_contains(
        &err,
        &["--stage: no stage named `zz` (stages: data, energy, sample, report)"],
    );
}

/// The snakemake program: `EMDESIGN_SNAKEMAKE`, else `snakemake` on the PATH. `.ci/run`
/// installs it in a venv; under `CI` its absence is a failure, elsewhere a skip.
fn snakemake() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("EMDESIGN_SNAKEMAKE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|d| d.join("snakemake"))
                .find(|p| p.is_file())
        });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the Snakemake test: set EMDESIGN_SNAKEMAKE (.ci/run installs it)"
        );
        eprintln!("skipping: no snakemake (set EMDESIGN_SNAKEMAKE)");
    }
    found
}

/// `snakemake -s Snakefile --cores 2` in `dir`; its combined output.
fn run_snakemake(program: &Path, dir: &Dir) -> String {
    let out = std::process::Command::new(program)
        .args(["-s", "Snakefile", "--cores", "2"])
        .current_dir(dir.path())
        .output()
        .expect("run snakemake");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "snakemake failed:\n{text}");
    text
}

#[test]
fn the_exported_snakefile_runs_the_workflow_as_a_plain_run_does_and_then_has_nothing_to_do() {
    let Some(program) = snakemake() else { return };
    let data = data_dir();
    // The smoke workflow where the data directory exists (CI), the tiny toy2d one elsewhere.
    let text = match data {
        Some(_) => smoke(&[]),
        None => std::fs::read_to_string(crate::util::fixtures().join("toy2d-tiny.toml")).unwrap(),
    };
    let (plain, engine) = (Dir::new(), Dir::new());
    plain.create("w.toml", &text);
    engine.create("w.toml", &text);
    emdesign(&plain, data.as_deref())
        .args(["run", "w.toml", "-q"])
        .stdout();
    let snakefile = emdesign(&engine, data.as_deref())
        .args(["export", "snakemake", "w.toml"])
        .stdout();
    let stages = ids(&plan(&engine, data.as_deref(), "w.toml"));
    for id in &stages {
        assert_contains(
            &snakefile,
            &[&format!("rule {id}:\n"), &format!("id=\"{id}\"")],
        );
    }
    engine.create("Snakefile", &snakefile);
    let first = run_snakemake(&program, &engine);
    assert_contains(
        &first,
        &[&format!("{0} of {0} steps (100%) done", stages.len() + 1)],
    );
    // `summary.json` is a plain run's; everything else is byte for byte the same.
    std::fs::remove_file(plain.join("run/summary.json")).unwrap();
    assert_same_files(&plain.join("run"), &engine.join("run"));
    let second = run_snakemake(&program, &engine);
    assert_contains(&second, &["Nothing to be done"]);
}
