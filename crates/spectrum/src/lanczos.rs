//! Lanczos with full reorthogonalisation: the tridiagonal decomposition
//! (for quadrature) and thick-restart eigensolvers for the ends of the
//! spectrum (for the top eigenvalues and for minimum-versus-saddle checks).
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SpectrumError};
use crate::operator::{apply_counted, check_finite, Operator};
use crate::probe::{random_vector, ProbeDistribution};

/// A residual norm at most this times the largest `‖A q‖` seen counts as
/// zero: the Krylov space is invariant (breakdown).
pub(crate) const BREAKDOWN_RTOL: f64 = 1e-12;

/// Basis vectors added between two convergence checks of the eigensolvers.
const CHECK_EVERY: usize = 5;

/// Parameters of the Lanczos iteration; validated by each algorithm.
///
/// ```
/// use landscape_spectrum::LanczosParams;
///
/// let params = LanczosParams::default().steps(40).tol(1e-10).seed(7);
/// assert_eq!(params.get_steps(), 40);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LanczosParams {
    steps: usize,
    seed: u64,
    tol: f64,
    max_applications: usize,
    keep_basis: bool,
}

impl Default for LanczosParams {
    fn default() -> Self {
        Self {
            steps: 100,
            seed: 0,
            tol: 1e-6,
            max_applications: 1000,
            keep_basis: false,
        }
    }
}

impl LanczosParams {
    /// The defaults: 100 steps, seed 0, tolerance 1e-6, at most 1,000
    /// applications, no basis kept.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of Lanczos steps `m` (default 100): the size of the
    /// tridiagonal matrix of [`LanczosParams::run`], and the largest basis of
    /// the eigensolvers ([`top_k`], [`bottom_k`], [`extremes`]), which restart
    /// when it is full. Memory: `m · n` numbers. Capped at the dimension `n`.
    pub fn steps(mut self, steps: usize) -> Self {
        self.steps = steps;
        self
    }

    /// Seed of the random start vector (ChaCha8; default 0): output is deterministic.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Relative residual at which the eigensolvers stop (default 1e-6): an
    /// eigenpair counts as converged when `‖A v - λ v‖ <= tol · max|θ|`,
    /// where `max|θ|` is the largest |Ritz value| (an estimate of `‖A‖₂`).
    /// Eigenvalues are then accurate to about `tol² ‖A‖² / gap`. With `f32`
    /// Hessian-vector products, 1e-4 .. 1e-5 is about the attainable floor.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// Most operator applications of an eigensolver before it stops
    /// unconverged (default 1,000; the final residual check adds one per
    /// eigenpair). Must be at least `min(steps, n)`.
    pub fn max_applications(mut self, max: usize) -> Self {
        self.max_applications = max;
        self
    }

    /// Keep the Krylov basis in [`LanczosDecomposition`] (default `false`;
    /// `m · n` numbers), for [`LanczosDecomposition::basis`] and Ritz vectors.
    pub fn keep_basis(mut self, keep: bool) -> Self {
        self.keep_basis = keep;
        self
    }

    /// The number of steps.
    pub fn get_steps(&self) -> usize {
        self.steps
    }

    /// The seed.
    pub fn get_seed(&self) -> u64 {
        self.seed
    }

    /// The tolerance.
    pub fn get_tol(&self) -> f64 {
        self.tol
    }

    /// The application budget of the eigensolvers.
    pub fn get_max_applications(&self) -> usize {
        self.max_applications
    }

    fn check(&self) -> Result<()> {
        if self.steps == 0 {
            return Err(SpectrumError::invalid("steps", self.steps, "at least 1"));
        }
        if !(self.tol > 0.0 && self.tol < 1.0) {
            return Err(SpectrumError::invalid(
                "tol",
                self.tol,
                "a number in (0, 1)",
            ));
        }
        if self.max_applications == 0 {
            return Err(SpectrumError::invalid(
                "max_applications",
                self.max_applications,
                "at least 1",
            ));
        }
        Ok(())
    }

    /// `m = min(steps, n)` Lanczos steps from a random unit start vector
    /// (standard normal entries from ChaCha8 seeded with
    /// [`LanczosParams::seed`], normalised), with full reorthogonalisation.
    ///
    /// Stops early, without error, when the Krylov space is invariant
    /// (breakdown: residual norm <= 1e-12 times the largest `‖A q‖` seen); the
    /// tridiagonal matrix is then smaller than `m` and its eigenvalues are
    /// exact eigenvalues of `A`.
    pub fn run<O: Operator + ?Sized>(&self, op: &O) -> Result<LanczosDecomposition> {
        self.check()?;
        let n = operator_dim(op)?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let start = random_vector(&mut rng, n, ProbeDistribution::Gaussian);
        lanczos(op, start, self.steps, self.keep_basis)
    }

