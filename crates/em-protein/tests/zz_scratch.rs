use em_protein::baselines::adalead::AdaLead;
use em_protein::baselines::DesignMethod;
use em_protein::ehrlich::{Ehrlich, EhrlichConfig};
#[test]
fn scratch() {
    let f = Ehrlich::generate(EhrlichConfig { length: 24, motif_length: 3, quantization: 3, seed: 4, ..Default::default() }).unwrap();
    println!("motifs {:?} offsets {:?}", f.motifs(), f.offsets());
    let start = f.sample_feasible(32, 1);
    for (k, pop, r) in [(0.05f32, 32usize, 16usize), (0.05, 32, 4), (0.05, 32, 64), (0.05,128,16)] {
        let d = AdaLead { kappa: k, population: pop, max_rollout: r, ..Default::default() }.run(&start, &f, 3000, 7).unwrap();
        let mut hist = std::collections::BTreeMap::new();
        for p in &d.predicted { *hist.entry((p * 1000.0) as i32).or_insert(0) += 1; }
        println!("kappa {k} pop {pop} rollout {r}: {hist:?}");
        for s in d.top(3) { println!("{s:?} {:?}", f.motif_presence(s)); }
    }
}
