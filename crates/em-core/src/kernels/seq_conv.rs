//! The fused CPU path of [`SeqConvPotential`]: per sample, every 'same' convolution is one
//! GEMM over the sliding windows of a zero-padded `[length + 2p, channels]` buffer (no
//! im2col), and its input VJP is the same GEMM with the flipped, transposed kernel; bias,
//! activation and its slope fused in one pass; rayon over fixed chunks of samples. Every
//! readout is covered: mean, flatten, and the per-position sum, whose head runs as one GEMM
//! over all positions of a chunk.

use std::sync::Mutex;

use rayon::prelude::*;

use super::act::bias_act;
use super::gemm::{Op, gemm};
use super::mlp::{Dense, transpose};
use super::tile_gemm::gemm_nn;
use super::{HostPotential, host_values};
use crate::nn::{Activation, Conv1d, SeqConvPotential, SeqReadout};

/// Samples per rayon work unit (ours; fixed, so results do not depend on the thread count).
pub(super) const SAMPLE_CHUNK: usize = 8;

/// A 'same' convolution as two GEMM operands.
#[derive(Debug, Clone)]
pub(super) struct Conv {
    /// Forward `[k * c_in, c_out]`: row `j * c_in + ci` is `w[co, ci, j]`.
    pub(super) fwd: Vec<f32>,
    /// Input VJP `[k * c_out, c_in]`: row `j * c_out + co` is `w[co, ci, k - 1 - j]`.
    pub(super) bwd: Vec<f32>,
    pub(super) b: Vec<f32>,
    pub(super) c_in: usize,
    pub(super) c_out: usize,
    pub(super) k: usize,
}

impl Conv {
    fn of(layer: &Conv1d) -> Self {
        let [c_out, c_in, k] = layer.weight.dims();
        let w = host_values(layer.weight.val());
        let mut fwd = vec![0.0; k * c_in * c_out];
        let mut bwd = vec![0.0; k * c_out * c_in];
        for co in 0..c_out {
            for ci in 0..c_in {
                for j in 0..k {
                    let v = w[(co * c_in + ci) * k + j];
                    fwd[(j * c_in + ci) * c_out + co] = v;
                    bwd[((k - 1 - j) * c_out + co) * c_in + ci] = v;
                }
            }
        }
        Self {
            fwd,
            bwd,
            b: host_values(layer.bias.val()),
            c_in,
            c_out,
            k,
        }
    }

    /// `out[interior] (+)= conv(inp)`: both padded buffers, `inp` with `c_in` columns.
    pub(super) fn forward(&self, inp: &[f32], len: usize, beta: f32, out: &mut [f32]) {
        let p = (self.k - 1) / 2;
        let o = &mut out[p * self.c_out..(p + len) * self.c_out];
        gemm_nn(
            len,
            self.c_out,
            self.k * self.c_in,
            inp,
            self.c_in,
            &self.fwd,
            beta,
            o,
        );
    }

    /// `out[interior] (+)= conv^T(g)`: the transposed convolution, padded buffers.
    pub(super) fn backward(&self, g: &[f32], len: usize, beta: f32, out: &mut [f32]) {
        let p = (self.k - 1) / 2;
        let o = &mut out[p * self.c_in..(p + len) * self.c_in];
        gemm_nn(
            len,
            self.c_in,
            self.k * self.c_out,
            g,
            self.c_out,
            &self.bwd,
            beta,
            o,
        );
    }
}

/// The readout as this kernel holds it.
#[derive(Debug, Clone)]
pub(super) enum Readout {
    Mean,
    Flatten,
    /// `V = s * sum_l head(h_l + e_l)`.
    PositionSum {
        /// Position embedding `[length, hidden]` (burn holds `[hidden, length]`).
        embedding: Vec<f32>,
        /// Output scale `s`.
        scale: f32,
        /// `s * w2`: the head's output weights with the scale folded in, for the backward.
        scaled_l2: Vec<f32>,
    },
}

