//! Criterion benches for the image benchmark: FID Inception feature throughput (images/s)
//! and one Energy Matching training step on 28x28 at batch 64.
//! Run: `cargo bench -p em-image --bench image` (needs the FID weights under $EMDESIGN_DATA).

use burn::prelude::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use em_core::train::{TrainConfig, Trainer};
use em_image::energy_net::{ImageShape, potential_config};
use em_image::fid::FidExtractor;
use em_image::idx::{Split, data_dir, read_split};
use em_image::train::data_matrix;

fn inception_throughput(c: &mut Criterion) {
    let device = Device::default();
    let fid = FidExtractor::load_default(&device).expect("FID weights (set EMDESIGN_DATA)");
    let (test, _) = read_split(data_dir().join("images/mnist"), Split::Test).expect("MNIST");
    let batch = test.slice(0, 16);
    let mut g = c.benchmark_group("inception");
    g.sample_size(10);
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function("features_mnist_batch16", |b| {
        b.iter(|| fid.features(&batch, 16, &mut |_, _| {}).expect("features"))
    });
    g.finish();
}

fn em_step(c: &mut Criterion) {
    let (test, _) = read_split(data_dir().join("images/mnist"), Split::Test).expect("MNIST");
    let data = data_matrix(&test.slice(0, 1024)).expect("data");
    let device = Device::default().autodiff();
    let net = potential_config(ImageShape::MNIST).init(&device);
    let mut g = c.benchmark_group("em_step_28x28_b64");
    g.sample_size(10);
    for (name, flow_steps) in [("flow", 1_000_000), ("flow_plus_cd", 0)] {
        let cfg = TrainConfig {
            batch_size: 64,
            total_steps: 1_000_001,
            flow_steps,
            lr_warmup_steps: 1,
            checkpoint_every: 0,
            ..TrainConfig::default()
        };
        let mut trainer = Trainer::new(net.clone(), cfg.check().expect("config"));
        g.bench_function(name, |b| b.iter(|| trainer.step(&data).expect("step")));
    }
    g.finish();
}

criterion_group!(benches, inception_throughput, em_step);
criterion_main!(benches);
