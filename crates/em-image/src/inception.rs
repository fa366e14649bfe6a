//! The FID InceptionV3 network (pytorch-fid's variant of the TF 2015 graph) as burn modules,
//! up to the 2048-d pool3 features. Structure adapted from burn-train 0.22's FID extractor.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::{adaptive_avg_pool2d, avg_pool2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};

/// Conv (no bias) + batch norm (eps 1e-3, as in the TF graph) + ReLU.
#[derive(Module, Debug)]
pub struct BasicConv2d {
    conv: Conv2d,
    bn: BatchNorm,
}

/// `BasicConv2d` with kernel `k`, stride `s` and symmetric padding `p` (all `[h, w]`).
fn bc(c: [usize; 2], k: [usize; 2], s: usize, p: [usize; 2], device: &Device) -> BasicConv2d {
    BasicConv2d {
        conv: Conv2dConfig::new(c, k)
            .with_stride([s, s])
            .with_padding(PaddingConfig2d::Explicit(p[0], p[1], p[0], p[1]))
            .with_bias(false)
            .init(device),
        bn: BatchNormConfig::new(c[1]).with_epsilon(1e-3).init(device),
    }
}

impl BasicConv2d {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.bn.forward(self.conv.forward(x)))
    }
}

/// 3x3 average pool, stride 1, padding 1, padded zeros not counted (pytorch-fid's FID blocks).
fn avg3(x: Tensor<4>) -> Tensor<4> {
    let o = AvgPoolOptions::new([3, 3])
        .with_stride([1, 1])
        .with_padding([1, 1]);
    avg_pool2d(x, o.with_count_include_pad(false))
}

/// 3x3 max pool, stride 2, no padding.
fn max3s2(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(x, MaxPoolOptions::new([3, 3]).with_stride([2, 2]))
}

/// pytorch-fid `FIDInceptionA` (Mixed_5b/c/d).
#[derive(Module, Debug)]
pub struct InceptionA {
    branch1x1: BasicConv2d,
    branch5x5_1: BasicConv2d,
    branch5x5_2: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3: BasicConv2d,
    branch_pool: BasicConv2d,
}