/// One sample's scratch, every feature buffer padded to `length + 2p` rows of zeros at the
/// ends (only interiors are ever written).
#[derive(Debug, Default)]
struct Workspace {
    x: Vec<f32>,
    h: Vec<f32>,
    a: Vec<f32>,
    g: Vec<f32>,
    t: Vec<f32>,
    gx: Vec<f32>,
    /// Slopes `act'` of the input conv, each block's inner conv and the readout input.
    slopes: Vec<Vec<f32>>,
    pooled: Vec<f32>,
    /// Head pre-activations and slopes: one row per sample (mean, flatten) or one per
    /// padded position of the chunk (position sum).
    head_pre: Vec<f32>,
    head_slope: Vec<f32>,
}

/// A snapshot of a [`SeqConvPotential`]'s weights as plain f32, with a workspace pool.
#[derive(Debug)]
pub struct FusedSeqConv {
    pub(super) input: Conv,
    pub(super) blocks: Vec<(Conv, Conv)>,
    /// Head `l1` with its rows in this kernel's `[length, hidden]` order.
    pub(super) l1: Dense,
    pub(super) l2_w: Vec<f32>,
    pub(super) l2_b: f32,
    pub(super) act: Activation,
    pub(super) readout: Readout,
    pub(super) length: usize,
    pub(super) channels: usize,
    pub(super) alpha: f32,
    pool: Mutex<Vec<Workspace>>,
}

