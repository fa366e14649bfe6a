//! Gibbs-with-Gradients (Grathwohl et al. 2021), the GGS-style discrete sampler: single
//! substitutions proposed from the predictor's one-hot input gradient, accepted by
//! Metropolis-Hastings against `exp(f(x) / T)`. Also gives [`Cnn`] its [`Predictor`] impl.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use super::{Archive, BaselineError, Budget, Design, DesignMethod, Predictor, Rules};
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
    let logits: Vec<f64> = grad
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
    normalised(logits)
}

/// `logits - logsumexp(logits)`.
fn normalised(mut logits: Vec<f64>) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = max + logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
    logits.iter_mut().for_each(|l| *l -= lse);
    logits
}

/// [`proposal_log_probs`] restricted to the moves that keep `x` obeying `rules` (the others
/// `-inf`, the rest renormalised); `None` when no move is left. Without rules, unrestricted.
fn restricted_log_probs(
    x: &[u8],
    grad: &[f32],
    alphabet: usize,
    temperature: f32,
    rules: Option<&Rules>,
) -> Option<Vec<f64>> {
    let lp = proposal_log_probs(x, grad, alphabet, temperature);
    let Some(rules) = rules else {
        return Some(lp);
    };
    let legal = rules.moves(x, alphabet);
    if !legal.iter().any(|&m| m) {
        return None;
    }
    let masked = lp
        .iter()
        .zip(legal)
        .map(|(&l, m)| if m { l } else { f64::NEG_INFINITY })
        .collect();
    Some(normalised(masked))
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
struct Chains<'r> {
    x: Vec<Vec<u8>>,
    f: Vec<f32>,
    /// Per chain, flat `[length, alphabet]`.
    grads: Vec<Vec<f32>>,
    alphabet: usize,
    temperature: f32,
    /// Own-data constraints: proposals keep to them (both directions of the ratio).
    rules: Option<&'r Rules>,
}

impl Chains<'_> {
    /// One Metropolis-Hastings step of the first chains that can move (at most the calls
    /// remaining): propose from `softmax(d / 2T)` over the moves the rules leave, score the
    /// proposals with gradients (recorded in `archive`), accept with
    /// `exp((f(y) - f(x)) / T) q(x | y) / q(y | x)`. Returns whether any chain could move.
    fn step(
        &mut self,
        budget: &mut Budget<'_>,
        rng: &mut StdRng,
        archive: &mut Archive,
    ) -> Result<bool, BaselineError> {
        let (a, temp) = (self.alphabet, self.temperature);
        let mut proposals = Vec::new();
        let mut moves = Vec::new();
        for c in 0..self.x.len() {
            if proposals.len() == budget.remaining() {
                break;
            }
            let Some(lp) = restricted_log_probs(&self.x[c], &self.grads[c], a, temp, self.rules)
            else {
                continue; // no move keeps this chain within the rules
            };
            let k = sample(&lp, rng);
            let mut y = self.x[c].clone();
            y[k / a] = (k % a) as u8;
            proposals.push(y);
            moves.push((c, k / a, lp[k]));
        }
        if proposals.is_empty() {
            return Ok(false);
        }
        let (fy, gy) = budget.gradient(&proposals, NAME)?;
        let per = gy.len() / proposals.len();
        for (j, y) in proposals.into_iter().enumerate() {
            archive.add(&y, fy[j]);
            let gy_c = &gy[j * per..(j + 1) * per];
            let (c, site, forward) = moves[j];
            let back = site * a + self.x[c][site] as usize;
            let reverse = restricted_log_probs(&y, gy_c, a, temp, self.rules)
                .map_or(f64::NEG_INFINITY, |lp| lp[back]);
            let log_accept = (fy[j] - self.f[c]) as f64 / temp as f64 + reverse - forward;
            if rng.random::<f64>().ln() < log_accept {
                self.x[c] = y;
                self.f[c] = fy[j];
                self.grads[c] = gy_c.to_vec();
            }
        }
        Ok(true)
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
        rules: Option<&Rules>,
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
            rules,
        };
        while budget.remaining() > 0 {
            if !chains.step(&mut budget, &mut rng, &mut archive)? {
                break; // no chain can move within the rules
            }
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
            rules: None,
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

    #[test]
    fn restricted_chains_sample_the_boltzmann_distribution_on_the_allowed_states() {
        // wild type (0, 0); site 1 may not take residue 2; at most one mutation: the states
        // (0,0), (1,0), (2,0), (0,1) are left, linked by single substitutions.
        let rules = Rules::from_parts(vec![0, 0], vec![vec![0, 1, 2], vec![0, 1]], Some(1));
        let temperature = 0.5f32;
        let allowed: Vec<Vec<u8>> = vec![vec![0, 0], vec![1, 0], vec![2, 0], vec![0, 1]];
        let energies = Pairwise.score(&allowed);
        let z: f64 = energies.iter().map(|&e| (e as f64 / 0.5).exp()).sum();
        let x = vec![vec![0u8, 0]; 8];
        let (f, g) = Pairwise.gradient(&x).unwrap();
        let mut chains = Chains {
            grads: g.chunks(6).map(<[f32]>::to_vec).collect(),
            x,
            f,
            alphabet: 3,
            temperature,
            rules: Some(&rules),
        };
        let mut budget = Budget::new(&Pairwise, usize::MAX);
        let (mut rng, mut archive) = (StdRng::seed_from_u64(4), Archive::default());
        let mut counts = [0usize; 4];
        for step in 0..20_000 {
            assert!(chains.step(&mut budget, &mut rng, &mut archive).unwrap());
            if step >= 100 {
                for s in &chains.x {
                    let i = allowed
                        .iter()
                        .position(|a| a == s)
                        .expect("an allowed state");
                    counts[i] += 1;
                }
            }
        }
        let n: usize = counts.iter().sum();
        let tv: f64 = (0..4)
            .map(|i| (counts[i] as f64 / n as f64 - (energies[i] as f64 / 0.5).exp() / z).abs())
            .sum::<f64>()
            / 2.0;
        assert!(tv < 0.01, "total variation {tv}: {counts:?}");
    }

    #[test]
    fn every_design_obeys_the_constraints() {
        let c = crate::baselines::rules::tests::constraints();
        let rules = Rules::new(&c);
        let f = crate::baselines::Additive::random(8, 20, 4);
        let start = vec![c.wild_type().indices().to_vec(), vec![5; 8]];
        let method = GibbsWithGradients {
            chains: 8,
            ..GibbsWithGradients::default()
        };
        let d = method.run_within(&start, &f, 300, 2, &rules).unwrap();
        assert!(d.sequences.len() > 10, "{}", d.sequences.len());
        for s in &d.sequences {
            let seq = crate::sequence::Sequence::from_indices(s.clone()).unwrap();
            assert!(c.violations(&seq).is_empty(), "{:?}", c.violations(&seq));
        }
    }
}
