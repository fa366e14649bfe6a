//! Checked protein sequences ([`Sequence`]), point mutations ([`Mutation`]) and a
//! fixed-length table of scored sequences ([`ScoredSequences`]).

use std::fmt;
use std::str::FromStr;

use crate::alphabet::{ALPHABET_SIZE, residue_index, residue_letter};

/// A protein sequence as residue indices into [`crate::alphabet::AMINO_ACIDS`]; built only
/// through checked parsing, so every index is `< 20`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sequence(Vec<u8>);

/// A letter that is not one of the 20 canonical residues, at a 1-based column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResidueError {
    /// 1-based position in the parsed text.
    pub column: usize,
    /// The offending byte as a character.
    pub residue: char,
}

impl fmt::Display for ResidueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "column {}: unknown residue '{}' (expected one of ARNDCQEGHILKMFPSTWYV)",
            self.column, self.residue
        )
    }
}

impl std::error::Error for ResidueError {}

impl Sequence {
    /// Parse residue letters (upper or lower case).
    ///
    /// ```
    /// use em_protein::sequence::Sequence;
    /// let s = Sequence::parse(b"ARNdv").unwrap();
    /// assert_eq!(s.indices(), &[0, 1, 2, 3, 19]);
    /// assert_eq!(s.to_string(), "ARNDV");
    /// assert_eq!(Sequence::parse(b"AXA").unwrap_err().column, 2);
    /// ```
    pub fn parse(letters: &[u8]) -> Result<Self, ResidueError> {
        letters
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                residue_index(b).ok_or(ResidueError {
                    column: i + 1,
                    residue: b as char,
                })
            })
            .collect::<Result<Vec<u8>, _>>()
            .map(Sequence)
    }

    /// Build from residue indices, checking each is `< 20` (error column is 1-based).
    ///
    /// ```
    /// use em_protein::sequence::Sequence;
    /// assert_eq!(Sequence::from_indices(vec![0, 19]).unwrap().to_string(), "AV");
    /// assert!(Sequence::from_indices(vec![20]).is_err());
    /// ```
    pub fn from_indices(indices: Vec<u8>) -> Result<Self, ResidueError> {
        match indices.iter().position(|&i| i as usize >= ALPHABET_SIZE) {
            Some(p) => Err(ResidueError {
                column: p + 1,
                residue: char::from_digit(u32::from(indices[p]) % 10, 10).unwrap_or('?'),
            }),
            None => Ok(Sequence(indices)),
        }
    }

    /// The residue indices.
    pub fn indices(&self) -> &[u8] {
        &self.0
    }

    /// Number of residues.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the sequence has no residues.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The sequence as upper-case letters (bytes).
    ///
    /// ```
    /// use em_protein::sequence::Sequence;
    /// assert_eq!(Sequence::parse(b"wy").unwrap().to_letters(), b"WY".to_vec());
    /// ```
    pub fn to_letters(&self) -> Vec<u8> {
        self.0.iter().map(|&i| residue_letter(i)).collect()
    }

    /// Apply point mutations (positions are 0-based in [`Mutation`]), checking each
    /// mutation's wild-type residue; the first mismatch is returned as `Err(index)` into
    /// `mutations`.
    ///
    /// ```
    /// use em_protein::sequence::{Mutation, Sequence};
    /// let wt: Sequence = "MSKG".parse().unwrap();
    /// let m = Mutation::parse("S1A", 0).unwrap();
    /// assert_eq!(wt.apply(&[m]).unwrap().to_string(), "MAKG");
    /// assert_eq!(wt.apply(&[Mutation::parse("K1A", 0).unwrap()]), Err(0));
    /// ```
    pub fn apply(&self, mutations: &[Mutation]) -> Result<Sequence, usize> {
        let mut out = self.0.clone();
        for (k, m) in mutations.iter().enumerate() {
            match out.get_mut(m.position) {
                Some(r) if *r == m.wild => *r = m.new,
                _ => return Err(k),
            }
        }
        Ok(Sequence(out))
    }
}

