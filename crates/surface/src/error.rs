//! The crate's one error type.
use std::path::PathBuf;

/// Everything that can go wrong in this crate. Each variant names the tensor,
/// field, file or value at fault and what was expected instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SurfaceError {
    /// A tensor whose shape does not match its data length.
    #[error("tensor `{name}` has shape {shape:?} ({expected} values) but {found} values: expected the product of the shape")]
    TensorSize {
        /// The tensor's name.
        name: String,
        /// Its declared shape.
        shape: Vec<usize>,
        /// The product of the shape.
        expected: usize,
        /// The data length found.
        found: usize,
    },
    /// Two tensors with the same name in one set of weights.
    #[error("tensor name `{name}` occurs twice: expected unique names")]
    DuplicateTensor {
        /// The repeated name.
        name: String,
    },
    /// Two sets of weights whose layouts (names, order, shapes) differ.
    #[error("weights layouts differ at tensor #{index}: expected {expected}, found {found}")]
    Layout {
        /// Position of the first mismatching tensor.
        index: usize,
        /// What the left-hand (reference) weights have there.
        expected: String,
        /// What the right-hand weights have there.
        found: String,
    },
    /// A parameter outside its valid range.
    #[error("invalid {field} = {value}: expected {expected}")]
    InvalidParameter {
        /// The field, e.g. `line.points`.
        field: &'static str,
        /// The value given.
        value: String,
        /// What would be valid.
        expected: String,
    },
    /// A degenerate geometric input (a zero direction, collinear points).
    #[error("degenerate input: {what}")]
    Degenerate {
        /// What is degenerate and why it matters.
        what: String,
    },
    /// A NaN or infinite value where finite numbers are needed.
    #[error("{what} has the non-finite value {value} at index {index}: expected finite numbers")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// The offending position.
        index: usize,
        /// The value itself.
        value: f64,
    },
    /// The symmetric eigensolver failed.
    #[error("eigendecomposition of the {n} x {n} Gram matrix failed: {message}")]
    Eigen {
        /// Size of the matrix.
        n: usize,
        /// The solver's message.
        message: String,
    },
    /// The `contour` crate refused a grid.
    #[error("contouring failed: {message}")]
    Contour {
        /// The crate's message.
        message: String,
    },
    /// A `--shard` argument that is not `K/N`.
    #[error("--shard `{input}`: expected K/N with 1 <= K <= N (e.g. 2/3): {reason}")]
    ShardParse {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O error on a grid store file.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A grid store file that cannot be parsed.
    #[error("{path}:{line}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0 when not line-based).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A grid store made for different inputs.
    #[error("grid store {path} holds key {found} but key {expected} was expected; they first differ in {difference}")]
    KeyMismatch {
        /// The store's folder (or the shard folder that differs).
        path: PathBuf,
        /// Fingerprint of the key that was expected.
        expected: String,
        /// Fingerprint of the key found in the store.
        found: String,
        /// The first differing field and both its values (JSON).
        difference: String,
    },
    /// A grid store with a different spec, value columns, or shard count.
    #[error("grid store {path} has {what} {found} but {expected} was expected")]
    StoreMismatch {
        /// The store's folder.
        path: PathBuf,
        /// What differs ("spec", "value columns", "shard").
        what: &'static str,
        /// The expected value.
        expected: String,
        /// The stored value.
        found: String,
    },
    /// A grid point index that is out of range, outside the shard, or repeated.
    #[error("grid point {index}: {message}")]
    Point {
        /// The point's index.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// Shards that overlap or do not together cover the grid.
    #[error("cannot merge shards: {message}")]
    Merge {
        /// What is wrong.
        message: String,
    },
}

/// Shorthand for this crate's results.
pub type Result<T> = std::result::Result<T, SurfaceError>;

impl SurfaceError {
    pub(crate) fn invalid(
        field: &'static str,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        Self::InvalidParameter {
            field,
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
