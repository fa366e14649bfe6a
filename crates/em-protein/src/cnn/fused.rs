//! Fused CPU scoring and input gradient of the GGS CNN. The encoder conv (`n_tokens ->
//! channels`, kernel k) and the per-position Linear (`channels -> embedding`) have no
//! nonlinearity between them, so they fold exactly into one conv `n_tokens -> embedding`;
//! each sample is one GEMM over its sliding windows (no im2col), then ReLU, max over length
//! and the decoder, and the input gradient flows back through one window per channel.

use rayon::prelude::*;

use em_core::kernels::gemm::{Op, gemm, gemm_rows};
use em_core::kernels::is_host_f32;

use super::{Cnn, CnnConfig, CnnWeights};

/// Samples per rayon work unit (ours; fixed, so results do not depend on the thread count).
const SAMPLE_CHUNK: usize = 8;

/// The folded CNN as plain f32 buffers.
#[derive(Debug, Clone)]
pub struct FusedCnn {
    pub(super) tokens: usize,
    pub(super) kernel: usize,
    pub(super) embedding: usize,
    /// Folded conv weight `[kernel * tokens, embedding]`; row `j * tokens + t` is input
    /// token `t` at window offset `j`.
    pub(super) w: Vec<f32>,
    /// The same, transposed: `[embedding, kernel * tokens]` (the backward's rows).
    pub(super) wt: Vec<f32>,
    /// Folded bias `b_emb + W_emb b_enc`, `[embedding]`.
    pub(super) b: Vec<f32>,
    /// Decoder weight `[embedding]` and bias.
    pub(super) dec: Vec<f32>,
    pub(super) dec_b: f32,
}

impl FusedCnn {
    /// Folds hand-given PyTorch-layout weights of a CNN of shape `cfg` (lengths as
    /// [`CnnConfig::from_weights`] checks them). The fold's sum over channels is one f32
    /// GEMM; the bias is summed in f64.
    pub fn new(cfg: &CnnConfig, w: &CnnWeights) -> Self {
        let (t, k, c, e) = (cfg.n_tokens, cfg.kernel_size, cfg.channels, cfg.embedding);
        let kt = k * t;
        let enc = encoder_rows(cfg, &w.encoder_weight);
        let mut wt = vec![0.0f32; e * kt];
        gemm(
            e,
            kt,
            c,
            1.0,
            &w.embedding_weight,
            Op::N,
            &enc,
            Op::N,
            0.0,
            &mut wt,
        );
        let mut wf = vec![0.0f32; kt * e];
        for o in 0..e {
            for r in 0..kt {
                wf[r * e + o] = wt[o * kt + r];
            }
        }
        let b = (0..e)
            .map(|o| {
                let row = &w.embedding_weight[o * c..(o + 1) * c];
                let s: f64 = row
                    .iter()
                    .zip(&w.encoder_bias)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum();
                (s + f64::from(w.embedding_bias[o])) as f32
            })
            .collect();
        Self {
            tokens: t,
            kernel: k,
            embedding: e,
            w: wf,
            wt,
            b,
            dec: w.decoder_weight.clone(),
            dec_b: w.decoder_bias,
        }
    }

    /// The folded form of `cnn` when its parameters sit on the plain flex device in f32
    /// (the case this path reproduces); `None` elsewhere (f64, autodiff, GPU).
    pub fn of(cnn: &Cnn) -> Option<Self> {
        is_host_f32(&cnn.encoder.weight.val()).then(|| Self::new(&cnn.config(), &cnn.weights()))
    }

    /// Scores `[batch]` of inputs `x: [batch, length, n_tokens]` (row-major, one-hot or
    /// relaxed; `length >= kernel`).
    pub fn score(&self, x: &[f32], length: usize) -> Vec<f32> {
        self.run(x, length, None)
    }

