//! The GGS protocol's design metrics: normalised fitness (median), diversity (mean
//! pairwise Levenshtein distance), novelty (median distance to the training split), and
//! mean (std) over seeds. Edit distances: [`crate::edit_distance`], rayon over designs.

use bio::alignment::distance::simd;
use rayon::prelude::*;

use crate::edit_distance::Pattern;
use crate::sequence::Sequence;

/// Levenshtein distance (unit-cost substitutions, insertions, deletions).
///
/// ```
/// use em_protein::metrics::levenshtein;
/// let s = |t: &str| t.parse().unwrap();
/// assert_eq!(levenshtein(&s("ARND"), &s("ARND")), 0);
/// assert_eq!(levenshtein(&s("ARND"), &s("RNDC")), 2); // delete A, insert C
/// ```
pub fn levenshtein(a: &Sequence, b: &Sequence) -> u32 {
    Pattern::new(a).distance(b)
}

/// `Some(distance)` when the Levenshtein distance is at most `k`, else `None`; much faster
/// than [`levenshtein`] for small `k` (diagonal-band algorithm).
///
/// ```
/// use em_protein::metrics::levenshtein_within;
/// let s = |t: &str| t.parse().unwrap();
/// assert_eq!(levenshtein_within(&s("ARND"), &s("ARNC"), 1), Some(1));
/// assert_eq!(levenshtein_within(&s("ARND"), &s("WWWW"), 3), None);
/// ```
pub fn levenshtein_within(a: &Sequence, b: &Sequence, k: u32) -> Option<u32> {
    simd::bounded_levenshtein(a.indices(), b.indices(), k)
}

/// Smallest Levenshtein distance from `query` to any of `references` (`None` when there
/// are none), shrinking the search band as closer references are found.
///
/// ```
/// use em_protein::metrics::min_distance;
/// let s = |t: &str| t.parse().unwrap();
/// assert_eq!(min_distance(&s("AAAA"), &[s("WWWW"), s("AAWW"), s("AAAW")]), Some(1));
/// ```
pub fn min_distance(query: &Sequence, references: &[Sequence]) -> Option<u32> {
    Pattern::new(query).min_distance(references)
}

/// Median with the midpoint of the two middle values for even counts (numpy's); NaN
/// when empty.
///
/// ```
/// assert_eq!(em_protein::metrics::median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
/// ```
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Min-max normalise scores against the ground truth's range: `(y - min) / (max - min)`.
///
/// ```
/// let n = em_protein::metrics::normalise(&[1.0, 3.0], 1.0, 5.0);
/// assert_eq!(n, vec![0.0, 0.5]);
/// ```
pub fn normalise(scores: &[f64], min_gt: f64, max_gt: f64) -> Vec<f64> {
    scores
        .iter()
        .map(|y| (y - min_gt) / (max_gt - min_gt))
        .collect()
}

/// GGS fitness: median over designs of the oracle score normalised by the ground truth's
/// min and max.
///
/// ```
/// let f = em_protein::metrics::fitness(&[2.0, 4.0, 5.0], 1.0, 5.0);
/// assert_eq!(f, 0.75);
/// ```
pub fn fitness(oracle_scores: &[f64], min_gt: f64, max_gt: f64) -> f64 {
    median(&normalise(oracle_scores, min_gt, max_gt))
}

/// GGS diversity: mean Levenshtein distance over all unordered pairs of designs (0 for
/// fewer than two designs).
///
/// ```
/// let s = |t: &str| t.parse().unwrap();
/// let d = em_protein::metrics::diversity(&[s("AAA"), s("AAR"), s("RRR")]);
/// assert!((d - (1.0 + 3.0 + 2.0) / 3.0).abs() < 1e-12);
/// ```
pub fn diversity(designs: &[Sequence]) -> f64 {
    let n = designs.len();
    if n < 2 {
        return 0.0;
    }
    let total: u64 = (0..n)
        .into_par_iter()
        .map(|i| {
            let pattern = Pattern::new(&designs[i]);
            designs[i + 1..]
                .iter()
                .map(|b| u64::from(pattern.distance(b)))
                .sum::<u64>()
        })
        .sum();
    total as f64 / (n * (n - 1) / 2) as f64
}

