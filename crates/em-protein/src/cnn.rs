//! The GGS benchmark's CNN fitness model (oracle and predictors share it) as a burn module:
//! Conv1d -> per-position Linear + ReLU -> max over length -> Linear, loaded from and saved
//! to safetensors with the PyTorch tensor names, differentiable in its (relaxed) one-hot input.

mod fused;
mod fused_train;
pub(crate) mod store;

pub use fused::FusedCnn;
pub use fused_train::{CnnAdam, mse_and_grads};

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::module::Param;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::relu;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::alphabet::{ALPHABET_SIZE, one_hot};

/// Sequences scored per forward pass by [`Cnn::score`].
pub const SCORE_CHUNK: usize = 512;

/// Errors from loading, saving or scoring with a [`Cnn`]; each names the file or sequence.
#[derive(Debug, thiserror::Error)]
pub enum CnnError {
    /// The safetensors file could not be read or written.
    #[error("{path}: {message}")]
    Store {
        /// The file.
        path: PathBuf,
        /// What the store reported.
        message: String,
    },
    /// A tensor the model needs is not in the file.
    #[error("{path}: tensor `{tensor}` is missing")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor name (`encoder.weight`, ...).
        tensor: String,
    },
    /// The file has a tensor the model does not know (a different architecture).
    #[error("{path}: unexpected tensor `{tensor}` (not part of the GGS CNN)")]
    UnexpectedTensor {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
    },
    /// A tensor has the wrong shape or dtype for the configured model.
    #[error("{path}: tensor `{tensor}`: {message}")]
    BadTensor {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
        /// Expected vs found.
        message: String,
    },
    /// A sequence is shorter than the convolution kernel or holds an index outside the alphabet.
    #[error("sequence {index}: {message}")]
    BadSequence {
        /// Position of the sequence in the scored slice.
        index: usize,
        /// What is wrong with it.
        message: String,
    },
    /// Hand-given weights have the wrong number of values.
    #[error("weights `{tensor}`: expected {expected} values, found {found}")]
    WeightLength {
        /// The tensor name.
        tensor: &'static str,
        /// Values the configuration needs.
        expected: usize,
        /// Values given.
        found: usize,
    },
}

/// Shape of the CNN; the defaults are the GGS oracle's (20 -> 256 -> 512 -> 1, kernel 5).
#[derive(Config, Debug, PartialEq)]
pub struct CnnConfig {
    /// Alphabet size, the input width (`n_tokens` in GGS).
    #[config(default = 20)]
    pub n_tokens: usize,
    /// Convolution kernel width (no padding, stride 1).
    #[config(default = 5)]
    pub kernel_size: usize,
    /// Convolution output channels (`input_size` in GGS).
    #[config(default = 256)]
    pub channels: usize,
    /// Width of the per-position embedding before the max (GGS: `2 * input_size`).
    #[config(default = 512)]
    pub embedding: usize,
}

/// `Linear` + ReLU at every position, then a max over the length (GGS's `LengthMaxPool1D`).
#[derive(Module, Debug)]
pub struct LengthMaxPool {
    /// The per-position linear layer (`embedding.layer.*`).
    pub layer: Linear,
}

/// The GGS CNN. Field names give the safetensors names `encoder.*`, `embedding.layer.*`,
/// `decoder.*`.
#[derive(Module, Debug)]
pub struct Cnn {
    /// Conv1d `n_tokens -> channels`, kernel `kernel_size`, no padding.
    pub encoder: Conv1d,
    /// Per-position Linear `channels -> embedding`, ReLU, max over length.
    pub embedding: LengthMaxPool,
    /// Linear `embedding -> 1`.
    pub decoder: Linear,
}

/// Plain weights in PyTorch layout, for building a [`Cnn`] by hand (tests, seeded init).
#[derive(Debug, Clone, PartialEq)]
pub struct CnnWeights {
    /// `[channels, n_tokens, kernel_size]`, row-major.
    pub encoder_weight: Vec<f32>,
    /// `[channels]`.
    pub encoder_bias: Vec<f32>,
    /// `[embedding, channels]` (PyTorch `Linear` layout: output-major), row-major.
    pub embedding_weight: Vec<f32>,
    /// `[embedding]`.
    pub embedding_bias: Vec<f32>,
    /// `[embedding]` (the single output row).
    pub decoder_weight: Vec<f32>,
    /// The output bias.
    pub decoder_bias: f32,
}

