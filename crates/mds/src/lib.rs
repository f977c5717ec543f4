//! Classical (strain) multidimensional scaling of weight vectors.
//!
//! The paper's pictures place each snapshot of a network's weights in the
//! plane by classical MDS of the dissimilarity `1 - cosine similarity`. This
//! crate computes such pictures exactly and fast, from a few hundred points
//! to tens of thousands.
//!
//! # Pipeline
//!
//! 1. [`dissimilarity_matrix`]: the n x n dissimilarities between the rows of
//!    an `f32` matrix ([`Dissimilarity::Cosine`], Euclidean or squared
//!    Euclidean), all from one Gram product `X Xᵀ` accumulated in `f64`
//!    (BLAS `dgemm` on widened column chunks, only the upper block triangle).
//! 2. [`ClassicalMds::params`]`(k)` → [`MdsParams`] → [`MdsParams::fit`]:
//!    Torgerson's method. The squared dissimilarities are double-centred,
//!    `B = -½ J (D ∘ D) J`, and the top k eigenpairs give the coordinates
//!    `V_k diag(√λ_k)`. Small n uses LAPACK's full `syevd`; above
//!    [`MdsParams::partial_threshold`] points ([`EigenSolver::Auto`]) a
//!    thick-restart Lanczos iteration with full reorthogonalisation
//!    (landscape-spectrum's [`landscape_spectrum::top_k`]) computes only the top k (O(n²) per step instead of O(n³), memory bounded by
//!    [`MdsParams::max_krylov`]), with the same answer within tolerance.
//!    [`MdsParams::fit_owned`] works in the dissimilarity matrix's own
//!    memory: 8 n² bytes in all, so 40,000 snapshots fit in 13 GB.
//! 3. The [`Embedding`] reports what is needed to judge the picture: all
//!    computed eigenvalues (descending), the share of the positive spectrum
//!    the k axes explain, the mass of negative eigenvalues (1 - cosine is not
//!    Euclidean), and the strain. Each axis' sign is fixed by a
//!    [`SignConvention`], so output is deterministic.
//! 4. [`Embedding::place`] puts new points into an existing picture (Gower's
//!    formula / landmark MDS) and [`procrustes`] aligns one picture onto
//!    another (e.g. layer 2 vs layer 5) and reports the residual.
//!
//! # LAPACK and BLAS
//!
//! The library links no backend: it uses `ndarray-linalg` without features
//! and ndarray's `blas` feature; the final binary picks the backend (e.g.
//! `ndarray-linalg/openblas-system`, which provides both).
//!
//! ```
//! use landscape_mds::{dissimilarity_matrix, ClassicalMds, Dissimilarity};
//! use ndarray::array;
//!
//! let weights = array![[1.0_f32, 0.0, 0.2], [0.9, 0.1, 0.3], [0.0, 1.0, 0.1], [0.2, 0.8, 0.0]];
//! let d = dissimilarity_matrix(&weights, Dissimilarity::Cosine)?;
//! let embedding = ClassicalMds::params(2).fit(&d)?;
//! assert_eq!(embedding.coordinates().dim(), (4, 2));
//! assert!(embedding.eigenvalues()[0] >= embedding.eigenvalues()[1]);
//! # Ok::<(), landscape_mds::MdsError>(())
//! ```
mod dissimilarity;
mod eigen;
mod error;
mod lapack;
mod mds;
mod procrustes;

pub use dissimilarity::{dissimilarity_matrix, gram_matrix, Dissimilarity};
pub use error::{MdsError, Result};
pub use mds::{ClassicalMds, EigenSolver, Embedding, MdsParams, SignConvention};
pub use procrustes::{procrustes, Procrustes};

/// `a` itself when it is in standard (row-major, contiguous) layout, else a
/// standard-layout copy: never copies an array that is already fine.
pub(crate) fn into_standard_layout(a: ndarray::Array2<f64>) -> ndarray::Array2<f64> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}
