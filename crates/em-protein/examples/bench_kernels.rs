//! Side-by-side kernel benchmark (issue 15), the Rust half: times the fused CPU kernels and
//! burn's tensor path on the same shapes, dumps the weights, inputs and fused outputs as raw
//! little-endian f32 (`*.bin` + `manifest.json`) so `benches/torch_reference.py` can build the
//! same networks in PyTorch, check equal outputs and time the same ops.
//!
//! Run (dev profile = deps -O3, ours -O2, reusing the test build; in its own session):
//! `setsid cargo run -p em-protein --example bench_kernels -- OUT_DIR [ROUND]`
//! writes `OUT_DIR/rust_ROUND.json` (median ms per op); the weights are dumped once.
//! Driver alternating Rust and torch rounds: `crates/em-protein/benches/kernels.sh`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Instant;

use burn::optim::AdamConfig;
use burn::optim::GradientsParams;
use burn::optim::decay::WeightDecayConfig;
use burn::prelude::*;
use em_core::langevin::{LangevinConfig, sample};
use em_core::loss::{FlowBatch, flow_loss};
use em_core::nn::{
    Conv1d, MlpPotential, MlpPotentialConfig, SeqConvPotential, SeqConvPotentialConfig, SeqReadout,
};
use em_core::ot;
use em_core::potential::Potential;
use em_core::schedule::Schedule;
use em_protein::cnn::{
    Cnn, CnnAdam, CnnConfig, FusedCnn, mse_and_grads, one_hot_tensor, tensor_to_vec,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;
use serde_json::{Value, json};

/// Langevin batch, MLP width and depth of issue 15's table (the bench in em-core's `step`).
const LANGEVIN_BATCH: usize = 512;
const MLP_DIMS: [usize; 3] = [2, 560, 4740];
const CNN_BATCH: usize = 256;
const CNN_LENGTHS: [usize; 2] = [28, 237];
/// GGS's predictor/oracle training batch.
const CNN_TRAIN_BATCH: usize = 1024;
const OT_BATCH: usize = 128;
/// Flow warm-up batch (the protein workflows' `batch_size`) and time cut-off.
const TRAIN_BATCH: usize = 128;
const T_CUT: f64 = 0.9;
const OT_DIM: usize = 4740;
/// Langevin steps per timed call (the per-step time is reported).
const STEPS: usize = 5;
const REPS: usize = 5;

/// The same potential with the fused kernel hidden: burn's tensor path.
struct TensorPath<'a, P>(&'a P);
impl<P: Potential> Potential for TensorPath<'_, P> {
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

/// Median wall time in ms of `reps` calls after one warm-up call.
fn time_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

fn normal(n: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..n)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect()
}

/// Appends `v` to the blob and records `name -> (offset, shape)` in the manifest.
fn put(
    blob: &mut Vec<u8>,
    man: &mut BTreeMap<String, Value>,
    name: &str,
    v: &[f32],
    shape: &[usize],
) {
    assert_eq!(v.len(), shape.iter().product::<usize>(), "{name}");
    man.insert(
        name.into(),
        json!({ "offset": blob.len() / 4, "shape": shape }),
    );
    for x in v {
        blob.extend_from_slice(&x.to_le_bytes());
    }
}

fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    tensor_to_vec(t)
}

fn dump_mlp(
    model: &MlpPotential,
    dim: usize,
    blob: &mut Vec<u8>,
    man: &mut BTreeMap<String, Value>,
) {
    let hid = model.input.d_output();
    let p = format!("mlp{dim}");
    let lin = |blob: &mut Vec<u8>,
               man: &mut BTreeMap<String, Value>,
               name: String,
               l: &em_core::nn::Linear| {
        let (i, o) = (l.d_input(), l.d_output());
        put(
            blob,
            man,
            &format!("{name}.w"),
            &vals(l.weight.val()),
            &[i, o],
        );
        let b = l
            .bias
            .as_ref()
            .map(|b| vals(b.val()))
            .unwrap_or(vec![0.0; o]);
        put(blob, man, &format!("{name}.b"), &b, &[o]);
    };
    lin(blob, man, format!("{p}.input"), &model.input);
    for (k, b) in model.blocks.iter().enumerate() {
        lin(blob, man, format!("{p}.block{k}.l1"), &b.l1);
        lin(blob, man, format!("{p}.block{k}.l2"), &b.l2);
    }
    lin(blob, man, format!("{p}.head"), &model.head);
    man.insert(
        format!("{p}.meta"),
        json!({ "dim": dim, "hidden": hid, "blocks": model.blocks.len() }),
    );
}

