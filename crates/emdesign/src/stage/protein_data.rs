//! Protein stages `data` (the GGS split of the task: GGS's own GFP files or the rebuild from
//! the ground truth -> `train.csv` + `split.json`) and `predictor` (the published GGS predictor copied from the verified data
//! directory, or a CNN trained on the split -> `predictor.safetensors`; an ensemble of k
//! adds `predictor_1.safetensors` ... and reports the held-out Spearman of its mean).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::prelude::*;
use em_protein::datasets::Checkpoint;
use em_protein::ensemble::train_ensemble;
use em_protein::gfp_splits::{GfpSplit, TrainingSplit, training_split};
use em_protein::io;
use em_protein::smoothed_predictor::{LabelSmoothing, train_smoothed_predictor};

use super::protein_files::{SplitInfo, member_path, predictor_path, read_train, write_json};
use super::{Outcome, Stage, StageCtx};
use crate::workflow::protein::{Data, Predictor, ProteinData};

/// The `data` stage of a protein workflow.
pub struct ProteinDataStage {
    /// Task and difficulty.
    pub cfg: ProteinData,
}

impl Stage for ProteinDataStage {
    fn name(&self) -> &str {
        "data"
    }
    fn kind(&self) -> &str {
        "protein.data"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "data": self.cfg })
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let (task, difficulty) = (self.cfg.task, self.cfg.difficulty);
        let gt = task.ground_truth()?;
        let (min_gt, max_gt) = gt.score_range().context("empty ground truth")?;
        let source = self.cfg.gfp_split.unwrap_or(GfpSplit::Rebuild);
        let split = training_split(task, difficulty, source, &gt)?;
        let data = split.data();
        io::csv::write_scored_csv(&ctx.out.join("train.csv"), data)?;
        let (n_window, n_top, lo_score, hi_score) = match &split {
            TrainingSplit::Rebuilt(s) => (Some(s.n_window), Some(s.n_top), s.lo_score, s.hi_score),
            TrainingSplit::Ggs(d) => {
                let (lo, hi) = d.score_range().context("empty GGS split")?;
                (None, None, lo, hi)
            }
        };
        let info = SplitInfo {
            task: task.name().into(),
            difficulty: difficulty.name().into(),
            source: source.name().into(),
            length: task.length(),
            n_ground_truth: gt.len(),
            n_train: data.len(),
            n_window,
            n_top,
            lo_score,
            hi_score,
            min_gt,
            max_gt,
        };
        write_json(&ctx.out.join("split.json"), &info)?;
        Ok(Outcome {
            headline: vec![
                ("split".into(), format!("{}-{}", info.task, info.difficulty)),
                ("train".into(), info.n_train.to_string()),
                ("of".into(), info.n_ground_truth.to_string()),
            ],
            metrics: serde_json::to_value(&info)?,
        })
    }
}

/// What [`resolve_predictor`] chose: the predictor's shape and settings, the verified GGS
/// checkpoint to copy, and the label smoothing of a fallback standing in for a smoothed GGS
/// predictor.
pub type Resolved = (Predictor, Option<PathBuf>, Option<LabelSmoothing>);

/// The predictor a benchmark workflow uses and the GGS checkpoint to copy: as configured when
/// `data_dir` holds the published GGS predictor of the split; otherwise (no data directory,
/// or the file is absent from it) a CNN trained on the split with GGS's recipe
/// ([`Predictor::ggs_recipe`]), on graph-smoothed labels ([`LabelSmoothing`]'s defaults) when
/// the configured GGS predictor is a smoothed one, and a message says so. A file that fails
/// its checksum stays an error.
pub fn resolve_predictor(
    cfg: &Predictor,
    data: &ProteinData,
    data_dir: Option<&Path>,
) -> Result<Resolved> {
    let Predictor::Ggs { smoothed } = *cfg else {
        return Ok((cfg.clone(), None, None));
    };
    let checkpoint = Checkpoint::Predictor {
        difficulty: data.difficulty,
        smoothed,
    };
    let why = match data_dir.map(|dir| data.task.checkpoint(dir, checkpoint)) {
        Some(Ok(path)) => {
            eprintln!("predictor: GGS ({})", path.display());
            return Ok((cfg.clone(), Some(path), None));
        }
        Some(Err(em_protein::error::Error::MissingData { path, .. })) => {
            format!("{} is absent", path.display())
        }
        Some(Err(e)) => return Err(e.into()),
        None => "no data directory".to_string(),
    };
    let smoothing = smoothed.then(LabelSmoothing::default);
    let labels = match &smoothing {
        Some(s) => format!(
            "graph-smoothed labels (GGS's smoothing: a first predictor on the raw labels scores \
             the training sequences and single mutants, {} nodes, Tikhonov gamma {} on their \
             kNN graph, then {} epochs on the smoothed labels)",
            s.nodes, s.gamma, s.epochs
        ),
        None => "raw labels".into(),
    };
    eprintln!(
        "predictor: trained here on the split with GGS's recipe on {labels} ({why}; the \
         published GGS predictor is not downloadable, copy it from the benchmark mirror)"
    );
    Ok((Predictor::ggs_recipe(), None, smoothing))
}