impl CnnWeights {
    /// The six tensors as flat slices in a fixed order (encoder weight and bias, embedding
    /// weight and bias, decoder weight and bias), for element-wise optimisers.
    pub fn slices(&self) -> [&[f32]; 6] {
        [
            &self.encoder_weight,
            &self.encoder_bias,
            &self.embedding_weight,
            &self.embedding_bias,
            &self.decoder_weight,
            std::slice::from_ref(&self.decoder_bias),
        ]
    }

    /// [`CnnWeights::slices`], mutable.
    pub fn slices_mut(&mut self) -> [&mut [f32]; 6] {
        [
            &mut self.encoder_weight,
            &mut self.encoder_bias,
            &mut self.embedding_weight,
            &mut self.embedding_bias,
            &mut self.decoder_weight,
            std::slice::from_mut(&mut self.decoder_bias),
        ]
    }
}

impl CnnConfig {
    /// A CNN with PyTorch's default initialisation (uniform in `+-1/sqrt(fan_in)` for weights
    /// and biases), drawn from `StdRng::seed_from_u64(seed)`: same seed, same weights.
    pub fn init(&self, seed: u64, device: &Device) -> Cnn {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut uniform = |n: usize, fan_in: usize| -> Vec<f32> {
            let bound = 1.0 / (fan_in as f32).sqrt();
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        };
        let conv_fan_in = self.n_tokens * self.kernel_size;
        let weights = CnnWeights {
            encoder_weight: uniform(self.channels * conv_fan_in, conv_fan_in),
            encoder_bias: uniform(self.channels, conv_fan_in),
            embedding_weight: uniform(self.embedding * self.channels, self.channels),
            embedding_bias: uniform(self.embedding, self.channels),
            decoder_weight: uniform(self.embedding, self.embedding),
            decoder_bias: uniform(1, self.embedding)[0],
        };
        // The lengths match the configuration by construction.
        self.from_weights(&weights, device)
            .expect("seeded weights have the configured sizes")
    }

    /// Build a CNN from hand-given weights in PyTorch layout.
    pub fn from_weights(&self, w: &CnnWeights, device: &Device) -> Result<Cnn, CnnError> {
        let check = |tensor: &'static str, v: &[f32], expected: usize| {
            if v.len() == expected {
                Ok(())
            } else {
                Err(CnnError::WeightLength {
                    tensor,
                    expected,
                    found: v.len(),
                })
            }
        };
        let (t, k, c, e) = (
            self.n_tokens,
            self.kernel_size,
            self.channels,
            self.embedding,
        );
        check("encoder.weight", &w.encoder_weight, c * t * k)?;
        check("encoder.bias", &w.encoder_bias, c)?;
        check("embedding.layer.weight", &w.embedding_weight, e * c)?;
        check("embedding.layer.bias", &w.embedding_bias, e)?;
        check("decoder.weight", &w.decoder_weight, e)?;
        let mut cnn = self.skeleton(device);
        cnn.encoder.weight = param(w.encoder_weight.clone(), [c, t, k], device);
        cnn.encoder.bias = Some(param(w.encoder_bias.clone(), [c], device));
        // burn's Linear stores [in, out]; PyTorch gives [out, in].
        let emb: Tensor<2> =
            Tensor::from_data(TensorData::new(w.embedding_weight.clone(), [e, c]), device);
        cnn.embedding.layer.weight = Param::from_tensor(emb.transpose());
        cnn.embedding.layer.bias = Some(param(w.embedding_bias.clone(), [e], device));
        cnn.decoder.weight = param(w.decoder_weight.clone(), [e, 1], device);
        cnn.decoder.bias = Some(param(vec![w.decoder_bias], [1], device));
        Ok(cnn)
    }

    /// A CNN of this shape with placeholder (zero) weights, ready to be loaded into.
    fn skeleton(&self, device: &Device) -> Cnn {
        let zeros = burn::nn::Initializer::Zeros;
        Cnn {
            encoder: Conv1dConfig::new(self.n_tokens, self.channels, self.kernel_size)
                .with_initializer(zeros.clone())
                .init(device),
            embedding: LengthMaxPool {
                layer: LinearConfig::new(self.channels, self.embedding)
                    .with_initializer(zeros.clone())
                    .init(device),
            },
            decoder: LinearConfig::new(self.embedding, 1)
                .with_initializer(zeros)
                .init(device),
        }
    }
}

