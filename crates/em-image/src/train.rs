//! Energy Matching on images: train the image potential with em-core's trainer (OT flow
//! warm-up, then contrastive steps) and sample it with Langevin dynamics from noise.

use crate::error::{Error, Result};
use crate::idx::Images;
use burn::module::Module;
use burn::prelude::*;
use em_core::data::DataMatrix;
use em_core::langevin::{LangevinConfig, sample};
use em_core::loss::flow::host_normal;
use em_core::nn::{ConvPotential2d, ConvPotential2dConfig};
use em_core::train::{StepReport, TrainConfig, Trainer};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::Path;

/// Generated images: quantised 8-bit images, the raw values and optional snapshots.
#[derive(Clone, Debug)]
pub struct ImageSamples {
    /// Final samples quantised to 8 bits (values clamped to [-1, 1]).
    pub images: Images,
    /// Final samples as produced, flat `[n * c * h * w]`.
    pub values: Vec<f32>,
    /// Snapshots through time (quantised), oldest first, for trajectory strips.
    pub trajectory: Vec<Images>,
}

/// Flat `[n, dim]` training rows in [-1, 1] from an image stack.
pub fn data_matrix(images: &Images) -> Result<DataMatrix> {
    Ok(DataMatrix::new(images.to_signed(), images.dim())?)
}

/// Trains a [`ConvPotential2d`] on `images` with Energy Matching (warm-up then CD, as set
/// in `train`) on `device` (an autodiff device is made from it), calling `on_step` after each
/// step, and returns the EMA weights on the plain device, ready for [`sample_em`].
///
/// With `checkpoint_dir`, training resumes from the newest checkpoint there (written under
/// the same config, else an error naming the file), saves every `train.checkpoint_every`
/// steps and at the end; steps already done are not reported again.
pub fn train_em(
    images: &Images,
    net: &ConvPotential2dConfig,
    train: &TrainConfig,
    device: &Device,
    checkpoint_dir: Option<&Path>,
    on_step: &mut dyn FnMut(&StepReport),
) -> Result<ConvPotential2d> {
    net.check()?;
    if [net.channels, net.height, net.width] != images.shape() {
        let [c, h, w] = images.shape();
        return Err(Error::invalid(
            "potential shape",
            format!(
                "{}x{}x{} but images are {c}x{h}x{w}",
                net.channels, net.height, net.width
            ),
        ));
    }
    let settings = train.clone().check()?;
    let data = data_matrix(images)?;
    let ad = device.clone().autodiff();
    let mut trainer = Trainer::new(net.init(&ad), settings);
    if let Some(dir) = checkpoint_dir {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        trainer = trainer.with_checkpoint_dir(dir).resume()?;
    }
    let every = train.checkpoint_every;
    while trainer.step_count() < train.total_steps {
        let report = trainer.step(&data)?;
        on_step(&report);
        if every > 0 && trainer.step_count().is_multiple_of(every) {
            trainer.save_checkpoint()?;
        }
    }
    trainer.save_checkpoint()?;
    Ok(trainer.ema().valid())
}

/// Draws `n` images from a trained potential by Langevin dynamics on `V` started from
/// standard-normal noise (seeded), `langevin.steps` gradient evaluations (the NFE). With
/// `langevin.record_every` set, snapshots are kept for a trajectory strip.
pub fn sample_em(
    model: &ConvPotential2d,
    n: usize,
    langevin: &LangevinConfig,
    seed: u64,
) -> Result<ImageSamples> {
    let device = model.devices().first().cloned().unwrap_or_default();
    let shape = shape(model)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let x0 = host_normal(n, shape.iter().product(), &mut rng, &device);
    let out = sample(model, &[], x0, langevin, seed.wrapping_add(1))?;
    let mut trajectory = Vec::with_capacity(out.trajectory.len());
    for (_, x) in out.trajectory {
        trajectory.push(to_images(x, shape)?.0);
    }
    let (images, values) = to_images(out.x, shape)?;
    Ok(ImageSamples {
        images,
        values,
        trajectory,
    })
}

/// `[c, h, w]` of a potential's images; 8-bit stacks hold grey (1) or RGB (3) images.
fn shape(model: &ConvPotential2d) -> Result<[usize; 3]> {
    match model.shape.as_slice() {
        &[c, h, w] if c == 1 || c == 3 => Ok([c, h, w]),
        other => Err(Error::Unavailable {
            what: format!("image samples of shape {other:?}: 8-bit stacks are grey or RGB"),
        }),
    }
}

