//! VLGPO's published flow priors loaded into our `Unet1D` give the velocities VLGPO's own
//! PyTorch code gives (fixture `fixtures/vlgpo_prior/reference.json`, made by
//! `make_fixture.py` beside it), loader errors name file and tensor, and our per-split
//! settings are the ones in VLGPO's `configs/*.yaml`.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::TensorData;
use em_protein::benchmark::Difficulty;
use em_protein::cnn::tensor_to_vec;
use em_protein::datasets::Task;
use em_protein::vlgpo::{PRIOR_DIM, Unet1D, VlgpoSettings, prior_file};

/// The `vlgpo` folder of the data directory; `None` (with a note) when `EMDESIGN_DATA` is
/// unset, a panic when it is missing under CI (`CI` set).
fn vlgpo_dir() -> Option<PathBuf> {
    let ci = std::env::var_os("CI").is_some();
    match em_protein::datasets::data_dir(None) {
        Ok(dir) if dir.join("vlgpo").is_dir() => Some(dir.join("vlgpo")),
        Ok(dir) if ci => panic!("CI: {} has no vlgpo folder", dir.display()),
        Err(e) if ci => panic!("CI: {e}"),
        Ok(dir) => {
            eprintln!("skipped: {} has no vlgpo folder", dir.display());
            None
        }
        Err(_) => {
            eprintln!("skipped: EMDESIGN_DATA is not set");
            None
        }
    }
}

#[derive(serde::Deserialize)]
struct Reference {
    priors: Vec<PriorReference>,
}

#[derive(serde::Deserialize)]
struct PriorReference {
    file: String,
    dim: usize,
    latent_dim: usize,
    t: Vec<f64>,
    z: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

#[test]
fn published_priors_give_the_reference_velocities() {
    let Some(dir) = vlgpo_dir() else { return };
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vlgpo_prior/reference.json");
    let reference: Reference =
        serde_json::from_str(&std::fs::read_to_string(&fixture).unwrap()).unwrap();
    let device = Device::flex();
    for prior in &reference.priors {
        let unet = Unet1D::load_vlgpo(dir.join(&prior.file), prior.dim, &device).unwrap();
        let b = prior.z.len();
        let z: Vec<f32> = prior.z.concat();
        let z = Tensor::<3>::from_data(TensorData::new(z, [b, 1, prior.latent_dim]), &device);
        let v = tensor_to_vec(unet.forward(z, &prior.t));
        let expected = prior.v.concat();
        let worst = v
            .iter()
            .zip(&expected)
            .map(|(a, e)| (a - e).abs())
            .fold(0.0f32, f32::max);
        eprintln!("{}: max |v - v_torch| = {worst:.2e}", prior.file);
        assert!(worst < 1e-4, "{}: max abs error {worst}", prior.file);
    }
}

#[test]
fn every_published_prior_loads_and_bad_files_are_named() {
    let Some(dir) = vlgpo_dir() else { return };
    let device = Device::flex();
    for task in Task::ALL {
        for d in [Difficulty::Medium, Difficulty::Hard] {
            let path = dir.join(prior_file(task, d));
            Unet1D::load_vlgpo(&path, PRIOR_DIM, &device)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
    let path = dir.join(prior_file(Task::Aav, Difficulty::Medium));
    let err = Unet1D::load_vlgpo(&path, 16, &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("flow_aav_medium.pt") && err.contains("init_conv.weight"),
        "{err}"
    );
    let err = Unet1D::load_vlgpo(dir.join("absent.pt"), 8, &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("absent.pt"), "{err}");
}

/// The value under `key:` then `unsmoothed:` in one of VLGPO's configs (a two-level lookup
/// is all these flat files need).
fn unsmoothed(yaml: &str, key: &str) -> f64 {
    let mut lines = yaml
        .lines()
        .skip_while(|l| l.split('#').next().unwrap().trim() != format!("{key}:"));
    lines.next();
    let line = lines
        .find(|l| l.trim_start().starts_with("unsmoothed:"))
        .unwrap_or_else(|| panic!("no {key}.unsmoothed"));
    line.split(':')
        .nth(1)
        .unwrap()
        .trim()
        .trim_end_matches('.')
        .parse()
        .unwrap()
}

fn scalar(yaml: &str, key: &str) -> f64 {
    let line = yaml
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key}"));
    let value = line.split(':').nth(1).unwrap();
    value.split('#').next().unwrap().trim().parse().unwrap()
}

#[test]
fn settings_are_the_published_configs() {
    let Some(dir) = vlgpo_dir() else { return };
    for task in Task::ALL {
        for d in [Difficulty::Medium, Difficulty::Hard] {
            let path = dir.join(format!("configs/{}_{}.yaml", task.name(), d.name()));
            let yaml = std::fs::read_to_string(&path).unwrap();
            assert!(yaml.contains("type: 'unsmoothed'"), "{}", path.display());
            let s = VlgpoSettings::published(task, d);
            let want = (
                scalar(&yaml, "n_samples") as usize,
                scalar(&yaml, "ode_steps") as usize,
                scalar(&yaml, "top_k") as usize,
                unsmoothed(&yaml, "J") as usize,
                unsmoothed(&yaml, "alpha"),
            );
            assert_eq!(
                (s.n_samples, s.ode_steps, s.top_k, s.j, s.alpha),
                want,
                "{}",
                path.display()
            );
            assert_eq!(scalar(&yaml, "dim") as usize, PRIOR_DIM);
            assert_eq!(
                scalar(&yaml, "latent_dim") as usize,
                em_protein::vlgpo::latent_dim(task)
            );
        }
    }
}
