//! VLGPO's latent flow-matching prior, `Unet1D(dim, dim_mults=(1, 2), channels=1)` of
//! `unet_1d.py`, forward only: `v(z, t)` for latents `z [B, 1, latent]` and times `t [B]`,
//! differentiable in `z` under burn autodiff.

use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::gelu;

use super::blocks::{AttentionBlock, LinearAttentionBlock, ResnetBlock};
use super::layers::{TorchConv1d, TorchLinear};

/// `theta` of the sinusoidal time embedding (`sinusoidal_pos_emb_theta=10000`).
pub const THETA: f64 = 10_000.0;

/// One level on the way down: two ResNet blocks (each output kept for a skip), linear
/// attention, then a stride-2 conv (k4 p1), or at the last level a k3 p1 conv to the next
/// width.
#[derive(Module, Debug)]
pub struct DownLevel {
    /// `downs.i.0`.
    pub block1: ResnetBlock,
    /// `downs.i.1`.
    pub block2: ResnetBlock,
    /// `downs.i.2`.
    pub attn: LinearAttentionBlock,
    /// `downs.i.3`.
    pub down: TorchConv1d,
}

/// One level on the way up: each ResNet block takes the concatenation with a skip; then
/// linear attention and nearest x2 upsampling + k3 conv (at the last level the conv only).
#[derive(Module, Debug)]
pub struct UpLevel {
    /// `ups.i.0`.
    pub block1: ResnetBlock,
    /// `ups.i.1`.
    pub block2: ResnetBlock,
    /// `ups.i.2`.
    pub attn: LinearAttentionBlock,
    /// `ups.i.3` (`ups.i.3.1` after the `nn.Upsample` when `upsample`).
    pub up: TorchConv1d,
    /// Whether the level doubles the length before `up`.
    #[module(skip)]
    pub upsample: bool,
}

/// VLGPO's UNet1D velocity field.
#[derive(Module, Debug)]
pub struct Unet1D {
    /// `init_conv`: `channels -> dim`, k7 p3.
    pub init_conv: TorchConv1d,
    /// `time_mlp.1`: `dim -> 4 dim`.
    pub time_mlp1: TorchLinear,
    /// `time_mlp.3`: `4 dim -> 4 dim` (after GELU).
    pub time_mlp2: TorchLinear,
    /// `downs`.
    pub downs: Vec<DownLevel>,
    /// `mid_block1`.
    pub mid_block1: ResnetBlock,
    /// `mid_attn`.
    pub mid_attn: AttentionBlock,
    /// `mid_block2`.
    pub mid_block2: ResnetBlock,
    /// `ups`.
    pub ups: Vec<UpLevel>,
    /// `final_res_block`: `2 dim -> dim`.
    pub final_res_block: ResnetBlock,
    /// `final_conv`: 1x1 `dim -> channels`.
    pub final_conv: TorchConv1d,
    /// `dim`, the width of the sinusoidal time embedding.
    #[module(skip)]
    pub dim: usize,
}

/// `SinusoidalPosEmb(dim)` of times `t`: `[sin(t w_i), cos(t w_i)]` with
/// `w_i = exp(-i ln(theta) / (dim/2 - 1))`, `i < dim/2`; `[B, dim]` (computed in f64).
pub fn sinusoidal_embedding(t: &[f64], dim: usize, device: &Device) -> Tensor<2> {
    let half = dim / 2;
    let step = THETA.ln() / (half as f64 - 1.0);
    let mut values = Vec::with_capacity(t.len() * 2 * half);
    for &ti in t {
        let args: Vec<f64> = (0..half).map(|i| ti * (-(i as f64) * step).exp()).collect();
        values.extend(args.iter().map(|a| a.sin()));
        values.extend(args.iter().map(|a| a.cos()));
    }
    Tensor::from_data(TensorData::new(values, [t.len(), 2 * half]), device)
}

/// Nearest-neighbour upsampling by 2 along the length: `[B, C, N] -> [B, C, 2N]`.
fn upsample_nearest2(x: Tensor<3>) -> Tensor<3> {
    let [b, c, n] = x.dims();
    x.reshape([b, c, n, 1])
        .repeat_dim(3, 2)
        .reshape([b, c, 2 * n])
}

impl Unet1D {
    /// Latent length the UNet accepts: a multiple of `2^(levels - 1)`.
    pub fn length_multiple(&self) -> usize {
        1 << self.downs.len().saturating_sub(1)
    }

    /// The time embedding `[B, 4 dim]`: sinusoidal -> Linear -> GELU -> Linear.
    pub fn time_embedding(&self, t: &[f64], device: &Device) -> Tensor<2> {
        let emb = sinusoidal_embedding(t, self.dim, device);
        self.time_mlp2.forward(gelu(self.time_mlp1.forward(emb)))
    }

    /// Velocity `[B, 1, latent]` at latents `z [B, 1, latent]` and times `t` (`B` values).
    ///
    /// # Panics
    /// If `t.len()` differs from the batch or the latent length is not a multiple of
    /// [`Unet1D::length_multiple`] (programmer errors: the sampler builds both).
    pub fn forward(&self, z: Tensor<3>, t: &[f64]) -> Tensor<3> {
        let [batch, _, length] = z.dims();
        assert_eq!(t.len(), batch, "one time per latent");
        assert_eq!(length % self.length_multiple(), 0, "latent length");
        let temb = self.time_embedding(t, &z.device());
        let mut x = self.init_conv.forward(z);
        let r = x.clone();
        let mut skips = Vec::with_capacity(2 * self.downs.len());
        for level in &self.downs {
            x = level.block1.forward(x, temb.clone());
            skips.push(x.clone());
            x = level.block2.forward(x, temb.clone());
            x = level.attn.forward(x);
            skips.push(x.clone());
            x = level.down.forward(x);
        }
        x = self.mid_block1.forward(x, temb.clone());
        x = self.mid_attn.forward(x);
        x = self.mid_block2.forward(x, temb.clone());
        for level in &self.ups {
            let skip = skips.pop().expect("one skip per block");
            x = level
                .block1
                .forward(Tensor::cat(vec![x, skip], 1), temb.clone());
            let skip = skips.pop().expect("one skip per block");
            x = level
                .block2
                .forward(Tensor::cat(vec![x, skip], 1), temb.clone());
            x = level.attn.forward(x);
            if level.upsample {
                x = upsample_nearest2(x);
            }
            x = level.up.forward(x);
        }
        let x = self
            .final_res_block
            .forward(Tensor::cat(vec![x, r], 1), temb);
        self.final_conv.forward(x)
    }
}
