//! Training settings: `TrainConfig` as users write it (serde, defaults), checked once into
//! `TrainSettings` before any work; every error names the offending field.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::loss::NegativeChains;

/// Energy Matching training settings as written by a user (unchecked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Adam learning rate after warm-up.
    pub lr: f64,
    /// Steps of linear learning-rate warm-up from lr/warmup to lr.
    pub lr_warmup_steps: u64,
    /// Total optimizer steps.
    pub total_steps: u64,
    /// Flow-only (warm-up) steps before the contrastive term is switched on.
    pub flow_steps: u64,
    /// Minibatch size (data rows per step; also the number of negatives).
    pub batch_size: usize,
    /// Weight of the contrastive term (1e-4 for proteins; the paper's image runs use other
    /// values).
    pub lambda_cd: f64,
    /// The contrastive term is clamped from below at `-cd_clamp`.
    pub cd_clamp: f64,
    /// Final temperature of the schedule and temperature of data-started chains.
    pub eps_max: f64,
    /// Start of the temperature ramp for noise-started chains.
    pub tau_star: f64,
    /// Flow-loss weight is 1 below `t_cut` and falls linearly to 0 at t = 1.
    pub t_cut: f64,
    /// Langevin steps of each negative chain.
    pub neg_steps: usize,
    /// Langevin step size of negative chains.
    pub neg_dt: f64,
    /// EMA decay of the weights.
    pub ema_decay: f64,
    /// Global gradient-norm clip (0 disables clipping).
    pub grad_clip: f64,
    /// Write a checkpoint every this many steps (0: only at the end).
    pub checkpoint_every: u64,
    /// Pair noise and data by exact minibatch OT (false: random pairing).
    pub ot: bool,
    /// Base seed of every random draw.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            lr_warmup_steps: 100,
            total_steps: 10_000,
            flow_steps: 5_000,
            batch_size: 128,
            lambda_cd: 1e-4,
            cd_clamp: 1.0,
            eps_max: 0.1,
            tau_star: 0.5,
            t_cut: 0.9,
            neg_steps: 200,
            neg_dt: 0.01,
            ema_decay: 0.999,
            grad_clip: 1.0,
            checkpoint_every: 1_000,
            ot: true,
            seed: 0,
        }
    }
}

/// A checked [`TrainConfig`]; only [`TrainConfig::check`] makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSettings {
    raw: TrainConfig,
}

fn positive(field: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::config(
            field,
            format!("must be finite and > 0, got {v}"),
        ))
    }
}

fn non_negative(field: &str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::config(
            field,
            format!("must be finite and >= 0, got {v}"),
        ))
    }
}

/// EMA decay for a run of `steps` steps when none is set: `min(0.999, 1 - 10 / steps)`, so
/// the random initial weights keep at most `e^-10` of the average at the end (0.999 over
/// 1,500 steps would keep 22%).
pub fn ema_decay_for_steps(steps: u64) -> f64 {
    (1.0 - 10.0 / steps.max(1) as f64).clamp(0.0, 0.999)
}

impl TrainConfig {
    /// Share of the final EMA weights still held by the initial (random) weights,
    /// `ema_decay^total_steps`: above ~0.1 the averaged model is mostly its initialisation.
    pub fn ema_init_share(&self) -> f64 {
        self.ema_decay.powf(self.total_steps as f64).clamp(0.0, 1.0)
    }

    /// A warning for the user when more than 10% of the final EMA is still the random
    /// initialisation ([`TrainConfig::ema_init_share`]); `field` names the setting to change.
    pub fn ema_warning(&self, field: &str) -> Option<String> {
        let share = self.ema_init_share();
        (share > 0.1).then(|| {
            format!(
                "warning: {field} {} over {} steps leaves {:.0}% of the EMA weights at their \
                 random initialisation; lower it (e.g. {:.4})",
                self.ema_decay,
                self.total_steps,
                100.0 * share,
                ema_decay_for_steps(self.total_steps)
            )
        })
    }

    /// Checks every field and returns the settings the trainer runs on.
    pub fn check(self) -> Result<TrainSettings> {
        positive("lr", self.lr)?;
        if self.total_steps == 0 {
            return Err(Error::config("total_steps", "must be >= 1"));
        }
        if self.batch_size < 2 {
            return Err(Error::config(
                "batch_size",
                format!(
                    "must be >= 2 (half the negatives start at data), got {}",
                    self.batch_size
                ),
            ));
        }
        non_negative("lambda_cd", self.lambda_cd)?;
        non_negative("cd_clamp", self.cd_clamp)?;
        non_negative("eps_max", self.eps_max)?;
        if !(0.0..1.0).contains(&self.tau_star) {
            return Err(Error::config(
                "tau_star",
                format!("must lie in [0, 1), got {}", self.tau_star),
            ));
        }
        if !(self.t_cut > 0.0 && self.t_cut < 1.0) {
            return Err(Error::config(
                "t_cut",
                format!("must lie in (0, 1), got {}", self.t_cut),
            ));
        }
        if self.neg_steps == 0 && self.flow_steps < self.total_steps {
            return Err(Error::config(
                "neg_steps",
                "must be >= 1 when a CD phase runs",
            ));
        }
        positive("neg_dt", self.neg_dt)?;
        if !(0.0..1.0).contains(&self.ema_decay) {
            return Err(Error::config(
                "ema_decay",
                format!("must lie in [0, 1), got {}", self.ema_decay),
            ));
        }
        non_negative("grad_clip", self.grad_clip)?;
        Ok(TrainSettings { raw: self })
    }
}

