//! Energy Matching main-phase contrastive term: push V down on data and up on detached
//! Langevin negatives, `max(lambda_cd * (mean V(data) - mean V(neg)), -clamp)`.

use burn::prelude::*;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

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

/// Where the negative chains start and which temperature they follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NegativeInit {
    /// Every chain starts at a data row; half run at constant `eps_max`, half on the ramp
    /// eps(t) (zero until `tau_star`, then rising to `eps_max` at t = 1). The official protein
    /// recipe: `experiments/proteins/train_proteins.py` (`x_init=x1`, `at_data_mask` on a
    /// random half) with `sde_epsilon` in `utils_train_proteins.py` (m1balcerak/EnergyMatching).
    #[default]
    Data,
    /// Half the chains start at data rows, half at fresh N(0, I) noise, all on the one ramp
    /// eps(t): the official CIFAR-10 trainer with `split_negative` and its default
    /// `same_temperature_scheduler = True` (`experiments/cifar10/train_cifar_multigpu.py`).
    DataNoise,
}

/// Settings of the negative chains (from the checked training config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NegativeChains {
    /// Where chains start and which temperatures they follow.
    pub init: NegativeInit,
    /// Langevin steps per chain.
    pub steps: usize,
    /// Langevin step size.
    pub dt: f64,
    /// Temperature of constant-temperature chains, and the ramp's final temperature.
    pub eps_max: f64,
    /// Start time of the ramp.
    pub tau_star: f64,
}

impl NegativeChains {
    /// The ramp schedule eps(t) of the chains that follow it.
    pub fn ramp(&self) -> Schedule {
        Schedule::Ramp {
            tau_star: self.tau_star,
            eps_max: self.eps_max,
        }
    }
}

/// Detached negatives from the `B` rows of `data` (chain time t runs from 0 in steps of
/// `dt`, as the official sampler's `t_val = i * dt`):
/// - [`NegativeInit::Data`]: rows `0..B/2` from `data` at constant `eps_max`, the rest from
///   `data` on the ramp;
/// - [`NegativeInit::DataNoise`]: rows `0..B/2` from `data`, the rest from fresh noise, all
///   on the ramp.
///
/// Which rows take which role does not matter: the minibatch is drawn at random. `potential`
/// should live on a non-autodiff device (`model.valid()`); the result is created on
/// `out_device` as a constant (no graph).
pub fn negatives<P: Potential + ?Sized>(
    potential: &P,
    data: Tensor<2>,
    chains: &NegativeChains,
    rng: &mut StdRng,
    out_device: &Device,
) -> Result<Tensor<2>> {
    let [b, d] = data.dims();
    let half = b / 2;
    let seed_first = rand::RngExt::random::<u64>(rng);
    let seed_second = rand::RngExt::random::<u64>(rng);
    let no_terms: &[&dyn EnergyTerm] = &[];
    let (first_schedule, second_start) = match chains.init {
        NegativeInit::Data => (
            Schedule::Constant {
                eps: chains.eps_max,
            },
            data.clone().slice([half..b, 0..d]),
        ),
        NegativeInit::DataNoise => (chains.ramp(), host_normal(b - half, d, rng, &data.device())),
    };
    let mut parts = Vec::with_capacity(2);
    if half > 0 {
        let cfg = LangevinConfig::new(chains.steps, chains.dt, first_schedule);
        let x0 = data.clone().slice([0..half, 0..d]);
        parts.push(langevin::sample(potential, no_terms, x0, &cfg, seed_first)?.x);
    }
    if b - half > 0 {
        let cfg = LangevinConfig::new(chains.steps, chains.dt, chains.ramp());
        parts.push(langevin::sample(potential, no_terms, second_start, &cfg, seed_second)?.x);
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

    fn chains(init: NegativeInit, steps: usize) -> NegativeChains {
        NegativeChains {
            init,
            steps,
            dt: 0.01,
            eps_max: 0.1,
            tau_star: 0.9,
        }
    }

    fn rows(t: Tensor<2>) -> Vec<Vec<f32>> {
        let [_, d] = t.dims();
        let v = t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        v.chunks(d).map(<[f32]>::to_vec).collect()
    }

    #[test]
    fn negatives_are_seeded_and_shaped() {
        let dev = crate::gradcheck::f64_device();
        let data = Tensor::<2>::zeros([5, 2], &dev);
        for init in [NegativeInit::Data, NegativeInit::DataNoise] {
            let ch = chains(init, 10);
            let a =
                negatives(&Lin, data.clone(), &ch, &mut StdRng::seed_from_u64(4), &dev).unwrap();
            let b =
                negatives(&Lin, data.clone(), &ch, &mut StdRng::seed_from_u64(4), &dev).unwrap();
            assert_eq!(a.dims(), [5, 2]);
            assert_eq!(a.into_data(), b.into_data());
        }
    }

    /// On V = sum_j x_j (gradient 1 everywhere) a chain from x0 ends at
    /// `x0 - steps * dt + noise`; with 50 steps of 0.01 and tau* 0.9 the ramp chains never
    /// heat (t <= 0.49), so under `Data` they end at exactly `x0 - 0.5` and under `DataNoise`
    /// the noise-started ones keep their N(0, 1) spread while the data-started ones are exact.
    #[test]
    fn chains_start_where_the_recipe_says() {
        let dev = crate::gradcheck::f64_device();
        let data = Tensor::<2>::from_data(
            TensorData::new((0..8).map(|v| v as f32).collect::<Vec<_>>(), [4, 2]),
            &dev,
        );
        let want: Vec<Vec<f32>> = rows(data.clone())
            .into_iter()
            .map(|r| r.into_iter().map(|v| v - 0.5).collect())
            .collect();
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4);
        let got = rows(
            negatives(
                &Lin,
                data.clone(),
                &chains(NegativeInit::Data, 50),
                &mut StdRng::seed_from_u64(1),
                &dev,
            )
            .unwrap(),
        );
        // rows 0-1: constant eps_max 0.1 -> noisy; rows 2-3: ramp, still cold -> exact
        assert!(
            !close(&got[0], &want[0]) && !close(&got[1], &want[1]),
            "{got:?}"
        );
        assert!(
            close(&got[2], &want[2]) && close(&got[3], &want[3]),
            "{got:?}"
        );
        let got = rows(
            negatives(
                &Lin,
                data,
                &chains(NegativeInit::DataNoise, 50),
                &mut StdRng::seed_from_u64(1),
                &dev,
            )
            .unwrap(),
        );
        // rows 0-1: from data on the cold ramp -> exact; rows 2-3: from noise, far from data
        assert!(
            close(&got[0], &want[0]) && close(&got[1], &want[1]),
            "{got:?}"
        );
        assert!(
            !close(&got[2], &want[2]) && !close(&got[3], &want[3]),
            "{got:?}"
        );
    }
}
