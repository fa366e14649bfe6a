//! The protein subcommands through the binary: `data split` reproduces the published GGS
//! split sizes, works on a user's CSV, and `oracle`/`eval` score files when the data
//! directory (`EMDESIGN_DATA`, or the shared mirror next to the checkout) is present.

use crate::util::{Dir, TestCommand, assert_contains, data_dir};

#[test]
fn aav_splits_have_the_published_sizes() {
    let dir = Dir::new();
    for (difficulty, n) in [("hard", 3448), ("medium", 2139)] {
        let out = TestCommand::new(&dir)
            .args([
                "data",
                "split",
                "--task",
                "aav",
                "--difficulty",
                difficulty,
                "--out",
                "s.csv",
            ])
            .stdout();
        assert_contains(
            &out,
            &[&format!("aav {difficulty}: {n} of 44128 sequences")],
        );
        let csv = dir.read("s.csv");
        assert_eq!(csv.lines().count(), n + 1);
        assert!(csv.starts_with("sequence,score\n"));
    }
}

#[test]
fn split_of_a_users_csv() {
    let dir = Dir::new();
    dir.create(
        "mine.csv",
        "sequence,score\nAAAA,0\nAAAR,1\nWWWW,2\nWWWR,3\nCCCC,10\n",
    );
    let out = TestCommand::new(&dir)
        .args([
            "data",
            "split",
            "--input",
            "mine.csv",
            "--min-edits",
            "4",
            "--percentiles",
            "0,80",
            "--out",
            "s.csv",
        ])
        .stdout();
    assert_contains(&out, &["4 of 5 sequences"]);
    assert_eq!(
        dir.read("s.csv"),
        "sequence,score\nAAAA,0\nAAAR,1\nWWWW,2\nWWWR,3\n"
    );
    let err = TestCommand::new(&dir)
        .args([
            "data",
            "split",
            "--input",
            "mine.csv",
            "--min-edits",
            "4",
            "--percentiles",
            "80,10",
            "--out",
            "t.csv",
        ])
        .assert_err();
    assert_contains(&err, &["percentiles"]);
    assert!(!dir.join("t.csv").exists());
}

#[test]
fn eval_scores_training_sequences_low_and_novelty_zero() {
    let Some(data) = data_dir() else { return };
    let dir = Dir::new();
    TestCommand::new(&dir)
        .args([
            "data",
            "split",
            "--task",
            "aav",
            "--difficulty",
            "hard",
            "--out",
            "s.csv",
        ])
        .stdout();
    let designs: String = dir
        .read("s.csv")
        .lines()
        .take(41)
        .map(|l| format!("{l}\n"))
        .collect();
    dir.create("designs.csv", &designs);
    let out = TestCommand::new(&dir)
        .args(["--data-dir"])
        .args([&data])
        .args([
            "eval",
            "--task",
            "aav",
            "--difficulty",
            "hard",
            "designs.csv",
            "--out",
            "r.json",
        ])
        .stdout();
    assert_contains(&out, &["| aav hard | 40 of 40 (all) |"]);
    let r: serde_json::Value = serde_json::from_str(&dir.read("r.json")).unwrap();
    assert_eq!(
        r["novelty"].as_f64(),
        Some(0.0),
        "training sequences are not novel"
    );
    // The hard split is the bottom 30%: far below the published design fitness (~0.6).
    assert!(r["fitness"].as_f64().unwrap() < 0.35, "{r}");
    assert!(r["diversity"].as_f64().unwrap() > 0.0);
}

/// A data directory holding only the original GGS Lightning checkpoint (what `data fetch`
/// downloads) scores exactly like the derived safetensors file.
#[test]
fn oracle_from_the_original_ckpt_matches_safetensors() {
    let Some(data) = data_dir() else { return };
    let dir = Dir::new();
    std::fs::create_dir_all(dir.join("ckpt-only/aav")).expect("mkdir");
    std::fs::copy(
        data.join("aav/oracle.ckpt"),
        dir.join("ckpt-only/aav/oracle.ckpt"),
    )
    .expect("copy ckpt");
    dir.create(
        "s.csv",
        "sequence\nADEEIRATNPIATEMYGSVSTNLQLGNR\nADEEIRATNPVATEQYGSVSTNQQRQNR\n",
    );
    let from_ckpt = TestCommand::new(&dir)
        .args([
            "--data-dir",
            "ckpt-only",
            "oracle",
            "--task",
            "aav",
            "s.csv",
        ])
        .stdout();
    let from_safetensors = TestCommand::new(&dir)
        .args(["--data-dir"])
        .args([&data])
        .args(["oracle", "--task", "aav", "s.csv"])
        .stdout();
    assert_eq!(from_ckpt, from_safetensors);
    assert_eq!(from_ckpt.lines().count(), 3);
}

/// Without a data directory `emdesign oracle` scores with emdesign's embedded oracle and
/// says so on stderr; the best ground-truth row outscores the worst.
#[test]
fn oracle_without_data_dir_uses_the_embedded_oracle() {
    let dir = Dir::new();
    let gt = em_protein::datasets::Task::Aav.ground_truth().unwrap();
    let order = {
        let mut o: Vec<usize> = (0..gt.len()).collect();
        o.sort_by(|&a, &b| gt.scores()[a].total_cmp(&gt.scores()[b]));
        o
    };
    let (worst, best) = (order[0], order[order.len() - 1]);
    dir.create(
        "s.csv",
        &format!(
            "sequence\n{}\n{}\n",
            gt.sequences()[worst],
            gt.sequences()[best]
        ),
    );
    let out = TestCommand::new(&dir)
        .args(["oracle", "--task", "aav", "s.csv"])
        .output();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_contains(
        &stderr,
        &["oracle: emdesign-trained", "emdesign data fetch"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let scores: Vec<f64> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert!(scores[1] > scores[0], "{stdout}");
}
