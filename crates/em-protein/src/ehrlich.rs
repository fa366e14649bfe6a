//! Ehrlich functions (Stanton et al. 2024, "Closed-Form Test Functions for Biophysical
//! Sequence Design"): seeded closed-form fitness landscapes with a feasibility structure,
//! spaced motifs and a known optimum of 1.0, so designers can be benchmarked with no data.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::alphabet::ALPHABET_SIZE;
use crate::oracle::Oracle;

/// Attempts at drawing an irreducible transition matrix or a motif path before giving up.
const MAX_TRIES: usize = 1000;

/// The parameters of an Ehrlich function; [`Ehrlich::generate`] checks them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EhrlichConfig {
    /// Alphabet size `v` (2..=20; the first `v` residues of [`crate::alphabet`]).
    pub vocab: usize,
    /// Sequence length `L`; needs `L >= 2 * motifs * motif_length`.
    pub length: usize,
    /// Number of motifs `c`; needs `motifs * motif_length <= vocab` (motifs share no element).
    pub motifs: usize,
    /// Elements per motif `k`.
    pub motif_length: usize,
    /// Quantisation `q` of each motif's satisfied fraction (1..=motif_length).
    pub quantization: usize,
    /// Seed of the generator: same seed, same function.
    pub seed: u64,
}

impl Default for EhrlichConfig {
    /// 20 residues, `L = 32`, `c = 2` motifs of `k = 4`, `q = 4`, seed 0.
    fn default() -> Self {
        Self {
            vocab: ALPHABET_SIZE,
            length: 32,
            motifs: 2,
            motif_length: 4,
            quantization: 4,
            seed: 0,
        }
    }
}

/// A configuration [`Ehrlich::generate`] cannot build, naming the field and value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EhrlichError {
    /// A field is out of range.
    #[error("ehrlich config: `{field}` = {value}: {why}")]
    InvalidConfig {
        /// The field name.
        field: &'static str,
        /// Its value.
        value: usize,
        /// The rule it breaks.
        why: &'static str,
    },
    /// No ergodic transition matrix or motif path was found (tiny vocabularies).
    #[error("ehrlich seed {seed}: no {what} found in {MAX_TRIES} draws")]
    Generation {
        /// The seed.
        seed: u64,
        /// What could not be drawn.
        what: &'static str,
    },
}

/// A generated Ehrlich function: a discrete Markov process (DMP) whose banned transitions
/// define feasibility, and `c` spaced motifs. `f(x) = prod_i q(h_i(x))` for feasible `x`
/// and 0 otherwise, where `h_i` is the largest fraction of motif `i` present with its
/// spacing at any position and `q(h) = floor(h * q) / q`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ehrlich {
    config: EhrlichConfig,
    /// Row-stochastic `[v][v]`; a zero entry is a banned transition.
    transition: Vec<Vec<f64>>,
    motifs: Vec<Vec<u8>>,
    /// Per motif, the offset of each element from the first (starts with 0, increasing).
    offsets: Vec<Vec<usize>>,
}

impl Ehrlich {
    /// Draw the function of `config` (checked first). Like holo-bench: a banded mask of
    /// bandwidth `0.4 v`, rows shuffled, diagonal kept, over a softmax(N(0,1)/0.5) matrix;
    /// the motifs are one feasible DMP path of `c * k` distinct states cut into `c` pieces,
    /// so a sequence reaching 1.0 exists ([`Ehrlich::optimal_solution`]); gaps are uniform
    /// in `1..=(L - c k) / (c k)`.
    ///
    /// ```
    /// use em_protein::ehrlich::{Ehrlich, EhrlichConfig};
    /// let f = Ehrlich::generate(EhrlichConfig::default()).unwrap();
    /// assert_eq!(f.evaluate(&f.optimal_solution()), 1.0);
    /// ```
    pub fn generate(config: EhrlichConfig) -> Result<Self, EhrlichError> {
        check(&config)?;
        let mut rng = StdRng::seed_from_u64(config.seed);
        let transition = (0..MAX_TRIES)
            .map(|_| sample_transition(config.vocab, &mut rng))
            .find(|t| irreducible(t))
            .ok_or(EhrlichError::Generation {
                seed: config.seed,
                what: "irreducible transition matrix",
            })?;
        let (c, k) = (config.motifs, config.motif_length);
        let path = (0..MAX_TRIES)
            .find_map(|_| distinct_path(&transition, c * k, &mut rng))
            .ok_or(EhrlichError::Generation {
                seed: config.seed,
                what: "feasible motif path of distinct states",
            })?;
        let motifs: Vec<Vec<u8>> = path.chunks(k).map(<[u8]>::to_vec).collect();
        let max_gap = (config.length - c * k) / (c * k);
        let offsets = (0..c)
            .map(|_| {
                let mut at = 0;
                let mut offs = vec![0];
                for _ in 1..k {
                    at += rng.random_range(1..=max_gap);
                    offs.push(at);
                }
                offs
            })
            .collect();
        Ok(Self {
            config,
            transition,
            motifs,
            offsets,
        })
    }

