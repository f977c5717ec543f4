//! Spectra of large symmetric operators known only through matrix-vector
//! products: the linear algebra behind PyHessian-style Hessian analysis,
//! without libtorch.
//!
//! A Hessian of a network with W weights is a W x W matrix that is never
//! formed: only Hessian-vector products are available. This crate takes any
//! [`Operator`] (a dimension and a fallible product `y = A x`) and computes
//!
//! - the top eigenvalues ([`top_k`]) and the two ends of the spectrum
//!   ([`extremes`]: is the critical point a minimum or a saddle?) by
//!   thick-restart Lanczos with full reorthogonalisation, with true
//!   residuals `‖A v - λ v‖` and a convergence flag;
//! - the trace by Hutchinson's estimator ([`HutchinsonParams`]), with its
//!   standard error and optionally the diagonal;
//! - the spectral density by stochastic Lanczos quadrature ([`SlqParams`],
//!   Ghorbani, Krishnan & Xiao 2019): Gauss quadrature nodes and weights per
//!   run, moments `tr(A^p)/n`, and a Gaussian-broadened density on a grid;
//! - the number of eigenvalues in an interval ([`KpmParams`]: kernel
//!   polynomial method, a Jackson-damped Chebyshev expansion of the
//!   interval's indicator traced with Hutchinson probes), with a 95%
//!   interval and a smoothing-bias bound: the degeneracy count of a
//!   Hessian known only through products;
//! - degeneracy counts of a spectrum ([`degeneracy`]) and the numerical
//!   rank of a Jacobian ([`numerical_rank`]), for the flat directions that
//!   Liao & Poggio's theory predicts.
//!
//! The plain Lanczos decomposition ([`LanczosParams::run`]) exposes the
//! tridiagonal matrix, its Ritz values with residual bounds and the Gauss
//! quadrature. Every algorithm is seeded (ChaCha8) and counts its operator
//! applications. Explicit operators for tests and small problems:
//! [`DenseOperator`], [`DiagonalOperator`], adapters [`Shifted`] and
//! [`Scaled`], and [`FnOperator`] for a closure.
//!
//! # LAPACK
//!
//! Small dense eigenproblems (tridiagonal and projected matrices) and the
//! SVD go through `ndarray-linalg` without a backend: the final binary picks
//! one (e.g. `ndarray-linalg/openblas-system`).
//!
//! ```
//! use landscape_spectrum::{extremes, top_k, DiagonalOperator, HutchinsonParams, LanczosParams};
//! use ndarray::Array1;
//!
//! // A "Hessian" with eigenvalues -1, 0, 0.01, ..., 1.99 (a saddle).
//! let mut lambda = Array1::linspace(0.0, 1.99, 200);
//! lambda[0] = -1.0;
//! let op = DiagonalOperator::new(lambda)?;
//! let params = LanczosParams::default().steps(40).tol(1e-10);
//!
//! let top = top_k(&op, 3, &params)?;
//! assert!(top.converged());
//! assert!((top.values()[0] - 1.99).abs() < 1e-10);
//!
//! let ends = extremes(&op, &params)?;
//! assert!((ends.min().value() + 1.0).abs() < 1e-10);
//! assert!(!ends.is_positive_semidefinite(1e-6));
//!
//! let trace = HutchinsonParams::default().probes(2).run(&op)?;
//! assert!((trace.estimate() - (199.0 - 1.0)).abs() < 1e-9);
//! # Ok::<(), landscape_spectrum::SpectrumError>(())
//! ```
mod degeneracy;
mod error;
mod hutchinson;
mod kpm;
mod lanczos;
mod operator;
mod probe;
mod slq;

pub use degeneracy::{default_rank_rtol, degeneracy, numerical_rank, Degeneracy, Rank};
pub use error::{Result, SpectrumError};
pub use hutchinson::{HutchinsonParams, TraceEstimate};
pub use kpm::{EigenvalueCounts, IntervalCount, KpmParams, Z95};
pub use lanczos::{
    bottom_k, extremes, top_k, Eigenpair, Eigenpairs, Extremes, LanczosDecomposition,
    LanczosParams, Quadrature, Ritz,
};
pub use operator::{DenseOperator, DiagonalOperator, FnOperator, Operator, Scaled, Shifted};
pub use probe::ProbeDistribution;
pub use slq::{Density, SlqParams, SmoothedDensity};
