//! Symmetric linear operators known only through matrix-vector products.
use ndarray::{Array1, Array2, ArrayView1, ArrayViewMut1, Zip};

use crate::error::{Result, SpectrumError};

/// A symmetric linear operator `A` on `R^dim`, known only through products
/// `y = A x` (e.g. Hessian-vector products computed by automatic
/// differentiation).
///
/// The algorithms of this crate assume `A` is symmetric and linear; they do
/// not check it (an operator that is only approximately so, e.g. a
/// Hessian-vector product in `f32`, gives answers accurate to about its own
/// error). An application may fail: wrap the implementor's error with
/// [`SpectrumError::operator`].
///
/// ```
/// use landscape_spectrum::{Operator, SpectrumError};
/// use ndarray::{ArrayView1, ArrayViewMut1};
///
/// /// The 1-D discrete Laplacian with Dirichlet boundaries.
/// struct Laplacian(usize);
///
/// impl Operator for Laplacian {
///     fn dim(&self) -> usize {
///         self.0
///     }
///     fn apply(&self, x: ArrayView1<'_, f64>, mut y: ArrayViewMut1<'_, f64>) -> Result<(), SpectrumError> {
///         let n = self.0;
///         for i in 0..n {
///             let left = if i > 0 { x[i - 1] } else { 0.0 };
///             let right = if i + 1 < n { x[i + 1] } else { 0.0 };
///             y[i] = 2.0 * x[i] - left - right;
///         }
///         Ok(())
///     }
/// }
/// # assert_eq!(Laplacian(4).dim(), 4);
/// ```
pub trait Operator {
    /// The dimension `n` of the space the operator acts on.
    fn dim(&self) -> usize;

    /// Writes `A x` into `y`. Both have length [`Operator::dim`]; `y` holds
    /// arbitrary values on entry and must be overwritten entirely.
    fn apply(&self, x: ArrayView1<'_, f64>, y: ArrayViewMut1<'_, f64>) -> Result<()>;
}

impl<O: Operator + ?Sized> Operator for &O {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn apply(&self, x: ArrayView1<'_, f64>, y: ArrayViewMut1<'_, f64>) -> Result<()> {
        (**self).apply(x, y)
    }
}

impl<O: Operator + ?Sized> Operator for Box<O> {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn apply(&self, x: ArrayView1<'_, f64>, y: ArrayViewMut1<'_, f64>) -> Result<()> {
        (**self).apply(x, y)
    }
}

/// Applies `op`, counts the application and rejects a non-finite result.
pub(crate) fn apply_counted<O: Operator + ?Sized>(
    op: &O,
    x: ArrayView1<'_, f64>,
    mut y: ArrayViewMut1<'_, f64>,
    applications: &mut usize,
) -> Result<()> {
    *applications += 1;
    let application = *applications;
    op.apply(x, y.view_mut())?;
    if let Some((index, &value)) = y.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(SpectrumError::NonFiniteProduct {
            application,
            index,
            value,
        });
    }
    Ok(())
}

/// An explicit dense symmetric matrix as an [`Operator`] (for tests, small
/// problems and reference answers).
#[derive(Clone, Debug, PartialEq)]
pub struct DenseOperator {
    matrix: Array2<f64>,
}

impl DenseOperator {
    /// Relative symmetry tolerance of [`DenseOperator::new`]: `|a_ij - a_ji|`
    /// may be at most this times the largest `|a_ij|`.
    pub const DEFAULT_SYMMETRY_RTOL: f64 = 1e-10;

    /// Wraps a square, finite matrix symmetric within
    /// [`DenseOperator::DEFAULT_SYMMETRY_RTOL`] (relative to its largest
    /// entry). The matrix is used as given, not symmetrised.
    pub fn new(matrix: Array2<f64>) -> Result<Self> {
        Self::with_tolerance(matrix, Self::DEFAULT_SYMMETRY_RTOL)
    }

    /// As [`DenseOperator::new`] with the relative symmetry tolerance `rtol` (>= 0).
    pub fn with_tolerance(matrix: Array2<f64>, rtol: f64) -> Result<Self> {
        if !(rtol >= 0.0 && rtol.is_finite()) {
            return Err(SpectrumError::invalid("rtol", rtol, "a finite number >= 0"));
        }
        let (rows, cols) = matrix.dim();
        if rows == 0 {
            return Err(SpectrumError::Empty { what: "matrix" });
        }
        if rows != cols {
            return Err(SpectrumError::NotSquare {
                what: "matrix",
                rows,
                cols,
            });
        }
        check_finite("matrix", matrix.iter().copied())?;
        let max = matrix.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let tolerance = rtol * max;
        for i in 0..rows {
            for j in i + 1..cols {
                let (value, transposed) = (matrix[[i, j]], matrix[[j, i]]);
                if (value - transposed).abs() > tolerance {
                    return Err(SpectrumError::NotSymmetric {
                        row: i,
                        col: j,
                        value,
                        transposed,
                        tolerance,
                    });
                }
            }
        }
        Ok(Self { matrix })
    }

    /// The wrapped matrix.
    pub fn matrix(&self) -> &Array2<f64> {
        &self.matrix
    }

    /// The wrapped matrix, by value.
    pub fn into_matrix(self) -> Array2<f64> {
        self.matrix
    }
}

impl Operator for DenseOperator {
    fn dim(&self) -> usize {
        self.matrix.nrows()
    }
    fn apply(&self, x: ArrayView1<'_, f64>, mut y: ArrayViewMut1<'_, f64>) -> Result<()> {
        check_lengths(self.dim(), &x, &y)?;
        ndarray::linalg::general_mat_vec_mul(1.0, &self.matrix, &x, 0.0, &mut y);
        Ok(())
    }
}

