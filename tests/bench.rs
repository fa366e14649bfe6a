//! `emdesign bench` end to end on a tiny grid: Ehrlich (always) and AAV hard (when the data
//! directory is present) with two cheap methods; all outputs written, a rerun reuses every
//! cell, `--methods` narrows, and gradient methods are n/a on the black-box Ehrlich task.

use crate::util::data_dir;
use crate::util::{Dir, TestCommand, assert_contains};

/// A tiny bench: budget 4000 covers AdaLead's scoring of the 3448 AAV-hard start sequences.
const TINY: &str = r#"
[bench]
name = "tiny"
run_dir = "run"
methods = ["random", "adalead"]
seeds = [0, 1]
budget = 4000
top_k = 16

[ehrlich]
length = 16
n_start = 16
"#;

fn bench(dir: &Dir, tasks: &str, extra: &[&str]) -> String {
    let mut cmd = TestCommand::new(dir);
    cmd.args(["bench", "bench.toml", "--tasks", tasks]);
    if let Some(d) = data_dir() {
        cmd.args([std::ffi::OsStr::new("--data-dir"), d.as_os_str()]);
    }
    cmd.args(extra).stdout()
}

#[test]
fn tiny_bench_writes_outputs_and_resumes() {
    let dir = Dir::new();
    dir.create("bench.toml", TINY);
    let tasks = if data_dir().is_some() {
        "ehrlich,aav-hard"
    } else {
        "ehrlich"
    };
    let n = if data_dir().is_some() { 8 } else { 4 };
    let out = bench(&dir, tasks, &[]);
    assert_contains(&out, &[&format!("bench: {n} cells ({n} ran, 0 reused)")]);
    for f in ["bench.md", "bench.csv", "bench.json", "bench.png"] {
        assert!(dir.join(format!("run/{f}")).is_file(), "{f} missing");
    }
    let csv = dir.read("run/bench.csv");
    assert!(csv.contains("\nehrlich,random,2,"), "{csv}");
    assert!(csv.contains("\nehrlich,adalead,2,"), "{csv}");
    let md = dir.read("run/bench.md");
    assert_contains(
        &md,
        &["Budget: 4000 predictor calls", "| ehrlich | adalead | 2 |"],
    );
    let json: serde_json::Value = serde_json::from_str(&dir.read("run/bench.json")).unwrap();
    assert_eq!(json["cells"].as_array().unwrap().len(), n);
    for c in json["cells"].as_array().unwrap() {
        let calls = c["calls"].as_u64().unwrap();
        assert!(calls > 0 && calls <= 4000, "{c}");
        let f = c["fitness"].as_f64().unwrap();
        assert!(f.is_finite(), "{c}");
    }
    if data_dir().is_some() {
        // Published GGS figures sit beside the measured rows.
        assert!(csv.contains("\naav-hard,published:GGS,0,"), "{csv}");
    }

    // A rerun does no design work; the outputs are rewritten identically.
    let again = bench(&dir, tasks, &[]);
    assert_contains(&again, &[&format!("bench: {n} cells (0 ran, {n} reused)")]);
    assert_eq!(dir.read("run/bench.csv"), csv);

    // --methods narrows the grid (and the table) without touching the other cells.
    let narrow = bench(&dir, "ehrlich", &["--methods", "random", "--seeds", "0"]);
    assert_contains(&narrow, &["bench: 1 cells (0 ran, 1 reused)"]);
    let csv = dir.read("run/bench.csv");
    assert!(csv.contains("\nehrlich,random,1,"), "{csv}");
    assert!(!csv.contains("adalead"), "{csv}");
}

#[test]
fn gradient_methods_are_na_on_ehrlich_and_bad_names_fail() {
    let dir = Dir::new();
    dir.create("bench.toml", TINY);
    let out = bench(&dir, "ehrlich", &["--methods", "gwg,em", "--seeds", "0"]);
    assert_contains(&out, &["bench: 2 cells (2 ran, 0 reused)"]);
    let md = dir.read("run/bench.md");
    assert_contains(
        &md,
        &[
            "| ehrlich | gwg | 0 | n/a |",
            "n/a (not differentiable)",
            "GWG: temperature 0.1, 64 chains",
        ],
    );

    let err = TestCommand::new(&dir)
        .args(["bench", "bench.toml", "--tasks", "tem1"])
        .assert_err();
    assert_contains(&err, &["bench.tasks", "unknown `tem1`"]);
}

