//! Baseline designers for the benchmark: [`random::RandomMutation`] (a floor),
//! [`adalead::AdaLead`] and [`gwg::GibbsWithGradients`], behind one [`DesignMethod`] trait.
//! Every method spends a [`Budget`] of predictor calls (one per sequence scored).
//!
//! A method starts from index sequences (e.g. the training split), asks a [`Predictor`]
//! (never the oracle) for scores, and returns a [`Design`]: every new sequence it scored,
//! best predicted first, and the calls it used. Same seed, same design.

pub mod adalead;
mod additive;
pub mod gwg;
pub mod ot_cfm;
pub mod random;
pub mod rules;

pub use additive::Additive;
pub use rules::Rules;

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::alphabet::ALPHABET_SIZE;
use crate::ehrlich::Ehrlich;
use crate::oracle::Oracle;

/// A model the designers query: scores, and for gradient-guided methods input gradients.
pub trait Predictor {
    /// Residue types a position may take (indices `0..alphabet()`); 20 for proteins.
    fn alphabet(&self) -> usize {
        ALPHABET_SIZE
    }

    /// One predicted score per sequence (checked, equal-length sequences; an implementation
    /// may panic otherwise, as [`Oracle::score`]).
    fn score(&self, seqs: &[Vec<u8>]) -> Vec<f32>;

    /// Scores and the gradient of each score in the one-hot input, flat row-major
    /// `[batch, length, alphabet()]`; `None` when the model is not differentiable.
    fn gradient(&self, seqs: &[Vec<u8>]) -> Option<(Vec<f32>, Vec<f32>)> {
        let _ = seqs;
        None
    }
}

/// Ehrlich functions are black boxes: no gradient (use a CNN predictor fitted to Ehrlich
/// samples for [`gwg::GibbsWithGradients`]).
impl Predictor for Ehrlich {
    fn alphabet(&self) -> usize {
        self.config().vocab
    }

    fn score(&self, seqs: &[Vec<u8>]) -> Vec<f32> {
        Oracle::score(self, seqs)
    }
}

/// A designer run under one protocol: start population, predictor, budget, seed.
///
/// A method supplies its name, its settings check and its [`search`](Self::search);
/// the provided [`run`](Self::run) checks the start population and the settings first, so
/// every method rejects bad input the same way.
pub trait DesignMethod {
    /// Short name for tables and errors (`random`, `adalead`, `gwg`).
    fn name(&self) -> &'static str;

    /// Check the method's own settings, naming the bad field. Default: nothing to check.
    fn check_config(&self) -> Result<(), BaselineError> {
        Ok(())
    }

    /// The search itself, called by [`run`](Self::run) once `start` (non-empty, all of
    /// length `length`, indices below `predictor.alphabet()`) and the settings are checked.
    /// With `rules` (from [`run_within`](Self::run_within), `start` obeying them) every
    /// sequence it proposes obeys them too.
    fn search(
        &self,
        start: &[Vec<u8>],
        predictor: &dyn Predictor,
        budget: usize,
        seed: u64,
        length: usize,
        rules: Option<&Rules>,
    ) -> Result<Design, BaselineError>;

    /// Design from `start` (non-empty, equal length, indices below `predictor.alphabet()`),
    /// scoring at most `budget` sequences with `predictor`; deterministic in `seed`.
    fn run(
        &self,
        start: &[Vec<u8>],
        predictor: &dyn Predictor,
        budget: usize,
        seed: u64,
    ) -> Result<Design, BaselineError> {
        let length = check_start(self.name(), start, predictor.alphabet())?;
        self.check_config()?;
        self.search(start, predictor, budget, seed, length, None)
    }

    /// [`run`](Self::run) under own-data constraints: the start population is first made to
    /// obey `rules` ([`Rules::project`]), the method proposes only obeying sequences, and
    /// every design is checked again (a violation is an error, never dropped silently).
    fn run_within(
        &self,
        start: &[Vec<u8>],
        predictor: &dyn Predictor,
        budget: usize,
        seed: u64,
        rules: &Rules,
    ) -> Result<Design, BaselineError> {
        let length = check_start(self.name(), start, predictor.alphabet())?;
        if length != rules.length() {
            return Err(BaselineError::RaggedStart {
                method: self.name(),
                index: 0,
                length,
                expected: rules.length(),
            });
        }
        self.check_config()?;
        let mut rng = StdRng::seed_from_u64(seed ^ 0x9E37_79B9_7F4A_7C15);
        let mut seen = HashSet::new();
        let mut obeying: Vec<Vec<u8>> = Vec::with_capacity(start.len());
        for s in start {
            let mut s = s.clone();
            rules.project(&mut s, &mut rng);
            if seen.insert(s.clone()) {
                obeying.push(s);
            }
        }
        let design = self.search(&obeying, predictor, budget, seed, length, Some(rules))?;
        if let Some(index) = design.sequences.iter().position(|s| !rules.obeys(s)) {
            return Err(BaselineError::Violation {
                method: self.name(),
                index,
            });
        }
        Ok(design)
    }
}