/// A `[n, c*h*w]` tensor as quantised images of shape `[c, h, w]` and the raw values.
pub(crate) fn to_images(x: Tensor<2>, shape: [usize; 3]) -> Result<(Images, Vec<f32>)> {
    let [n, _] = x.dims();
    let values = x
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::invalid("samples", format!("{e:?}")))?;
    if values.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "samples".into(),
            step: 0,
        });
    }
    let [c, h, w] = shape;
    Ok((Images::from_signed_channels(&values, n, c, h, w)?, values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energy_net::{ImageShape, potential_config};
    use crate::idx::{Split, data_dir, read_split};
    use em_core::schedule::Schedule;

    #[test]
    fn em_trains_a_few_steps_on_mnist_and_samples_finitely() {
        let (test, _) = read_split(data_dir().join("images/mnist"), Split::Test).unwrap();
        let images = test.slice(0, 64);
        let net = potential_config(ImageShape::MNIST)
            .with_hidden_channels(8)
            .with_head_hidden(16);
        let train = TrainConfig {
            total_steps: 3,
            flow_steps: 2,
            lr_warmup_steps: 1,
            batch_size: 16,
            neg_steps: 2,
            allow_short_negatives: true, // a plumbing test, not a model
            checkpoint_every: 0,
            ..TrainConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let ckpt = dir.path().join("em");
        let (dev, mut reports) = (Device::default(), Vec::new());
        let two = TrainConfig {
            total_steps: 2,
            ..train.clone()
        };
        train_em(&images, &net, &two, &dev, Some(&ckpt), &mut |r| {
            reports.push(r.clone())
        })
        .unwrap();
        // Resuming at step 2 runs (and reports) only step 3, the first CD step.
        let model = train_em(&images, &net, &train, &dev, Some(&ckpt), &mut |r| {
            reports.push(r.clone())
        })
        .unwrap();
        assert_eq!(
            reports.iter().map(|r| r.step).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(reports[2].phase, "cd");
        assert!(reports.iter().all(|r| r.flow.is_finite()));
        let mut lv = LangevinConfig::new(4, 0.05, Schedule::Constant { eps: 0.01 });
        lv.record_every = Some(2);
        let s = sample_em(&model, 5, &lv, 1).unwrap();
        assert_eq!(
            (s.images.len(), s.values.len(), s.trajectory.len()),
            (5, 5 * 784, 2)
        );
        let again = sample_em(&model, 5, &lv, 1).unwrap();
        assert_eq!(again.values, s.values);
    }

    #[test]
    fn em_trains_and_samples_colour_images() {
        let px: Vec<u8> = (0..16 * 3 * 8 * 8).map(|i| (i * 37 % 256) as u8).collect();
        let images = Images::with_channels(16, 3, 8, 8, px).unwrap();
        let net = ConvPotential2dConfig::new(3, 8, 8)
            .with_hidden_channels(4)
            .with_blocks(1)
            .with_head_hidden(8);
        let train = TrainConfig {
            total_steps: 2,
            flow_steps: 1,
            lr_warmup_steps: 1,
            batch_size: 8,
            neg_steps: 2,
            allow_short_negatives: true, // a plumbing test, not a model
            checkpoint_every: 0,
            ..TrainConfig::default()
        };
        let dev = Device::default();
        let model = train_em(&images, &net, &train, &dev, None, &mut |_| {}).unwrap();
        let mut lv = LangevinConfig::new(2, 0.05, Schedule::Constant { eps: 0.01 });
        lv.record_every = Some(1);
        let s = sample_em(&model, 3, &lv, 1).unwrap();
        assert_eq!((s.images.len(), s.images.shape()), (3, [3, 8, 8]));
        assert_eq!(s.values.len(), 3 * 192);
        assert!(s.trajectory.iter().all(|t| t.shape() == [3, 8, 8]));
        let grey = ConvPotential2dConfig::new(1, 8, 8);
        let msg = train_em(&images, &grey, &train, &dev, None, &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(msg.contains("1x8x8 but images are 3x8x8"), "{msg}");
    }
}