impl InceptionA {
    fn new(c: usize, pool: usize, d: &Device) -> Self {
        Self {
            branch1x1: bc([c, 64], [1, 1], 1, [0, 0], d),
            branch5x5_1: bc([c, 48], [1, 1], 1, [0, 0], d),
            branch5x5_2: bc([48, 64], [5, 5], 1, [2, 2], d),
            branch3x3dbl_1: bc([c, 64], [1, 1], 1, [0, 0], d),
            branch3x3dbl_2: bc([64, 96], [3, 3], 1, [1, 1], d),
            branch3x3dbl_3: bc([96, 96], [3, 3], 1, [1, 1], d),
            branch_pool: bc([c, pool], [1, 1], 1, [0, 0], d),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b5 = self
            .branch5x5_2
            .forward(self.branch5x5_1.forward(x.clone()));
        let b3 = self.branch3x3dbl_1.forward(x.clone());
        let b3 = self.branch3x3dbl_3.forward(self.branch3x3dbl_2.forward(b3));
        let bp = self.branch_pool.forward(avg3(x));
        Tensor::cat(vec![b1, b5, b3, bp], 1)
    }
}

/// torchvision `InceptionB` (Mixed_6a, grid reduction).
#[derive(Module, Debug)]
pub struct InceptionB {
    branch3x3: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3: BasicConv2d,
}

impl InceptionB {
    fn new(c: usize, d: &Device) -> Self {
        Self {
            branch3x3: bc([c, 384], [3, 3], 2, [0, 0], d),
            branch3x3dbl_1: bc([c, 64], [1, 1], 1, [0, 0], d),
            branch3x3dbl_2: bc([64, 96], [3, 3], 1, [1, 1], d),
            branch3x3dbl_3: bc([96, 96], [3, 3], 2, [0, 0], d),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = self.branch3x3.forward(x.clone());
        let bd = self.branch3x3dbl_1.forward(x.clone());
        let bd = self.branch3x3dbl_3.forward(self.branch3x3dbl_2.forward(bd));
        Tensor::cat(vec![b3, bd, max3s2(x)], 1)
    }
}

/// pytorch-fid `FIDInceptionC` (Mixed_6b..e), with `c7` channels in the 7x7 branches.
#[derive(Module, Debug)]
pub struct InceptionC {
    branch1x1: BasicConv2d,
    branch7x7_1: BasicConv2d,
    branch7x7_2: BasicConv2d,
    branch7x7_3: BasicConv2d,
    branch7x7dbl_1: BasicConv2d,
    branch7x7dbl_2: BasicConv2d,
    branch7x7dbl_3: BasicConv2d,
    branch7x7dbl_4: BasicConv2d,
    branch7x7dbl_5: BasicConv2d,
    branch_pool: BasicConv2d,
}

impl InceptionC {
    fn new(c: usize, c7: usize, d: &Device) -> Self {
        let (row, col) = (([1, 7], [0, 3]), ([7, 1], [3, 0]));
        Self {
            branch1x1: bc([c, 192], [1, 1], 1, [0, 0], d),
            branch7x7_1: bc([c, c7], [1, 1], 1, [0, 0], d),
            branch7x7_2: bc([c7, c7], row.0, 1, row.1, d),
            branch7x7_3: bc([c7, 192], col.0, 1, col.1, d),
            branch7x7dbl_1: bc([c, c7], [1, 1], 1, [0, 0], d),
            branch7x7dbl_2: bc([c7, c7], col.0, 1, col.1, d),
            branch7x7dbl_3: bc([c7, c7], row.0, 1, row.1, d),
            branch7x7dbl_4: bc([c7, c7], col.0, 1, col.1, d),
            branch7x7dbl_5: bc([c7, 192], row.0, 1, row.1, d),
            branch_pool: bc([c, 192], [1, 1], 1, [0, 0], d),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b7 = self.branch7x7_1.forward(x.clone());
        let b7 = self.branch7x7_3.forward(self.branch7x7_2.forward(b7));
        let bd = self.branch7x7dbl_1.forward(x.clone());
        let bd = self.branch7x7dbl_3.forward(self.branch7x7dbl_2.forward(bd));
        let bd = self.branch7x7dbl_5.forward(self.branch7x7dbl_4.forward(bd));
        let bp = self.branch_pool.forward(avg3(x));
        Tensor::cat(vec![b1, b7, bd, bp], 1)
    }
}

/// torchvision `InceptionD` (Mixed_7a, grid reduction).
#[derive(Module, Debug)]
pub struct InceptionD {
    branch3x3_1: BasicConv2d,
    branch3x3_2: BasicConv2d,
    branch7x7x3_1: BasicConv2d,
    branch7x7x3_2: BasicConv2d,
    branch7x7x3_3: BasicConv2d,
    branch7x7x3_4: BasicConv2d,
}

impl InceptionD {
    fn new(c: usize, d: &Device) -> Self {
        Self {
            branch3x3_1: bc([c, 192], [1, 1], 1, [0, 0], d),
            branch3x3_2: bc([192, 320], [3, 3], 2, [0, 0], d),
            branch7x7x3_1: bc([c, 192], [1, 1], 1, [0, 0], d),
            branch7x7x3_2: bc([192, 192], [1, 7], 1, [0, 3], d),
            branch7x7x3_3: bc([192, 192], [7, 1], 1, [3, 0], d),
            branch7x7x3_4: bc([192, 192], [3, 3], 2, [0, 0], d),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = self
            .branch3x3_2
            .forward(self.branch3x3_1.forward(x.clone()));
        let b7 = self
            .branch7x7x3_2
            .forward(self.branch7x7x3_1.forward(x.clone()));
        let b7 = self.branch7x7x3_4.forward(self.branch7x7x3_3.forward(b7));
        Tensor::cat(vec![b3, b7, max3s2(x)], 1)
    }
}

/// pytorch-fid `FIDInceptionE_1` (Mixed_7b, average pool without padded zeros) and
/// `FIDInceptionE_2` (Mixed_7c, max pool: a bug in the TF graph that FID keeps).
#[derive(Module, Debug)]
pub struct InceptionE {
    branch1x1: BasicConv2d,
    branch3x3_1: BasicConv2d,
    branch3x3_2a: BasicConv2d,
    branch3x3_2b: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3a: BasicConv2d,
    branch3x3dbl_3b: BasicConv2d,
    branch_pool: BasicConv2d,
    #[module(skip)]
    max_pool: bool,
}

impl InceptionE {
    fn new(c: usize, max_pool: bool, d: &Device) -> Self {
        Self {
            branch1x1: bc([c, 320], [1, 1], 1, [0, 0], d),
            branch3x3_1: bc([c, 384], [1, 1], 1, [0, 0], d),
            branch3x3_2a: bc([384, 384], [1, 3], 1, [0, 1], d),
            branch3x3_2b: bc([384, 384], [3, 1], 1, [1, 0], d),
            branch3x3dbl_1: bc([c, 448], [1, 1], 1, [0, 0], d),
            branch3x3dbl_2: bc([448, 384], [3, 3], 1, [1, 1], d),
            branch3x3dbl_3a: bc([384, 384], [1, 3], 1, [0, 1], d),
            branch3x3dbl_3b: bc([384, 384], [3, 1], 1, [1, 0], d),
            branch_pool: bc([c, 192], [1, 1], 1, [0, 0], d),
            max_pool,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b3 = self.branch3x3_1.forward(x.clone());
        let b3 = Tensor::cat(
            vec![
                self.branch3x3_2a.forward(b3.clone()),
                self.branch3x3_2b.forward(b3),
            ],
            1,
        );
        let bd = self
            .branch3x3dbl_2
            .forward(self.branch3x3dbl_1.forward(x.clone()));
        let bd = Tensor::cat(
            vec![
                self.branch3x3dbl_3a.forward(bd.clone()),
                self.branch3x3dbl_3b.forward(bd),
            ],
            1,
        );
        let pooled = if self.max_pool {
            let o = MaxPoolOptions::new([3, 3])
                .with_stride([1, 1])
                .with_padding([1, 1]);
            max_pool2d(x, o)
        } else {
            avg3(x)
        };
        let bp = self.branch_pool.forward(pooled);
        Tensor::cat(vec![b1, b3, bd, bp], 1)
    }
}

/// InceptionV3 up to pool3. Field names are the snake-case forms of pytorch-fid's
/// (`conv2d_1a` <- `Conv2d_1a_3x3`, `mixed_5b` <- `Mixed_5b`); see [`crate::fid`] for loading.
#[derive(Module, Debug)]
pub struct InceptionV3 {
    conv2d_1a: BasicConv2d,
    conv2d_2a: BasicConv2d,
    conv2d_2b: BasicConv2d,
    conv2d_3b: BasicConv2d,
    conv2d_4a: BasicConv2d,
    mixed_5b: InceptionA,
    mixed_5c: InceptionA,
    mixed_5d: InceptionA,
    mixed_6a: InceptionB,
    mixed_6b: InceptionC,
    mixed_6c: InceptionC,
    mixed_6d: InceptionC,
    mixed_6e: InceptionC,
    mixed_7a: InceptionD,
    mixed_7b: InceptionE,
    mixed_7c: InceptionE,
}

/// Dimension of the pool3 features.
pub const FEATURE_DIM: usize = 2048;

impl InceptionV3 {
    /// The network with untrained weights (load the FID weights with [`crate::fid`]).
    pub fn new(d: &Device) -> Self {
        Self {
            conv2d_1a: bc([3, 32], [3, 3], 2, [0, 0], d),
            conv2d_2a: bc([32, 32], [3, 3], 1, [0, 0], d),
            conv2d_2b: bc([32, 64], [3, 3], 1, [1, 1], d),
            conv2d_3b: bc([64, 80], [1, 1], 1, [0, 0], d),
            conv2d_4a: bc([80, 192], [3, 3], 1, [0, 0], d),
            mixed_5b: InceptionA::new(192, 32, d),
            mixed_5c: InceptionA::new(256, 64, d),
            mixed_5d: InceptionA::new(288, 64, d),
            mixed_6a: InceptionB::new(288, d),
            mixed_6b: InceptionC::new(768, 128, d),
            mixed_6c: InceptionC::new(768, 160, d),
            mixed_6d: InceptionC::new(768, 160, d),
            mixed_6e: InceptionC::new(768, 192, d),
            mixed_7a: InceptionD::new(768, d),
            mixed_7b: InceptionE::new(1280, false, d),
            mixed_7c: InceptionE::new(2048, true, d),
        }
    }