/// What a method returns: the distinct new sequences it scored (start sequences excluded),
/// sorted by predicted score, best first, and the predictor calls it spent.
#[derive(Debug, Clone, PartialEq)]
pub struct Design {
    /// Designed sequences, best predicted first.
    pub sequences: Vec<Vec<u8>>,
    /// Their predicted scores, same order.
    pub predicted: Vec<f32>,
    /// Sequences scored by the predictor, start population and repeats included.
    pub calls: usize,
}

impl Design {
    /// The `n` best predicted designs (fewer if fewer were made), e.g. the 128 the GGS
    /// protocol sends to the oracle.
    ///
    /// ```
    /// use em_protein::baselines::random::RandomMutation;
    /// use em_protein::baselines::{Additive, DesignMethod};
    /// let f = Additive::random(8, 20, 0);
    /// let design = RandomMutation::default().run(&[vec![0; 8]], &f, 50, 1).unwrap();
    /// assert_eq!((design.calls, design.top(10).len()), (50, 10));
    /// ```
    pub fn top(&self, n: usize) -> &[Vec<u8>] {
        &self.sequences[..n.min(self.sequences.len())]
    }
}

/// Why a method could not run; each names the method, field or sequence.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BaselineError {
    /// No start sequences.
    #[error("{method}: the start population is empty")]
    EmptyStart {
        /// The method.
        method: &'static str,
    },
    /// A start sequence's length differs from the first one's.
    #[error("{method}: start sequence {index} has length {length}, expected {expected}")]
    RaggedStart {
        /// The method.
        method: &'static str,
        /// Index in the start population.
        index: usize,
        /// Its length.
        length: usize,
        /// The first sequence's length.
        expected: usize,
    },
    /// A start sequence holds an index the predictor's alphabet lacks.
    #[error(
        "{method}: start sequence {index}, position {position}: residue index {value} >= alphabet {alphabet}"
    )]
    BadResidue {
        /// The method.
        method: &'static str,
        /// Index in the start population.
        index: usize,
        /// Position in the sequence.
        position: usize,
        /// The index found.
        value: u8,
        /// The predictor's alphabet size.
        alphabet: usize,
    },
    /// A hyperparameter is out of range.
    #[error("{method}: `{field}` = {value}: {why}")]
    InvalidConfig {
        /// The method.
        method: &'static str,
        /// The field.
        field: &'static str,
        /// Its value, printed.
        value: String,
        /// The rule it breaks.
        why: &'static str,
    },
    /// The budget cannot cover the method's first step.
    #[error("{method}: budget {budget} is below the {needed} calls of its first step")]
    BudgetTooSmall {
        /// The method.
        method: &'static str,
        /// The budget given.
        budget: usize,
        /// Calls its first step needs.
        needed: usize,
    },
    /// The method needs input gradients and the predictor gives none.
    #[error("{method}: the predictor is not differentiable (no input gradient)")]
    NotDifferentiable {
        /// The method.
        method: &'static str,
    },
    /// A design breaks the constraints it was run within (a bug in the method).
    #[error("{method}: design {index} breaks the constraints it was proposed under")]
    Violation {
        /// The method.
        method: &'static str,
        /// Index in the design, best first.
        index: usize,
    },
    /// A method asked for more calls than remain (a bug in the method).
    #[error("budget exceeded: {requested} calls requested, {remaining} remaining")]
    BudgetExceeded {
        /// Calls requested.
        requested: usize,
        /// Calls left.
        remaining: usize,
    },
}

/// A predictor behind a hard limit on the number of sequences scored.
pub struct Budget<'a> {
    predictor: &'a dyn Predictor,
    limit: usize,
    used: usize,
}

impl<'a> Budget<'a> {
    /// `limit` calls of `predictor`.
    pub fn new(predictor: &'a dyn Predictor, limit: usize) -> Self {
        Self {
            predictor,
            limit,
            used: 0,
        }
    }

    /// Calls spent so far.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Calls left.
    pub fn remaining(&self) -> usize {
        self.limit - self.used
    }

    fn spend(&mut self, n: usize) -> Result<(), BaselineError> {
        if n > self.remaining() {
            return Err(BaselineError::BudgetExceeded {
                requested: n,
                remaining: self.remaining(),
            });
        }
        self.used += n;
        Ok(())
    }

    /// Scores of `seqs`, spending `seqs.len()` calls (refused if fewer remain).
    ///
    /// ```
    /// use em_protein::baselines::{Additive, Budget};
    /// let f = Additive::random(4, 20, 0);
    /// let mut budget = Budget::new(&f, 3);
    /// assert!(budget.score(&[vec![0; 4], vec![1; 4]]).is_ok());
    /// assert!(budget.score(&[vec![0; 4], vec![1; 4]]).is_err()); // 1 call left
    /// assert_eq!(budget.used(), 2);
    /// ```
    pub fn score(&mut self, seqs: &[Vec<u8>]) -> Result<Vec<f32>, BaselineError> {
        self.spend(seqs.len())?;
        Ok(self.predictor.score(seqs))
    }

