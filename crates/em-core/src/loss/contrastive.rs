//! Energy Matching main-phase contrastive term: push V down on data and up on detached
//! Langevin negatives, `max(lambda_cd * (mean V(data) - mean V(neg)), -clamp)`.

use burn::prelude::*;
use rand::rngs::StdRng;

use crate::energy::EnergyTerm;
use crate::error::Result;
use crate::langevin::{self, LangevinConfig};
use crate::loss::flow::host_normal;
use crate::potential::Potential;
use crate::schedule::Schedule;

/// The contrastive term as a one-element tensor:
/// `max(lambda_cd * (mean_b V(data_b) - mean_b V(neg_b)), -clamp)`.
///
/// The clamp bounds how far the term may go below zero (the model cannot win by pushing
/// negatives' energy up without limit); once clamped the term is the constant `-clamp` and
/// contributes no gradient. `negatives` must be detached (see [`negatives`]).
pub fn cd_loss<P: Potential + ?Sized>(
    potential: &P,
    data: Tensor<2>,
    negatives: Tensor<2>,
    lambda_cd: f64,
    clamp: f64,
) -> Tensor<1> {
    let pos = potential.energy(data).mean();
    let neg = potential.energy(negatives).mean();
    ((pos - neg) * lambda_cd).clamp_min(-clamp)
}

/// Settings of the negative chains (from the checked training config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NegativeChains {
    /// Langevin steps per chain.
    pub steps: usize,
    /// Langevin step size.
    pub dt: f64,
    /// Temperature of chains started at data, and the ramp's final temperature.
    pub eps_max: f64,
    /// Ramp start time of chains started at noise.
    pub tau_star: f64,
}

/// Detached negatives: the first `data.rows / 2` rows run from `data` at constant `eps_max`,
/// the rest from fresh noise under the ramp schedule eps(t) (t from 0 in steps of `dt`).
///
/// `potential` should live on a non-autodiff device (`model.valid()`); the result is created
/// on `out_device` as a constant (no graph).
pub fn negatives<P: Potential + ?Sized>(
    potential: &P,
    data: Tensor<2>,
    chains: &NegativeChains,
    rng: &mut StdRng,
    out_device: &Device,
) -> Result<Tensor<2>> {
    let [b, d] = data.dims();
    let half = b / 2;
    let seed_data = rand::RngExt::random::<u64>(rng);
    let seed_noise = rand::RngExt::random::<u64>(rng);
    let no_terms: &[&dyn EnergyTerm] = &[];
    let mut parts = Vec::with_capacity(2);
    if half > 0 {
        let cfg = LangevinConfig::new(
            chains.steps,
            chains.dt,
            Schedule::Constant {
                eps: chains.eps_max,
            },
        );
        let x0 = data.clone().slice([0..half, 0..d]);
        parts.push(langevin::sample(potential, no_terms, x0, &cfg, seed_data)?.x);
    }
    if b - half > 0 {
        let cfg = LangevinConfig::new(
            chains.steps,
            chains.dt,
            Schedule::Ramp {
                tau_star: chains.tau_star,
                eps_max: chains.eps_max,
            },
        );
        let x0 = host_normal(b - half, d, rng, &data.device());
        parts.push(langevin::sample(potential, no_terms, x0, &cfg, seed_noise)?.x);
    }
    let neg = Tensor::cat(parts, 0);
    Ok(Tensor::from_data(neg.into_data(), out_device))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// V(x) = sum_j x_j (linear), so V(data) and V(neg) are easy by hand.
    struct Lin;
    impl Potential for Lin {
        fn dim(&self) -> usize {
            2
        }
        fn energy(&self, x: Tensor<2>) -> Tensor<1> {
            x.sum_dim(1).squeeze_dim::<1>(1)
        }
        fn energy_and_grad(&self, x: Tensor<2>) -> (Tensor<1>, Tensor<2>) {
            (self.energy(x.clone()), x.ones_like())
        }
    }

    #[test]
    fn hand_computed_and_clamped() {
        let dev = crate::gradcheck::f64_device();
        let t = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [2, 2]), &dev);
        // mean V(data) = (3 + 7) / 2 = 5; mean V(neg) = (1 + 1) / 2 = 1; lambda 0.5 -> 2.0
        let l = cd_loss(
            &Lin,
            t(vec![1., 2., 3., 4.]),
            t(vec![0., 1., 1., 0.]),
            0.5,
            1.0,
        );
        assert!((l.into_scalar::<f32>() - 2.0).abs() < 1e-6);
        // reversed: 0.5 * (1 - 5) = -2, clamped to -1
        let l = cd_loss(
            &Lin,
            t(vec![0., 1., 1., 0.]),
            t(vec![1., 2., 3., 4.]),
            0.5,
            1.0,
        );
        assert!((l.into_scalar::<f32>() + 1.0).abs() < 1e-6);
    }

    #[test]
    fn negatives_are_seeded_and_shaped() {
        let dev = crate::gradcheck::f64_device();
        let data = Tensor::<2>::zeros([5, 2], &dev);
        let ch = NegativeChains {
            steps: 10,
            dt: 0.01,
            eps_max: 0.1,
            tau_star: 0.5,
        };
        let a = negatives(&Lin, data.clone(), &ch, &mut StdRng::seed_from_u64(4), &dev).unwrap();
        let b = negatives(&Lin, data, &ch, &mut StdRng::seed_from_u64(4), &dev).unwrap();
        assert_eq!(a.dims(), [5, 2]);
        assert_eq!(a.into_data(), b.into_data());
    }
}
