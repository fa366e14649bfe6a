//! The Energy Matching trainer: flow-only warm-up, then flow + contrastive steps, with Adam,
//! LR warm-up, global-norm clipping, EMA, JSON-lines loss log, progress bar, checkpoints and
//! exact resume (the RNG of step `s` is derived from `(seed, s)`).

pub mod cd_share;
pub mod cfm;
pub mod clip;
pub mod config;
pub mod ema;

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

pub use cd_share::{CdShareSummary, MIN_CD_SHARE};
pub use config::{MIN_NEG_HORIZON, TrainConfig, TrainSettings, ema_decay_for_steps};
pub use ema::Ema;

use crate::checkpoint::{self, CheckpointMeta};
use crate::data::DataMatrix;
use crate::error::{Error, Result};
use crate::kernels::{HostTrainer, host_values};
use crate::loss::{FlowBatch, cd_loss, flow_loss, negatives};
use crate::potential::Potential;

/// What one optimizer step did (also one line of the loss log).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    /// Steps completed after this one.
    pub step: u64,
    /// `"flow"` (warm-up) or `"cd"` (flow + contrastive).
    pub phase: &'static str,
    /// Flow-matching loss.
    pub flow: f64,
    /// Contrastive term (after clamping), `None` in the warm-up.
    pub cd: Option<f64>,
    /// Learning rate used.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// L2 norm of the flow term's parameter gradient, before clipping (in the warm-up it is
    /// the whole gradient).
    pub grad_flow: f64,
    /// L2 norm of the contrastive term's parameter gradient, before clipping; `None` in the
    /// warm-up.
    pub grad_cd: Option<f64>,
    /// `grad_cd / grad_flow`; `None` in the warm-up.
    pub grad_ratio: Option<f64>,
    /// Contrastive share of the gradient, `grad_cd / (grad_flow + grad_cd)` in [0, 1];
    /// `None` in the warm-up. See [`cd_share`] for the run's summary and its warning.
    pub cd_share: Option<f64>,
}

/// Trains a potential `M` (a burn module on an autodiff device) with Energy Matching.
pub struct Trainer<M> {
    settings: TrainSettings,
    model: M,
    ema: Ema<M>,
    optim: ModuleOptimizer,
    step: u64,
    device: Device,
    ckpt_dir: Option<PathBuf>,
    log: Option<(PathBuf, File)>,
    host_kernels: bool,
}

/// One step's loss values and summed parameter gradient (before clipping).
struct Terms {
    flow: f64,
    cd: Option<f64>,
    grads: GradientsParams,
    /// Gradient norms of the flow and contrastive terms (CD phase only).
    split: Option<(f64, f64)>,
}

