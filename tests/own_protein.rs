//! `workflows/own-protein.toml` (a wild type + mutation lists from `datasets/own-protein`,
//! constraints set) end to end at tiny settings: no data directory and no oracle needed,
//! ranked FASTA headers `>d0001 pred=.. muts=.. n_mut=.. nearest_train=.. method=em seed=..`
//! matching `designs.csv` and read back unchanged by rust-bio's reader, no design violating
//! a constraint; a predictor ensemble (`spread=` in the headers, kappa, unchanged default
//! keys); and bad own-data inputs fail with file:line and leave no run directory.

use std::path::Path;

use crate::util::{Dir, TestCommand, assert_contains};

pub(crate) const WT: &str = "DEEEIRTTNPVATEQYGSVSTNLQRGNR";

/// The shipped workflow with its data path made absolute, the run dir `run` and `edits`.
pub(crate) fn own(edits: &[(&str, &str)]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut text = std::fs::read_to_string(root.join("workflows/own-protein.toml")).unwrap();
    let data = root.join("datasets/own-protein/aav_variants.csv.gz");
    let tiny = [
        ("run_dir = \"../runs/own-protein\"", "run_dir = \"run\""),
        (
            "\"../datasets/own-protein/aav_variants.csv.gz\"",
            &format!("{:?}", data.display().to_string()),
        ),
        ("epochs = 40", "epochs = 3"),
        ("channels = 64", "channels = 8"),
        ("steps = 300", "steps = 12"),
        ("warmup_steps = 250", "warmup_steps = 8"),
        ("langevin_steps = 50", "langevin_steps = 3"),
        ("checkpoint_every = 50", "checkpoint_every = 6"),
        ("n_samples = 128", "n_samples = 24"),
        ("top_k = 32", "top_k = 12"),
        ("dt = 0.01\nt_end", "dt = 0.05\nt_end"),
    ];
    for (from, to) in tiny
        .iter()
        .map(|(a, b)| (*a, *b))
        .chain(edits.iter().copied())
    {
        assert!(text.contains(from), "own-protein.toml has no `{from}`");
        text = text.replace(from, to);
    }
    text
}

fn run(dir: &Dir) -> String {
    TestCommand::new(dir)
        .env("EMDESIGN_DATA", "/nonexistent")
        .args(["run", "w.toml"])
        .stdout()
}

/// `key=value` fields of a FASTA header line, in order.
fn fields(header: &str) -> Vec<(String, String)> {
    header
        .split_whitespace()
        .skip(1)
        .map(|f| {
            let (k, v) = f.split_once('=').unwrap_or_else(|| panic!("field `{f}`"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn own_protein_runs_without_an_oracle_and_honours_the_constraints() {
    let dir = Dir::new();
    dir.create("w.toml", &own(&[]));
    let out = run(&dir);
    assert_contains(&out, &["oracle=none", "val_spearman="]);
    let fasta = dir.read("run/report/designs.fasta");
    let lines: Vec<&str> = fasta.lines().collect();
    assert!(
        !lines.is_empty() && lines.len().is_multiple_of(2),
        "{fasta}"
    );
    let csv = dir.read("run/report/designs.csv");
    let mut rows = ::csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = rows.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "id",
            "sequence",
            "pred",
            "muts",
            "n_mut",
            "nearest_train",
            "method",
            "seed"
        ]
    );
    let rows: Vec<Vec<String>> = rows
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), lines.len() / 2);
    let wt: Vec<char> = WT.chars().collect();
    let mut last_pred = f64::INFINITY;
    for (k, pair) in lines.chunks(2).enumerate() {
        let (head, seq) = (pair[0], pair[1]);
        let id = format!("d{:04}", k + 1);
        assert!(head.starts_with(&format!(">{id} ")), "{head}");
        let f = fields(head);
        let keys: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["pred", "muts", "n_mut", "nearest_train", "method", "seed"]
        );
        let pred: f64 = f[0].1.parse().unwrap();
        assert!(pred <= last_pred, "not ranked: {head}");
        last_pred = pred;
        // The mutation list is the difference from the wild type, in VP1 numbering.
        let s: Vec<char> = seq.chars().collect();
        assert_eq!(s.len(), 28, "{seq}");
        let muts: Vec<String> = (0..28)
            .filter(|&i| s[i] != wt[i])
            .map(|i| format!("{}{}{}", wt[i], i + 561, s[i]))
            .collect();
        let want = if muts.is_empty() {
            "wt".to_string()
        } else {
            muts.join(",")
        };
        assert_eq!(f[1].1, want, "{head}");
        assert_eq!(f[2].1, muts.len().to_string());
        assert_eq!(
            (f[4].1.as_str(), ["0", "1"].contains(&f[5].1.as_str())),
            ("em", true)
        );
        // The constraints of the workflow: fixed 561-565 and 585-588, no C, 577 in {G,A,S},
        // at most 6 mutations.
        for i in (0..5).chain(24..28) {
            assert_eq!(s[i], wt[i], "fixed position {} changed: {head}", i + 561);
        }
        assert!(!seq.contains('C'), "banned C: {seq}");
        assert!("GAS".contains(s[16]), "577 = {}: {seq}", s[16]);
        assert!(muts.len() <= 6, "{head}");
        // designs.csv holds the same row.
        let row = &rows[k];
        assert_eq!((row[0].as_str(), row[1].as_str()), (id.as_str(), seq));
        let csv_fields: Vec<&str> = row[2..].iter().map(String::as_str).collect();
        let fasta_fields: Vec<&str> = f.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(csv_fields, fasta_fields);
    }
    // rust-bio's FASTA reader (em-protein's wrapper) reads the file back unchanged.
    let opts = em_protein::io::ReadOptions {
        score: em_protein::io::ScoreRule::Ignored,
        ..Default::default()
    };
    let back = em_protein::io::read_records(&dir.join("run/report/designs.fasta"), &opts).unwrap();
    let got: Vec<(String, String)> = back
        .iter()
        .map(|r| (r.id.clone(), r.sequence.to_string()))
        .collect();
    let want: Vec<(String, String)> = rows.iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    assert_eq!(got, want);
    let report = dir.read("run/report/report.md");
    assert_contains(
        &report,
        &[
            "No oracle exists for your protein",
            "held-out Spearman: **",
            "max_mutations: 6",
        ],
    );
}

