//! The crate's one error type.
use ndarray_linalg::error::LinalgError;

/// Everything that can go wrong in this crate. Each variant names the row,
/// column or argument at fault and what was expected instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MdsError {
    /// An input has no rows (or no columns where some are needed).
    #[error("{what} is empty: expected at least one row and one column")]
    Empty {
        /// Which input (e.g. "data matrix", "dissimilarity matrix").
        what: &'static str,
    },
    /// A dissimilarity matrix that is not square.
    #[error("dissimilarity matrix is {rows} x {cols}: expected a square matrix")]
    NotSquare {
        /// Number of rows found.
        rows: usize,
        /// Number of columns found.
        cols: usize,
    },
    /// A NaN or infinite entry.
    #[error("{what} has the non-finite value {value} at row {row}, column {col}: expected finite numbers")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Row of the offending entry.
        row: usize,
        /// Column of the offending entry.
        col: usize,
        /// The entry itself.
        value: f64,
    },
    /// A negative dissimilarity.
    #[error("{what} has the negative value {value} at row {row}, column {col}: dissimilarities must be >= 0")]
    Negative {
        /// Which input.
        what: &'static str,
        /// Row of the offending entry.
        row: usize,
        /// Column of the offending entry.
        col: usize,
        /// The entry itself.
        value: f64,
    },
    /// A dissimilarity matrix whose (i, j) and (j, i) entries differ.
    #[error("dissimilarity matrix is not symmetric: entry ({row}, {col}) is {value} but ({col}, {row}) is {transposed}")]
    NotSymmetric {
        /// Row of the first entry.
        row: usize,
        /// Column of the first entry.
        col: usize,
        /// Entry (row, col).
        value: f64,
        /// Entry (col, row).
        transposed: f64,
    },
    /// A point whose dissimilarity to itself is not zero.
    #[error("dissimilarity matrix has {value} on the diagonal at row {row}: expected 0")]
    NonZeroDiagonal {
        /// The row (and column).
        row: usize,
        /// The diagonal entry.
        value: f64,
    },
    /// An all-zero row under the cosine dissimilarity (its direction is undefined).
    #[error("row {row} of the data matrix is all zeros: its cosine dissimilarity is undefined")]
    ZeroRow {
        /// The zero row.
        row: usize,
    },
    /// A number of output dimensions that the input cannot provide.
    #[error("asked for {k} dimensions of {n} points: expected 1 <= k <= {n}")]
    InvalidDimension {
        /// Requested dimensions.
        k: usize,
        /// Number of points.
        n: usize,
    },
    /// A parameter outside its valid range.
    #[error("parameter `{name}` is {value}: expected {expected}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// Its value, rendered.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// Two inputs whose shapes do not fit together.
    #[error("{what} has shape {found:?}: expected {expected}")]
    ShapeMismatch {
        /// Which input.
        what: &'static str,
        /// Its shape.
        found: (usize, usize),
        /// What was expected, in words.
        expected: String,
    },
    /// A metric name that is not one of `cosine`, `euclidean`, `squared-euclidean`.
    #[error(
        "unknown dissimilarity {name:?}: expected one of cosine, euclidean, squared-euclidean"
    )]
    UnknownMetric {
        /// The name given.
        name: String,
    },
    /// A LAPACK routine called directly by this crate reported failure.
    #[error("LAPACK {routine} failed in {step} (info = {info}): {reason}")]
    Lapack {
        /// The step (e.g. "full symmetric eigendecomposition").
        step: &'static str,
        /// The routine (e.g. "dsyevd").
        routine: &'static str,
        /// LAPACK's `info` (0 would be success).
        info: i64,
        /// What it means, in words.
        reason: String,
    },
    /// A LAPACK routine reported failure.
    #[error("LAPACK failed in {step}: {source}")]
    Linalg {
        /// The step that called LAPACK (e.g. "full eigendecomposition").
        step: &'static str,
        /// The underlying error.
        #[source]
        source: LinalgError,
    },
    /// The partial eigensolver (landscape-spectrum's Lanczos) failed.
    #[error("partial eigensolver (Lanczos): {0}")]
    Spectrum(#[from] landscape_spectrum::SpectrumError),
}

/// Short for `Result<T, MdsError>`.
pub type Result<T> = std::result::Result<T, MdsError>;
