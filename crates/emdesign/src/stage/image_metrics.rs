//! Image stage `metrics`: FID and KID (pytorch-fid Inception features) of N EM samples and N
//! OT-CFM samples against N held-out test images, and the floor: N train images against the
//! same N test images. Written to `metrics.json`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use em_image::fid::{FidExtractor, FidKid, fid_kid};
use serde::{Deserialize, Serialize};

use super::image_data::{TEST_IDX, TRAIN_IDX, device, read_idx};
use super::image_sample::SAMPLES_IDX;
use super::{Outcome, Stage, StageCtx, cache};
use crate::workflow::image::Image;

/// The output file.
pub const METRICS_JSON: &str = "metrics.json";

/// One row of the results table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// `EM`, `OT-CFM` or `floor (train vs test)`.
    pub method: String,
    /// FID against the held-out test images.
    pub fid: f64,
    /// KID mean over subsets.
    pub kid_mean: f64,
    /// KID standard deviation over subsets.
    pub kid_std: f64,
    /// Images per set.
    pub n: usize,
}

impl Row {
    fn new(method: &str, r: FidKid, n: usize) -> Self {
        Self {
            method: method.into(),
            fid: r.fid,
            kid_mean: r.kid_mean,
            kid_std: r.kid_std,
            n,
        }
    }
}

/// The FID Inception weights in the data directory.
pub fn weights_path(cfg: &Image) -> PathBuf {
    cfg.data
        .data_dir
        .join("images/fid_inception_v3.safetensors")
}

/// The `metrics` stage.
pub struct MetricsStage {
    /// The workflow's settings (KID subsets use em-image's fixed seed, not the workflow's).
    pub cfg: Image,
}

impl Stage for MetricsStage {
    fn name(&self) -> &str {
        "metrics"
    }
    fn kind(&self) -> &str {
        "image.metrics"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "metrics": self.cfg.metrics })
    }
    fn input_files(&self) -> Vec<PathBuf> {
        let w = weights_path(&self.cfg);
        if w.is_file() { vec![w] } else { Vec::new() }
    }
    fn upstream(&self) -> Vec<&str> {
        vec!["data", "sample_em", "sample_cfm"]
    }
    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let n = self.cfg.metrics.n;
        let batch = self.cfg.metrics.batch;
        let data = ctx.input("data")?;
        let sets = [
            read_idx(&data.join(TEST_IDX))?.slice(0, n),
            read_idx(&data.join(TRAIN_IDX))?.slice(0, n),
            read_idx(&ctx.input("sample_em")?.join(SAMPLES_IDX))?.slice(0, n),
            read_idx(&ctx.input("sample_cfm")?.join(SAMPLES_IDX))?.slice(0, n),
        ];
        let extractor =
            FidExtractor::load(weights_path(&self.cfg), &device(&self.cfg.train.device))
                .context("FID needs the Inception weights of the data directory")?;
        let total: usize = sets.iter().map(|s| s.len()).sum();
        let bar = ctx.progress.bar("metrics", total as u64);
        let start = Instant::now();
        let mut feats = Vec::with_capacity(sets.len());
        let mut done = 0;
        for set in &sets {
            let f =
                extractor.features(set, batch, &mut |d, _| bar.set_position((done + d) as u64))?;
            done += set.len();
            feats.push(f);
        }
        bar.finish_and_clear();
        let secs = start.elapsed().as_secs_f64();
        let [test, train, em, cfm] = [&feats[0], &feats[1], &feats[2], &feats[3]];
        let rows = vec![
            Row::new("EM", fid_kid(em, test)?, n),
            Row::new("OT-CFM", fid_kid(cfm, test)?, n),
            Row::new("floor (train vs test)", fid_kid(train, test)?, n),
        ];
        cache::write_atomic(
            &ctx.out.join(METRICS_JSON),
            serde_json::to_string_pretty(&rows)?.as_bytes(),
        )?;
        let fmt = |r: &Row| format!("{:.2}", r.fid);
        Ok(Outcome {
            headline: vec![
                ("fid_em".into(), fmt(&rows[0])),
                ("fid_cfm".into(), fmt(&rows[1])),
                ("fid_floor".into(), fmt(&rows[2])),
                ("n".into(), n.to_string()),
            ],
            metrics: serde_json::json!({
                "rows": rows,
                "inception_secs": secs,
                "inception_images_per_sec": total as f64 / secs.max(1e-9),
            }),
        })
    }
}
