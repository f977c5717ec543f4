//! Symmetric eigensolvers: LAPACK's full `dsyevd`, and (through
//! landscape-spectrum, the workspace's one thick-restart Lanczos) the top k
//! eigenpairs of a large matrix.
use landscape_spectrum::{Operator, SpectrumError};
use ndarray::linalg::general_mat_vec_mul;
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, Axis};

use crate::error::Result;

/// Eigenpairs sorted by descending eigenvalue.
pub(crate) struct Eigenpairs {
    /// Eigenvalues, descending: all n (full solver) or the top k (partial).
    pub values: Array1<f64>,
    /// The eigenvectors of the first k values, one per column (n x k).
    pub vectors: Array2<f64>,
}

/// All eigenvalues of the symmetric `b`, and the eigenvectors of the top `k`
/// (LAPACK `dsyevd`).
pub(crate) fn full(b: Array2<f64>, k: usize) -> Result<Eigenpairs> {
    let (values, vectors) = crate::lapack::eigh(b, "full symmetric eigendecomposition")?;
    let n = values.len();
    let vectors = vectors.slice(s![.., n - k..;-1]).to_owned();
    let values: Array1<f64> = values.iter().rev().copied().collect();
    Ok(Eigenpairs { values, vectors })
}

/// All eigenvalues of the symmetric `b`, descending, without eigenvectors
/// (LAPACK `dsyevd`, values only).
pub(crate) fn values_only(b: Array2<f64>) -> Result<Array1<f64>> {
    let values = crate::lapack::eigvalsh(b, "symmetric eigenvalues")?;
    Ok(values.iter().rev().copied().collect())
}

/// The top `k` eigenpairs of the symmetric `b` by landscape-spectrum's
/// thick-restart Lanczos ([`landscape_spectrum::top_k`]: Krylov–Schur form,
/// full reorthogonalisation, one `dgemv` per step reading `b` once, true
/// residuals `‖B y - θ y‖` checked at the end). The basis holds at most
/// `max_dim` vectors (`max_dim · n` numbers); `max_restarts` restarts bound
/// the operator applications. Returns `None` when the top k have not
/// converged to `‖B y - θ y‖ <= tol · max|θ|` within that budget.
pub(crate) fn lanczos(
    b: ArrayView2<'_, f64>,
    k: usize,
    tol: f64,
    seed: u64,
    max_dim: usize,
    max_restarts: usize,
) -> Result<Option<Eigenpairs>> {
    let n = b.nrows();
    let cap = max_dim.max(k + 1).min(n);
    // The Ritz vectors top_k keeps at a restart: k and half the free room.
    let keep = if cap > k { k + (cap - k) / 2 } else { k };
    let per_restart = (cap - keep).max(1);
    let max_applications = per_restart.saturating_mul(max_restarts).saturating_add(cap);
    let params = landscape_spectrum::LanczosParams::default()
        .steps(max_dim.max(k + 1))
        .tol(tol)
        .seed(seed)
        .max_applications(max_applications);
    let pairs = landscape_spectrum::top_k(&Dense(b), k, &params)?;
    tracing::debug!(
        applications = pairs.applications(),
        restarts = pairs.restarts(),
        converged = pairs.converged(),
        "Lanczos"
    );
    if !pairs.converged() {
        return Ok(None);
    }
    Ok(Some(Eigenpairs {
        values: pairs.values().to_owned(),
        vectors: pairs.vectors().to_owned(),
    }))
}

/// The centred matrix as a spectrum operator, borrowed (no copy of the n x n
/// matrix).
struct Dense<'a>(ArrayView2<'a, f64>);

impl Operator for Dense<'_> {
    fn dim(&self) -> usize {
        self.0.nrows()
    }

    fn apply(
        &self,
        x: ArrayView1<'_, f64>,
        mut y: ArrayViewMut1<'_, f64>,
    ) -> std::result::Result<(), SpectrumError> {
        general_mat_vec_mul(1.0, &self.0, &x, 0.0, &mut y);
        Ok(())
    }
}

/// Applies `sign` to each column of `vectors` in place.
pub(crate) fn fix_signs(vectors: &mut Array2<f64>, sign: crate::SignConvention) {
    for mut col in vectors.axis_iter_mut(Axis(1)) {
        let max = col.iter().fold(0.0_f64, |acc, v| acc.max(v.abs()));
        if max == 0.0 {
            continue;
        }
        let pivot = match sign {
            // Largest |value| positive; near-ties (within 1e-9 relative) go to the lowest index.
            crate::SignConvention::LargestPositive => {
                col.iter().position(|v| v.abs() >= max * (1.0 - 1e-9))
            }
            crate::SignConvention::FirstPositive => col.iter().position(|v| v.abs() > max * 1e-9),
        };
        if let Some(i) = pivot {
            if col[i] < 0.0 {
                col.mapv_inplace(|v| -v);
            }
        }
    }
}