/// Seed of the RNG used by step `step` of a run seeded with `seed` (splitmix64 mixing).
pub fn step_seed(seed: u64, step: u64) -> u64 {
    let mut z = seed ^ step.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl<M: Module + Potential> Trainer<M> {
    /// A fresh trainer at step 0; `model` must live on an autodiff device.
    pub fn new(model: M, settings: TrainSettings) -> Self {
        let device = model.devices().first().cloned().unwrap_or_default();
        let ema = Ema::new(&model, settings.config().ema_decay);
        Self {
            settings,
            model,
            ema,
            optim: AdamConfig::new().init(),
            step: 0,
            device,
            ckpt_dir: None,
            log: None,
            host_kernels: true,
        }
    }

    /// Whether steps may use the potential's hand-derived [`Potential::host_trainer`]
    /// gradients (default `true`); `false` keeps burn's autodiff, the reference path.
    pub fn with_host_kernels(mut self, on: bool) -> Self {
        self.host_kernels = on;
        self
    }

    /// Writes checkpoints to `dir` (every `checkpoint_every` steps and at the end of `fit`).
    pub fn with_checkpoint_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.ckpt_dir = Some(dir.into());
        self
    }

    /// Appends one JSON line per step to `path`.
    pub fn with_log(mut self, path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| Error::Log {
                path: path.clone(),
                source,
            })?;
        self.log = Some((path, file));
        Ok(self)
    }

    /// Continues from the newest checkpoint in the checkpoint directory, if there is one
    /// (else returns the trainer unchanged). Errors if it was written under another config
    /// or for another architecture, naming the file.
    pub fn resume(mut self) -> Result<Self> {
        let Some(dir) = self.ckpt_dir.clone() else {
            return Ok(self);
        };
        let Some(path) = checkpoint::latest(&dir)? else {
            return Ok(self);
        };
        let meta = checkpoint::read_meta(&path)?;
        let key = self.settings.resume_key();
        if meta.config != key {
            return Err(Error::checkpoint(
                &path,
                format!(
                    "written under a different training config (fields differ: {})",
                    diff_fields(&meta.config, &key)
                ),
            ));
        }
        let loaded = checkpoint::load(
            &path,
            self.model.clone(),
            self.ema.module().clone(),
            AdamConfig::new().init(),
        )?;
        self.model = loaded.model;
        self.ema = Ema::from_module(loaded.ema, self.settings.config().ema_decay);
        self.optim = loaded.optim;
        self.step = loaded.meta.step;
        Ok(self)
    }

    /// Steps completed so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// The trained model (autodiff device); use `.valid()` for sampling.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The EMA of the weights (non-autodiff), usually the better sampler.
    pub fn ema(&self) -> &M {
        self.ema.module()
    }

    /// The settings.
    pub fn settings(&self) -> &TrainSettings {
        &self.settings
    }

    /// Saves a checkpoint for the current step into the checkpoint directory.
    pub fn save_checkpoint(&self) -> Result<Option<PathBuf>> {
        let Some(dir) = &self.ckpt_dir else {
            return Ok(None);
        };
        let path = dir.join(checkpoint::file_name(self.step));
        let meta = CheckpointMeta {
            step: self.step,
            seed: self.settings.config().seed,
            config: self.settings.resume_key(),
        };
        checkpoint::save(&path, &self.model, self.ema.module(), &self.optim, &meta)?;
        Ok(Some(path))
    }

    /// One optimizer step on a minibatch of `data`.
    pub fn step(&mut self, data: &DataMatrix) -> Result<StepReport> {
        if data.dim() != self.model.dim() {
            return Err(Error::Shape {
                what: "training data".into(),
                expected: format!("{} columns (the potential's dim)", self.model.dim()),
                got: format!("{} columns", data.dim()),
            });
        }
        let cfg = self.settings.config().clone();
        let step = self.step;
        let mut rng = StdRng::seed_from_u64(step_seed(cfg.seed, step));
        let x1 = data.sample_batch(cfg.batch_size, &mut rng, &self.device);
        let batch = FlowBatch::draw(x1.clone(), cfg.ot, &mut rng)?;
        let flow_phase = self.settings.is_flow_phase(step);
        let host = if self.host_kernels {
            self.model.host_trainer()
        } else {
            None
        };
        let terms = match host {
            Some(kernel) => self.host_terms(&*kernel, x1, &batch, flow_phase, &mut rng)?,
            None => self.burn_terms(x1, &batch, flow_phase, &mut rng)?,
        };
        let Terms {
            flow: flow_val,
            cd: cd_val,
            mut grads,
            split,
        } = terms;
        let grad_norm = clip::clip_global_norm(&self.model, &mut grads, cfg.grad_clip);
        if !grad_norm.is_finite() {
            return Err(nonfinite(step, "gradient norm"));
        }
        let lr = self.settings.lr_at(step);
        self.model = self.optim.step(lr, self.model.clone(), grads);
        self.ema.update(&self.model);
        self.step += 1;
        let report = StepReport {
            step: self.step,
            phase: if flow_phase { "flow" } else { "cd" },
            flow: flow_val,
            cd: cd_val,
            lr,
            grad_norm,
            grad_flow: split.map_or(grad_norm, |(f, _)| f),
            grad_cd: split.map(|(_, c)| c),
            grad_ratio: split.and_then(|(f, c)| (f > 0.0).then(|| c / f)),
            cd_share: split.map(|(f, c)| cd_share::share(f, c)),
        };
        if let Some((path, file)) = &mut self.log {
            let line = serde_json::to_string(&report).unwrap_or_default();
            writeln!(file, "{line}").map_err(|source| Error::Log {
                path: path.clone(),
                source,
            })?;
        }
        Ok(report)
    }

    /// The flow (and, after the warm-up, contrastive) terms through burn's autodiff.
    fn burn_terms(
        &self,
        x1: Tensor<2>,
        batch: &FlowBatch,
        flow_phase: bool,
        rng: &mut StdRng,
    ) -> Result<Terms> {
        let cfg = self.settings.config();
        let step = self.step;
        let flow = flow_loss(&self.model, batch, cfg.t_cut);
        let flow_val = scalar(&flow);
        if !flow_val.is_finite() {
            return Err(nonfinite(step, "flow loss"));
        }
        if flow_phase {
            let grads = GradientsParams::from_grads(flow.backward(), &self.model);
            return Ok(Terms {
                flow: flow_val,
                cd: None,
                grads,
                split: None,
            });
        }
        let neg = self.draw_negatives(&x1, rng)?;
        let cd = cd_loss(&self.model, x1, neg, cfg.lambda_cd, cfg.cd_clamp);
        let cd_val = scalar(&cd);
        if !cd_val.is_finite() {
            return Err(nonfinite(step, "contrastive term"));
        }
        // The two terms' graphs share only the parameters, so two backward passes cost
        // what one on the sum costs and give each term's gradient norm.
        let g_flow = GradientsParams::from_grads(flow.backward(), &self.model);
        let g_cd = GradientsParams::from_grads(cd.backward(), &self.model);
        let n_flow = clip::global_norm(&self.model, &g_flow);
        let n_cd = clip::global_norm(&self.model, &g_cd);
        Ok(Terms {
            flow: flow_val,
            cd: Some(cd_val),
            grads: clip::add_grads(&self.model, g_flow, g_cd),
            split: Some((n_flow, n_cd)),
        })
    }

    /// The same terms through the potential's hand-derived f32 gradients (same negatives,
    /// same RNG stream as [`Self::burn_terms`]).
    fn host_terms(
        &self,
        kernel: &dyn HostTrainer,
        x1: Tensor<2>,
        batch: &FlowBatch,
        flow_phase: bool,
        rng: &mut StdRng,
    ) -> Result<Terms> {
        let cfg = self.settings.config();
        let step = self.step;
        let xt = host_values(batch.x_t());
        let target = host_values(batch.velocity());
        let w = batch.weights(cfg.t_cut);
        let (flow_val, g_flow) = kernel.flow_loss_grad(&xt, &target, &w);
        if !flow_val.is_finite() {
            return Err(nonfinite(step, "flow loss"));
        }
        let inner = self.device.clone().inner();
        if flow_phase {
            return Ok(Terms {
                flow: flow_val,
                cd: None,
                grads: kernel.gradients(&g_flow, &inner),
                split: None,
            });
        }
        let neg = self.draw_negatives(&x1, rng)?;
        let (n_pos, n_neg) = (x1.dims()[0], neg.dims()[0]);
        let mut x = host_values(x1);
        x.extend(host_values(neg));
        let lambda = cfg.lambda_cd;
        let coef: Vec<f32> = (0..n_pos + n_neg)
            .map(|i| {
                if i < n_pos {
                    (lambda / n_pos as f64) as f32
                } else {
                    (-lambda / n_neg as f64) as f32
                }
            })
            .collect();
        let (energies, mut g_cd) = kernel.energy_grad(&x, &coef);
        let mean = |e: &[f32]| e.iter().map(|&v| f64::from(v)).sum::<f64>() / e.len() as f64;
        let raw = lambda * (mean(&energies[..n_pos]) - mean(&energies[n_pos..]));
        if !raw.is_finite() {
            return Err(nonfinite(step, "contrastive term"));
        }
        // Clamped, the term is the constant -clamp: no gradient (as burn's clamp_min).
        let cd_val = if raw < -cfg.cd_clamp {
            g_cd.fill(0.0);
            -cfg.cd_clamp
        } else {
            raw
        };
        let norm = |g: &[f32]| g.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
        let split = (norm(&g_flow), norm(&g_cd));
        let total: Vec<f32> = g_flow.iter().zip(&g_cd).map(|(a, b)| a + b).collect();
        Ok(Terms {
            flow: flow_val,
            cd: Some(cd_val),
            grads: kernel.gradients(&total, &inner),
            split: Some(split),
        })
    }

    /// Detached negatives from the data batch `x1` (sampled with the current weights, not
    /// the EMA, off the autodiff graph).
    fn draw_negatives(&self, x1: &Tensor<2>, rng: &mut StdRng) -> Result<Tensor<2>> {
        let sampler = self.model.valid();
        let inner = self.device.clone().inner();
        let starts = Tensor::<2>::from_data(x1.to_data(), &inner);
        negatives(&sampler, starts, &self.settings.chains(), rng, &self.device)
    }

    /// Trains until `total_steps`, checkpointing every `checkpoint_every` steps and at the end.
    pub fn fit(&mut self, data: &DataMatrix) -> Result<()> {
        let total = self.settings.config().total_steps;
        self.fit_until(data, total)
    }

    /// Trains until `until` steps are completed (a prefix of [`Trainer::fit`]).
    pub fn fit_until(&mut self, data: &DataMatrix, until: u64) -> Result<()> {
        let every = self.settings.config().checkpoint_every;
        let bar = progress_bar(self.settings.config().total_steps, self.step);
        while self.step < until {
            let r = self.step(data)?;
            bar.set_position(self.step);
            bar.set_message(format!("{} flow {:.4}", r.phase, r.flow));
            if every > 0 && self.step.is_multiple_of(every) {
                self.save_checkpoint()?;
            }
        }
        bar.finish_and_clear();
        if every == 0 || !self.step.is_multiple_of(every) {
            self.save_checkpoint()?;
        }
        Ok(())
    }
}