    /// Scores and input gradients `d score_b / d x_b`, `[batch, length, n_tokens]`.
    pub fn score_and_grad(&self, x: &[f32], length: usize) -> (Vec<f32>, Vec<f32>) {
        let mut grad = vec![0.0f32; x.len()];
        let s = self.run(x, length, Some(&mut grad));
        (s, grad)
    }

    /// Scores of the relaxed inputs `softmax(x / temperature)` (softmax over the tokens at
    /// each position, as [`crate::representation::relax`]) and their gradients with respect
    /// to the logits `x: [batch, length * n_tokens]`: `dx = p (g - <p, g>) / temperature`.
    pub fn relaxed_score_and_grad(
        &self,
        x: &[f32],
        length: usize,
        temperature: f32,
    ) -> (Vec<f32>, Vec<f32>) {
        let t = self.tokens;
        let mut p = x.to_vec();
        for pos in p.chunks_exact_mut(t) {
            let m = pos.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut z = 0.0;
            for v in pos.iter_mut() {
                *v = em_core::kernels::act::exp((*v - m) / temperature);
                z += *v;
            }
            pos.iter_mut().for_each(|v| *v /= z);
        }
        let (s, mut g) = self.score_and_grad(&p, length);
        for (gp, pp) in g.chunks_exact_mut(t).zip(p.chunks_exact(t)) {
            let dot: f32 = gp.iter().zip(pp).map(|(a, b)| a * b).sum();
            gp.iter_mut()
                .zip(pp)
                .for_each(|(a, &b)| *a = b * (*a - dot) / temperature);
        }
        (s, g)
    }

    fn run(&self, x: &[f32], length: usize, grad: Option<&mut [f32]>) -> Vec<f32> {
        let per = length * self.tokens;
        assert!(
            length >= self.kernel && x.len().is_multiple_of(per),
            "fused CNN input shape"
        );
        let batch = x.len() / per;
        let mut scores = vec![0.0f32; batch];
        let xs = x.par_chunks(SAMPLE_CHUNK * per);
        let ss = scores.par_chunks_mut(SAMPLE_CHUNK);
        match grad {
            Some(g) => xs
                .zip(ss)
                .zip(g.par_chunks_mut(SAMPLE_CHUNK * per))
                .for_each(|((xc, sc), gc)| self.chunk(xc, length, sc, Some(gc))),
            None => xs
                .zip(ss)
                .for_each(|(xc, sc)| self.chunk(xc, length, sc, None)),
        }
        scores
    }

    /// One chunk of samples with one reused `[windows, embedding]` buffer.
    fn chunk(&self, x: &[f32], length: usize, scores: &mut [f32], mut grad: Option<&mut [f32]>) {
        let (t, e) = (self.tokens, self.embedding);
        let kt = self.kernel * t;
        let windows = length - self.kernel + 1;
        let per = length * t;
        let mut pre = vec![0.0f32; windows * e];
        let mut best = vec![0.0f32; e];
        let mut arg = vec![0usize; e];
        for (s, score) in scores.iter_mut().enumerate() {
            let xs = &x[s * per..(s + 1) * per];
            gemm_rows(windows, e, kt, xs, t, &self.w, Op::N, 0.0, &mut pre);
            // max over windows (first window wins ties), then ReLU: relu(max) = max(relu).
            best.copy_from_slice(&pre[..e]);
            arg.fill(0);
            for p in 1..windows {
                let row = &pre[p * e..(p + 1) * e];
                for ((bv, av), &v) in best.iter_mut().zip(arg.iter_mut()).zip(row) {
                    if v > *bv {
                        *bv = v;
                        *av = p;
                    }
                }
            }
            *score = self.dec_b
                + (best.iter().zip(&self.b).zip(&self.dec))
                    .map(|((&m, &b), &d)| d * (m + b).max(0.0))
                    .sum::<f32>();
            if let Some(g) = grad.as_deref_mut() {
                let gs = &mut g[s * per..(s + 1) * per];
                for o in 0..e {
                    if best[o] + self.b[o] > 0.0 {
                        let c = self.dec[o];
                        let at = arg[o] * t;
                        let wrow = &self.wt[o * kt..(o + 1) * kt];
                        gs[at..at + kt]
                            .iter_mut()
                            .zip(wrow)
                            .for_each(|(d, &w)| *d += c * w);
                    }
                }
            }
        }
    }
}

