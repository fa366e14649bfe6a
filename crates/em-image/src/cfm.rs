//! The OT-CFM baseline (Tong et al. 2023) in the same harness: a small conv vector field
//! v(x, t), trained on the velocity x1 - x0 with em-core's minibatch OT coupling and the same
//! optimiser settings as Energy Matching, sampled with an Euler or Heun ODE at a given NFE.

use crate::energy_net::ImageShape;
use crate::error::Error;
use crate::idx::Images;
use crate::train::{ImageSamples, data_matrix, to_images};
use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::activation::silu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use em_core::loss::flow::host_normal;
use em_core::train::cfm::{self, VelocityField};
use em_core::train::{StepReport, TrainConfig};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Configuration of a [`VectorField`] for `channels x height x width` images.
#[derive(Config, Debug)]
pub struct VectorFieldConfig {
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Channels at full resolution (twice as many at half resolution).
    #[config(default = 32)]
    pub hidden: usize,
    /// Image channels (1 grey, 3 RGB).
    #[config(default = 1)]
    pub channels: usize,
}

/// A two-scale conv net: full-res conv, strided conv to half res, conv, nearest upsample,
/// skip concat, conv, output conv; SiLU; time enters as a constant extra channel at both
/// scales. Input and output are flat `[batch, c * h * w]` (CHW per image).
#[derive(Module, Debug)]
pub struct VectorField {
    inp: Conv2d,
    down: Conv2d,
    mid: Conv2d,
    up: Conv2d,
    out: Conv2d,
    channels: usize,
    height: usize,
    width: usize,
}

fn conv(c: [usize; 2], stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new(c, [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

impl VectorFieldConfig {
    /// The default config for images of `shape` (32 hidden channels).
    pub fn for_shape(shape: ImageShape) -> Self {
        Self::new(shape.height, shape.width).with_channels(shape.channels)
    }

    /// The config for `shape` whose parameter count is closest to `params` (e.g. the EM
    /// potential's, [`crate::energy_net::param_count`]), so both models are compared at
    /// similar size.
    pub fn sized_like(shape: ImageShape, params: usize) -> Self {
        let c = shape.channels;
        let best = (1..=256)
            .min_by_key(|&h| Self::param_count_for(c, h).abs_diff(params))
            .unwrap_or(32);
        Self::for_shape(shape).with_hidden(best)
    }

    /// Parameters of a [`VectorField`] for `channels`-channel images with `hidden` channels
    /// (5 biased 3x3 convs).
    pub fn param_count_for(channels: usize, hidden: usize) -> usize {
        let (c, h) = (channels, hidden);
        let conv = |i: usize, o: usize| 9 * i * o + o;
        conv(c + 1, h) + conv(h, 2 * h) + conv(2 * h + 1, 2 * h) + conv(3 * h, h) + conv(h, c)
    }

    /// Builds the network on `device`.
    pub fn init(&self, device: &Device) -> VectorField {
        let (c, h) = (self.channels, self.hidden);
        VectorField {
            inp: conv([c + 1, h], 1, device),
            down: conv([h, 2 * h], 2, device),
            mid: conv([2 * h + 1, 2 * h], 1, device),
            up: conv([3 * h, h], 1, device),
            out: conv([h, c], 1, device),
            channels: c,
            height: self.height,
            width: self.width,
        }
    }
}

impl VectorField {
    /// `[c, h, w]` of the images it moves.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// Velocity `v(x, t)`: `x` is `[batch, c * h * w]` and `t` holds one time per row.
    pub fn forward(&self, x: Tensor<2>, t: Tensor<1>) -> Tensor<2> {
        let [b, _] = x.dims();
        let (c, h, w) = (self.channels, self.height, self.width);
        let x = x.reshape([b, c, h, w]);
        let time = |hh: usize, ww: usize| {
            t.clone()
                .reshape([b, 1, 1, 1])
                .repeat_dim(2, hh)
                .repeat_dim(3, ww)
        };
        let skip = silu(self.inp.forward(Tensor::cat(vec![x, time(h, w)], 1)));
        let z = silu(self.down.forward(skip.clone()));
        let [_, _, h2, w2] = z.dims();
        let z = silu(self.mid.forward(Tensor::cat(vec![z, time(h2, w2)], 1)));
        let opts = InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h, w]);
        let z = interpolate(z, opts);
        let z = silu(self.up.forward(Tensor::cat(vec![z, skip], 1)));
        self.out.forward(z).reshape([b, c * h * w])
    }
}

impl VelocityField for VectorField {
    fn velocity(&self, x: Tensor<2>, t: Tensor<1>) -> Tensor<2> {
        self.forward(x, t)
    }
}

/// Trains a [`VectorField`] by OT-CFM on `images`, using from `train` exactly what EM uses:
/// `total_steps`, `batch_size`, `lr` with its warm-up, `grad_clip`, `ema_decay`, `ot`, `seed`
/// (the flow/CD phase fields do not apply). Loss: `mean |v(x_t, t) - (x1 - x0)|^2` with
/// `x_t = (1 - t) x0 + t x1` and `(x0, x1)` coupled by exact minibatch OT (`em_core::ot`);
/// the loop is em-core's [`cfm::train_cfm`]. Returns the EMA weights on the plain device.
pub fn train_cfm(
    images: &Images,
    net: &VectorFieldConfig,
    train: &TrainConfig,
    device: &Device,
    on_step: &mut dyn FnMut(&StepReport),
) -> crate::Result<VectorField> {
    if [net.channels, net.height, net.width] != images.shape() || net.hidden == 0 {
        let [c, h, w] = images.shape();
        return Err(Error::invalid(
            "vector field",
            format!(
                "{}x{}x{} with {} hidden channels for {c}x{h}x{w} images",
                net.channels, net.height, net.width, net.hidden,
            ),
        ));
    }
    let data = data_matrix(images)?;
    let ad = device.clone().autodiff();
    Ok(cfm::train_cfm(net.init(&ad), &data, train, on_step)?)
}

/// ODE integrator for sampling the vector field from t = 0 (noise) to t = 1 (data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OdeMethod {
    /// Forward Euler: one evaluation per step.
    Euler,
    /// Heun (explicit trapezoid): two evaluations per step.
    Heun,
}