/// The SeqConv potential's weights in burn's layouts (conv `[c_out, c_in, k]` = torch's,
/// linear `[d_in, d_out]`, embedding `[hidden, length]`).
fn dump_seq_conv(
    model: &SeqConvPotential,
    len: usize,
    blob: &mut Vec<u8>,
    man: &mut BTreeMap<String, Value>,
) {
    let p = format!("seq{len}");
    let conv = |blob: &mut Vec<u8>, man: &mut BTreeMap<String, Value>, name: String, c: &Conv1d| {
        put(
            blob,
            man,
            &format!("{name}.w"),
            &vals(c.weight.val()),
            &c.weight.dims(),
        );
        put(
            blob,
            man,
            &format!("{name}.b"),
            &vals(c.bias.val()),
            &c.bias.dims(),
        );
    };
    conv(blob, man, format!("{p}.input"), &model.input);
    for (k, b) in model.blocks.iter().enumerate() {
        conv(blob, man, format!("{p}.block{k}.c1"), &b.c1);
        conv(blob, man, format!("{p}.block{k}.c2"), &b.c2);
    }
    for (name, l) in [("l1", &model.head.l1), ("l2", &model.head.l2)] {
        let (i, o) = (l.d_input(), l.d_output());
        put(
            blob,
            man,
            &format!("{p}.head.{name}.w"),
            &vals(l.weight.val()),
            &[i, o],
        );
        let b = l
            .bias
            .as_ref()
            .map(|b| vals(b.val()))
            .unwrap_or(vec![0.0; o]);
        put(blob, man, &format!("{p}.head.{name}.b"), &b, &[o]);
    }
    let ps = model.position.as_ref().expect("position-sum readout");
    put(
        blob,
        man,
        &format!("{p}.embedding"),
        &vals(ps.embedding.val()),
        &ps.embedding.dims(),
    );
    man.insert(
        format!("{p}.meta"),
        json!({ "length": len, "blocks": model.blocks.len(), "scale": ps.scale }),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = Path::new(
        args.get(1)
            .map(String::as_str)
            .unwrap_or("target/bench-kernels"),
    );
    let round = args.get(2).cloned().unwrap_or_else(|| "0".into());
    fs::create_dir_all(out).expect("create the output directory");
    let dump = !out.join("manifest.json").exists();
    let device = Device::flex();
    let mut rng = StdRng::seed_from_u64(15);
    let mut blob = Vec::new();
    let mut man = BTreeMap::new();
    let mut times = BTreeMap::new();

    // Langevin step on the MLP potential (width 256, 3 SiLU blocks), batch 512.
    for dim in MLP_DIMS {
        device.seed(dim as u64);
        let model = MlpPotentialConfig::new(dim).with_hidden(256).init(&device);
        let x: Vec<f32> = normal(LANGEVIN_BATCH * dim, &mut rng);
        let x0 = Tensor::<2>::from_data(TensorData::new(x.clone(), [LANGEVIN_BATCH, dim]), &device);
        let cfg = LangevinConfig::new(STEPS, 1e-3, Schedule::Constant { eps: 0.1 });
        let kernel = model
            .host_kernel()
            .expect("f32 flex model has a fused kernel");
        if dump {
            dump_mlp(&model, dim, &mut blob, &mut man);
            let (mut e, mut g) = (vec![0.0; LANGEVIN_BATCH], vec![0.0; x.len()]);
            kernel.energy_and_grad(&x, &mut e, &mut g);
            put(
                &mut blob,
                &mut man,
                &format!("mlp{dim}.x"),
                &x,
                &[LANGEVIN_BATCH, dim],
            );
            put(
                &mut blob,
                &mut man,
                &format!("mlp{dim}.energy"),
                &e,
                &[LANGEVIN_BATCH],
            );
            put(
                &mut blob,
                &mut man,
                &format!("mlp{dim}.grad"),
                &g,
                &[LANGEVIN_BATCH, dim],
            );
        }
        let per_step = |ms: f64| ms / STEPS as f64;
        let fused = time_ms(REPS, || {
            sample(&model, &[], x0.clone(), &cfg, 1).expect("fused Langevin");
        });
        let burn = time_ms(REPS, || {
            sample(&TensorPath(&model), &[], x0.clone(), &cfg, 1).expect("burn Langevin");
        });
        times.insert(
            format!("langevin_step/mlp_d{dim}_b{LANGEVIN_BATCH}"),
            json!({"fused": per_step(fused), "burn": per_step(burn)}),
        );
        eprintln!(
            "langevin d{dim}: fused {:.3} ms, burn {:.3} ms per step",
            per_step(fused),
            per_step(burn)
        );
    }

    // The protein SeqConv energy of gfp.toml's [energy] (32 channels, kernel 5, 2 blocks,
    // head 64, SiLU, position-sum readout, output scale 1000), L 28 / 237: a Langevin step at
    // batch 512 and the flow warm-up's loss + parameter gradient at batch 128.
    for len in CNN_LENGTHS {
        let ad = device.clone().autodiff();
        ad.seed(len as u64);
        let model_ad = SeqConvPotentialConfig::new(len, 20)
            .with_hidden_channels(32)
            .with_blocks(2)
            .with_readout(SeqReadout::PositionSum)
            .with_output_scale(1000.0)
            .init(&ad);
        let model = model_ad.valid();
        let d = len * 20;
        let x: Vec<f32> = normal(LANGEVIN_BATCH * d, &mut rng);
        let x0 = Tensor::<2>::from_data(TensorData::new(x.clone(), [LANGEVIN_BATCH, d]), &device);
        let cfg = LangevinConfig::new(STEPS, 1e-3, Schedule::Constant { eps: 0.1 });
        // Flow batch: noise, data-like one-hot in [-1, 1], times in [0, 1).
        let fx0 = normal(TRAIN_BATCH * d, &mut rng);
        let fx1: Vec<f32> = (0..TRAIN_BATCH * len)
            .flat_map(|_| {
                let hot = rng.random_range(0..20);
                (0..20).map(move |a| if a == hot { 1.0 } else { -1.0 })
            })
            .collect();
        let t: Vec<f32> = (0..TRAIN_BATCH).map(|_| rng.random::<f32>()).collect();
        let fb = FlowBatch {
            x0: Tensor::<2>::from_data(TensorData::new(fx0.clone(), [TRAIN_BATCH, d]), &ad),
            x1: Tensor::<2>::from_data(TensorData::new(fx1.clone(), [TRAIN_BATCH, d]), &ad),
            t: t.clone(),
        };
        let xt = vals(fb.x_t());
        let target: Vec<f32> = fx1.iter().zip(&fx0).map(|(a, b)| a - b).collect();
        let w = fb.weights(T_CUT);
        let trainer = model_ad
            .host_trainer()
            .expect("f32 flex position-sum model has a training kernel");
        if dump {
            dump_seq_conv(&model, len, &mut blob, &mut man);
            let kernel = model.host_kernel().expect("fused kernel");
            let (mut e, mut g) = (vec![0.0; LANGEVIN_BATCH], vec![0.0; x.len()]);
            kernel.energy_and_grad(&x, &mut e, &mut g);
            let p = format!("seq{len}");
            put(
                &mut blob,
                &mut man,
                &format!("{p}.x"),
                &x,
                &[LANGEVIN_BATCH, d],
            );
            put(
                &mut blob,
                &mut man,
                &format!("{p}.energy"),
                &e,
                &[LANGEVIN_BATCH],
            );
            put(
                &mut blob,
                &mut man,
                &format!("{p}.grad"),
                &g,
                &[LANGEVIN_BATCH, d],
            );
            let (loss, grad) = trainer.flow_loss_grad(&xt, &target, &w);
            put(
                &mut blob,
                &mut man,
                &format!("{p}.xt"),
                &xt,
                &[TRAIN_BATCH, d],
            );
            put(
                &mut blob,
                &mut man,
                &format!("{p}.target"),
                &target,
                &[TRAIN_BATCH, d],
            );
            put(&mut blob, &mut man, &format!("{p}.w"), &w, &[TRAIN_BATCH]);
            let norm = grad
                .iter()
                .map(|&v| f64::from(v).powi(2))
                .sum::<f64>()
                .sqrt();
            put(
                &mut blob,
                &mut man,
                &format!("{p}.flow"),
                &[loss as f32, norm as f32],
                &[2],
            );
        }
        let fused = time_ms(REPS, || {
            sample(&model, &[], x0.clone(), &cfg, 1).expect("fused Langevin");
        }) / STEPS as f64;
        let burn = time_ms(REPS, || {
            sample(&TensorPath(&model), &[], x0.clone(), &cfg, 1).expect("burn Langevin");
        }) / STEPS as f64;
        times.insert(
            format!("langevin_step/seqconv_l{len}_b{LANGEVIN_BATCH}"),
            json!({"fused": fused, "burn": burn}),
        );
        eprintln!("langevin seqconv L{len}: fused {fused:.3} ms, burn {burn:.3} ms per step");
        let inner = ad.clone().inner();
        let fused = time_ms(REPS, || {
            let k = model_ad.host_trainer().expect("training kernel");
            let (_, g) = k.flow_loss_grad(&xt, &target, &w);
            drop(k.gradients(&g, &inner));
        });
        let burn = time_ms(REPS, || {
            let loss = flow_loss(&model_ad, &fb, T_CUT);
            drop(GradientsParams::from_grads(loss.backward(), &model_ad));
        });
        times.insert(
            format!("flow_loss_grad/seqconv_l{len}_b{TRAIN_BATCH}"),
            json!({"fused": fused, "burn": burn}),
        );
        eprintln!("flow grad seqconv L{len}: fused {fused:.3} ms, burn {burn:.3} ms");
    }

    // OT coupling cost + assignment, batch 128, D 4740.
    let a = normal(OT_BATCH * OT_DIM, &mut rng);
    let b: Vec<f32> = normal(OT_BATCH * OT_DIM, &mut rng)
        .iter()
        .map(|v| v + 0.5)
        .collect();
    if dump {
        put(&mut blob, &mut man, "ot.x0", &a, &[OT_BATCH, OT_DIM]);
        put(&mut blob, &mut man, "ot.x1", &b, &[OT_BATCH, OT_DIM]);
        let c: Vec<f32> = ot::sq_cost(&a, &b, OT_DIM)
            .iter()
            .map(|&v| v as f32)
            .collect();
        put(&mut blob, &mut man, "ot.cost", &c, &[OT_BATCH, OT_BATCH]);
    }
    let cost = time_ms(REPS, || drop(ot::sq_cost(&a, &b, OT_DIM)));
    let cost_ref = time_ms(REPS, || drop(ot::sq_cost_reference(&a, &b, OT_DIM)));
    let couple = time_ms(REPS, || {
        ot::assignment(&ot::sq_cost(&a, &b, OT_DIM), OT_BATCH).expect("assignment");
    });
    times.insert(
        format!("ot_cost/b{OT_BATCH}_d{OT_DIM}"),
        json!({"fused": cost, "burn": cost_ref}),
    );
    times.insert(
        format!("ot_couple/b{OT_BATCH}_d{OT_DIM}"),
        json!({"fused": couple}),
    );
    eprintln!(
        "ot: cost {cost:.3} ms (scalar f64 {cost_ref:.3} ms), cost + assignment {couple:.3} ms"
    );

    // GGS CNN forward + input gradient, batch 256, relaxed inputs.
    let cnn: Cnn = CnnConfig::new().init(7, &device);
    if dump {
        let w = cnn.weights();
        put(
            &mut blob,
            &mut man,
            "cnn.encoder.weight",
            &w.encoder_weight,
            &[256, 20, 5],
        );
        put(
            &mut blob,
            &mut man,
            "cnn.encoder.bias",
            &w.encoder_bias,
            &[256],
        );
        put(
            &mut blob,
            &mut man,
            "cnn.embedding.weight",
            &w.embedding_weight,
            &[512, 256],
        );
        put(
            &mut blob,
            &mut man,
            "cnn.embedding.bias",
            &w.embedding_bias,
            &[512],
        );
        put(
            &mut blob,
            &mut man,
            "cnn.decoder.weight",
            &w.decoder_weight,
            &[1, 512],
        );
        put(
            &mut blob,
            &mut man,
            "cnn.decoder.bias",
            &[w.decoder_bias],
            &[1],
        );
    }
    for len in CNN_LENGTHS {
        // softmax of Gaussian logits: a relaxed one-hot like guidance's input.
        let mut x = normal(CNN_BATCH * len * 20, &mut rng);
        for pos in x.chunks_exact_mut(20) {
            let m = pos.iter().copied().fold(f32::MIN, f32::max);
            let z: f32 = pos
                .iter_mut()
                .map(|v| {
                    *v = (2.0 * (*v - m)).exp();
                    *v
                })
                .sum();
            pos.iter_mut().for_each(|v| *v /= z);
        }
        let xt = Tensor::<3>::from_data(TensorData::new(x.clone(), [CNN_BATCH, len, 20]), &device);
        if dump {
            let (s, g) = FusedCnn::of(&cnn)
                .expect("f32 flex CNN folds")
                .score_and_grad(&x, len);
            put(
                &mut blob,
                &mut man,
                &format!("cnn{len}.x"),
                &x,
                &[CNN_BATCH, len, 20],
            );
            put(
                &mut blob,
                &mut man,
                &format!("cnn{len}.score"),
                &s,
                &[CNN_BATCH],
            );
            put(
                &mut blob,
                &mut man,
                &format!("cnn{len}.grad"),
                &g,
                &[CNN_BATCH, len, 20],
            );
        }
        let fused = time_ms(REPS, || drop(cnn.input_gradient(xt.clone())));
        let burn = time_ms(REPS, || {
            let model = cnn.clone().train().no_grad();
            let xa = xt.clone().autodiff().require_grad();
            let grads = model.forward(xa.clone()).sum().backward();
            drop(xa.grad(&grads));
        });
        times.insert(
            format!("cnn_fwd_grad/b{CNN_BATCH}_l{len}"),
            json!({"fused": fused, "burn": burn}),
        );
        eprintln!("cnn L{len}: fused {fused:.3} ms, burn {burn:.3} ms");
    }

    // One Adam step of the GGS CNN on one-hot index sequences (GGS's predictor/oracle batch
    // 1024): the fused CPU step against burn's autodiff + Adam, from the same weights.
    for len in CNN_LENGTHS {
        let seqs: Vec<Vec<u8>> = (0..CNN_TRAIN_BATCH)
            .map(|_| (0..len).map(|_| rng.random_range(0..20u8)).collect())
            .collect();
        let targets: Vec<f32> = normal(CNN_TRAIN_BATCH, &mut rng);
        if dump {
            let idx: Vec<f32> = seqs.iter().flatten().map(|&r| f32::from(r)).collect();
            put(
                &mut blob,
                &mut man,
                &format!("cnntrain{len}.seqs"),
                &idx,
                &[CNN_TRAIN_BATCH, len],
            );
            put(
                &mut blob,
                &mut man,
                &format!("cnntrain{len}.y"),
                &targets,
                &[CNN_TRAIN_BATCH],
            );
        }
        let refs: Vec<&[u8]> = seqs.iter().map(Vec::as_slice).collect();
        let cfg = cnn.config();
        let mut w = cnn.weights();
        let mut adam = CnnAdam::new(&w, 1e-8, 1e-4);
        let fused = time_ms(REPS, || {
            let (_, g) = mse_and_grads(&cfg, &w, &refs, &targets);
            adam.step(1e-4, &mut w, &g);
        });
        let ad = device.clone().autodiff();
        let mut model = Some(cfg.from_weights(&cnn.weights(), &ad).expect("same shape"));
        let mut optim = AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(Some(WeightDecayConfig::new(1e-4)))
            .init();
        let y = Tensor::<1>::from_data(TensorData::new(targets.clone(), [CNN_TRAIN_BATCH]), &ad);
        let burn = time_ms(REPS, || {
            let m = model.take().expect("model");
            let x = one_hot_tensor(&seqs, len, &ad);
            let diff = m.forward(x) - y.clone();
            let loss = (diff.clone() * diff).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            model = Some(optim.step(1e-4, m, grads));
        });
        times.insert(
            format!("cnn_train_step/b{CNN_TRAIN_BATCH}_l{len}"),
            json!({"fused": fused, "burn": burn}),
        );
        eprintln!("cnn train L{len}: fused {fused:.3} ms, burn {burn:.3} ms");
    }

    if dump {
        fs::write(out.join("weights.bin"), &blob).expect("write weights.bin");
        let m = serde_json::to_string_pretty(&man).expect("manifest");
        fs::write(out.join("manifest.json"), m).expect("write manifest.json");
    }
    let report = json!({ "round": round, "threads": rayon::current_num_threads(), "ms": times });
    let path = out.join(format!("rust_{round}.json"));
    fs::write(&path, serde_json::to_string_pretty(&report).expect("json")).expect("write report");
    eprintln!("wrote {}", path.display());
}