    /// The configuration this function was generated from.
    pub fn config(&self) -> &EhrlichConfig {
        &self.config
    }

    /// The motifs, `c` vectors of `k` residue indices.
    pub fn motifs(&self) -> &[Vec<u8>] {
        &self.motifs
    }

    /// Per motif, each element's offset from the motif's first position (first is 0).
    pub fn offsets(&self) -> &[Vec<usize>] {
        &self.offsets
    }

    /// The DMP transition matrix, rows summing to 1; zero entries are banned transitions.
    pub fn transition(&self) -> &[Vec<f64>] {
        &self.transition
    }

    /// Whether `seq` has nonzero probability under the DMP: right length, every index below
    /// `vocab`, no banned transition (the initial distribution is uniform).
    pub fn is_feasible(&self, seq: &[u8]) -> bool {
        seq.len() == self.config.length
            && seq.iter().all(|&s| (s as usize) < self.config.vocab)
            && seq
                .windows(2)
                .all(|w| self.transition[w[0] as usize][w[1] as usize] > 0.0)
    }

    /// Per motif, the quantised fraction `q(h_i)` present in `seq` (ignores feasibility;
    /// 0 for a sequence of the wrong length).
    ///
    /// ```
    /// use em_protein::ehrlich::{Ehrlich, EhrlichConfig};
    /// let f = Ehrlich::generate(EhrlichConfig::default()).unwrap();
    /// assert_eq!(f.motif_presence(&f.optimal_solution()), vec![1.0, 1.0]);
    /// ```
    pub fn motif_presence(&self, seq: &[u8]) -> Vec<f64> {
        let (k, q) = (self.config.motif_length, self.config.quantization);
        self.motifs
            .iter()
            .zip(&self.offsets)
            .map(|(motif, offs)| {
                let span = offs[k - 1];
                if seq.len() != self.config.length || span >= seq.len() {
                    return 0.0;
                }
                let best = (0..seq.len() - span)
                    .map(|s| {
                        motif
                            .iter()
                            .zip(offs)
                            .filter(|&(&m, &o)| seq[s + o] == m)
                            .count()
                    })
                    .max()
                    .unwrap_or(0);
                (best * q / k) as f64 / q as f64
            })
            .collect()
    }

    /// `f(seq)` in `[0, 1]`: the product of [`Ehrlich::motif_presence`] when feasible, else 0.
    /// Never panics: a wrong length or an index outside the vocabulary is infeasible.
    ///
    /// ```
    /// use em_protein::ehrlich::{Ehrlich, EhrlichConfig};
    /// let f = Ehrlich::generate(EhrlichConfig { seed: 3, ..Default::default() }).unwrap();
    /// assert_eq!(f.evaluate(&[0u8; 5]), 0.0); // wrong length
    /// ```
    pub fn evaluate(&self, seq: &[u8]) -> f64 {
        if !self.is_feasible(seq) {
            return 0.0;
        }
        self.motif_presence(seq).iter().product()
    }

    /// A sequence scoring 1.0: each motif written with its gaps filled by repeats of the
    /// previous element (self-transitions are always allowed), motifs back to back (the
    /// motif path is feasible), the tail filled with the last state.
    pub fn optimal_solution(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.config.length);
        for (motif, offs) in self.motifs.iter().zip(&self.offsets) {
            for (j, &m) in motif.iter().enumerate() {
                let run = offs.get(j + 1).map_or(1, |next| next - offs[j]);
                out.extend(std::iter::repeat_n(m, run));
            }
        }
        let last = out.last().copied().unwrap_or(0);
        out.resize(self.config.length, last);
        out
    }

    /// `n` feasible sequences drawn from the DMP (uniform first state), a typical starting
    /// population; same `seed`, same samples.
    ///
    /// ```
    /// use em_protein::ehrlich::{Ehrlich, EhrlichConfig};
    /// let f = Ehrlich::generate(EhrlichConfig::default()).unwrap();
    /// let start = f.sample_feasible(8, 1);
    /// assert!(start.iter().all(|x| f.is_feasible(x)));
    /// assert_eq!(start, f.sample_feasible(8, 1));
    /// ```
    pub fn sample_feasible(&self, n: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut rng = StdRng::seed_from_u64(seed);
        let v = self.config.vocab;
        (0..n)
            .map(|_| {
                let mut seq = vec![rng.random_range(0..v) as u8];
                while seq.len() < self.config.length {
                    let prev = seq[seq.len() - 1] as usize;
                    seq.push(categorical(&self.transition[prev], &mut rng) as u8);
                }
                seq
            })
            .collect()
    }
}

impl Oracle for Ehrlich {
    /// [`Ehrlich::evaluate`] as `f32`; never panics.
    fn score(&self, seqs: &[Vec<u8>]) -> Vec<f32> {
        seqs.iter().map(|s| self.evaluate(s) as f32).collect()
    }
}

