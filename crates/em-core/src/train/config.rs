//! Training settings: `TrainConfig` as users write it (serde, defaults), checked once into
//! `TrainSettings` before any work; every error names the offending field. Defaults that come
//! from the paper (arXiv 2504.10612) or the official code (m1balcerak/EnergyMatching,
//! `experiments/proteins/config.py`, the protein recipe) say so; the others are ours.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::loss::{NegativeChains, NegativeInit};

/// Energy Matching training settings as written by a user (unchecked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Adam learning rate after warm-up (default 1e-3: ours, for short CPU runs; the official
    /// protein config has 1e-4).
    pub lr: f64,
    /// Steps of linear learning-rate warm-up from lr/warmup to lr (default 100: ours; the
    /// official protein config has 500).
    pub lr_warmup_steps: u64,
    /// Total optimizer steps (default 10,000: official protein config `total_steps`).
    pub total_steps: u64,
    /// Flow-only (warm-up) steps before the contrastive term is switched on (default 5,000:
    /// ours; the official protein script switches at step 10,000 of a resumed run).
    pub flow_steps: u64,
    /// Minibatch size (data rows per step; also the number of negatives; default 128:
    /// official protein config).
    pub batch_size: usize,
    /// Weight of the contrastive term (default 1e-4: the paper's protein value, set by the
    /// official `train_proteins.py` at the switch to CD; the paper's image runs use others).
    /// It weighs `mean V(data) - mean V(neg)` against the flow loss averaged over coordinates.
    pub lambda_cd: f64,
    /// The contrastive term is clamped from below at `-cd_clamp` (default 1: official protein
    /// config `cd_neg_clamp`).
    pub cd_clamp: f64,
    /// Final temperature of the ramp and temperature of constant-temperature chains (default
    /// 0.1: paper App. D for proteins, official protein config `epsilon_max`).
    pub eps_max: f64,
    /// Start of the negatives' temperature ramp (default 0.9: official protein config
    /// `time_cutoff`, which `sde_epsilon` uses as the ramp start; the paper gives 0.9 for
    /// proteins).
    pub tau_star: f64,
    /// Flow-loss weight is 1 below `t_cut` and falls linearly to 0 at t = 1 (default 0.9:
    /// official protein config `time_cutoff`, used by `flow_weight`).
    pub t_cut: f64,
    /// Where negative chains start and which temperatures they follow (default `data`: the
    /// official protein recipe; `data_noise`: the CIFAR-10 trainer's split).
    pub negatives: NegativeInit,
    /// Langevin steps of each negative chain (default 200: paper App. D for AAV, official
    /// protein config `n_gibbs`).
    pub neg_steps: usize,
    /// Langevin step size of negative chains (default 0.01: paper App. D, official protein
    /// config `dt_gibbs`; 200 x 0.01 gives the paper's horizon M dt = 2).
    pub neg_dt: f64,
    /// Accept negative chains shorter than [`MIN_NEG_HORIZON`] or whose ramp never passes
    /// `tau_star` (default false). Meant for tiny test runs: such negatives are not model
    /// samples, and the trainer's users warn that the override is on.
    pub allow_short_negatives: bool,
    /// EMA decay of the weights (default 0.999: official protein config).
    pub ema_decay: f64,
    /// Global gradient-norm clip (0 disables clipping; default 1: official protein config).
    pub grad_clip: f64,
    /// Write a checkpoint every this many steps (0: only at the end; default 1,000: ours).
    pub checkpoint_every: u64,
    /// Pair noise and data by exact minibatch OT (false: random pairing; default true: the
    /// official `ExactOptimalTransportConditionalFlowMatcher`).
    pub ot: bool,
    /// Base seed of every random draw.
    pub seed: u64,
}

