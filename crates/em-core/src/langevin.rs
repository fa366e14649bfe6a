//! Batched, seeded Langevin dynamics on U = V + sum of extra energy terms:
//! `x <- x - dt grad U(x) + sqrt(2 eps(t) dt) xi`, with an optional clamp box.

use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::energy::EnergyTerm;
use crate::error::{Error, Result};
use crate::kernels::is_host_f32;
use crate::loss::flow::host_normal;
use crate::potential::Potential;
use crate::schedule::Schedule;

/// Langevin sampler settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LangevinConfig {
    /// Number of steps.
    pub steps: usize,
    /// Step size (time advances by `dt` per step).
    pub dt: f64,
    /// Temperature schedule eps(t).
    pub schedule: Schedule,
    /// Time of the first step.
    #[serde(default)]
    pub t0: f64,
    /// Optional box `[lo, hi]` every coordinate is clamped to after each step.
    #[serde(default)]
    pub clamp: Option<(f64, f64)>,
    /// Record the state every this many steps (and the final state); `None` records nothing.
    #[serde(default)]
    pub record_every: Option<usize>,
}

impl LangevinConfig {
    /// Settings with `t0 = 0`, no clamp box and no trajectory.
    pub fn new(steps: usize, dt: f64, schedule: Schedule) -> Self {
        Self {
            steps,
            dt,
            schedule,
            t0: 0.0,
            clamp: None,
            record_every: None,
        }
    }

    /// Checks every field; errors name the field (prefixed by `field`).
    pub fn check(&self, field: &str) -> Result<()> {
        if !(self.dt.is_finite() && self.dt > 0.0) {
            return Err(Error::config(
                format!("{field}.dt"),
                format!("must be finite and > 0, got {}", self.dt),
            ));
        }
        if !self.t0.is_finite() {
            return Err(Error::config(format!("{field}.t0"), "must be finite"));
        }
        if let Some((lo, hi)) = self.clamp
            && !(lo.is_finite() && hi.is_finite() && lo < hi)
        {
            return Err(Error::config(
                format!("{field}.clamp"),
                format!("need finite lo < hi, got [{lo}, {hi}]"),
            ));
        }
        if self.record_every == Some(0) {
            return Err(Error::config(
                format!("{field}.record_every"),
                "must be >= 1",
            ));
        }
        self.schedule.check(&format!("{field}.schedule"))
    }
}

/// Sampler output: final states and, if requested, `(t, x)` snapshots.
#[derive(Debug, Clone)]
pub struct Samples {
    /// Final states `[B, D]`.
    pub x: Tensor<2>,
    /// Snapshots `(time after the step, states)`, every `record_every` steps.
    pub trajectory: Vec<(f64, Tensor<2>)>,
}

