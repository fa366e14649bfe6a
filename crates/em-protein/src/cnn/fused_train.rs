//! Fused CPU training step of the GGS CNN on index (one-hot) sequences: mean-squared-error
//! loss, its parameter gradients and burn's Adam update, on plain `f32` buffers. The encoder
//! conv and the per-position Linear fold into one conv (as in [`FusedCnn`]); on a one-hot
//! input each window of that conv is a sum of `kernel` weight rows (a gather, no GEMM), and
//! the max over length sends each sample's gradient through one window per channel, so a
//! step costs the fold and unfold GEMMs plus `batch x windows x kernel x embedding` adds
//! (burn's autodiff path: `batch x windows x (tokens x kernel x channels + channels x
//! embedding)` multiply-adds, forward and twice backward). Burn's path stays the reference:
//! the tests check gradients and whole training runs against it.

use rayon::prelude::*;

use em_core::kernels::gemm::{Op, gemm};

use super::fused::encoder_rows;
use super::{CnnConfig, CnnWeights, FusedCnn};

/// Samples per rayon work unit (ours; fixed, so results do not depend on the thread count:
/// every sample's forward is independent and the backward runs serially in sample order).
const SAMPLE_CHUNK: usize = 16;

/// One sample's forward through the folded conv: its score and, per embedding channel,
/// the pre-activation maximum over windows (bias included) and the window holding it.
struct Forward {
    score: f32,
    best: Vec<f32>,
    arg: Vec<u32>,
}

/// Mean squared error of the CNN with PyTorch-layout weights `w` (shape `cfg`) over
/// `seqs` (index sequences of one length `>= kernel`, indices `< n_tokens`, already
/// checked) against `targets`, and its gradient with respect to every weight, in the same
/// layout. Ties in the max over windows go to the first window (only identical windows,
/// whose gradients are identical, can tie exactly in the folded conv).
pub fn mse_and_grads(
    cfg: &CnnConfig,
    w: &CnnWeights,
    seqs: &[&[u8]],
    targets: &[f32],
) -> (f64, CnnWeights) {
    assert_eq!(seqs.len(), targets.len(), "one target per sequence");
    let (t, k, c, e) = (cfg.n_tokens, cfg.kernel_size, cfg.channels, cfg.embedding);
    let kt = k * t;
    let folded = FusedCnn::new(cfg, w);
    let forwards: Vec<Forward> = seqs
        .par_chunks(SAMPLE_CHUNK)
        .flat_map_iter(|chunk| {
            let mut window = vec![0.0f32; e];
            chunk
                .iter()
                .map(|s| forward(&folded, s, &mut window))
                .collect::<Vec<_>>()
        })
        .collect();
    let n = seqs.len() as f64;
    let mut loss = 0.0f64;
    // Gradients of the folded weight `[embedding, kernel * tokens]` and bias.
    let mut d_wt = vec![0.0f32; e * kt];
    let mut d_bf = vec![0.0f32; e];
    let mut d_dec = vec![0.0f32; e];
    let mut d_dec_b = 0.0f32;
    for ((f, seq), &y) in forwards.iter().zip(seqs).zip(targets) {
        let diff = f64::from(f.score) - f64::from(y);
        loss += diff * diff / n;
        let dy = (2.0 * diff / n) as f32;
        d_dec_b += dy;
        for o in 0..e {
            let z = f.best[o];
            if z > 0.0 {
                d_dec[o] += dy * z;
                let g = dy * folded.dec[o];
                d_bf[o] += g;
                let at = f.arg[o] as usize;
                let row = &mut d_wt[o * kt..(o + 1) * kt];
                for (j, &token) in seq[at..at + k].iter().enumerate() {
                    row[j * t + token as usize] += g;
                }
            }
        }
    }
    // Unfold: W_fold^T [e, kt] = W_emb [e, c] . enc [c, kt], b_fold = b_emb + W_emb b_enc.
    let enc = encoder_rows(cfg, &w.encoder_weight);
    let mut d_emb = vec![0.0f32; e * c];
    gemm(e, c, kt, 1.0, &d_wt, Op::N, &enc, Op::T, 0.0, &mut d_emb);
    for (o, row) in d_emb.chunks_exact_mut(c).enumerate() {
        for (d, &b) in row.iter_mut().zip(&w.encoder_bias) {
            *d += d_bf[o] * b;
        }
    }
    let mut d_enc = vec![0.0f32; c * kt];
    gemm(
        c,
        kt,
        e,
        1.0,
        &w.embedding_weight,
        Op::T,
        &d_wt,
        Op::N,
        0.0,
        &mut d_enc,
    );
    let d_enc_b: Vec<f32> = (0..c)
        .map(|ch| {
            (0..e)
                .map(|o| w.embedding_weight[o * c + ch] * d_bf[o])
                .sum()
        })
        .collect();
    let grads = CnnWeights {
        encoder_weight: encoder_layout(cfg, &d_enc),
        encoder_bias: d_enc_b,
        embedding_weight: d_emb,
        embedding_bias: d_bf,
        decoder_weight: d_dec,
        decoder_bias: d_dec_b,
    };
    (loss, grads)
}

