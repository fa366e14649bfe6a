//! Levenshtein distance on residue indices: bit-parallel Myers/Hyyrö (64 rows per word,
//! any length) for the full distance, rust-bio's banded routine when a small bound is known.

use bio::alignment::distance::simd;

use crate::alphabet::ALPHABET_SIZE;
use crate::sequence::Sequence;

/// Below this bound the banded algorithm (cost ~ bound^2) beats the bit-parallel one
/// (cost ~ length * words) on proteins of a few hundred residues.
const BANDED_UP_TO: u32 = 48;

/// A pattern preprocessed for repeated distance queries against many texts
/// (Myers 1999, multi-word blocks after Hyyrö 2003).
#[derive(Debug, Clone)]
pub struct Pattern<'a> {
    sequence: &'a Sequence,
    /// `peq[c * words + b]`: bit i set where residue `c` sits at row `64 b + i`.
    peq: Vec<u64>,
    words: usize,
}

impl<'a> Pattern<'a> {
    /// Preprocess `sequence` as the pattern.
    pub fn new(sequence: &'a Sequence) -> Self {
        let m = sequence.len();
        let words = m.div_ceil(64).max(1);
        let mut peq = vec![0u64; ALPHABET_SIZE * words];
        for (i, &c) in sequence.indices().iter().enumerate() {
            peq[c as usize * words + i / 64] |= 1u64 << (i % 64);
        }
        Pattern {
            sequence,
            peq,
            words,
        }
    }

    /// Exact Levenshtein distance to `text`.
    ///
    /// ```
    /// use em_protein::edit_distance::Pattern;
    /// let (a, b) = ("ARNDCQ".parse().unwrap(), "RNDCQW".parse().unwrap());
    /// assert_eq!(Pattern::new(&a).distance(&b), 2);
    /// ```
    pub fn distance(&self, text: &Sequence) -> u32 {
        let m = self.sequence.len();
        if m == 0 {
            return text.len() as u32;
        }
        let w = self.words;
        let last_bit = (m - 1) % 64;
        // vertical delta vectors (+1 / -1 bits per row); on the stack up to 512 rows
        let mut stack = [(!0u64, 0u64); 8];
        let mut heap = Vec::new();
        let state: &mut [(u64, u64)] = if w <= stack.len() {
            &mut stack[..w]
        } else {
            heap.resize(w, (!0u64, 0u64));
            &mut heap
        };
        let mut score = m as i64;
        for &c in text.indices() {
            let eq_row = &self.peq[c as usize * w..(c as usize + 1) * w];
            // horizontal delta entering the top of block 0: row 0 is D[0][j] = j, so +1
            let (mut hin_p, mut hin_m) = (1u64, 0u64);
            let (mut last_ph, mut last_mh) = (0u64, 0u64);
            for (slot, &eq_b) in state.iter_mut().zip(eq_row) {
                let (p, mm) = *slot;
                let xv = eq_b | mm;
                let eq = eq_b | hin_m;
                let xh = (((eq & p).wrapping_add(p)) ^ p) | eq;
                let ph = mm | !(xh | p);
                let mh = p & xh;
                (last_ph, last_mh) = (ph, mh);
                let (hout_p, hout_m) = (ph >> 63, mh >> 63);
                let ph = (ph << 1) | hin_p;
                let mh = (mh << 1) | hin_m;
                *slot = (mh | !(xv | ph), ph & xv);
                (hin_p, hin_m) = (hout_p, hout_m);
            }
            score += ((last_ph >> last_bit) & 1) as i64 - ((last_mh >> last_bit) & 1) as i64;
        }
        score as u32
    }

    /// Smallest distance to any of `references` (`None` when empty): banded search under
    /// the best distance so far when that is small, bit-parallel otherwise.
    pub fn min_distance(&self, references: &[Sequence]) -> Option<u32> {
        let mut best: Option<u32> = None;
        for r in references {
            best = Some(match best {
                None => self.distance(r),
                Some(0) => break,
                Some(b) if b <= BANDED_UP_TO => {
                    simd::bounded_levenshtein(self.sequence.indices(), r.indices(), b - 1)
                        .unwrap_or(b)
                }
                Some(b) => {
                    let lower = self.sequence.len().abs_diff(r.len()) as u32;
                    if lower >= b {
                        b
                    } else {
                        self.distance(r).min(b)
                    }
                }
            });
        }
        best
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// Reference Levenshtein distance by plain dynamic programming (also used by `metrics`).
    pub(crate) fn naive(a: &[u8], b: &[u8]) -> u32 {
        let mut prev: Vec<u32> = (0..=b.len() as u32).collect();
        for (i, &x) in a.iter().enumerate() {
            let mut cur = vec![i as u32 + 1; b.len() + 1];
            for (j, &y) in b.iter().enumerate() {
                cur[j + 1] = (prev[j] + u32::from(x != y))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1);
            }
            prev = cur;
        }
        prev[b.len()]
    }

    #[test]
    fn bit_parallel_matches_dynamic_programming_across_word_boundaries() {
        let mut rng = StdRng::seed_from_u64(11);
        for trial in 0..400 {
            let la = [0, 1, 63, 64, 65, 128, 237][trial % 7] + rng.random_range(0..3);
            let lb = rng.random_range(0..300);
            let alphabet = if trial % 2 == 0 { 3 } else { 20 };
            let mk = |rng: &mut StdRng, n: usize| {
                Sequence::from_indices((0..n).map(|_| rng.random_range(0..alphabet)).collect())
                    .unwrap()
            };
            let (a, b) = (mk(&mut rng, la), mk(&mut rng, lb));
            assert_eq!(
                Pattern::new(&a).distance(&b),
                naive(a.indices(), b.indices()),
                "len {la} vs {lb}"
            );
        }
    }

    #[test]
    fn min_distance_mixes_banded_and_bit_parallel() {
        let mut rng = StdRng::seed_from_u64(5);
        let random = |rng: &mut StdRng, n: usize| {
            Sequence::from_indices((0..n).map(|_| rng.random_range(0..20)).collect()).unwrap()
        };
        let q = random(&mut rng, 200);
        let mut refs: Vec<Sequence> = (0..20).map(|i| random(&mut rng, 150 + i * 5)).collect();
        let mut near = q.indices().to_vec();
        near.truncate(190);
        refs.push(Sequence::from_indices(near).unwrap());
        let brute = refs.iter().map(|r| naive(q.indices(), r.indices())).min();
        assert_eq!(Pattern::new(&q).min_distance(&refs), brute);
        assert_eq!(brute, Some(10));
    }
}
