//! Fault injection through the binary (issue 20, "nothing lost, nothing misleading"): one
//! regression test per failure a new user hit, SIGKILL at seeded random points with reruns
//! that must end byte-identical to an uninterrupted run, truncation and bit flips of every
//! kind of stage output, and a cheap malformed-input sweep. Tests that need the data
//! directory skip (saying why) without it; the rest use the tiny toy2d fixture.

#[allow(dead_code)]
mod util;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::{
    Dir, TestCommand, assert_contains, assert_same_outputs, data_dir, fixtures, outputs, smoke,
};

fn emdesign(dir: &Dir, data: Option<&Path>) -> TestCommand {
    let mut cmd = TestCommand::new(dir);
    if let Some(d) = data {
        cmd.args(["--data-dir"]).args([d]);
    }
    cmd
}

fn stage_line<'a>(out: &'a str, stage: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(stage))
        .unwrap_or_else(|| panic!("no `{stage}` line in:\n{out}"))
}

/// A small deterministic generator for the seeded fault points (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

// ---------------------------------------------------------------- item 1: resume

/// See: issue 20, item 1. With `steps = 300` the default EMA decay is derived
/// (1 - 10/300 = 0.9666666666666667) and used to read back one ulp off from the checkpoint,
/// so every resume after a kill was refused.
#[test]
fn resume_after_sigkill_with_a_derived_ema_decay() {
    let Some(data) = data_dir() else { return };
    let dir = Dir::new();
    dir.create(
        "w.toml",
        &smoke(&[
            ("steps = 30", "steps = 300"),
            ("warmup_steps = 20", "warmup_steps = 280"),
            ("checkpoint_every = 5", "checkpoint_every = 25"),
        ]),
    );
    let mut child = emdesign(&dir, Some(&data))
        .args(["run", "w.toml", "--quiet"])
        .spawn();
    let ckpts = dir.join("run/energy.partial/checkpoints");
    let count = || {
        std::fs::read_dir(&ckpts).map_or(0, |e| {
            e.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".emck"))
                .count()
        })
    };
    let start = Instant::now();
    while count() < 2 {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoints");
        if let Some(s) = child.try_wait().unwrap() {
            panic!("run ended ({s}) before two checkpoints; train longer");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let out = emdesign(&dir, Some(&data)).args(["run", "w.toml"]).stdout();
    let line = stage_line(&out, "energy");
    assert_contains(line, &["ran", "resumed_at="]);
    assert!(!line.contains("resumed_at=0 "), "{line}");
}

// ---------------------------------------------------------------- item 2: run_dir ownership

fn tiny_with_run_dir(run_dir: &str) -> String {
    std::fs::read_to_string(fixtures().join("toy2d-tiny.toml"))
        .unwrap()
        .replace("run_dir = \"run\"", &format!("run_dir = \"{run_dir}\""))
}

/// See: issue 20, item 2. `run_dir = "."` made `clean` delete the workflow's own folder.
#[test]
fn run_dir_dot_is_refused_by_run_and_clean() {
    let dir = Dir::new();
    dir.create("w.toml", &tiny_with_run_dir("."));
    dir.create("notes.txt", "mine");
    let before = dir.tree("");
    let err = TestCommand::new(&dir).args(["run", "w.toml"]).assert_err();
    assert_contains(&err, &["contains the workflow file", "folder of its own"]);
    let err = TestCommand::new(&dir)
        .args(["clean", "w.toml"])
        .assert_err();
    assert_contains(&err, &["contains the workflow file"]);
    assert_eq!(dir.tree(""), before, "something was written or removed");
    assert_eq!(dir.read("notes.txt"), "mine");
}

/// See: issue 20, item 2. A folder that existed with the user's files is neither run into
/// nor cleaned; a run directory emdesign made loses only what emdesign wrote.
#[test]
fn a_users_folder_is_not_taken_and_clean_keeps_foreign_files() {
    let dir = Dir::new();
    dir.create("w.toml", &tiny_with_run_dir("results"));
    dir.create("results/thesis.tex", "keep me");
    let err = TestCommand::new(&dir).args(["run", "w.toml"]).assert_err();
    assert_contains(
        &err,
        &["holds files emdesign did not write", "`thesis.tex`"],
    );
    let err = TestCommand::new(&dir)
        .args(["clean", "w.toml"])
        .assert_err();
    assert_contains(
        &err,
        &["not an emdesign run directory", "not removing anything"],
    );
    assert_eq!(dir.tree("results"), ["thesis.tex"]);

    // An emdesign run directory with a file added later: clean keeps that file.
    dir.create("w2.toml", &tiny_with_run_dir("run2"));
    TestCommand::new(&dir)
        .args(["run", "w2.toml", "-q"])
        .stdout();
    dir.create("run2/my-notes.md", "mine");
    let out = TestCommand::new(&dir).args(["clean", "w2.toml"]).stdout();
    assert_contains(&out, &["kept 1 other entries (my-notes.md)"]);
    // The folder stays, still marked as a run directory.
    assert_eq!(dir.tree("run2"), [".emdesign-run", "my-notes.md"]);
}

// ---------------------------------------------------------------- item 3: integrity

/// Damage one file of every stage at once (`flip`: one bit in the middle, else truncate
/// to half); `pick` chooses which file of each stage.
fn damage_every_stage(run: &Path, flip: bool, pick: &mut Rng) -> Vec<String> {
    let mut damaged = Vec::new();
    let mut stages: Vec<PathBuf> = std::fs::read_dir(run)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    stages.sort();
    for stage in stages {
        let mut files: Vec<String> = outputs(&stage).into_keys().collect();
        files.retain(|f| !f.ends_with(".png") || flip); // a half PNG is still a PNG file
        if files.is_empty() {
            continue;
        }
        let f = &files[pick.below(files.len() as u64) as usize];
        let p = stage.join(f);
        let mut bytes = std::fs::read(&p).unwrap();
        if flip {
            let i = bytes.len() / 2;
            bytes[i] ^= 0x04;
        } else {
            bytes.truncate(bytes.len() / 2);
        }
        std::fs::write(&p, bytes).unwrap();
        damaged.push(p.strip_prefix(run).unwrap().display().to_string());
    }
    damaged
}

/// See: issue 20, item 3. Truncated or bit-flipped stage outputs counted as fresh. Every
/// stage's completion record now holds its outputs' checksums: each damaged stage runs
/// again and the run ends byte-identical to the undamaged one.
#[test]
fn truncated_or_flipped_outputs_of_every_stage_are_redone() {
    let Some(data) = data_dir() else { return };
    let good = Dir::new();
    good.create("w.toml", &smoke(&[]));
    emdesign(&good, Some(&data))
        .args(["run", "w.toml", "-q"])
        .stdout();
    let dir = Dir::new();
    dir.create("w.toml", &smoke(&[]));
    emdesign(&dir, Some(&data))
        .args(["run", "w.toml", "-q"])
        .stdout();
    let mut pick = Rng(20);
    for flip in [false, true] {
        let damaged = damage_every_stage(&dir.join("run"), flip, &mut pick);
        assert_eq!(damaged.len(), 6, "{damaged:?}");
        let list = emdesign(&dir, Some(&data))
            .args(["list-stages", "w.toml"])
            .stdout();
        assert_eq!(list.matches("stale").count(), 6, "{damaged:?}\n{list}");
        let o = emdesign(&dir, Some(&data)).args(["run", "w.toml"]).output();
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert!(o.status.success(), "{damaged:?}\n{out}\n{err}");
        for stage in [
            "data",
            "predictor",
            "energy",
            "design",
            "evaluate",
            "report",
        ] {
            assert_contains(stage_line(&out, stage), &["ran"]);
        }
        assert_contains(&err, &["was altered or truncated since it finished"]);
        assert_same_outputs(&good.join("run"), &dir.join("run"), &format!("{damaged:?}"));
    }
}

// ---------------------------------------------------------------- the SIGKILL loop

/// SIGKILL the smoke workflow at seeded random points across all its stages (a handful of
/// kills, each followed by a rerun that may be killed again), then let it finish: the
/// outputs must be byte-identical to an uninterrupted run's. One kill also truncates the
/// newest energy checkpoint, which must fall back to the previous one.
#[test]
fn sigkill_at_random_points_then_rerun_ends_byte_identical() {
    let Some(data) = data_dir() else { return };
    let text = smoke(&[
        ("steps = 30", "steps = 120"),
        ("warmup_steps = 20", "warmup_steps = 100"),
    ]);
    let straight = Dir::new();
    straight.create("w.toml", &text);
    let t0 = Instant::now();
    emdesign(&straight, Some(&data))
        .args(["run", "w.toml", "-q"])
        .stdout();
    let total_ms = t0.elapsed().as_millis() as u64;

    let dir = Dir::new();
    dir.create("w.toml", &text);
    let mut rng = Rng(2026);
    let mut truncated_ckpt = false;
    for kill in 0..5 {
        let delay = Duration::from_millis(50 + rng.below(total_ms));
        let mut child = emdesign(&dir, Some(&data))
            .args(["run", "w.toml", "-q"])
            .spawn();
        let start = Instant::now();
        while start.elapsed() < delay && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        child.wait().unwrap();
        let ckpts = dir.join("run/energy.partial/checkpoints");
        if !truncated_ckpt && util::has_checkpoint(&ckpts) {
            let mut names: Vec<PathBuf> = std::fs::read_dir(&ckpts)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "emck"))
                .collect();
            names.sort();
            if names.len() >= 2 {
                let newest = names.last().unwrap();
                let bytes = std::fs::read(newest).unwrap();
                std::fs::write(newest, &bytes[..bytes.len() / 2]).unwrap();
                truncated_ckpt = true;
                eprintln!("kill {kill}: truncated {}", newest.display());
            }
        }
        eprintln!("kill {kill} after {delay:?}");
    }
    emdesign(&dir, Some(&data))
        .args(["run", "w.toml", "-q"])
        .stdout();
    assert_same_outputs(&straight.join("run"), &dir.join("run"), "after SIGKILLs");
}

