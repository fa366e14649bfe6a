//! The sequence VAE of VLGPO (Bogensperger et al., ICML 2025) as a burn module: residues ->
//! embedding -> strided Conv1d encoder -> latent mean/log-variance; latent -> Linear ->
//! ConvTranspose1d decoder -> per-position logits. Energy Matching's protein experiments
//! train, sample and guide in its latent (the encoder mean of each training sequence).
//!
//! Token order: VLGPO's tokenizer uses `ARNDCQEGHILKMFPSTWYV`, exactly
//! [`crate::alphabet::AMINO_ACIDS`], so weights load without permutation. GFP (237 residues)
//! is padded to 240 with token 0 (`A`) on encoding and the 3 padding positions are cropped
//! from the decoder's output (VLGPO's `[..., :-3]`); see [`PAD_TOKEN`].

mod store;
mod train;

pub use store::VaeError;
pub use train::{TrainVaeSettings, VaeReport, train_vae};

use burn::module::Param;
use burn::nn::conv::{Conv1d, Conv1dConfig, ConvTranspose1d, ConvTranspose1dConfig};
use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig, PaddingConfig1d};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::{Int, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::alphabet::ALPHABET_SIZE;
use crate::sequence::Sequence;

/// VLGPO's tokenizer alphabet (`src/vlgpo/utils/tokenizer.py`), equal to ours.
pub const VLGPO_ALPHABET: &[u8; 20] = b"ARNDCQEGHILKMFPSTWYV";

/// Token written at the padding positions `length..input_dim` on encoding (`A`, index 0).
/// VLGPO does not ship its VAE training code; token 0 is the only choice whose padding the
/// published GFP decoders reproduce (100% of padding positions on both GFP splits, 0% for
/// any other token; measured with `tests/fixtures/vlgpo/make_vae_fixture.py`'s probe).
pub const PAD_TOKEN: u8 = 0;

/// Sequences per forward pass in [`SeqVae::encode_mean`] and
/// [`SeqVae::reconstruction_accuracy`].
const CHUNK: usize = 256;

/// Shape of a [`SeqVae`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeqVaeConfig {
    /// Real sequence length (28 AAV, 237 GFP).
    pub length: usize,
    /// VLGPO's padded length, a multiple of 4 and at least `length` (28 AAV, 240 GFP).
    pub input_dim: usize,
    /// Latent dimension (16 AAV, 32 GFP).
    pub latent_dim: usize,
    /// Token embedding width (64).
    pub embedding_dim: usize,
}

impl SeqVaeConfig {
    /// VLGPO's AAV VAE: 28 residues, latent 16.
    pub fn vlgpo_aav() -> Self {
        Self {
            length: 28,
            input_dim: 28,
            latent_dim: 16,
            embedding_dim: 64,
        }
    }

    /// VLGPO's GFP VAE: 237 residues padded to 240, latent 32.
    pub fn vlgpo_gfp() -> Self {
        Self {
            length: 237,
            input_dim: 240,
            latent_dim: 32,
            embedding_dim: 64,
        }
    }

    /// VLGPO's padded length for `length` residues: the next multiple of 4 (the encoder
    /// halves the length twice), e.g. 237 -> 240.
    pub fn padded(length: usize) -> usize {
        length.div_ceil(4) * 4
    }

    /// Check the shape: every size positive, `input_dim` a multiple of 4, `length <= input_dim`.
    pub fn check(&self) -> Result<(), VaeError> {
        let bad = |field: &'static str, why: String| Err(VaeError::Config { field, why });
        if self.length == 0 || self.latent_dim == 0 || self.embedding_dim == 0 {
            return bad(
                "length/latent_dim/embedding_dim",
                format!("must be positive ({self:?})"),
            );
        }
        if !self.input_dim.is_multiple_of(4) || self.input_dim < self.length {
            return bad(
                "input_dim",
                format!(
                    "{} must be a multiple of 4 and at least length {}",
                    self.input_dim, self.length
                ),
            );
        }
        Ok(())
    }

    /// Width of the flattened encoder output, `32 * input_dim / 4`.
    fn flat_dim(&self) -> usize {
        32 * (self.input_dim / 4)
    }

