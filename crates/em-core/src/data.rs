//! A checked, engine-level data matrix `[n, dim]` (flat row-major f32) and seeded minibatch
//! sampling: the one form in which training data reaches the engine.

use burn::prelude::*;
use rand::RngExt;
use rand::rngs::StdRng;

use crate::error::{Error, Result};

/// A non-empty matrix of finite f32 values, `n` rows of `dim` columns, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct DataMatrix {
    values: Vec<f32>,
    n: usize,
    dim: usize,
}

impl DataMatrix {
    /// Checks and wraps a flat row-major buffer of `values.len() / dim` rows.
    ///
    /// Errors when `dim == 0`, the buffer is empty or not a multiple of `dim`, or a value is
    /// NaN/inf (the error names its row and column).
    pub fn new(values: Vec<f32>, dim: usize) -> Result<Self> {
        if dim == 0 {
            return Err(Error::Data {
                what: "dim is 0".into(),
            });
        }
        if values.is_empty() {
            return Err(Error::Data {
                what: "no rows".into(),
            });
        }
        if !values.len().is_multiple_of(dim) {
            return Err(Error::Shape {
                what: "data matrix".into(),
                expected: format!("a multiple of dim={dim} values"),
                got: format!("{} values", values.len()),
            });
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data {
                what: format!(
                    "non-finite value {} at row {}, column {}",
                    values[i],
                    i / dim,
                    i % dim
                ),
            });
        }
        let n = values.len() / dim;
        Ok(Self { values, n, dim })
    }

    /// Builds a matrix from rows, checking they all have the length of the first.
    pub fn from_rows(rows: &[Vec<f32>]) -> Result<Self> {
        let dim = rows.first().map(Vec::len).unwrap_or(0);
        let mut values = Vec::with_capacity(rows.len() * dim);
        for (i, row) in rows.iter().enumerate() {
            if row.len() != dim {
                return Err(Error::Shape {
                    what: format!("data row {i}"),
                    expected: format!("{dim} columns (as row 0)"),
                    got: format!("{} columns", row.len()),
                });
            }
            values.extend_from_slice(row);
        }
        Self::new(values, dim)
    }

    /// Number of rows.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of columns.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The flat row-major values.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Row `i` (panics if out of range: a programmer error).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// Rows at `idx` gathered into a `[idx.len(), dim]` tensor on `device`.
    pub fn gather(&self, idx: &[usize], device: &Device) -> Tensor<2> {
        let mut buf = Vec::with_capacity(idx.len() * self.dim);
        for &i in idx {
            buf.extend_from_slice(self.row(i));
        }
        Tensor::from_data(TensorData::new(buf, [idx.len(), self.dim]), device)
    }

    /// `batch` row indices drawn uniformly with replacement from `rng`.
    pub fn sample_indices(&self, batch: usize, rng: &mut StdRng) -> Vec<usize> {
        (0..batch).map(|_| rng.random_range(0..self.n)).collect()
    }

    /// A seeded minibatch of `batch` rows (with replacement) as a tensor.
    pub fn sample_batch(&self, batch: usize, rng: &mut StdRng, device: &Device) -> Tensor<2> {
        let idx = self.sample_indices(batch, rng);
        self.gather(&idx, device)
    }

    /// The whole matrix as a `[n, dim]` tensor.
    pub fn to_tensor(&self, device: &Device) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(self.values.clone(), [self.n, self.dim]),
            device,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn rejects_bad_input_naming_row_and_column() {
        assert!(DataMatrix::new(vec![], 2).is_err());
        assert!(DataMatrix::new(vec![1.0; 3], 2).is_err());
        let e = DataMatrix::new(vec![0.0, 1.0, 2.0, f32::NAN], 2).unwrap_err();
        assert!(e.to_string().contains("row 1, column 1"), "{e}");
        let e = DataMatrix::from_rows(&[vec![1.0, 2.0], vec![3.0]]).unwrap_err();
        assert!(e.to_string().contains("data row 1"), "{e}");
    }

    #[test]
    fn seeded_batches_repeat() {
        let m = DataMatrix::new((0..20).map(|v| v as f32).collect(), 2).unwrap();
        assert_eq!((m.n(), m.dim()), (10, 2));
        let a = m.sample_indices(16, &mut StdRng::seed_from_u64(3));
        let b = m.sample_indices(16, &mut StdRng::seed_from_u64(3));
        assert_eq!(a, b);
        assert!(a.iter().all(|&i| i < 10));
        let t = m.gather(&[4, 1], &crate::gradcheck::f64_device());
        assert_eq!(
            t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap(),
            vec![8.0, 9.0, 2.0, 3.0]
        );
    }
}
