//! The building blocks of VLGPO's UNet1D (`unet_1d.py`): the time-conditioned ResNet block
//! and the two attentions (linear attention at every level, full attention in the middle),
//! each behind its pre-norm residual.

use burn::prelude::*;
use burn::tensor::activation::{silu, softmax};

use super::layers::{RmsNorm, TorchConv1d, TorchLinear};

/// Heads of every attention in the published priors (`heads=4`).
pub const HEADS: usize = 4;
/// Width of one head (`dim_head=32`).
pub const DIM_HEAD: usize = 32;

/// `Block`: Conv1d k3 p1 -> RMSNorm -> optional `x * (scale + 1) + shift` -> SiLU.
#[derive(Module, Debug)]
pub struct Block {
    /// `proj`.
    pub proj: TorchConv1d,
    /// `norm`.
    pub norm: RmsNorm,
}

impl Block {
    /// `[B, in, N] -> [B, out, N]`; `scale_shift` are `[B, out, 1]` each.
    pub fn forward(&self, x: Tensor<3>, scale_shift: Option<(Tensor<3>, Tensor<3>)>) -> Tensor<3> {
        let mut x = self.norm.forward(self.proj.forward(x));
        if let Some((scale, shift)) = scale_shift {
            x = x * (scale + 1.0) + shift;
        }
        silu(x)
    }
}

/// `ResnetBlock`: the time embedding (SiLU -> Linear) gives scale and shift of `block1`;
/// `block2` runs unconditioned (VLGPO samples without its fitness embedding, so the
/// checkpoint's `fitness_mlp` is never used); `res_conv` (1x1) where the width changes.
#[derive(Module, Debug)]
pub struct ResnetBlock {
    /// `time_mlp.1`: `time_dim -> 2 * out`.
    pub time_mlp: TorchLinear,
    /// `block1`.
    pub block1: Block,
    /// `block2`.
    pub block2: Block,
    /// `res_conv` (absent when in == out: identity).
    pub res_conv: Option<TorchConv1d>,
}

impl ResnetBlock {
    /// `x [B, in, N]`, `time_emb [B, time_dim]` -> `[B, out, N]`.
    pub fn forward(&self, x: Tensor<3>, time_emb: Tensor<2>) -> Tensor<3> {
        let ss = self.time_mlp.forward(silu(time_emb));
        let [batch, two_out] = ss.dims();
        let ss = ss.reshape([batch, two_out, 1]);
        let out = two_out / 2;
        let scale = ss.clone().narrow(1, 0, out);
        let shift = ss.narrow(1, out, out);
        let h = self.block1.forward(x.clone(), Some((scale, shift)));
        let h = self.block2.forward(h, None);
        let skip = match &self.res_conv {
            Some(conv) => conv.forward(x),
            None => x,
        };
        h + skip
    }
}

/// Splits `to_qkv(x)` `[B, 3 * H * D, N]` into q, k, v, each `[B, H, D, N]`.
fn heads(qkv: Tensor<3>) -> [Tensor<4>; 3] {
    let [batch, three_hidden, n] = qkv.dims();
    let hidden = three_hidden / 3;
    let part = |i: usize| {
        qkv.clone()
            .narrow(1, i * hidden, hidden)
            .reshape([batch, HEADS, hidden / HEADS, n])
    };
    [part(0), part(1), part(2)]
}

/// `LinearAttention`: softmax of q over the head channels and of k over positions, context
/// `k v^T` per head, output `context^T q`, then `to_out` (1x1 conv + RMSNorm).
#[derive(Module, Debug)]
pub struct LinearAttention {
    /// `to_qkv`: 1x1 conv without bias, `dim -> 3 * 128`.
    pub to_qkv: TorchConv1d,
    /// `to_out.0`: 1x1 conv `128 -> dim`.
    pub to_out: TorchConv1d,
    /// `to_out.1`.
    pub to_out_norm: RmsNorm,
}

impl LinearAttention {
    /// `[B, dim, N] -> [B, dim, N]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, _, n] = x.dims();
        let [q, k, v] = heads(self.to_qkv.forward(x));
        let q = softmax(q, 2) * (DIM_HEAD as f64).powf(-0.5);
        let k = softmax(k, 3);
        let context = k.matmul(v.swap_dims(2, 3)); // [B, H, d, e]
        let out = context.swap_dims(2, 3).matmul(q); // [B, H, e, N]
        let out = out.reshape([batch, HEADS * DIM_HEAD, n]);
        self.to_out_norm.forward(self.to_out.forward(out))
    }
}

/// `Attention`: softmax attention over positions per head, then `to_out` (1x1 conv).
#[derive(Module, Debug)]
pub struct Attention {
    /// `to_qkv`: 1x1 conv without bias, `dim -> 3 * 128`.
    pub to_qkv: TorchConv1d,
    /// `to_out`: 1x1 conv `128 -> dim`.
    pub to_out: TorchConv1d,
}

impl Attention {
    /// `[B, dim, N] -> [B, dim, N]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, _, n] = x.dims();
        let [q, k, v] = heads(self.to_qkv.forward(x));
        let q = q * (DIM_HEAD as f64).powf(-0.5);
        let attn = softmax(q.swap_dims(2, 3).matmul(k), 3); // [B, H, i, j]
        let out = v.matmul(attn.swap_dims(2, 3)); // [B, H, d, i]
        self.to_out
            .forward(out.reshape([batch, HEADS * DIM_HEAD, n]))
    }
}

/// `Residual(PreNorm(dim, fn))`: `fn(RMSNorm(x)) + x`, with `fn` a linear attention.
#[derive(Module, Debug)]
pub struct LinearAttentionBlock {
    /// `fn.norm`.
    pub norm: RmsNorm,
    /// `fn.fn`.
    pub attn: LinearAttention,
}

impl LinearAttentionBlock {
    /// `[B, dim, N] -> [B, dim, N]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.attn.forward(self.norm.forward(x.clone())) + x
    }
}

/// `Residual(PreNorm(dim, Attention))` of the middle of the UNet.
#[derive(Module, Debug)]
pub struct AttentionBlock {
    /// `fn.norm`.
    pub norm: RmsNorm,
    /// `fn.fn`.
    pub attn: Attention,
}

impl AttentionBlock {
    /// `[B, dim, N] -> [B, dim, N]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.attn.forward(self.norm.forward(x.clone())) + x
    }
}
