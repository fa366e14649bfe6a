//! Tiny toy2d workflows end to end through the binary: outputs appear, a rerun is a cache hit
//! that changes nothing, `--force` redoes a stage and those after it, the same seed gives
//! identical outputs, and a run killed during training resumes from its checkpoint.

use std::time::{Duration, Instant};

use crate::util::{Dir, TestCommand, assert_contains};

const OUTPUTS: [&str; 4] = [
    "run/data/train.csv",
    "run/sample/samples.csv",
    "run/report/report.json",
    "run/report/report.md",
];

fn run_tiny(dir: &Dir, extra: &[&str]) -> String {
    let mut cmd = TestCommand::new(dir);
    cmd.args(["run", "toy2d-tiny.toml"]).args(extra);
    cmd.stdout()
}

fn stage_line<'a>(out: &'a str, stage: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(stage))
        .unwrap_or_else(|| panic!("no `{stage}` line in:\n{out}"))
}

#[test]
fn tiny_toy2d_runs_end_to_end_and_rerun_is_a_cache_hit() {
    let dir = Dir::new();
    dir.fixture("toy2d-tiny.toml");
    let out = run_tiny(&dir, &[]);
    for stage in ["data", "energy", "sample", "report"] {
        assert_contains(stage_line(&out, stage), &["ran"]);
    }
    assert_contains(stage_line(&out, "report"), &["mmd="]);
    for f in OUTPUTS.iter().chain(&["run/report/samples.png"]) {
        assert!(dir.join(f).is_file(), "missing {f}");
    }
    let resolved = dir.read("run/resolved.toml");
    assert_contains(
        &resolved,
        &["kind = \"toy2d\"", "steps = 40", "ema_decay = 0.99"],
    );
    let report: serde_json::Value =
        serde_json::from_str(&dir.read("run/report/report.json")).unwrap();
    assert_eq!(report["stages"].as_array().unwrap().len(), 3);
    assert!(report["metrics"][0][1].as_f64().unwrap().is_finite());
    assert!(
        dir.tree("run")
            .iter()
            .all(|p| !p.contains(".partial") && !p.contains(".tmp")),
        "{:?}",
        dir.tree("run")
    );

    let before: Vec<String> = OUTPUTS.iter().map(|f| dir.read(f)).collect();
    let png = std::fs::read(dir.join("run/report/samples.png")).unwrap();
    let again = run_tiny(&dir, &[]);
    for stage in ["data", "energy", "sample", "report"] {
        assert_contains(stage_line(&again, stage), &["fresh"]);
    }
    let after: Vec<String> = OUTPUTS.iter().map(|f| dir.read(f)).collect();
    assert_eq!(before, after);
    assert_eq!(
        png,
        std::fs::read(dir.join("run/report/samples.png")).unwrap()
    );

    let list = TestCommand::new(&dir)
        .args(["list-stages", "toy2d-tiny.toml"])
        .stdout();
    assert_eq!(
        list.lines().filter(|l| l.contains("fresh")).count(),
        4,
        "{list}"
    );
}

#[test]
fn force_redoes_the_stage_and_those_after_it() {
    let dir = Dir::new();
    dir.fixture("toy2d-tiny.toml");
    run_tiny(&dir, &[]);
    let samples = dir.read("run/sample/samples.csv");
    let out = run_tiny(&dir, &["--force", "sample"]);
    assert_contains(stage_line(&out, "data"), &["fresh"]);
    assert_contains(stage_line(&out, "energy"), &["fresh"]);
    assert_contains(stage_line(&out, "sample"), &["ran"]);
    assert_contains(stage_line(&out, "report"), &["ran"]);
    assert_eq!(
        samples,
        dir.read("run/sample/samples.csv"),
        "redoing a seeded stage changes nothing"
    );

    // Changing a sampling setting invalidates sample and report only.
    let text = dir
        .read("toy2d-tiny.toml")
        .replace("steps = 20", "steps = 21");
    dir.create("toy2d-tiny.toml", &text);
    let out = run_tiny(&dir, &[]);
    assert_contains(stage_line(&out, "energy"), &["fresh"]);
    assert_contains(stage_line(&out, "sample"), &["ran"]);
    assert_ne!(samples, dir.read("run/sample/samples.csv"));

    let err = TestCommand::new(&dir)
        .args(["run", "toy2d-tiny.toml", "--force", "nope"])
        .assert_err();
    assert_contains(
        &err,
        &["no stage named `nope`", "data, energy, sample, report"],
    );
}

