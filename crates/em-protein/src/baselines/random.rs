//! Random mutation, the floor baseline: a random start (training) sequence with `k` random
//! substitutions, scored by the predictor until the budget is spent. No search at all.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use super::{
    Archive, BaselineError, Budget, Design, DesignMethod, Predictor, Rules, other_residue,
};

const NAME: &str = "random";

/// Random `k`-point mutants of random start sequences.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomMutation {
    /// Substitutions per mutant, at distinct sites (capped at the length). Default 3.
    pub mutations: usize,
    /// Mutants scored per predictor batch. Default 256.
    pub batch: usize,
}

impl Default for RandomMutation {
    fn default() -> Self {
        Self {
            mutations: 3,
            batch: 256,
        }
    }
}

/// `seq` with `k` substitutions at distinct random sites, each to another residue.
///
/// ```
/// use em_protein::baselines::random::mutate;
/// use rand::{SeedableRng, rngs::StdRng};
/// let m = mutate(&[0u8; 10], 3, 20, &mut StdRng::seed_from_u64(0));
/// assert_eq!(m.iter().filter(|&&r| r != 0).count(), 3);
/// ```
pub fn mutate(seq: &[u8], k: usize, alphabet: usize, rng: &mut StdRng) -> Vec<u8> {
    let mut sites: Vec<usize> = (0..seq.len()).collect();
    sites.shuffle(rng);
    let mut out = seq.to_vec();
    for &i in sites.iter().take(k) {
        out[i] = other_residue(out[i], alphabet, rng);
    }
    out
}

/// [`mutate`] under `rules`: `k` distinct random sites among those allowing another residue,
/// each to another allowed residue, then brought under the mutation cap.
pub fn mutate_within(seq: &[u8], k: usize, rules: &Rules, rng: &mut StdRng) -> Vec<u8> {
    let mut sites: Vec<usize> = (0..seq.len()).collect();
    sites.shuffle(rng);
    let mut out = seq.to_vec();
    let mut done = 0;
    for i in sites {
        if done == k {
            break;
        }
        if let Some(r) = rules.other_allowed(i, out[i], rng) {
            out[i] = r;
            done += 1;
        }
    }
    rules.project(&mut out, rng);
    out
}

impl DesignMethod for RandomMutation {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check_config(&self) -> Result<(), BaselineError> {
        for (field, value) in [("mutations", self.mutations), ("batch", self.batch)] {
            if value == 0 {
                return Err(BaselineError::InvalidConfig {
                    method: NAME,
                    field,
                    value: value.to_string(),
                    why: "must be at least 1",
                });
            }
        }
        Ok(())
    }

    /// Spends the whole budget on mutants; the start population itself is not scored.
    /// Repeated mutants are scored again (this is the floor) but reported once.
    fn search(
        &self,
        start: &[Vec<u8>],
        predictor: &dyn Predictor,
        budget: usize,
        seed: u64,
        _length: usize,
        rules: Option<&Rules>,
    ) -> Result<Design, BaselineError> {
        let alphabet = predictor.alphabet();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut budget = Budget::new(predictor, budget);
        let mut archive = Archive::excluding(start);
        while budget.remaining() > 0 {
            let n = self.batch.min(budget.remaining());
            let mutants: Vec<Vec<u8>> = (0..n)
                .map(|_| {
                    let parent = &start[rng.random_range(0..start.len())];
                    match rules {
                        Some(r) => mutate_within(parent, self.mutations, r, &mut rng),
                        None => mutate(parent, self.mutations, alphabet, &mut rng),
                    }
                })
                .collect();
            let scores = budget.score(&mutants)?;
            for (m, s) in mutants.iter().zip(scores) {
                archive.add(m, s);
            }
        }
        Ok(archive.finish(budget.used()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baselines::Additive;

    #[test]
    fn mutants_differ_at_exactly_k_sites() {
        let mut rng = StdRng::seed_from_u64(5);
        let seq = vec![3u8; 12];
        for k in [1, 3, 12, 20] {
            let m = mutate(&seq, k, 20, &mut rng);
            let diff = m.iter().zip(&seq).filter(|(a, b)| a != b).count();
            assert_eq!(diff, k.min(12));
        }
    }

    #[test]
    fn every_design_obeys_the_constraints() {
        let c = crate::baselines::rules::tests::constraints();
        let rules = Rules::new(&c);
        let f = Additive::random(8, 20, 4);
        let start = vec![c.wild_type().indices().to_vec(), vec![5; 8]];
        let d = RandomMutation::default()
            .run_within(&start, &f, 300, 2, &rules)
            .unwrap();
        assert!(d.sequences.len() > 20, "{}", d.sequences.len());
        for s in &d.sequences {
            let seq = crate::sequence::Sequence::from_indices(s.clone()).unwrap();
            assert!(c.violations(&seq).is_empty(), "{:?}", c.violations(&seq));
        }
    }

    #[test]
    fn spends_exactly_the_budget() {
        let f = Additive::random(8, 20, 2);
        let method = RandomMutation {
            mutations: 2,
            batch: 7,
        };
        let d = method.run(&[vec![0; 8]], &f, 30, 1).unwrap();
        assert_eq!(d.calls, 30);
        assert!(!d.sequences.is_empty() && d.sequences.len() <= 30);
        let err = RandomMutation { batch: 0, ..method }
            .run(&[vec![0; 8]], &f, 30, 1)
            .unwrap_err();
        assert!(err.to_string().contains("`batch` = 0"), "{err}");
    }
}
