//! Which ranked candidates become designs on a lab's own data: never a sequence already
//! measured, and with `min_distance = N` none within N - 1 substitutions of a better design
//! kept (greedy by predicted score); [`Selection::violations`] re-checks a finished list.

use std::collections::HashSet;

use crate::sequence::Sequence;

/// The selection rules: the measured sequences to exclude and the minimum distance between
/// any two designs kept (substitutions, i.e. Hamming distance: all designs have one length).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    measured: HashSet<Sequence>,
    min_distance: usize,
}

/// What [`Selection::pick`] kept and why it passed over the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Picked {
    /// Indices into the ranked candidates, best first.
    pub rows: Vec<usize>,
    /// Candidates passed over because they were already measured.
    pub skipped_measured: usize,
    /// Candidates passed over because a better kept design lies within `min_distance - 1`
    /// substitutions (repeats of a kept design included).
    pub skipped_close: usize,
    /// Candidates looked at (all of them when the list could not be filled).
    pub examined: usize,
}

/// Substitutions between two sequences (Hamming distance; a length difference counts as
/// that many substitutions).
///
/// ```
/// let p = |t: &str| t.parse().unwrap();
/// assert_eq!(em_protein::selection::hamming(&p("ARND"), &p("GRNE")), 2);
/// ```
pub fn hamming(a: &Sequence, b: &Sequence) -> usize {
    let same = a
        .indices()
        .iter()
        .zip(b.indices())
        .filter(|(x, y)| x == y)
        .count();
    a.len().max(b.len()) - same
}

impl Selection {
    /// Exclude `measured`; keep designs at least `min_distance` substitutions apart (`None`,
    /// 0 or 1: only distinct designs).
    pub fn new(measured: impl IntoIterator<Item = Sequence>, min_distance: Option<usize>) -> Self {
        Self {
            measured: measured.into_iter().collect(),
            min_distance: min_distance.unwrap_or(0).max(1),
        }
    }

    /// The minimum distance between two designs (1: distinct).
    pub fn min_distance(&self) -> usize {
        self.min_distance.max(1)
    }

    /// Whether `s` was measured.
    pub fn is_measured(&self, s: &Sequence) -> bool {
        self.measured.contains(s)
    }

    /// Greedy selection over `ranked` (best first): take the next candidate that is not
    /// measured and at least `min_distance` from every candidate taken so far, until `k` are
    /// taken or the candidates run out.
    ///
    /// ```
    /// use em_protein::selection::Selection;
    /// let p = |t: &str| t.parse().unwrap();
    /// let ranked = [p("AAAA"), p("AAAR"), p("RRAA"), p("RRRR"), p("NNNN")];
    /// let s = Selection::new([p("RRRR")], Some(2));
    /// let got = s.pick(&ranked, 3);
    /// assert_eq!(got.rows, [0, 2, 4]); // AAAR too close to AAAA, RRRR measured
    /// assert_eq!((got.skipped_close, got.skipped_measured), (1, 1));
    /// ```
    pub fn pick(&self, ranked: &[Sequence], k: usize) -> Picked {
        let mut out = Picked::default();
        let need = self.min_distance();
        for (i, s) in ranked.iter().enumerate() {
            if out.rows.len() >= k {
                break;
            }
            out.examined += 1;
            if self.measured.contains(s) {
                out.skipped_measured += 1;
            } else if out.rows.iter().any(|&j| hamming(&ranked[j], s) < need) {
                out.skipped_close += 1;
            } else {
                out.rows.push(i);
            }
        }
        out
    }

    /// Every way `designs` break the rules (a measured design, two designs closer than
    /// `min_distance`), as sentences; empty when none.
    pub fn violations(&self, designs: &[Sequence]) -> Vec<String> {
        let mut out = Vec::new();
        let need = self.min_distance();
        for (i, s) in designs.iter().enumerate() {
            if self.measured.contains(s) {
                out.push(format!("design {} ({s}) was already measured", i + 1));
            }
            for (j, t) in designs.iter().enumerate().take(i) {
                let d = hamming(s, t);
                if d < need {
                    out.push(format!(
                        "designs {} and {} are {d} substitutions apart, under min_distance = {need}",
                        j + 1,
                        i + 1
                    ));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(s: &[&str]) -> Vec<Sequence> {
        s.iter().map(|t| t.parse().unwrap()).collect()
    }

    #[test]
    fn pick_takes_the_next_best_unmeasured_and_distant_design() {
        let ranked = seqs(&["AAAA", "AAAA", "RAAA", "RRAA", "NNNN", "DDDD", "CCCC"]);
        // No rules: repeats are still skipped (distance 0 < 1).
        let all = Selection::default().pick(&ranked, 10);
        assert_eq!(all.rows, [0, 2, 3, 4, 5, 6]);
        assert_eq!((all.skipped_close, all.examined), (1, 7));
        // The best one measured: the next distinct one is taken in its place.
        let s = Selection::new(seqs(&["AAAA"]), None);
        let got = s.pick(&ranked, 2);
        assert_eq!(got.rows, [2, 3]);
        assert_eq!((got.skipped_measured, got.examined), (2, 4));
        // min_distance 3: RAAA and RRAA are within 2 of AAAA; NNNN, DDDD are 4 away.
        let s = Selection::new([], Some(3));
        let got = s.pick(&ranked, 3);
        assert_eq!(got.rows, [0, 4, 5]);
        assert_eq!(got.skipped_close, 3);
        assert!(s.violations(&seqs(&["AAAA", "NNNN", "DDDD"])).is_empty());
    }

    #[test]
    fn a_batch_that_cannot_be_filled_says_how_many_it_found() {
        let ranked = seqs(&["AAAA", "AAAR", "AARR", "RRRR"]);
        let s = Selection::new(seqs(&["RRRR"]), Some(2));
        let got = s.pick(&ranked, 3);
        assert_eq!(got.rows, [0, 2]);
        assert_eq!(
            (got.examined, got.skipped_measured, got.skipped_close),
            (4, 1, 1)
        );
    }

    #[test]
    fn violations_name_the_designs() {
        let s = Selection::new(seqs(&["RRRR"]), Some(2));
        assert_eq!(
            s.violations(&seqs(&["AAAA", "RRRR", "AAAR"])),
            [
                "design 2 (RRRR) was already measured",
                "designs 1 and 3 are 1 substitutions apart, under min_distance = 2"
            ]
        );
        assert_eq!(hamming(&"AR".parse().unwrap(), &"ARN".parse().unwrap()), 1);
    }
}
