//! The OT-CFM prior baseline (Tong et al. 2023) on the same `[-1, 1]` one-hot representation
//! as Energy Matching: a Conv1d vector field v(x, t) trained on the OT-coupled velocity
//! `x1 - x0`, sampled by guided Euler from noise, decoded like the EM designs.
//!
//! Guidance is the EM predictor term itself ([`PredictorGuidance`], energy
//! `eps(t)/zeta^2 · 1/2 (f_norm - 1)^2`) on the EM design's own time grid `t_k = k dt`,
//! `k < steps = t_end / dt`: step k is `x <- clamp(x + h v(x, s_k) - dt grad_x E_guide(x;
//! eps(t_k)))`, where the flow term (step `h`, flow time `s_k`) covers `[0, 1]` in the first
//! `min(steps, 1/dt)` steps and is absent after (the field is defined on `[0, 1]` only). So
//! both samplers get the same guidance window `[tau*, t_end)`, schedule, zeta and step size,
//! and one predictor gradient per sample per step. The ODE has no noise term and no
//! interaction energy (that is what the comparison isolates).

use burn::module::{Module, Param};
use burn::nn::PaddingConfig1d;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::prelude::*;
use burn::tensor::activation::silu;
use em_core::data::DataMatrix;
use em_core::energy::EnergyTerm;
use em_core::loss::flow::host_normal;
use em_core::train::cfm::{VelocityField, train_cfm};
use em_core::train::{TrainConfig, step_seed};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::alphabet::ALPHABET_SIZE;
use crate::cnn::Cnn;
use crate::design::{DesignBatch, DesignConfig, DesignError, check_gt_range, rank_designs};
use crate::energy_model::common_length;
use crate::guidance::PredictorGuidance;
use crate::representation::embed;
use crate::sequence::Sequence;

/// Shape of a [`SeqVectorField`] (defaults match the EM potential's 64 channels, kernel 5,
/// 3 blocks, so both priors have similar capacity).
#[derive(Config, Debug)]
pub struct VectorFieldConfig {
    /// Sequence length `L`.
    pub length: usize,
    /// Hidden channels.
    #[config(default = 64)]
    pub hidden_channels: usize,
    /// Odd kernel width.
    #[config(default = 5)]
    pub kernel: usize,
    /// Hidden convolutions after the input one.
    #[config(default = 3)]
    pub blocks: usize,
}

/// `v(x, t)`: Conv1d over positions with the time as an extra constant channel at every
/// layer, a learned per-position embedding added after the input convolution, SiLU,
/// residual hidden blocks; flat `[batch, L*20]` in and out.
///
/// The position embedding matters for aligned variants: convolutions alone are translation
/// equivariant, so without it the field cannot learn site-specific residues (the same flaw
/// a mean-pooled energy has) and its samples drift far from the data.
#[derive(Module, Debug)]
pub struct SeqVectorField {
    inp: Conv1d,
    /// `[1, hidden, L]`, zero at initialisation.
    position: Param<Tensor<3>>,
    blocks: Vec<Conv1d>,
    out: Conv1d,
    length: usize,
}

fn conv(c: [usize; 2], kernel: usize, device: &Device) -> Conv1d {
    Conv1dConfig::new(c[0], c[1], kernel)
        .with_padding(PaddingConfig1d::Explicit(kernel / 2, kernel / 2))
        .init(device)
}

impl VectorFieldConfig {
    /// Checks the shape (errors name `ot_cfm.<field>`).
    pub fn check(&self) -> Result<(), DesignError> {
        let bad = |field: &str, why: String| DesignError::Config {
            field: format!("ot_cfm.{field}"),
            why,
        };
        if self.length == 0 || self.hidden_channels == 0 {
            return Err(bad(
                "hidden_channels",
                format!(
                    "length {} and hidden channels {} must be >= 1",
                    self.length, self.hidden_channels
                ),
            ));
        }
        if self.kernel.is_multiple_of(2) {
            return Err(bad("kernel", format!("must be odd, got {}", self.kernel)));
        }
        Ok(())
    }