    /// Pool3 features `[batch, 2048]` of images `[batch, 3, 299, 299]` already scaled to
    /// [-1, 1] (no resizing or normalisation here; see [`crate::fid::FidExtractor`]).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [batch, _, _, _] = x.dims();
        let x = self
            .conv2d_2b
            .forward(self.conv2d_2a.forward(self.conv2d_1a.forward(x)));
        let x = max3s2(x);
        let x = max3s2(self.conv2d_4a.forward(self.conv2d_3b.forward(x)));
        let x = self
            .mixed_5d
            .forward(self.mixed_5c.forward(self.mixed_5b.forward(x)));
        let x = self.mixed_6a.forward(x);
        let x = self.mixed_6c.forward(self.mixed_6b.forward(x));
        let x = self.mixed_6e.forward(self.mixed_6d.forward(x));
        let x = self
            .mixed_7c
            .forward(self.mixed_7b.forward(self.mixed_7a.forward(x)));
        adaptive_avg_pool2d(x, [1, 1]).reshape([batch, FEATURE_DIM])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrained_network_gives_2048_features_per_image() {
        // Smallest input the stride pattern accepts is 75x75; keeps this test fast.
        let d = Device::default();
        let net = InceptionV3::new(&d);
        let x = Tensor::<4>::zeros([2, 3, 75, 75], &d);
        assert_eq!(net.forward(x).dims(), [2, FEATURE_DIM]);
    }
}
