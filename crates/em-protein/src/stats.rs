//! Rank and linear correlation (Spearman with average ranks for ties, Pearson), the
//! figures used to judge an oracle or a predictor against measured scores.

/// Ranks of `values` starting at 1, ties sharing the average of the ranks they span
/// (the "fractional" ranking scipy's `rankdata` uses by default). NaN sorts last.
///
/// ```
/// use em_protein::stats::average_ranks;
/// assert_eq!(average_ranks(&[10.0, 30.0, 20.0, 30.0]), vec![1.0, 3.5, 2.0, 3.5]);
/// ```
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // positions start..end (0-based) hold ranks start+1 ..= end; their mean:
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// Pearson correlation of two equal-length slices; `None` when they differ in length,
/// have fewer than two points, or either is constant (the correlation is undefined).
///
/// ```
/// use em_protein::stats::pearson;
/// let r = pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 7.0]).unwrap();
/// assert!((r - 0.99339927).abs() < 1e-6);
/// ```
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (da, db) = (a - mx, b - my);
        sxy += da * db;
        sxx += da * da;
        syy += db * db;
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    Some(sxy / (sxx.sqrt() * syy.sqrt()))
}

/// Spearman rank correlation: Pearson on average ranks (ties handled as scipy does).
/// `None` under the same conditions as [`pearson`].
///
/// ```
/// use em_protein::stats::spearman;
/// let rho = spearman(&[1.0, 2.0, 3.0], &[10.0, 100.0, 1000.0]).unwrap();
/// assert!((rho - 1.0).abs() < 1e-12);
/// ```
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() {
        return None;
    }
    pearson(&average_ranks(x), &average_ranks(y))
}

/// [`spearman`] for `f32` slices (model outputs against scores), computed in `f64`.
pub fn spearman_f32(x: &[f32], y: &[f32]) -> Option<f64> {
    let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let y: Vec<f64> = y.iter().map(|&v| v as f64).collect();
    spearman(&x, &y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn ranks_without_and_with_ties() {
        assert_eq!(average_ranks(&[3.0, 1.0, 2.0]), vec![3.0, 1.0, 2.0]);
        // three-way tie at the bottom spans ranks 1,2,3 -> 2
        assert_eq!(
            average_ranks(&[5.0, 5.0, 5.0, 9.0]),
            vec![2.0, 2.0, 2.0, 4.0]
        );
        assert!(average_ranks(&[]).is_empty());
    }

    #[test]
    fn pearson_by_hand() {
        // x = 1,2,3,4 (mean 2.5), y = 1,3,2,4 (mean 2.5)
        // dx = -1.5,-0.5,0.5,1.5 ; dy = -1.5,0.5,-0.5,1.5
        // sxy = 2.25 - 0.25 - 0.25 + 2.25 = 4 ; sxx = syy = 5 -> r = 0.8
        let r = pearson(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]).unwrap();
        assert!(close(r, 0.8));
        let anti = pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap();
        assert!(close(anti, -1.0));
    }

    #[test]
    fn spearman_with_ties_by_hand() {
        // x ranks: 1, 2.5, 2.5, 4 ; y ranks: 1, 2, 3, 4
        // mean 2.5 both; dx = -1.5, 0, 0, 1.5 ; dy = -1.5, -0.5, 0.5, 1.5
        // sxy = 2.25 + 0 + 0 + 2.25 = 4.5 ; sxx = 4.5 ; syy = 5
        // rho = 4.5 / sqrt(4.5 * 5) = sqrt(0.9)
        let rho = spearman(&[1.0, 2.0, 2.0, 7.0], &[0.1, 0.2, 0.3, 0.4]).unwrap();
        assert!(close(rho, 0.9f64.sqrt()));
        // monotone but non-linear -> exactly 1
        let x = [0.5, 1.0, 4.0, 9.0, 100.0];
        let y: Vec<f64> = x.iter().map(|v: &f64| v.ln()).collect();
        assert!(close(spearman(&x, &y).unwrap(), 1.0));
    }

    #[test]
    fn undefined_cases_are_none() {
        assert_eq!(pearson(&[1.0], &[2.0]), None);
        assert_eq!(pearson(&[1.0, 2.0], &[3.0, 3.0]), None);
        assert_eq!(spearman(&[1.0, 2.0], &[1.0]), None);
        let r = spearman_f32(&[1.0, 2.0, 3.0], &[3.0, 1.0, 2.0]).unwrap();
        assert!(close(r, -0.5));
    }
}