fn run_bad(text: &str) -> String {
    let dir = Dir::new();
    dir.create("w.toml", text);
    let err = TestCommand::new(&dir).args(["run", "w.toml"]).assert_err();
    assert!(!dir.join("run").exists(), "run dir left for a bad workflow");
    err
}

#[test]
fn bad_own_data_and_constraints_name_file_and_line() {
    let dir = Dir::new();
    let m = dir.create(
        "m.csv",
        "mutations,score\nwt,1.0\nD561A:E562K,2.0\nE561A,3.0\n",
    );
    let text = own(&[(
        &format!(
            "{:?}",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../datasets/own-protein/aav_variants.csv.gz")
                .display()
                .to_string()
        ),
        &format!("{:?}", m.display().to_string()),
    )]);
    let err = run_bad(&text);
    assert_contains(
        &err,
        &["m.csv:4: mutation 'E561A': wild type has 'D' at position 561, not 'E'"],
    );
    let err = run_bad(&own(&[(
        "fixed = \"561-565,585-588\"",
        "fixed = \"561-600\"",
    )]));
    let line = own(&[])
        .lines()
        .position(|l| l.starts_with("fixed ="))
        .unwrap()
        + 1;
    assert_contains(
        &err,
        &[
            &format!("w.toml:{line}:1: field `design.constraints.fixed`"),
            "position 600 is outside the wild type (positions 561-588)",
        ],
    );
    let err = run_bad(&own(&[("banned = \"C\"", "banned = \"CD\"")]));
    assert_contains(&err, &["position 561 is fixed to the wild type's D"]);
    // kappa weighs an ensemble's spread: with one predictor it is an error at its line.
    let text = own(&[("top_k = 12", "top_k = 12\nkappa = 1.0")]);
    let line = text.lines().position(|l| l.starts_with("kappa =")).unwrap() + 1;
    let err = run_bad(&text);
    assert_contains(
        &err,
        &[
            &format!("w.toml:{line}:9: field `design.kappa`"),
            "`predictor.ensemble` > 1",
        ],
    );
}

