//! The image workflow and `image fid` through the binary: the tiny MNIST workflow runs end to
//! end (grids, strips, FID/KID table with the real-vs-real floor) and a rerun is a cache hit;
//! bad image TOML names file:line and field; CIFAR-10 without its files fails clearly, naming
//! the missing file; FID of a set with itself is ~0. Tests needing the data directory skip
//! (saying why) when it is absent.

use std::path::PathBuf;

use crate::util::{Dir, TestCommand, assert_contains};

const STAGES: [&str; 7] = [
    "data",
    "train_em",
    "train_cfm",
    "sample_em",
    "sample_cfm",
    "metrics",
    "report",
];

/// The data directory with MNIST and the FID weights, if this machine has one.
fn image_data_dir() -> Option<PathBuf> {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
    let dir = std::env::var_os("EMDESIGN_DATA")
        .map(PathBuf::from)
        .unwrap_or(shared);
    let dir = std::path::absolute(dir).ok()?;
    if dir.join("images/mnist").is_dir()
        && dir.join("images/fid_inception_v3.safetensors").is_file()
    {
        Some(dir)
    } else {
        eprintln!("skipping: no data directory with images/mnist and the FID weights");
        None
    }
}

/// The smoke fixture with `data_dir` pointing at `data`.
fn smoke(dir: &Dir, data: &std::path::Path) {
    let text = std::fs::read_to_string(crate::util::fixtures().join("image-smoke.toml"))
        .expect("read fixture");
    let text = text.replace("[data]\n", &format!("[data]\ndata_dir = {:?}\n", data));
    dir.create("image-smoke.toml", &text);
}

fn stage_line<'a>(out: &'a str, stage: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(stage))
        .unwrap_or_else(|| panic!("no `{stage}` line in:\n{out}"))
}

#[test]
fn image_smoke_runs_end_to_end_and_rerun_is_a_cache_hit() {
    let Some(data) = image_data_dir() else { return };
    let dir = Dir::new();
    smoke(&dir, &data);
    let out = TestCommand::new(&dir)
        .args(["run", "image-smoke.toml"])
        .stdout();
    for stage in STAGES {
        assert_contains(stage_line(&out, stage), &["ran"]);
    }
    for f in [
        "report/report.md",
        "report/report.json",
        "report/em_grid.png",
        "report/cfm_grid.png",
        "report/em_trajectory.png",
        "report/cfm_trajectory.png",
        "sample_em/samples.idx",
        "train_em/checkpoints",
        "train_cfm/vector_field.bin",
    ] {
        assert!(dir.join("run").join(f).exists(), "missing {f}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&dir.read("run/report/report.json")).unwrap();
    let table = report["table"].as_array().unwrap();
    let methods: Vec<&str> = table
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["EM", "OT-CFM", "floor (train vs test)"]);
    let fid = |i: usize| table[i]["fid"].as_f64().unwrap();
    // Four training steps give noise-like samples: far above real-vs-real at the same N.
    assert!(
        fid(2).is_finite() && fid(2) < fid(0) && fid(2) < fid(1),
        "{table:?}"
    );
    assert_eq!(table[0]["nfe"], 4);
    assert_eq!(table[1]["train_steps"], 4);
    assert_eq!(table[0]["n"], 8);
    // Parameter counts of both models (issue 14); none for the floor.
    assert!(table[0]["params"].as_u64().unwrap_or(0) > 0, "{table:?}");
    assert!(table[1]["params"].as_u64().unwrap_or(0) > 0, "{table:?}");
    assert!(table[2]["params"].is_null(), "{table:?}");
    let md = dir.read("run/report/report.md");
    assert_contains(
        &md,
        &[
            "| EM |",
            "| OT-CFM |",
            "| floor (train vs test) |",
            "| parameters |",
        ],
    );

    let again = TestCommand::new(&dir)
        .args(["run", "image-smoke.toml"])
        .stdout();
    for stage in STAGES {
        assert_contains(stage_line(&again, stage), &["fresh"]);
    }
    assert_eq!(md, dir.read("run/report/report.md"));
}

#[test]
fn bad_image_toml_names_file_line_and_field() {
    let dir = Dir::new();
    let head = "[workflow]\nkind = \"image\"\n[data]\ndataset = \"mnist\"\n";
    dir.create("bad.toml", &format!("{head}[train]\nbatch_size = 1\n"));
    let err = TestCommand::new(&dir)
        .args(["check", "bad.toml"])
        .assert_err();
    assert_contains(
        &err,
        &["bad.toml:6:14: field `train.batch_size`: must be in 2..=100000, got 1"],
    );
    dir.create("typo.toml", &format!("{head}[sample]\nsteps = 10\n"));
    let err = TestCommand::new(&dir)
        .args(["check", "typo.toml"])
        .assert_err();
    assert_contains(
        &err,
        &["typo.toml:6:1: field `sample.steps`", "unknown field"],
    );
    dir.create("ds.toml", &head.replace("mnist", "svhn"));
    let err = TestCommand::new(&dir)
        .args(["check", "ds.toml"])
        .assert_err();
    assert_contains(&err, &["ds.toml:4:11: field `data.dataset`", "svhn"]);
    assert!(!dir.join("runs").exists());
}

#[test]
fn shipped_image_workflows_check() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    let dir = Dir::new();
    for name in ["mnist.toml", "fashion-mnist.toml"] {
        let out = TestCommand::new(&dir)
            .args(["check".as_ref(), root.join(name).as_os_str()])
            .stdout();
        assert_contains(&out, &["(image, seed", "train_em -> train_cfm"]);
    }
}

#[test]
fn cifar10_without_its_files_fails_clearly_in_the_data_stage() {
    let dir = Dir::new();
    dir.create(
        "c.toml",
        "[workflow]\nkind = \"image\"\nrun_dir = \"run\"\n[data]\ndataset = \"cifar10\"\ndata_dir = \"nowhere\"\n",
    );
    let err = TestCommand::new(&dir).args(["run", "c.toml"]).assert_err();
    assert_contains(
        &err,
        &[
            "stage `data` failed",
            "cannot read the cifar10 training split",
            "images/cifar10/data_batch_1.bin",
            "not found",
            "cifar-10-batches-bin",
        ],
    );
    assert!(!dir.join("run/data").exists(), "{:?}", dir.tree("run"));
}

#[test]
fn image_fid_of_a_set_with_itself_is_zero() {
    let dir = Dir::new();
    let err = TestCommand::new(&dir)
        .args(["image", "fid", "missing.idx", "also-missing"])
        .assert_err();
    assert_contains(&err, &["missing.idx"]);
    let Some(data) = image_data_dir() else { return };
    let test = data.join("images/mnist/t10k-images-idx3-ubyte.gz");
    let out = TestCommand::new(&dir)
        .args(["--data-dir".as_ref(), data.as_os_str()])
        .args([
            "image", "fid", "--n", "8", "--batch", "8", "--out", "r.json", "-q",
        ])
        .args([&test, &test])
        .stdout();
    assert_contains(&out, &["FID", "KID", "8  28x28"]);
    let r: serde_json::Value = serde_json::from_str(&dir.read("r.json")).unwrap();
    assert_eq!(r["n_a"], 8);
    assert!(r["fid"].as_f64().unwrap().abs() < 1e-2, "{r}");
    assert!(r["kid_mean"].as_f64().unwrap().is_finite(), "{r}");
}
