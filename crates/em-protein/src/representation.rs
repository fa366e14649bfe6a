//! How sequences enter Energy Matching: one-hot scaled to the box `[-1, 1]` (flat
//! `[batch, L*20]`, row-major `[L, 20]`), argmax decoding back, and the relaxed predictor
//! input `softmax(x / T)` over the 20 residue channels of each position.
//!
//! Why `2·onehot - 1`: the sampler starts from `N(0, I)` and clamps to `[-1, 1]`, so data
//! sit on corners of the box symmetric about the noise mean; argmax of `x` equals argmax of
//! the one-hot. The predictor was trained on exact one-hots, so it sees `softmax(x / T)`:
//! at a data corner (logits `+-1/T`) with `T = 0.25` the true residue gets
//! `e^4 / (e^4 + 19 e^-4) = 0.994` of the mass, close to the one-hot the CNN knows, while
//! off-corner states still give it a smooth, differentiable input.

use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::softmax;

use crate::alphabet::{ALPHABET_SIZE, argmax_decode, one_hot};
use crate::sequence::Sequence;

/// Default softmax temperature of the relaxed predictor input.
pub const DEFAULT_TEMPERATURE: f64 = 0.25;

/// Flat embedding `2·onehot - 1` of equal-length sequences: `batch * length * 20` values,
/// row-major `[batch, length, 20]`, each `-1.0` or `1.0`.
///
/// Panics if a sequence's length differs from `length` (callers pass checked, equal-length
/// sequences, e.g. a benchmark split).
///
/// ```
/// use em_protein::representation::embed;
/// let s: em_protein::sequence::Sequence = "AV".parse().unwrap();
/// let x = embed(&[s], 2);
/// assert_eq!(x.len(), 40);
/// assert_eq!((x[0], x[1], x[20 + 19]), (1.0, -1.0, 1.0));
/// ```
pub fn embed(sequences: &[Sequence], length: usize) -> Vec<f32> {
    let indices: Vec<Vec<u8>> = sequences.iter().map(|s| s.indices().to_vec()).collect();
    one_hot(&indices, length)
        .into_iter()
        .map(|v| 2.0 * v - 1.0)
        .collect()
}

/// [`embed`] as a `[batch, length*20]` tensor on `device`.
pub fn embed_tensor(sequences: &[Sequence], length: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(
            embed(sequences, length),
            [sequences.len(), length * ALPHABET_SIZE],
        ),
        device,
    )
}

/// Decode a `[batch, length*20]` state by argmax over each position's 20 channels (ties go
/// to the lower index). Every decoded row is a valid sequence of `length` residues.
///
/// ```
/// use burn::prelude::*;
/// use em_protein::representation::{decode, embed_tensor};
/// let s: em_protein::sequence::Sequence = "MKV".parse().unwrap();
/// let x = embed_tensor(std::slice::from_ref(&s), 3, &Device::flex()) * 0.3;
/// assert_eq!(decode(x, 3), vec![s]);
/// ```
pub fn decode(x: Tensor<2>, length: usize) -> Vec<Sequence> {
    let values = crate::cnn::tensor_to_vec(x);
    argmax_decode(&values, length)
        .into_iter()
        .map(|idx| Sequence::from_indices(idx).expect("argmax indices lie in 0..20"))
        .collect()
}

/// The relaxed predictor input `softmax(x / T)` over the residue channels:
/// `[batch, length*20] -> [batch, length, 20]`, each position a probability vector.
/// Differentiable in `x` on an autodiff device.
///
/// ```
/// use burn::prelude::*;
/// let x = Tensor::<2>::zeros([1, 40], &Device::flex()); // 2 positions, all channels tied
/// let p = em_protein::representation::relax(x, 2, 0.25);
/// assert_eq!(p.dims(), [1, 2, 20]);
/// let v = p.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
/// assert!(v.iter().all(|&q| (q - 0.05).abs() < 1e-6));
/// ```
pub fn relax(x: Tensor<2>, length: usize, temperature: f64) -> Tensor<3> {
    let [batch, _] = x.dims();
    softmax(x.reshape([batch, length, ALPHABET_SIZE]) / temperature, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs() -> Vec<Sequence> {
        ["ACDEFG", "VWYTSR"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect()
    }

    #[test]
    fn embed_decode_round_trip_and_box() {
        let device = Device::flex();
        let x = embed_tensor(&seqs(), 6, &device);
        assert_eq!(x.dims(), [2, 120]);
        let v = x
            .clone()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(v.iter().all(|&a| a == 1.0 || a == -1.0));
        assert_eq!(v.iter().filter(|&&a| a == 1.0).count(), 12);
        assert_eq!(decode(x, 6), seqs());
    }

    #[test]
    fn relax_is_a_distribution_and_peaks_at_the_residue() {
        let device = Device::flex();
        let p = relax(embed_tensor(&seqs(), 6, &device), 6, DEFAULT_TEMPERATURE);
        assert_eq!(p.dims(), [2, 6, 20]);
        let v = p.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        for pos in v.chunks(20) {
            let sum: f32 = pos.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5);
            let max = pos.iter().copied().fold(0.0, f32::max);
            // e^4 / (e^4 + 19 e^-4), see the module doc
            assert!((max - 0.993_67).abs() < 1e-4, "{max}");
        }
    }
}
