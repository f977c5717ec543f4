//! Dissimilarities between the rows of a data matrix, through one Gram product.
//!
//! The rows are `f32` (weight vectors as stored); every product and sum is
//! done in `f64`. A product of two `f32` numbers is exact in `f64`, so the
//! only rounding is that of the `f64` accumulation: the Gram matrix is as
//! accurate as `X64 · X64ᵀ` of the widened input.
//!
//! The Gram matrix `G = X Xᵀ` is computed column chunk by column chunk: each
//! chunk of columns is widened to `f64` once (bounded memory, no full `f64`
//! copy of `X`), and only the blocks on and above the block diagonal are
//! multiplied (BLAS `dgemm` through ndarray's `blas` feature: the linked
//! BLAS is the one the final binary picks for LAPACK), then mirrored. This
//! does about 56% of the work of a full product at n = 4,000, close to `dsyrk`.
use std::fmt;
use std::str::FromStr;

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayBase, Axis, Data, Ix2, Zip};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{MdsError, Result};

/// How far apart two rows are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dissimilarity {
    /// `1 - cos(x, y)`, in `[0, 2]`: the paper's choice. Not a Euclidean
    /// distance, so classical MDS of it can have negative eigenvalues.
    #[default]
    Cosine,
    /// `‖x - y‖`.
    Euclidean,
    /// `‖x - y‖²`. Not what classical MDS expects as input (it squares its
    /// input): use [`Dissimilarity::Euclidean`] to embed Euclidean geometry.
    SquaredEuclidean,
}

impl Dissimilarity {
    /// The name used on command lines and in files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cosine => "cosine",
            Self::Euclidean => "euclidean",
            Self::SquaredEuclidean => "squared-euclidean",
        }
    }
}

impl fmt::Display for Dissimilarity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dissimilarity {
    type Err = MdsError;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "cosine" => Ok(Self::Cosine),
            "euclidean" => Ok(Self::Euclidean),
            "squared-euclidean" | "sqeuclidean" => Ok(Self::SquaredEuclidean),
            _ => Err(MdsError::UnknownMetric { name: s.to_owned() }),
        }
    }
}

/// Target number of `f64` elements in one widened column chunk (256 MiB).
const CHUNK_ELEMENTS: usize = 32 << 20;
/// Bounds on the chunk width (columns multiplied per `dgemm` call).
const CHUNK_MIN: usize = 256;
const CHUNK_MAX: usize = 4096;
/// Rows per block of the block-triangular product.
const ROW_BLOCK: usize = 512;

/// The Gram matrix `X Xᵀ` (n x n, `f64`) of the rows of `x`.
///
/// Errors on an empty matrix and on a non-finite entry (naming its row and
/// column).
pub fn gram_matrix<S: Data<Elem = f32>>(x: &ArrayBase<S, Ix2>) -> Result<Array2<f64>> {
    let (n, d) = x.dim();
    if n == 0 || d == 0 {
        return Err(MdsError::Empty {
            what: "data matrix",
        });
    }
    check_finite_rows(x)?;

    let chunk = (CHUNK_ELEMENTS / n).clamp(CHUNK_MIN, CHUNK_MAX).min(d);
    let blocks: Vec<(usize, usize)> = (0..n)
        .step_by(ROW_BLOCK)
        .map(|start| (start, (start + ROW_BLOCK).min(n)))
        .collect();
    let mut gram = Array2::<f64>::zeros((n, n));
    let mut wide = Array2::<f64>::zeros((n, chunk));
    for start in (0..d).step_by(chunk) {
        let end = (start + chunk).min(d);
        let mut part = wide.slice_mut(s![.., ..end - start]);
        Zip::from(&mut part)
            .and(&x.slice(s![.., start..end]))
            .par_for_each(|w, &v| *w = f64::from(v));
        let part = part.view();
        for (bi, &(r0, r1)) in blocks.iter().enumerate() {
            for &(c0, c1) in &blocks[bi..] {
                let a = part.slice(s![r0..r1, ..]);
                let b = part.slice(s![c0..c1, ..]);
                let mut out = gram.slice_mut(s![r0..r1, c0..c1]);
                general_mat_mul(1.0, &a, &b.t(), 1.0, &mut out);
            }
        }
    }
    // Mirror the blocks above the diagonal into those below it.
    for (bi, &(r0, r1)) in blocks.iter().enumerate() {
        for &(c0, c1) in &blocks[..bi] {
            let upper = gram.slice(s![c0..c1, r0..r1]).t().to_owned();
            gram.slice_mut(s![r0..r1, c0..c1]).assign(&upper);
        }
    }
    // Diagonal blocks were computed in full: make them exactly symmetric.
    for &(r0, r1) in &blocks {
        for i in r0..r1 {
            for j in r0..i {
                gram[[i, j]] = gram[[j, i]];
            }
        }
    }
    Ok(gram)
}

/// The n x n matrix of dissimilarities between the rows of `x`, from one
/// Gram product. The diagonal is exactly 0 and the result exactly symmetric.
///
/// Errors: an empty matrix, a non-finite entry (naming row and column), and
/// under [`Dissimilarity::Cosine`] an all-zero row (naming it).
pub fn dissimilarity_matrix<S: Data<Elem = f32>>(
    x: &ArrayBase<S, Ix2>,
    metric: Dissimilarity,
) -> Result<Array2<f64>> {
    let mut gram = gram_matrix(x)?;
    let sq_norms: Array1<f64> = gram.diag().to_owned();
    match metric {
        Dissimilarity::Cosine => {
            if let Some(row) = sq_norms.iter().position(|&v| v == 0.0) {
                return Err(MdsError::ZeroRow { row });
            }
            let inv: Array1<f64> = sq_norms.mapv(|v| 1.0 / v.sqrt());
            gram.axis_iter_mut(Axis(0))
                .into_par_iter()
                .enumerate()
                .for_each(|(i, mut row)| {
                    for (j, g) in row.iter_mut().enumerate() {
                        // inv[i] * inv[j] is commutative: the result is exactly symmetric.
                        let cos = *g * (inv[i] * inv[j]);
                        *g = if i == j {
                            0.0
                        } else {
                            (1.0 - cos).clamp(0.0, 2.0)
                        };
                    }
                });
        }
        Dissimilarity::Euclidean | Dissimilarity::SquaredEuclidean => {
            let root = metric == Dissimilarity::Euclidean;
            gram.axis_iter_mut(Axis(0))
                .into_par_iter()
                .enumerate()
                .for_each(|(i, mut row)| {
                    for (j, g) in row.iter_mut().enumerate() {
                        let sq = ((sq_norms[i] + sq_norms[j]) - 2.0 * *g).max(0.0);
                        *g = if i == j {
                            0.0
                        } else if root {
                            sq.sqrt()
                        } else {
                            sq
                        };
                    }
                });
        }
    }
    Ok(gram)
}

/// Errors with the first (row-major) non-finite entry of `x`.
fn check_finite_rows<S: Data<Elem = f32>>(x: &ArrayBase<S, Ix2>) -> Result<()> {
    let bad = x
        .axis_iter(Axis(0))
        .into_par_iter()
        .enumerate()
        .find_first(|(_, row)| row.iter().any(|v| !v.is_finite()));
    if let Some((row, values)) = bad {
        let (col, value) = values
            .iter()
            .enumerate()
            .find(|(_, v)| !v.is_finite())
            .map_or((0, f64::NAN), |(c, &v)| (c, f64::from(v)));
        return Err(MdsError::NonFinite {
            what: "data matrix",
            row,
            col,
            value,
        });
    }
    Ok(())
}
