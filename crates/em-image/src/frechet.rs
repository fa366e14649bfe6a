//! Frechet distance between two Gaussians in f64 (the "F" of FID), with feature mean and
//! unbiased covariance. The matrix square root uses nalgebra's symmetric eigendecomposition.

use crate::error::{Error, Result};
use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// A Gaussian summary `(mu, Sigma)` of a feature set, in f64.
#[derive(Clone, Debug)]
pub struct Gaussian {
    mean: DVector<f64>,
    cov: DMatrix<f64>,
}

impl Gaussian {
    /// A Gaussian from its mean `[d]` and row-major covariance `[d * d]`; the covariance must
    /// be square, symmetric (to 1e-9 relative) and finite.
    pub fn new(mean: Vec<f64>, cov: Vec<f64>) -> Result<Self> {
        let d = mean.len();
        if cov.len() != d * d {
            return Err(Error::invalid(
                "covariance",
                format!("{} entries for a mean of dimension {d}", cov.len()),
            ));
        }
        let cov = DMatrix::from_row_slice(d, d, &cov);
        let scale = cov.amax().max(1e-300);
        if (&cov - cov.transpose()).amax() > 1e-9 * scale {
            return Err(Error::invalid("covariance", "not symmetric"));
        }
        let g = Self {
            mean: DVector::from_vec(mean),
            cov,
        };
        g.check_finite("Gaussian")?;
        Ok(g)
    }

    /// Mean and unbiased covariance (divided by `n - 1`) of `n` feature rows of dimension `d`
    /// given row-major in `rows` (`n * d` finite values, `n >= 2`).
    pub fn from_features(rows: &[f32], d: usize) -> Result<Self> {
        let n = self::rows(rows, d)?;
        let (x, mean) = centred(rows, n, d);
        let cov = (x.transpose() * &x) / (n as f64 - 1.0);
        let g = Self { mean, cov };
        g.check_finite("features")?;
        Ok(g)
    }

    /// Dimension `d`.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// The mean vector.
    pub fn mean(&self) -> &DVector<f64> {
        &self.mean
    }

    /// The covariance matrix.
    pub fn cov(&self) -> &DMatrix<f64> {
        &self.cov
    }

    fn check_finite(&self, what: &str) -> Result<()> {
        if self
            .mean
            .iter()
            .chain(self.cov.iter())
            .all(|v| v.is_finite())
        {
            Ok(())
        } else {
            Err(Error::invalid(what, "mean or covariance is not finite"))
        }
    }
}

/// Frechet distance `||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2})` between two Gaussians.
///
/// `tr (S1 S2)^{1/2}` is computed as `sum_i sqrt(lambda_i)` over the eigenvalues of the
/// symmetric PSD matrix `M = S1^{1/2} S2 S1^{1/2}` (similar to `S1 S2`, so same spectrum).
/// `S1^{1/2}` comes from the symmetric eigendecomposition of `S1`. Both eigenproblems may give
/// tiny negative eigenvalues from round-off on rank-deficient covariances (fewer samples than
/// dimensions); they are clamped to 0, the same as scipy's `sqrtm` + real part in pytorch-fid
/// up to round-off. The result is clamped at 0 for the same reason.
///
/// ```
/// use em_image::frechet::{Gaussian, frechet_distance};
/// let a = Gaussian::new(vec![0.0], vec![4.0]).unwrap();
/// let b = Gaussian::new(vec![3.0], vec![1.0]).unwrap();
/// // 3^2 + (sqrt(4) - sqrt(1))^2 = 10
/// assert!((frechet_distance(&a, &b).unwrap() - 10.0).abs() < 1e-12);
/// ```
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> Result<f64> {
    if a.dim() != b.dim() {
        return Err(Error::invalid(
            "Gaussians",
            format!("dimensions differ: {} vs {}", a.dim(), b.dim()),
        ));
    }
    let diff = &a.mean - &b.mean;
    let mean_term = diff.dot(&diff);
    let sqrt_a = psd_sqrt(&a.cov);
    let m = &sqrt_a * &b.cov * &sqrt_a;
    let m = (&m + m.transpose()) * 0.5;
    let tr_sqrt: f64 = m
        .symmetric_eigenvalues()
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .sum();
    let fd = mean_term + a.cov.trace() + b.cov.trace() - 2.0 * tr_sqrt;
    if !fd.is_finite() {
        return Err(Error::invalid("Frechet distance", format!("{fd}")));
    }
    Ok(fd.max(0.0))
}

