//! Assembles a [`Unet1D`] from tensors named as in VLGPO's PyTorch `state_dict`, drawn from
//! a [`WeightSource`]: a checkpoint ([`super::store`]) or seeded random values (tests).

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::TensorData;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::VlgpoError;
use super::blocks::{
    Attention, AttentionBlock, Block, DIM_HEAD, HEADS, LinearAttention, LinearAttentionBlock,
    ResnetBlock,
};
use super::layers::{RmsNorm, TorchConv1d, TorchLinear};
use super::unet::{DownLevel, Unet1D, UpLevel};

/// Where the named tensors come from.
pub trait WeightSource {
    /// The values (row-major, PyTorch layout) of tensor `name`, which must have `shape`.
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, VlgpoError>;
}

/// Shape of a VLGPO UNet1D. The published priors are `dim = 8`, `dim_mults = [1, 2]`,
/// `channels = 1` (the `prior.dim` of VLGPO's configs and `sample.py`'s constructor call).
#[derive(Debug, Clone, PartialEq)]
pub struct Unet1DConfig {
    /// Base width (`dim`, also `init_dim`); the time embedding is `4 * dim` wide.
    pub dim: usize,
    /// Width multipliers per level.
    pub dim_mults: Vec<usize>,
    /// Input/output channels (1: the latent is one channel of length `latent_dim`).
    pub channels: usize,
}

impl Unet1DConfig {
    /// The published priors' shape with base width `dim`.
    pub fn vlgpo(dim: usize) -> Self {
        Self {
            dim,
            dim_mults: vec![1, 2],
            channels: 1,
        }
    }

    /// A UNet of this shape with PyTorch-default-like random weights (uniform in
    /// `+-1/sqrt(fan_in)`; RMSNorm gains `1 + U(-0.1, 0.1)`) drawn from
    /// `StdRng::seed_from_u64(seed)`: same seed, same weights. For tests.
    pub fn init(&self, seed: u64, device: &Device) -> Unet1D {
        let mut source = RandomSource(StdRng::seed_from_u64(seed));
        self.build(&mut source, device)
            .expect("random weights have the asked shapes")
    }

    /// Builds the UNet, asking `source` for every tensor by its PyTorch name.
    pub fn build(
        &self,
        source: &mut dyn WeightSource,
        device: &Device,
    ) -> Result<Unet1D, VlgpoError> {
        let mut b = Builder { source, device };
        let dim = self.dim;
        let time_dim = 4 * dim;
        let mut dims = vec![dim];
        dims.extend(self.dim_mults.iter().map(|m| dim * m));
        let in_out: Vec<(usize, usize)> = dims.windows(2).map(|w| (w[0], w[1])).collect();
        let levels = in_out.len();
        let init_conv = b.conv("init_conv", dim, self.channels, 7, 1, 3, true)?;
        let time_mlp1 = b.linear("time_mlp.1", time_dim, dim)?;
        let time_mlp2 = b.linear("time_mlp.3", time_dim, time_dim)?;
        let mut downs = Vec::with_capacity(levels);
        for (i, &(d_in, d_out)) in in_out.iter().enumerate() {
            let p = format!("downs.{i}");
            let last = i + 1 == levels;
            downs.push(DownLevel {
                block1: b.resnet(&format!("{p}.0"), d_in, d_in, time_dim)?,
                block2: b.resnet(&format!("{p}.1"), d_in, d_in, time_dim)?,
                attn: b.linear_attention(&format!("{p}.2"), d_in)?,
                down: if last {
                    b.conv(&format!("{p}.3"), d_out, d_in, 3, 1, 1, true)?
                } else {
                    b.conv(&format!("{p}.3"), d_out, d_in, 4, 2, 1, true)?
                },
            });
        }
        let mid = dims[dims.len() - 1];
        let mid_block1 = b.resnet("mid_block1", mid, mid, time_dim)?;
        let mid_attn = AttentionBlock {
            norm: b.norm("mid_attn.fn.norm", mid)?,
            attn: Attention {
                to_qkv: b.conv(
                    "mid_attn.fn.fn.to_qkv",
                    3 * HEADS * DIM_HEAD,
                    mid,
                    1,
                    1,
                    0,
                    false,
                )?,
                to_out: b.conv(
                    "mid_attn.fn.fn.to_out",
                    mid,
                    HEADS * DIM_HEAD,
                    1,
                    1,
                    0,
                    true,
                )?,
            },
        };
        let mid_block2 = b.resnet("mid_block2", mid, mid, time_dim)?;
        let mut ups = Vec::with_capacity(levels);
        for (i, &(d_in, d_out)) in in_out.iter().rev().enumerate() {
            let p = format!("ups.{i}");
            let last = i + 1 == levels;
            let up_name = if last {
                format!("{p}.3")
            } else {
                format!("{p}.3.1")
            };
            ups.push(UpLevel {
                block1: b.resnet(&format!("{p}.0"), d_out + d_in, d_out, time_dim)?,
                block2: b.resnet(&format!("{p}.1"), d_out + d_in, d_out, time_dim)?,
                attn: b.linear_attention(&format!("{p}.2"), d_out)?,
                up: b.conv(&up_name, d_in, d_out, 3, 1, 1, true)?,
                upsample: !last,
            });
        }
        let final_res_block = b.resnet("final_res_block", 2 * dim, dim, time_dim)?;
        let final_conv = b.conv("final_conv", self.channels, dim, 1, 1, 0, true)?;
        Ok(Unet1D {
            init_conv,
            time_mlp1,
            time_mlp2,
            downs,
            mid_block1,
            mid_attn,
            mid_block2,
            ups,
            final_res_block,
            final_conv,
            dim,
        })
    }
}

