//! The fused CPU path of [`MlpPotential`]: energy and input gradient of a whole batch in one
//! forward + backward sweep over plain f32 workspaces (reused across calls), one
//! single-threaded GEMM per layer per row chunk, rayon over the chunks.

use std::sync::Mutex;

use rayon::prelude::*;

use super::act::bias_act;
use super::gemm::{Op, gemm};
use super::{HostPotential, host_values};
use crate::nn::{Activation, Linear, MlpPotential};

/// One affine layer in burn's `[d_in, d_out]` row-major layout.
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    pub(crate) w: Vec<f32>,
    /// `w` transposed, `[d_out, d_in]`: the backward's operand, contiguous so the GEMM packs
    /// it with unit-stride reads.
    pub(crate) wt: Vec<f32>,
    pub(crate) b: Vec<f32>,
    pub(crate) d_in: usize,
    pub(crate) d_out: usize,
}

impl Dense {
    pub(crate) fn of(layer: &Linear) -> Self {
        let (d_in, d_out) = (layer.d_input(), layer.d_output());
        let b = match &layer.bias {
            Some(b) => host_values(b.val()),
            None => vec![0.0; d_out],
        };
        let w = host_values(layer.weight.val());
        Self {
            wt: transpose(&w, d_in, d_out),
            w,
            b,
            d_in,
            d_out,
        }
    }
}

/// Row-major `[rows, cols]` -> `[cols, rows]`.
pub(crate) fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}

/// Per-chunk scratch: pre-activation slopes of every layer, the residual stream and the
/// backward signal. Sized for `rows` rows; grown on demand, never shrunk.
#[derive(Debug, Default)]
struct Workspace {
    rows: usize,
    /// `act'` at the input layer, each block's inner layer and the head input.
    slopes: Vec<Vec<f32>>,
    /// Residual stream `h`, then the head input `act(h)`.
    h: Vec<f32>,
    /// Inner activations of one block / scratch `[rows, hidden]`.
    a: Vec<f32>,
    /// Backward signal `dV/dh`.
    g: Vec<f32>,
}

/// A snapshot of an [`MlpPotential`]'s weights as plain f32, with a pool of workspaces.
#[derive(Debug)]
pub struct FusedMlp {
    input: Dense,
    blocks: Vec<(Dense, Dense)>,
    head_w: Vec<f32>,
    head_b: f32,
    act: Activation,
    alpha: f32,
    pool: Mutex<Vec<Workspace>>,
}

/// Rows per work unit for a batch of `batch` rows: a function of the batch size only (ours:
/// about a quarter of the batch so two cores each get two chunks, 16..=128 rows so the
/// weight packing inside each GEMM stays a small share of its work).
pub fn chunk_rows(batch: usize) -> usize {
    batch.div_ceil(4).clamp(16, 128)
}

impl FusedMlp {
    /// Copies the weights of `model` (any device, any float dtype) into f32 buffers.
    pub fn new(model: &MlpPotential) -> Self {
        Self {
            input: Dense::of(&model.input),
            blocks: model
                .blocks
                .iter()
                .map(|b| (Dense::of(&b.l1), Dense::of(&b.l2)))
                .collect(),
            head_w: host_values(model.head.weight.val()),
            head_b: model
                .head
                .bias
                .as_ref()
                .map_or(0.0, |b| host_values(b.val())[0]),
            act: model.activation,
            alpha: model.confinement as f32,
            pool: Mutex::new(Vec::new()),
        }
    }

    fn hidden(&self) -> usize {
        self.input.d_out
    }

    fn take_workspace(&self, rows: usize) -> Workspace {
        let ws = self.pool.lock().ok().and_then(|mut p| p.pop());
        let mut ws = ws.unwrap_or_default();
        let need = rows * self.hidden();
        if ws.rows < rows || ws.slopes.len() != self.blocks.len() + 2 {
            ws.slopes = vec![vec![0.0; need]; self.blocks.len() + 2];
            ws.h = vec![0.0; need];
            ws.a = vec![0.0; need];
            ws.g = vec![0.0; need];
            ws.rows = rows;
        }
        ws
    }