/// The folded conv over one index sequence: every window's pre-activation is the bias plus
/// `kernel` rows of the folded weight (one per offset, chosen by the residue there).
fn forward(f: &FusedCnn, seq: &[u8], window: &mut [f32]) -> Forward {
    let (t, k, e) = (f.tokens, f.kernel, f.embedding);
    let windows = seq.len() - k + 1;
    let mut best = vec![f32::NEG_INFINITY; e];
    let mut arg = vec![0u32; e];
    for p in 0..windows {
        window.copy_from_slice(&f.b);
        for (j, &token) in seq[p..p + k].iter().enumerate() {
            let row = &f.w[(j * t + token as usize) * e..][..e];
            window.iter_mut().zip(row).for_each(|(z, &w)| *z += w);
        }
        for ((b, a), &z) in best.iter_mut().zip(arg.iter_mut()).zip(window.iter()) {
            if z > *b {
                *b = z;
                *a = p as u32;
            }
        }
    }
    let score = f.dec_b
        + best
            .iter()
            .zip(&f.dec)
            .map(|(&z, &d)| d * z.max(0.0))
            .sum::<f32>();
    Forward { score, best, arg }
}

/// The inverse of [`encoder_rows`].
fn encoder_layout(cfg: &CnnConfig, rows: &[f32]) -> Vec<f32> {
    let (t, k, c) = (cfg.n_tokens, cfg.kernel_size, cfg.channels);
    let mut out = vec![0.0f32; c * t * k];
    for ch in 0..c {
        for tt in 0..t {
            for j in 0..k {
                out[(ch * t + tt) * k + j] = rows[ch * k * t + j * t + tt];
            }
        }
    }
    out
}

/// burn's Adam (`AdamConfig`: beta1 0.9, beta2 0.999, the given epsilon) with its L2 weight
/// decay (`grad + decay * param`, PyTorch `Adam(weight_decay=...)`), on the six weight
/// vectors of a [`CnnWeights`], in the same arithmetic order as burn's.
#[derive(Debug, Clone)]
pub struct CnnAdam {
    epsilon: f32,
    weight_decay: f32,
    time: i32,
    m: CnnWeights,
    v: CnnWeights,
}

impl CnnAdam {
    const BETA_1: f32 = 0.9;
    const BETA_2: f32 = 0.999;

    /// Zero moments shaped like `w`.
    pub fn new(w: &CnnWeights, epsilon: f32, weight_decay: f32) -> Self {
        let mut z = w.clone();
        z.slices_mut().into_iter().for_each(|s| s.fill(0.0));
        Self {
            epsilon,
            weight_decay,
            time: 0,
            m: z.clone(),
            v: z,
        }
    }