struct Builder<'a> {
    source: &'a mut dyn WeightSource,
    device: &'a Device,
}

impl Builder<'_> {
    fn param<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
    ) -> Result<Param<Tensor<D>>, VlgpoError> {
        let values = self.source.take(name, &shape)?;
        Ok(Param::from_tensor(Tensor::from_data(
            TensorData::new(values, shape),
            self.device,
        )))
    }

    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        prefix: &str,
        out: usize,
        input: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        bias: bool,
    ) -> Result<TorchConv1d, VlgpoError> {
        Ok(TorchConv1d {
            weight: self.param(&format!("{prefix}.weight"), [out, input, kernel])?,
            bias: if bias {
                Some(self.param(&format!("{prefix}.bias"), [out])?)
            } else {
                None
            },
            stride,
            padding,
        })
    }

    fn linear(
        &mut self,
        prefix: &str,
        out: usize,
        input: usize,
    ) -> Result<TorchLinear, VlgpoError> {
        Ok(TorchLinear {
            weight: self.param(&format!("{prefix}.weight"), [out, input])?,
            bias: self.param(&format!("{prefix}.bias"), [out])?,
        })
    }

    fn norm(&mut self, prefix: &str, dim: usize) -> Result<RmsNorm, VlgpoError> {
        Ok(RmsNorm {
            g: self.param(&format!("{prefix}.g"), [1, dim, 1])?,
        })
    }

    fn block(&mut self, prefix: &str, out: usize, input: usize) -> Result<Block, VlgpoError> {
        Ok(Block {
            proj: self.conv(&format!("{prefix}.proj"), out, input, 3, 1, 1, true)?,
            norm: self.norm(&format!("{prefix}.norm"), out)?,
        })
    }

    fn resnet(
        &mut self,
        prefix: &str,
        input: usize,
        out: usize,
        time_dim: usize,
    ) -> Result<ResnetBlock, VlgpoError> {
        Ok(ResnetBlock {
            time_mlp: self.linear(&format!("{prefix}.time_mlp.1"), 2 * out, time_dim)?,
            block1: self.block(&format!("{prefix}.block1"), out, input)?,
            block2: self.block(&format!("{prefix}.block2"), out, out)?,
            res_conv: if input != out {
                Some(self.conv(&format!("{prefix}.res_conv"), out, input, 1, 1, 0, true)?)
            } else {
                None
            },
        })
    }

    fn linear_attention(
        &mut self,
        prefix: &str,
        dim: usize,
    ) -> Result<LinearAttentionBlock, VlgpoError> {
        let hidden = HEADS * DIM_HEAD;
        Ok(LinearAttentionBlock {
            norm: self.norm(&format!("{prefix}.fn.norm"), dim)?,
            attn: LinearAttention {
                to_qkv: self.conv(
                    &format!("{prefix}.fn.fn.to_qkv"),
                    3 * hidden,
                    dim,
                    1,
                    1,
                    0,
                    false,
                )?,
                to_out: self.conv(
                    &format!("{prefix}.fn.fn.to_out.0"),
                    dim,
                    hidden,
                    1,
                    1,
                    0,
                    true,
                )?,
                to_out_norm: self.norm(&format!("{prefix}.fn.fn.to_out.1"), dim)?,
            },
        })
    }
}

/// Seeded random weights (see [`Unet1DConfig::init`]).
struct RandomSource(StdRng);

impl WeightSource for RandomSource {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, VlgpoError> {
        let n: usize = shape.iter().product();
        if name.ends_with(".g") {
            return Ok((0..n)
                .map(|_| 1.0 + self.0.random_range(-0.1..0.1))
                .collect());
        }
        // PyTorch's default bound 1/sqrt(fan_in); a bias's fan-in is its layer's, which the
        // bias's own shape does not carry: 1/sqrt(n) keeps it of the same order.
        let fan_in = if shape.len() > 1 {
            shape[1..].iter().product::<usize>()
        } else {
            n
        };
        let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
        Ok((0..n).map(|_| self.0.random_range(-bound..bound)).collect())
    }
}
