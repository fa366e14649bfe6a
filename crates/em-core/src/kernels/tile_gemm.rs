//! Register-tiled f32 GEMMs for row-major operands without packing: `C = A B` and
//! `C += A^T B` where the rows of `A` may overlap (sliding windows of a convolution).
//! matrixmultiply packs a row-major `A` element by element (its fast copy needs column-major
//! `A`), which cost 80% of the fused convolution kernels; these tiles read `A` in place
//! (6 broadcasts per step) against 16-wide rows of `B`, 12 FMA accumulators, under pulp's
//! runtime AVX2/FMA dispatch (CPUs without take [`super::gemm`]'s matrixmultiply path).

use super::gemm::{Op, gemm_rows, gemm_rows_t};

/// Rows (of `C`) per register tile.
const MR: usize = 6;
/// Columns per register tile: two AVX2 vectors.
const NR: usize = 16;

/// `C[m, n] = A[m, k] B[k, n] + beta * C`: row `i` of `A` starts at `i * lda` (rows may
/// overlap), `B` and `C` are contiguous row-major. `beta = 0` never reads `C`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_nn(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    assert!(
        (m == 0 || a.len() >= (m - 1) * lda + k) && b.len() >= k * n && c.len() >= m * n,
        "gemm_nn shapes"
    );
    pulp::Arch::new().dispatch(Nn {
        m,
        n,
        k,
        a,
        lda,
        b,
        beta,
        c,
    });
}

/// `C[k, n] += A^T B` for `A: [m, k]` with row `i` at `i * lda` (rows may overlap) and a
/// contiguous row-major `B: [m, n]`: a convolution's weight gradient over its windows, or a
/// dense layer's.
#[allow(clippy::too_many_arguments)]
pub fn gemm_tn_acc(k: usize, n: usize, m: usize, a: &[f32], lda: usize, b: &[f32], c: &mut [f32]) {
    assert!(
        (m == 0 || a.len() >= (m - 1) * lda + k) && b.len() >= m * n && c.len() >= k * n,
        "gemm_tn_acc shapes"
    );
    pulp::Arch::new().dispatch(Tn {
        k,
        n,
        m,
        a,
        lda,
        b,
        c,
    });
}

/// Whether pulp picked AVX2/FMA: 8-lane vectors, so a tile row of `NR` is two of them, and
/// `mul_add` is one instruction (on the scalar fallback it would be a libm call; other
/// levels take matrixmultiply's path).
#[inline(always)]
fn wide<S: pulp::Simd>() -> bool {
    std::mem::size_of::<S::f32s>() * 2 == NR * std::mem::size_of::<f32>()
}

struct Nn<'a> {
    m: usize,
    n: usize,
    k: usize,
    a: &'a [f32],
    lda: usize,
    b: &'a [f32],
    beta: f32,
    c: &'a mut [f32],
}

/// One `R x NR` tile of `C = A B (+ beta C)` at rows `i0..`, columns `j0..j0 + NR`: two
/// SIMD vectors of `B` per step, one broadcast of `A` per row, `2 R` FMA accumulators.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn nn_tile<S: pulp::Simd, const R: usize>(
    simd: S,
    i0: usize,
    j0: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    let zero = simd.splat_f32s(0.0);
    let mut acc = [[zero; 2]; R];
    let rows: [&[f32]; R] = std::array::from_fn(|r| &a[(i0 + r) * lda..(i0 + r) * lda + k]);
    for l in 0..k {
        let (bv, _) = S::as_simd_f32s(&b[l * n + j0..l * n + j0 + NR]);
        let (b0, b1) = (bv[0], bv[1]);
        for r in 0..R {
            let x = simd.splat_f32s(rows[r][l]);
            acc[r][0] = simd.mul_add_e_f32s(x, b0, acc[r][0]);
            acc[r][1] = simd.mul_add_e_f32s(x, b1, acc[r][1]);
        }
    }
    let vb = simd.splat_f32s(beta);
    for (r, v) in acc.iter().enumerate() {
        let (cv, _) = S::as_mut_simd_f32s(&mut c[(i0 + r) * n + j0..(i0 + r) * n + j0 + NR]);
        for h in 0..2 {
            cv[h] = if beta == 0.0 {
                v[h]
            } else {
                simd.mul_add_e_f32s(vb, cv[h], v[h])
            };
        }
    }
}