impl FusedSeqConv {
    /// Copies the weights of `model` (any device, any float dtype) into f32 buffers.
    pub fn new(model: &SeqConvPotential) -> Self {
        let input = Conv::of(&model.input);
        let hid = input.c_out;
        let mut l1 = Dense::of(&model.head.l1);
        if model.readout == SeqReadout::Flatten {
            // burn flattens [hidden, length]; this kernel holds [length, hidden].
            let (len, n) = (model.length, l1.d_out);
            let mut w = vec![0.0; l1.w.len()];
            for c in 0..hid {
                for l in 0..len {
                    let (src, dst) = ((c * len + l) * n, (l * hid + c) * n);
                    w[dst..dst + n].copy_from_slice(&l1.w[src..src + n]);
                }
            }
            l1.wt = transpose(&w, l1.d_in, n);
            l1.w = w;
        }
        let l2 = Dense::of(&model.head.l2);
        let readout = match (model.readout, &model.position) {
            (SeqReadout::Mean, _) => Readout::Mean,
            (SeqReadout::Flatten, _) => Readout::Flatten,
            (SeqReadout::PositionSum, Some(ps)) => {
                let e = host_values(ps.embedding.val());
                let scale = ps.scale as f32;
                Readout::PositionSum {
                    embedding: transpose(&e, hid, model.length),
                    scale,
                    scaled_l2: l2.w.iter().map(|&w| w * scale).collect(),
                }
            }
            (SeqReadout::PositionSum, None) => {
                panic!("a position-sum SeqConvPotential without its PositionSum module")
            }
        };
        Self {
            input,
            blocks: model
                .blocks
                .iter()
                .map(|b| (Conv::of(&b.c1), Conv::of(&b.c2)))
                .collect(),
            l1,
            l2_w: l2.w,
            l2_b: l2.b[0],
            act: model.activation,
            readout,
            length: model.length,
            channels: model.channels,
            alpha: model.confinement as f32,
            pool: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn pad(&self) -> usize {
        (self.input.k - 1) / 2
    }

    fn workspace(&self) -> Workspace {
        if let Some(ws) = self.pool.lock().ok().and_then(|mut p| p.pop()) {
            return ws;
        }
        let rows = SAMPLE_CHUNK * (self.length + 2 * self.pad());
        let hid = self.input.c_out;
        let head_rows = match self.readout {
            Readout::PositionSum { .. } => rows,
            Readout::Mean | Readout::Flatten => 1,
        };
        Workspace {
            x: vec![0.0; rows * self.channels],
            h: vec![0.0; rows * hid],
            a: vec![0.0; rows * hid],
            g: vec![0.0; rows * hid],
            t: vec![0.0; rows * hid],
            gx: vec![0.0; rows * self.channels],
            slopes: vec![vec![0.0; rows * hid]; self.blocks.len() + 2],
            pooled: vec![0.0; self.l1.d_in],
            head_pre: vec![0.0; head_rows * self.l1.d_out],
            head_slope: vec![0.0; head_rows * self.l1.d_out],
        }
    }

    /// Rows of sample `s`'s interior in a stacked buffer with `c` columns.
    pub(super) fn interior(&self, s: usize, c: usize) -> std::ops::Range<usize> {
        let (p, len) = (self.pad(), self.length);
        let start = s * (len + 2 * p) + p;
        start * c..(start + len) * c
    }

    /// Zeroes the `p` pad rows on both sides of each of `samples` stacked samples.
    pub(super) fn zero_pads(&self, buf: &mut [f32], c: usize, samples: usize) {
        let (p, len) = (self.pad(), self.length);
        for s in 0..samples {
            let base = s * (len + 2 * p);
            buf[base * c..(base + p) * c].fill(0.0);
            buf[(base + p + len) * c..(base + 2 * p + len) * c].fill(0.0);
        }
    }

    /// Mean (`mean`) or flatten readout: per sample, pool the readout input `ws.a` to one
    /// row, run the head on it, write the energy (without confinement) and the head's
    /// gradient into the sample's interior of `ws.g`.
    fn pooled_head(&self, mean: bool, energy: &mut [f32], ws: &mut Workspace) {
        let (len, hid) = (self.length, self.input.c_out);
        let (d_in, hh) = (self.l1.d_in, self.l1.d_out);
        for (s, e) in energy.iter_mut().enumerate() {
            let feats = &ws.a[self.interior(s, hid)];
            if mean {
                ws.pooled.fill(0.0);
                for row in feats.chunks_exact(hid) {
                    ws.pooled.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
                }
                ws.pooled.iter_mut().for_each(|a| *a /= len as f32);
            } else {
                ws.pooled.copy_from_slice(feats);
            }
            gemm(
                1,
                hh,
                d_in,
                1.0,
                &ws.pooled,
                Op::N,
                &self.l1.w,
                Op::N,
                0.0,
                &mut ws.head_pre,
            );
            bias_act(self.act, &mut ws.head_pre, &self.l1.b, &mut ws.head_slope);
            let v: f32 = ws.head_pre.iter().zip(&self.l2_w).map(|(a, b)| a * b).sum();
            *e = v + self.l2_b;
            ws.head_slope
                .iter_mut()
                .zip(&self.l2_w)
                .for_each(|(a, &w)| *a *= w);
            gemm(
                1,
                d_in,
                hh,
                1.0,
                &ws.head_slope,
                Op::N,
                &self.l1.wt,
                Op::N,
                0.0,
                &mut ws.pooled,
            );
            let g = &mut ws.g[self.interior(s, hid)];
            if mean {
                for row in g.chunks_exact_mut(hid) {
                    row.iter_mut()
                        .zip(&ws.pooled)
                        .for_each(|(d, &a)| *d = a / len as f32);
                }
            } else {
                g.copy_from_slice(&ws.pooled);
            }
        }
    }

    /// Position-sum readout over the whole chunk: tokens `act(h_l) + e_l` (in `ws.t`), head
    /// layer 1 as one GEMM over every padded row, fused bias + activation + slope, layer 2
    /// and the scaled sum over each sample's interior rows (pad rows are computed and
    /// ignored); the backward `s * w2 * act' -> W1^T` is one GEMM into `ws.g` (its pad rows
    /// are zeroed by the caller).
    fn position_sum(
        &self,
        embedding: &[f32],
        scale: f32,
        scaled_l2: &[f32],
        energy: &mut [f32],
        ws: &mut Workspace,
    ) {
        let (hid, hh) = (self.input.c_out, self.l1.d_out);
        let samples = energy.len();
        let rows = samples * (self.length + 2 * self.pad());
        let (nh, nq) = (rows * hid, rows * hh);
        let tok = &mut ws.t[..nh];
        tok.copy_from_slice(&ws.a[..nh]);
        for s in 0..samples {
            tok[self.interior(s, hid)]
                .iter_mut()
                .zip(embedding)
                .for_each(|(v, &e)| *v += e);
        }
        let (pre, slope) = (&mut ws.head_pre[..nq], &mut ws.head_slope[..nq]);
        gemm_nn(rows, hh, hid, tok, hid, &self.l1.w, 0.0, pre);
        bias_act(self.act, pre, &self.l1.b, slope);
        for (s, e) in energy.iter_mut().enumerate() {
            // Per-position outputs summed in f64 so the sum over hundreds of positions
            // keeps f32's relative precision.
            let sum: f64 = pre[self.interior(s, hh)]
                .chunks_exact(hh)
                .map(|r| {
                    let v: f32 = r.iter().zip(&self.l2_w).map(|(a, b)| a * b).sum();
                    f64::from(v + self.l2_b)
                })
                .sum();
            *e = (f64::from(scale) * sum) as f32;
        }
        for row in slope.chunks_exact_mut(hh) {
            row.iter_mut().zip(scaled_l2).for_each(|(a, &w)| *a *= w);
        }
        gemm_nn(rows, hid, hh, slope, hh, &self.l1.wt, 0.0, &mut ws.g[..nh]);
    }

    /// Energies and input gradients of the samples in `x`, stacked with their zero padding
    /// so that each convolution is one GEMM over the whole chunk (windows that straddle two
    /// samples land on pad rows and are zeroed).
    fn chunk(&self, x: &[f32], energy: &mut [f32], grad: &mut [f32], ws: &mut Workspace) {
        let (len, hid, ch) = (self.length, self.input.c_out, self.channels);
        let p = self.pad();
        let samples = energy.len();
        let rows = samples * (len + 2 * p);
        let windows = rows - 2 * p;
        let (nh, nc) = (rows * hid, rows * ch);
        for (s, xs) in x.chunks_exact(len * ch).enumerate() {
            ws.x[self.interior(s, ch)].copy_from_slice(xs);
        }
        self.zero_pads(&mut ws.x[..nc], ch, samples);
        self.input
            .forward(&ws.x[..nc], windows, 0.0, &mut ws.h[..nh]);
        bias_act(
            self.act,
            &mut ws.h[..nh],
            &self.input.b,
            &mut ws.slopes[0][..nh],
        );
        self.zero_pads(&mut ws.h[..nh], hid, samples);
        for (i, (c1, c2)) in self.blocks.iter().enumerate() {
            c1.forward(&ws.h[..nh], windows, 0.0, &mut ws.a[..nh]);
            bias_act(
                self.act,
                &mut ws.a[..nh],
                &c1.b,
                &mut ws.slopes[i + 1][..nh],
            );
            self.zero_pads(&mut ws.a[..nh], hid, samples);
            c2.forward(&ws.a[..nh], windows, 1.0, &mut ws.h[..nh]);
            for row in ws.h[..nh].chunks_exact_mut(hid) {
                row.iter_mut().zip(&c2.b).for_each(|(v, &b)| *v += b);
            }
            self.zero_pads(&mut ws.h[..nh], hid, samples);
        }
        // Readout input act(h) into `a`, then per sample the head and its backward.
        let last = self.blocks.len() + 1;
        ws.a[..nh].copy_from_slice(&ws.h[..nh]);
        bias_act(
            self.act,
            &mut ws.a[..nh],
            &vec![0.0; hid],
            &mut ws.slopes[last][..nh],
        );
        match &self.readout {
            Readout::PositionSum {
                embedding,
                scale,
                scaled_l2,
            } => self.position_sum(embedding, *scale, scaled_l2, energy, ws),
            Readout::Mean => self.pooled_head(true, energy, ws),
            Readout::Flatten => self.pooled_head(false, energy, ws),
        }
        if self.alpha != 0.0 {
            for (s, e) in energy.iter_mut().enumerate() {
                let xs = &x[s * len * ch..(s + 1) * len * ch];
                let sq: f32 = xs.iter().map(|v| v * v).sum();
                *e += 0.5 * self.alpha * sq;
            }
        }
        self.zero_pads(&mut ws.g[..nh], hid, samples);
        let k = self.blocks.len();
        self.input_grad_from_features(
            x,
            samples,
            &mut ws.g,
            &mut ws.t,
            &mut ws.gx,
            (&ws.slopes[0], &ws.slopes[1..=k], &ws.slopes[k + 1]),
            grad,
        );
    }

    /// The backward from the gradient `g` at the readout input (pad rows zero; all buffers
    /// padded, `g` and `tmp` with `hidden` columns, `gx` with `channels`) to `grad_x V` of each
    /// sample of the chunk in `grad` (confinement included), through the readout activation,
    /// the blocks' and the input convolution's transposed convolutions. `slopes` are `act'`
    /// after the input convolution, inside each block, and at the readout. Shared by the
    /// Langevin kernel and the training kernel.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn input_grad_from_features(
        &self,
        x: &[f32],
        samples: usize,
        g: &mut [f32],
        tmp: &mut [f32],
        gx: &mut [f32],
        (input_slope, block_slopes, readout_slope): (&[f32], &[Vec<f32>], &[f32]),
        grad: &mut [f32],
    ) {
        let (len, hid, ch) = (self.length, self.input.c_out, self.channels);
        let rows = samples * (len + 2 * self.pad());
        let windows = rows - 2 * self.pad();
        let (nh, nc) = (rows * hid, rows * ch);
        let (g, tmp) = (&mut g[..nh], &mut tmp[..nh]);
        let mul = |v: &mut [f32], s: &[f32]| v.iter_mut().zip(s).for_each(|(d, &a)| *d *= a);
        mul(g, readout_slope);
        for (i, (c1, c2)) in self.blocks.iter().enumerate().rev() {
            c2.backward(g, windows, 0.0, tmp);
            self.zero_pads(tmp, hid, samples);
            mul(tmp, &block_slopes[i]);
            c1.backward(tmp, windows, 1.0, g);
            self.zero_pads(g, hid, samples);
        }
        mul(g, input_slope);
        self.input.backward(g, windows, 0.0, &mut gx[..nc]);
        for (s, gs) in grad.chunks_exact_mut(len * ch).enumerate() {
            gs.copy_from_slice(&gx[self.interior(s, ch)]);
            if self.alpha != 0.0 {
                let xs = &x[s * len * ch..(s + 1) * len * ch];
                gs.iter_mut()
                    .zip(xs)
                    .for_each(|(g, &v)| *g += self.alpha * v);
            }
        }
    }
}

impl HostPotential for FusedSeqConv {
    fn dim(&self) -> usize {
        self.length * self.channels
    }