impl FromStr for Sequence {
    type Err = ResidueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sequence::parse(s.as_bytes())
    }
}

impl fmt::Display for Sequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letters = self.to_letters();
        f.write_str(&String::from_utf8_lossy(&letters))
    }
}

impl fmt::Debug for Sequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sequence({self})")
    }
}

/// One substitution: wild-type residue, 0-based position, new residue (indices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mutation {
    /// Wild-type residue index.
    pub wild: u8,
    /// 0-based position in the wild type.
    pub position: usize,
    /// New residue index.
    pub new: u8,
}

impl Mutation {
    /// Parse a token like `A109D` whose position counts from `index_base` (0 or 1).
    /// The error says why, without location (the caller adds file and line).
    ///
    /// ```
    /// use em_protein::sequence::Mutation;
    /// let m = Mutation::parse("A109D", 1).unwrap();
    /// assert_eq!((m.wild, m.position, m.new), (0, 108, 3));
    /// assert_eq!(m.display(1), "A109D");
    /// assert!(Mutation::parse("A0D", 1).is_err());
    /// // A multi-byte character at either end is an error, not a panic (found by fuzzing).
    /// assert!(Mutation::parse("\u{c5}#\u{be}\u{c5}", 0).is_err());
    /// assert!(Mutation::parse("A1\u{e9}", 0).unwrap_err().contains("new residue"));
    /// ```
    pub fn parse(token: &str, index_base: usize) -> Result<Mutation, String> {
        let bytes = token.as_bytes();
        if bytes.len() < 3 {
            return Err("expected <wild-type residue><position><new residue>, e.g. A109D".into());
        }
        let (first, last) = (bytes[0], bytes[bytes.len() - 1]);
        // Residues are ASCII: checking both ends first keeps the slice below on character
        // boundaries (a multi-byte character at either end panicked here; found by fuzzing).
        let shown = |c: Option<char>| c.map_or(String::new(), String::from);
        let wild = residue_index(first).ok_or_else(|| {
            format!(
                "unknown wild-type residue '{}'",
                shown(token.chars().next())
            )
        })?;
        let new = residue_index(last)
            .ok_or_else(|| format!("unknown new residue '{}'", shown(token.chars().next_back())))?;
        let digits = &token[1..token.len() - 1];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("position '{digits}' is not a number"));
        }
        let written: usize = digits
            .parse()
            .map_err(|_| format!("position '{digits}' is too large"))?;
        let position = written
            .checked_sub(index_base)
            .ok_or_else(|| format!("position {written} is below the index base {index_base}"))?;
        Ok(Mutation {
            wild,
            position,
            new,
        })
    }

    /// Format as `A109D` with positions counted from `index_base`.
    pub fn display(&self, index_base: usize) -> String {
        format!(
            "{}{}{}",
            residue_letter(self.wild) as char,
            self.position + index_base,
            residue_letter(self.new) as char
        )
    }
}

/// Equal-length sequences with one finite score each (a ground truth, a split, a
/// training set). Construction checks the invariants; fields are private.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredSequences {
    sequences: Vec<Sequence>,
    scores: Vec<f64>,
}

/// Why a [`ScoredSequences`] could not be built: the offending row (0-based) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    /// 0-based row.
    pub row: usize,
    /// What is wrong.
    pub why: String,
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {}: {}", self.row, self.why)
    }
}

impl std::error::Error for TableError {}