/// Runs Langevin dynamics from `x0` on `U = V + sum(extra_terms)`.
///
/// Noise comes from a host `StdRng` seeded with `seed`, so results repeat exactly on CPU.
/// When the potential offers a fused kernel ([`Potential::host_kernel`]) and `x0` is on the
/// plain CPU device in f32, the steps run on host buffers (same noise stream, same update).
/// Pass a potential on a non-autodiff device (`model.valid()`); states are detached every step
/// anyway. Errors on an invalid config or when the final states are not finite.
///
/// ```
/// use burn::prelude::*;
/// use em_core::langevin::{LangevinConfig, sample};
/// use em_core::potential::Potential;
/// use em_core::schedule::Schedule;
/// struct Half; // V = |x|^2 / 2
/// impl Potential for Half {
///     fn dim(&self) -> usize { 1 }
///     fn energy(&self, x: Tensor<2>) -> Tensor<1> { (x.powi_scalar(2) / 2.0).sum_dim(1).squeeze_dim(1) }
///     fn energy_and_grad(&self, x: Tensor<2>) -> (Tensor<1>, Tensor<2>) { (self.energy(x.clone()), x) }
/// }
/// let x0 = Tensor::<2>::zeros([4, 1], &Device::flex());
/// let cfg = LangevinConfig::new(10, 0.01, Schedule::Constant { eps: 1.0 });
/// let out = sample(&Half, &[], x0, &cfg, 7).unwrap();
/// assert_eq!(out.x.dims(), [4, 1]);
/// ```
pub fn sample<P: Potential + ?Sized>(
    potential: &P,
    extra_terms: &[&dyn EnergyTerm],
    x0: Tensor<2>,
    cfg: &LangevinConfig,
    seed: u64,
) -> Result<Samples> {
    cfg.check("langevin")?;
    if is_host_f32(&x0)
        && let Some(kernel) = potential.host_kernel()
    {
        return crate::kernels::langevin::sample(kernel.as_ref(), extra_terms, x0, cfg, seed);
    }
    let [b, d] = x0.dims();
    let device = x0.device();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x = x0.detach();
    let mut trajectory = Vec::new();
    for k in 0..cfg.steps {
        let t = cfg.t0 + k as f64 * cfg.dt;
        let eps = cfg.schedule.eps(t);
        let mut g = potential.grad_x(x.clone());
        for term in extra_terms {
            g = g + term.grad(x.clone(), t, eps);
        }
        let mut next = x - g * cfg.dt;
        let noise_scale = (2.0 * eps * cfg.dt).sqrt();
        if noise_scale > 0.0 {
            next = next + host_normal(b, d, &mut rng, &device) * noise_scale;
        }
        if let Some((lo, hi)) = cfg.clamp {
            next = next.clamp(lo, hi);
        }
        x = next.detach();
        if let Some(every) = cfg.record_every
            && ((k + 1) % every == 0 || k + 1 == cfg.steps)
        {
            trajectory.push((t + cfg.dt, x.clone()));
        }
    }
    if !x.clone().is_finite().all().into_scalar::<bool>() {
        return Err(Error::NonFinite {
            step: cfg.steps as u64,
            what: "Langevin samples (lower dt or add a clamp box)".into(),
        });
    }
    Ok(Samples { x, trajectory })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// V(x) = a/2 |x|^2 in 2-D, so grad V = a x (also used by `loss::flow`'s tests).
    pub(crate) struct Quad(pub(crate) f32);
    impl Potential for Quad {
        fn dim(&self) -> usize {
            2
        }
        fn energy(&self, x: Tensor<2>) -> Tensor<1> {
            x.powi_scalar(2).sum_dim(1).squeeze_dim::<1>(1) * (self.0 / 2.0)
        }
        fn energy_and_grad(&self, x: Tensor<2>) -> (Tensor<1>, Tensor<2>) {
            (self.energy(x.clone()), x * self.0)
        }
    }

    #[test]
    fn seeded_and_recorded() {
        let dev = crate::gradcheck::f64_device();
        let mut cfg = LangevinConfig::new(10, 0.1, Schedule::Constant { eps: 0.5 });
        cfg.record_every = Some(4);
        let x0 = Tensor::<2>::ones([3, 2], &dev);
        let a = sample(&Quad(1.0), &[], x0.clone(), &cfg, 9).unwrap();
        let b = sample(&Quad(1.0), &[], x0, &cfg, 9).unwrap();
        assert_eq!(a.x.into_data(), b.x.into_data());
        let times: Vec<f64> = a.trajectory.iter().map(|(t, _)| *t).collect();
        assert_eq!(times.len(), 3); // after steps 4, 8 and 10
        assert!((times[2] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn zero_temperature_is_gradient_descent_and_clamp_holds() {
        let dev = crate::gradcheck::f64_device();
        let mut cfg = LangevinConfig::new(1, 0.1, Schedule::Constant { eps: 0.0 });
        let x0 = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, -2.0], [1, 2]), &dev);
        let out = sample(&Quad(2.0), &[], x0.clone(), &cfg, 0).unwrap();
        // x - 0.1 * 2x = 0.8 x
        let v = out
            .x
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        assert!((v[0] - 0.8).abs() < 1e-6 && (v[1] + 1.6).abs() < 1e-6);
        cfg.clamp = Some((-1.0, 0.5));
        let w = sample(&Quad(2.0), &[], x0, &cfg, 0).unwrap().x.into_data();
        assert_eq!(
            w.convert::<f32>().try_to_vec::<f32>().unwrap(),
            vec![0.5, -1.0]
        );
        cfg.dt = -1.0;
        let e = sample(&Quad(2.0), &[], Tensor::zeros([1, 2], &dev), &cfg, 0).unwrap_err();
        assert!(e.to_string().contains("langevin.dt"));
    }

    /// Extra term E = c * sum x: shifts the Boltzmann mean of V = |x|^2/2 to -c.
    struct Tilt(f32);
    impl EnergyTerm for Tilt {
        fn name(&self) -> &str {
            "tilt"
        }
        fn energy(&self, x: Tensor<2>, _t: f64, _eps: f64) -> Tensor<1> {
            x.sum_dim(1).squeeze_dim::<1>(1) * self.0
        }
        fn grad(&self, x: Tensor<2>, _t: f64, _eps: f64) -> Tensor<2> {
            x.ones_like() * self.0
        }
    }

    /// With V = |x|^2/2 and constant eps, the Boltzmann density exp(-V/eps) is N(0, eps I).
    /// The Euler-Maruyama chain x' = (1-dt) x + sqrt(2 eps dt) xi has exact stationary
    /// variance 2 eps dt / (1 - (1-dt)^2) = eps / (1 - dt/2): a 0.5% bias at dt = 0.01.
    /// From x0 = 3 after 1000 steps the mean has decayed to 3 * 0.99^1000 ~ 1e-4.
    /// With 4000 chains x 2 dims = 8000 independent draws, the standard error of the mean is
    /// sqrt(eps/8000) ~ 0.0056 and of the variance eps*sqrt(2/8000) ~ 0.0079 (eps = 0.5):
    /// tolerances 0.025 (mean, > 4 s.e.) and 0.04 (variance, 5 s.e. plus the 0.0025 bias).
    #[test]
    fn matches_boltzmann_density_of_a_quadratic() {
        let dev = crate::gradcheck::f64_device();
        let eps = 0.5;
        let cfg = LangevinConfig::new(1000, 0.01, Schedule::Constant { eps });
        let x0 = Tensor::<2>::ones([4000, 2], &dev) * 3.0;
        let check = |terms: &[&dyn EnergyTerm], want_mean: f64| {
            let v = sample(&Quad(1.0), terms, x0.clone(), &cfg, 2024)
                .unwrap()
                .x
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap();
            let n = v.len() as f64;
            let mean = v.iter().map(|&a| f64::from(a)).sum::<f64>() / n;
            let var = v
                .iter()
                .map(|&a| (f64::from(a) - mean).powi(2))
                .sum::<f64>()
                / (n - 1.0);
            assert!(
                (mean - want_mean).abs() < 0.025,
                "mean {mean} want {want_mean}"
            );
            assert!((var - eps).abs() < 0.04, "var {var} want {eps}");
        };
        check(&[], 0.0);
        check(&[&Tilt(0.3)], -0.3);
    }
}