/// A diagonal matrix `diag(d)` as an [`Operator`].
#[derive(Clone, Debug, PartialEq)]
pub struct DiagonalOperator {
    diagonal: Array1<f64>,
}

impl DiagonalOperator {
    /// `diag(diagonal)`; errors on an empty or non-finite diagonal.
    pub fn new(diagonal: Array1<f64>) -> Result<Self> {
        if diagonal.is_empty() {
            return Err(SpectrumError::Empty { what: "diagonal" });
        }
        check_finite("diagonal", diagonal.iter().copied())?;
        Ok(Self { diagonal })
    }

    /// The diagonal (the eigenvalues).
    pub fn diagonal(&self) -> &Array1<f64> {
        &self.diagonal
    }
}

impl Operator for DiagonalOperator {
    fn dim(&self) -> usize {
        self.diagonal.len()
    }
    fn apply(&self, x: ArrayView1<'_, f64>, y: ArrayViewMut1<'_, f64>) -> Result<()> {
        check_lengths(self.dim(), &x, &y)?;
        Zip::from(y)
            .and(&x)
            .and(&self.diagonal)
            .for_each(|y, &x, &d| *y = d * x);
        Ok(())
    }
}

/// `A + shift · I`: e.g. to make an operator positive definite, or to move
/// the wanted end of the spectrum.
#[derive(Clone, Debug)]
pub struct Shifted<O> {
    inner: O,
    shift: f64,
}

impl<O: Operator> Shifted<O> {
    /// `inner + shift · I`; errors on a non-finite shift.
    pub fn new(inner: O, shift: f64) -> Result<Self> {
        if !shift.is_finite() {
            return Err(SpectrumError::invalid("shift", shift, "a finite number"));
        }
        Ok(Self { inner, shift })
    }

    /// The shift.
    pub fn shift(&self) -> f64 {
        self.shift
    }

    /// The wrapped operator.
    pub fn inner(&self) -> &O {
        &self.inner
    }
}

impl<O: Operator> Operator for Shifted<O> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn apply(&self, x: ArrayView1<'_, f64>, mut y: ArrayViewMut1<'_, f64>) -> Result<()> {
        self.inner.apply(x, y.view_mut())?;
        y.scaled_add(self.shift, &x);
        Ok(())
    }
}

/// `factor · A`: e.g. `-A`, whose largest eigenvalues are `A`'s smallest.
#[derive(Clone, Debug)]
pub struct Scaled<O> {
    inner: O,
    factor: f64,
}

impl<O: Operator> Scaled<O> {
    /// `factor · inner`; errors on a non-finite factor.
    pub fn new(inner: O, factor: f64) -> Result<Self> {
        if !factor.is_finite() {
            return Err(SpectrumError::invalid("factor", factor, "a finite number"));
        }
        Ok(Self { inner, factor })
    }

    /// The factor.
    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// The wrapped operator.
    pub fn inner(&self) -> &O {
        &self.inner
    }
}

impl<O: Operator> Operator for Scaled<O> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn apply(&self, x: ArrayView1<'_, f64>, mut y: ArrayViewMut1<'_, f64>) -> Result<()> {
        self.inner.apply(x, y.view_mut())?;
        y.mapv_inplace(|v| v * self.factor);
        Ok(())
    }
}

/// An [`Operator`] from a closure `f(x, y)` that writes `A x` into `y`: the
/// shortest way to wrap an external matrix-vector product (e.g. a libtorch
/// Hessian-vector product).
///
/// ```
/// use landscape_spectrum::{FnOperator, Operator};
/// use ndarray::{array, Array1};
///
/// let op = FnOperator::new(3, |x, mut y| {
///     y.assign(&(&x * 2.0));
///     Ok(())
/// });
/// let mut y = Array1::zeros(3);
/// op.apply(array![1.0, 2.0, 3.0].view(), y.view_mut())?;
/// assert_eq!(y, array![2.0, 4.0, 6.0]);
/// # Ok::<(), landscape_spectrum::SpectrumError>(())
/// ```
pub struct FnOperator<F> {
    dim: usize,
    f: F,
}

impl<F> FnOperator<F>
where
    F: Fn(ArrayView1<'_, f64>, ArrayViewMut1<'_, f64>) -> Result<()>,
{
    /// The operator of dimension `dim` whose product is computed by `f`.
    pub fn new(dim: usize, f: F) -> Self {
        Self { dim, f }
    }
}

impl<F> std::fmt::Debug for FnOperator<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnOperator")
            .field("dim", &self.dim)
            .finish_non_exhaustive()
    }
}

impl<F> Operator for FnOperator<F>
where
    F: Fn(ArrayView1<'_, f64>, ArrayViewMut1<'_, f64>) -> Result<()>,
{
    fn dim(&self) -> usize {
        self.dim
    }
    fn apply(&self, x: ArrayView1<'_, f64>, y: ArrayViewMut1<'_, f64>) -> Result<()> {
        (self.f)(x, y)
    }
}

/// Errors unless `x` and `y` both have length `dim`.
fn check_lengths(dim: usize, x: &ArrayView1<'_, f64>, y: &ArrayViewMut1<'_, f64>) -> Result<()> {
    for (what, found) in [("input vector x", x.len()), ("output vector y", y.len())] {
        if found != dim {
            return Err(SpectrumError::DimensionMismatch {
                what,
                found,
                expected: dim,
            });
        }
    }
    Ok(())
}

/// Errors on the first non-finite value.
pub(crate) fn check_finite(what: &'static str, values: impl Iterator<Item = f64>) -> Result<()> {
    for (index, value) in values.enumerate() {
        if !value.is_finite() {
            return Err(SpectrumError::NonFinite { what, index, value });
        }
    }
    Ok(())
}
