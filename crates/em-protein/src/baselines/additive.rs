//! A linear additive toy fitness with its exact gradient: the known landscape the baseline
//! tests climb, cheap enough for thousands of predictor calls per test.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::Predictor;

/// A linear additive toy fitness `f(x) = sum_i w[i, x_i]` with its exact gradient `w`: the
/// known landscape the baseline tests climb (optimum: the argmax residue at every site).
#[derive(Debug, Clone, PartialEq)]
pub struct Additive {
    length: usize,
    alphabet: usize,
    /// `[length, alphabet]`, row-major.
    weights: Vec<f32>,
}

impl Additive {
    /// Weights uniform in `[-1, 1)` from `seed`.
    ///
    /// ```
    /// use em_protein::baselines::{Additive, Predictor};
    /// let f = Additive::random(6, 20, 1);
    /// assert!(f.score(&[f.optimum()])[0] >= f.score(&[vec![0u8; 6]])[0]);
    /// ```
    pub fn random(length: usize, alphabet: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let weights = (0..length * alphabet)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        Self {
            length,
            alphabet,
            weights,
        }
    }

    /// The best sequence (argmax residue at every site).
    pub fn optimum(&self) -> Vec<u8> {
        self.weights
            .chunks(self.alphabet)
            .map(|row| {
                (0..row.len())
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .unwrap_or(0) as u8
            })
            .collect()
    }
}

impl Predictor for Additive {
    fn alphabet(&self) -> usize {
        self.alphabet
    }

    /// Panics on a sequence of another length or an index outside the alphabet.
    fn score(&self, seqs: &[Vec<u8>]) -> Vec<f32> {
        seqs.iter()
            .map(|s| {
                assert_eq!(s.len(), self.length, "Additive: wrong length");
                s.iter()
                    .enumerate()
                    .map(|(i, &r)| self.weights[i * self.alphabet + r as usize])
                    .sum()
            })
            .collect()
    }

    fn gradient(&self, seqs: &[Vec<u8>]) -> Option<(Vec<f32>, Vec<f32>)> {
        let grads = seqs.iter().flat_map(|_| self.weights.clone()).collect();
        Some((self.score(seqs), grads))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_predicts_every_substitution_exactly() {
        let f = Additive::random(5, 4, 9);
        let x = vec![0u8, 1, 2, 3, 0];
        let (s, g) = f.gradient(std::slice::from_ref(&x)).unwrap();
        for i in 0..5 {
            for a in 0..4u8 {
                let mut y = x.clone();
                y[i] = a;
                let linear = g[i * 4 + a as usize] - g[i * 4 + x[i] as usize];
                assert!((f.score(&[y])[0] - s[0] - linear).abs() < 1e-5);
            }
        }
        let opt = f.optimum();
        assert!(f.score(std::slice::from_ref(&opt))[0] >= f.score(&[x])[0]);
    }
}