/// PyTorch's encoder weight `[channels, tokens, kernel]` as rows `[channels, kernel * tokens]`
/// with column `j * tokens + t` (the folded conv's row order).
pub(super) fn encoder_rows(cfg: &CnnConfig, w: &[f32]) -> Vec<f32> {
    let (t, k, c) = (cfg.n_tokens, cfg.kernel_size, cfg.channels);
    let mut out = vec![0.0f32; c * k * t];
    for ch in 0..c {
        for tt in 0..t {
            for j in 0..k {
                out[ch * k * t + j * t + tt] = w[(ch * t + tt) * k + j];
            }
        }
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use burn::prelude::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// A CNN small enough for exhaustive checks (shared with the training tests).
    pub(in crate::cnn) fn tiny() -> CnnConfig {
        CnnConfig::new()
            .with_kernel_size(3)
            .with_channels(8)
            .with_embedding(16)
    }

    /// The unfolded network in f64, straight from the PyTorch-layout weights: conv, Linear,
    /// ReLU, max over length, decoder; gradient through the (first) argmax window.
    fn reference(cfg: &CnnConfig, w: &CnnWeights, x: &[f32], len: usize) -> (f64, Vec<f64>) {
        let (t, k, c, e) = (cfg.n_tokens, cfg.kernel_size, cfg.channels, cfg.embedding);
        let f = |v: f32| f64::from(v);
        let win = len - k + 1;
        let mut best = vec![(f64::NEG_INFINITY, 0usize); e];
        for p in 0..win {
            let h: Vec<f64> = (0..c)
                .map(|ch| {
                    let mut s = f(w.encoder_bias[ch]);
                    for tt in 0..t {
                        for j in 0..k {
                            s +=
                                f(w.encoder_weight[(ch * t + tt) * k + j]) * f(x[(p + j) * t + tt]);
                        }
                    }
                    s
                })
                .collect();
            for (o, b) in best.iter_mut().enumerate() {
                let z = f(w.embedding_bias[o])
                    + (0..c)
                        .map(|ch| f(w.embedding_weight[o * c + ch]) * h[ch])
                        .sum::<f64>();
                if z > b.0 {
                    *b = (z, p);
                }
            }
        }
        let mut score = f(w.decoder_bias);
        let mut grad = vec![0.0f64; len * t];
        for (o, &(z, p)) in best.iter().enumerate() {
            score += f(w.decoder_weight[o]) * z.max(0.0);
            if z > 0.0 {
                for ch in 0..c {
                    let a = f(w.decoder_weight[o]) * f(w.embedding_weight[o * c + ch]);
                    for tt in 0..t {
                        for j in 0..k {
                            grad[(p + j) * t + tt] +=
                                a * f(w.encoder_weight[(ch * t + tt) * k + j]);
                        }
                    }
                }
            }
        }
        (score, grad)
    }

    fn inputs(batch: usize, len: usize, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..batch * len * 20).map(|_| rng.random::<f32>()).collect()
    }

    /// Folded scores and gradients against the unfolded f64 reference, on continuous inputs
    /// (no ties), a batch leaving a ragged last chunk and two lengths.
    #[test]
    fn folded_matches_the_unfolded_f64_reference() {
        let cfg = tiny();
        let cnn = cfg.init(4, &Device::flex());
        let w = cnn.weights();
        let fused = FusedCnn::new(&cfg, &w);
        for (batch, len) in [(11, 9), (3, 3)] {
            let x = inputs(batch, len, 6);
            let (s, g) = fused.score_and_grad(&x, len);
            assert_eq!(s, fused.score(&x, len));
            let per = len * 20;
            let mut live = 0;
            for b in 0..batch {
                let (rs, rg) = reference(&cfg, &w, &x[b * per..(b + 1) * per], len);
                assert!(
                    (f64::from(s[b]) - rs).abs() < 1e-5 * (1.0 + rs.abs()),
                    "{} vs {rs}",
                    s[b]
                );
                for (a, r) in g[b * per..(b + 1) * per].iter().zip(&rg) {
                    assert!((f64::from(*a) - r).abs() < 1e-5, "grad {a} vs {r}");
                }
                live += rg.iter().filter(|v| v.abs() > 0.0).count();
            }
            assert!(live > 0, "some gradient flows");
        }
    }

    /// Folded gradients against central differences of the folded scores (f32, h = 1e-2; a
    /// max/ReLU kink inside +-h would show as an O(1) error: none at this seed).
    #[test]
    fn folded_gradient_matches_finite_differences() {
        let cfg = tiny();
        let fused = FusedCnn::new(&cfg, &cfg.init(9, &Device::flex()).weights());
        let len = 6;
        let x = inputs(1, len, 2);
        let (_, g) = fused.score_and_grad(&x, len);
        let (_, gr) = fused.relaxed_score_and_grad(&x, len, 0.5);
        let h = 1e-2f32;
        let fd = |f: &dyn Fn(&[f32]) -> f32, i: usize| {
            let mut p = x.clone();
            p[i] += h;
            let up = f(&p);
            p[i] -= 2.0 * h;
            (up - f(&p)) / (2.0 * h)
        };
        let score = |v: &[f32]| fused.score(v, len)[0];
        let relaxed = |v: &[f32]| fused.relaxed_score_and_grad(v, len, 0.5).0[0];
        let scale = g.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale_r = gr.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(scale > 1e-3 && scale_r > 1e-4, "gradients are not trivial");
        for i in 0..x.len() {
            assert!(
                (fd(&score, i) - g[i]).abs() < 1e-3 * scale,
                "d score / dx[{i}]"
            );
            assert!(
                (fd(&relaxed, i) - gr[i]).abs() < 2e-3 * scale_r,
                "d relaxed / dx[{i}]"
            );
        }
    }

    /// The wired paths: `Cnn::score` and `Cnn::input_gradient` (both folded on this f32
    /// device) against burn's unfused forward and autodiff gradient.
    #[test]
    fn wired_paths_match_burn_forward_and_autodiff() {
        let device = Device::flex();
        let cnn = tiny().init(12, &device);
        assert!(FusedCnn::of(&cnn).is_some());
        let (batch, len) = (5, 8);
        let x = inputs(batch, len, 3);
        let xt = Tensor::<3>::from_data(TensorData::new(x.clone(), [batch, len, 20]), &device);
        let want = super::super::tensor_to_vec(cnn.forward(xt.clone()));
        let seqs: Vec<Vec<u8>> = (0..batch)
            .map(|b| (0..len).map(|p| ((b * 7 + p * 3) % 20) as u8).collect())
            .collect();
        let onehot = crate::cnn::one_hot_tensor(&seqs, len, &device);
        let want_seq = super::super::tensor_to_vec(cnn.forward(onehot));
        let got_seq = cnn.score(&seqs).unwrap();
        for (a, b) in got_seq.iter().zip(&want_seq) {
            assert!((a - b).abs() < 1e-5, "score {a} vs {b}");
        }
        let (f, g) = cnn.input_gradient(xt.clone());
        // burn's own autodiff gradient, forced by going through an autodiff copy.
        let model = cnn.clone().train().no_grad();
        let xa = xt.autodiff().require_grad();
        let grads = model.forward(xa.clone()).sum().backward();
        let g_ref = super::super::tensor_to_vec(xa.grad(&grads).unwrap());
        for (a, b) in super::super::tensor_to_vec(f).iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "score {a} vs {b}");
        }
        for (a, b) in super::super::tensor_to_vec(g).iter().zip(&g_ref) {
            assert!((a - b).abs() < 1e-5, "grad {a} vs {b}");
        }
    }
}
