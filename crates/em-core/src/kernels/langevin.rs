//! Langevin dynamics on host f32 buffers around a fused [`HostPotential`]: the same update,
//! noise stream and clamp as [`crate::langevin::sample`], without tensor round trips for V.

use burn::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

use super::{HostPotential, host_values};
use crate::energy::EnergyTerm;
use crate::error::{Error, Result};
use crate::langevin::{LangevinConfig, Samples};

/// Runs `cfg.steps` steps from `x0` (config already checked by the caller). Extra terms are
/// evaluated through tensors on `x0`'s device; the noise is drawn row-major from
/// `StdRng::seed_from_u64(seed)` exactly as the tensor path draws it.
pub fn sample(
    kernel: &dyn HostPotential,
    extra_terms: &[&dyn EnergyTerm],
    x0: Tensor<2>,
    cfg: &LangevinConfig,
    seed: u64,
) -> Result<Samples> {
    let [b, d] = x0.dims();
    let device = x0.device();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x = host_values(x0);
    let mut g = vec![0.0f32; b * d];
    let mut energy = vec![0.0f32; b];
    let mut noise = vec![0.0f32; b * d];
    let to_tensor =
        |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [b, d]), &device);
    let mut trajectory = Vec::new();
    let dt = cfg.dt as f32;
    for k in 0..cfg.steps {
        let t = cfg.t0 + k as f64 * cfg.dt;
        let eps = cfg.schedule.eps(t);
        // The noise does not depend on x: draw it (same stream, same order) on another core
        // while the gradient runs, so the serial RNG is no longer a serial section.
        let noise_scale = (2.0 * eps * cfg.dt).sqrt();
        let draw = noise_scale > 0.0;
        rayon::join(
            || kernel.energy_and_grad(&x, &mut energy, &mut g),
            || {
                if draw {
                    noise
                        .iter_mut()
                        .for_each(|v| *v = rng.sample::<f32, _>(StandardNormal));
                }
            },
        );
        if !extra_terms.is_empty() {
            let xt = to_tensor(&x);
            for term in extra_terms {
                let gt = host_values(term.grad(xt.clone(), t, eps));
                g.iter_mut().zip(&gt).for_each(|(a, &e)| *a += e);
            }
        }
        x.iter_mut().zip(&g).for_each(|(xv, &gv)| *xv -= gv * dt);
        if draw {
            let s = noise_scale as f32;
            x.iter_mut().zip(&noise).for_each(|(xv, &n)| *xv += n * s);
        }
        if let Some((lo, hi)) = cfg.clamp {
            let (lo, hi) = (lo as f32, hi as f32);
            x.iter_mut().for_each(|v| *v = v.clamp(lo, hi));
        }
        if let Some(every) = cfg.record_every
            && ((k + 1) % every == 0 || k + 1 == cfg.steps)
        {
            trajectory.push((t + cfg.dt, to_tensor(&x)));
        }
    }
    if !x.iter().all(|v| v.is_finite()) {
        return Err(Error::NonFinite {
            step: cfg.steps as u64,
            what: "Langevin samples (lower dt or add a clamp box)".into(),
        });
    }
    Ok(Samples {
        x: to_tensor(&x),
        trajectory,
    })
}
