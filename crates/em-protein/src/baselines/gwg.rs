//! Gibbs-with-Gradients (Grathwohl et al. 2021), the GGS-style discrete sampler: single
//! substitutions proposed from the predictor's one-hot input gradient, accepted by
//! Metropolis-Hastings against `exp(f(x) / T)`. Also gives [`Cnn`] its [`Predictor`] impl.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use super::{Archive, BaselineError, Budget, Design, DesignMethod, Predictor};
use crate::cnn::{Cnn, SCORE_CHUNK, one_hot_tensor, tensor_to_vec};
use crate::oracle::GgsCnnOracle;

const NAME: &str = "gwg";

/// The CNN as a differentiable predictor. Panics on sequences shorter than its kernel or
/// with an index >= `n_tokens` (the designers check indices; lengths come from the task).
impl Predictor for Cnn {
    fn alphabet(&self) -> usize {
        self.config().n_tokens
    }

    fn score(&self, seqs: &[Vec<u8>]) -> Vec<f32> {
        match Cnn::score(self, seqs) {
            Ok(s) => s,
            Err(e) => panic!("Cnn predictor on an unchecked sequence: {e}"),
        }
    }

    /// Via [`Cnn::input_gradient`] in chunks of [`SCORE_CHUNK`] equal-length sequences.
    fn gradient(&self, seqs: &[Vec<u8>]) -> Option<(Vec<f32>, Vec<f32>)> {
        let device = self.encoder.weight.val().device();
        let (mut scores, mut grads) = (Vec::new(), Vec::new());
        for chunk in seqs.chunks(SCORE_CHUNK) {
            let x = one_hot_tensor(chunk, chunk[0].len(), &device);
            let (f, g) = self.input_gradient(x);
            scores.extend(tensor_to_vec(f));
            grads.extend(tensor_to_vec(g));
        }
        Some((scores, grads))
    }
}

/// The GGS oracle CNN, differentiable like [`Cnn`] (for tests and upper-bound runs only:
/// designers should query a predictor, not the oracle).
impl Predictor for GgsCnnOracle {
    fn alphabet(&self) -> usize {
        Predictor::alphabet(self.cnn())
    }

    fn score(&self, seqs: &[Vec<u8>]) -> Vec<f32> {
        Predictor::score(self.cnn(), seqs)
    }

    fn gradient(&self, seqs: &[Vec<u8>]) -> Option<(Vec<f32>, Vec<f32>)> {
        Predictor::gradient(self.cnn(), seqs)
    }
}

/// Gibbs-with-Gradients chains on `p(x) ~ exp(f(x) / T)`. Needs a predictor with
/// [`Predictor::gradient`]; on an Ehrlich function (a black box) use a CNN fitted to it.
#[derive(Debug, Clone, PartialEq)]
pub struct GibbsWithGradients {
    /// Temperature `T` of the target and of the proposal `softmax(d / 2T)`. Default 0.1
    /// (on the scale of the raw GGS CNN scores).
    pub temperature: f32,
    /// Parallel chains, started from a seeded shuffle of the start population (cycled if it
    /// is smaller). Default 64.
    pub chains: usize,
}

impl Default for GibbsWithGradients {
    fn default() -> Self {
        Self {
            temperature: 0.1,
            chains: 64,
        }
    }
}

/// Proposal log-probabilities `log softmax(d / 2T)` over all single substitutions of `x`,
/// `d(i, a) = g[i, a] - g[i, x_i]`, flat `[length, alphabet]` with `-inf` at `a = x_i`.
///
/// ```
/// use em_protein::baselines::gwg::proposal_log_probs;
/// let lp = proposal_log_probs(&[0], &[0.0, 1.0, 1.0], 3, 0.5);
/// assert_eq!(lp[0], f64::NEG_INFINITY);
/// assert!((lp[1].exp() - 0.5).abs() < 1e-12);
/// ```
pub fn proposal_log_probs(x: &[u8], grad: &[f32], alphabet: usize, temperature: f32) -> Vec<f64> {
    let scale = 1.0 / (2.0 * temperature as f64);
    let mut logits: Vec<f64> = grad
        .chunks(alphabet)
        .zip(x)
        .flat_map(|(row, &xi)| {
            row.iter().enumerate().map(move |(a, &g)| {
                if a == xi as usize {
                    f64::NEG_INFINITY
                } else {
                    (g as f64 - row[xi as usize] as f64) * scale
                }
            })
        })
        .collect();
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = max + logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
    logits.iter_mut().for_each(|l| *l -= lse);
    logits
}

/// An index drawn from log-probabilities.
fn sample(log_probs: &[f64], rng: &mut StdRng) -> usize {
    let mut u = rng.random::<f64>();
    let mut last = 0;
    for (i, &lp) in log_probs.iter().enumerate() {
        if lp > f64::NEG_INFINITY {
            last = i;
            let p = lp.exp();
            if u < p {
                return i;
            }
            u -= p;
        }
    }
    last
}