    /// As [`LanczosParams::run`] from the given start vector (any non-zero
    /// length; it is normalised): e.g. to check the quadrature
    /// `vᵀ f(A) v = ‖v‖² Σ_k w_k f(θ_k)`.
    pub fn run_from<O: Operator + ?Sized>(
        &self,
        op: &O,
        start: ArrayView1<'_, f64>,
    ) -> Result<LanczosDecomposition> {
        self.check()?;
        let n = operator_dim(op)?;
        if start.len() != n {
            return Err(SpectrumError::DimensionMismatch {
                what: "start vector",
                found: start.len(),
                expected: n,
            });
        }
        check_finite("start vector", start.iter().copied())?;
        lanczos(op, start.to_owned(), self.steps, self.keep_basis)
    }
}

pub(crate) fn operator_dim<O: Operator + ?Sized>(op: &O) -> Result<usize> {
    match op.dim() {
        0 => Err(SpectrumError::Empty { what: "operator" }),
        n => Ok(n),
    }
}

/// The Lanczos decomposition `A Q_m = Q_m T_m + β_m q_{m+1} e_mᵀ` with the
/// symmetric tridiagonal `T_m = tridiag(β, α, β)`.
#[derive(Clone, Debug)]
pub struct LanczosDecomposition {
    alpha: Array1<f64>,
    beta: Array1<f64>,
    residual_norm: f64,
    breakdown: bool,
    start_norm: f64,
    applications: usize,
    /// Basis vectors as rows (m x n).
    basis: Option<Array2<f64>>,
}

impl LanczosDecomposition {
    /// The diagonal `α` of `T` (length m).
    pub fn alpha(&self) -> ArrayView1<'_, f64> {
        self.alpha.view()
    }

    /// The off-diagonal `β_1 .. β_{m-1}` of `T` (length m - 1).
    pub fn beta(&self) -> ArrayView1<'_, f64> {
        self.beta.view()
    }

    /// `β_m = ‖A q_m - α_m q_m - β_{m-1} q_{m-1}‖`, the norm of the next
    /// residual (tiny after a breakdown).
    pub fn residual_norm(&self) -> f64 {
        self.residual_norm
    }

    /// The number of steps done, `m` (the size of `T`).
    pub fn len(&self) -> usize {
        self.alpha.len()
    }

    /// Whether no step was done (never: at least one always is).
    pub fn is_empty(&self) -> bool {
        self.alpha.is_empty()
    }

    /// Whether the iteration stopped early on an invariant subspace.
    pub fn breakdown(&self) -> bool {
        self.breakdown
    }

    /// The norm of the start vector before normalisation.
    pub fn start_norm(&self) -> f64 {
        self.start_norm
    }

    /// Operator applications used (one per step).
    pub fn applications(&self) -> usize {
        self.applications
    }

    /// The orthonormal Krylov basis `Q_m` (n x m, one vector per column),
    /// when kept ([`LanczosParams::keep_basis`]).
    pub fn basis(&self) -> Option<ArrayView2<'_, f64>> {
        self.basis.as_ref().map(|q| q.t())
    }

    /// The tridiagonal matrix `T` (m x m), dense.
    pub fn tridiagonal(&self) -> Array2<f64> {
        let mut t = Array2::from_diag(&self.alpha);
        for (i, &b) in self.beta.iter().enumerate() {
            t[[i, i + 1]] = b;
            t[[i + 1, i]] = b;
        }
        t
    }

    /// The eigendecomposition of `T`: Ritz values and their residual bounds.
    pub fn ritz(&self) -> Result<Ritz> {
        let (values, vectors) = eigh(self.tridiagonal(), "tridiagonal eigendecomposition")?;
        let m = self.len();
        let bounds = vectors.row(m - 1).mapv(|s| (self.residual_norm * s).abs());
        Ok(Ritz {
            values,
            vectors,
            bounds,
        })
    }

    /// The Gauss quadrature of the start vector's spectral measure: nodes =
    /// Ritz values, weights = squared first components of `T`'s
    /// eigenvectors (summing to 1). For the unit start vector `v`,
    /// `vᵀ A^p v = Σ_k w_k θ_k^p` exactly for `p <= 2m - 1` (for every `p`
    /// after a breakdown).
    pub fn quadrature(&self) -> Result<Quadrature> {
        let ritz = self.ritz()?;
        let weights = ritz.vectors.row(0).mapv(|s| s * s);
        Ok(Quadrature {
            nodes: ritz.values,
            weights,
        })
    }

    /// The Ritz vectors `Q_m S` (n x m, one per column, ascending Ritz
    /// values), when the basis was kept.
    pub fn ritz_vectors(&self) -> Result<Option<Array2<f64>>> {
        let Some(q) = &self.basis else {
            return Ok(None);
        };
        let ritz = self.ritz()?;
        Ok(Some(q.t().dot(&ritz.vectors)))
    }
}

