//! The OT-CFM training loop (Tong et al. 2023), shared by every domain's flow-matching
//! baseline: a time-conditioned vector field v(x, t) regressed on the straight-line velocity
//! `x1 - x0`, with the same minibatch OT coupling, Adam, LR warm-up, clipping, EMA and
//! per-step seeding as the Energy Matching trainer, so the baseline differs from EM only in
//! what is learned (a free field instead of `-grad V`).

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::clip::clip_global_norm;
use super::{Ema, StepReport, TrainConfig, step_seed};
use crate::data::DataMatrix;
use crate::error::{Error, Result};
use crate::loss::FlowBatch;

/// A time-conditioned vector field on flat states: `x: [B, D]`, `t: [B]` -> `[B, D]`.
pub trait VelocityField {
    /// The velocity at `(x, t)`.
    fn velocity(&self, x: Tensor<2>, t: Tensor<1>) -> Tensor<2>;
}

/// `mean_b (1/D) |v(x_t, t) - (x1 - x0)|^2` on one OT-coupled batch: the squared error
/// averaged over coordinates and rows, as the Energy Matching flow loss
/// ([`crate::loss::flow_loss`]) and torchcfm's examples (`torch.mean((vt - ut) ** 2)`), so the
/// two baselines' losses are on one scale.
pub fn cfm_loss<M: VelocityField>(model: &M, batch: &FlowBatch) -> Tensor<1> {
    let b = batch.t.len();
    let device = batch.x0.device();
    let t = Tensor::<1>::from_data(TensorData::new(batch.t.clone(), [b]), &device);
    let target = batch.x1.clone() - batch.x0.clone();
    (model.velocity(batch.x_t(), t) - target)
        .powi_scalar(2)
        .mean()
}

