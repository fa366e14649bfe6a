//! GGS's graph-based label smoothing (Kirjner et al., ICLR 2024; kirjner/GGS `ggs/GS.py`, v2):
//! a kNN graph over equal-length sequences by Hamming distance, its normalised Laplacian
//! `L = I - D^-1/2 W D^-1/2`, and Tikhonov smoothing, the labels `y_s` solving
//! `(I + gamma L) y_s = y` (conjugate gradients). Smoothed labels vary less between close
//! sequences, which is what GGS trains its "smoothed" predictors on.

use rayon::prelude::*;

/// Why a graph could not be built or smoothed over.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SmoothingError {
    /// Fewer than two sequences, or `k` of 0.
    #[error("a kNN graph needs at least 2 sequences and k >= 1 (got {n} sequences, k = {k})")]
    TooSmall {
        /// Sequences.
        n: usize,
        /// Neighbours asked for.
        k: usize,
    },
    /// Sequences of different lengths.
    #[error("sequence {index} has length {len}, the first has {first}")]
    Ragged {
        /// The sequence.
        index: usize,
        /// Its length.
        len: usize,
        /// The first sequence's length.
        first: usize,
    },
    /// The same sequence twice (a zero distance has no inverse weight).
    #[error("sequences {a} and {b} are the same; deduplicate before building the graph")]
    Duplicate {
        /// First occurrence.
        a: usize,
        /// Second occurrence.
        b: usize,
    },
    /// Labels do not match the graph.
    #[error("{labels} labels for a graph of {nodes} sequences")]
    LabelCount {
        /// Labels given.
        labels: usize,
        /// Nodes of the graph.
        nodes: usize,
    },
    /// `gamma` not finite or negative.
    #[error("smoothing weight gamma = {0} must be finite and >= 0")]
    Gamma(f64),
}

/// GGS's number of neighbours for `n` sequences: `floor(sqrt(n))` besides the sequence itself
/// (GS.py asks KeOps for `floor(sqrt(n) + 1)` and drops the first, the sequence).
pub fn ggs_neighbours(n: usize) -> usize {
    (n as f64).sqrt().floor() as usize
}

/// A symmetric weighted graph in compressed rows: row `i`'s neighbours are
/// `indices[indptr[i]..indptr[i + 1]]` (ascending) with `weights` alike.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// Row starts, `n + 1` of them.
    pub indptr: Vec<usize>,
    /// Column of each edge.
    pub indices: Vec<usize>,
    /// Weight of each edge (> 0).
    pub weights: Vec<f64>,
}

impl Graph {
    /// Nodes.
    pub fn len(&self) -> usize {
        self.indptr.len() - 1
    }

    /// No nodes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(neighbour, weight)` of node `i`.
    pub fn row(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let (a, b) = (self.indptr[i], self.indptr[i + 1]);
        self.indices[a..b]
            .iter()
            .copied()
            .zip(self.weights[a..b].iter().copied())
    }

    /// Weighted degree of every node.
    pub fn degrees(&self) -> Vec<f64> {
        (0..self.len())
            .map(|i| self.row(i).map(|(_, w)| w).sum())
            .collect()
    }

    /// `L x` for the normalised Laplacian `L = I - D^-1/2 W D^-1/2` (scipy's
    /// `laplacian(normed=True)`: an isolated node's row is 0).
    pub fn laplacian_apply(&self, x: &[f64]) -> Vec<f64> {
        let inv_sqrt: Vec<f64> = self
            .degrees()
            .iter()
            .map(|&d| if d > 0.0 { 1.0 / d.sqrt() } else { 0.0 })
            .collect();
        (0..self.len())
            .into_par_iter()
            .map(|i| {
                if inv_sqrt[i] == 0.0 {
                    return 0.0;
                }
                let mixed: f64 = self.row(i).map(|(j, w)| w * inv_sqrt[j] * x[j]).sum();
                x[i] - inv_sqrt[i] * mixed
            })
            .collect()
    }

    /// The quadratic form `x^T L x = 1/2 sum_ij w_ij (x_i/sqrt(d_i) - x_j/sqrt(d_j))^2`: how
    /// much `x` varies across edges.
    pub fn quadratic_form(&self, x: &[f64]) -> f64 {
        dot(x, &self.laplacian_apply(x))
    }
}

