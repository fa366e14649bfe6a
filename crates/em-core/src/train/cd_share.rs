//! The contrastive share of the gradient, `|g_cd| / (|g_flow| + |g_cd|)`, per step and over a
//! run's CD phase, with the warning for a contrastive term too weak to move the weights.

use serde::Serialize;

/// Median share below which a CD phase is reported as ineffective (ours, issue 14: under 1%
/// of the gradient the contrastive term hardly changes what the warm-up learned).
pub const MIN_CD_SHARE: f64 = 0.01;

/// `cd / (flow + cd)` for two gradient norms (0 when both are 0).
pub fn share(flow: f64, cd: f64) -> f64 {
    let total = flow + cd;
    if total > 0.0 { cd / total } else { 0.0 }
}

/// The contrastive shares of a run's CD steps, summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CdShareSummary {
    /// CD steps summarised.
    pub steps: usize,
    /// Median share.
    pub median: f64,
    /// Mean share.
    pub mean: f64,
    /// Smallest share.
    pub min: f64,
    /// Largest share.
    pub max: f64,
}

impl CdShareSummary {
    /// The summary of `shares` (one per CD step); `None` when there are none or one is not
    /// finite.
    pub fn from_shares(shares: &[f64]) -> Option<Self> {
        if shares.is_empty() || shares.iter().any(|s| !s.is_finite()) {
            return None;
        }
        let mut sorted = shares.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Self {
            steps: n,
            median,
            mean: sorted.iter().sum::<f64>() / n as f64,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }

    /// A warning when the median share stays below [`MIN_CD_SHARE`]; `field` names the
    /// weight to raise as the user writes it.
    pub fn warning(&self, field: &str) -> Option<String> {
        (self.median < MIN_CD_SHARE).then(|| {
            format!(
                "warning: the contrastive term's share of the gradient stayed below {:.0}% \
                 during the CD phase (median {:.3}%, max {:.3}% over {} steps): the CD phase \
                 hardly changes the potential; raise {field} or lengthen the phase",
                100.0 * MIN_CD_SHARE,
                100.0 * self.median,
                100.0 * self.max,
                self.steps
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_median_and_warning() {
        assert_eq!(share(3.0, 1.0), 0.25);
        assert_eq!(share(0.0, 0.0), 0.0);
        assert!(CdShareSummary::from_shares(&[]).is_none());
        assert!(CdShareSummary::from_shares(&[0.1, f64::NAN]).is_none());
        let s = CdShareSummary::from_shares(&[0.004, 0.5, 0.001, 0.002]).unwrap();
        assert_eq!((s.steps, s.min, s.max), (4, 0.001, 0.5));
        assert!((s.median - 0.003).abs() < 1e-12 && (s.mean - 0.12675).abs() < 1e-12);
        let w = s.warning("energy.train.lambda_cd").unwrap();
        assert!(
            w.contains("below 1%") && w.contains("energy.train.lambda_cd"),
            "{w}"
        );
        let ok = CdShareSummary::from_shares(&[0.02, 0.3, 0.01]).unwrap();
        assert_eq!(ok.median, 0.02);
        assert!(ok.warning("x").is_none());
    }
}
