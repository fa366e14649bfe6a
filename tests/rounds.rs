//! `emdesign round` on an own-data workflow: three lab rounds in silico, with the GGS AAV
//! oracle as the lab (emdesign's embedded AAV oracle without the data directory), checking that the best measured
//! score rises and that no design repeats a measured sequence or lies within min_distance of
//! another; and the refusals (no round 0, unknown or malformed results, a benchmark
//! workflow, a results file merged twice), which leave no round folder behind.

use std::collections::HashSet;
use std::path::Path;

use burn::prelude::Device;
use em_protein::constraints::mutation_list;
use em_protein::datasets::{Checkpoint, Task};
use em_protein::oracle::{GgsCnnOracle, Oracle};
use em_protein::sequence::Sequence;
use em_protein::user_data::{UserDataConfig, load};

use crate::own_protein::{WT, own};
use crate::util::{Dir, TestCommand, assert_contains, data_dir, smoke};

const SHIPPED: &str = "../../datasets/own-protein/aav_variants.csv.gz";

fn shipped_path() -> String {
    format!(
        "{:?}",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(SHIPPED)
            .display()
            .to_string()
    )
}

fn emdesign(dir: &Dir, args: &[&str]) -> TestCommand {
    let mut c = TestCommand::new(dir);
    c.env("EMDESIGN_DATA", "/nonexistent").args(args);
    c
}

/// `(sequence, muts, pred)` of a `designs.csv`, in file order.
fn designs(dir: &Dir, rel: &str) -> Vec<(Sequence, String, f64)> {
    let text = dir.read(rel);
    let mut r = ::csv::Reader::from_reader(text.as_bytes());
    r.records()
        .map(|row| {
            let row = row.unwrap();
            (
                row[1].parse().unwrap(),
                row[3].to_string(),
                row[2].parse().unwrap(),
            )
        })
        .collect()
}

/// A results file in the workflow's data format (`mutations` with `:`, `score`).
fn results(rows: &[(&str, f64)]) -> String {
    let mut out = String::from("mutations,score\n");
    for (muts, y) in rows {
        out.push_str(&format!("{},{y}\n", muts.replace(',', ":")));
    }
    out
}

fn rounds_csv(dir: &Dir) -> Vec<Vec<String>> {
    let text = dir.read("run/rounds.csv");
    let mut r = ::csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "round",
            "batch_size",
            "n_measured_total",
            "best_measured",
            "best_predicted"
        ]
    );
    r.records()
        .map(|x| x.unwrap().iter().map(String::from).collect())
        .collect()
}

fn hamming(a: &Sequence, b: &Sequence) -> usize {
    a.indices()
        .iter()
        .zip(b.indices())
        .filter(|(x, y)| x != y)
        .count()
}

