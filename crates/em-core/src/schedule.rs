//! Temperature schedules eps(t) for Langevin dynamics: the paper's "zero, then linear ramp
//! after tau*" schedule and a constant one, as a small serde enum.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A temperature schedule eps(t) >= 0 over sampler time t.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// eps(t) = `eps` for every t.
    Constant {
        /// The temperature.
        eps: f64,
    },
    /// eps(t) = 0 for t < `tau_star`, rising linearly to `eps_max` at t = 1, and `eps_max`
    /// for t >= 1 (Energy Matching, arXiv 2504.10612, section 3).
    Ramp {
        /// Time at which the ramp starts, in [0, 1).
        tau_star: f64,
        /// Temperature reached at t = 1 and kept after.
        eps_max: f64,
    },
}

impl Schedule {
    /// The temperature at time `t`.
    pub fn eps(&self, t: f64) -> f64 {
        match *self {
            Schedule::Constant { eps } => eps,
            Schedule::Ramp { tau_star, eps_max } => {
                if t < tau_star {
                    0.0
                } else if t >= 1.0 {
                    eps_max
                } else {
                    eps_max * (t - tau_star) / (1.0 - tau_star)
                }
            }
        }
    }

    /// Checks the schedule's numbers; `field` prefixes the field names in errors.
    pub fn check(&self, field: &str) -> Result<()> {
        let finite_nonneg = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(Error::config(
                    format!("{field}.{name}"),
                    format!("must be finite and >= 0, got {v}"),
                ))
            }
        };
        match *self {
            Schedule::Constant { eps } => finite_nonneg("eps", eps),
            Schedule::Ramp { tau_star, eps_max } => {
                finite_nonneg("eps_max", eps_max)?;
                if !(0.0..1.0).contains(&tau_star) {
                    return Err(Error::config(
                        format!("{field}.tau_star"),
                        format!("must lie in [0, 1), got {tau_star}"),
                    ));
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_is_zero_then_linear_then_flat() {
        let s = Schedule::Ramp {
            tau_star: 0.5,
            eps_max: 0.2,
        };
        assert_eq!(s.eps(0.0), 0.0);
        assert_eq!(s.eps(0.49), 0.0);
        assert!((s.eps(0.75) - 0.1).abs() < 1e-12);
        assert_eq!(s.eps(1.0), 0.2);
        assert_eq!(s.eps(3.0), 0.2);
        assert_eq!(Schedule::Constant { eps: 0.3 }.eps(0.1), 0.3);
    }

    #[test]
    fn serde_and_checks() {
        let s: Schedule =
            serde_json::from_str(r#"{"kind":"ramp","tau_star":0.5,"eps_max":0.1}"#).unwrap();
        assert_eq!(
            s,
            Schedule::Ramp {
                tau_star: 0.5,
                eps_max: 0.1
            }
        );
        let bad = Schedule::Ramp {
            tau_star: 1.0,
            eps_max: 0.1,
        };
        let e = bad.check("langevin.schedule").unwrap_err();
        assert!(e.to_string().contains("langevin.schedule.tau_star"), "{e}");
        assert!(Schedule::Constant { eps: -1.0 }.check("s").is_err());
    }
}