/// The `predictor` stage of a protein workflow.
pub struct PredictorStage {
    /// Source and settings.
    pub cfg: Predictor,
    /// The data (a benchmark split names the GGS checkpoint).
    pub data: Data,
    /// The verified GGS checkpoint (`source = "ggs"`).
    pub ggs_path: Option<PathBuf>,
    /// Workflow seed.
    pub seed: u64,
    /// Train on graph-smoothed labels (the fallback for a smoothed GGS predictor); left out of
    /// the stage key when `None`.
    pub smoothing: Option<LabelSmoothing>,
}

impl Stage for PredictorStage {
    fn name(&self) -> &str {
        "predictor"
    }
    fn kind(&self) -> &str {
        "protein.predictor"
    }
    fn config(&self) -> serde_json::Value {
        let mut key =
            serde_json::json!({ "predictor": self.cfg, "data": self.data, "seed": self.seed });
        if let Some(s) = &self.smoothing {
            key["smoothing"] = serde_json::json!(s);
        }
        key
    }
    fn input_files(&self) -> Vec<PathBuf> {
        self.ggs_path.iter().cloned().collect()
    }
    fn upstream(&self) -> Vec<&str> {
        vec!["data"]
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let out = predictor_path(ctx.out);
        if let Some(src) = &self.ggs_path {
            std::fs::copy(src, &out)
                .with_context(|| format!("cannot copy {} to {}", src.display(), out.display()))?;
            let name = src
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned());
            write_json(
                &ctx.out.join("predictor.json"),
                &serde_json::json!({ "source": "ggs", "file": src, "config": self.cfg }),
            )?;
            return Ok(Outcome {
                headline: vec![("source".into(), format!("ggs:{name}"))],
                metrics: serde_json::json!({ "source": "ggs", "file": src }),
            });
        }
        let Some(mut cfg) = self.cfg.train_config(self.seed) else {
            anyhow::bail!("predictor: neither a GGS checkpoint nor training settings");
        };
        // On own data the last epoch is kept, so the held-out rows choose nothing and their
        // Spearman is an unbiased estimate for the report.
        if matches!(self.data, Data::File(_)) {
            cfg.keep_best = false;
        }
        let train = read_train(ctx.input("data")?)?;
        let rows: Vec<(Vec<u8>, f32)> = train
            .sequences()
            .iter()
            .zip(train.scores())
            .map(|(s, &y)| (s.indices().to_vec(), y as f32))
            .collect();
        if let Some(smoothing) = &self.smoothing {
            return train_smoothed(ctx, &rows, &cfg, smoothing);
        }
        let k = self.cfg.ensemble();
        let bar = ctx.progress.bar("predictor", (k * cfg.epochs) as u64);
        let (members, report) = train_ensemble(&rows, &cfg, k, &Device::flex(), |m, e| {
            bar.set_position((m * cfg.epochs + e.epoch) as u64);
            if k > 1 {
                bar.set_message(format!("member {}/{k}, mse {:.4}", m + 1, e.train_mse));
            } else {
                bar.set_message(format!("mse {:.4}", e.train_mse));
            }
        })?;
        bar.finish_and_clear();
        for (m, cnn) in members.iter().enumerate() {
            cnn.save(member_path(ctx.out, m))?;
        }
        write_json(&ctx.out.join("predictor.json"), &report)?;
        let rho = report
            .val_spearman
            .map_or("-".into(), |r| format!("{r:.3}"));
        let mut headline = vec![
            ("source".into(), "train".into()),
            ("epoch".into(), report.chosen_epoch.to_string()),
            ("val_spearman".into(), rho),
        ];
        if k > 1 {
            headline.push(("ensemble".into(), k.to_string()));
        }
        Ok(Outcome {
            headline,
            metrics: serde_json::json!({ "source": "train", "val_spearman": report.val_spearman }),
        })
    }
}

