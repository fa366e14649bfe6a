//! The one amino-acid index table of emdesign (`ARNDCQEGHILKMFPSTWYV`, the GGS benchmark's
//! order, which its CNN oracle was trained on) and one-hot encoding over it.

/// The 20 canonical residues in the benchmark's index order.
pub const AMINO_ACIDS: &[u8; 20] = b"ARNDCQEGHILKMFPSTWYV";

/// Number of residue types, the width of a one-hot position.
pub const ALPHABET_SIZE: usize = 20;

/// Index of a residue letter (upper or lower case) in [`AMINO_ACIDS`], or `None`.
///
/// ```
/// use em_protein::alphabet::residue_index;
/// assert_eq!(residue_index(b'A'), Some(0));
/// assert_eq!(residue_index(b'v'), Some(19));
/// assert_eq!(residue_index(b'X'), None);
/// ```
pub fn residue_index(letter: u8) -> Option<u8> {
    let upper = letter.to_ascii_uppercase();
    AMINO_ACIDS
        .iter()
        .position(|&a| a == upper)
        .map(|i| i as u8)
}

/// Letter for a residue index (panics on an index >= 20: indices come from checked sequences).
pub fn residue_letter(index: u8) -> u8 {
    AMINO_ACIDS[index as usize]
}

/// One-hot encode equal-length index sequences into a flat row-major `[batch, length, 20]`
/// buffer of 0.0 / 1.0.
///
/// ```
/// use em_protein::alphabet::one_hot;
/// let x = one_hot(&[vec![0u8, 19]], 2);
/// assert_eq!(x.len(), 40);
/// assert_eq!((x[0], x[20 + 19]), (1.0, 1.0));
/// ```
pub fn one_hot(sequences: &[Vec<u8>], length: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; sequences.len() * length * ALPHABET_SIZE];
    for (b, seq) in sequences.iter().enumerate() {
        assert_eq!(
            seq.len(),
            length,
            "one_hot: sequence {b} has the wrong length"
        );
        for (i, &r) in seq.iter().enumerate() {
            out[(b * length + i) * ALPHABET_SIZE + r as usize] = 1.0;
        }
    }
    out
}

/// Decode a flat `[batch, length, 20]` buffer by argmax at every position.
///
/// ```
/// use em_protein::alphabet::{argmax_decode, one_hot};
/// let seqs = vec![vec![3u8, 7, 11]];
/// assert_eq!(argmax_decode(&one_hot(&seqs, 3), 3), seqs);
/// ```
pub fn argmax_decode(values: &[f32], length: usize) -> Vec<Vec<u8>> {
    let per_seq = length * ALPHABET_SIZE;
    assert_eq!(
        values.len() % per_seq.max(1),
        0,
        "argmax_decode: ragged buffer"
    );
    values
        .chunks(per_seq)
        .map(|seq| {
            seq.chunks(ALPHABET_SIZE)
                .map(|pos| {
                    let mut best = 0;
                    for (k, &v) in pos.iter().enumerate() {
                        if v > pos[best] {
                            best = k;
                        }
                    }
                    best as u8
                })
                .collect()
        })
        .collect()
}