/// The eigendecomposition of a Lanczos tridiagonal matrix `T = S Θ Sᵀ`.
#[derive(Clone, Debug)]
pub struct Ritz {
    values: Array1<f64>,
    vectors: Array2<f64>,
    bounds: Array1<f64>,
}

impl Ritz {
    /// Ritz values `θ`, ascending.
    pub fn values(&self) -> ArrayView1<'_, f64> {
        self.values.view()
    }

    /// Eigenvectors `S` of `T` (m x m, column k for value k).
    pub fn vectors(&self) -> ArrayView2<'_, f64> {
        self.vectors.view()
    }

    /// Residual bounds `|β_m s_{m,k}|`: with exact orthogonality,
    /// `‖A y_k - θ_k y_k‖` for the Ritz vector `y_k = Q_m s_k`, and an
    /// eigenvalue of `A` lies within it of `θ_k`.
    pub fn bounds(&self) -> ArrayView1<'_, f64> {
        self.bounds.view()
    }

    /// First components `s_{1,k}` of the eigenvectors of `T`.
    pub fn first_components(&self) -> ArrayView1<'_, f64> {
        self.vectors.row(0)
    }
}

/// A Gauss quadrature rule: nodes and weights (summing to 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quadrature {
    pub(crate) nodes: Array1<f64>,
    pub(crate) weights: Array1<f64>,
}

impl Quadrature {
    /// The nodes (Ritz values), ascending.
    pub fn nodes(&self) -> ArrayView1<'_, f64> {
        self.nodes.view()
    }

    /// The weights, one per node.
    pub fn weights(&self) -> ArrayView1<'_, f64> {
        self.weights.view()
    }

    /// `Σ_k w_k θ_k^p`.
    pub fn moment(&self, p: u32) -> f64 {
        let p = i32::try_from(p).unwrap_or(i32::MAX);
        self.nodes
            .iter()
            .zip(&self.weights)
            .map(|(&t, &w)| w * t.powi(p))
            .sum()
    }
}

/// Symmetric eigendecomposition (ascending) through ndarray-linalg.
pub(crate) fn eigh(a: Array2<f64>, step: &'static str) -> Result<(Array1<f64>, Array2<f64>)> {
    use ndarray_linalg::{Eigh, UPLO};
    // ndarray-linalg rejects the strides ndarray gives some 1 x 1 arrays.
    if a.len() == 1 {
        return Ok((a.iter().copied().collect(), Array2::ones((1, 1))));
    }
    a.as_standard_layout()
        .eigh(UPLO::Lower)
        .map_err(|source| SpectrumError::Linalg { step, source })
}

fn norm(v: ArrayView1<'_, f64>) -> f64 {
    v.dot(&v).sqrt()
}

/// Classical Gram–Schmidt against the rows of `basis`, twice ("twice is
/// enough"); returns the total coefficients `basis · w_in`.
fn orthogonalise(basis: ArrayView2<'_, f64>, w: &mut Array1<f64>) -> Array1<f64> {
    let c1 = basis.dot(w);
    *w -= &basis.t().dot(&c1);
    let c2 = basis.dot(w);
    *w -= &basis.t().dot(&c2);
    c1 + c2
}

