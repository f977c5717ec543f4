//! Symmetric eigensolvers: LAPACK's full `dsyevd`, and thick-restart Lanczos
//! with full reorthogonalisation for the top k eigenpairs of a large matrix.
use ndarray::{s, Array1, Array2, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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

/// Settings of the Lanczos iteration.
pub(crate) struct LanczosParams {
    pub k: usize,
    /// Ritz pairs count as converged when `‖B v - θ v‖ <= tol · max|θ|`.
    pub tol: f64,
    pub seed: u64,
    /// Basis size at which the iteration restarts (thick restart).
    pub max_dim: usize,
    /// Restarts before giving up.
    pub max_restarts: usize,
}

/// Steps between two Rayleigh–Ritz convergence checks.
const CHECK_EVERY: usize = 8;

/// The top `k` eigenpairs of the symmetric `b` by thick-restart Lanczos
/// (Wu & Simon 2000; Stewart's Krylov–Schur form) with full
/// reorthogonalisation.
///
/// Each step multiplies one basis vector by `b` (one `dgemv`, reading the
/// matrix once) and orthogonalises the product against the whole basis twice
/// ("twice is enough"). The projected matrix `Qᵀ B Q` is kept explicitly,
/// from the stored products, rather than as the three-term recurrence, and
/// convergence is judged on the true residuals `‖B y - θ y‖` of the Ritz
/// pairs, so rounding cannot fake convergence. When the basis reaches
/// `max_dim` vectors it is compressed to the leading Ritz vectors plus the
/// current residual direction, which keeps the space a Krylov space and
/// memory at `2 · max_dim · n` numbers however slow the convergence. On an
/// invariant subspace (breakdown) it continues from a fresh random vector
/// orthogonal to the basis, so eigenvalues of multiplicity > 1 are found.
/// Returns `None` when the top k have not converged after `max_restarts`
/// restarts.
pub(crate) fn lanczos(b: ArrayView2<'_, f64>, p: &LanczosParams) -> Result<Option<Eigenpairs>> {
    let n = b.nrows();
    let k = p.k;
    let cap = p.max_dim.max(k + 1).min(n);
    // Ritz vectors kept at a restart: half of the free room above k.
    let keep = (k + (cap - k) / 2).clamp(k, cap.saturating_sub(1).max(k));
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    // Basis vectors and their products with `b` are rows (contiguous for gemv).
    let mut q = Array2::<f64>::zeros((cap, n));
    let mut bq = Array2::<f64>::zeros((cap, n));
    let mut h = Array2::<f64>::zeros((cap, cap));

    let start = random_orthogonal(&mut rng, q.slice(s![..0, ..]), n);
    q.row_mut(0).assign(&start);
    let mut m = 1;
    let mut restarts = 0;
    let mut since_check = 0;
    let mut steps = 0_usize;
    let mut scale = f64::MIN_POSITIVE;
    loop {
        let j = m - 1;
        let w = b.dot(&q.row(j));
        steps += 1;
        // Column j of the projected matrix, and the first orthogonalisation.
        let coef = q.slice(s![..m, ..]).dot(&w);
        for (i, &c) in coef.iter().enumerate() {
            h[[i, j]] = c;
            h[[j, i]] = c;
        }
        scale = scale.max(coef[j].abs()).max(w.dot(&w).sqrt());
        let mut f = &w - &q.slice(s![..m, ..]).t().dot(&coef);
        let again = q.slice(s![..m, ..]).dot(&f);
        f -= &q.slice(s![..m, ..]).t().dot(&again);
        bq.row_mut(j).assign(&w);
        let f_norm = f.dot(&f).sqrt();
        let breakdown = f_norm <= 1e-12 * scale;

        since_check += 1;
        // m never exceeds cap <= n, so the whole space is always a check step.
        let whole_space = m == n;
        if m >= k && (since_check >= CHECK_EVERY || m == cap || breakdown) {
            since_check = 0;
            let ritz = RitzPairs::of(&h, q.view(), bq.view(), m)?;
            let (values, vectors, residual) = ritz.top(k);
            if residual <= p.tol * ritz.scale || whole_space {
                tracing::debug!(steps, restarts, dim = m, "Lanczos converged");
                return Ok(Some(Eigenpairs { values, vectors }));
            }
            if m == cap {
                if restarts == p.max_restarts {
                    tracing::debug!(steps, restarts, "Lanczos out of restarts");
                    return Ok(None);
                }
                restarts += 1;
                // Thick restart: the `keep` leading Ritz vectors, their
                // products, and their (diagonal) projected matrix.
                let lead = ritz.vectors.slice(s![.., m - keep..]);
                let y = lead.t().dot(&q.slice(s![..m, ..]));
                let by = lead.t().dot(&bq.slice(s![..m, ..]));
                let hy = y.dot(&by.t());
                q.slice_mut(s![..keep, ..]).assign(&y);
                bq.slice_mut(s![..keep, ..]).assign(&by);
                for a in 0..keep {
                    for c in 0..keep {
                        h[[a, c]] = 0.5 * (hy[[a, c]] + hy[[c, a]]);
                    }
                }
                m = keep;
            }
        }
        // The residual direction is orthogonal to the old basis, so to the
        // kept Ritz vectors too: the space stays a Krylov space.
        let next = if breakdown {
            random_orthogonal(&mut rng, q.slice(s![..m, ..]), n)
        } else {
            f / f_norm
        };
        q.row_mut(m).assign(&next);
        m += 1;
    }
}

/// Rayleigh–Ritz on the first `m` basis vectors.
struct RitzPairs<'a> {
    /// Ritz values, ascending.
    values: Array1<f64>,
    /// Eigenvectors of the projected matrix (m x m), one per column.
    vectors: Array2<f64>,
    /// Largest |Ritz value|.
    scale: f64,
    q: ArrayView2<'a, f64>,
    bq: ArrayView2<'a, f64>,
}

impl<'a> RitzPairs<'a> {
    fn of(
        h: &Array2<f64>,
        q: ArrayView2<'a, f64>,
        bq: ArrayView2<'a, f64>,
        m: usize,
    ) -> Result<Self> {
        let (values, vectors) =
            crate::lapack::eigh(h.slice(s![..m, ..m]).to_owned(), "Lanczos Rayleigh-Ritz")?;
        let scale = values
            .iter()
            .fold(0.0_f64, |acc, v| acc.max(v.abs()))
            .max(f64::MIN_POSITIVE);
        Ok(Self {
            values,
            vectors,
            scale,
            q,
            bq,
        })
    }

    /// The top `k` Ritz values (descending), their unit Ritz vectors (n x k)
    /// and the largest residual norm `‖B y - θ y‖` among them.
    fn top(&self, k: usize) -> (Array1<f64>, Array2<f64>, f64) {
        let m = self.values.len();
        let lead = self.vectors.slice(s![.., m - k..;-1]);
        let y = lead.t().dot(&self.q.slice(s![..m, ..]));
        let by = lead.t().dot(&self.bq.slice(s![..m, ..]));
        let values: Array1<f64> = self.values.slice(s![m - k..;-1]).to_owned();
        let mut residual = 0.0_f64;
        let mut vectors = Array2::<f64>::zeros((self.q.ncols(), k));
        for c in 0..k {
            let r = &by.row(c) - &(&y.row(c) * values[c]);
            residual = residual.max(r.dot(&r).sqrt());
            let norm = y.row(c).dot(&y.row(c)).sqrt().max(f64::MIN_POSITIVE);
            vectors.column_mut(c).assign(&(&y.row(c) / norm));
        }
        (values, vectors, residual)
    }
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
