//! Own-data constraints inside the baselines' proposal steps ([`super::DesignMethod::run_within`]):
//! the residues each position may take (fixed positions, allowed / banned residues) and the
//! cap on mutations from the wild type, from a checked [`Constraints`]. Methods draw only
//! allowed residues and bring an over-cap sequence back under the cap by reverting mutations
//! to the wild type, so every sequence they score obeys the rules.

use rand::RngExt;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::alphabet::ALPHABET_SIZE;
use crate::constraints::Constraints;

/// Per-position allowed residues and a mutation cap around a wild type (index sequences).
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    wild_type: Vec<u8>,
    /// `allowed[p]`: the residues position `p` may take, ascending.
    allowed: Vec<Vec<u8>>,
    max_mutations: Option<usize>,
}

impl Rules {
    /// The rules of checked constraints (a fixed position allows only the wild type's residue).
    pub fn new(c: &Constraints) -> Self {
        let allowed = (0..c.length())
            .map(|p| {
                (0..ALPHABET_SIZE as u8)
                    .filter(|&r| c.allows(p, r))
                    .collect()
            })
            .collect();
        Self {
            wild_type: c.wild_type().indices().to_vec(),
            allowed,
            max_mutations: c.max_mutations(),
        }
    }

    /// Rules from their parts (any alphabet): the wild type, each position's allowed
    /// residues, the cap. For tests on small alphabets.
    #[cfg(test)]
    pub(crate) fn from_parts(
        wild_type: Vec<u8>,
        mut allowed: Vec<Vec<u8>>,
        max_mutations: Option<usize>,
    ) -> Self {
        allowed.iter_mut().for_each(|a| a.sort_unstable());
        Self {
            wild_type,
            allowed,
            max_mutations,
        }
    }

    /// Sequence length.
    pub fn length(&self) -> usize {
        self.wild_type.len()
    }

    /// Whether residue `r` may stand at position `p`.
    pub fn allows(&self, p: usize, r: u8) -> bool {
        self.allowed[p].binary_search(&r).is_ok()
    }

    /// Substitutions of `seq` from the wild type.
    pub fn mutations(&self, seq: &[u8]) -> usize {
        seq.iter()
            .zip(&self.wild_type)
            .filter(|(a, b)| a != b)
            .count()
    }

    /// Whether `seq` may be proposed: right length, allowed residues, within the cap.
    pub fn obeys(&self, seq: &[u8]) -> bool {
        seq.len() == self.length()
            && seq.iter().enumerate().all(|(p, &r)| self.allows(p, r))
            && self.max_mutations.is_none_or(|k| self.mutations(seq) <= k)
    }

    /// For every substitution of an obeying `seq` into `0..alphabet`, flat
    /// `[length, alphabet]`: whether it keeps `seq` obeying (the current residue: `false`).
    pub fn moves(&self, seq: &[u8], alphabet: usize) -> Vec<bool> {
        let can_add = self.max_mutations.is_none_or(|k| self.mutations(seq) < k);
        let mut out = vec![false; seq.len() * alphabet];
        for (p, &x) in seq.iter().enumerate() {
            let wt = self.wild_type[p];
            for &r in self.allowed[p].iter().filter(|&&r| (r as usize) < alphabet) {
                let adds = x == wt && r != wt;
                out[p * alphabet + r as usize] = r != x && (can_add || !adds);
            }
        }
        out
    }

    /// A uniformly drawn allowed residue at `p` other than `current` (`None`: none other).
    pub fn other_allowed(&self, p: usize, current: u8, rng: &mut StdRng) -> Option<u8> {
        let others: Vec<u8> = self.allowed[p]
            .iter()
            .copied()
            .filter(|&r| r != current)
            .collect();
        (!others.is_empty()).then(|| others[rng.random_range(0..others.len())])
    }

    /// A uniformly drawn allowed residue at `p`.
    pub fn any_allowed(&self, p: usize, rng: &mut StdRng) -> u8 {
        let a = &self.allowed[p];
        a[rng.random_range(0..a.len())]
    }

    /// Make `seq` obey: a disallowed residue becomes the wild type's (or, where that is
    /// excluded too, the lowest allowed residue); then, over the cap, randomly chosen
    /// mutations that can go back to the wild type do so until the cap holds (always
    /// possible: the constraints check that the positions forced off the wild type fit
    /// under the cap).
    pub fn project(&self, seq: &mut [u8], rng: &mut StdRng) {
        for (p, r) in seq.iter_mut().enumerate() {
            if !self.allows(p, *r) {
                let wt = self.wild_type[p];
                *r = if self.allows(p, wt) {
                    wt
                } else {
                    self.allowed[p][0]
                };
            }
        }
        let Some(k) = self.max_mutations else {
            return;
        };
        let mut revertible: Vec<usize> = (0..seq.len())
            .filter(|&p| seq[p] != self.wild_type[p] && self.allows(p, self.wild_type[p]))
            .collect();
        revertible.shuffle(rng);
        let mut n = self.mutations(seq);
        for p in revertible {
            if n <= k {
                break;
            }
            seq[p] = self.wild_type[p];
            n -= 1;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::constraints::ConstraintsConfig;
    use crate::sequence::Sequence;
    use rand::SeedableRng;

    /// Wild type `MKAVLCGE`: 1-2 fixed, no Cys (so position 6 must mutate), position 8 only
    /// D/E, at most 2 mutations.
    pub(crate) fn constraints() -> Constraints {
        let cfg = ConstraintsConfig {
            fixed: "1-2".into(),
            banned: "C".into(),
            allowed: [("8".to_string(), "DE".to_string())].into(),
            max_mutations: Some(2),
            ..ConstraintsConfig::default()
        };
        let wt: Sequence = "MKAVLCGE".parse().unwrap();
        cfg.check(&wt, 1).unwrap()
    }

    /// Index of V (the wild type's residue at position 4).
    fn wt_v() -> usize {
        crate::alphabet::residue_index(b'V').unwrap() as usize
    }

    #[test]
    fn projection_makes_any_sequence_obey() {
        let c = constraints();
        let rules = Rules::new(&c);
        let mut rng = StdRng::seed_from_u64(0);
        for _ in 0..200 {
            let mut s: Vec<u8> = (0..8).map(|_| rng.random_range(0..20u8)).collect();
            rules.project(&mut s, &mut rng);
            assert!(rules.obeys(&s), "{s:?}");
            let seq = Sequence::from_indices(s).unwrap();
            assert!(c.violations(&seq).is_empty(), "{:?}", c.violations(&seq));
        }
        // the wild type itself breaks the no-Cys rule; projected it keeps all else
        let mut wt = c.wild_type().indices().to_vec();
        assert!(!rules.obeys(&wt));
        rules.project(&mut wt, &mut rng);
        assert_eq!(rules.mutations(&wt), 1);
        let moves = rules.moves(&wt, 20);
        assert!(
            moves[3 * 20] && !moves[3] && !moves[3 * 20 + 4],
            "V4A yes, M1D and V4C no"
        );
        // at the cap only moves that keep the count are left
        wt[3] = 0;
        let moves = rules.moves(&wt, 20);
        assert!(!moves[2 * 20 + 5] && moves[3 * 20 + 1] && moves[3 * 20 + wt_v()]);
    }
}
