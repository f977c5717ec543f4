//! Bezout-style degree and zero counts for polynomial networks, and a numeric
//! check that zero-error minima are degenerate (Liao & Poggio, "Theory of
//! Deep Learning II", Section 3 and Appendix A).
//!
//! The paper's argument: replace every ReLU by a polynomial of degree `k`;
//! the network output is then a polynomial in the weights, and fitting `N`
//! data points exactly is a system of `N` polynomial equations in `W`
//! unknowns. For `W > N` its solutions (if any) form a set of dimension
//! `W - N`; in the square case Bezout's theorem bounds the number of isolated
//! solutions by the product of the degrees, and a random system has about
//! the square root of that many real ones (Shub and Smale; Kostlan).
//!
//! The crate has three parts:
//!
//! - [`counting`]: exact degrees from an [`Architecture`] (per-layer
//!   recurrence, uniform or mixed activation degrees), the Bezout bound, the
//!   real-solution estimate and the dimension of the solution set, as
//!   [`Magnitude`]s (exact big integers where they fit, `log10` always, never a
//!   float overflow). Presets: the paper's CIFAR network and the Appendix A
//!   binary tree.
//! - [`relu_fit`]: least-squares polynomial fits of ReLU at Chebyshev nodes
//!   and the degree actually needed for a sup-norm accuracy `epsilon`.
//! - [`check`]: small fully connected polynomial networks ([`PolyNet`]),
//!   Levenberg-Marquardt with an analytic Jacobian to find zero-error
//!   solutions, and at each one the Jacobian's rank and the exact Hessian's
//!   spectrum (`W - N` zero eigenvalues expected); plus the square case
//!   (`W = N`), counting distinct real solutions against the Bezout bound.
//!
//! The library picks no LAPACK backend (`ndarray-linalg` without features):
//! binaries and test builds choose one.
//!
//! ```
//! use landscape_bezout::{Architecture, CountParams};
//! let arch = Architecture::mlp(&[4, 3, 1]).unwrap(); // one hidden layer
//! let report = CountParams::new(arch, 5).degree(2).fit().unwrap();
//! // d_1 = 2 (1 + 0) = 2, output d_2 = 1 + 2 = 3: each equation has degree 3.
//! assert_eq!(report.degrees().in_weights().to_string(), "3");
//! assert_eq!(report.bezout().exact().unwrap().to_string(), "243"); // 3^5
//! assert_eq!(report.dimension(), 19 - 5);
//! ```

pub mod check;
pub mod counting;
pub mod error;
pub mod magnitude;
pub mod polynet;
pub mod relu_fit;
pub mod table;

pub use check::{
    CheckReport, NumericCheckParams, Solution, SquareCountParams, SquareReport, Targets,
};
pub use counting::{
    Architecture, CountParams, CountReport, Degrees, Determinacy, EquationsPerPoint, LayerSpec,
    PAPER_CIFAR_WIDTHS,
};
pub use error::{BezoutError, Result};
pub use magnitude::Magnitude;
pub use polynet::{Activation, PolyNet};
pub use relu_fit::{ErrorCurve, ReluFit, ReluFitParams};