/// Frechet distance between the Gaussians fitted (mean, unbiased covariance) to two feature
/// sets `a` (`n1 * d` values, row-major) and `b` (`n2 * d`).
///
/// Same value as [`Gaussian::from_features`] + [`frechet_distance`], but when the sets are
/// small (`n1 * n2 <= d * d`, e.g. a few hundred 2048-d Inception features) it never forms a
/// `d x d` matrix: with centred rows `C1`, `C2`, the nonzero eigenvalues of `S1 S2` are those
/// of `A A^T / ((n1-1)(n2-1))` with `A = C1 C2^T`, so `tr (S1 S2)^{1/2}` is the sum of the
/// singular values of `A` over `sqrt((n1-1)(n2-1))` (eigenvalues of the smaller Gram matrix,
/// tiny negatives clamped to 0), and `tr S = ||C||_F^2 / (n-1)`.
pub fn frechet_distance_features(a: &[f32], b: &[f32], d: usize) -> Result<f64> {
    let (n1, n2) = (rows(a, d)?, rows(b, d)?);
    if n1 * n2 > d * d {
        return frechet_distance(
            &Gaussian::from_features(a, d)?,
            &Gaussian::from_features(b, d)?,
        );
    }
    let (c1, m1) = centred(a, n1, d);
    let (c2, m2) = centred(b, n2, d);
    let diff = &m1 - &m2;
    let k1 = n1 as f64 - 1.0;
    let k2 = n2 as f64 - 1.0;
    let cross = &c1 * c2.transpose();
    let gram = if n1 <= n2 {
        &cross * cross.transpose()
    } else {
        cross.transpose() * &cross
    };
    let gram = (&gram + gram.transpose()) * 0.5;
    let nuclear: f64 = gram
        .symmetric_eigenvalues()
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .sum();
    let fd = diff.dot(&diff) + c1.norm_squared() / k1 + c2.norm_squared() / k2
        - 2.0 * nuclear / (k1 * k2).sqrt();
    if !fd.is_finite() {
        return Err(Error::invalid("Frechet distance", format!("{fd}")));
    }
    Ok(fd.max(0.0))
}

/// Number of rows of a row-major feature slice; needs at least 2 whole, finite rows.
fn rows(v: &[f32], d: usize) -> Result<usize> {
    if d == 0 || !v.len().is_multiple_of(d) || v.len() / d < 2 {
        return Err(Error::invalid(
            "features",
            format!("{} values: need at least 2 whole rows of {d}", v.len()),
        ));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(Error::invalid("features", "contains NaN or infinity"));
    }
    Ok(v.len() / d)
}

/// Rows minus their mean (`[n, d]`) and the mean (`[d]`), in f64.
fn centred(v: &[f32], n: usize, d: usize) -> (DMatrix<f64>, DVector<f64>) {
    let mut x = DMatrix::<f64>::from_fn(n, d, |i, j| v[i * d + j] as f64);
    let mean = DVector::from_fn(d, |j, _| x.column(j).sum() / n as f64);
    for j in 0..d {
        let m = mean[j];
        x.column_mut(j).add_scalar_mut(-m);
    }
    (x, mean)
}

