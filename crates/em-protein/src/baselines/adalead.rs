//! AdaLead (Sinai et al. 2020, FLEXS): parents within `kappa` of the best predicted score,
//! recombined and mutated, then greedy rollouts that continue while the predictor says the
//! child is at least as fit as its root. Run offline: the predictor is the only feedback.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use super::{Archive, BaselineError, Budget, Design, DesignMethod, Predictor, Rules};

const NAME: &str = "adalead";

/// Draws per rollout node before giving up on finding an unseen child.
const MAX_TRIES: usize = 100;

/// AdaLead's hyperparameters (FLEXS names in brackets).
#[derive(Debug, Clone, PartialEq)]
pub struct AdaLead {
    /// Parents are sequences predicted within `kappa * |best|` of the best [threshold].
    /// Default 0.05.
    pub kappa: f32,
    /// Expected substitutions per child: each site mutates with probability
    /// `mutation_rate / length` to a uniform residue [mu]. Default 1.0.
    pub mutation_rate: f64,
    /// Per-site probability of switching parent during crossover [recomb_rate]. Default 0.2.
    pub recombination_rate: f64,
    /// Recombination passes over the parents each generation [rho]. Default 1.
    pub recombination_passes: usize,
    /// Parents per generation (the elite cycled to this size) [sequences_batch_size].
    /// Default 128.
    pub population: usize,
    /// Rollout roots advanced together, one predictor batch [eval_batch_size]. Default 20.
    pub eval_batch: usize,
    /// Longest rollout (children per root) in one generation. Not in FLEXS, whose
    /// per-round query cap bounds rollouts instead: on a landscape with a floor (Ehrlich's
    /// infeasible 0), a recombinant at the floor accepts every child and would otherwise
    /// walk until the whole budget is gone. Default 16.
    pub max_rollout: usize,
}

impl Default for AdaLead {
    fn default() -> Self {
        Self {
            kappa: 0.05,
            mutation_rate: 1.0,
            recombination_rate: 0.2,
            recombination_passes: 1,
            population: 128,
            eval_batch: 20,
            max_rollout: 16,
        }
    }
}

/// Crossover of shuffled pairs: walk the sites, switching which parent feeds which child
/// with probability `rate` per site. An odd last parent passes through unchanged.
///
/// ```
/// use em_protein::baselines::adalead::recombine;
/// use rand::{SeedableRng, rngs::StdRng};
/// let mut pair = vec![vec![0u8; 6], vec![1u8; 6]];
/// recombine(&mut pair, 0.5, &mut StdRng::seed_from_u64(0));
/// // every site keeps one 0 and one 1 across the two children
/// assert!((0..6).all(|i| pair[0][i] + pair[1][i] == 1));
/// ```
pub fn recombine(parents: &mut [Vec<u8>], rate: f64, rng: &mut StdRng) {
    parents.shuffle(rng);
    for pair in parents.chunks_exact_mut(2) {
        let (a, b) = pair.split_at_mut(1);
        let mut switch = false;
        for i in 0..a[0].len() {
            if rng.random_bool(rate) {
                switch = !switch;
            }
            if !switch {
                std::mem::swap(&mut a[0][i], &mut b[0][i]);
            }
        }
    }
}

/// Each site replaced by a uniform residue with probability `rate` (may keep it); under
/// `rules` a uniform allowed residue, and the child brought under the mutation cap.
fn mutate(
    seq: &[u8],
    rate: f64,
    alphabet: usize,
    rules: Option<&Rules>,
    rng: &mut StdRng,
) -> Vec<u8> {
    let mut child: Vec<u8> = seq
        .iter()
        .enumerate()
        .map(|(p, &r)| {
            if !rng.random_bool(rate) {
                r
            } else if let Some(rules) = rules {
                rules.any_allowed(p, rng)
            } else {
                rng.random_range(0..alphabet) as u8
            }
        })
        .collect();
    if let Some(rules) = rules {
        rules.project(&mut child, rng);
    }
    child
}