/// Plain Lanczos with full reorthogonalisation from `start` (normalised here).
pub(crate) fn lanczos<O: Operator + ?Sized>(
    op: &O,
    start: Array1<f64>,
    steps: usize,
    keep_basis: bool,
) -> Result<LanczosDecomposition> {
    let n = start.len();
    let start_norm = norm(start.view());
    if start_norm == 0.0 {
        return Err(SpectrumError::ZeroVector {
            what: "start vector",
        });
    }
    let m_max = steps.min(n);
    let mut q = Array2::<f64>::zeros((m_max, n));
    q.row_mut(0).assign(&(start / start_norm));
    let mut alpha = Vec::with_capacity(m_max);
    let mut beta = Vec::with_capacity(m_max);
    let mut w = Array1::<f64>::zeros(n);
    let mut applications = 0;
    let mut scale = 0.0_f64;
    let mut residual_norm = 0.0;
    let mut breakdown = false;
    for j in 0..m_max {
        apply_counted(op, q.row(j), w.view_mut(), &mut applications)?;
        scale = scale.max(norm(w.view()));
        let coef = orthogonalise(q.slice(s![..=j, ..]), &mut w);
        alpha.push(coef[j]);
        residual_norm = norm(w.view());
        if residual_norm <= BREAKDOWN_RTOL * scale {
            breakdown = true;
            break;
        }
        if j + 1 < m_max {
            beta.push(residual_norm);
            q.row_mut(j + 1).assign(&(&w / residual_norm));
        }
    }
    let m = alpha.len();
    tracing::trace!(steps = m, breakdown, "Lanczos");
    let basis = keep_basis.then(|| q.slice_move(s![..m, ..]));
    Ok(LanczosDecomposition {
        alpha: Array1::from(alpha),
        beta: Array1::from(beta),
        residual_norm,
        breakdown,
        start_norm,
        applications,
        basis,
    })
}

/// One eigenpair of an operator with its true residual norm.
#[derive(Clone, Debug, PartialEq)]
pub struct Eigenpair {
    value: f64,
    vector: Array1<f64>,
    residual: f64,
}

impl Eigenpair {
    /// The eigenvalue estimate (Ritz value).
    pub fn value(&self) -> f64 {
        self.value
    }

    /// The unit eigenvector estimate (Ritz vector).
    pub fn vector(&self) -> ArrayView1<'_, f64> {
        self.vector.view()
    }

    /// `‖A v - λ v‖`, computed with one extra operator application.
    pub fn residual(&self) -> f64 {
        self.residual
    }
}

/// Eigenpairs at one end of the spectrum, from [`top_k`] or [`bottom_k`].
#[derive(Clone, Debug, PartialEq)]
pub struct Eigenpairs {
    values: Array1<f64>,
    vectors: Array2<f64>,
    residuals: Array1<f64>,
    threshold: f64,
    applications: usize,
    restarts: usize,
    converged: bool,
}

impl Eigenpairs {
    /// The eigenvalues: descending for [`top_k`], ascending for [`bottom_k`].
    pub fn values(&self) -> ArrayView1<'_, f64> {
        self.values.view()
    }

    /// The unit eigenvectors (n x k, column j for value j).
    pub fn vectors(&self) -> ArrayView2<'_, f64> {
        self.vectors.view()
    }

    /// True residual norms `‖A v_j - λ_j v_j‖`, one extra application each.
    pub fn residuals(&self) -> ArrayView1<'_, f64> {
        self.residuals.view()
    }

    /// The convergence threshold on the residuals, `tol · max|θ|`.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Operator applications used, the residual checks included.
    pub fn applications(&self) -> usize {
        self.applications
    }

    /// Thick restarts done.
    pub fn restarts(&self) -> usize {
        self.restarts
    }

    /// Whether every residual is at most [`Eigenpairs::threshold`].
    pub fn converged(&self) -> bool {
        self.converged
    }

    /// The pairs one by one.
    pub fn pairs(&self) -> Vec<Eigenpair> {
        (0..self.values.len())
            .map(|j| Eigenpair {
                value: self.values[j],
                vector: self.vectors.column(j).to_owned(),
                residual: self.residuals[j],
            })
            .collect()
    }
}

/// The largest and the smallest (most negative) eigenvalue of an operator,
/// from [`extremes`].
#[derive(Clone, Debug, PartialEq)]
pub struct Extremes {
    max: Eigenpair,
    min: Eigenpair,
    threshold: f64,
    applications: usize,
    restarts: usize,
    converged: bool,
}

impl Extremes {
    /// The largest (algebraic) eigenpair.
    pub fn max(&self) -> &Eigenpair {
        &self.max
    }

    /// The smallest (algebraic) eigenpair: negative at a saddle.
    pub fn min(&self) -> &Eigenpair {
        &self.min
    }

