//! The fused CPU kernels as the sampler sees them, on the default f32 flex device (its own
//! test process, so no f64 gradcheck device interferes): the Langevin sampler takes the fused
//! MLP path, tracks burn's tensor path, and repeats bit for bit whatever the thread count.

use burn::prelude::*;
use em_core::energy::EnergyTerm;
use em_core::langevin::{LangevinConfig, sample};
use em_core::nn::{MlpPotential, MlpPotentialConfig};
use em_core::potential::Potential;
use em_core::schedule::Schedule;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// The same potential with the fused kernel hidden: burn's tensor path.
struct TensorPath<'a>(&'a MlpPotential);
impl Potential for TensorPath<'_> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn energy(&self, x: Tensor<2>) -> Tensor<1> {
        self.0.energy(x)
    }
    fn energy_and_grad(&self, x: Tensor<2>) -> (Tensor<1>, Tensor<2>) {
        self.0.energy_and_grad(x)
    }
}

/// E = c * sum x, so the extra-term route through tensors is exercised too.
struct Tilt(f32);
impl EnergyTerm for Tilt {
    fn name(&self) -> &str {
        "tilt"
    }
    fn energy(&self, x: Tensor<2>, _t: f64, _eps: f64) -> Tensor<1> {
        x.sum_dim(1).squeeze_dim::<1>(1) * self.0
    }
    fn grad(&self, x: Tensor<2>, _t: f64, _eps: f64) -> Tensor<2> {
        x.ones_like() * self.0
    }
}

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

fn setup(batch: usize, dim: usize) -> (MlpPotential, Tensor<2>) {
    let device = Device::flex();
    device.seed(11);
    let model = MlpPotentialConfig::new(dim)
        .with_hidden(32)
        .with_blocks(2)
        .with_confinement(0.1)
        .init(&device);
    let mut rng = StdRng::seed_from_u64(2);
    let x: Vec<f32> = (0..batch * dim)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect();
    (
        model,
        Tensor::from_data(TensorData::new(x, [batch, dim]), &device),
    )
}

#[test]
fn sampler_uses_the_fused_path_and_tracks_the_tensor_path() {
    let (model, x0) = setup(40, 12);
    assert!(
        model.host_kernel().is_some(),
        "f32 flex model offers a fused kernel"
    );
    // The kernel's gradient equals the tensor path's on one batch.
    let kernel = model.host_kernel().unwrap();
    let xv = values(x0.clone());
    let (mut e, mut g) = (vec![0.0; 40], vec![0.0; xv.len()]);
    kernel.energy_and_grad(&xv, &mut e, &mut g);
    let (e_ref, g_ref) = model.energy_and_grad(x0.clone());
    let close = |a: &[f32], b: &[f32], tol: f32| {
        a.iter()
            .zip(b)
            .all(|(p, q)| (p - q).abs() <= tol * (1.0 + q.abs()))
    };
    let e_ref = e_ref
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap();
    assert!(close(&e, &e_ref, 1e-5) && close(&g, &values(g_ref), 1e-5));

    let mut cfg = LangevinConfig::new(25, 0.01, Schedule::Constant { eps: 0.05 });
    cfg.clamp = Some((-1.5, 1.5));
    cfg.record_every = Some(10);
    let tilt = Tilt(0.2);
    let fused = sample(&model, &[&tilt], x0.clone(), &cfg, 7).unwrap();
    let reference = sample(&TensorPath(&model), &[&tilt], x0, &cfg, 7).unwrap();
    assert_eq!(fused.trajectory.len(), reference.trajectory.len());
    // Same noise stream and update; only the gradient's rounding differs.
    assert!(close(&values(fused.x), &values(reference.x), 1e-4));
}

#[test]
fn fused_sampler_is_identical_on_one_and_two_threads() {
    let (model, x0) = setup(70, 600);
    let cfg = LangevinConfig::new(3, 0.01, Schedule::Constant { eps: 0.1 });
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| values(sample(&model, &[], x0.clone(), &cfg, 3).unwrap().x))
    };
    assert_eq!(run(1), run(2));
}
