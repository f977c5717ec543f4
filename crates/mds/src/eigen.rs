//! Symmetric eigensolvers: LAPACK's full `syevd`, and Lanczos with full
//! reorthogonalisation for the top k eigenpairs of a large matrix.
use ndarray::{s, Array1, Array2, ArrayView2, Axis};
use ndarray_linalg::{EighInto, UPLO};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{MdsError, Result};

/// Eigenpairs sorted by descending eigenvalue.
pub(crate) struct Eigenpairs {
    /// Eigenvalues, descending: all n (full solver) or the top k (partial).
    pub values: Array1<f64>,
    /// The eigenvectors of the first k values, one per column (n x k).
    pub vectors: Array2<f64>,
}

/// All eigenvalues of the symmetric `b`, and the eigenvectors of the top `k`.
pub(crate) fn full(b: Array2<f64>, k: usize) -> Result<Eigenpairs> {
    let (values, vectors) = b
        .eigh_into(UPLO::Lower)
        .map_err(|source| MdsError::Linalg {
            step: "full symmetric eigendecomposition",
            source,
        })?;
    let n = values.len();
    let values: Array1<f64> = values.iter().rev().copied().collect();
    let vectors = vectors.slice(s![.., n - k..;-1]).to_owned();
    Ok(Eigenpairs { values, vectors })
}

/// Settings of the Lanczos iteration.
pub(crate) struct LanczosParams {
    pub k: usize,
    /// Ritz pairs count as converged when `‖B v - θ v‖ <= tol · max|θ|`.
    pub tol: f64,
    pub seed: u64,
    /// Largest Krylov dimension before giving up.
    pub max_dim: usize,
}

/// The top `k` eigenpairs of the symmetric `b` by Lanczos with full
/// reorthogonalisation (twice, "twice is enough"). On an invariant subspace
/// (breakdown) it continues from a fresh random vector orthogonal to the
/// basis, so that eigenvalues of multiplicity > 1 are found. Returns `None`
/// when the top k have not converged within `max_dim` steps.
pub(crate) fn lanczos(b: ArrayView2<'_, f64>, p: &LanczosParams) -> Result<Option<Eigenpairs>> {
    let n = b.nrows();
    let max_dim = p.max_dim.min(n).max(p.k);
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    // Basis vectors are the rows of `q` (contiguous for the reorthogonalisation gemv).
    let mut q = Array2::<f64>::zeros((max_dim, n));
    let mut alpha: Vec<f64> = Vec::with_capacity(max_dim);
    let mut beta: Vec<f64> = Vec::with_capacity(max_dim);

    let start = random_orthogonal(&mut rng, q.slice(s![..0, ..]), n);
    q.row_mut(0).assign(&start);
    let mut scale = 0.0_f64;
    // Index of the first basis vector of the current Krylov block.
    let mut block_start = 0;
    for j in 0..max_dim {
        let mut w = b.dot(&q.row(j));
        let a = w.dot(&q.row(j));
        alpha.push(a);
        for _ in 0..2 {
            let basis = q.slice(s![..=j, ..]);
            let h = basis.dot(&w);
            w -= &basis.t().dot(&h);
        }
        let bnorm = w.dot(&w).sqrt();
        scale = scale.max(a.abs()).max(bnorm).max(f64::MIN_POSITIVE);
        let breakdown = bnorm <= 1e-12 * scale;
        if j + 1 == n {
            return ritz(q.view(), &alpha, &beta, p.k).map(Some);
        }
        if breakdown && j == block_start && j >= p.k {
            // A fresh random vector orthogonal to the basis is an eigenvector:
            // the whole complement is one eigenspace with eigenvalue `a`. The
            // earlier blocks hold the answer if their k-th value lies above it.
            let done = ritz(q.view(), &alpha[..j], &beta[..j - 1], p.k)?;
            if done.values[p.k - 1] > a + p.tol * scale {
                return Ok(Some(done));
            }
        } else if !breakdown && j + 1 >= p.k && ((j + 1) % 8 == 0 || j + 1 == max_dim) {
            let (theta, s_mat) = tridiagonal_eigh(&alpha, &beta)?;
            let m = theta.len();
            let ritz_scale = theta
                .iter()
                .fold(0.0_f64, |acc, v| acc.max(v.abs()))
                .max(f64::MIN_POSITIVE);
            let converged =
                (m - p.k..m).all(|i| bnorm * s_mat[[m - 1, i]].abs() <= p.tol * ritz_scale);
            if converged {
                tracing::debug!(dim = j + 1, "Lanczos converged");
                return ritz(q.view(), &alpha, &beta, p.k).map(Some);
            }
        }
        if j + 1 == max_dim {
            break;
        }
        if breakdown {
            // Invariant subspace: restart orthogonally, decoupling the blocks of T.
            beta.push(0.0);
            block_start = j + 1;
            let fresh = random_orthogonal(&mut rng, q.slice(s![..=j, ..]), n);
            q.row_mut(j + 1).assign(&fresh);
        } else {
            beta.push(bnorm);
            q.row_mut(j + 1).assign(&(w / bnorm));
        }
    }
    Ok(None)
}

/// A random unit vector orthogonal to the rows of `basis`.
fn random_orthogonal(rng: &mut ChaCha8Rng, basis: ArrayView2<'_, f64>, n: usize) -> Array1<f64> {
    loop {
        let mut v: Array1<f64> = (0..n).map(|_| rng.random::<f64>() - 0.5).collect();
        for _ in 0..2 {
            if basis.nrows() > 0 {
                let h = basis.dot(&v);
                v -= &basis.t().dot(&h);
            }
        }
        let norm = v.dot(&v).sqrt();
        if norm > 1e-8 {
            return v / norm;
        }
    }
}

/// The top `k` Ritz pairs of the Lanczos basis (rows of `q`, as many as
/// `alpha` has entries), descending.
fn ritz(q: ArrayView2<'_, f64>, alpha: &[f64], beta: &[f64], k: usize) -> Result<Eigenpairs> {
    let (theta, s_mat) = tridiagonal_eigh(alpha, beta)?;
    let m = theta.len();
    let basis = q.slice(s![..m, ..]);
    let mut vectors = Array2::<f64>::zeros((q.ncols(), k));
    let mut values = Array1::<f64>::zeros(k);
    for (c, i) in (m - k..m).rev().enumerate() {
        values[c] = theta[i];
        let v = basis.t().dot(&s_mat.column(i));
        let norm = v.dot(&v).sqrt().max(f64::MIN_POSITIVE);
        vectors.column_mut(c).assign(&(v / norm));
    }
    Ok(Eigenpairs { values, vectors })
}

/// Eigenpairs (ascending) of the symmetric tridiagonal matrix with diagonal
/// `alpha` and off-diagonal `beta` (length `alpha.len() - 1`).
fn tridiagonal_eigh(alpha: &[f64], beta: &[f64]) -> Result<(Array1<f64>, Array2<f64>)> {
    let m = alpha.len();
    let mut t = Array2::<f64>::zeros((m, m));
    for i in 0..m {
        t[[i, i]] = alpha[i];
        if i + 1 < m {
            t[[i + 1, i]] = beta[i];
            t[[i, i + 1]] = beta[i];
        }
    }
    t.eigh_into(UPLO::Lower).map_err(|source| MdsError::Linalg {
        step: "Lanczos tridiagonal eigendecomposition",
        source,
    })
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