impl ScoredSequences {
    /// Check equal lengths (against the first sequence), finite scores and equal counts.
    ///
    /// ```
    /// use em_protein::sequence::{ScoredSequences, Sequence};
    /// let s = |t: &str| t.parse::<Sequence>().unwrap();
    /// let t = ScoredSequences::new(vec![s("AR"), s("AN")], vec![1.0, 2.0]).unwrap();
    /// assert_eq!((t.len(), t.length()), (2, 2));
    /// assert!(ScoredSequences::new(vec![s("AR"), s("A")], vec![1.0, 2.0]).is_err());
    /// ```
    pub fn new(sequences: Vec<Sequence>, scores: Vec<f64>) -> Result<Self, TableError> {
        if sequences.len() != scores.len() {
            return Err(TableError {
                row: sequences.len().min(scores.len()),
                why: format!("{} sequences but {} scores", sequences.len(), scores.len()),
            });
        }
        let length = sequences.first().map_or(0, Sequence::len);
        for (row, (s, &y)) in sequences.iter().zip(&scores).enumerate() {
            if s.len() != length {
                return Err(TableError {
                    row,
                    why: format!(
                        "length {} differs from the first sequence's {length}",
                        s.len()
                    ),
                });
            }
            if !y.is_finite() {
                return Err(TableError {
                    row,
                    why: format!("score {y} is not finite"),
                });
            }
        }
        Ok(ScoredSequences { sequences, scores })
    }

    /// The sequences.
    pub fn sequences(&self) -> &[Sequence] {
        &self.sequences
    }

    /// The scores, one per sequence.
    pub fn scores(&self) -> &[f64] {
        &self.scores
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.sequences.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.sequences.is_empty()
    }

    /// The common sequence length (0 when empty).
    pub fn length(&self) -> usize {
        self.sequences.first().map_or(0, Sequence::len)
    }

    /// Rows at the given indices, in that order (panics on an out-of-range index).
    pub fn select(&self, rows: &[usize]) -> ScoredSequences {
        ScoredSequences {
            sequences: rows.iter().map(|&i| self.sequences[i].clone()).collect(),
            scores: rows.iter().map(|&i| self.scores[i]).collect(),
        }
    }

    /// Smallest and largest score (`None` when empty).
    pub fn score_range(&self) -> Option<(f64, f64)> {
        let first = *self.scores.first()?;
        Some(
            self.scores
                .iter()
                .fold((first, first), |(lo, hi), &y| (lo.min(y), hi.max(y))),
        )
    }

    /// Split into the sequences and scores.
    pub fn into_parts(self) -> (Vec<Sequence>, Vec<f64>) {
        (self.sequences, self.scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_roundtrip_and_errors() {
        let s: Sequence = "ARNDCQEGHILKMFPSTWYV".parse().unwrap();
        assert_eq!(s.indices(), (0..20).collect::<Vec<u8>>().as_slice());
        assert_eq!(s.to_string(), "ARNDCQEGHILKMFPSTWYV");
        let e = Sequence::parse(b"AB").unwrap_err();
        assert_eq!((e.column, e.residue), (2, 'B'));
    }

    #[test]
    fn mutation_parse_rejects_shapes() {
        assert!(Mutation::parse("A", 0).is_err());
        assert!(
            Mutation::parse("AxD", 0)
                .unwrap_err()
                .contains("not a number")
        );
        assert!(Mutation::parse("Z3D", 0).unwrap_err().contains("wild-type"));
        assert!(
            Mutation::parse("A3*", 0)
                .unwrap_err()
                .contains("new residue '*'")
        );
        assert_eq!(Mutation::parse("A3D", 0).unwrap().position, 3);
    }

    #[test]
    fn table_checks_scores_and_range() {
        let s = |t: &str| t.parse::<Sequence>().unwrap();
        assert!(ScoredSequences::new(vec![s("A")], vec![f64::NAN]).is_err());
        let t = ScoredSequences::new(vec![s("A"), s("R"), s("N")], vec![2.0, -1.0, 5.0]).unwrap();
        assert_eq!(t.score_range(), Some((-1.0, 5.0)));
        assert_eq!(t.select(&[2, 0]).scores(), &[5.0, 2.0]);
    }
}