impl TrainSettings {
    /// The config these settings were checked from.
    pub fn config(&self) -> &TrainConfig {
        &self.raw
    }

    /// Learning rate at (0-based) `step`: linear warm-up `lr * (step + 1) / warmup`, then `lr`.
    pub fn lr_at(&self, step: u64) -> f64 {
        let w = self.raw.lr_warmup_steps;
        if w == 0 || step >= w {
            self.raw.lr
        } else {
            self.raw.lr * (step + 1) as f64 / w as f64
        }
    }

    /// Whether `step` (0-based) is in the flow-only warm-up.
    pub fn is_flow_phase(&self, step: u64) -> bool {
        step < self.raw.flow_steps
    }

    /// Negative-chain settings.
    pub fn chains(&self) -> NegativeChains {
        NegativeChains {
            steps: self.raw.neg_steps,
            dt: self.raw.neg_dt,
            eps_max: self.raw.eps_max,
            tau_star: self.raw.tau_star,
        }
    }

    /// The config with fields that may change on resume (`total_steps`, `checkpoint_every`)
    /// blanked, as JSON: two runs may share checkpoints only if these agree.
    pub fn resume_key(&self) -> serde_json::Value {
        let mut c = self.raw.clone();
        c.total_steps = 0;
        c.checkpoint_every = 0;
        serde_json::to_value(c).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_check_and_errors_name_fields() {
        let s = TrainConfig::default().check().unwrap();
        assert_eq!(s.config().lambda_cd, 1e-4);
        let e = TrainConfig {
            lr: -1.0,
            ..Default::default()
        }
        .check()
        .unwrap_err();
        assert!(e.to_string().contains("`lr`"), "{e}");
        let e = TrainConfig {
            t_cut: 1.0,
            ..Default::default()
        }
        .check()
        .unwrap_err();
        assert!(e.to_string().contains("`t_cut`"), "{e}");
        let e: std::result::Result<TrainConfig, _> = serde_json::from_str(r#"{"lrr": 1}"#);
        assert!(e.unwrap_err().to_string().contains("lrr"));
    }

    #[test]
    fn ema_init_share_is_decay_to_the_steps() {
        let c = TrainConfig {
            ema_decay: 0.999,
            total_steps: 1500,
            ..Default::default()
        };
        assert!((c.ema_init_share() - 0.999f64.powi(1500)).abs() < 1e-12);
        assert!((c.ema_init_share() - 0.2229).abs() < 1e-3);
        let c = TrainConfig {
            ema_decay: 0.0,
            ..c
        };
        assert_eq!(c.ema_init_share(), 0.0);
        assert!(c.ema_warning("train.ema_decay").is_none());
        let warned = TrainConfig {
            ema_decay: 0.999,
            ..c
        }
        .ema_warning("train.ema_decay")
        .unwrap();
        assert!(
            warned.contains("train.ema_decay 0.999 over 1500 steps leaves 22%"),
            "{warned}"
        );
    }

    #[test]
    fn default_ema_decay_leaves_at_most_e_minus_10_of_the_init() {
        assert_eq!(ema_decay_for_steps(1500), 1.0 - 10.0 / 1500.0);
        assert_eq!(ema_decay_for_steps(100_000), 0.999);
        assert_eq!(ema_decay_for_steps(5), 0.0);
        for steps in [20, 600, 1500, 9999] {
            let c = TrainConfig {
                ema_decay: ema_decay_for_steps(steps),
                total_steps: steps,
                ..Default::default()
            };
            assert!(c.ema_init_share() <= (-10.0f64).exp() + 1e-12, "{steps}");
            assert!(c.ema_warning("x").is_none());
        }
    }

    #[test]
    fn lr_warmup_and_phases() {
        let s = TrainConfig {
            lr: 1.0,
            lr_warmup_steps: 4,
            flow_steps: 2,
            ..Default::default()
        }
        .check()
        .unwrap();
        assert_eq!(s.lr_at(0), 0.25);
        assert_eq!(s.lr_at(3), 1.0);
        assert_eq!(s.lr_at(100), 1.0);
        assert!(s.is_flow_phase(1) && !s.is_flow_phase(2));
    }
}