    fn give_back(&self, ws: Workspace) {
        if let Ok(mut p) = self.pool.lock() {
            p.push(ws);
        }
    }

    /// Energy `[m]` and input gradient `[m, dim]` of the `m` rows in `x`.
    fn chunk(&self, x: &[f32], energy: &mut [f32], grad: &mut [f32], ws: &mut Workspace) {
        let (dim, hid) = (self.input.d_in, self.hidden());
        let m = energy.len();
        let n = m * hid;
        let Workspace {
            slopes, h, a, g, ..
        } = ws;
        let (h, a, g) = (&mut h[..n], &mut a[..n], &mut g[..n]);
        // Forward: h = act(x W_in + b), keeping act' per layer.
        let inp = &self.input;
        gemm(m, hid, dim, 1.0, x, Op::N, &inp.w, Op::N, 0.0, h);
        bias_act(self.act, h, &inp.b, &mut slopes[0][..n]);
        for (i, (l1, l2)) in self.blocks.iter().enumerate() {
            gemm(m, hid, hid, 1.0, h, Op::N, &l1.w, Op::N, 0.0, a);
            bias_act(self.act, a, &l1.b, &mut slopes[i + 1][..n]);
            // h += act(pre) W2 + b2
            gemm(m, hid, hid, 1.0, a, Op::N, &l2.w, Op::N, 1.0, h);
            for row in h.chunks_exact_mut(hid) {
                row.iter_mut().zip(&l2.b).for_each(|(v, &b)| *v += b);
            }
        }
        let zero = vec![0.0; hid];
        let last = self.blocks.len() + 1;
        bias_act(self.act, h, &zero, &mut slopes[last][..n]);
        for (r, e) in energy.iter_mut().enumerate() {
            let hr = &h[r * hid..(r + 1) * hid];
            let v: f32 = hr.iter().zip(&self.head_w).map(|(p, q)| p * q).sum();
            let xr = &x[r * dim..(r + 1) * dim];
            let sq: f32 = xr.iter().map(|v| v * v).sum();
            *e = v + self.head_b + 0.5 * self.alpha * sq;
        }
        // Backward from dV/dout = 1: g = act'(h) * w_head, then the blocks in reverse.
        for (gr, sr) in g.chunks_exact_mut(hid).zip(slopes[last].chunks_exact(hid)) {
            for ((gv, &s), &w) in gr.iter_mut().zip(sr).zip(&self.head_w) {
                *gv = s * w;
            }
        }
        for (i, (l1, l2)) in self.blocks.iter().enumerate().rev() {
            gemm(m, hid, hid, 1.0, g, Op::N, &l2.wt, Op::N, 0.0, a);
            a.iter_mut()
                .zip(&slopes[i + 1][..n])
                .for_each(|(v, &s)| *v *= s);
            gemm(m, hid, hid, 1.0, a, Op::N, &l1.wt, Op::N, 1.0, g);
        }
        g.iter_mut()
            .zip(&slopes[0][..n])
            .for_each(|(v, &s)| *v *= s);
        let gx = &mut grad[..m * dim];
        gemm(m, dim, hid, 1.0, g, Op::N, &inp.wt, Op::N, 0.0, gx);
        if self.alpha != 0.0 {
            gx.iter_mut()
                .zip(x)
                .for_each(|(gv, &xv)| *gv += self.alpha * xv);
        }
    }
}

impl HostPotential for FusedMlp {
    fn dim(&self) -> usize {
        self.input.d_in
    }