    /// Builds the network on `device` (parameters from the device's seed).
    pub fn init(&self, device: &Device) -> SeqVectorField {
        let (a, h, k) = (ALPHABET_SIZE, self.hidden_channels, self.kernel);
        SeqVectorField {
            inp: conv([a + 1, h], k, device),
            position: Param::from_tensor(Tensor::zeros([1, h, self.length], device)),
            blocks: (0..self.blocks)
                .map(|_| conv([h + 1, h], k, device))
                .collect(),
            out: conv([h + 1, a], k, device),
            length: self.length,
        }
    }
}

impl SeqVectorField {
    /// Velocity at states `x: [batch, L*20]` and times `t: [batch]`.
    ///
    /// ```
    /// use burn::prelude::*;
    /// use em_protein::baselines::ot_cfm::VectorFieldConfig;
    /// let device = Device::flex();
    /// let v = VectorFieldConfig::new(4).with_hidden_channels(8).init(&device);
    /// let x = Tensor::<2>::zeros([3, 80], &device);
    /// assert_eq!(v.forward(x, Tensor::<1>::zeros([3], &device)).dims(), [3, 80]);
    /// ```
    pub fn forward(&self, x: Tensor<2>, t: Tensor<1>) -> Tensor<2> {
        let [b, _] = x.dims();
        let l = self.length;
        let time = t.reshape([b, 1, 1]).repeat_dim(2, l);
        let with_t = |z: Tensor<3>| Tensor::cat(vec![z, time.clone()], 1);
        let x = x.reshape([b, l, ALPHABET_SIZE]).swap_dims(1, 2);
        let mut z = silu(self.inp.forward(with_t(x)) + self.position.val());
        for block in &self.blocks {
            z = z.clone() + silu(block.forward(with_t(z)));
        }
        self.out
            .forward(with_t(z))
            .swap_dims(1, 2)
            .reshape([b, l * ALPHABET_SIZE])
    }

    /// Sequence length it was built for.
    pub fn length(&self) -> usize {
        self.length
    }
}

impl VelocityField for SeqVectorField {
    fn velocity(&self, x: Tensor<2>, t: Tensor<1>) -> Tensor<2> {
        self.forward(x, t)
    }
}

/// Trains a [`SeqVectorField`] by OT-CFM on `train_seqs` (equal length, embedded as
/// `2·onehot - 1`), using from `train` what applies to a flow: `total_steps`, `batch_size`,
/// `lr` and its warm-up, `grad_clip`, `ema_decay`, `ot`, `seed` (the CD fields do not).
/// Loss `mean_b |v(x_t, t) - (x1 - x0)|^2` with exact minibatch OT pairs (em-core's
/// [`train_cfm`] loop). Returns the EMA
/// weights on the plain `device`; same seed, same weights.
pub fn train_ot_cfm(
    train_seqs: &[Sequence],
    net: &VectorFieldConfig,
    train: &TrainConfig,
    device: &Device,
) -> Result<SeqVectorField, DesignError> {
    let length = common_length(train_seqs)?;
    net.check()?;
    if net.length != length {
        return Err(DesignError::Data {
            what: format!(
                "vector field for length {} but sequences of length {length}",
                net.length
            ),
        });
    }
    // Checked here so a bad field is named under `ot_cfm.train`.
    train
        .clone()
        .check()
        .map_err(|e| DesignError::prefixed("ot_cfm.train", e))?;
    let data = DataMatrix::new(embed(train_seqs, length), length * ALPHABET_SIZE)?;
    let ad = device.clone().autodiff();
    ad.seed(train.seed);
    Ok(train_cfm(net.init(&ad), &data, train, &mut |_| {})?)
}

/// Guided Euler sampling of `field` from `N(0, I)` noise over `t in [0, 1]` in
/// `cfg.steps()` steps (the EM design's step count, so both spend the same predictor calls
/// per sample), with the EM guidance term at eps(t) of `cfg.schedule` and `cfg.zeta`
/// (`zeta = inf`: unguided), clamped to `cfg.clamp`; then argmax decoding, deduplication and
/// the top `cfg.top_k` by the predictor, as in [`crate::design::design`]. `cfg.interaction`
/// is ignored. Predictor calls: `n_samples * steps` gradients plus one score per unique
/// design. Same seed, same designs.
pub fn design_ot_cfm(
    field: &SeqVectorField,
    predictor: &Cnn,
    min_gt: f64,
    max_gt: f64,
    cfg: &DesignConfig,
    seed: u64,
    device: &Device,
) -> Result<DesignBatch, DesignError> {
    cfg.check()?;
    check_gt_range(min_gt, max_gt)?;
    let length = field.length;
    let guidance =
        PredictorGuidance::new(predictor, length, cfg.zeta, cfg.temperature, min_gt, max_gt);
    let guide = cfg.zeta.is_finite().then_some(&guidance as &dyn EnergyTerm);
    let x = sample_guided(field, guide, cfg, seed, device);
    rank_designs(
        x,
        length,
        std::slice::from_ref(predictor),
        cfg,
        seed,
        min_gt,
        max_gt,
    )
}

