//! `[latent]` workflows through the binary: the smoke workflow run in VLGPO's AAV hard VAE
//! latent (energy on the encoder's means, designs decoded by the VAE, the report saying so),
//! and clear refusals: own data with `[latent]`, a data directory without the VAE.

use crate::util::{Dir, TestCommand, assert_contains, data_dir, smoke};

/// smoke.toml with `[latent]` added (and `extra` edits).
fn latent_smoke(extra: &[(&str, &str)]) -> String {
    let mut edits = vec![("[energy]", "[latent]\nvae = \"vlgpo\"\n\n[energy]")];
    edits.extend_from_slice(extra);
    smoke(&edits)
}

#[test]
fn latent_smoke_runs_in_the_vae_latent_and_reports_it() {
    let Some(data) = data_dir() else { return };
    if !data.join("vlgpo/vae/vae_aav_hard.pt").is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: the data directory lacks vlgpo/vae/vae_aav_hard.pt"
        );
        eprintln!("skipping: no vlgpo/vae/vae_aav_hard.pt in the data directory");
        return;
    }
    let dir = Dir::new();
    dir.create("w.toml", &latent_smoke(&[]));
    let out = TestCommand::new(&dir)
        .args(["--data-dir"])
        .args([&data])
        .args(["run", "w.toml"])
        .stdout();
    assert_contains(&out, &["vae_recon="]);
    let summary = dir.read("run/energy/latent.json");
    assert_contains(&summary, &["\"latent_dim\": 16", "vae_aav_hard.pt"]);
    let md = dir.read("run/report/report.md");
    assert_contains(
        &md,
        &["## Representation", "16-d latent", "vae_aav_hard.pt"],
    );
    let json = dir.read("run/report/report.json");
    assert_contains(&json, &["\"representation\""]);
    // Designs are whole 28-residue AAV sequences decoded by the VAE.
    let fasta = dir.read("run/report/designs.fasta");
    let seqs: Vec<&str> = fasta.lines().filter(|l| !l.starts_with('>')).collect();
    assert!(!seqs.is_empty(), "no designs:\n{fasta}");
    assert!(seqs.iter().all(|s| s.len() == 28), "{fasta}");
    // The potential is over the 16-d latent: the one-hot smoke run's energy key differs.
    let plan = |text: &str| {
        let d = Dir::new();
        d.create("w.toml", text);
        TestCommand::new(&d)
            .args(["--data-dir"])
            .args([&data])
            .args(["plan", "w.toml", "--json"])
            .stdout()
    };
    let (latent, onehot) = (plan(&latent_smoke(&[])), plan(&smoke(&[])));
    assert_ne!(key_of(&latent, "energy"), key_of(&onehot, "energy"));
    assert_eq!(key_of(&latent, "predictor"), key_of(&onehot, "predictor"));
}

/// The cache key of stage `id` in `emdesign plan --json` output.
fn key_of(plan: &str, id: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(plan).expect("plan --json is JSON");
    let stages = v["stages"].as_array().expect("stages array");
    let stage = stages
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no stage {id} in {plan}"));
    stage["key"].as_str().expect("key string").to_string()
}

#[test]
fn a_data_directory_without_the_vae_is_refused_naming_the_file() {
    let dir = Dir::new();
    // A data directory with the AAV oracle-free layout: no vlgpo/ folder at all.
    dir.create("data/README", "empty");
    dir.create("w.toml", &latent_smoke(&[]));
    let err = TestCommand::new(&dir)
        .args(["--data-dir", "data", "run", "w.toml"])
        .assert_err();
    assert_contains(&err, &["[latent]", "vae_aav_hard.pt"]);
    assert!(!dir.join("run/energy").exists());
}

#[test]
fn an_unknown_vae_source_names_the_line() {
    let dir = Dir::new();
    dir.create(
        "w.toml",
        &latent_smoke(&[("vae = \"vlgpo\"", "vae = \"mine\"")]),
    );
    let err = TestCommand::new(&dir).args(["plan", "w.toml"]).assert_err();
    assert_contains(&err, &["w.toml:", "latent.vae", "mine"]);
}