    /// One update of `w` by `grads` at step size `lr`.
    pub fn step(&mut self, lr: f64, w: &mut CnnWeights, grads: &CnnWeights) {
        self.time += 1;
        let bc2 = (1.0 - Self::BETA_2.powi(self.time)).sqrt();
        let factor = bc2 / (1.0 - Self::BETA_1.powi(self.time));
        let (eps, decay, lr) = (self.epsilon * bc2, self.weight_decay, lr as f32);
        let update = |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                let g = *p * decay + g;
                *m = *m * Self::BETA_1 + g * (1.0 - Self::BETA_1);
                *v = *v * Self::BETA_2 + g * g * (1.0 - Self::BETA_2);
                *p -= (*m * factor / (v.sqrt() + eps)) * lr;
            }
        };
        let params = w.slices_mut();
        let (m, v) = (self.m.slices_mut(), self.v.slices_mut());
        for (((p, g), m), v) in params.into_iter().zip(grads.slices()).zip(m).zip(v) {
            update(p, g, m, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cnn::{Cnn, one_hot_tensor, tensor_to_vec};
    use burn::prelude::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    use crate::cnn::fused::tests::tiny;

    fn batch(n: usize, len: usize, seed: u64) -> (Vec<Vec<u8>>, Vec<f32>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let seqs = (0..n)
            .map(|_| (0..len).map(|_| rng.random_range(0..20u8)).collect())
            .collect();
        let y = (0..n).map(|_| rng.random_range(-1.0..1.0f32)).collect();
        (seqs, y)
    }

    /// Loss and parameter gradients through burn's autodiff, in PyTorch layout.
    fn burn_grads(cnn: &Cnn, seqs: &[Vec<u8>], y: &[f32]) -> (f64, CnnWeights) {
        let device = Device::flex().autodiff();
        let model = cnn.config().from_weights(&cnn.weights(), &device).unwrap();
        let x = one_hot_tensor(seqs, seqs[0].len(), &device);
        let y: Tensor<1> = Tensor::from_data(TensorData::new(y.to_vec(), [y.len()]), &device);
        let diff = model.forward(x) - y;
        let loss = (diff.clone() * diff).mean();
        let g = loss.backward();
        let grad = |t: Tensor<1>| tensor_to_vec(t.grad(&g).unwrap());
        let grads = CnnWeights {
            encoder_weight: tensor_to_vec(model.encoder.weight.val().grad(&g).unwrap()),
            encoder_bias: grad(model.encoder.bias.as_ref().unwrap().val()),
            embedding_weight: tensor_to_vec(
                model
                    .embedding
                    .layer
                    .weight
                    .val()
                    .grad(&g)
                    .unwrap()
                    .transpose(),
            ),
            embedding_bias: grad(model.embedding.layer.bias.as_ref().unwrap().val()),
            decoder_weight: tensor_to_vec(model.decoder.weight.val().grad(&g).unwrap()),
            decoder_bias: grad(model.decoder.bias.as_ref().unwrap().val())[0],
        };
        (tensor_to_vec(loss.detach().inner())[0] as f64, grads)
    }

    fn assert_close(name: &str, a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len(), "{name}");
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= tol * scale,
                "{name}[{i}]: fused {x} vs burn {y} (scale {scale})"
            );
        }
    }

    #[test]
    fn loss_and_gradients_match_burn_autodiff() {
        let cfg = tiny();
        let cnn = cfg.init(3, &Device::flex());
        let (seqs, y) = batch(37, 14, 8);
        let refs: Vec<&[u8]> = seqs.iter().map(Vec::as_slice).collect();
        let (loss, g) = mse_and_grads(&cfg, &cnn.weights(), &refs, &y);
        let (want, r) = burn_grads(&cnn, &seqs, &y);
        assert!(
            (loss - want).abs() < 1e-5 * want.max(1.0),
            "{loss} vs {want}"
        );
        assert_close("encoder.weight", &g.encoder_weight, &r.encoder_weight, 1e-4);
        assert_close("encoder.bias", &g.encoder_bias, &r.encoder_bias, 1e-4);
        assert_close(
            "embedding.weight",
            &g.embedding_weight,
            &r.embedding_weight,
            1e-4,
        );
        assert_close("embedding.bias", &g.embedding_bias, &r.embedding_bias, 1e-4);
        assert_close("decoder.weight", &g.decoder_weight, &r.decoder_weight, 1e-4);
        assert_close("decoder.bias", &[g.decoder_bias], &[r.decoder_bias], 1e-4);
    }

    #[test]
    fn gradient_matches_central_differences_of_the_loss() {
        // A check independent of burn: perturb a few weights of every tensor.
        let cfg = tiny();
        let w = cfg.init(5, &Device::flex()).weights();
        let (seqs, y) = batch(9, 10, 2);
        let refs: Vec<&[u8]> = seqs.iter().map(Vec::as_slice).collect();
        let (_, g) = mse_and_grads(&cfg, &w, &refs, &y);
        // Small steps: max over windows and ReLU put kinks within 1e-3 of these weights.
        let h = 1e-4f32;
        let probe = |pick: &dyn Fn(&mut CnnWeights) -> &mut f32, analytic: f32, name: &str| {
            let (mut up, mut down) = (w.clone(), w.clone());
            *pick(&mut up) += h;
            *pick(&mut down) -= h;
            let fd = (mse_and_grads(&cfg, &up, &refs, &y).0
                - mse_and_grads(&cfg, &down, &refs, &y).0)
                / (2.0 * f64::from(h));
            assert!(
                (fd - f64::from(analytic)).abs() < 2e-3 + 2e-2 * fd.abs(),
                "{name}: finite difference {fd} vs analytic {analytic}"
            );
        };
        for i in [0, 17, 200] {
            probe(
                &|w| &mut w.encoder_weight[i],
                g.encoder_weight[i],
                "encoder.weight",
            );
        }
        probe(
            &|w| &mut w.encoder_bias[3],
            g.encoder_bias[3],
            "encoder.bias",
        );
        for i in [1, 60] {
            probe(
                &|w| &mut w.embedding_weight[i],
                g.embedding_weight[i],
                "embedding.weight",
            );
        }
        probe(
            &|w| &mut w.embedding_bias[5],
            g.embedding_bias[5],
            "embedding.bias",
        );
        probe(
            &|w| &mut w.decoder_weight[7],
            g.decoder_weight[7],
            "decoder.weight",
        );
        probe(&|w| &mut w.decoder_bias, g.decoder_bias, "decoder.bias");
    }

    #[test]
    fn same_result_on_one_and_several_threads() {
        let cfg = tiny();
        let w = cfg.init(1, &Device::flex()).weights();
        let (seqs, y) = batch(70, 12, 4);
        let refs: Vec<&[u8]> = seqs.iter().map(Vec::as_slice).collect();
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| mse_and_grads(&cfg, &w, &refs, &y))
        };
        let (a, b) = (run(1), run(3));
        assert_eq!(a.0.to_bits(), b.0.to_bits());
        assert_eq!(a.1, b.1);
    }
}