    fn energy_and_grad(&self, x: &[f32], energy: &mut [f32], grad: &mut [f32]) {
        let dim = self.dim();
        assert!(
            x.len() == energy.len() * dim && grad.len() == x.len(),
            "fused SeqConv shapes"
        );
        x.par_chunks(SAMPLE_CHUNK * dim)
            .zip(energy.par_chunks_mut(SAMPLE_CHUNK))
            .zip(grad.par_chunks_mut(SAMPLE_CHUNK * dim))
            .for_each(|((xc, ec), gc)| {
                let mut ws = self.workspace();
                self.chunk(xc, ec, gc, &mut ws);
                if let Ok(mut p) = self.pool.lock() {
                    p.push(ws);
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{f64_device, max_relative_error, tensor_from_f64, to_vec_f64};
    use crate::nn::SeqConvPotentialConfig;
    use crate::potential::Potential;
    use burn::module::Param;
    use burn::prelude::*;
    use burn::tensor::Distribution;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// Every readout with kernel `kernel` on `device`: GELU, confinement, and for the
    /// position sum a non-trivial output scale and a random position embedding of unit
    /// scale (its default initialisation is nearly zero and would hide a misplaced term).
    fn model(readout: SeqReadout, kernel: usize, len: usize, ch: usize) -> SeqConvPotential {
        let device = f64_device();
        let mut model = SeqConvPotentialConfig::new(len, ch)
            .with_hidden_channels(12)
            .with_kernel(kernel)
            .with_blocks(2)
            .with_head_hidden(10)
            .with_readout(readout)
            .with_output_scale(20.0)
            .with_activation(Activation::GeluTanh)
            .with_confinement(0.3)
            .init(&device);
        if let Some(ps) = model.position.as_mut() {
            let e = Tensor::<2>::random([12, len], Distribution::Normal(0.0, 1.0), &device);
            ps.embedding = Param::from_tensor(e);
        }
        model
    }

    fn fused_eval(k: &FusedSeqConv, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (mut e, mut g) = (vec![0.0; x.len() / k.dim()], vec![0.0; x.len()]);
        k.energy_and_grad(x, &mut e, &mut g);
        (e, g)
    }

    /// Fused f32 against burn's tensor path in f64, every readout, kernels 3 and 5, a batch
    /// with a ragged last chunk.
    #[test]
    fn fused_matches_the_f64_tensor_reference() {
        let device = f64_device();
        device.seed(4);
        let mut rng = StdRng::seed_from_u64(6);
        let (batch, len, ch) = (11, 9, 4);
        let x: Vec<f64> = (0..batch * len * ch)
            .map(|_| rng.random::<f64>() * 2.0 - 1.0)
            .collect();
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        for (readout, kernel) in [
            (SeqReadout::Mean, 5),
            (SeqReadout::Flatten, 3),
            (SeqReadout::PositionSum, 5),
            (SeqReadout::PositionSum, 3),
        ] {
            let model = model(readout, kernel, len, ch);
            let (e_ref, g_ref) =
                model.energy_and_grad(tensor_from_f64(&x, [batch, len * ch], &device));
            let (e, g) = fused_eval(&FusedSeqConv::new(&model), &xf);
            let e: Vec<f64> = e.iter().map(|&v| f64::from(v)).collect();
            let g: Vec<f64> = g.iter().map(|&v| f64::from(v)).collect();
            let ee = max_relative_error(&e, &to_vec_f64(e_ref));
            let eg = max_relative_error(&g, &to_vec_f64(g_ref));
            // f32 kernel vs f64 reference; the weights come from the device RNG that parallel
            // tests share, so they differ run to run: up to 2.1e-4 seen on the gradient.
            assert!(
                ee < 1e-5 && eg < 5e-4,
                "{readout:?} k{kernel}: energy {ee:e}, grad {eg:e}"
            );
        }
    }

    /// Same bits on one and on three threads, and on a second call reusing the pooled
    /// workspaces, for every readout (fixed sample chunks: 4 full ones and a ragged one).
    #[test]
    fn fused_is_identical_whatever_the_thread_count() {
        let f64dev = f64_device();
        f64dev.seed(9);
        let mut rng = StdRng::seed_from_u64(10);
        let (batch, len, ch) = (4 * SAMPLE_CHUNK + 3, 7, 3);
        let x: Vec<f32> = (0..batch * len * ch)
            .map(|_| rng.random::<f32>() * 2.0 - 1.0)
            .collect();
        for readout in [
            SeqReadout::Mean,
            SeqReadout::Flatten,
            SeqReadout::PositionSum,
        ] {
            let fused = FusedSeqConv::new(&model(readout, 3, len, ch));
            let run = |threads: usize| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| fused_eval(&fused, &x))
            };
            let one = run(1);
            assert_eq!(one, run(3), "{readout:?}");
            assert_eq!(one, run(3), "{readout:?} (reused workspaces)");
        }
    }
}