    /// Scores and input gradients of `seqs`, spending `seqs.len()` calls.
    pub fn gradient(
        &mut self,
        seqs: &[Vec<u8>],
        method: &'static str,
    ) -> Result<(Vec<f32>, Vec<f32>), BaselineError> {
        self.spend(seqs.len())?;
        self.predictor
            .gradient(seqs)
            .ok_or(BaselineError::NotDifferentiable { method })
    }
}

/// The new sequences a method scored, deduplicated, in the order first seen.
#[derive(Debug, Default)]
pub(crate) struct Archive {
    seen: HashSet<Vec<u8>>,
    sequences: Vec<Vec<u8>>,
    predicted: Vec<f32>,
}

impl Archive {
    /// An archive that treats `start` as already seen (never reported as designs).
    pub(crate) fn excluding(start: &[Vec<u8>]) -> Self {
        Self {
            seen: start.iter().cloned().collect(),
            ..Self::default()
        }
    }

    /// Record `seq` with its score unless already seen; returns whether it was new.
    pub(crate) fn add(&mut self, seq: &[u8], score: f32) -> bool {
        if !self.seen.insert(seq.to_vec()) {
            return false;
        }
        self.sequences.push(seq.to_vec());
        self.predicted.push(score);
        true
    }

    /// Sort best first (stable, NaN last) into a [`Design`].
    pub(crate) fn finish(self, calls: usize) -> Design {
        let mut order: Vec<usize> = (0..self.sequences.len()).collect();
        let key = |i: usize| {
            let s = self.predicted[i];
            if s.is_nan() { f32::NEG_INFINITY } else { s }
        };
        order.sort_by(|&a, &b| key(b).total_cmp(&key(a)));
        Design {
            sequences: order.iter().map(|&i| self.sequences[i].clone()).collect(),
            predicted: order.iter().map(|&i| self.predicted[i]).collect(),
            calls,
        }
    }
}

/// Check a start population against an alphabet; returns the common length.
pub(crate) fn check_start(
    method: &'static str,
    start: &[Vec<u8>],
    alphabet: usize,
) -> Result<usize, BaselineError> {
    let expected = start
        .first()
        .ok_or(BaselineError::EmptyStart { method })?
        .len();
    for (index, seq) in start.iter().enumerate() {
        if seq.len() != expected {
            return Err(BaselineError::RaggedStart {
                method,
                index,
                length: seq.len(),
                expected,
            });
        }
        if let Some((position, &value)) = seq
            .iter()
            .enumerate()
            .find(|&(_, &r)| r as usize >= alphabet)
        {
            return Err(BaselineError::BadResidue {
                method,
                index,
                position,
                value,
                alphabet,
            });
        }
    }
    Ok(expected)
}

/// A residue in `0..alphabet` other than `current` (alphabet >= 2).
pub(crate) fn other_residue(current: u8, alphabet: usize, rng: &mut StdRng) -> u8 {
    let r = rng.random_range(0..alphabet - 1) as u8;
    if r >= current { r + 1 } else { r }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn budget_refuses_overspending_and_counts_calls() {
        let f = Additive::random(4, 20, 0);
        let mut budget = Budget::new(&f, 3);
        budget.score(&[vec![0; 4], vec![1; 4]]).unwrap();
        assert_eq!((budget.used(), budget.remaining()), (2, 1));
        let err = budget.score(&[vec![0; 4], vec![1; 4]]).unwrap_err();
        assert_eq!(
            err,
            BaselineError::BudgetExceeded {
                requested: 2,
                remaining: 1
            }
        );
    }

    #[test]
    fn start_checks_name_sequence_and_position() {
        assert!(check_start("m", &[], 20).is_err());
        let err = check_start("m", &[vec![0, 1], vec![0]], 20).unwrap_err();
        assert!(err.to_string().contains("start sequence 1 has length 1"));
        let err = check_start("m", &[vec![0, 1], vec![0, 7]], 5).unwrap_err();
        assert!(
            err.to_string().contains("position 1: residue index 7"),
            "{err}"
        );
        assert_eq!(check_start("m", &[vec![0, 1]], 5), Ok(2));
    }

    #[test]
    fn archive_dedups_excludes_start_and_sorts() {
        let mut a = Archive::excluding(&[vec![0]]);
        assert!(!a.add(&[0], 9.0));
        assert!(a.add(&[1], 1.0));
        assert!(a.add(&[2], f32::NAN));
        assert!(a.add(&[3], 2.0));
        assert!(!a.add(&[3], 5.0));
        let d = a.finish(7);
        assert_eq!(d.sequences, vec![vec![3], vec![1], vec![2]]);
        assert_eq!((d.calls, d.top(1).len()), (7, 1));
    }

    #[test]
    fn other_residue_never_repeats_and_covers_the_rest() {
        let mut rng = StdRng::seed_from_u64(0);
        let mut hit = [false; 4];
        for _ in 0..200 {
            let r = other_residue(2, 4, &mut rng);
            assert_ne!(r, 2);
            hit[r as usize] = true;
        }
        assert_eq!(hit, [true, true, false, true]);
    }
}
