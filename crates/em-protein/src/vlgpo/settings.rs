//! VLGPO's sampling settings per GGS split, as published in VLGPO's `configs/*.yaml` (the
//! `unsmoothed` predictor entries, the type all four configs select) and `sample.py` (the
//! fitness range that normalises the predictor's output).

use crate::benchmark::Difficulty;
use crate::datasets::Task;

use super::VlgpoError;

/// Settings of [`super::sample`].
#[derive(Debug, Clone, PartialEq)]
pub struct VlgpoSettings {
    /// Latents drawn from `N(0, I)` (`sampling.n_samples`, 512).
    pub n_samples: usize,
    /// Euler steps of the prior's ODE over `t` in `[0, 1]` (`sampling.ode_steps`, 32).
    pub ode_steps: usize,
    /// Designs kept after deduplication, best predictor score first (`sampling.top_k`, 128).
    pub top_k: usize,
    /// Guidance steps after each ODE step (`sampling.J.unsmoothed`).
    pub j: usize,
    /// Guidance step size: each guidance step moves `z` by `-h * alpha * grad`
    /// (`sampling.alpha.unsmoothed`; the config calls it "alpha * ode_steps").
    pub alpha: f64,
    /// Predictor score mapped to 0 (`f_min` of `sample.py`).
    pub f_min: f64,
    /// Predictor score mapped to 1, the guidance target (`f_max` of `sample.py`).
    pub f_max: f64,
}

impl VlgpoSettings {
    /// The published settings of a split: `n_samples` 512, `ode_steps` 32, `top_k` 128, and
    /// (J, alpha) = AAV medium (39, 34), AAV hard (19, 38), GFP medium (37, 18), GFP hard
    /// (5, 0.5); (f_min, f_max) = AAV (0, 19.5365), GFP (1.2834, 4.1231).
    ///
    /// ```
    /// use em_protein::benchmark::Difficulty;
    /// use em_protein::datasets::Task;
    /// use em_protein::vlgpo::VlgpoSettings;
    /// let s = VlgpoSettings::published(Task::Aav, Difficulty::Medium);
    /// assert_eq!((s.n_samples, s.ode_steps, s.top_k, s.j, s.alpha), (512, 32, 128, 39, 34.0));
    /// ```
    pub fn published(task: Task, difficulty: Difficulty) -> Self {
        let (j, alpha) = match (task, difficulty) {
            (Task::Aav, Difficulty::Medium) => (39, 34.0),
            (Task::Aav, Difficulty::Hard) => (19, 38.0),
            (Task::Gfp, Difficulty::Medium) => (37, 18.0),
            (Task::Gfp, Difficulty::Hard) => (5, 0.5),
        };
        let (f_min, f_max) = match task {
            Task::Aav => (0.0, 19.5365),
            Task::Gfp => (1.2834, 4.1231),
        };
        Self {
            n_samples: 512,
            ode_steps: 32,
            top_k: 128,
            j,
            alpha,
            f_min,
            f_max,
        }
    }

    /// Checks the settings; the error names the field.
    pub fn check(&self) -> Result<(), VlgpoError> {
        let err = |field, message: &str| {
            Err(VlgpoError::Setting {
                field,
                message: message.to_string(),
            })
        };
        if self.n_samples == 0 {
            return err("n_samples", "must be at least 1");
        }
        if self.ode_steps == 0 {
            return err("ode_steps", "must be at least 1");
        }
        if self.top_k == 0 {
            return err("top_k", "must be at least 1");
        }
        if !self.alpha.is_finite() || self.alpha < 0.0 {
            return err("alpha", "must be finite and >= 0");
        }
        if !(self.f_min.is_finite() && self.f_max.is_finite() && self.f_max > self.f_min) {
            return err("f_max", "must be finite and above f_min");
        }
        Ok(())
    }
}

/// VLGPO's prior width (`prior.dim`, 8 in all four configs).
pub const PRIOR_DIM: usize = 8;

/// The latent width of a task's VAE and prior (`prior.latent_dim`: AAV 16, GFP 32).
pub fn latent_dim(task: Task) -> usize {
    match task {
        Task::Aav => 16,
        Task::Gfp => 32,
    }
}

/// The published prior of a split, relative to the `vlgpo` data folder
/// (`flow-prior/flow_aav_medium.pt`, ...).
pub fn prior_file(task: Task, difficulty: Difficulty) -> String {
    format!("flow-prior/flow_{}_{}.pt", task.name(), difficulty.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_settings_check_and_bad_fields_are_named() {
        for task in Task::ALL {
            for d in [Difficulty::Medium, Difficulty::Hard] {
                VlgpoSettings::published(task, d).check().unwrap();
            }
        }
        let mut s = VlgpoSettings::published(Task::Gfp, Difficulty::Hard);
        assert_eq!((s.j, s.alpha, s.f_min), (5, 0.5, 1.2834));
        s.f_max = 1.0;
        assert!(s.check().unwrap_err().to_string().contains("f_max"));
        s = VlgpoSettings::published(Task::Aav, Difficulty::Hard);
        s.top_k = 0;
        assert!(s.check().unwrap_err().to_string().contains("top_k"));
        assert_eq!(
            prior_file(Task::Aav, Difficulty::Hard),
            "flow-prior/flow_aav_hard.pt"
        );
    }
}