    /// A VAE with PyTorch's default initialisation (uniform in `+-1/sqrt(fan_in)`, the
    /// embedding uniform with unit variance) drawn from `StdRng::seed_from_u64(seed)`: same
    /// seed, same weights, on any thread count. Panics if [`SeqVaeConfig::check`] fails.
    pub fn init(&self, seed: u64, device: &Device) -> SeqVae {
        if let Err(e) = self.check() {
            panic!("SeqVaeConfig::init: {e}");
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut vae = self.skeleton(device);
        let e = self.embedding_dim;
        let s3 = 3f32.sqrt();
        vae.embedding.weight = uniform(&mut rng, [ALPHABET_SIZE, e], s3, device);
        let conv = |rng: &mut StdRng, c: &mut Conv1d| {
            let [o, i, k] = c.weight.dims();
            let b = 1.0 / ((i * k) as f32).sqrt();
            c.weight = uniform(rng, [o, i, k], b, device);
            c.bias = Some(uniform(rng, [o], b, device));
        };
        conv(&mut rng, &mut vae.enc1);
        conv(&mut rng, &mut vae.enc2);
        conv(&mut rng, &mut vae.enc3);
        let linear = |rng: &mut StdRng, l: &mut Linear| {
            let [i, o] = l.weight.dims();
            let b = 1.0 / (i as f32).sqrt();
            l.weight = uniform(rng, [i, o], b, device);
            l.bias = Some(uniform(rng, [o], b, device));
        };
        linear(&mut rng, &mut vae.fc_mu);
        linear(&mut rng, &mut vae.fc_logvar);
        linear(&mut rng, &mut vae.fc_dec);
        let deconv = |rng: &mut StdRng, c: &mut ConvTranspose1d| {
            // PyTorch's fan-in of a transposed conv weight [in, out, k] is out * k.
            let [i, o, k] = c.weight.dims();
            let b = 1.0 / ((o * k) as f32).sqrt();
            c.weight = uniform(rng, [i, o, k], b, device);
            c.bias = Some(uniform(rng, [o], b, device));
        };
        deconv(&mut rng, &mut vae.dec1);
        deconv(&mut rng, &mut vae.dec2);
        deconv(&mut rng, &mut vae.dec3);
        linear(&mut rng, &mut vae.output_proj);
        vae
    }

    /// A VAE of this shape with zero weights, ready to be loaded into.
    fn skeleton(&self, device: &Device) -> SeqVae {
        let z = Initializer::Zeros;
        let e = self.embedding_dim;
        let conv = |i, o, s| {
            Conv1dConfig::new(i, o, 3)
                .with_stride(s)
                .with_padding(PaddingConfig1d::Explicit(1, 1))
                .with_initializer(z.clone())
                .init(device)
        };
        let deconv = |i, o, s, op| {
            ConvTranspose1dConfig::new([i, o], 3)
                .with_stride(s)
                .with_padding(1)
                .with_padding_out(op)
                .with_initializer(z.clone())
                .init(device)
        };
        let linear = |i, o| {
            LinearConfig::new(i, o)
                .with_initializer(z.clone())
                .init(device)
        };
        SeqVae {
            embedding: EmbeddingConfig::new(ALPHABET_SIZE, e)
                .with_initializer(z.clone())
                .init(device),
            enc1: conv(e, 128, 1),
            enc2: conv(128, 64, 2),
            enc3: conv(64, 32, 2),
            fc_mu: linear(self.flat_dim(), self.latent_dim),
            fc_logvar: linear(self.flat_dim(), self.latent_dim),
            fc_dec: linear(self.latent_dim, self.flat_dim()),
            dec1: deconv(32, 64, 2, 1),
            dec2: deconv(64, 128, 2, 1),
            dec3: deconv(128, e, 1, 0),
            output_proj: linear(e, ALPHABET_SIZE),
            length: self.length,
            input_dim: self.input_dim,
        }
    }
}

fn uniform<const D: usize>(
    rng: &mut StdRng,
    shape: [usize; D],
    bound: f32,
    device: &Device,
) -> Param<Tensor<D>> {
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
    Param::from_tensor(Tensor::from_data(TensorData::new(v, shape), device))
}

/// VLGPO's sequence VAE. Field names map to VLGPO's PyTorch keys (`enc1` = `encoder.0`,
/// `enc2` = `encoder.2`, `enc3` = `encoder.4`, `dec1..3` = `decoder.0/2/4`, the rest equal).
#[derive(Module, Debug)]
pub struct SeqVae {
    /// Token embedding 20 -> embedding_dim.
    pub embedding: Embedding,
    /// Conv1d embedding_dim -> 128, kernel 3, padding 1.
    pub enc1: Conv1d,
    /// Conv1d 128 -> 64, kernel 3, stride 2, padding 1.
    pub enc2: Conv1d,
    /// Conv1d 64 -> 32, kernel 3, stride 2, padding 1.
    pub enc3: Conv1d,
    /// Linear 32 * input_dim/4 -> latent (mean).
    pub fc_mu: Linear,
    /// Linear 32 * input_dim/4 -> latent (log-variance).
    pub fc_logvar: Linear,
    /// Linear latent -> 32 * input_dim/4.
    pub fc_dec: Linear,
    /// ConvTranspose1d 32 -> 64, kernel 3, stride 2, padding 1, output padding 1.
    pub dec1: ConvTranspose1d,
    /// ConvTranspose1d 64 -> 128, kernel 3, stride 2, padding 1, output padding 1.
    pub dec2: ConvTranspose1d,
    /// ConvTranspose1d 128 -> embedding_dim, kernel 3, padding 1.
    pub dec3: ConvTranspose1d,
    /// Linear embedding_dim -> 20 logits per position.
    pub output_proj: Linear,
    /// Real sequence length (the decoder's output is cropped to it).
    length: usize,
    /// Padded length the convolutions run on.
    input_dim: usize,
}

impl SeqVae {
    /// The shape this VAE was built with.
    pub fn config(&self) -> SeqVaeConfig {
        let [_, embedding_dim] = self.embedding.weight.dims();
        let [_, latent_dim] = self.fc_mu.weight.dims();
        SeqVaeConfig {
            length: self.length,
            input_dim: self.input_dim,
            latent_dim,
            embedding_dim,
        }
    }