/// The chains' states, predicted scores and input gradients.
struct Chains {
    x: Vec<Vec<u8>>,
    f: Vec<f32>,
    /// Per chain, flat `[length, alphabet]`.
    grads: Vec<Vec<f32>>,
    alphabet: usize,
    temperature: f32,
}

impl Chains {
    /// One Metropolis-Hastings step of the first `min(chains, remaining)` chains: propose
    /// from `softmax(d / 2T)`, score the proposals with gradients (recorded in `archive`),
    /// accept with `exp((f(y) - f(x)) / T) q(x | y) / q(y | x)`.
    fn step(
        &mut self,
        budget: &mut Budget<'_>,
        rng: &mut StdRng,
        archive: &mut Archive,
    ) -> Result<(), BaselineError> {
        let (a, temp) = (self.alphabet, self.temperature);
        let active = self.x.len().min(budget.remaining());
        let mut proposals = Vec::with_capacity(active);
        let mut moves = Vec::with_capacity(active);
        for c in 0..active {
            let lp = proposal_log_probs(&self.x[c], &self.grads[c], a, temp);
            let k = sample(&lp, rng);
            let mut y = self.x[c].clone();
            y[k / a] = (k % a) as u8;
            proposals.push(y);
            moves.push((k / a, lp[k]));
        }
        let (fy, gy) = budget.gradient(&proposals, NAME)?;
        let per = gy.len() / active.max(1);
        for (c, y) in proposals.into_iter().enumerate() {
            archive.add(&y, fy[c]);
            let gy_c = &gy[c * per..(c + 1) * per];
            let (site, forward) = moves[c];
            let back = site * a + self.x[c][site] as usize;
            let reverse = proposal_log_probs(&y, gy_c, a, temp)[back];
            let log_accept = (fy[c] - self.f[c]) as f64 / temp as f64 + reverse - forward;
            if rng.random::<f64>().ln() < log_accept {
                self.x[c] = y;
                self.f[c] = fy[c];
                self.grads[c] = gy_c.to_vec();
            }
        }
        Ok(())
    }
}

impl DesignMethod for GibbsWithGradients {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check_config(&self) -> Result<(), BaselineError> {
        if self.temperature.is_nan() || self.temperature <= 0.0 || self.chains == 0 {
            return Err(BaselineError::InvalidConfig {
                method: NAME,
                field: if self.chains == 0 {
                    "chains"
                } else {
                    "temperature"
                },
                value: format!("{} / {}", self.temperature, self.chains),
                why: "temperature must be > 0 and chains >= 1",
            });
        }
        Ok(())
    }