/// The guided Euler states at the end (`[n_samples, L*20]`, clamped), before decoding, from
/// seeded `N(0, I)` noise: `steps = cfg.steps()` steps at the design times `t_k = k cfg.dt`,
/// each `x <- clamp(x + h v(x, s_k) - dt grad_x E(x; t_k, eps(t_k)))`. The flow term runs
/// in the first `n_flow = min(steps, round(1 / dt))` steps with `h = 1 / n_flow` and
/// `s_k = k h` (so it integrates `[0, 1]` exactly) and is dropped after; `guidance = None`
/// integrates the plain flow.
pub fn sample_guided(
    field: &SeqVectorField,
    guidance: Option<&dyn EnergyTerm>,
    cfg: &DesignConfig,
    seed: u64,
    device: &Device,
) -> Tensor<2> {
    let n = cfg.n_samples;
    let steps = cfg.steps();
    let n_flow = flow_steps(cfg);
    let h = 1.0 / n_flow as f64;
    let [lo, hi] = cfg.clamp;
    let mut rng = StdRng::seed_from_u64(step_seed(seed, 0));
    let mut x = host_normal(n, field.length * ALPHABET_SIZE, &mut rng, device);
    for k in 0..steps {
        let t = k as f64 * cfg.dt;
        let mut next = x.clone();
        if k < n_flow {
            let s = k as f64 * h;
            next = next + field.forward(x.clone(), Tensor::<1>::full([n], s, device)) * h;
        } else if guidance.is_none() {
            break;
        }
        if let Some(g) = guidance {
            next = next - g.grad(x, t, cfg.schedule.eps(t)) * cfg.dt;
        }
        x = next.clamp(lo, hi);
    }
    x
}