/// Symmetric square root of a symmetric PSD matrix, negative eigenvalues clamped to 0.
fn psd_sqrt(s: &DMatrix<f64>) -> DMatrix<f64> {
    let sym = (s + s.transpose()) * 0.5;
    let eig = SymmetricEigen::new(sym);
    let mut q = eig.eigenvectors.clone();
    for (j, &l) in eig.eigenvalues.iter().enumerate() {
        let r = l.max(0.0).sqrt();
        q.column_mut(j).scale_mut(r);
    }
    q * eig.eigenvectors.transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(m: &[f64], v: &[f64]) -> Gaussian {
        let d = v.len();
        let mut c = vec![0.0; d * d];
        for i in 0..d {
            c[i * d + i] = v[i];
        }
        Gaussian::new(m.to_vec(), c).unwrap()
    }

    #[test]
    fn one_d_and_diagonal_closed_forms() {
        // 1-D: (m1-m2)^2 + (s1 - s2)^2 with standard deviations s.
        let fd = frechet_distance(&diag(&[1.0], &[9.0]), &diag(&[-1.0], &[0.25])).unwrap();
        assert!((fd - (4.0 + 2.5f64.powi(2))).abs() < 1e-12, "{fd}");
        // Diagonal: sum over coordinates of the 1-D formula.
        let a = diag(&[0.0, 1.0, 2.0], &[1.0, 4.0, 0.0]);
        let b = diag(&[1.0, 1.0, 0.0], &[9.0, 1.0, 2.0]);
        let want = 1.0 + 0.0 + 4.0 + 4.0 + 1.0 + 2.0;
        assert!((frechet_distance(&a, &b).unwrap() - want).abs() < 1e-10);
    }

    #[test]
    fn full_covariance_matches_hand_computed_value() {
        // S1 = [[2,1],[1,2]], S2 = I: tr sqrt(S1) = sqrt(3) + 1, so FD = 4 + 2 - 2 (sqrt3 + 1).
        let a = Gaussian::new(vec![0.0, 0.0], vec![2.0, 1.0, 1.0, 2.0]).unwrap();
        let b = diag(&[0.0, 0.0], &[1.0, 1.0]);
        let want = 6.0 - 2.0 * (3f64.sqrt() + 1.0);
        assert!((frechet_distance(&a, &b).unwrap() - want).abs() < 1e-12);
        assert!((frechet_distance(&b, &a).unwrap() - want).abs() < 1e-12);
    }

    #[test]
    fn same_set_is_zero_and_shift_gives_mean_term() {
        // Rank-deficient on purpose: 5 samples in 8 dimensions.
        let d = 8;
        let rows: Vec<f32> = (0..5 * d)
            .map(|i| ((i * 37 % 11) as f32) * 0.3 - 1.0)
            .collect();
        let g = Gaussian::from_features(&rows, d).unwrap();
        assert!(frechet_distance(&g, &g).unwrap() < 1e-9);
        let shift: Vec<f32> = (0..d).map(|j| j as f32 * 0.5).collect();
        let shifted: Vec<f32> = rows
            .iter()
            .enumerate()
            .map(|(i, v)| v + shift[i % d])
            .collect();
        let h = Gaussian::from_features(&shifted, d).unwrap();
        let want: f64 = shift.iter().map(|&s| (s as f64).powi(2)).sum();
        assert!((frechet_distance(&g, &h).unwrap() - want).abs() < 1e-6);
    }

    #[test]
    fn gram_path_matches_covariance_path() {
        let d = 6;
        let a: Vec<f32> = (0..4 * d)
            .map(|i| ((i * 37 % 11) as f32) * 0.3 - 1.0)
            .collect();
        let b: Vec<f32> = (0..5 * d)
            .map(|i| ((i * 17 % 13) as f32) * 0.2 - 0.5)
            .collect();
        let full = frechet_distance(
            &Gaussian::from_features(&a, d).unwrap(),
            &Gaussian::from_features(&b, d).unwrap(),
        )
        .unwrap();
        for (x, y) in [(&a, &b), (&b, &a)] {
            let gram = frechet_distance_features(x, y, d).unwrap();
            assert!(
                (gram - full).abs() < 1e-9 * full.max(1.0),
                "{gram} vs {full}"
            );
        }
        assert!(frechet_distance_features(&a, &a, d).unwrap() < 1e-9);
        // Large sets (n1 * n2 > d * d) take the covariance path.
        let big: Vec<f32> = (0..40 * 2).map(|i| (i as f32 * 0.7).sin()).collect();
        let full = frechet_distance(
            &Gaussian::from_features(&big[..60], 2).unwrap(),
            &Gaussian::from_features(&big[20..], 2).unwrap(),
        )
        .unwrap();
        assert_eq!(
            frechet_distance_features(&big[..60], &big[20..], 2).unwrap(),
            full
        );
    }

    #[test]
    fn feature_stats_are_unbiased() {
        let g = Gaussian::from_features(&[1.0, 0.0, 3.0, 2.0, 5.0, 4.0], 2).unwrap();
        assert_eq!(g.mean().as_slice(), &[3.0, 2.0]);
        // var of (1,3,5) with n-1 = 4; cov of x,y = 4.
        assert!((g.cov()[(0, 0)] - 4.0).abs() < 1e-12);
        assert!((g.cov()[(0, 1)] - 4.0).abs() < 1e-12);
    }

    #[test]
    fn rejects_bad_inputs() {
        assert!(Gaussian::from_features(&[1.0, 2.0], 2).is_err());
        assert!(Gaussian::from_features(&[1.0, 2.0, 3.0], 2).is_err());
        assert!(Gaussian::new(vec![0.0, 0.0], vec![1.0, 2.0, 0.0, 1.0]).is_err());
        assert!(frechet_distance(&diag(&[0.0], &[1.0]), &diag(&[0.0, 0.0], &[1.0, 1.0])).is_err());
    }
}