impl pulp::WithSimd for Nn<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Nn {
            m,
            n,
            k,
            a,
            lda,
            b,
            beta,
            c,
        } = self;
        if !wide::<S>() {
            return gemm_rows(m, n, k, a, lda, b, Op::N, beta, c);
        }
        let full_n = n - n % NR;
        let mut i0 = 0;
        while i0 < m {
            let rows = (m - i0).min(MR);
            for j0 in (0..full_n).step_by(NR) {
                match rows {
                    6 => nn_tile::<S, 6>(simd, i0, j0, n, k, a, lda, b, beta, c),
                    5 => nn_tile::<S, 5>(simd, i0, j0, n, k, a, lda, b, beta, c),
                    4 => nn_tile::<S, 4>(simd, i0, j0, n, k, a, lda, b, beta, c),
                    3 => nn_tile::<S, 3>(simd, i0, j0, n, k, a, lda, b, beta, c),
                    2 => nn_tile::<S, 2>(simd, i0, j0, n, k, a, lda, b, beta, c),
                    _ => nn_tile::<S, 1>(simd, i0, j0, n, k, a, lda, b, beta, c),
                }
            }
            // Column remainder (n not a multiple of NR): plain loops.
            if full_n < n {
                for i in i0..i0 + rows {
                    let ar = &a[i * lda..i * lda + k];
                    let cr = &mut c[i * n + full_n..(i + 1) * n];
                    let mut acc = [0.0f32; NR];
                    let w = n - full_n;
                    for (l, &x) in ar.iter().enumerate() {
                        let br = &b[l * n + full_n..(l + 1) * n];
                        for j in 0..w {
                            acc[j] = x.mul_add(br[j], acc[j]);
                        }
                    }
                    for j in 0..w {
                        cr[j] = if beta == 0.0 {
                            acc[j]
                        } else {
                            beta.mul_add(cr[j], acc[j])
                        };
                    }
                }
            }
            i0 += rows;
        }
    }
}

struct Tn<'a> {
    k: usize,
    n: usize,
    m: usize,
    a: &'a [f32],
    lda: usize,
    b: &'a [f32],
    c: &'a mut [f32],
}

/// One `R x NR` tile of `C += A^T B` at rows `l0..` of `C` (columns `l0..` of `A`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tn_tile<S: pulp::Simd, const R: usize>(
    simd: S,
    l0: usize,
    j0: usize,
    n: usize,
    m: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    c: &mut [f32],
) {
    let zero = simd.splat_f32s(0.0);
    let mut acc = [[zero; 2]; R];
    for i in 0..m {
        let ar: &[f32; R] = a[i * lda + l0..i * lda + l0 + R]
            .try_into()
            .expect("R columns");
        let (bv, _) = S::as_simd_f32s(&b[i * n + j0..i * n + j0 + NR]);
        let (b0, b1) = (bv[0], bv[1]);
        for r in 0..R {
            let x = simd.splat_f32s(ar[r]);
            acc[r][0] = simd.mul_add_e_f32s(x, b0, acc[r][0]);
            acc[r][1] = simd.mul_add_e_f32s(x, b1, acc[r][1]);
        }
    }
    for (r, v) in acc.iter().enumerate() {
        let (cv, _) = S::as_mut_simd_f32s(&mut c[(l0 + r) * n + j0..(l0 + r) * n + j0 + NR]);
        for h in 0..2 {
            cv[h] = simd.add_f32s(cv[h], v[h]);
        }
    }
}

