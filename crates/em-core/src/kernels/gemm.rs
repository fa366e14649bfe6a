//! Row-major `C = alpha op(A) op(B) + beta C` on `f32` slices: matrixmultiply's AVX2/FMA
//! kernels (reached safely through nalgebra views), a plain loop for degenerate sizes.

use nalgebra::{DMatrixView, DMatrixViewMut};

/// Whether an operand is used as stored (`N`) or transposed (`T`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// As stored.
    N,
    /// Transposed.
    T,
}

/// Dimensions at or below which nalgebra would not call matrixmultiply (its `SMALL_DIM`).
const SMALL: usize = 5;

/// `C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C`, every matrix row-major and
/// contiguous: `A` is `[m, k]` for `Op::N` and `[k, m]` for `Op::T`, likewise `B`.
/// `beta = 0` overwrites `C` (its old values are never read). Single-threaded.
///
/// Panics if a slice is shorter than its shape (a programmer error inside the kernels).
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    op_a: Op,
    b: &[f32],
    op_b: Op,
    beta: f32,
    c: &mut [f32],
) {
    // (i, l) of op(A) lives at i * ars + l * acs.
    let sa = match op_a {
        Op::N => (k, 1),
        Op::T => (1, m),
    };
    let sb = b_strides(op_b, n, k);
    strided(m, n, k, alpha, a, sa, b, sb, beta, c);
}

/// (row, column) strides of `op(B)` for a `[k, n]` product operand stored row-major.
fn b_strides(op_b: Op, n: usize, k: usize) -> (usize, usize) {
    match op_b {
        Op::N => (n, 1),
        Op::T => (1, k),
    }
}

/// `C[m, n] = alpha * A[m, k] * op(B) + beta * C` where row `i` of `A` starts at `i * lda`
/// (rows may overlap: with `lda = channels` and `k = kernel * channels` the rows of `A` are
/// the sliding windows of a `[length, channels]` signal, a convolution without im2col).
#[allow(clippy::too_many_arguments)]
pub fn gemm_rows(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    op_b: Op,
    beta: f32,
    c: &mut [f32],
) {
    let sb = b_strides(op_b, n, k);
    strided(m, n, k, 1.0, a, (lda, 1), b, sb, beta, c);
}

/// `C[k, n] = A^T B + beta * C` for `A: [m, k]` whose row `i` starts at `i * lda` (rows may
/// overlap, as in [`gemm_rows`]) and a contiguous row-major `B: [m, n]`: the weight gradient
/// of a convolution, summed over the sliding windows, without im2col.
#[allow(clippy::too_many_arguments)]
pub fn gemm_rows_t(
    k: usize,
    n: usize,
    m: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    strided(k, n, m, 1.0, a, (1, lda), b, (n, 1), beta, c);
}

/// Elements a strided `rows x cols` view spans.
fn span(rows: usize, cols: usize, (rs, cs): (usize, usize)) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

#[allow(clippy::too_many_arguments)]
fn strided(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    (ars, acs): (usize, usize),
    b: &[f32],
    (brs, bcs): (usize, usize),
    beta: f32,
    c: &mut [f32],
) {
    let (la, lb) = (span(m, k, (ars, acs)), span(k, n, (brs, bcs)));
    assert!(
        a.len() >= la && b.len() >= lb && c.len() >= m * n,
        "gemm shapes"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        scale(&mut c[..m * n], beta);
        return;
    }
    if m <= SMALL || n <= SMALL || k <= SMALL {
        small(m, n, k, alpha, a, (ars, acs), b, (brs, bcs), beta, c);
        return;
    }
    let av = DMatrixView::from_slice_with_strides(&a[..la], m, k, ars, acs);
    let bv = DMatrixView::from_slice_with_strides(&b[..lb], k, n, brs, bcs);
    let mut cv = DMatrixViewMut::from_slice_with_strides_mut(&mut c[..m * n], m, n, n, 1);
    cv.gemm(alpha, &av, &bv, beta);
}

fn scale(c: &mut [f32], beta: f32) {
    if beta == 0.0 {
        c.fill(0.0);
    } else {
        c.iter_mut().for_each(|v| *v *= beta);
    }
}