    fn energy_and_grad(&self, x: &[f32], energy: &mut [f32], grad: &mut [f32]) {
        let dim = self.dim();
        let batch = energy.len();
        assert!(
            x.len() == batch * dim && grad.len() == batch * dim,
            "fused MLP shapes"
        );
        let rows = chunk_rows(batch);
        x.par_chunks(rows * dim)
            .zip(energy.par_chunks_mut(rows))
            .zip(grad.par_chunks_mut(rows * dim))
            .for_each(|((xc, ec), gc)| {
                let mut ws = self.take_workspace(rows);
                self.chunk(xc, ec, gc, &mut ws);
                self.give_back(ws);
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{f64_device, max_relative_error, tensor_from_f64, to_vec_f64};
    use crate::nn::MlpPotentialConfig;
    use crate::potential::Potential;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn fused_eval(k: &FusedMlp, x: &[f32], batch: usize) -> (Vec<f32>, Vec<f32>) {
        let mut e = vec![0.0; batch];
        let mut g = vec![0.0; x.len()];
        k.energy_and_grad(x, &mut e, &mut g);
        (e, g)
    }

    /// The fused f32 sweep against burn's tensor path in f64 (the reference), for every
    /// activation, with confinement, a batch that leaves a ragged last chunk (37 rows with
    /// chunks of 16) and a dimension above matrixmultiply's small-size cut-off.
    #[test]
    fn fused_matches_the_f64_tensor_reference() {
        let device = f64_device();
        device.seed(3);
        let mut rng = StdRng::seed_from_u64(5);
        let (batch, dim) = (37, 9);
        let x: Vec<f64> = (0..batch * dim)
            .map(|_| rng.random::<f64>() * 4.0 - 2.0)
            .collect();
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        for act in [
            Activation::Silu,
            Activation::Softplus,
            Activation::Tanh,
            Activation::GeluTanh,
        ] {
            let model = MlpPotentialConfig::new(dim)
                .with_hidden(24)
                .with_blocks(2)
                .with_activation(act)
                .with_confinement(0.2)
                .init(&device);
            let (e_ref, g_ref) = model.energy_and_grad(tensor_from_f64(&x, [batch, dim], &device));
            let (e_ref, g_ref) = (to_vec_f64(e_ref), to_vec_f64(g_ref));
            let fused = FusedMlp::new(&model);
            let (e, g) = fused_eval(&fused, &xf, batch);
            let e: Vec<f64> = e.iter().map(|&v| f64::from(v)).collect();
            let g: Vec<f64> = g.iter().map(|&v| f64::from(v)).collect();
            let ee = max_relative_error(&e, &e_ref);
            let eg = max_relative_error(&g, &g_ref);
            assert!(
                ee < 1e-5 && eg < 1e-4,
                "{act:?}: energy {ee:e}, grad {eg:e}"
            );
            // Reusing the pooled workspaces gives the same bits.
            assert_eq!(
                fused_eval(&fused, &xf, batch),
                fused_eval(&fused, &xf, batch)
            );
        }
    }

    /// The fused gradient against central differences of the fused energy itself (f32, so
    /// h = 1e-2: round-off ~1e-7 |V| / h ~ 1e-5, truncation h^2 |V'''| / 6 below 1e-4).
    #[test]
    fn fused_gradient_matches_finite_differences() {
        let device = f64_device();
        device.seed(8);
        let model = MlpPotentialConfig::new(3).with_hidden(16).init(&device);
        let fused = FusedMlp::new(&model);
        let x = [0.3f32, -1.2, 0.8, 1.5, 0.1, -0.4];
        let (_, g) = fused_eval(&fused, &x, 2);
        let h = 1e-2f32;
        let mut numeric = Vec::new();
        for i in 0..x.len() {
            let mut p = x;
            p[i] += h;
            let up = fused_eval(&fused, &p, 2).0[i / 3];
            p[i] -= 2.0 * h;
            let down = fused_eval(&fused, &p, 2).0[i / 3];
            numeric.push(f64::from(up - down) / f64::from(2.0 * h));
        }
        // Error relative to the largest gradient entry: the weights come from the shared
        // f64 device's RNG, which parallel tests also draw from, so a near-zero entry
        // (where a per-entry relative error is all f32 round-off) can occur.
        let g: Vec<f64> = g.iter().map(|&v| f64::from(v)).collect();
        let scale = g.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
        let err = g
            .iter()
            .zip(&numeric)
            .map(|(a, b)| (a - b).abs() / scale)
            .fold(0.0f64, f64::max);
        assert!(err < 2e-3, "max error / max |g| {err:e}");
    }
}
