//! Counting flat directions: near-zero eigenvalues of a spectrum, and the
//! numerical rank of a (Jacobian) matrix.
use ndarray::{Array1, ArrayBase, ArrayView1, Data, Ix2};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SpectrumError};
use crate::operator::check_finite;

/// Counts of a spectrum's eigenvalues by sign, relative to its largest
/// magnitude; from [`degeneracy`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Degeneracy {
    total: usize,
    near_zero: usize,
    positive: usize,
    negative: usize,
    scale: f64,
    threshold: f64,
}

impl Degeneracy {
    /// Number of eigenvalues given.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Eigenvalues with `|λ| <= threshold` (flat directions).
    pub fn near_zero(&self) -> usize {
        self.near_zero
    }

    /// Eigenvalues `> threshold`.
    pub fn positive(&self) -> usize {
        self.positive
    }

    /// Eigenvalues `< -threshold` (negative curvature beyond tolerance).
    pub fn negative(&self) -> usize {
        self.negative
    }

    /// The largest `|λ|`.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// `rtol · scale`.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Share of near-zero eigenvalues, `near_zero / total`.
    pub fn near_zero_fraction(&self) -> f64 {
        self.near_zero as f64 / self.total as f64
    }
}

/// Counts the eigenvalues with `|λ| <= rtol · max|λ|` (degenerate, flat
/// directions), and those beyond it on either side.
///
/// ```
/// use landscape_spectrum::degeneracy;
/// use ndarray::array;
///
/// let d = degeneracy(array![10.0, 1.0, 1e-9, -1e-10, -0.5].view(), 1e-6)?;
/// assert_eq!((d.positive(), d.near_zero(), d.negative()), (2, 2, 1));
/// # Ok::<(), landscape_spectrum::SpectrumError>(())
/// ```
///
/// Errors on an empty or non-finite input and on `rtol` outside `[0, 1)`.
pub fn degeneracy(eigenvalues: ArrayView1<'_, f64>, rtol: f64) -> Result<Degeneracy> {
    check_rtol(rtol)?;
    if eigenvalues.is_empty() {
        return Err(SpectrumError::Empty {
            what: "eigenvalues",
        });
    }
    check_finite("eigenvalues", eigenvalues.iter().copied())?;
    let scale = eigenvalues.iter().fold(0.0_f64, |a, v| a.max(v.abs()));
    let threshold = rtol * scale;
    let near_zero = eigenvalues.iter().filter(|v| v.abs() <= threshold).count();
    let positive = eigenvalues.iter().filter(|&&v| v > threshold).count();
    let negative = eigenvalues.iter().filter(|&&v| v < -threshold).count();
    Ok(Degeneracy {
        total: eigenvalues.len(),
        near_zero,
        positive,
        negative,
        scale,
        threshold,
    })
}

fn check_rtol(rtol: f64) -> Result<()> {
    if !(0.0..1.0).contains(&rtol) {
        return Err(SpectrumError::invalid("rtol", rtol, "a number in [0, 1)"));
    }
    Ok(())
}

/// The numerical rank of a matrix and its singular values; from
/// [`numerical_rank`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rank {
    rank: usize,
    singular_values: Array1<f64>,
    threshold: f64,
    rows: usize,
    cols: usize,
}

impl Rank {
    /// Singular values above the threshold.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// All `min(rows, cols)` singular values, descending.
    pub fn singular_values(&self) -> ArrayView1<'_, f64> {
        self.singular_values.view()
    }

    /// `rtol · σ_max`.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// `cols - rank`: the dimension of the null space `{w : J w = 0}`. For
    /// an N x W Jacobian of full row rank N this is the theory's `W - N`
    /// flat directions.
    pub fn nullity(&self) -> usize {
        self.cols - self.rank
    }

    /// `rows - rank`: the dimension of the left null space.
    pub fn left_nullity(&self) -> usize {
        self.rows - self.rank
    }

    /// The matrix's shape `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
}

/// NumPy's `matrix_rank` tolerance for a `rows x cols` matrix:
/// `max(rows, cols) · ε` (relative to `σ_max`).
pub fn default_rank_rtol(rows: usize, cols: usize) -> f64 {
    rows.max(cols) as f64 * f64::EPSILON
}

/// The number of singular values `> rtol · σ_max` of `matrix` (LAPACK
/// `gesvd` through ndarray-linalg, singular values only), e.g. the rank of
/// an N x W Jacobian of the network's outputs with respect to its weights;
/// [`default_rank_rtol`] gives NumPy's choice of `rtol`.
///
/// ```
/// use landscape_spectrum::{default_rank_rtol, numerical_rank};
/// use ndarray::array;
///
/// let j = array![[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]];
/// let rank = numerical_rank(&j, default_rank_rtol(2, 3))?;
/// assert_eq!((rank.rank(), rank.nullity()), (1, 2));
/// # Ok::<(), landscape_spectrum::SpectrumError>(())
/// ```
///
/// Errors on an empty or non-finite matrix and on `rtol` outside `[0, 1)`.
pub fn numerical_rank<S: Data<Elem = f64>>(matrix: &ArrayBase<S, Ix2>, rtol: f64) -> Result<Rank> {
    use ndarray_linalg::SVDInto;
    check_rtol(rtol)?;
    let (rows, cols) = matrix.dim();
    if rows == 0 || cols == 0 {
        return Err(SpectrumError::Empty { what: "matrix" });
    }
    check_finite("matrix", matrix.iter().copied())?;
    let (_, singular_values, _) =
        matrix
            .to_owned()
            .svd_into(false, false)
            .map_err(|source| SpectrumError::Linalg {
                step: "singular value decomposition",
                source,
            })?;
    let sigma_max = singular_values.iter().fold(0.0_f64, |a, &s| a.max(s));
    let threshold = rtol * sigma_max;
    let rank = singular_values.iter().filter(|&&s| s > threshold).count();
    Ok(Rank {
        rank,
        singular_values,
        threshold,
        rows,
        cols,
    })
}
