//! Bad workflow files and data through the binary: each exits non-zero with a message naming
//! the file, line and field, and leaves no partial output in the run directory.

use crate::util::{Dir, TestCommand, assert_contains, fixtures};

fn tiny() -> String {
    std::fs::read_to_string(fixtures().join("toy2d-tiny.toml")).unwrap()
}

/// `w.toml:LINE:` where LINE is the 1-based line of `text` holding `needle`.
fn at(text: &str, needle: &str) -> String {
    let line = text
        .lines()
        .position(|l| l.contains(needle))
        .expect("needle in fixture")
        + 1;
    format!("w.toml:{line}:")
}

/// Write `text` as `w.toml`, run it, assert exit 1 and no run directory; return stderr.
fn run_bad(text: &str) -> String {
    let dir = Dir::new();
    dir.create("w.toml", text);
    let err = TestCommand::new(&dir).args(["run", "w.toml"]).assert_err();
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        !dir.join("run").exists(),
        "run dir created for a bad workflow: {:?}",
        dir.tree("run")
    );
    err
}

#[test]
fn malformed_toml_names_file_and_line() {
    let text = tiny().replace("n_eval = 128", "n_eval = = 128");
    let err = run_bad(&text);
    assert_contains(
        &err,
        &[&format!("{}10: field `data.n_eval`", at(&text, "n_eval"))],
    );
}

#[test]
fn unknown_field_names_field_and_line() {
    let text = tiny().replace("lr = 5e-3", "lr = 5e-3\nlearning_rate = 1e-3");
    let err = run_bad(&text);
    let want = format!(
        "{}1: field `energy.train.learning_rate`: unknown field `learning_rate`",
        at(&text, "learning_rate")
    );
    assert_contains(&err, &[&want]);
    let err = run_bad(&tiny().replace("[report]", "[reprot]"));
    assert_contains(&err, &["w.toml:", "unknown field `reprot`"]);
}

/// See: issue 14 (negative chains of 5-20 steps of 0.01 were accepted).
#[test]
fn short_negative_chains_name_the_field_unless_allowed() {
    let t = tiny();
    let short = t.replace(
        "allow_short_negatives = true   # 5 x 0.01: a plumbing test, not a model\n",
        "",
    );
    assert_ne!(short, t, "fixture has the override line");
    let err = run_bad(&short);
    assert_contains(
        &err,
        &[
            &format!(
                "{}18: field `energy.train.langevin_steps`",
                at(&t, "langevin_steps")
            ),
            "reach t = 0.050 < 1",
            "energy.train.allow_short_negatives = true",
        ],
    );
    let err = run_bad(&t.replace(
        "lambda_cd = 0.01",
        "lambda_cd = 0.01\nnegatives = \"noise\"",
    ));
    assert_contains(
        &err,
        &[
            "field `energy.train.negatives`",
            "expected one of data, data_noise",
        ],
    );
}

#[test]
fn out_of_range_and_wrong_type_name_field_and_line() {
    let t = tiny();
    let err = run_bad(&t.replace("lr = 5e-3", "lr = -1.0"));
    assert_contains(
        &err,
        &[&format!(
            "{}6: field `energy.train.lr`: must be in (0, 1], got -1",
            at(&t, "lr = ")
        )],
    );
    let err = run_bad(&t.replace("warmup_steps = 30", "warmup_steps = 50"));
    let want = format!(
        "{}16: field `energy.train.warmup_steps`: must be in 0..=40, got 50",
        at(&t, "warmup_steps")
    );
    assert_contains(&err, &[&want]);
    let err = run_bad(&t.replace("n = 128", "n = \"many\""));
    assert_contains(
        &err,
        &[
            &format!("{}5: field `sample.n`", at(&t, "n = 128")),
            "invalid type",
        ],
    );
    let err = run_bad(&t.replace("kind = \"toy2d\"", "kind = \"toy3d\""));
    let want = format!(
        "{}8: field `workflow.kind`: unknown workflow kind `toy3d`",
        at(&t, "kind = ")
    );
    assert_contains(&err, &[&want]);
}

#[test]
fn missing_points_file_names_field_and_path() {
    let t = tiny();
    let err = run_bad(&t.replace("target = \"two-moons\"", "points = \"nowhere.csv\""));
    assert_contains(
        &err,
        &[
            &format!(
                "{}10: field `data.points`: file not found:",
                at(&t, "target")
            ),
            "nowhere.csv",
        ],
    );
}

