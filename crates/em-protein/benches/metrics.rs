//! Novelty and diversity at benchmark scale: 128 designs of length 237 against 3,000
//! training sequences (target: novelty < 1 s on 2 cores).
//! Run: `cargo bench -p em-protein --bench metrics` (builds in release).

use criterion::{Criterion, criterion_group, criterion_main};
use em_protein::metrics::{diversity, novelty};
use em_protein::sequence::Sequence;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Training: 3,000 variants of one random parent (2-12 substitutions each, like a
/// mutational scan); designs: 128 of them mutated again (5-20 substitutions). Seeded.
fn inputs() -> (Vec<Sequence>, Vec<Sequence>) {
    let mut rng = StdRng::seed_from_u64(0);
    let parent: Vec<u8> = (0..237).map(|_| rng.random_range(0..20)).collect();
    let mut mutate = |base: &[u8], lo: usize, hi: usize| {
        let mut v = base.to_vec();
        for _ in 0..rng.random_range(lo..hi) {
            let p = rng.random_range(0..v.len());
            v[p] = rng.random_range(0..20);
        }
        v
    };
    let training: Vec<Vec<u8>> = (0..3000).map(|_| mutate(&parent, 2, 12)).collect();
    let designs: Vec<Vec<u8>> = (0..128).map(|i| mutate(&training[i * 23], 5, 20)).collect();
    let seq = |v: Vec<u8>| Sequence::from_indices(v).expect("indices < 20");
    (
        designs.into_iter().map(seq).collect(),
        training.into_iter().map(seq).collect(),
    )
}

fn bench(c: &mut Criterion) {
    let (designs, training) = inputs();
    c.bench_function("novelty 128x3000x237", |b| {
        b.iter(|| novelty(&designs, &training))
    });
    c.bench_function("diversity 128x237", |b| b.iter(|| diversity(&designs)));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