/// Shortest negative-chain horizon `neg_steps * neg_dt` accepted without
/// `allow_short_negatives`: the paper asks for M dt >> 1 (it uses 2 on AAV, App. D).
pub const MIN_NEG_HORIZON: f64 = 1.0;

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
            tau_star: 0.9,
            t_cut: 0.9,
            negatives: NegativeInit::Data,
            neg_steps: 200,
            neg_dt: 0.01,
            allow_short_negatives: false,
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

    /// Whether a contrastive phase runs: steps after the warm-up with `lambda_cd > 0`.
    pub fn has_cd_phase(&self) -> bool {
        self.flow_steps < self.total_steps && self.lambda_cd > 0.0
    }

    /// What is wrong with the negative chains, if anything: a horizon `neg_steps * neg_dt`
    /// below [`MIN_NEG_HORIZON`], or a ramp that never passes `tau_star` (the last step runs
    /// at t = (neg_steps - 1) neg_dt, as in the official sampler), so ramp chains never heat.
    pub fn negatives_problem(&self) -> Option<String> {
        let horizon = self.neg_steps as f64 * self.neg_dt;
        let last_t = self.neg_steps.saturating_sub(1) as f64 * self.neg_dt;
        if horizon < MIN_NEG_HORIZON - 1e-9 {
            Some(format!(
                "negative chains of {} x {} reach t = {horizon:.3} < {MIN_NEG_HORIZON} (the \
                 paper asks for M dt >> 1 and uses 200 x 0.01 = 2, App. D)",
                self.neg_steps, self.neg_dt
            ))
        } else if last_t <= self.tau_star {
            Some(format!(
                "negative chains of {} x {} end at t = {last_t:.3} <= tau_star {}: the ramp \
                 chains never heat",
                self.neg_steps, self.neg_dt, self.tau_star
            ))
        } else {
            None
        }
    }

    /// A warning when a contrastive phase runs on short negatives because
    /// `allow_short_negatives` is set; `field` names that setting as the user wrote it.
    pub fn negatives_warning(&self, field: &str) -> Option<String> {
        if !(self.allow_short_negatives && self.has_cd_phase()) {
            return None;
        }
        self.negatives_problem()
            .map(|p| format!("warning: {field} = true: {p}; the negatives are not model samples"))
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
        if self.has_cd_phase()
            && !self.allow_short_negatives
            && let Some(problem) = self.negatives_problem()
        {
            return Err(Error::config(
                "neg_steps",
                format!("{problem}; raise neg_steps (or set allow_short_negatives = true)"),
            ));
        }
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
            init: self.raw.negatives,
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

    /// See: issue 14 (10-20 steps of 0.01 were accepted; tau* 0.5 never reached by 20 x 0.01).
    #[test]
    fn short_negative_chains_are_rejected_unless_allowed() {
        let short = TrainConfig {
            neg_steps: 20,
            neg_dt: 0.01,
            ..Default::default()
        };
        let e = short.clone().check().unwrap_err().to_string();
        assert!(e.contains("`neg_steps`") && e.contains("0.200 < 1"), "{e}");
        // exactly the threshold passes: 100 x 0.01 = 1, last step at t = 0.99 > tau* 0.9
        let edge = TrainConfig {
            neg_steps: 100,
            ..short.clone()
        };
        assert!(edge.clone().check().is_ok());
        // long enough but the ramp chains never pass tau*
        let cold = TrainConfig {
            tau_star: 0.995,
            ..edge
        };
        let e = cold.check().unwrap_err().to_string();
        assert!(e.contains("`neg_steps`") && e.contains("never heat"), "{e}");
        // no CD phase: nothing to check
        let flow_only = TrainConfig {
            flow_steps: 10_000,
            ..short.clone()
        };
        assert!(flow_only.check().is_ok());
        // the override: accepted, and says so
        let allowed = TrainConfig {
            allow_short_negatives: true,
            ..short
        };
        let w = allowed
            .negatives_warning("energy.train.allow_short_negatives")
            .unwrap();
        assert!(
            w.contains("allow_short_negatives = true") && w.contains("not model samples"),
            "{w}"
        );
        assert!(allowed.check().is_ok());
        assert!(TrainConfig::default().negatives_warning("x").is_none());
    }

    #[test]
    fn negatives_setting_parses_by_name() {
        let c: TrainConfig = serde_json::from_str(r#"{"negatives": "data_noise"}"#).unwrap();
        assert_eq!(c.negatives, NegativeInit::DataNoise);
        assert_eq!(TrainConfig::default().negatives, NegativeInit::Data);
        assert!(serde_json::from_str::<TrainConfig>(r#"{"negatives": "noise"}"#).is_err());
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