/// Trains `model` (initialised on an autodiff device) by OT-CFM on the rows of `data`, using
/// from `train` what applies to a flow: `total_steps`, `batch_size`, `lr` and its warm-up,
/// `grad_clip`, `ema_decay`, `ot`, `seed` (the CD fields do not). Calls `on_step` after each
/// step; returns the EMA weights as a plain (non-autodiff) module. Same seed, same weights.
pub fn train_cfm<M>(
    model: M,
    data: &DataMatrix,
    train: &TrainConfig,
    on_step: &mut dyn FnMut(&StepReport),
) -> Result<M>
where
    M: Module + VelocityField,
{
    let settings = train.clone().check()?;
    let device = model
        .devices()
        .first()
        .cloned()
        .ok_or_else(|| Error::config("model", "has no parameters on any device"))?;
    let mut model = model;
    let mut ema = Ema::new(&model, train.ema_decay);
    let mut optim = AdamConfig::new().init();
    for step in 0..train.total_steps {
        let mut rng = StdRng::seed_from_u64(step_seed(train.seed, step));
        let x1 = data.sample_batch(train.batch_size, &mut rng, &device);
        let batch = FlowBatch::draw(x1, train.ot, &mut rng)?;
        let loss = cfm_loss(&model, &batch);
        let value = loss.clone().into_scalar::<f64>();
        if !value.is_finite() {
            return Err(Error::NonFinite {
                step,
                what: "OT-CFM loss".into(),
            });
        }
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        let grad_norm = clip_global_norm(&model, &mut grads, train.grad_clip);
        let lr = settings.lr_at(step);
        model = optim.step(lr, model, grads);
        ema.update(&model);
        on_step(&StepReport {
            step: step + 1,
            phase: "cfm",
            flow: value,
            cd: None,
            lr,
            grad_norm,
            grad_flow: grad_norm,
            grad_cd: None,
            grad_ratio: None,
            cd_share: None,
        });
    }
    Ok(ema.module().valid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;

    /// v(x, t) = b (a learned constant drift): the CFM optimum is the mean of x1 - x0.
    #[derive(Module, Debug)]
    struct Drift {
        b: Param<Tensor<1>>,
    }

    impl VelocityField for Drift {
        fn velocity(&self, x: Tensor<2>, _t: Tensor<1>) -> Tensor<2> {
            let [n, d] = x.dims();
            self.b.val().reshape([1, d]).expand([n, d])
        }
    }

    /// The drift as f32 (the shared flex device may hold f64 after the gradcheck tests).
    fn weights(m: &Drift) -> Vec<f32> {
        let data = m.b.val().into_data().convert::<f32>();
        data.try_to_vec::<f32>().unwrap()
    }

    fn drift(device: &Device) -> Drift {
        Drift {
            b: Param::from_tensor(Tensor::zeros([2], device)),
        }
    }

    #[test]
    fn loss_matches_hand_computation() {
        let device = Device::flex();
        let x0 = Tensor::<2>::from_data([[0.0f32, 0.0], [1.0, 1.0]], &device);
        let x1 = Tensor::<2>::from_data([[1.0f32, 2.0], [1.0, 3.0]], &device);
        let batch = FlowBatch {
            x0,
            x1,
            t: vec![0.25, 0.5],
        };
        let model = Drift {
            b: Param::from_tensor(Tensor::from_data([1.0f32, 1.0], &device)),
        };
        // Targets (1, 2) and (0, 2); residuals (0, -1) and (1, -1): squares 1 and 2, means
        // over D = 2 are 0.5 and 1, batch mean 0.75.
        let loss = cfm_loss(&model, &batch).into_scalar::<f64>();
        assert!((loss - 0.75).abs() < 1e-6, "{loss}");
    }

    /// v(x, t) = c (a constant 3-vector, any x, t).
    #[derive(Module, Debug)]
    struct Drift3 {
        b: Param<Tensor<1>>,
    }

    impl VelocityField for Drift3 {
        fn velocity(&self, x: Tensor<2>, _t: Tensor<1>) -> Tensor<2> {
            let [n, d] = x.dims();
            self.b.val().reshape([1, d]).expand([n, d])
        }
    }

    /// D = 3, where a sum over coordinates would give 3x the mean (see: issue 14).
    #[test]
    fn loss_averages_over_coordinates_in_three_dimensions() {
        let device = Device::flex();
        let x0 = Tensor::<2>::from_data([[0.0f32, 1.0, 0.0], [1.0, 0.0, -1.0]], &device);
        let x1 = Tensor::<2>::from_data([[2.0f32, 1.0, 3.0], [1.0, 2.0, 0.0]], &device);
        let batch = FlowBatch {
            x0,
            x1,
            t: vec![0.1, 0.7],
        };
        let model = Drift3 {
            b: Param::from_tensor(Tensor::from_data([1.0f32, 1.0, 1.0], &device)),
        };
        // Targets (2, 0, 3) and (0, 2, 1); residuals (-1, 1, -2) and (1, -1, 0): squares 6
        // and 2, means 2 and 2/3, batch mean 4/3 (the sum over D would give 4).
        let loss = cfm_loss(&model, &batch).into_scalar::<f64>();
        assert!((loss - 4.0 / 3.0).abs() < 1e-6, "{loss}");
    }

    #[test]
    fn a_constant_drift_learns_the_mean_velocity_reproducibly() {
        // Data at (3, -2) exactly; noise has mean 0, so the best constant drift is (3, -2).
        let rows: Vec<f32> = (0..64).flat_map(|_| [3.0f32, -2.0]).collect();
        let data = DataMatrix::new(rows, 2).unwrap();
        let train = TrainConfig {
            total_steps: 300,
            flow_steps: 300,
            batch_size: 32,
            lr: 0.05,
            lr_warmup_steps: 10,
            ema_decay: 0.9,
            seed: 7,
            ..TrainConfig::default()
        };
        let device = Device::flex().autodiff();
        let mut losses = Vec::new();
        let fit = train_cfm(drift(&device), &data, &train, &mut |r| losses.push(r.flow)).unwrap();
        let b = weights(&fit);
        assert!(
            (b[0] - 3.0).abs() < 0.2 && (b[1] + 2.0).abs() < 0.2,
            "{b:?}"
        );
        assert_eq!(losses.len(), 300);
        assert!(losses[299] < losses[0], "{} -> {}", losses[0], losses[299]);
        let again = train_cfm(drift(&device), &data, &train, &mut |_| {}).unwrap();
        assert_eq!(weights(&again), b, "same seed, same weights");
    }
}
