//! The crate's one error type.
use ndarray_linalg::error::LinalgError;

/// Everything that can go wrong in this crate. Each variant names the
/// argument or step at fault and what was expected instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpectrumError {
    /// A parameter outside its valid range.
    #[error("parameter `{name}` is {value}: expected {expected}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// Its value, rendered.
        value: String,
        /// What is accepted, in words.
        expected: String,
    },
    /// An input with no entries where some are needed.
    #[error("{what} is empty: expected at least one entry")]
    Empty {
        /// Which input (e.g. "operator", "eigenvalues").
        what: &'static str,
    },
    /// A matrix that should be square and is not.
    #[error("{what} is {rows} x {cols}: expected a square matrix")]
    NotSquare {
        /// Which input.
        what: &'static str,
        /// Number of rows found.
        rows: usize,
        /// Number of columns found.
        cols: usize,
    },
    /// A matrix whose (i, j) and (j, i) entries differ by more than the tolerance.
    #[error("matrix is not symmetric: entry ({row}, {col}) is {value} but ({col}, {row}) is {transposed}; expected a difference <= {tolerance}")]
    NotSymmetric {
        /// Row of the first entry.
        row: usize,
        /// Column of the first entry.
        col: usize,
        /// Entry (row, col).
        value: f64,
        /// Entry (col, row).
        transposed: f64,
        /// The largest accepted difference (absolute).
        tolerance: f64,
    },
    /// A NaN or infinite entry in an input.
    #[error("{what} has the non-finite value {value} at index {index}: expected finite numbers")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Flat (row-major) index of the offending entry.
        index: usize,
        /// The entry itself.
        value: f64,
    },
    /// A vector whose length does not match the operator.
    #[error("{what} has length {found}: expected {expected} (the operator's dimension)")]
    DimensionMismatch {
        /// Which input.
        what: &'static str,
        /// Its length.
        found: usize,
        /// The length expected.
        expected: usize,
    },
    /// A start vector that is all zeros.
    #[error("{what} is zero: expected a non-zero vector")]
    ZeroVector {
        /// Which input.
        what: &'static str,
    },
    /// An operator application failed (e.g. a Hessian-vector product in
    /// libtorch); the implementor's error is the source.
    #[error("operator application failed: {0}")]
    Operator(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An operator application returned NaN or infinity.
    #[error("operator application {application} returned the non-finite value {value} at index {index}: expected finite numbers")]
    NonFiniteProduct {
        /// Which application (1-based count within the algorithm).
        application: usize,
        /// Index of the offending entry.
        index: usize,
        /// The entry itself.
        value: f64,
    },
    /// A numerical step that could not proceed.
    #[error("{step} failed: {reason}")]
    Numerical {
        /// The step (e.g. "random start vector").
        step: &'static str,
        /// What happened, in words.
        reason: String,
    },
    /// A LAPACK routine reported failure.
    #[error("LAPACK failed in {step}: {source}")]
    Linalg {
        /// The step that called LAPACK (e.g. "tridiagonal eigendecomposition").
        step: &'static str,
        /// The underlying error.
        #[source]
        source: LinalgError,
    },
}

impl SpectrumError {
    /// Wraps an implementor's error as [`SpectrumError::Operator`]:
    /// `hvp(x).map_err(SpectrumError::operator)?`.
    pub fn operator<E>(error: E) -> Self
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        Self::Operator(error.into())
    }

    pub(crate) fn invalid(
        name: &'static str,
        value: impl ToString,
        expected: impl Into<String>,
    ) -> Self {
        Self::InvalidParameter {
            name,
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}

/// Short for `Result<T, SpectrumError>`.
pub type Result<T> = std::result::Result<T, SpectrumError>;