    /// `λ_min / λ_max` (the negative-to-positive curvature ratio of a
    /// Hessian; 0 when `λ_max` is 0).
    pub fn ratio(&self) -> f64 {
        if self.max.value == 0.0 {
            0.0
        } else {
            self.min.value / self.max.value
        }
    }

    /// Whether the operator is positive semidefinite up to `rtol`:
    /// `λ_min >= -rtol · max(|λ_max|, |λ_min|)` (a minimum rather than a
    /// saddle, for a Hessian at a critical point).
    pub fn is_positive_semidefinite(&self, rtol: f64) -> bool {
        let scale = self.max.value.abs().max(self.min.value.abs());
        self.min.value >= -rtol * scale
    }

    /// The convergence threshold on the residuals, `tol · max|θ|`.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Operator applications used, the residual checks included.
    pub fn applications(&self) -> usize {
        self.applications
    }

    /// Thick restarts done.
    pub fn restarts(&self) -> usize {
        self.restarts
    }

    /// Whether both residuals are at most [`Extremes::threshold`].
    pub fn converged(&self) -> bool {
        self.converged
    }
}

/// Which Ritz pairs an eigensolver wants.
#[derive(Clone, Copy, Debug)]
enum Which {
    Largest(usize),
    Smallest(usize),
    /// The largest and the smallest.
    Both,
}

impl Which {
    fn count(self, n: usize) -> usize {
        match self {
            Self::Largest(k) | Self::Smallest(k) => k,
            Self::Both => n.min(2),
        }
    }

    /// Indices (into `m` ascending Ritz values) of the wanted pairs, in
    /// reporting order.
    fn wanted(self, m: usize) -> Vec<usize> {
        match self {
            Self::Largest(k) => (m - k..m).rev().collect(),
            Self::Smallest(k) => (0..k).collect(),
            Self::Both if m >= 2 => vec![m - 1, 0],
            Self::Both => vec![0],
        }
    }

    /// Indices of the `keep` Ritz pairs kept at a thick restart.
    fn kept(self, m: usize, keep: usize) -> Vec<usize> {
        match self {
            Self::Largest(_) => (m - keep..m).collect(),
            Self::Smallest(_) => (0..keep).collect(),
            Self::Both => {
                let low = keep / 2;
                (0..low).chain(m - (keep - low)..m).collect()
            }
        }
    }
}

/// The `k` largest (algebraic) eigenvalues of `op` and their eigenvectors.
///
/// Thick-restart Lanczos (Wu & Simon 2000, in Stewart's Krylov–Schur form)
/// with full reorthogonalisation: the basis grows to
/// [`LanczosParams::steps`] vectors, then is compressed to the wanted Ritz
/// vectors and about half the free room (the next-best Ritz vectors), which
/// keeps memory at `steps · n` numbers however slow the convergence. Every 5
/// steps it checks the residual estimates `|β s_m|` of the wanted Ritz
/// pairs and stops when all are `<= tol · max|θ|`, or after
/// [`LanczosParams::max_applications`]. The true residuals are then computed
/// with one extra application per eigenvector and reported with
/// [`Eigenpairs::converged`].
///
/// On an invariant subspace (breakdown) it continues from a fresh random
/// vector orthogonal to the basis, and stops at a breakdown only when the
/// wanted values did not change since the previous one; so an eigenvalue of
/// multiplicity > 1 is reported as often as it occurs when the Krylov space
/// breaks down (as for an operator with few distinct eigenvalues). Like every
/// single-vector Krylov method, it may otherwise find only one copy of an
/// exactly repeated eigenvalue.
///
/// Errors when `k` is outside `1..=n`, when `steps <= k < n` (no room to
/// restart), when `max_applications < min(steps, n)`, and on a failing or
/// non-finite operator application.
pub fn top_k<O: Operator + ?Sized>(op: &O, k: usize, params: &LanczosParams) -> Result<Eigenpairs> {
    pairs(op, Which::Largest(k), params)
}

/// The `k` smallest (algebraic, i.e. most negative first) eigenvalues of
/// `op`, ascending, and their eigenvectors; as [`top_k`] otherwise.
pub fn bottom_k<O: Operator + ?Sized>(
    op: &O,
    k: usize,
    params: &LanczosParams,
) -> Result<Eigenpairs> {
    pairs(op, Which::Smallest(k), params)
}