fn check(c: &EhrlichConfig) -> Result<(), EhrlichError> {
    let bad = |field, value, why| Err(EhrlichError::InvalidConfig { field, value, why });
    if !(2..=ALPHABET_SIZE).contains(&c.vocab) {
        return bad("vocab", c.vocab, "must lie in 2..=20");
    }
    if c.motifs == 0 {
        return bad("motifs", c.motifs, "must be at least 1");
    }
    if c.motif_length == 0 {
        return bad("motif_length", c.motif_length, "must be at least 1");
    }
    if !(1..=c.motif_length).contains(&c.quantization) {
        return bad(
            "quantization",
            c.quantization,
            "must lie in 1..=motif_length",
        );
    }
    let total = c.motifs * c.motif_length;
    if total > c.vocab {
        return bad("motifs", c.motifs, "motifs * motif_length must be <= vocab");
    }
    if c.length < 2 * total {
        return bad("length", c.length, "must be >= 2 * motifs * motif_length");
    }
    Ok(())
}

/// One standard normal draw (Box-Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// softmax(N(0,1) / 0.5) rows masked by a shuffled wrap-around band of width `0.4 v`
/// (diagonal always allowed), renormalised.
fn sample_transition(v: usize, rng: &mut StdRng) -> Vec<Vec<f64>> {
    let band = (v * 2 / 5) as isize;
    let mut mask_rows: Vec<Vec<bool>> = (0..v as isize)
        .map(|i| {
            let mut row = vec![false; v];
            for j in i - band..=i + band {
                row[j.rem_euclid(v as isize) as usize] = true;
            }
            row
        })
        .collect();
    mask_rows.shuffle(rng);
    (0..v)
        .map(|i| {
            let logits: Vec<f64> = (0..v).map(|_| normal(rng) / 0.5).collect();
            let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut row: Vec<f64> = logits
                .iter()
                .enumerate()
                .map(|(j, &l)| {
                    if mask_rows[i][j] || i == j {
                        (l - max).exp()
                    } else {
                        0.0
                    }
                })
                .collect();
            let sum: f64 = row.iter().sum();
            row.iter_mut().for_each(|p| *p /= sum);
            row
        })
        .collect()
}

/// Every state reaches every other through allowed transitions (with the self-loops this
/// makes the chain ergodic).
fn irreducible(t: &[Vec<f64>]) -> bool {
    (0..t.len()).all(|start| {
        let mut seen = vec![false; t.len()];
        let mut stack = vec![start];
        seen[start] = true;
        while let Some(i) = stack.pop() {
            for (j, &p) in t[i].iter().enumerate() {
                if p > 0.0 && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        seen.iter().all(|&s| s)
    })
}

/// A DMP path of `n` distinct states (uniform start, transitions restricted to unvisited
/// states and renormalised), or `None` on a dead end.
fn distinct_path(t: &[Vec<f64>], n: usize, rng: &mut StdRng) -> Option<Vec<u8>> {
    let mut path = vec![rng.random_range(0..t.len())];
    while path.len() < n {
        let prev = path[path.len() - 1];
        let weights: Vec<f64> = (0..t.len())
            .map(|j| if path.contains(&j) { 0.0 } else { t[prev][j] })
            .collect();
        if weights.iter().all(|&w| w == 0.0) {
            return None;
        }
        path.push(categorical(&weights, rng));
    }
    Some(path.into_iter().map(|s| s as u8).collect())
}

/// An index drawn with probability proportional to `weights` (some weight is positive).
fn categorical(weights: &[f64], rng: &mut StdRng) -> usize {
    let total: f64 = weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    let mut last = 0;
    for (i, &w) in weights.iter().enumerate() {
        if w > 0.0 {
            last = i;
            if u < w {
                return i;
            }
            u -= w;
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configs_name_the_field() {
        let err = |c: EhrlichConfig| Ehrlich::generate(c).unwrap_err().to_string();
        let base = EhrlichConfig::default();
        assert!(
            err(EhrlichConfig {
                vocab: 21,
                ..base.clone()
            })
            .contains("`vocab` = 21")
        );
        assert!(
            err(EhrlichConfig {
                quantization: 5,
                ..base.clone()
            })
            .contains("quantization")
        );
        assert!(
            err(EhrlichConfig {
                length: 15,
                ..base.clone()
            })
            .contains("`length` = 15")
        );
        assert!(err(EhrlichConfig { motifs: 6, ..base }).contains("motifs"));
    }

    #[test]
    fn transition_rows_are_stochastic_with_banned_entries() {
        let f = Ehrlich::generate(EhrlichConfig::default()).unwrap();
        for (i, row) in f.transition().iter().enumerate() {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(row[i] > 0.0, "self-transition {i} banned");
            // band 8 on 20 states: 17 allowed (+ the diagonal when shuffled off it)
            let allowed = row.iter().filter(|&&p| p > 0.0).count();
            assert!((17..=18).contains(&allowed), "row {i}: {allowed} allowed");
        }
    }

    #[test]
    fn categorical_skips_zero_weights() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..200 {
            assert_ne!(categorical(&[0.5, 0.0, 0.5], &mut rng), 1);
        }
    }
}