/// Draws `n` images by integrating `dx/dt = v(x, t)` from seeded standard-normal noise with
/// `nfe` function evaluations in total (Euler: `nfe` steps; Heun: `nfe / 2` steps, `nfe` even),
/// keeping `snapshots` evenly spaced states (0 for none) for a trajectory strip.
pub fn sample_cfm(
    model: &VectorField,
    n: usize,
    nfe: usize,
    method: OdeMethod,
    snapshots: usize,
    seed: u64,
) -> crate::Result<ImageSamples> {
    let steps = match method {
        OdeMethod::Euler => nfe,
        OdeMethod::Heun => nfe / 2,
    };
    if steps == 0 || (method == OdeMethod::Heun && !nfe.is_multiple_of(2)) || n == 0 {
        return Err(Error::invalid(
            "OT-CFM sampling",
            format!("{n} samples with nfe {nfe} and {method:?} (Heun needs an even nfe >= 2)"),
        ));
    }
    let device = model.devices().first().cloned().unwrap_or_default();
    let shape = model.shape();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x = host_normal(n, shape.iter().product(), &mut rng, &device);
    let dt = 1.0 / steps as f64;
    let at = |t: f64| Tensor::<1>::full([n], t, &device);
    let every = if snapshots == 0 {
        0
    } else {
        steps.div_ceil(snapshots)
    };
    let mut trajectory = Vec::new();
    for k in 0..steps {
        let t = k as f64 * dt;
        let v0 = model.forward(x.clone(), at(t));
        x = match method {
            OdeMethod::Euler => x + v0 * dt,
            OdeMethod::Heun => {
                let pred = x.clone() + v0.clone() * dt;
                let v1 = model.forward(pred, at(t + dt));
                x + (v0 + v1) * (dt / 2.0)
            }
        };
        if every > 0 && ((k + 1) % every == 0 || k + 1 == steps) {
            trajectory.push(to_images(x.clone(), shape)?.0);
        }
    }
    let (images, values) = to_images(x, shape)?;
    Ok(ImageSamples {
        images,
        values,
        trajectory,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idx::{Split, data_dir, read_split};

    #[test]
    fn vector_field_is_sized_like_the_em_potential() {
        use crate::energy_net::{ImageShape, param_count, potential_config};
        let d = Device::default();
        let target = param_count(&potential_config(ImageShape::MNIST).init(&d));
        let cfg = VectorFieldConfig::sized_like(ImageShape::MNIST, target);
        let got = cfg.init(&d).num_params();
        assert_eq!(got, VectorFieldConfig::param_count_for(1, cfg.hidden));
        assert!(got.abs_diff(target) * 10 < target, "{got} vs {target}");
        let v = cfg
            .init(&d)
            .forward(Tensor::zeros([2, 784], &d), Tensor::zeros([2], &d));
        assert_eq!(v.dims(), [2, 784]);
    }

    #[test]
    fn cfm_trains_a_few_steps_on_mnist_and_samples_finitely() {
        let (test, _) = read_split(data_dir().join("images/mnist"), Split::Test).unwrap();
        let images = test.slice(0, 64);
        let net = VectorFieldConfig::new(28, 28).with_hidden(8);
        let train = TrainConfig {
            total_steps: 4,
            lr_warmup_steps: 1,
            batch_size: 16,
            lr: 1e-2,
            ..TrainConfig::default()
        };
        let mut losses = Vec::new();
        let model = train_cfm(&images, &net, &train, &Device::default(), &mut |r| {
            losses.push(r.flow)
        })
        .unwrap();
        assert_eq!(losses.len(), 4);
        // The target |x1 - x0|^2 is about 784 * (1 + E x1^2) at init; training must not blow up.
        assert!(
            losses.iter().all(|l| l.is_finite() && *l < 5000.0),
            "{losses:?}"
        );
        let s = sample_cfm(&model, 3, 4, OdeMethod::Heun, 2, 5).unwrap();
        assert_eq!((s.images.len(), s.trajectory.len()), (3, 2));
        assert_eq!(
            sample_cfm(&model, 3, 4, OdeMethod::Heun, 2, 5)
                .unwrap()
                .values,
            s.values
        );
        assert!(sample_cfm(&model, 3, 3, OdeMethod::Heun, 0, 5).is_err());
    }

    #[test]
    fn colour_vector_field_trains_and_samples_rgb_images() {
        use crate::energy_net::{param_count, potential_config};
        let d = Device::default();
        let target = param_count(&potential_config(ImageShape::CIFAR10).init(&d));
        let cfg = VectorFieldConfig::sized_like(ImageShape::CIFAR10, target);
        assert_eq!(cfg.channels, 3);
        assert_eq!(
            cfg.init(&d).num_params(),
            VectorFieldConfig::param_count_for(3, cfg.hidden)
        );
        let px: Vec<u8> = (0..16 * 3 * 8 * 8).map(|i| (i * 31 % 256) as u8).collect();
        let images = Images::with_channels(16, 3, 8, 8, px).unwrap();
        let shape = ImageShape {
            channels: 3,
            height: 8,
            width: 8,
        };
        let net = VectorFieldConfig::for_shape(shape).with_hidden(4);
        let train = TrainConfig {
            total_steps: 2,
            lr_warmup_steps: 1,
            batch_size: 8,
            ..TrainConfig::default()
        };
        let model = train_cfm(&images, &net, &train, &d, &mut |_| {}).unwrap();
        assert_eq!(model.shape(), [3, 8, 8]);
        let s = sample_cfm(&model, 2, 2, OdeMethod::Euler, 1, 3).unwrap();
        assert_eq!((s.images.shape(), s.values.len()), ([3, 8, 8], 2 * 192));
        assert_eq!(s.trajectory[0].shape(), [3, 8, 8]);
        let grey = VectorFieldConfig::new(8, 8).with_hidden(4);
        let msg = train_cfm(&images, &grey, &train, &d, &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("1x8x8 with 4 hidden channels for 3x8x8"),
            "{msg}"
        );
    }
}