fn pairs<O: Operator + ?Sized>(op: &O, which: Which, params: &LanczosParams) -> Result<Eigenpairs> {
    let (Which::Largest(k) | Which::Smallest(k)) = which else {
        return Err(SpectrumError::invalid("which", "both ends", "one end"));
    };
    let n = operator_dim(op)?;
    if k == 0 || k > n {
        return Err(SpectrumError::invalid(
            "k",
            k,
            format!("1 <= k <= {n} (the operator's dimension)"),
        ));
    }
    let s = krylov_schur(op, which, params)?;
    Ok(Eigenpairs {
        values: Array1::from(s.values),
        vectors: s.vectors,
        residuals: Array1::from(s.residuals),
        threshold: s.threshold,
        applications: s.applications,
        restarts: s.restarts,
        converged: s.converged,
    })
}

/// The largest and the smallest (algebraic) eigenvalue of `op` with their
/// eigenvectors and residuals, from one thick-restart Lanczos run that
/// watches both ends of the spectrum (see [`top_k`]): a negative smallest
/// value beyond tolerance marks a saddle rather than a minimum
/// ([`Extremes::is_positive_semidefinite`]).
pub fn extremes<O: Operator + ?Sized>(op: &O, params: &LanczosParams) -> Result<Extremes> {
    let s = krylov_schur(op, Which::Both, params)?;
    let pair = |j: usize| Eigenpair {
        value: s.values[j],
        vector: s.vectors.column(j).to_owned(),
        residual: s.residuals[j],
    };
    let max = pair(0);
    let min = if s.values.len() > 1 {
        pair(1)
    } else {
        max.clone()
    };
    Ok(Extremes {
        max,
        min,
        threshold: s.threshold,
        applications: s.applications,
        restarts: s.restarts,
        converged: s.converged,
    })
}

struct Solution {
    values: Vec<f64>,
    vectors: Array2<f64>,
    residuals: Vec<f64>,
    threshold: f64,
    applications: usize,
    restarts: usize,
    converged: bool,
}

fn krylov_schur<O: Operator + ?Sized>(
    op: &O,
    which: Which,
    params: &LanczosParams,
) -> Result<Solution> {
    params.check()?;
    let n = operator_dim(op)?;
    let want = which.count(n);
    let cap = params.steps.min(n);
    if cap < n && cap <= want {
        return Err(SpectrumError::invalid(
            "steps",
            params.steps,
            format!("more than the {want} wanted eigenpairs (room to restart), or at least the dimension {n}"),
        ));
    }
    if params.max_applications < cap {
        return Err(SpectrumError::invalid(
            "max_applications",
            params.max_applications,
            format!("at least min(steps, n) = {cap}"),
        ));
    }
    // Ritz vectors kept at a restart: the wanted ones and half the free room.
    let keep = if cap > want {
        want + (cap - want) / 2
    } else {
        want
    };
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    // Basis vectors are rows; h is the projected matrix Qᵀ A Q, kept
    // explicitly (tridiagonal between restarts, arrowhead after one).
    let mut q = Array2::<f64>::zeros((cap, n));
    let mut h = Array2::<f64>::zeros((cap, cap));
    let mut w = Array1::<f64>::zeros(n);
    let start = random_orthogonal(&mut rng, q.slice(s![..0, ..]))?;
    q.row_mut(0).assign(&start);
    let mut m = 1;
    let mut applications = 0;
    let mut restarts = 0;
    let mut since_check = 0;
    let mut scale = 0.0_f64;
    let mut last_breakdown: Option<Vec<f64>> = None;
    loop {
        let j = m - 1;
        apply_counted(op, q.row(j), w.view_mut(), &mut applications)?;
        scale = scale.max(norm(w.view()));
        let coef = orthogonalise(q.slice(s![..m, ..]), &mut w);
        for (i, &c) in coef.iter().enumerate() {
            h[[i, j]] = c;
            h[[j, i]] = c;
        }
        let f_norm = norm(w.view());
        let breakdown = f_norm <= BREAKDOWN_RTOL * scale;
        since_check += 1;
        let out_of_budget = applications >= params.max_applications;
        if m >= want && (since_check >= CHECK_EVERY || m == cap || breakdown || out_of_budget) {
            since_check = 0;
            let (theta, sv) = eigh(h.slice(s![..m, ..m]).to_owned(), "Rayleigh-Ritz")?;
            let beta = if breakdown { 0.0 } else { f_norm };
            let ritz_scale = theta
                .iter()
                .fold(0.0_f64, |a, t| a.max(t.abs()))
                .max(f64::MIN_POSITIVE);
            let wanted = which.wanted(m);
            let estimate = wanted
                .iter()
                .fold(0.0_f64, |a, &i| a.max((beta * sv[[m - 1, i]]).abs()));
            let whole_space = m == n;
            let converged = whole_space || estimate <= params.tol * ritz_scale;
            let stop = if breakdown && !whole_space {
                // Stop only when a fresh start changed nothing at the wanted end.
                let values: Vec<f64> = wanted.iter().map(|&i| theta[i]).collect();
                let same = last_breakdown.as_ref().is_some_and(|last| {
                    last.iter()
                        .zip(&values)
                        .all(|(a, b)| (a - b).abs() <= params.tol * ritz_scale)
                });
                last_breakdown = Some(values);
                converged && same
            } else {
                converged
            };
            tracing::debug!(
                dim = m,
                applications,
                restarts,
                estimate,
                threshold = params.tol * ritz_scale,
                breakdown,
                "Lanczos check"
            );
            if stop || out_of_budget {
                return finish(
                    op,
                    q.slice(s![..m, ..]),
                    &theta,
                    &sv,
                    &wanted,
                    params.tol * ritz_scale,
                    applications,
                    restarts,
                );
            }
            if m == cap {
                restarts += 1;
                let kept = which.kept(m, keep);
                let s_kept = sv.select(Axis(1), &kept);
                let y = s_kept.t().dot(&q.slice(s![..m, ..]));
                q.slice_mut(s![..keep, ..]).assign(&y);
                h.fill(0.0);
                for (a, &i) in kept.iter().enumerate() {
                    h[[a, a]] = theta[i];
                }
                m = keep;
            }
        }
        // The residual is orthogonal to the old basis, hence to the kept
        // Ritz vectors: the space stays a Krylov space, and the couplings
        // `β s_m` reappear as the next column's projection coefficients.
        let next = if breakdown {
            random_orthogonal(&mut rng, q.slice(s![..m, ..]))?
        } else {
            &w / f_norm
        };
        q.row_mut(m).assign(&next);
        m += 1;
    }
}