#[test]
fn same_seed_gives_identical_outputs_and_another_seed_does_not() {
    let a = Dir::new();
    a.fixture("toy2d-tiny.toml");
    run_tiny(&a, &[]);
    let b = Dir::new();
    b.fixture("toy2d-tiny.toml");
    run_tiny(&b, &[]);
    for f in [
        "run/data/train.csv",
        "run/sample/samples.csv",
        "run/energy/train_log.jsonl",
    ] {
        assert_eq!(a.read(f), b.read(f), "{f} differs between identical runs");
    }
    let c = Dir::new();
    let text = a.read("toy2d-tiny.toml").replace("seed = 3", "seed = 4");
    c.create("toy2d-tiny.toml", &text);
    run_tiny(&c, &[]);
    assert_ne!(
        a.read("run/sample/samples.csv"),
        c.read("run/sample/samples.csv")
    );
}

#[test]
fn killed_training_resumes_from_its_checkpoint() {
    // Longer training (about 1.5 s) so the kill lands mid-stage; checkpoints every 10 steps.
    let text = std::fs::read_to_string(crate::util::fixtures().join("toy2d-tiny.toml"))
        .unwrap()
        .replace("steps = 40", "steps = 1000")
        .replace("warmup_steps = 30", "warmup_steps = 800");
    let straight = Dir::new();
    straight.create("toy2d-tiny.toml", &text);
    run_tiny(&straight, &[]);

    let dir = Dir::new();
    dir.create("toy2d-tiny.toml", &text);
    let mut child = TestCommand::new(&dir)
        .args(["run", "toy2d-tiny.toml", "--quiet"])
        .spawn();
    let ckpts = dir.join("run/energy.partial/checkpoints");
    let start = Instant::now();
    while !crate::util::has_checkpoint(&ckpts) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no checkpoint appeared"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("run finished ({status}) before it could be killed; make training longer");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !dir.join("run/energy/stage.json").exists(),
        "stage finished before the kill"
    );
    assert!(dir.join("run/energy.partial").is_dir());

    let out = run_tiny(&dir, &[]);
    let line = out.lines().find(|l| l.starts_with("energy")).unwrap();
    assert_contains(line, &["ran", "resumed_at="]);
    assert!(!line.contains("resumed_at=0"), "{line}");
    assert!(!dir.join("run/energy.partial").exists());
    assert_eq!(
        straight.read("run/sample/samples.csv"),
        dir.read("run/sample/samples.csv"),
        "resumed run must end where an uninterrupted one does"
    );
    assert_eq!(
        straight.read("run/energy/train_log.jsonl"),
        dir.read("run/energy/train_log.jsonl")
    );
}

#[test]
fn toy_shortcut_and_points_file_run() {
    let dir = Dir::new();
    dir.fixture("points.csv");
    let text = std::fs::read_to_string(crate::util::fixtures().join("toy2d-tiny.toml"))
        .unwrap()
        .replace("target = \"two-moons\"", "points = \"points.csv\"");
    dir.create("toy2d-tiny.toml", &text);
    let out = run_tiny(&dir, &[]);
    assert_contains(stage_line(&out, "data"), &["train=64", "eval=64"]);
    // Editing the points file (same path) makes the data stage stale.
    dir.create(
        "points.csv",
        &dir.read("points.csv")
            .replace("1.5000,0.0000", "1.4000,0.0000"),
    );
    let out = run_tiny(&dir, &[]);
    assert_contains(stage_line(&out, "data"), &["ran"]);

    let check = TestCommand::new(&dir)
        .args(["check", "toy2d-tiny.toml"])
        .stdout();
    assert_contains(&check, &["ok:", "data -> energy -> sample -> report"]);
    let err = TestCommand::new(&dir)
        .args(["toy", "--target", "spiral"])
        .assert_err();
    assert_contains(&err, &["unknown target `spiral`"]);
}

#[test]
fn clean_removes_the_run_dir_and_nothing_else() {
    let dir = Dir::new();
    dir.fixture("toy2d-tiny.toml");
    run_tiny(&dir, &[]);
    let out = TestCommand::new(&dir)
        .args(["clean", "toy2d-tiny.toml"])
        .stdout();
    assert_contains(&out, &["removed"]);
    assert!(!dir.join("run").exists());
    assert!(dir.join("toy2d-tiny.toml").is_file());
    // A directory emdesign did not create is refused.
    dir.create("run/precious.txt", "keep me");
    let err = TestCommand::new(&dir)
        .args(["clean", "toy2d-tiny.toml"])
        .assert_err();
    assert_contains(
        &err,
        &["not an emdesign run directory", "not removing anything"],
    );
    assert!(dir.join("run/precious.txt").is_file());
}