#[test]
fn a_changed_method_setting_reruns_only_that_methods_cells() {
    if data_dir().is_none() {
        return;
    }
    let dir = Dir::new();
    let with_t = |t: f64| format!("{TINY}\n[gwg]\ntemperature = {t}\nchains = 8\n");
    dir.create("bench.toml", &with_t(0.03));
    let args = ["--methods", "random,gwg", "--seeds", "0"];
    let out = bench(&dir, "aav-hard", &args);
    assert_contains(&out, &["bench: 2 cells (2 ran, 0 reused)"]);
    dir.create("bench.toml", &with_t(0.05));
    let out = bench(&dir, "aav-hard", &args);
    assert_contains(&out, &["bench: 2 cells (1 ran, 1 reused)"]);
}

/// The Energy Matching ablation on a tiny AAV-hard prior: a smoke-sized energy, trained
/// once as configured and once with the flow loss only (same steps), the OT-CFM field,
/// guided and unguided rows, and the App. A.2 t_end sweep of the unguided energies.
const ABLATION: &str = r#"
[bench]
name = "ablation"
run_dir = "run"
methods = ["ot-cfm", "em-warmup", "em", "ot-cfm-unguided", "em-warmup-unguided", "em-unguided"]
seeds = [0]
budget = 700
top_k = 16
t_end_sweep = [1.0, 2.0]

[protein.predictor]
source = "ggs"
[protein.energy]
hidden_channels = 8
kernel = 3
blocks = 1
head_hidden = 16
[protein.energy.train]
steps = 30
warmup_steps = 20
batch_size = 32
lr = 1e-3
langevin_steps = 5
allow_short_negatives = true
[protein.design]
dt = 0.1
t_end = 1.3
interaction = "none"
[ot_cfm]
hidden_channels = 8
kernel = 3
blocks = 1
"#;

#[test]
fn ablation_rows_use_their_own_priors_and_sweep_t_end() {
    if data_dir().is_none() {
        return;
    }
    let dir = Dir::new();
    dir.create("bench.toml", ABLATION);
    // 6 methods + 2 swept methods x 2 t_end, one seed.
    let out = bench(&dir, "aav-hard", &[]);
    assert_contains(&out, &["bench: 10 cells (10 ran, 0 reused)"]);
    // The warm-up-only energy is its own stage run, without a contrastive phase.
    let summary = dir.read("run/tasks/aav-hard-flow-only/energy/train_summary.json");
    let flow_only: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert!(flow_only["cd_share"].is_null(), "{summary}");
    let with_cd: serde_json::Value =
        serde_json::from_str(&dir.read("run/tasks/aav-hard/energy/train_summary.json")).unwrap();
    assert!(with_cd["cd_share"].is_object(), "{with_cd}");
    let json: serde_json::Value = serde_json::from_str(&dir.read("run/bench.json")).unwrap();
    let cells = json["cells"].as_array().unwrap();
    let cell = |m: &str| {
        cells
            .iter()
            .find(|c| c["method"] == m)
            .unwrap_or_else(|| panic!("{m}"))
    };
    // 700 calls / (13 steps + 1) = 50 chains; unguided cells only score their designs.
    for m in ["ot-cfm", "em-warmup", "em"] {
        let c = cell(m);
        assert!(c["calls"].as_u64().unwrap() > 50 * 13, "{c}");
    }
    for m in [
        "ot-cfm-unguided",
        "em-unguided",
        "em-warmup-unguided",
        "em-unguided t_end=1",
        "em-warmup-unguided t_end=2",
    ] {
        let c = cell(m);
        assert!(c["calls"].as_u64().unwrap() <= 50, "{c}");
        assert!(c["fitness"].as_f64().unwrap().is_finite(), "{c}");
    }
    assert_eq!(cell("em-unguided t_end=2")["t_end"], 2.0);
    // The two priors are different networks (20 flow + 10 contrastive steps vs 30 flow).
    let weights =
        |d: &str| std::fs::read(dir.join(format!("run/tasks/{d}/energy/potential.empot"))).unwrap();
    assert_ne!(weights("aav-hard"), weights("aav-hard-flow-only"));
    assert!(dir.join("run/t_end_sweep.png").is_file());
    let md = dir.read("run/bench.md");
    assert_contains(
        &md,
        &[
            "em-warmup rows: the same energy network",
            "unguided rows (*-unguided)",
            "t_end sweep (paper App. A.2)",
            "| aav-hard | em-warmup-unguided t_end=2 | 1 |",
        ],
    );
    // A rerun reuses every cell and both energies.
    let again = bench(&dir, "aav-hard", &[]);
    assert_contains(&again, &["bench: 10 cells (0 ran, 10 reused)"]);
}
