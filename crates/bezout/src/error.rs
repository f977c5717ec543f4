//! The crate's error type.

/// Everything that can go wrong in `landscape-bezout`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BezoutError {
    /// A parameter is out of its valid range.
    #[error("invalid parameter `{field}` = {value}: expected {expected}")]
    InvalidParam {
        /// The parameter's name, as the builder method spells it.
        field: &'static str,
        /// The value that was given, formatted.
        value: String,
        /// What a valid value looks like.
        expected: &'static str,
    },
    /// A LAPACK routine failed.
    #[error("LAPACK failed while {what}: {source}")]
    Linalg {
        /// What the crate was computing.
        what: &'static str,
        /// The backend's error.
        #[source]
        source: ndarray_linalg::error::LinalgError,
    },
    /// The network's Jacobian cannot reach rank N, so a generic system has no solution.
    #[error(
        "N = {n} data points but the network's Jacobian has rank at most {rank} at a random point \
         (W = {w}): with N above that rank a random system is inconsistent; use N <= {rank}"
    )]
    RankDeficientNetwork {
        /// Number of data points asked for.
        n: usize,
        /// Rank of the Jacobian at a random point.
        rank: usize,
        /// Number of weights.
        w: usize,
    },
}

impl BezoutError {
    pub(crate) fn invalid(
        field: &'static str,
        value: impl std::fmt::Display,
        expected: &'static str,
    ) -> Self {
        Self::InvalidParam {
            field,
            value: value.to_string(),
            expected,
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T> = std::result::Result<T, BezoutError>;