#[test]
fn an_ema_that_keeps_the_init_is_warned_about_and_a_short_one_is_not() {
    // The tiny fixture's 40 steps at the toy default 0.99 keep 0.99^40 = 67% of the init.
    let dir = Dir::new();
    dir.fixture("toy2d-tiny.toml");
    let o = TestCommand::new(&dir)
        .args(["run", "toy2d-tiny.toml", "--quiet"])
        .output();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_contains(
        &err,
        &["warning: energy.train.ema_decay 0.99 over 40 steps leaves 67%"],
    );
    let quiet = Dir::new();
    let text = dir.read("toy2d-tiny.toml").replace(
        "checkpoint_every = 10",
        "checkpoint_every = 10\nema_decay = 0.75",
    );
    quiet.create("toy2d-tiny.toml", &text);
    let o = TestCommand::new(&quiet)
        .args(["run", "toy2d-tiny.toml", "--quiet"])
        .output();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("warning: energy.train.ema_decay"), "{err}");
}

/// See: issue 14. The fixture's 5 x 0.01 negatives run only under the explicit override, and
/// the run says so on stderr, in the loss log and in the training summary, which also holds
/// the contrastive share of the gradient over the CD steps.
#[test]
fn short_negatives_allowed_by_override_are_reported() {
    let dir = Dir::new();
    dir.fixture("toy2d-tiny.toml");
    let o = TestCommand::new(&dir)
        .args(["run", "toy2d-tiny.toml", "--quiet"])
        .output();
    assert!(o.status.success());
    let want = "warning: energy.train.allow_short_negatives = true: negative chains of 5 x 0.01";
    assert_contains(&String::from_utf8_lossy(&o.stderr), &[want]);
    let log = dir.read("run/energy/train_log.jsonl");
    let cd_lines = log
        .lines()
        .filter(|l| l.contains("\"phase\":\"cd\""))
        .count();
    assert_eq!(cd_lines, 10, "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("\"warning\"") && l.contains(want))
    );
    let summary: serde_json::Value =
        serde_json::from_str(&dir.read("run/energy/train_summary.json")).unwrap();
    assert_eq!(summary["allow_short_negatives"], true);
    assert_eq!(summary["negatives"], "data");
    assert_eq!(summary["cd_share"]["steps"], 10);
    let share = summary["cd_share"]["median"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&share), "{summary}");
}

/// `plan --json`: the stage graph (ids, upstream edges, output folders, keys) before a run,
/// and the same keys the run then records, every stage fresh afterwards.
#[test]
fn plan_json_prints_the_stage_graph_with_the_keys_a_run_records() {
    let dir = Dir::new();
    dir.fixture("toy2d-tiny.toml");
    let plan = |dir: &Dir| -> serde_json::Value {
        let out = TestCommand::new(dir)
            .args(["plan", "toy2d-tiny.toml", "--json"])
            .stdout();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let before = plan(&dir);
    assert_eq!(before["kind"], "toy2d");
    let stages = before["stages"].as_array().unwrap();
    let ids: Vec<&str> = stages.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["data", "energy", "sample", "report"]);
    assert_eq!(stages[0]["upstream"], serde_json::json!([]));
    assert_eq!(stages[1]["upstream"], serde_json::json!(["data"]));
    assert_eq!(stages[1]["kind"], "toy2d.energy");
    for s in stages {
        assert_eq!(s["fresh"], false, "{s}");
        assert_eq!(s["key"].as_str().unwrap().len(), 64, "{s}");
        let output = std::path::Path::new(s["output"].as_str().unwrap());
        assert!(
            output.ends_with(format!("run/{}", s["id"].as_str().unwrap())),
            "{s}"
        );
    }
    assert!(
        !dir.join("run").exists(),
        "plan must not create the run directory"
    );

    run_tiny(&dir, &[]);
    let after = plan(&dir);
    let summary: serde_json::Value = serde_json::from_str(&dir.read("run/summary.json")).unwrap();
    for (i, s) in after["stages"].as_array().unwrap().iter().enumerate() {
        assert_eq!(s["fresh"], true, "{s}");
        assert_eq!(s["key"], before["stages"][i]["key"], "{s}");
        assert_eq!(s["key"], summary[i]["key"], "{s}");
    }
    // The plain listing under its old name still works.
    let list = TestCommand::new(&dir)
        .args(["list-stages", "toy2d-tiny.toml"])
        .stdout();
    assert_eq!(list.lines().count(), 4, "{list}");
}