/// The kNN graph of distinct equal-length `seqs` (residue indices) under Hamming distance,
/// as GGS builds it: each sequence's `k` nearest others (ties to the lower index), the union of
/// both directions (GS.py's `maximum(A, A.T)`), edge weight `1 / distance`. (GS.py v2 inverts
/// twice and so weights edges by the distance itself; v1 and the paper's smoothness reading
/// weight close pairs more, which is what this does.) Rows run in parallel; the result does not
/// depend on the thread count.
pub fn knn_graph(seqs: &[Vec<u8>], k: usize) -> Result<Graph, SmoothingError> {
    let n = seqs.len();
    if n < 2 || k == 0 {
        return Err(SmoothingError::TooSmall { n, k });
    }
    let first = seqs[0].len();
    if let Some((index, s)) = seqs.iter().enumerate().find(|(_, s)| s.len() != first) {
        return Err(SmoothingError::Ragged {
            index,
            len: s.len(),
            first,
        });
    }
    let k = k.min(n - 1);
    let nearest: Vec<Vec<(u32, usize)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut d: Vec<(u32, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (hamming(&seqs[i], &seqs[j]), j))
                .collect();
            if k < d.len() {
                d.select_nth_unstable(k - 1);
                d.truncate(k);
            }
            d
        })
        .collect();
    let mut rows: Vec<Vec<(usize, u32)>> = vec![Vec::new(); n];
    for (i, near) in nearest.iter().enumerate() {
        for &(d, j) in near {
            if d == 0 {
                return Err(SmoothingError::Duplicate {
                    a: i.min(j),
                    b: i.max(j),
                });
            }
            rows[i].push((j, d));
            rows[j].push((i, d));
        }
    }
    let mut graph = Graph {
        indptr: vec![0],
        indices: Vec::new(),
        weights: Vec::new(),
    };
    for mut row in rows {
        row.sort_unstable();
        row.dedup();
        for (j, d) in row {
            graph.indices.push(j);
            graph.weights.push(1.0 / f64::from(d));
        }
        graph.indptr.push(graph.indices.len());
    }
    Ok(graph)
}

/// Tikhonov smoothing: `y_s` with `(I + gamma L) y_s = y`, `L` the normalised Laplacian of
/// `graph` (GGS's `tik-gamma-1`: gamma = 1). The matrix is symmetric with eigenvalues in
/// `[1, 1 + 2 gamma]`, so conjugate gradients converge in a few dozen steps; they stop at a
/// residual of 1e-10 relative to `y`. `gamma = 0` returns `y`.
pub fn tikhonov_smooth(graph: &Graph, y: &[f64], gamma: f64) -> Result<Vec<f64>, SmoothingError> {
    if y.len() != graph.len() {
        return Err(SmoothingError::LabelCount {
            labels: y.len(),
            nodes: graph.len(),
        });
    }
    if !(gamma.is_finite() && gamma >= 0.0) {
        return Err(SmoothingError::Gamma(gamma));
    }
    let apply = |x: &[f64]| -> Vec<f64> {
        let lx = graph.laplacian_apply(x);
        x.iter().zip(lx).map(|(a, b)| a + gamma * b).collect()
    };
    let tol = 1e-10 * dot(y, y).sqrt();
    let mut x = y.to_vec();
    let ax = apply(&x);
    let mut r: Vec<f64> = y.iter().zip(&ax).map(|(a, b)| a - b).collect();
    let mut p = r.clone();
    let mut rr = dot(&r, &r);
    for _ in 0..10 * y.len().max(100) {
        if rr.sqrt() <= tol {
            break;
        }
        let ap = apply(&p);
        let alpha = rr / dot(&p, &ap);
        for ((xi, ri), (pi, api)) in x.iter_mut().zip(r.iter_mut()).zip(p.iter().zip(&ap)) {
            *xi += alpha * pi;
            *ri -= alpha * api;
        }
        let next = dot(&r, &r);
        let beta = next / rr;
        rr = next;
        for (pi, ri) in p.iter_mut().zip(&r) {
            *pi = ri + beta * *pi;
        }
    }
    Ok(x)
}

