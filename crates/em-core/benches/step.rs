//! One Energy Matching training step (flow warm-up and flow + CD with 200-step negatives) for
//! an MLP potential of width 256 at batch 128 on dims 2, 560 (AAV one-hot) and 4740 (GFP
//! one-hot), and one Langevin step at batch 512. Run: `cargo bench -p em-core --bench step`.

use burn::prelude::*;
use criterion::{Criterion, criterion_group, criterion_main};
use em_core::data::DataMatrix;
use em_core::langevin::{LangevinConfig, sample};
use em_core::loss::flow::host_normal;
use em_core::nn::{MlpPotential, MlpPotentialConfig};
use em_core::schedule::Schedule;
use em_core::train::{TrainConfig, Trainer};
use rand::SeedableRng;
use rand::rngs::StdRng;

const DIMS: [usize; 3] = [2, 560, 4740];

fn model(dim: usize, device: &Device) -> MlpPotential {
    device.seed(0);
    MlpPotentialConfig::new(dim).with_hidden(256).init(device)
}

fn data(dim: usize) -> DataMatrix {
    let t = host_normal(1024, dim, &mut StdRng::seed_from_u64(1), &Device::flex());
    let v = t
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    DataMatrix::new(v, dim).expect("finite benchmark data")
}

fn trainer(dim: usize, flow_steps: u64) -> Trainer<MlpPotential> {
    let cfg = TrainConfig {
        batch_size: 128,
        total_steps: u64::MAX,
        flow_steps,
        checkpoint_every: 0,
        ..Default::default()
    };
    let settings = cfg.check().expect("valid benchmark config");
    Trainer::new(model(dim, &Device::flex().autodiff()), settings)
}

fn bench_train(c: &mut Criterion) {
    let mut g = c.benchmark_group("train_step");
    g.sample_size(10);
    for dim in DIMS {
        let d = data(dim);
        let mut warm = trainer(dim, u64::MAX);
        g.bench_function(format!("flow/d{dim}/b128/w256"), |b| {
            b.iter(|| warm.step(&d).expect("flow step"))
        });
        let mut cd = trainer(dim, 0);
        g.bench_function(format!("flow+cd200/d{dim}/b128/w256"), |b| {
            b.iter(|| cd.step(&d).expect("cd step"))
        });
    }
    g.finish();
}

fn bench_langevin(c: &mut Criterion) {
    let mut g = c.benchmark_group("langevin_step");
    g.sample_size(10);
    let dev = Device::flex();
    let cfg = LangevinConfig::new(1, 0.01, Schedule::Constant { eps: 0.01 });
    for dim in DIMS {
        let m = model(dim, &dev);
        let x0 = host_normal(512, dim, &mut StdRng::seed_from_u64(2), &dev);
        g.bench_function(format!("d{dim}/b512/w256"), |b| {
            b.iter(|| sample(&m, &[], x0.clone(), &cfg, 3).expect("langevin step"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_train, bench_langevin);
criterion_main!(benches);