    /// Scores the chains' starts with gradients (`chains` calls; error if the budget is
    /// smaller), then steps all chains together, one call per proposal, until the budget
    /// is spent (the last step moves only as many chains as calls remain).
    fn search(
        &self,
        start: &[Vec<u8>],
        predictor: &dyn Predictor,
        budget: usize,
        seed: u64,
        length: usize,
    ) -> Result<Design, BaselineError> {
        let alphabet = predictor.alphabet();
        if alphabet < 2 || length == 0 {
            return Ok(Archive::excluding(start).finish(0));
        }
        if budget < self.chains {
            return Err(BaselineError::BudgetTooSmall {
                method: NAME,
                budget,
                needed: self.chains,
            });
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut order: Vec<usize> = (0..start.len()).collect();
        order.shuffle(&mut rng);
        let x: Vec<Vec<u8>> = (0..self.chains)
            .map(|c| start[order[c % order.len()]].clone())
            .collect();
        let mut budget = Budget::new(predictor, budget);
        let mut archive = Archive::excluding(start);
        let (f, g) = budget.gradient(&x, NAME)?;
        let per = length * alphabet;
        let mut chains = Chains {
            grads: g.chunks(per).map(<[f32]>::to_vec).collect(),
            x,
            f,
            alphabet,
            temperature: self.temperature,
        };
        while budget.remaining() > 0 {
            chains.step(&mut budget, &mut rng, &mut archive)?;
        }
        Ok(archive.finish(budget.used()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;
    use burn::tensor::TensorData;

    #[test]
    fn proposal_is_a_distribution_without_the_current_residue() {
        let x = vec![0u8, 2];
        let grad = vec![0.1f32, -0.3, 0.5, 0.0, 1.0, 0.2];
        let lp = proposal_log_probs(&x, &grad, 3, 0.5);
        let total: f64 = lp.iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert_eq!((lp[0], lp[5]), (f64::NEG_INFINITY, f64::NEG_INFINITY));
        // d(0, 2) = 0.4 and d(1, 1) = 0.8: log ratio (0.8 - 0.4) / (2 * 0.5)
        assert!(((lp[4] - lp[2]) - 0.4).abs() < 1e-6);
    }

    #[test]
    fn sampler_matches_the_proposal() {
        let lp: Vec<f64> = [0.2f64, 0.0, 0.5, 0.3].iter().map(|p| p.ln()).collect();
        let mut rng = StdRng::seed_from_u64(0);
        let mut counts = [0usize; 4];
        for _ in 0..20_000 {
            counts[sample(&lp, &mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!(
            (counts[2] as f64 / 20_000.0 - 0.5).abs() < 0.02,
            "{counts:?}"
        );
    }

    #[test]
    fn cnn_gradient_matches_finite_differences() {
        let device = Device::flex();
        let cnn = crate::cnn::CnnConfig::new()
            .with_kernel_size(3)
            .with_channels(4)
            .with_embedding(6)
            .init(2, &device);
        let x = vec![vec![1u8, 5, 9, 0, 3]];
        let (f, g) = Predictor::gradient(&cnn, &x).unwrap();
        assert_eq!((f.len(), g.len()), (1, 5 * 20));
        assert!((f[0] - Predictor::score(&cnn, &x)[0]).abs() < 1e-5);
        // central differences on the relaxed one-hot input (the net is piecewise linear)
        let base = crate::alphabet::one_hot(&x, 5);
        let at = |v: Vec<f32>| {
            let t = Tensor::<3>::from_data(TensorData::new(v, [1, 5, 20]), &device);
            tensor_to_vec(cnn.forward(t))[0]
        };
        let h = 1e-2;
        for idx in [25, 27, 4 * 20 + 19, 2 * 20] {
            let (mut plus, mut minus) = (base.clone(), base.clone());
            plus[idx] += h;
            minus[idx] -= h;
            let fd = (at(plus) - at(minus)) / (2.0 * h);
            assert!(
                (fd - g[idx]).abs() < 1e-3,
                "entry {idx}: fd {fd} vs grad {}",
                g[idx]
            );
        }
    }

    /// A two-site, three-letter model with a pairwise term its "gradient" ignores: the
    /// proposal is then only approximate, so MH must correct it to `exp(f / T)`.
    struct Pairwise;

    const UNARY: [f32; 6] = [0.3, -0.2, 0.0, 0.1, 0.4, -0.5];
    const PAIR: [f32; 9] = [0.5, -0.4, 0.0, 0.2, 0.0, -0.3, -0.1, 0.6, 0.0];

    impl Predictor for Pairwise {
        fn alphabet(&self) -> usize {
            3
        }
        fn score(&self, seqs: &[Vec<u8>]) -> Vec<f32> {
            seqs.iter()
                .map(|s| {
                    let (a, b) = (s[0] as usize, s[1] as usize);
                    UNARY[a] + UNARY[3 + b] + PAIR[a * 3 + b]
                })
                .collect()
        }
        fn gradient(&self, seqs: &[Vec<u8>]) -> Option<(Vec<f32>, Vec<f32>)> {
            let g = seqs.iter().flat_map(|_| UNARY).collect();
            Some((self.score(seqs), g))
        }
    }

    #[test]
    fn chains_sample_the_boltzmann_distribution() {
        let temperature = 0.5f32;
        let all: Vec<Vec<u8>> = (0..9u8).map(|i| vec![i / 3, i % 3]).collect();
        let energies = Pairwise.score(&all);
        let z: f64 = energies.iter().map(|&e| (e as f64 / 0.5).exp()).sum();
        let x = vec![vec![0u8, 0]; 8];
        let (f, g) = Pairwise.gradient(&x).unwrap();
        let mut chains = Chains {
            grads: g.chunks(6).map(<[f32]>::to_vec).collect(),
            x,
            f,
            alphabet: 3,
            temperature,
        };
        let mut budget = Budget::new(&Pairwise, usize::MAX);
        let (mut rng, mut archive) = (StdRng::seed_from_u64(4), Archive::default());
        let mut counts = [0usize; 9];
        for step in 0..20_000 {
            chains.step(&mut budget, &mut rng, &mut archive).unwrap();
            if step >= 100 {
                for s in &chains.x {
                    counts[(s[0] * 3 + s[1]) as usize] += 1;
                }
            }
        }
        let n: usize = counts.iter().sum();
        let tv: f64 = (0..9)
            .map(|i| (counts[i] as f64 / n as f64 - (energies[i] as f64 / 0.5).exp() / z).abs())
            .sum::<f64>()
            / 2.0;
        // measured: TV 0.0049 (seed 4); dropping the q(x|y) / q(y|x) factor gives 0.081
        assert!(tv < 0.01, "total variation {tv}: {counts:?}");
    }
}