impl DesignMethod for AdaLead {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check_config(&self) -> Result<(), BaselineError> {
        let bad = |field, value: String, why| {
            Err(BaselineError::InvalidConfig {
                method: NAME,
                field,
                value,
                why,
            })
        };
        if !(0.0..=1.0).contains(&self.kappa) {
            return bad("kappa", self.kappa.to_string(), "must lie in [0, 1]");
        }
        if self.mutation_rate.is_nan() || self.mutation_rate <= 0.0 {
            return bad(
                "mutation_rate",
                self.mutation_rate.to_string(),
                "must be > 0",
            );
        }
        if !(0.0..=1.0).contains(&self.recombination_rate) {
            let v = self.recombination_rate.to_string();
            return bad("recombination_rate", v, "must lie in [0, 1]");
        }
        for (field, value) in [
            ("population", self.population),
            ("eval_batch", self.eval_batch),
            ("max_rollout", self.max_rollout),
        ] {
            if value == 0 {
                return bad(field, value.to_string(), "must be at least 1");
            }
        }
        Ok(())
    }

    /// Scores the distinct start sequences first (error if the budget cannot cover them),
    /// then runs generations until the budget is spent or no unseen child can be found.
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
        let mut rng = StdRng::seed_from_u64(seed);
        let mut budget = Budget::new(predictor, budget);
        let mut archive = Archive::excluding(start);
        // Every scored sequence, in insertion order (deterministic), and its score.
        let mut pool: Vec<(Vec<u8>, f32)> = Vec::new();
        let mut known: HashMap<Vec<u8>, f32> = HashMap::new();
        let mut distinct: Vec<Vec<u8>> = Vec::new();
        for s in start {
            if !distinct.contains(s) {
                distinct.push(s.clone());
            }
        }
        if distinct.len() > budget.remaining() {
            return Err(BaselineError::BudgetTooSmall {
                method: NAME,
                budget: budget.remaining(),
                needed: distinct.len(),
            });
        }
        for (s, f) in distinct.iter().zip(budget.score(&distinct)?) {
            known.insert(s.clone(), f);
            pool.push((s.clone(), f));
        }
        let site_rate = (self.mutation_rate / length.max(1) as f64).min(1.0);
        while budget.remaining() > 0 {
            let before = budget.used();
            let top = pool.iter().map(|p| p.1).fold(f32::NEG_INFINITY, f32::max);
            let threshold = top - top.abs() * self.kappa;
            let mut elite: Vec<&(Vec<u8>, f32)> =
                pool.iter().filter(|p| p.1 >= threshold).collect();
            // Best first, ties in random order: on plateaus the parents rotate.
            elite.shuffle(&mut rng);
            elite.sort_by(|a, b| b.1.total_cmp(&a.1));
            if elite.is_empty() {
                break; // only NaN or infinite predictions: no threshold to select by
            }
            let mut parents: Vec<Vec<u8>> = (0..self.population)
                .map(|i| elite[i % elite.len()].0.clone())
                .collect();
            for _ in 0..self.recombination_passes {
                recombine(&mut parents, self.recombination_rate, &mut rng);
            }
            if let Some(rules) = rules {
                // sites come from obeying parents; only the mutation cap can break
                parents.iter_mut().for_each(|p| rules.project(p, &mut rng));
            }
            for roots in parents.chunks(self.eval_batch) {
                // Root fitness: known, or scored now (distinct unknown roots only).
                let mut unknown: Vec<Vec<u8>> = Vec::new();
                for r in roots {
                    if !known.contains_key(r) && !unknown.contains(r) {
                        unknown.push(r.clone());
                    }
                }
                unknown.truncate(budget.remaining());
                for (s, f) in unknown.iter().zip(budget.score(&unknown)?) {
                    known.insert(s.clone(), f);
                    pool.push((s.clone(), f));
                    archive.add(s, f);
                }
                let root_fit: Vec<Option<f32>> =
                    roots.iter().map(|r| known.get(r).copied()).collect();
                let mut nodes: Vec<(usize, Vec<u8>)> = roots
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| root_fit[*i].is_some())
                    .map(|(i, r)| (i, r.clone()))
                    .collect();
                for _ in 0..self.max_rollout {
                    if nodes.is_empty() || budget.remaining() == 0 {
                        break;
                    }
                    let mut children: Vec<(usize, Vec<u8>)> = Vec::new();
                    for (idx, node) in &nodes {
                        let fresh = (0..MAX_TRIES)
                            .map(|_| mutate(node, site_rate, alphabet, rules, &mut rng))
                            .find(|c| {
                                !known.contains_key(c) && !children.iter().any(|x| &x.1 == c)
                            });
                        if let Some(c) = fresh {
                            children.push((*idx, c));
                        }
                    }
                    children.truncate(budget.remaining());
                    let seqs: Vec<Vec<u8>> = children.iter().map(|c| c.1.clone()).collect();
                    let scores = budget.score(&seqs)?;
                    nodes.clear();
                    for ((idx, child), f) in children.into_iter().zip(scores) {
                        known.insert(child.clone(), f);
                        pool.push((child.clone(), f));
                        archive.add(&child, f);
                        if root_fit[idx].is_some_and(|r| f >= r) {
                            nodes.push((idx, child));
                        }
                    }
                }
            }
            if budget.used() == before {
                break; // nothing unseen reachable: stop early
            }
        }
        Ok(archive.finish(budget.used()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recombination_keeps_each_site_from_one_of_the_pair() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut parents = vec![vec![0u8; 30], vec![1u8; 30], vec![2u8; 30]];
        recombine(&mut parents, 0.2, &mut rng);
        let mut per_site = [0usize; 3];
        for p in &parents {
            for &r in p {
                per_site[r as usize] += 1;
            }
        }
        // sites are exchanged between the two paired parents, never lost or invented
        assert_eq!(per_site, [30, 30, 30]);
        assert!(parents.iter().any(|p| p.iter().any(|&r| r != p[0])));
    }

    #[test]
    fn every_design_obeys_the_constraints() {
        let c = crate::baselines::rules::tests::constraints();
        let rules = Rules::new(&c);
        let f = crate::baselines::Additive::random(8, 20, 4);
        let start = vec![c.wild_type().indices().to_vec(), vec![5; 8], vec![9; 8]];
        let method = AdaLead {
            population: 16,
            eval_batch: 8,
            ..AdaLead::default()
        };
        let d = method.run_within(&start, &f, 300, 2, &rules).unwrap();
        assert!(d.sequences.len() > 20, "{}", d.sequences.len());
        for s in &d.sequences {
            let seq = crate::sequence::Sequence::from_indices(s.clone()).unwrap();
            assert!(c.violations(&seq).is_empty(), "{:?}", c.violations(&seq));
        }
    }

    #[test]
    fn invalid_kappa_is_named() {
        let f = crate::baselines::Additive::random(4, 20, 0);
        let bad = AdaLead {
            kappa: 2.0,
            ..Default::default()
        };
        let err = bad.run(&[vec![0; 4]], &f, 10, 0).unwrap_err();
        assert!(err.to_string().contains("`kappa` = 2"), "{err}");
    }

    struct Nan;

    impl Predictor for Nan {
        fn score(&self, seqs: &[Vec<u8>]) -> Vec<f32> {
            vec![f32::NAN; seqs.len()]
        }
    }

    #[test]
    fn nan_predictions_stop_the_search_without_panicking() {
        let d = AdaLead::default().run(&[vec![0; 4]], &Nan, 10, 0).unwrap();
        assert_eq!((d.calls, d.sequences.len()), (1, 0));
    }
}