fn progress_bar(total: u64, pos: u64) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}<{eta}]")
    {
        bar.set_style(style);
    }
    bar.set_position(pos);
    bar
}

fn scalar(t: &Tensor<1>) -> f64 {
    t.clone().into_scalar::<f64>()
}

fn nonfinite(step: u64, what: &str) -> Error {
    Error::NonFinite {
        step,
        what: what.to_string(),
    }
}

/// Names of top-level JSON fields that differ between two configs.
fn diff_fields(a: &serde_json::Value, b: &serde_json::Value) -> String {
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            let diff: Vec<String> = keys
                .into_iter()
                .filter(|k| a.get(*k) != b.get(*k))
                .map(|k| {
                    format!(
                        "{k}: checkpoint {} vs now {}",
                        a.get(k).unwrap_or(&serde_json::Value::Null),
                        b.get(k).unwrap_or(&serde_json::Value::Null)
                    )
                })
                .collect();
            diff.join(", ")
        }
        _ => "unreadable config".into(),
    }
}

/// Path of the loss log inside a run directory (convention used by the app).
pub fn log_path(run_dir: &Path) -> PathBuf {
    run_dir.join("train_log.jsonl")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_seeds_differ_and_repeat() {
        assert_eq!(step_seed(1, 5), step_seed(1, 5));
        assert_ne!(step_seed(1, 5), step_seed(1, 6));
        assert_ne!(step_seed(1, 5), step_seed(2, 5));
    }

    #[test]
    fn diff_names_fields() {
        let a = serde_json::json!({"lr": 1, "seed": 2});
        let b = serde_json::json!({"lr": 1, "seed": 3});
        assert!(diff_fields(&a, &b).starts_with("seed: checkpoint 2 vs now 3"));
    }
}