/// Minimum Levenshtein distance of each design to the training sequences (rayon over
/// designs); empty `training` gives `u32::MAX` per design.
pub fn min_distances(designs: &[Sequence], training: &[Sequence]) -> Vec<u32> {
    designs
        .par_iter()
        .map(|d| min_distance(d, training).unwrap_or(u32::MAX))
        .collect()
}

/// GGS novelty: median over designs of the minimum Levenshtein distance to the training
/// split.
///
/// ```
/// let s = |t: &str| t.parse().unwrap();
/// let train = [s("AAAA"), s("RRRR")];
/// let n = em_protein::metrics::novelty(&[s("AAAA"), s("AAAR"), s("WWWW")], &train);
/// assert_eq!(n, 1.0); // distances 0, 1, 4
/// ```
pub fn novelty(designs: &[Sequence], training: &[Sequence]) -> f64 {
    let d: Vec<f64> = min_distances(designs, training)
        .into_iter()
        .map(f64::from)
        .collect();
    median(&d)
}

/// Mean and standard deviation (population, numpy's default `ddof=0`) of a metric over
/// seeds, reported as `mean (std)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanStd {
    /// Mean over seeds.
    pub mean: f64,
    /// Population standard deviation over seeds.
    pub std: f64,
}

/// Mean (std) of per-seed values (NaN for no values).
///
/// ```
/// let m = em_protein::metrics::mean_std(&[1.0, 3.0]);
/// assert_eq!((m.mean, m.std), (2.0, 1.0));
/// assert_eq!(format!("{m:.1}"), "2.0 (1.0)");
/// ```
pub fn mean_std(values: &[f64]) -> MeanStd {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    MeanStd {
        mean,
        std: var.sqrt(),
    }
}

impl std::fmt::Display for MeanStd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match f.precision() {
            Some(p) => write!(f, "{:.p$} ({:.p$})", self.mean, self.std),
            None => write!(f, "{} ({})", self.mean, self.std),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit_distance::tests::naive;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn random_seq(rng: &mut StdRng, len: usize, alphabet: u8) -> Sequence {
        Sequence::from_indices((0..len).map(|_| rng.random_range(0..alphabet)).collect()).unwrap()
    }

    #[test]
    fn distances_match_dynamic_programming() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..300 {
            let (la, lb) = (rng.random_range(0..80), rng.random_range(0..80));
            let k = rng.random_range(1..20);
            let a = random_seq(&mut rng, la, 4);
            let b = random_seq(&mut rng, lb, 4);
            let want = naive(a.indices(), b.indices());
            assert_eq!(levenshtein(&a, &b), want);
            let within = levenshtein_within(&a, &b, k);
            assert_eq!(within, (want <= k).then_some(want));
        }
    }

    #[test]
    fn min_distance_matches_brute_force() {
        let mut rng = StdRng::seed_from_u64(3);
        let base = random_seq(&mut rng, 237, 20);
        let mutate = |rng: &mut StdRng, n: usize| {
            let mut v = base.indices().to_vec();
            for _ in 0..n {
                let p = rng.random_range(0..v.len());
                v[p] = rng.random_range(0..20);
            }
            Sequence::from_indices(v).unwrap()
        };
        let train: Vec<Sequence> = (0..50).map(|i| mutate(&mut rng, 5 + i % 20)).collect();
        for n in [0, 3, 12, 40] {
            let q = mutate(&mut rng, n);
            let brute = train.iter().map(|t| naive(q.indices(), t.indices())).min();
            assert_eq!(min_distance(&q, &train), brute);
        }
    }

    #[test]
    fn hand_computed_metrics() {
        let s = |t: &str| t.parse::<Sequence>().unwrap();
        // fitness: normalised [0, 0.25, 1.0] -> median 0.25
        assert_eq!(fitness(&[1.0, 2.0, 5.0], 1.0, 5.0), 0.25);
        // diversity of {AR, AR, WW}: pairs 0, 2, 2 -> 4/3
        assert!((diversity(&[s("AR"), s("AR"), s("WW")]) - 4.0 / 3.0).abs() < 1e-12);
        assert_eq!(diversity(&[s("AR")]), 0.0);
        // novelty with an insertion: ARND vs training {RND} = 1
        assert_eq!(novelty(&[s("ARND"), s("ARNDC")], &[s("RND")]), 1.5);
        assert!(median(&[]).is_nan());
    }
}