fn param<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
}

impl Cnn {
    /// The configuration this module was built with (read off its parameter shapes).
    pub fn config(&self) -> CnnConfig {
        let [channels, n_tokens, kernel_size] = self.encoder.weight.dims();
        let [_, embedding] = self.embedding.layer.weight.dims();
        CnnConfig {
            n_tokens,
            kernel_size,
            channels,
            embedding,
        }
    }

    /// The weights in PyTorch layout (the inverse of [`CnnConfig::from_weights`]).
    pub fn weights(&self) -> CnnWeights {
        let bias = |b: &Option<Param<Tensor<1>>>| b.as_ref().map(|p| tensor_to_vec(p.val()));
        CnnWeights {
            encoder_weight: tensor_to_vec(self.encoder.weight.val()),
            encoder_bias: bias(&self.encoder.bias).unwrap_or_default(),
            embedding_weight: tensor_to_vec(self.embedding.layer.weight.val().transpose()),
            embedding_bias: bias(&self.embedding.layer.bias).unwrap_or_default(),
            decoder_weight: tensor_to_vec(self.decoder.weight.val()),
            decoder_bias: bias(&self.decoder.bias)
                .and_then(|b| b.first().copied())
                .unwrap_or(0.0),
        }
    }

    /// Raw scores `[batch]` of one-hot or relaxed inputs `[batch, length, n_tokens]`
    /// (length >= kernel size). Differentiable in `x` on an autodiff device.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<1> {
        let [batch, _, _] = x.dims();
        let h = self.encoder.forward(x.swap_dims(1, 2)); // [B, C, L-k+1]
        let h = relu(self.embedding.layer.forward(h.swap_dims(1, 2))); // [B, L', E]
        let h = h.max_dim(1); // [B, 1, E]
        let [_, _, e] = h.dims();
        self.decoder.forward(h.reshape([batch, e])).reshape([batch])
    }

    /// Scores and input gradients `df/dx` (same shape as `x`) via burn autodiff. `x` may live
    /// on a plain or an autodiff device; the returned tensors carry no autodiff graph.
    /// Parameter gradients are not computed (first order in `x` only).
    /// On the plain CPU device in f32 this runs the folded [`FusedCnn`] path instead.
    pub fn input_gradient(&self, x: Tensor<3>) -> (Tensor<1>, Tensor<3>) {
        if em_core::kernels::is_host_f32(&x)
            && let Some(fused) = FusedCnn::of(self)
        {
            let dims @ [batch, length, _] = x.dims();
            let (f, g) = fused.score_and_grad(&tensor_to_vec(x.clone()), length);
            let device = x.device();
            return (
                Tensor::from_data(TensorData::new(f, [batch]), &device),
                Tensor::from_data(TensorData::new(g, dims), &device),
            );
        }
        let model = self.clone().train().no_grad();
        let x = x.detach().autodiff().require_grad();
        let f = model.forward(x.clone());
        let grads = f.clone().sum().backward();
        let g = x
            .grad(&grads)
            .expect("input marked require_grad has a gradient");
        (f.detach().inner(), g)
    }

    /// Raw scores of index sequences (indices per [`crate::alphabet`]), one-hot encoded and
    /// run in chunks of [`SCORE_CHUNK`] without autodiff (through [`FusedCnn`] on the plain
    /// CPU device in f32). Sequences of different lengths
    /// are grouped by length; the output keeps the input order.
    pub fn score(&self, seqs: &[Vec<u8>]) -> Result<Vec<f32>, CnnError> {
        let config = self.config();
        let mut by_length: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (index, seq) in seqs.iter().enumerate() {
            if seq.len() < config.kernel_size {
                return Err(CnnError::BadSequence {
                    index,
                    message: format!(
                        "length {} is shorter than the kernel ({})",
                        seq.len(),
                        config.kernel_size
                    ),
                });
            }
            if let Some(&r) = seq.iter().find(|&&r| r as usize >= config.n_tokens) {
                return Err(CnnError::BadSequence {
                    index,
                    message: format!("residue index {r} is outside the alphabet"),
                });
            }
            by_length.entry(seq.len()).or_default().push(index);
        }
        let model = self.valid();
        let device = first_device(&model);
        let fused = FusedCnn::of(&model);
        let mut out = vec![0.0f32; seqs.len()];
        for (length, indices) in by_length {
            for chunk in indices.chunks(SCORE_CHUNK) {
                let batch: Vec<Vec<u8>> = chunk.iter().map(|&i| seqs[i].clone()).collect();
                let scores = match &fused {
                    Some(f) => f.score(&one_hot(&batch, length), length),
                    None => tensor_to_vec(model.forward(one_hot_tensor(&batch, length, &device))),
                };
                for (&i, s) in chunk.iter().zip(scores) {
                    out[i] = s;
                }
            }
        }
        Ok(out)
    }
}