#[test]
fn three_lab_rounds_with_the_oracle_as_the_lab() {
    let device = Device::flex();
    let oracle = match data_dir() {
        Some(data) => GgsCnnOracle::load(
            Task::Aav.checkpoint(&data, Checkpoint::Oracle).unwrap(),
            &device,
        )
        .unwrap(),
        None => GgsCnnOracle::from_cnn(
            em_protein::own_oracle::load_own_oracle(Task::Aav, &device).unwrap(),
        ),
    };
    let lab = |seqs: &[Sequence]| -> Vec<f64> {
        let idx: Vec<Vec<u8>> = seqs.iter().map(|s| s.indices().to_vec()).collect();
        oracle.score(&idx).into_iter().map(f64::from).collect()
    };
    // Round 0's data: the 300 lowest-scoring shipped variants by oracle score (a lab's
    // poor first library), "measured" by the same lab (the oracle), so every score comes
    // from one instrument.
    let wt: Sequence = WT.parse().unwrap();
    let shipped = load(&UserDataConfig {
        mutations: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join(SHIPPED)),
        wild_type: Some(WT.into()),
        first_position: 561,
        ..Default::default()
    })
    .unwrap();
    let seqs = shipped.table.sequences().to_vec();
    let scores = lab(&seqs);
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let q = |f: f64| scores[order[((order.len() - 1) as f64 * f) as usize]];
    eprintln!(
        "shipped oracle scores: min {} q10 {} q30 {} median {} q90 {} max {}",
        q(0.0),
        q(0.1),
        q(0.3),
        q(0.5),
        q(0.9),
        q(1.0)
    );
    order.truncate(300);
    let dir = Dir::new();
    let mut text = String::from("mutations,score\n");
    for &i in &order {
        let m = mutation_list(&wt, &seqs[i], 561);
        let m = if m.is_empty() {
            "wt".into()
        } else {
            m.join(":")
        };
        text.push_str(&format!("{m},{}\n", scores[i]));
    }
    let data_csv = dir.create("data.csv", &text);
    let best0 = order.iter().map(|&i| scores[i]).fold(f64::MIN, f64::max);
    dir.create(
        "w.toml",
        &own(&[
            (
                &shipped_path(),
                &format!("{:?}", data_csv.display().to_string()),
            ),
            ("max_mutations = 6", "max_mutations = 6\nmin_distance = 2"),
            ("n_samples = 24", "n_samples = 48"),
            ("epochs = 3", "epochs = 20"),
            ("channels = 8", "channels = 32"),
            ("steps = 12", "steps = 60"),
            ("warmup_steps = 8", "warmup_steps = 40"),
            ("checkpoint_every = 6", "checkpoint_every = 20"),
        ]),
    );
    emdesign(&dir, &["run", "w.toml"]).stdout();
    let mut measured: HashSet<Sequence> = order.iter().map(|&i| seqs[i].clone()).collect();
    let mut prev = "run/report/designs.csv".to_string();
    for k in 1..=3 {
        let batch = designs(&dir, &prev);
        assert!(!batch.is_empty(), "round {} proposed nothing", k - 1);
        let proposed: Vec<Sequence> = batch.iter().map(|b| b.0.clone()).collect();
        for (i, s) in proposed.iter().enumerate() {
            assert!(!measured.contains(s), "round {}: {s} was measured", k - 1);
            for t in &proposed[..i] {
                assert!(hamming(s, t) >= 2, "round {}: {s} and {t} too close", k - 1);
            }
        }
        let ys = lab(&proposed);
        eprintln!(
            "round {}: {} designs, oracle max {}",
            k - 1,
            ys.len(),
            ys.iter().copied().fold(f64::MIN, f64::max)
        );
        let rows: Vec<(&str, f64)> = batch.iter().map(|b| b.1.as_str()).zip(ys).collect();
        let file = format!("results-{k}.csv");
        dir.create(&file, &results(&rows));
        let out = emdesign(&dir, &["round", "w.toml", "--measured", &file]).stdout();
        assert_contains(&out, &[&format!("round {k}: ")]);
        measured.extend(proposed);
        prev = format!("run/round-{k}/report/designs.csv");
    }
    let last = designs(&dir, &prev);
    assert!(last.iter().all(|d| !measured.contains(&d.0)));
    // The merged table of round 3 holds every measurement with its round.
    let merged = dir.read("run/round-3/measured.csv");
    assert!(merged.starts_with("sequence,score,round\n"), "{merged}");
    let per_round: Vec<usize> = (0..4)
        .map(|k| {
            merged
                .lines()
                .skip(1)
                .filter(|l| l.ends_with(&format!(",{k}")))
                .count()
        })
        .collect();
    let rows = rounds_csv(&dir);
    assert_eq!(rows.len(), 4, "{rows:?}");
    let col = |r: &Vec<String>, i: usize| -> f64 { r[i].parse().unwrap() };
    let best: Vec<f64> = rows.iter().map(|r| col(r, 3)).collect();
    eprintln!("rounds.csv: {rows:?}; initial best (oracle) {best0}");
    assert!((best[0] - best0).abs() < 1e-9, "{best:?} vs {best0}");
    assert_eq!(per_round[0], order.len());
    for k in 1..4 {
        assert_eq!(col(&rows[k], 0) as usize, k);
        assert!(best[k] >= best[k - 1], "best measured fell: {best:?}");
        // Every design of round k-1 was new and measured in round k.
        let batch = col(&rows[k - 1], 1) as usize;
        assert_eq!(per_round[k], batch);
        assert_eq!(col(&rows[k], 2), col(&rows[k - 1], 2) + batch as f64);
    }
    assert!(
        best[3] > best[0],
        "no design beat the initial data: {best:?}"
    );
    // `clean` keeps the lab rounds (copies of the measurements) and names them ...
    let out = emdesign(&dir, &["clean", "w.toml"]).stdout();
    assert_contains(
        &out,
        &[
            "kept the lab rounds (round-1, round-2, round-3, rounds.csv)",
            "emdesign clean --rounds",
        ],
    );
    assert!(!dir.join("run/report").exists());
    assert!(dir.join("run/round-3/measured.csv").is_file());
    // ... `--rounds` removes them, but never a file of the user's in one.
    dir.create("run/round-2/notes.txt", "mine");
    let out = emdesign(&dir, &["clean", "--rounds", "w.toml"]).stdout();
    assert_contains(
        &out,
        &["kept lab-round entries holding files emdesign did not write: round-2"],
    );
    assert_eq!(dir.read("run/round-2/notes.txt"), "mine");
    for gone in [
        "run/round-1",
        "run/round-3",
        "run/rounds.csv",
        "run/round-2/results.csv",
    ] {
        assert!(!dir.join(gone).exists(), "{gone} left");
    }
}