/// Steps of [`sample_guided`] that carry the flow term: `min(steps, round(1 / dt))`, at
/// least 1.
pub fn flow_steps(cfg: &DesignConfig) -> usize {
    cfg.steps().min(((1.0 / cfg.dt).round() as usize).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cnn::CnnConfig;
    use crate::representation::decode;

    fn train_cfg(steps: u64) -> TrainConfig {
        TrainConfig {
            total_steps: steps,
            flow_steps: steps,
            batch_size: 16,
            lr: 3e-3,
            lr_warmup_steps: 1,
            checkpoint_every: 0,
            ema_decay: 0.9,
            ..Default::default()
        }
    }

    fn net() -> VectorFieldConfig {
        VectorFieldConfig::new(6)
            .with_hidden_channels(16)
            .with_kernel(3)
            .with_blocks(1)
    }

    fn cfg(zeta: f64) -> DesignConfig {
        DesignConfig {
            n_samples: 16,
            dt: 0.05,
            t_end: 1.0,
            zeta,
            top_k: 4,
            ..Default::default()
        }
    }

    /// On an input that is the same at every site, a field without a position embedding
    /// gives the same velocity at every interior site (convolutions are translation
    /// equivariant); the learned embedding lets the sites differ.
    #[test]
    fn the_position_embedding_breaks_translation_equivariance() {
        let device = Device::flex();
        let mut field = VectorFieldConfig::new(12)
            .with_hidden_channels(8)
            .with_kernel(3)
            .with_blocks(1)
            .init(&device);
        let x = Tensor::<2>::ones([1, 12 * ALPHABET_SIZE], &device) * 0.3;
        let t = Tensor::<1>::full([1], 0.5, &device);
        let site = |v: &[f32], i: usize| v[i * ALPHABET_SIZE..(i + 1) * ALPHABET_SIZE].to_vec();
        let v: Vec<f32> = field
            .forward(x.clone(), t.clone())
            .to_data()
            .try_to_vec()
            .unwrap();
        // Sites 4..8 are more than the receptive field (3 convolutions of width 3) from
        // both ends, so they see identical neighbourhoods.
        assert_eq!(site(&v, 5), site(&v, 6));
        field.position = Param::from_tensor(Tensor::random(
            [1, 8, 12],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        ));
        let v: Vec<f32> = field.forward(x, t).to_data().try_to_vec().unwrap();
        assert_ne!(site(&v, 5), site(&v, 6));
    }

    /// One training sequence: the learned flow must carry noise to it (every unguided sample
    /// decodes to it), and a fixed seed gives identical designs.
    #[test]
    fn learns_a_single_sequence_and_is_deterministic() {
        let device = Device::flex();
        let data: Vec<Sequence> = vec!["MKVAAG".parse().unwrap(); 4];
        let field = train_ot_cfm(&data, &net(), &train_cfg(800), &device).unwrap();
        let cnn = CnnConfig::new()
            .with_kernel_size(3)
            .with_channels(8)
            .with_embedding(16)
            .init(5, &device);
        let x = sample_guided(&field, None, &cfg(f64::INFINITY), 3, &device);
        let decoded = decode(x, 6);
        let exact = decoded.iter().filter(|s| **s == data[0]).count();
        let residues = decoded
            .iter()
            .flat_map(|s| s.indices().iter().zip(data[0].indices()))
            .filter(|(a, b)| a == b)
            .count();
        // Measured at this seed: 15/16 exact, 95/96 residues; an untrained field gets ~1/20.
        assert!(exact >= 14, "{exact}/16 exact: {decoded:?}");
        assert!(residues >= 92, "{residues}/96 residues");
        let b = design_ot_cfm(&field, &cnn, -1.0, 1.0, &cfg(f64::INFINITY), 3, &device).unwrap();
        assert_eq!(b.sequences[0], data[0]);

        let g1 = design_ot_cfm(&field, &cnn, -1.0, 1.0, &cfg(0.05), 7, &device).unwrap();
        let g2 = design_ot_cfm(&field, &cnn, -1.0, 1.0, &cfg(0.05), 7, &device).unwrap();
        assert_eq!(g1, g2);
        assert!(g1.sequences.len() <= 4);
    }

    /// The flow spans `[0, 1]` whatever `t_end`: unguided samples at t_end 1.5 equal those at
    /// 1.0 (the steps past t = 1 carry guidance only), and guided ones differ (the guidance
    /// window runs to t_end, as in the EM design).
    #[test]
    fn steps_past_one_carry_guidance_only() {
        let device = Device::flex();
        let field = net().init(&device);
        let cnn = CnnConfig::new()
            .with_kernel_size(3)
            .with_channels(8)
            .with_embedding(16)
            .init(5, &device);
        let longer = DesignConfig {
            t_end: 1.5,
            ..cfg(f64::INFINITY)
        };
        assert_eq!((flow_steps(&cfg(1.0)), flow_steps(&longer)), (20, 20));
        let v = |c: &DesignConfig, g: Option<&dyn EnergyTerm>| -> Vec<f32> {
            sample_guided(&field, g, c, 1, &device)
                .into_data()
                .convert::<f32>()
                .try_to_vec()
                .unwrap()
        };
        assert_eq!(v(&cfg(f64::INFINITY), None), v(&longer, None));
        let guidance = PredictorGuidance::new(&cnn, 6, 0.05, 0.25, -1.0, 1.0);
        let g = Some(&guidance as &dyn EnergyTerm);
        assert_ne!(
            v(&cfg(0.05), g),
            v(
                &DesignConfig {
                    zeta: 0.05,
                    ..longer
                },
                g
            )
        );
    }

    #[test]
    fn bad_shapes_name_the_field() {
        let device = Device::flex();
        let data: Vec<Sequence> = vec!["MKVAAG".parse().unwrap()];
        let e = train_ot_cfm(&data, &net().with_kernel(4), &train_cfg(1), &device).unwrap_err();
        assert!(e.to_string().contains("ot_cfm.kernel"), "{e}");
        let e =
            train_ot_cfm(&data, &VectorFieldConfig::new(5), &train_cfg(1), &device).unwrap_err();
        assert!(e.to_string().contains("length 5"), "{e}");
    }
}