#[test]
fn missing_workflow_file_is_an_error() {
    let dir = Dir::new();
    let err = TestCommand::new(&dir)
        .args(["run", "absent.toml"])
        .assert_err();
    assert_contains(&err, &["cannot read workflow file absent.toml"]);
    let err = TestCommand::new(&dir)
        .args(["check", "absent.toml"])
        .assert_err();
    assert_contains(&err, &["absent.toml"]);
}

#[test]
fn bad_points_data_fails_its_stage_and_leaves_no_stage_output() {
    let dir = Dir::new();
    dir.fixture("points-nan.csv");
    dir.create(
        "w.toml",
        &tiny().replace("target = \"two-moons\"", "points = \"points-nan.csv\""),
    );
    let err = TestCommand::new(&dir).args(["run", "w.toml"]).assert_err();
    assert_contains(
        &err,
        &[
            "stage `data` failed",
            "points-nan.csv:3: column 2: value `nan` is not finite",
        ],
    );
    // Only the resolved config (and the run-directory marker) is left; no stage
    // directory, finished or partial.
    assert_eq!(
        dir.tree("run"),
        vec![".emdesign-run".to_string(), "resolved.toml".to_string()]
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = Dir::new();
    TestCommand::new(&dir).args(["run"]).assert_exit(2);
    TestCommand::new(&dir).args(["frobnicate"]).assert_exit(2);
}

#[test]
fn protein_commands_without_a_data_dir_say_how_to_set_one() {
    let dir = Dir::new();
    dir.create("d.csv", "sequence\nADMEIIQVNPYATEQYGDCSTPLQHMTG\n");
    // `eval` needs the GGS predictor and oracle (`oracle` falls back to emdesign's own).
    let err = TestCommand::new(&dir)
        .args([
            "eval",
            "--task",
            "aav",
            "--difficulty",
            "hard",
            "d.csv",
            "--out",
            "r.json",
        ])
        .assert_err();
    assert_contains(&err, &["--data-dir", "EMDESIGN_DATA"]);
    assert!(!dir.join("r.json").exists());
}

#[test]
fn bad_residue_in_designs_names_file_and_line() {
    let Some(data) = crate::util::data_dir() else {
        return;
    };
    let dir = Dir::new();
    dir.create(
        "d.csv",
        "sequence\nADMEIIQVNPYATEQYGDCSTPLQHMTG\nADMEIIQVNPYATEQYGDCSTPLQHMTZ\n",
    );
    let err = TestCommand::new(&dir)
        .args(["--data-dir"])
        .args([&data])
        .args(["oracle", "--task", "aav", "d.csv"])
        .assert_err();
    assert_contains(&err, &["d.csv:3"]);
}

#[test]
fn corrupt_checkpoint_names_the_file_and_force_recovers() {
    let dir = Dir::new();
    dir.fixture("toy2d-tiny.toml");
    // A killed run left a partial energy stage; its newest checkpoint is then corrupted.
    let text = dir
        .read("toy2d-tiny.toml")
        .replace("steps = 40", "steps = 1000")
        .replace("warmup_steps = 30", "warmup_steps = 800");
    dir.create("toy2d-tiny.toml", &text);
    let mut child = TestCommand::new(&dir)
        .args(["run", "toy2d-tiny.toml", "--quiet"])
        .spawn();
    let ckpts = dir.join("run/energy.partial/checkpoints");
    let start = std::time::Instant::now();
    while !crate::util::has_checkpoint(&ckpts) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "no checkpoint appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for e in std::fs::read_dir(&ckpts).unwrap() {
        std::fs::write(e.unwrap().path(), b"EMCKPT01 garbage").unwrap();
    }
    let err = TestCommand::new(&dir)
        .args(["run", "toy2d-tiny.toml"])
        .assert_err();
    assert_contains(
        &err,
        &[
            "stage `energy` failed",
            "--force energy",
            "checkpoint",
            ".emck",
        ],
    );
    assert!(
        !dir.join("run/energy").exists(),
        "no finished energy stage from a corrupt checkpoint"
    );
    let out = TestCommand::new(&dir)
        .args(["run", "toy2d-tiny.toml", "--force", "energy"])
        .stdout();
    assert_contains(&out, &["energy", "ran"]);
    assert!(!out.contains("resumed_at"), "{out}");
}
