//! The three primitive layers of VLGPO's UNet1D, holding their weights in PyTorch layout so
//! a checkpoint maps onto them one tensor to one parameter: Conv1d, Linear and RMSNorm.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::module::conv1d;
use burn::tensor::ops::ConvOptions;

/// `nn.Conv1d` with weight `[out, in, kernel]`, optional bias `[out]`, stride and symmetric
/// zero padding.
#[derive(Module, Debug)]
pub struct TorchConv1d {
    /// `[out, in, kernel]`.
    pub weight: Param<Tensor<3>>,
    /// `[out]`, absent for `bias=False` (the attention's `to_qkv`).
    pub bias: Option<Param<Tensor<1>>>,
    /// Stride.
    #[module(skip)]
    pub stride: usize,
    /// Zero padding on each side.
    #[module(skip)]
    pub padding: usize,
}

impl TorchConv1d {
    /// `[B, in, N] -> [B, out, N']`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        conv1d(
            x,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
            ConvOptions::new([self.stride], [self.padding], [1], 1),
        )
    }

    /// Output channels.
    pub fn channels_out(&self) -> usize {
        self.weight.dims()[0]
    }
}

/// `nn.Linear` with weight `[out, in]` (PyTorch layout) and bias `[out]`.
#[derive(Module, Debug)]
pub struct TorchLinear {
    /// `[out, in]`.
    pub weight: Param<Tensor<2>>,
    /// `[out]`.
    pub bias: Param<Tensor<1>>,
}

impl TorchLinear {
    /// `[B, in] -> [B, out]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let [out, _] = self.weight.dims();
        x.matmul(self.weight.val().transpose()) + self.bias.val().reshape([1, out])
    }
}

/// VLGPO's RMSNorm over channels: `F.normalize(x, dim=1) * g * sqrt(C)` with
/// `F.normalize`'s floor of `1e-12` on the norm.
#[derive(Module, Debug)]
pub struct RmsNorm {
    /// Gain `[1, C, 1]`.
    pub g: Param<Tensor<3>>,
}

impl RmsNorm {
    /// `[B, C, N] -> [B, C, N]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let c = x.dims()[1];
        let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
        x / norm * self.g.val() * (c as f64).sqrt()
    }
}