// ---------------------------------------------------------------- item 4: modes

/// See: issue 20, item 4. Results were written 0600 (temp file renamed into place).
#[cfg(unix)]
#[test]
fn outputs_get_the_umask_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Dir::new();
    dir.fixture("toy2d-tiny.toml");
    let sh = |cmd: &str| {
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("umask 022; exec \"$0\" {cmd}"))
            .arg(env!("CARGO_BIN_EXE_emdesign"))
            .current_dir(dir.path())
            .env_remove("EMDESIGN_DATA")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    sh("run toy2d-tiny.toml -q");
    sh("data split --task aav --difficulty hard --out split.csv");
    for f in [
        "run/resolved.toml",
        "run/data/train.csv",
        "run/report/report.md",
        "run/sample/samples.csv",
        "split.csv",
    ] {
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(format!("{mode:o}"), "644", "{f}");
    }
}

// ---------------------------------------------------------------- item 5: designs.fasta

/// See: issue 20, item 5. `designs.fasta` mixed the ablation in and repeated sequences;
/// now it holds the main method's distinct designs, ranked, with unique ids.
#[test]
fn designs_fasta_is_an_ordering_list() {
    let Some(data) = data_dir() else { return };
    let dir = Dir::new();
    dir.create("w.toml", &smoke(&[]));
    emdesign(&dir, Some(&data))
        .args(["run", "w.toml", "-q"])
        .stdout();
    let fasta = dir.read("run/report/designs.fasta");
    let lines: Vec<&str> = fasta.lines().collect();
    let mut ids = std::collections::HashSet::new();
    let mut seqs = std::collections::HashSet::new();
    let mut last = f64::INFINITY;
    for (rank, pair) in lines.chunks(2).enumerate() {
        let fields: Vec<&str> = pair[0].split_whitespace().collect();
        assert_eq!(fields[0], format!(">design_{:04}", rank + 1));
        assert!(ids.insert(fields[0]) && seqs.insert(pair[1]), "{}", pair[0]);
        assert!(pair[0].ends_with("interaction=quadratic"), "{}", pair[0]);
        let p: f64 = fields[1]
            .strip_prefix("predictor=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(p <= last, "not ranked: {}", pair[0]);
        last = p;
    }
    assert!(!lines.is_empty() && lines.len() <= 2 * 32);
    let ablation = dir.read("run/report/designs_ablation.fasta");
    assert!(
        ablation
            .lines()
            .step_by(2)
            .all(|l| l.ends_with("interaction=none"))
    );
    let md = dir.read("run/report/report.md");
    assert_contains(
        &md,
        &[
            "design seeds 0, 1",
            "`designs.fasta`: the ordering list",
            "**fitness**",
            "**diversity**",
            "**novelty**",
        ],
    );
}

/// See: issue 20, items 5 and 9. Repeated seeds and `top_k > n_samples` are config errors.
#[test]
fn repeated_seeds_and_top_k_above_n_samples_are_config_errors() {
    let dir = Dir::new();
    dir.create("w.toml", &smoke(&[("seeds = [0, 1]", "seeds = [0, 0]")]));
    let err = TestCommand::new(&dir)
        .args(["check", "w.toml"])
        .assert_err();
    assert_contains(&err, &["w.toml:", "design.seeds", "seed 0 is listed twice"]);
    dir.create("w.toml", &smoke(&[("top_k = 16", "top_k = 33")]));
    let err = TestCommand::new(&dir)
        .args(["check", "w.toml"])
        .assert_err();
    assert_contains(&err, &["design.top_k", "top_k = 33 exceeds n_samples = 32"]);
}

// ---------------------------------------------------------------- item 6: data split

fn split(dir: &Dir, args: &[&str]) -> std::process::Output {
    TestCommand::new(dir)
        .args(["data", "split"])
        .args(args)
        .output()
}

/// See: issue 20, item 6.
#[test]
fn data_split_refuses_to_destroy_its_input_or_succeed_with_nothing() {
    let dir = Dir::new();
    let csv = "sequence,score\nAAAA,1\nAAAR,2\nARRR,3\nRRRR,4\nWWWW,5\n";
    dir.create("in.csv", csv);
    let own = ["--min-edits", "0", "--percentiles", "0,100"];
    let o = split(
        &dir,
        &[&["--input", "in.csv", "--out", "in.csv"][..], &own].concat(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert_contains(
        &String::from_utf8_lossy(&o.stderr),
        &["would destroy its source"],
    );
    assert_eq!(dir.read("in.csv"), csv);

    dir.create("flat.csv", "sequence,score\nAAAA,1\nAAAR,1\nARRR,1\n");
    let o = split(
        &dir,
        &[&["--input", "flat.csv", "--out", "o.csv"][..], &own].concat(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert_contains(
        &String::from_utf8_lossy(&o.stderr),
        &["all 3 scores are equal"],
    );
    assert!(!dir.join("o.csv").exists());

    let far = ["--min-edits", "9", "--percentiles", "0,50"];
    let o = split(
        &dir,
        &[&["--input", "in.csv", "--out", "o.csv"][..], &far].concat(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert_contains(&String::from_utf8_lossy(&o.stderr), &["the split is empty"]);
    assert!(!dir.join("o.csv").exists());

    dir.create("dup.csv", "sequence,score,score\nAAAA,1,2\nAAAR,2,3\n");
    let o = split(
        &dir,
        &[&["--input", "dup.csv", "--out", "o.csv"][..], &own].concat(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert_contains(
        &String::from_utf8_lossy(&o.stderr),
        &["dup.csv:1: column 'score' appears twice"],
    );

    let o = split(
        &dir,
        &[
            "--task",
            "aav",
            "--difficulty",
            "hard",
            "--min-edits",
            "2",
            "--out",
            "o.csv",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "a usage error");
    assert!(!dir.join("o.csv").exists());
}

// ---------------------------------------------------------------- item 7: resources

/// See: issue 20, item 7. `batch_size = 100000` passed `check`, then aborted mid-run (an
/// 80 GB allocation). Now both refuse before any work, with the estimate and the limit.
#[test]
fn an_impossible_batch_size_is_refused_with_the_estimate() {
    let dir = Dir::new();
    dir.create(
        "w.toml",
        &smoke(&[("batch_size = 32", "batch_size = 100000")]),
    );
    let err = TestCommand::new(&dir)
        .args(["check", "w.toml"])
        .env("EMDESIGN_MEMORY_LIMIT", "8G")
        .assert_err();
    assert_contains(
        &err,
        &[
            "stage `energy` would need about ",
            "batch_size 100000: exact OT cost matrix 160.0 GB",
            "8.6 GB limit (EMDESIGN_MEMORY_LIMIT=8G)",
        ],
    );
    let Some(data) = data_dir() else { return };
    let err = emdesign(&dir, Some(&data))
        .args(["run", "w.toml"])
        .env("EMDESIGN_MEMORY_LIMIT", "8G")
        .assert_err();
    assert_contains(&err, &["stage `energy` would need about"]);
    assert!(!dir.join("run/energy.partial").exists() && !dir.join("run/.lock").exists());
}

/// See: issue 20, item 7. A lock file left by a crashed run names a pid that a live process
/// may have by now (here: this test's own); it must not block the next run.
#[test]
fn a_lock_left_by_a_crash_does_not_block() {
    let dir = Dir::new();
    dir.fixture("toy2d-tiny.toml");
    TestCommand::new(&dir)
        .args(["run", "toy2d-tiny.toml", "-q"])
        .stdout();
    std::fs::write(dir.join("run/.lock"), std::process::id().to_string()).unwrap();
    TestCommand::new(&dir)
        .args(["run", "toy2d-tiny.toml", "--force", "report", "-q"])
        .stdout();
}

// ---------------------------------------------------------------- item 9: smaller ones

/// See: issue 20, item 9: progress was silent when stderr was not a terminal.
#[test]
fn redirected_output_still_shows_progress() {
    let dir = Dir::new();
    dir.fixture("toy2d-tiny.toml");
    let o = TestCommand::new(&dir)
        .args(["run", "toy2d-tiny.toml"])
        .output();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_contains(&err, &["data: running", "energy: running", "energy: "]);
}

/// See: issue 20, item 9: oracle output, pipes and odd files.
#[test]
fn oracle_keeps_ids_survives_a_closed_pipe_and_reads_odd_files() {
    let Some(data) = data_dir() else { return };
    let dir = Dir::new();
    let seq = "DEEEIRTTNPVATEQYGSVSTNLQRGNR";
    let rows: String = (0..3000).map(|i| format!("d{i},{seq},NaN\n")).collect();
    dir.create("f.csv", &format!("id,sequence,score\n{rows}"));
    // `| head -1`: the reader goes away after one line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_emdesign"))
        .current_dir(dir.path())
        .args(["--data-dir"])
        .arg(&data)
        .args(["oracle", "--task", "aav", "f.csv"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 8];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then dropped: closed
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(!err.contains("panicked"), "{err}");

    let out = emdesign(&dir, Some(&data))
        .args(["oracle", "--task", "aav", "f.csv"])
        .stdout();
    assert!(
        out.starts_with("id,sequence,oracle,normalised\nd0,"),
        "{out}"
    );

    let bom = dir.create("bom.fasta", &format!("\u{feff}>x1\n{seq}\n"));
    let out = emdesign(&dir, Some(&data))
        .args(["oracle", "--task", "aav"])
        .args([&bom])
        .stdout();
    assert_contains(&out, &["\nx1,"]);

    let gfp = format!(">met\nM{}\n", "S".repeat(237));
    dir.create("gfp.fasta", &gfp);
    let err = emdesign(&dir, Some(&data))
        .args(["oracle", "--task", "gfp", "gfp.fasta"])
        .assert_err();
    assert_contains(&err, &["length 238, expected 237", "drop the leading M"]);

    // `eval --out <folder>`: refused, no temp file left anywhere.
    std::fs::create_dir(dir.join("outdir")).unwrap();
    let err = emdesign(&dir, Some(&data))
        .args([
            "eval",
            "--task",
            "aav",
            "--difficulty",
            "hard",
            "f.csv",
            "--out",
            "outdir",
        ])
        .assert_err();
    assert_contains(&err, &["is a folder"]);
    assert!(
        dir.tree("").iter().all(|p| !p.ends_with(".tmp")),
        "{:?}",
        dir.tree("")
    );
}

// ---------------------------------------------------------------- malformed-input sweep

/// Seeded damage (truncation, byte flips, inserted bytes) of a valid CSV and FASTA, read by
/// `data split --input`: every case ends in success or a clean error (exit 1, `error:`,
/// no output file), never a panic or a signal.
#[test]
fn malformed_input_sweep_never_panics() {
    let dir = Dir::new();
    let csv = "sequence,score\nAAAA,1\nAAAR,2.5\nARRR,3\nRRRR,4e0\nWWWW,5\n".as_bytes();
    let fasta =
        ">a score=1\nAAAA\n>b score=2\nAAAR\n>c score=3\nAR\nRR\n>d score=4\nWWWW\n".as_bytes();
    let mut rng = Rng(7);
    let junk = b",\n>\"=\r\xff\x00 9.-";
    let mut cases = 0;
    for base in [csv, fasta] {
        for _ in 0..12 {
            let mut bytes = base.to_vec();
            match rng.below(3) {
                0 => bytes.truncate(rng.below(bytes.len() as u64) as usize),
                1 => {
                    let i = rng.below(bytes.len() as u64) as usize;
                    bytes[i] ^= 1 << rng.below(8);
                }
                _ => {
                    let i = rng.below(bytes.len() as u64) as usize;
                    bytes.insert(i, junk[rng.below(junk.len() as u64) as usize]);
                }
            }
            std::fs::write(dir.join("in.dat"), &bytes).unwrap();
            let _ = std::fs::remove_file(dir.join("o.csv"));
            let o = split(
                &dir,
                &[
                    "--input",
                    "in.dat",
                    "--min-edits",
                    "0",
                    "--percentiles",
                    "0,100",
                    "--out",
                    "o.csv",
                ],
            );
            let err = String::from_utf8_lossy(&o.stderr);
            match o.status.code() {
                Some(0) => assert!(dir.join("o.csv").is_file()),
                Some(1) => {
                    assert!(err.starts_with("error: "), "{err}");
                    assert!(!dir.join("o.csv").exists(), "partial output: {err}");
                }
                other => panic!("{other:?} on {:?}: {err}", String::from_utf8_lossy(&bytes)),
            }
            cases += 1;
        }
    }
    assert_eq!(cases, 24);
}

/// See: issue 20, item 9: a read-only run directory failed even an all-fresh rerun (it
/// wrote the lock, `resolved.toml` and `summary.json`). Skips as root (root writes anyway).
#[cfg(unix)]
#[test]
fn an_all_fresh_rerun_works_in_a_read_only_run_dir() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Dir::new();
    dir.fixture("toy2d-tiny.toml");
    TestCommand::new(&dir)
        .args(["run", "toy2d-tiny.toml", "-q"])
        .stdout();
    let run = dir.join("run");
    let set = |mode: u32| {
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    set(0o555);
    if std::fs::write(run.join(".probe"), "").is_ok() {
        let _ = std::fs::remove_file(run.join(".probe"));
        set(0o755);
        eprintln!("skipping: this user writes into read-only folders (root)");
        return;
    }
    let o = TestCommand::new(&dir)
        .args(["run", "toy2d-tiny.toml"])
        .output();
    set(0o755);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(out.matches(" fresh ").count(), 4, "{out}");
}

/// See: issue 20, item 8 (without the GGS predictors, which `data fetch` cannot download,
/// the error sent the user back to `data fetch`) and issue 17: the run now trains one with
/// GGS's recipe and says so at start.
#[cfg(unix)]
#[test]
fn a_missing_ggs_predictor_is_trained_with_ggs_recipe_and_said_so() {
    let Some(data) = data_dir() else { return };
    let dir = Dir::new();
    std::fs::create_dir_all(dir.join("data/aav")).unwrap();
    for f in ["oracle.safetensors", "ground_truth.csv"] {
        std::os::unix::fs::symlink(data.join("aav").join(f), dir.join("data/aav").join(f)).unwrap();
    }
    dir.create("w.toml", &smoke(&[]));
    let out = emdesign(&dir, Some(&dir.join("data")))
        .args(["plan", "w.toml", "--json"])
        .output();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_contains(
        &stderr,
        &[
            "oracle: GGS",
            "ggs_predictor_hard_smoothed.safetensors is absent",
            "predictor: trained here on the split with GGS's recipe on graph-smoothed labels",
        ],
    );
    // The plan's predictor stage trains (no GGS file to copy) and nothing was written.
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let predictor = &plan["stages"][1];
    assert_eq!(predictor["id"], "predictor");
    assert_eq!(predictor["input_files"], serde_json::json!([]));
    assert!(!dir.join("run").exists());
}