impl pulp::WithSimd for Tn<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Tn {
            k,
            n,
            m,
            a,
            lda,
            b,
            c,
        } = self;
        if !wide::<S>() {
            return gemm_rows_t(k, n, m, a, lda, b, 1.0, c);
        }
        let full_n = n - n % NR;
        let mut l0 = 0;
        while l0 < k {
            let rows = (k - l0).min(MR);
            for j0 in (0..full_n).step_by(NR) {
                match rows {
                    6 => tn_tile::<S, 6>(simd, l0, j0, n, m, a, lda, b, c),
                    5 => tn_tile::<S, 5>(simd, l0, j0, n, m, a, lda, b, c),
                    4 => tn_tile::<S, 4>(simd, l0, j0, n, m, a, lda, b, c),
                    3 => tn_tile::<S, 3>(simd, l0, j0, n, m, a, lda, b, c),
                    2 => tn_tile::<S, 2>(simd, l0, j0, n, m, a, lda, b, c),
                    _ => tn_tile::<S, 1>(simd, l0, j0, n, m, a, lda, b, c),
                }
            }
            if full_n < n {
                let w = n - full_n;
                for l in l0..l0 + rows {
                    let cr = &mut c[l * n + full_n..(l + 1) * n];
                    for i in 0..m {
                        let x = a[i * lda + l];
                        let br = &b[i * n + full_n..(i + 1) * n];
                        for j in 0..w {
                            cr[j] = x.mul_add(br[j], cr[j]);
                        }
                    }
                }
            }
            l0 += rows;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn rand(n: usize, rng: &mut StdRng) -> Vec<f32> {
        (0..n).map(|_| rng.random::<f32>() - 0.5).collect()
    }

    /// Against an f64 triple loop, overlapping rows (lda < k), every tile-edge case: rows
    /// not a multiple of 6, columns not a multiple of 16, beta 0 (C holds NaN) and 0.5.
    #[test]
    fn tiles_match_the_f64_reference() {
        let mut rng = StdRng::seed_from_u64(31);
        for (m, n, k, lda) in [
            (13, 32, 20, 4),
            (6, 16, 5, 5),
            (29, 20, 160, 32),
            (1, 3, 7, 7),
            (40, 64, 32, 32),
        ] {
            let a = rand((m - 1) * lda + k, &mut rng);
            let b = rand(k * n, &mut rng);
            let want: Vec<f64> = (0..m * n)
                .map(|ij| {
                    let (i, j) = (ij / n, ij % n);
                    (0..k)
                        .map(|l| f64::from(a[i * lda + l]) * f64::from(b[l * n + j]))
                        .sum()
                })
                .collect();
            let mut c = vec![f32::NAN; m * n];
            gemm_nn(m, n, k, &a, lda, &b, 0.0, &mut c);
            for (x, w) in c.iter().zip(&want) {
                assert!(
                    (f64::from(*x) - w).abs() < 1e-5,
                    "nn {m}x{n}x{k}: {x} vs {w}"
                );
            }
            let c0 = rand(m * n, &mut rng);
            let mut c = c0.clone();
            gemm_nn(m, n, k, &a, lda, &b, 0.5, &mut c);
            for i in 0..m * n {
                let w = want[i] + 0.5 * f64::from(c0[i]);
                assert!((f64::from(c[i]) - w).abs() < 1e-5, "nn beta {m}x{n}x{k}");
            }
            // C[k, n] += A^T B' with B' [m, n].
            let b2 = rand(m * n, &mut rng);
            let c0 = rand(k * n, &mut rng);
            let mut c = c0.clone();
            gemm_tn_acc(k, n, m, &a, lda, &b2, &mut c);
            for lj in 0..k * n {
                let (l, j) = (lj / n, lj % n);
                let w: f64 = (0..m)
                    .map(|i| f64::from(a[i * lda + l]) * f64::from(b2[i * n + j]))
                    .sum::<f64>()
                    + f64::from(c0[lj]);
                assert!(
                    (f64::from(c[lj]) - w).abs() < 1e-5,
                    "tn {k}x{n}x{m}: {} vs {w}",
                    c[lj]
                );
            }
        }
    }
}