    /// Latent dimension.
    pub fn latent_dim(&self) -> usize {
        self.fc_mu.weight.dims()[1]
    }

    /// Real sequence length.
    pub fn length(&self) -> usize {
        self.length
    }

    fn device(&self) -> Device {
        self.fc_mu.weight.val().device()
    }

    /// Check that every sequence has the VAE's length (the first that does not is named).
    pub fn check_sequences(&self, seqs: &[Sequence]) -> Result<(), VaeError> {
        match seqs.iter().position(|s| s.len() != self.length) {
            Some(index) => Err(VaeError::Length {
                index,
                found: seqs[index].len(),
                expected: self.length,
            }),
            None => Ok(()),
        }
    }

    /// Token tensor `[B, input_dim]` of sequences of the VAE's length, padded with
    /// [`PAD_TOKEN`]. Panics on a wrong length (check with [`SeqVae::check_sequences`]).
    pub fn tokens(&self, seqs: &[Sequence], device: &Device) -> Tensor<2, Int> {
        if let Err(e) = self.check_sequences(seqs) {
            panic!("SeqVae::tokens: {e}");
        }
        let mut v = Vec::with_capacity(seqs.len() * self.input_dim);
        for s in seqs {
            v.extend(s.indices().iter().map(|&r| i64::from(r)));
            v.extend(std::iter::repeat_n(
                i64::from(PAD_TOKEN),
                self.input_dim - self.length,
            ));
        }
        Tensor::from_data(TensorData::new(v, [seqs.len(), self.input_dim]), device)
    }

    /// Encoder mean and log-variance `[B, latent]` of tokens `[B, input_dim]`.
    pub fn encode(&self, tokens: Tensor<2, Int>) -> (Tensor<2>, Tensor<2>) {
        let [batch, _] = tokens.dims();
        let x = self.embedding.forward(tokens).swap_dims(1, 2); // [B, E, N]
        let h = relu(self.enc1.forward(x));
        let h = relu(self.enc2.forward(h));
        let h = relu(self.enc3.forward(h)); // [B, 32, N/4]
        let [_, c, n] = h.dims();
        let h = h.reshape([batch, c * n]);
        (self.fc_mu.forward(h.clone()), self.fc_logvar.forward(h))
    }

    /// The encoder mean `mu` `[B, latent]` of sequences of the VAE's length (in chunks,
    /// no autodiff). Panics on a wrong length (check with [`SeqVae::check_sequences`]).
    pub fn encode_mean(&self, seqs: &[Sequence]) -> Tensor<2> {
        let device = self.device();
        if seqs.is_empty() {
            return Tensor::zeros([0, self.latent_dim()], &device);
        }
        let parts: Vec<Tensor<2>> = seqs
            .chunks(CHUNK)
            .map(|c| self.encode(self.tokens(c, &device)).0)
            .collect();
        Tensor::cat(parts, 0)
    }

    /// Decoder logits over the padded length `[B, input_dim, 20]`.
    pub fn decode_padded(&self, z: Tensor<2>) -> Tensor<3> {
        let [batch, _] = z.dims();
        let h = relu(self.fc_dec.forward(z));
        let h = h.reshape([batch, 32, self.input_dim / 4]);
        let h = relu(self.dec1.forward(h));
        let h = relu(self.dec2.forward(h));
        let h = self.dec3.forward(h).swap_dims(1, 2); // [B, N, E]
        self.output_proj.forward(h)
    }