#[test]
fn bad_results_and_benchmark_workflows_are_refused() {
    let dir = Dir::new();
    dir.create("w.toml", &own(&[]));
    // No round 0 yet.
    dir.create("r.csv", "mutations,score\nwt,1.0\n");
    let err = emdesign(&dir, &["round", "w.toml", "--measured", "r.csv"]).assert_err();
    assert_contains(&err, &["no round 0", "emdesign run w.toml"]);
    emdesign(&dir, &["run", "w.toml"]).stdout();
    let batch = designs(&dir, "run/report/designs.csv");
    let no_round = |dir: &Dir| {
        assert!(!dir.join("run/round-1").exists(), "round folder left");
        assert!(!dir.join("run/.round-1.tmp").exists(), "temp folder left");
        assert!(!dir.join("run/rounds.csv").exists(), "rounds.csv written");
    };
    // A sequence never proposed (the wild type is in no designs.csv: it is measured data).
    dir.create(
        "r.csv",
        &results(&[(&batch[0].1, 2.0), ("E563V:T568A:N569K", 1.0)]),
    );
    let err = emdesign(&dir, &["round", "w.toml", "--measured", "r.csv"]).assert_err();
    assert_contains(&err, &["r.csv:3: ", "was never proposed"]);
    no_round(&dir);
    // A mutation whose wild-type residue is wrong, and a score that is not a number.
    dir.create("r.csv", "mutations,score\nE561A,1.0\n");
    let err = emdesign(&dir, &["round", "w.toml", "--measured", "r.csv"]).assert_err();
    assert_contains(
        &err,
        &["r.csv:2: mutation 'E561A': wild type has 'D' at position 561, not 'E'"],
    );
    dir.create(
        "r.csv",
        &format!("mutations,score\n{},x\n", batch[0].1.replace(',', ":")),
    );
    let err = emdesign(&dir, &["round", "w.toml", "--measured", "r.csv"]).assert_err();
    assert_contains(&err, &["r.csv:2: score 'x' is not a finite number"]);
    no_round(&dir);
    // A benchmark workflow has no lab rounds.
    dir.create("b.toml", &smoke(&[]));
    let err = emdesign(&dir, &["round", "b.toml", "--measured", "r.csv"]).assert_err();
    assert_contains(&err, &["for workflows on your own data"]);
    // A good round 1, then the same file again is refused.
    let rows: Vec<(&str, f64)> = batch.iter().take(3).map(|b| (b.1.as_str(), 99.5)).collect();
    dir.create("r1.csv", &results(&rows));
    emdesign(&dir, &["round", "w.toml", "--measured", "r1.csv"]).stdout();
    let table = rounds_csv(&dir);
    assert_eq!(table.len(), 2);
    assert_eq!((table[1][0].as_str(), table[1][3].as_str()), ("1", "99.5"));
    let err = emdesign(&dir, &["round", "w.toml", "--measured", "r1.csv"]).assert_err();
    assert_contains(&err, &["the same file as round 1's results"]);
    assert!(!dir.join("run/round-2").exists());
    // Round 1 cut short before its row: the rerun resumes it from its cached stages, and
    // refuses another results file for it.
    let text = dir.read("run/rounds.csv");
    let first_two: Vec<&str> = text.lines().take(2).collect();
    dir.create("run/rounds.csv", &format!("{}\n", first_two.join("\n")));
    dir.create("r2.csv", &results(&rows[..1]));
    let err = emdesign(&dir, &["round", "w.toml", "--measured", "r2.csv"]).assert_err();
    assert_contains(&err, &["round 1 was started with another results file"]);
    let out = emdesign(&dir, &["round", "w.toml", "--measured", "r1.csv"]).stdout();
    assert_contains(&out, &["round 1: ", "(0 ran, 6 fresh)"]);
    assert_eq!(dir.read("run/rounds.csv"), text);
}