/// Ritz vectors of the wanted pairs and their true residuals.
#[allow(clippy::too_many_arguments)]
fn finish<O: Operator + ?Sized>(
    op: &O,
    q: ArrayView2<'_, f64>,
    theta: &Array1<f64>,
    sv: &Array2<f64>,
    wanted: &[usize],
    threshold: f64,
    mut applications: usize,
    restarts: usize,
) -> Result<Solution> {
    let n = q.ncols();
    let s_wanted = sv.select(Axis(1), wanted);
    let mut vectors = q.t().dot(&s_wanted);
    let mut values = Vec::with_capacity(wanted.len());
    let mut residuals = Vec::with_capacity(wanted.len());
    let mut av = Array1::<f64>::zeros(n);
    for (c, &i) in wanted.iter().enumerate() {
        let mut v = vectors.column_mut(c);
        let len = norm(v.view());
        if len > 0.0 {
            v.mapv_inplace(|x| x / len);
        }
        apply_counted(op, v.view(), av.view_mut(), &mut applications)?;
        av.scaled_add(-theta[i], &v);
        values.push(theta[i]);
        residuals.push(norm(av.view()));
    }
    let converged = residuals.iter().all(|&r| r <= threshold);
    Ok(Solution {
        values,
        vectors,
        residuals,
        threshold,
        applications,
        restarts,
        converged,
    })
}

/// A random unit vector (standard normal entries) orthogonal to the rows of `basis`.
fn random_orthogonal(rng: &mut ChaCha8Rng, basis: ArrayView2<'_, f64>) -> Result<Array1<f64>> {
    let n = basis.ncols();
    for _ in 0..32 {
        let mut v = random_vector(rng, n, ProbeDistribution::Gaussian);
        if basis.nrows() > 0 {
            orthogonalise(basis, &mut v);
        }
        let len = norm(v.view());
        if len > 1e-8 * (n as f64).sqrt() {
            return Ok(v / len);
        }
    }
    Err(SpectrumError::Numerical {
        step: "random start vector",
        reason: format!(
            "no vector orthogonal to the {} basis vectors in dimension {n}",
            basis.nrows()
        ),
    })
}