/// The plain triple loop for sizes matrixmultiply is not worth calling on (e.g. `k = 2`).
#[allow(clippy::too_many_arguments)]
fn small(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    (ars, acs): (usize, usize),
    b: &[f32],
    (brs, bcs): (usize, usize),
    beta: f32,
    c: &mut [f32],
) {
    for i in 0..m {
        let row = &mut c[i * n..(i + 1) * n];
        scale(row, beta);
        for l in 0..k {
            let s = alpha * a[i * ars + l * acs];
            if bcs == 1 {
                let br = &b[l * brs..l * brs + n];
                row.iter_mut().zip(br).for_each(|(r, &v)| *r += s * v);
            } else {
                for (j, r) in row.iter_mut().enumerate() {
                    *r += s * b[l * brs + j * bcs];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn reference(m: usize, n: usize, k: usize, a: &[f32], oa: Op, b: &[f32], ob: Op) -> Vec<f64> {
        let at = |i: usize, l: usize| match oa {
            Op::N => a[i * k + l],
            Op::T => a[l * m + i],
        };
        let bt = |l: usize, j: usize| match ob {
            Op::N => b[l * n + j],
            Op::T => b[j * k + l],
        };
        let mut c = vec![0.0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|l| f64::from(at(i, l)) * f64::from(bt(l, j)))
                    .sum();
            }
        }
        c
    }

    #[test]
    fn matches_f64_reference_for_every_transpose_and_size_class() {
        let mut rng = StdRng::seed_from_u64(3);
        for (m, n, k) in [(7, 9, 11), (3, 17, 2), (16, 1, 40), (33, 20, 6), (1, 1, 1)] {
            for oa in [Op::N, Op::T] {
                for ob in [Op::N, Op::T] {
                    let a: Vec<f32> = (0..m * k).map(|_| rng.random::<f32>() - 0.5).collect();
                    let b: Vec<f32> = (0..k * n).map(|_| rng.random::<f32>() - 0.5).collect();
                    let c0: Vec<f32> = (0..m * n).map(|_| rng.random::<f32>() - 0.5).collect();
                    let mut c = c0.clone();
                    gemm(m, n, k, 2.0, &a, oa, &b, ob, 0.5, &mut c);
                    let want = reference(m, n, k, &a, oa, &b, ob);
                    for i in 0..m * n {
                        let w = 2.0 * want[i] + 0.5 * f64::from(c0[i]);
                        assert!(
                            (f64::from(c[i]) - w).abs() < 1e-5,
                            "{m}x{n}x{k} {oa:?}{ob:?} [{i}]: {} vs {w}",
                            c[i]
                        );
                    }
                    // beta = 0 never reads C, even a NaN there.
                    let mut c = vec![f32::NAN; m * n];
                    gemm(m, n, k, 1.0, &a, oa, &b, ob, 0.0, &mut c);
                    assert!(
                        c.iter()
                            .zip(&want)
                            .all(|(x, w)| (f64::from(*x) - w).abs() < 1e-5)
                    );
                }
            }
        }
    }

    /// The transposed sliding-window product against explicit im2col: `cols^T g`.
    #[test]
    fn gemm_rows_t_is_the_windows_transposed_product() {
        let mut rng = StdRng::seed_from_u64(11);
        let (len, ch, ker, out) = (14, 3, 5, 6);
        let sig: Vec<f32> = (0..len * ch).map(|_| rng.random::<f32>() - 0.5).collect();
        let m = len - ker + 1;
        let g: Vec<f32> = (0..m * out).map(|_| rng.random::<f32>() - 0.5).collect();
        let cols: Vec<f32> = (0..m)
            .flat_map(|p| sig[p * ch..(p + ker) * ch].to_vec())
            .collect();
        let want = reference(ker * ch, out, m, &cols, Op::T, &g, Op::N);
        let c0: Vec<f32> = (0..ker * ch * out).map(|_| rng.random::<f32>()).collect();
        let mut c = c0.clone();
        gemm_rows_t(ker * ch, out, m, &sig, ch, &g, 1.0, &mut c);
        for i in 0..c.len() {
            let w = want[i] + f64::from(c0[i]);
            assert!((f64::from(c[i]) - w).abs() < 1e-5, "[{i}] {} vs {w}", c[i]);
        }
    }

    /// Overlapping rows: the windows of a `[12, 3]` signal, kernel 4, against explicit im2col.
    #[test]
    fn gemm_rows_is_a_sliding_window_product() {
        let mut rng = StdRng::seed_from_u64(9);
        let (len, ch, ker, out) = (12, 3, 4, 7);
        let sig: Vec<f32> = (0..len * ch).map(|_| rng.random::<f32>() - 0.5).collect();
        let w: Vec<f32> = (0..ker * ch * out)
            .map(|_| rng.random::<f32>() - 0.5)
            .collect();
        let m = len - ker + 1;
        let cols: Vec<f32> = (0..m)
            .flat_map(|p| sig[p * ch..(p + ker) * ch].to_vec())
            .collect();
        let want = reference(m, out, ker * ch, &cols, Op::N, &w, Op::N);
        let mut c = vec![0.0; m * out];
        gemm_rows(m, out, ker * ch, &sig, ch, &w, Op::N, 0.0, &mut c);
        assert!(
            c.iter()
                .zip(&want)
                .all(|(x, w)| (f64::from(*x) - w).abs() < 1e-5)
        );
    }
}