/// `plan --json` stage keys (id -> key) of the workflow `w.toml` in `dir`.
fn keys(dir: &Dir) -> Vec<(String, String)> {
    let out = TestCommand::new(dir)
        .env("EMDESIGN_DATA", "/nonexistent")
        .args(["plan", "w.toml", "--json"])
        .stdout();
    let plan: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().into(),
                s["key"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// Writing the defaults `ensemble = 1` and `kappa = 0.0` out changes no stage key; an
/// ensemble changes the predictor's key and those downstream of it.
#[test]
fn own_protein_ensemble_defaults_keep_the_stage_keys() {
    let dir = Dir::new();
    dir.create("w.toml", &own(&[]));
    let plain = keys(&dir);
    dir.create(
        "w.toml",
        &own(&[
            ("kernel_size = 5", "kernel_size = 5\nensemble = 1"),
            ("top_k = 12", "top_k = 12\nkappa = 0.0"),
        ]),
    );
    assert_eq!(keys(&dir), plain);
    dir.create(
        "w.toml",
        &own(&[("kernel_size = 5", "kernel_size = 5\nensemble = 3")]),
    );
    let three = keys(&dir);
    let changed: Vec<&str> = plain
        .iter()
        .zip(&three)
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, _)| a.0.as_str())
        .collect();
    assert!(
        changed.contains(&"predictor") && changed.contains(&"design"),
        "{changed:?}"
    );
    assert!(
        !changed.contains(&"data") && !changed.contains(&"energy"),
        "{changed:?}"
    );
}

/// An ensemble of 3: three predictor files, one report of the mean with each member's,
/// FASTA headers with `spread=` after `pred=` (>= 0, not all 0), ranked by `pred` at kappa
/// 0; kappa = 2 (only the design stages rerun) changes the designs.
#[test]
fn own_protein_ensemble_reports_spread_and_kappa_changes_the_designs() {
    let dir = Dir::new();
    let ensemble = ("kernel_size = 5", "kernel_size = 5\nensemble = 3");
    dir.create("w.toml", &own(&[ensemble]));
    let out = run(&dir);
    assert_contains(&out, &["ensemble=3"]);
    for f in ["predictor", "predictor_1", "predictor_2"] {
        assert!(
            dir.join(format!("run/predictor/{f}.safetensors")).is_file(),
            "{f}"
        );
    }
    assert!(!dir.join("run/predictor/predictor_3.safetensors").exists());
    let report: serde_json::Value =
        serde_json::from_str(&dir.read("run/predictor/predictor.json")).unwrap();
    assert_eq!(report["members"].as_array().unwrap().len(), 3);
    assert!(report["val_spearman"].as_f64().unwrap().is_finite());
    let fasta = dir.read("run/report/designs.fasta");
    let mut spreads = Vec::new();
    let mut last = f64::INFINITY;
    for head in fasta.lines().filter(|l| l.starts_with('>')) {
        let f = fields(head);
        let keys: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "pred",
                "spread",
                "muts",
                "n_mut",
                "nearest_train",
                "method",
                "seed"
            ]
        );
        let (pred, spread): (f64, f64) = (f[0].1.parse().unwrap(), f[1].1.parse().unwrap());
        assert!(spread >= 0.0, "{head}");
        assert!(pred <= last, "not ranked by the mean at kappa 0: {head}");
        last = pred;
        spreads.push(spread);
    }
    assert!(
        !spreads.is_empty() && spreads.iter().any(|&s| s > 0.0),
        "{spreads:?}"
    );
    let csv = dir.read("run/report/designs.csv");
    assert!(csv.starts_with("id,sequence,pred,spread,muts,"), "{csv}");
    assert_contains(
        &dir.read("run/report/report.md"),
        &["an ensemble of 3 predictors", "spread=D"],
    );
    dir.create(
        "w.toml",
        &own(&[ensemble, ("top_k = 12", "top_k = 12\nkappa = 2.0")]),
    );
    run(&dir);
    let conservative = dir.read("run/report/designs.fasta");
    let seqs = |f: &str| -> Vec<String> {
        f.lines()
            .filter(|l| !l.starts_with('>'))
            .map(String::from)
            .collect()
    };
    assert_ne!(
        seqs(&conservative),
        seqs(&fasta),
        "kappa = 2 designed the same sequences"
    );
    let scores: Vec<f64> = conservative
        .lines()
        .filter(|l| l.starts_with('>'))
        .map(|h| {
            let f = fields(h);
            f[0].1.parse::<f64>().unwrap() - 2.0 * f[1].1.parse::<f64>().unwrap()
        })
        .collect();
    // Ranked by pred - kappa spread (from the 4-decimal header values: within rounding).
    assert!(scores.windows(2).all(|w| w[0] >= w[1] - 1e-3), "{scores:?}");
}