/// The device the module's parameters live on.
fn first_device(cnn: &Cnn) -> Device {
    cnn.encoder.weight.val().device()
}

/// One-hot `[batch, length, 20]` tensor of equal-length index sequences.
pub fn one_hot_tensor(seqs: &[Vec<u8>], length: usize, device: &Device) -> Tensor<3> {
    Tensor::from_data(
        TensorData::new(one_hot(seqs, length), [seqs.len(), length, ALPHABET_SIZE]),
        device,
    )
}

/// Values of a float tensor as `f32` (any float dtype).
pub fn tensor_to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("converted to f32")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> CnnConfig {
        CnnConfig::new()
            .with_kernel_size(3)
            .with_channels(4)
            .with_embedding(6)
    }

    #[test]
    fn seeded_init_is_reproducible_and_config_round_trips() {
        let device = Device::flex();
        let a = tensor_to_vec(tiny().init(7, &device).encoder.weight.val());
        let b = tensor_to_vec(tiny().init(7, &device).encoder.weight.val());
        let c = tensor_to_vec(tiny().init(8, &device).encoder.weight.val());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(tiny().init(1, &device).config(), tiny());
        let cnn = tiny().init(5, &device);
        let back = tiny().from_weights(&cnn.weights(), &device).unwrap();
        assert_eq!(back.weights(), cnn.weights());
    }

    #[test]
    fn score_groups_lengths_and_rejects_bad_sequences() {
        let device = Device::flex();
        let cnn = tiny().init(3, &device);
        let seqs = vec![vec![0u8, 1, 2, 3], vec![5u8, 6, 7], vec![0u8, 1, 2, 3]];
        let s = cnn.score(&seqs).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0], s[2]);
        let alone = cnn.score(&seqs[1..2]).unwrap();
        assert!((alone[0] - s[1]).abs() < 1e-6);
        let err = cnn.score(&[vec![0u8, 1]]).unwrap_err().to_string();
        assert!(
            err.contains("sequence 0") && err.contains("kernel"),
            "{err}"
        );
        let err = cnn.score(&[vec![0u8, 1, 20]]).unwrap_err().to_string();
        assert!(err.contains("outside the alphabet"), "{err}");
    }

    #[test]
    fn wrong_weight_lengths_are_named() {
        let device = Device::flex();
        let mut w = CnnWeights {
            encoder_weight: vec![0.0; 4 * 20 * 3],
            encoder_bias: vec![0.0; 4],
            embedding_weight: vec![0.0; 6 * 4],
            embedding_bias: vec![0.0; 6],
            decoder_weight: vec![0.0; 6],
            decoder_bias: 0.0,
        };
        assert!(tiny().from_weights(&w, &device).is_ok());
        w.embedding_weight.pop();
        let err = tiny().from_weights(&w, &device).unwrap_err().to_string();
        assert!(err.contains("embedding.layer.weight"), "{err}");
    }
}