    /// Decoder logits `[B, length, 20]` in [`crate::alphabet`] order, padding positions
    /// cropped. Differentiable in `z` on an autodiff device (with [`Module::train`]'s copy
    /// of the VAE).
    pub fn decode_logits(&self, z: Tensor<2>) -> Tensor<3> {
        let logits = self.decode_padded(z);
        if self.length == self.input_dim {
            logits
        } else {
            logits.narrow(1, 0, self.length)
        }
    }

    /// Sequences by argmax of [`SeqVae::decode_logits`] (ties to the lower index).
    pub fn decode(&self, z: Tensor<2>) -> Vec<Sequence> {
        let [batch, _] = z.dims();
        let idx = self
            .decode_logits(z)
            .argmax(2)
            .reshape([batch * self.length]);
        let idx: Vec<i64> = idx
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .expect("int data");
        idx.chunks(self.length.max(1))
            .map(|row| {
                Sequence::from_indices(row.iter().map(|&i| i as u8).collect())
                    .expect("argmax over 20 logits is a residue index")
            })
            .collect()
    }

    /// Fraction of residues recovered by `decode(encode_mean(seqs))` (0 for no sequences).
    /// Panics on a wrong length (check with [`SeqVae::check_sequences`]).
    pub fn reconstruction_accuracy(&self, seqs: &[Sequence]) -> f64 {
        let total = seqs.len() * self.length;
        if total == 0 {
            return 0.0;
        }
        let mut hits = 0usize;
        for chunk in seqs.chunks(CHUNK) {
            let back = self.decode(self.encode_mean(chunk));
            for (a, b) in chunk.iter().zip(&back) {
                hits += a
                    .indices()
                    .iter()
                    .zip(b.indices())
                    .filter(|(x, y)| x == y)
                    .count();
            }
        }
        hits as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alphabet::AMINO_ACIDS;

    fn tiny() -> SeqVaeConfig {
        SeqVaeConfig {
            length: 10,
            input_dim: 12,
            latent_dim: 3,
            embedding_dim: 8,
        }
    }

    fn seqs() -> Vec<Sequence> {
        ["ACDEFGHIKL", "MNPQRSTVWY", "AAAAAAAAAA"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect()
    }

    #[test]
    fn vlgpo_alphabet_is_ours() {
        assert_eq!(VLGPO_ALPHABET, AMINO_ACIDS);
        assert_eq!(SeqVaeConfig::padded(237), 240);
        assert_eq!(SeqVaeConfig::padded(28), 28);
    }

    #[test]
    fn random_vae_round_trips_shapes_and_is_seeded() {
        let device = Device::flex();
        let vae = tiny().init(3, &device);
        assert_eq!(vae.config(), tiny());
        assert_eq!((vae.latent_dim(), vae.length()), (3, 10));
        let mu = vae.encode_mean(&seqs());
        assert_eq!(mu.dims(), [3, 3]);
        let (m, lv) = vae.encode(vae.tokens(&seqs(), &device));
        assert_eq!(lv.dims(), [3, 3]);
        assert_eq!(
            m.into_data().try_to_vec::<f32>().unwrap(),
            mu.clone().into_data().try_to_vec::<f32>().unwrap()
        );
        assert_eq!(vae.decode_padded(mu.clone()).dims(), [3, 12, 20]);
        assert_eq!(vae.decode_logits(mu.clone()).dims(), [3, 10, 20]);
        let back = vae.decode(mu);
        assert_eq!(back.len(), 3);
        assert!(back.iter().all(|s| s.len() == 10));
        let acc = vae.reconstruction_accuracy(&seqs());
        assert!((0.0..=1.0).contains(&acc));
        let again = tiny().init(3, &device);
        let other = tiny().init(4, &device);
        let w = |v: &SeqVae| {
            v.fc_dec
                .weight
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        assert_eq!(w(&vae), w(&again));
        assert_ne!(w(&vae), w(&other));
    }

    #[test]
    fn padding_gets_the_pad_token_and_wrong_lengths_are_named() {
        let device = Device::flex();
        let vae = tiny().init(1, &device);
        let t = vae.tokens(&seqs()[1..2], &device);
        let v = t.into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
        assert_eq!(&v[10..], &[i64::from(PAD_TOKEN); 2]);
        assert_eq!(v[0], 12); // 'M' in ARNDCQEGHILKMFPSTWYV
        let short: Sequence = "ACD".parse().unwrap();
        let err = vae
            .check_sequences(&[seqs()[0].clone(), short])
            .unwrap_err()
            .to_string();
        assert!(err.contains("sequence 1") && err.contains("10"), "{err}");
        let bad = SeqVaeConfig {
            input_dim: 10,
            ..tiny()
        };
        assert!(bad.check().unwrap_err().to_string().contains("input_dim"));
    }
}