/// Positions at which `a` and `b` differ.
fn hamming(a: &[u8], b: &[u8]) -> u32 {
    a.iter().zip(b).map(|(x, y)| u32::from(x != y)).sum()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// a - b - c, b one mutation from each, a and c two apart.
    fn path() -> Vec<Vec<u8>> {
        vec![vec![0, 0, 0, 0], vec![1, 0, 0, 0], vec![1, 1, 0, 0]]
    }

    #[test]
    fn the_graph_joins_nearest_neighbours_both_ways_with_inverse_distance_weights() {
        // k = 1: a -> b, b -> a (tie with c, lower index), c -> b; union a-b, b-c.
        let g = knn_graph(&path(), 1).unwrap();
        assert_eq!(g.indptr, vec![0, 1, 3, 4]);
        assert_eq!(g.indices, vec![1, 0, 2, 1]);
        assert_eq!(g.weights, vec![1.0, 1.0, 1.0, 1.0]);
        // c three mutations from b: weight 1/3 on b-c
        let far = vec![vec![0, 0, 0, 0], vec![1, 0, 0, 0], vec![1, 1, 1, 1]];
        let g = knn_graph(&far, 1).unwrap();
        assert_eq!(g.indices, vec![1, 0, 2, 1]);
        assert_eq!(g.weights, vec![1.0, 1.0, 1.0 / 3.0, 1.0 / 3.0]);
        assert_eq!(ggs_neighbours(250_000), 500);
    }

    #[test]
    fn tikhonov_smoothing_matches_the_hand_solved_path_graph() {
        // L = [[1, -s, 0], [-s, 1, -s], [0, -s, 1]], s = 1/sqrt(2); (I + L) x = (1, 0, 0)
        // by elimination: x3 = s x2 / 2, x2 = 4 s x1 / 7, 12/7 x1 = 1
        // -> x = (7/12, sqrt(2)/6, 1/12).
        let g = knn_graph(&path(), 1).unwrap();
        let x = tikhonov_smooth(&g, &[1.0, 0.0, 0.0], 1.0).unwrap();
        let want = [7.0 / 12.0, 2f64.sqrt() / 6.0, 1.0 / 12.0];
        for (a, b) in x.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{x:?} vs {want:?}");
        }
        assert_eq!(
            tikhonov_smooth(&g, &[1.0, 2.0, 3.0], 0.0).unwrap(),
            [1.0, 2.0, 3.0]
        );
    }

    #[test]
    fn smoothed_labels_solve_the_system_and_vary_less_across_the_graph() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut seqs: Vec<Vec<u8>> = Vec::new();
        while seqs.len() < 60 {
            let s: Vec<u8> = (0..12).map(|_| rng.random_range(0..4u8)).collect();
            if !seqs.contains(&s) {
                seqs.push(s);
            }
        }
        let y: Vec<f64> = (0..seqs.len())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let g = knn_graph(&seqs, ggs_neighbours(seqs.len())).unwrap();
        let gamma = 1.0;
        let ys = tikhonov_smooth(&g, &y, gamma).unwrap();
        let lys = g.laplacian_apply(&ys);
        for i in 0..y.len() {
            assert!((ys[i] + gamma * lys[i] - y[i]).abs() < 1e-8);
        }
        let (before, after) = (g.quadratic_form(&y), g.quadratic_form(&ys));
        assert!(after < 0.5 * before, "{after} vs {before}");
        // more smoothing, smoother labels
        let more = tikhonov_smooth(&g, &y, 10.0).unwrap();
        assert!(g.quadratic_form(&more) < after);
    }

    #[test]
    fn bad_input_is_named() {
        assert_eq!(
            knn_graph(&path()[..1], 1),
            Err(SmoothingError::TooSmall { n: 1, k: 1 })
        );
        let ragged = vec![vec![0, 0], vec![0, 0, 1]];
        assert!(matches!(
            knn_graph(&ragged, 1),
            Err(SmoothingError::Ragged { index: 1, .. })
        ));
        let dup = vec![vec![0, 1], vec![0, 1], vec![1, 1]];
        assert_eq!(
            knn_graph(&dup, 1),
            Err(SmoothingError::Duplicate { a: 0, b: 1 })
        );
        let g = knn_graph(&path(), 1).unwrap();
        assert!(tikhonov_smooth(&g, &[1.0], 1.0).is_err());
        assert!(tikhonov_smooth(&g, &[1.0; 3], f64::NAN).is_err());
    }
}