/// The predictor stage's work on graph-smoothed labels: `predictor.safetensors` is the
/// predictor trained on them, `predictor.json` its report plus `smoothing` (the graph and the
/// plain predictor's report, whose held-out Spearman is on the same rows).
fn train_smoothed(
    ctx: &StageCtx,
    rows: &[(Vec<u8>, f32)],
    cfg: &em_protein::predictor::TrainPredictorConfig,
    smoothing: &LabelSmoothing,
) -> Result<Outcome> {
    let total = (cfg.epochs + smoothing.epochs) as u64;
    let bar = ctx.progress.bar("predictor", total);
    let trained = train_smoothed_predictor(rows, cfg, smoothing, &Device::flex(), |phase, e| {
        let done = if phase == "plain" { 0 } else { cfg.epochs };
        bar.set_position((done + e.epoch) as u64);
        bar.set_message(format!("{phase} labels, mse {:.4}", e.train_mse));
    })?;
    bar.finish_and_clear();
    let (report, sm) = (trained.report, trained.smoothing);
    trained.predictor.save(member_path(ctx.out, 0))?;
    let mut json = serde_json::to_value(&report)?;
    json["smoothing"] = serde_json::to_value(&sm)?;
    write_json(&ctx.out.join("predictor.json"), &json)?;
    let rho = |r: Option<f64>| r.map_or("-".into(), |r| format!("{r:.3}"));
    Ok(Outcome {
        headline: vec![
            ("source".into(), "train".into()),
            ("labels".into(), "smoothed".into()),
            ("epoch".into(), report.chosen_epoch.to_string()),
            ("val_spearman".into(), rho(report.val_spearman)),
            ("raw_labels_val_spearman".into(), rho(sm.plain.val_spearman)),
        ],
        metrics: serde_json::json!({
            "source": "train",
            "labels": "smoothed",
            "val_spearman": report.val_spearman,
            "raw_labels_val_spearman": sm.plain.val_spearman,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use em_protein::benchmark::Difficulty;
    use em_protein::datasets::Task;

    #[test]
    fn ggs_predictor_falls_back_to_the_ggs_recipe_only_when_its_file_is_absent() {
        let data = ProteinData {
            task: Task::Aav,
            difficulty: Difficulty::Hard,
            gfp_split: None,
        };
        let ggs = Predictor::Ggs { smoothed: true };
        let (p, path, smoothing) = resolve_predictor(&ggs, &data, None).unwrap();
        assert!(path.is_none());
        // a smoothed GGS predictor falls back to one on graph-smoothed labels, a raw one to raw
        assert_eq!(smoothing, Some(LabelSmoothing::default()));
        let raw = Predictor::Ggs { smoothed: false };
        assert_eq!(resolve_predictor(&raw, &data, None).unwrap().2, None);
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::to_value(Predictor::ggs_recipe()).unwrap()
        );
        let dir = tempfile::tempdir().unwrap();
        let (p, path, _) = resolve_predictor(&ggs, &data, Some(dir.path())).unwrap();
        assert!(path.is_none() && matches!(p, Predictor::Train { epochs: 100, .. }));
        // a present file that fails its checksum is an error, not a fallback
        std::fs::create_dir(dir.path().join("aav")).unwrap();
        std::fs::write(
            dir.path()
                .join("aav/ggs_predictor_hard_smoothed.safetensors"),
            b"tampered",
        )
        .unwrap();
        let e = resolve_predictor(&ggs, &data, Some(dir.path())).unwrap_err();
        assert!(e.to_string().contains("SHA-256 mismatch"), "{e}");
        // a configured training run is kept as it is
        let own = Predictor::Train {
            epochs: 3,
            batch_size: 8,
            learning_rate: 1e-3,
            val_samples: 4,
            channels: 4,
            kernel_size: 3,
            ensemble: 1,
        };
        let (p, path, smoothing) = resolve_predictor(&own, &data, None).unwrap();
        assert!(path.is_none() && matches!(p, Predictor::Train { epochs: 3, .. }));
        assert!(smoothing.is_none());
    }

    #[test]
    fn smoothing_enters_the_predictor_key_only_when_set() {
        let data = ProteinData {
            task: Task::Gfp,
            difficulty: Difficulty::Hard,
            gfp_split: None,
        };
        let stage = |cfg: Predictor, smoothing| PredictorStage {
            cfg,
            data: Data::Benchmark(data),
            ggs_path: None,
            seed: 0,
            smoothing,
        };
        // a GGS predictor's and a plain trained one's keys are what they were before
        for cfg in [Predictor::Ggs { smoothed: true }, Predictor::ggs_recipe()] {
            let key = stage(cfg.clone(), None).config();
            let before =
                serde_json::json!({ "predictor": cfg, "data": Data::Benchmark(data), "seed": 0 });
            assert_eq!(key, before);
        }
        let smoothed = stage(Predictor::ggs_recipe(), Some(LabelSmoothing::default())).config();
        assert_eq!(smoothed["smoothing"]["gamma"], 1.0);
        assert_ne!(smoothed, stage(Predictor::ggs_recipe(), None).config());
    }
}
