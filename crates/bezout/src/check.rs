//! Numeric check of Proposition 1 on small polynomial networks.
//!
//! Random inputs `x_i ~ U(-1, 1)^d` and targets `y_i ~ U(-1, 1)`; from random
//! starts (`w ~ N(0, 1/fan_in)`), Levenberg-Marquardt with the analytic
//! Jacobian drives the residual `r = f(w; X) - y` to zero. The step is
//! `delta = -J^T (J J^T + lambda I)^{-1} r`, which equals
//! `-(J^T J + lambda I)^{-1} J^T r` but solves an `N x N` system; as
//! `lambda -> 0` it becomes the minimum-norm Gauss-Newton step, which
//! converges quadratically onto the solution set when `J` has rank `N`.
//!
//! At each solution the check measures: the residual norm; the rank of `J`
//! (singular values above `max(N, W) eps sigma_max`); and the eigenvalues of
//! the exact Hessian of `1/2 |r|^2`, counting as zero those with
//! `|lambda| <= zero_tol * lambda_max`. At zero residual the Hessian is
//! `J^T J`, of rank `N`, so exactly `W - N` eigenvalues should vanish.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use ndarray_linalg::{EigValsh, Solve, SVD, UPLO};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::counting::Architecture;
use crate::error::{BezoutError, Result};
use crate::magnitude::Magnitude;
use crate::polynet::{Activation, PolyNet};

/// Where the targets `y_i` come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Targets {
    /// `y_i ~ U(-1, 1)`, independent of the inputs.
    #[default]
    Uniform,
    /// `y_i = f(w*; x_i)` for a random "teacher" `w*` of the same network
    /// (drawn like a start): the system is consistent by construction, which
    /// the square case needs (a random square system may have no real zero).
    Teacher,
}

/// Parameters of a numeric check.
#[derive(Debug, Clone)]
pub struct NumericCheckParams {
    net: PolyNet,
    n: usize,
    targets: Targets,
    starts: usize,
    seed: u64,
    max_iter: usize,
    residual_tol: f64,
    zero_tol: f64,
}

impl NumericCheckParams {
    /// Check `net` on `n` random data points, 8 starts, seed 0.
    pub fn new(net: PolyNet, n: usize) -> Self {
        Self {
            net,
            n,
            targets: Targets::Uniform,
            starts: 8,
            seed: 0,
            max_iter: 300,
            residual_tol: 1e-10,
            zero_tol: 1e-12,
        }
    }

    /// Where the targets come from.
    pub fn targets(mut self, targets: Targets) -> Self {
        self.targets = targets;
        self
    }

    /// Number of random starts.
    pub fn starts(mut self, starts: usize) -> Self {
        self.starts = starts;
        self
    }

    /// Seed of the data and of the starts.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Levenberg-Marquardt iterations per start.
    pub fn max_iter(mut self, max_iter: usize) -> Self {
        self.max_iter = max_iter;
        self
    }

    /// A start counts as a solution when `|r|_2` falls below this.
    pub fn residual_tol(mut self, tol: f64) -> Self {
        self.residual_tol = tol;
        self
    }

    /// Hessian eigenvalues with `|lambda| <= zero_tol * lambda_max` count as zero.
    pub fn zero_tol(mut self, tol: f64) -> Self {
        self.zero_tol = tol;
        self
    }

    fn validate(&self) -> Result<()> {
        if self.n == 0 {
            return Err(BezoutError::invalid("n", self.n, "at least one data point"));
        }
        if self.starts == 0 {
            return Err(BezoutError::invalid(
                "starts",
                self.starts,
                "at least one start",
            ));
        }
        for (field, v) in [
            ("residual_tol", self.residual_tol),
            ("zero_tol", self.zero_tol),
        ] {
            if !(v.is_finite() && v > 0.0 && v < 1.0) {
                return Err(BezoutError::invalid(field, v, "a tolerance in (0, 1)"));
            }
        }
        Ok(())
    }

    /// Random data for this seed: `(x, y)`.
    pub fn data(&self) -> Result<(Array2<f64>, Array1<f64>)> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let d = self.net.sizes()[0];
        let x = Array2::from_shape_fn((self.n, d), |_| rng.random_range(-1.0..1.0));
        let y = match self.targets {
            Targets::Uniform => Array1::from_shape_fn(self.n, |_| rng.random_range(-1.0..1.0)),
            Targets::Teacher => self
                .net
                .outputs(self.random_weights(u64::MAX)?.view(), x.view()),
        };
        Ok((x, y))
    }

    fn start(&self, index: usize) -> Result<Array1<f64>> {
        self.random_weights(index as u64 + 1)
    }

    fn random_weights(&self, stream: u64) -> Result<Array1<f64>> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(stream);
        let mut w = Array1::zeros(self.net.n_params());
        let sizes = self.net.sizes();
        for (l, &fan_in) in sizes[..sizes.len() - 1].iter().enumerate() {
            let (wo, bo) = self.net.offsets(l);
            let end = self.net.offsets(l + 1).0;
            let normal = Normal::new(0.0, (1.0 / fan_in as f64).sqrt())
                .map_err(|_| BezoutError::invalid("sizes", fan_in, "a positive fan-in"))?;
            for v in w.slice_mut(ndarray::s![wo..bo]).iter_mut() {
                *v = normal.sample(&mut rng);
            }
            for v in w.slice_mut(ndarray::s![bo..end]).iter_mut() {
                *v = 0.5 * normal.sample(&mut rng);
            }
        }
        Ok(w)
    }

    /// Run every start and check every solution found.
    pub fn run(&self) -> Result<CheckReport> {
        self.run_with_progress(|_| {})
    }

    /// [`Self::run`], calling `progress(start)` after each start.
    pub fn run_with_progress(&self, mut progress: impl FnMut(usize)) -> Result<CheckReport> {
        self.validate()?;
        let (x, y) = self.data()?;
        let w_count = self.net.n_params();
        let generic_rank = self.generic_rank(x.view())?;
        let mut solutions = Vec::new();
        let mut failed = 0;
        for s in 0..self.starts {
            let (w, res, iters) =
                levenberg_marquardt(&self.net, x.view(), y.view(), self.start(s)?, self.max_iter)?;
            if res < self.residual_tol {
                solutions.push(self.examine(w, res, iters, x.view(), y.view())?);
            } else {
                tracing::debug!(
                    start = s,
                    residual = res,
                    "start did not reach zero residual"
                );
                failed += 1;
            }
            progress(s);
        }
        Ok(CheckReport {
            w: w_count,
            n: self.n,
            starts: self.starts,
            generic_rank,
            failed,
            solutions,
        })
    }

    /// Rank of the Jacobian at a random point; an error if it is below `N`.
    fn generic_rank(&self, x: ArrayView2<'_, f64>) -> Result<usize> {
        let w = self.net.n_params();
        let r = rank(
            &self
                .net
                .outputs_and_jacobian(self.random_weights(u64::MAX - 1)?.view(), x)
                .1,
        )?
        .0;
        if self.n > r {
            return Err(BezoutError::RankDeficientNetwork {
                n: self.n,
                rank: r,
                w,
            });
        }
        Ok(r)
    }

    fn examine(
        &self,
        w: Array1<f64>,
        residual: f64,
        iterations: usize,
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, f64>,
    ) -> Result<Solution> {
        let (_, jac) = self.net.outputs_and_jacobian(w.view(), x);
        let (jac_rank, sigma) = rank(&jac)?;
        let hess = self.net.loss_hessian(w.view(), x, y);
        let eig = hess
            .eigvalsh(UPLO::Lower)
            .map_err(|source| BezoutError::Linalg {
                what: "computing the Hessian's eigenvalues",
                source,
            })?;
        let lmax = eig.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let cut = self.zero_tol * lmax;
        let zero: Vec<f64> = eig.iter().copied().filter(|v| v.abs() <= cut).collect();
        let rest: Vec<f64> = eig.iter().copied().filter(|v| v.abs() > cut).collect();
        Ok(Solution {
            weights: w,
            residual,
            iterations,
            jacobian_rank: jac_rank,
            sigma_min: sigma.iter().copied().fold(f64::INFINITY, f64::min),
            sigma_max: sigma.iter().copied().fold(0.0, f64::max),
            zero_eigenvalues: zero.len(),
            max_zero_eigenvalue: zero.iter().fold(0.0f64, |m, v| m.max(v.abs())) / lmax,
            min_positive_eigenvalue: rest.iter().copied().fold(f64::INFINITY, f64::min) / lmax,
            negative_eigenvalues: rest.iter().filter(|&&v| v < 0.0).count(),
            lambda_max: lmax,
        })
    }
}

/// Rank of a matrix (singular values above `max(rows, cols) eps sigma_max`) and its singular values.
fn rank(m: &Array2<f64>) -> Result<(usize, Array1<f64>)> {
    let (_, s, _) = m.svd(false, false).map_err(|source| BezoutError::Linalg {
        what: "computing the Jacobian's singular values",
        source,
    })?;
    let smax = s.iter().fold(0.0f64, |a, &b| a.max(b));
    let tol = m.nrows().max(m.ncols()) as f64 * f64::EPSILON * smax;
    Ok((s.iter().filter(|&&v| v > tol).count(), s))
}

fn norm(v: &Array1<f64>) -> f64 {
    v.dot(v).sqrt()
}

/// Levenberg-Marquardt from `w`: returns the final point, `|r|_2` and the iterations used.
fn levenberg_marquardt(
    net: &PolyNet,
    x: ArrayView2<'_, f64>,
    y: ArrayView1<'_, f64>,
    mut w: Array1<f64>,
    max_iter: usize,
) -> Result<(Array1<f64>, f64, usize)> {
    let (f, mut jac) = net.outputs_and_jacobian(w.view(), x);
    let mut r = &f - &y;
    let mut res = norm(&r);
    let mut lambda = {
        let jjt = jac.dot(&jac.t());
        1e-3 * jjt.diag().iter().fold(0.0f64, |m, &v| m.max(v)).max(1e-12)
    };
    let mut it = 0;
    while it < max_iter && res > 1e-14 && lambda < 1e20 {
        it += 1;
        let mut a = jac.dot(&jac.t());
        a.diag_mut().mapv_inplace(|v| v + lambda);
        let step = match a.solve(&r) {
            Ok(u) => -jac.t().dot(&u),
            Err(_) => {
                lambda *= 10.0;
                continue;
            }
        };
        let trial = &w + &step;
        let (f_new, jac_new) = net.outputs_and_jacobian(trial.view(), x);
        let r_new = &f_new - &y;
        let res_new = norm(&r_new);
        if res_new.is_finite() && res_new < res {
            w = trial;
            r = r_new;
            res = res_new;
            jac = jac_new;
            lambda = (lambda * 0.2).max(1e-300);
        } else {
            lambda *= 8.0;
        }
    }
    Ok((w, res, it))
}

/// What the check measured at one zero-error solution.
#[derive(Debug, Clone)]
pub struct Solution {
    weights: Array1<f64>,
    residual: f64,
    iterations: usize,
    jacobian_rank: usize,
    sigma_min: f64,
    sigma_max: f64,
    zero_eigenvalues: usize,
    max_zero_eigenvalue: f64,
    min_positive_eigenvalue: f64,
    negative_eigenvalues: usize,
    lambda_max: f64,
}

impl Solution {
    /// The solution's weights.
    pub fn weights(&self) -> &Array1<f64> {
        &self.weights
    }
    /// `|f(w; X) - y|_2`.
    pub fn residual(&self) -> f64 {
        self.residual
    }
    /// Levenberg-Marquardt iterations used.
    pub fn iterations(&self) -> usize {
        self.iterations
    }
    /// Numerical rank of the Jacobian.
    pub fn jacobian_rank(&self) -> usize {
        self.jacobian_rank
    }
    /// Smallest and largest singular values of the Jacobian.
    pub fn sigma_range(&self) -> (f64, f64) {
        (self.sigma_min, self.sigma_max)
    }
    /// Number of Hessian eigenvalues counted as zero.
    pub fn zero_eigenvalues(&self) -> usize {
        self.zero_eigenvalues
    }
    /// Largest `|lambda| / lambda_max` among the zero eigenvalues (0 if none).
    pub fn max_zero_eigenvalue(&self) -> f64 {
        self.max_zero_eigenvalue
    }
    /// Smallest `lambda / lambda_max` among the others (`inf` if none).
    pub fn min_positive_eigenvalue(&self) -> f64 {
        self.min_positive_eigenvalue
    }
    /// Number of clearly negative eigenvalues (should be 0 at a minimum).
    pub fn negative_eigenvalues(&self) -> usize {
        self.negative_eigenvalues
    }
    /// Largest Hessian eigenvalue magnitude.
    pub fn lambda_max(&self) -> f64 {
        self.lambda_max
    }
    /// Orders of magnitude between the smallest positive and the largest zero eigenvalue.
    pub fn gap_decades(&self) -> f64 {
        (self.min_positive_eigenvalue / self.max_zero_eigenvalue.max(f64::MIN_POSITIVE)).log10()
    }
}

/// The outcome of a numeric check.
#[derive(Debug, Clone)]
pub struct CheckReport {
    w: usize,
    n: usize,
    starts: usize,
    generic_rank: usize,
    failed: usize,
    solutions: Vec<Solution>,
}

impl CheckReport {
    /// Number of weights `W`.
    pub fn w(&self) -> usize {
        self.w
    }
    /// Number of data points `N`.
    pub fn n(&self) -> usize {
        self.n
    }
    /// Number of starts tried.
    pub fn starts(&self) -> usize {
        self.starts
    }
    /// Rank of the Jacobian at a random point (the most `N` can be).
    pub fn generic_rank(&self) -> usize {
        self.generic_rank
    }
    /// Starts that did not reach the residual tolerance.
    pub fn failed(&self) -> usize {
        self.failed
    }
    /// The solutions found, each checked.
    pub fn solutions(&self) -> &[Solution] {
        &self.solutions
    }
    /// Whether every solution has rank `N`, `W - N` zero eigenvalues and no negative ones.
    pub fn all_degenerate_as_predicted(&self) -> bool {
        !self.solutions.is_empty()
            && self.solutions.iter().all(|s| {
                s.jacobian_rank == self.n
                    && s.zero_eigenvalues == self.w - self.n
                    && s.negative_eigenvalues == 0
            })
    }
}

/// Parameters of the square case: `N = W` data points, many starts, distinct real solutions.
#[derive(Debug, Clone)]
pub struct SquareCountParams {
    net: PolyNet,
    starts: usize,
    seed: u64,
    max_iter: usize,
    residual_tol: f64,
    distinct_tol: f64,
}

impl SquareCountParams {
    /// The square system of `net` (`N = W`), 200 starts, seed 0.
    pub fn new(net: PolyNet) -> Self {
        Self {
            net,
            starts: 200,
            seed: 0,
            max_iter: 300,
            residual_tol: 1e-10,
            distinct_tol: 1e-6,
        }
    }

    /// The tiny default network: 2 inputs, 2 hidden units, cubic activation
    /// `z + z^2/2 + z^3/6`, no output bias (W = N = 8).
    pub fn tiny() -> Result<Self> {
        Ok(Self::new(PolyNet::new(
            2,
            &[2],
            Activation::cubic(),
            false,
        )?))
    }

    /// Number of random starts.
    pub fn starts(mut self, starts: usize) -> Self {
        self.starts = starts;
        self
    }

    /// Seed of the data and of the starts.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Two solutions are the same when `|u - v| <= distinct_tol (1 + |u|)`.
    pub fn distinct_tol(mut self, tol: f64) -> Self {
        self.distinct_tol = tol;
        self
    }

    /// Run the starts and count distinct solutions.
    pub fn run(&self) -> Result<SquareReport> {
        self.run_with_progress(|_| {})
    }

    /// [`Self::run`], calling `progress(start)` after each start.
    pub fn run_with_progress(&self, mut progress: impl FnMut(usize)) -> Result<SquareReport> {
        if !(self.distinct_tol.is_finite() && self.distinct_tol > 0.0) {
            return Err(BezoutError::invalid(
                "distinct_tol",
                self.distinct_tol,
                "a tolerance > 0",
            ));
        }
        let w = self.net.n_params();
        let check = NumericCheckParams::new(self.net.clone(), w)
            .starts(self.starts)
            .seed(self.seed)
            .max_iter(self.max_iter)
            .residual_tol(self.residual_tol)
            .targets(Targets::Teacher);
        check.validate()?;
        let (x, y) = check.data()?;
        check.generic_rank(x.view())?;
        let mut points: Vec<Array1<f64>> = Vec::new();
        let mut orbits: Vec<Array1<f64>> = Vec::new();
        let mut converged = 0;
        for s in 0..self.starts {
            let (sol, res, _) = levenberg_marquardt(
                &self.net,
                x.view(),
                y.view(),
                check.start(s)?,
                self.max_iter,
            )?;
            progress(s);
            if res >= self.residual_tol {
                continue;
            }
            let (_, jac) = self.net.outputs_and_jacobian(sol.view(), x.view());
            if rank(&jac)?.0 < w {
                tracing::debug!(start = s, "singular solution skipped (not isolated)");
                continue;
            }
            converged += 1;
            let same = |a: &Array1<f64>, b: &Array1<f64>| {
                norm(&(a - b)) <= self.distinct_tol * (1.0 + norm(a))
            };
            if !points.iter().any(|p| same(p, &sol)) {
                let canon = self.net.canonical(sol.view());
                if !orbits.iter().any(|o| same(o, &canon)) {
                    orbits.push(canon);
                }
                points.push(sol);
            }
        }
        let sizes: Vec<u64> = self.net.sizes().iter().map(|&s| s as u64).collect();
        let degrees = Architecture::mlp(&sizes)?.degrees_uniform(self.net.activation().degree())?;
        let d = degrees.in_weights().clone();
        let l = (sizes.len() - 1) as u64;
        let k = num_bigint::BigUint::from(self.net.activation().degree());
        Ok(SquareReport {
            w,
            starts: self.starts,
            converged,
            distinct: points.len(),
            orbits: orbits.len(),
            symmetry_order: self.net.symmetry_order(),
            degree: d.clone(),
            bezout: Magnitude::pow(&d, w as u64),
            real_estimate: Magnitude::sqrt_pow(&d, w as u64),
            paper_bezout: Magnitude::pow(&k, l * w as u64),
        })
    }
}

/// The outcome of the square case.
#[derive(Debug, Clone)]
pub struct SquareReport {
    w: usize,
    starts: usize,
    converged: usize,
    distinct: usize,
    orbits: usize,
    symmetry_order: f64,
    degree: num_bigint::BigUint,
    bezout: Magnitude,
    real_estimate: Magnitude,
    paper_bezout: Magnitude,
}

impl SquareReport {
    /// `W = N`.
    pub fn w(&self) -> usize {
        self.w
    }
    /// Starts tried.
    pub fn starts(&self) -> usize {
        self.starts
    }
    /// Starts that reached a nonsingular zero-residual solution.
    pub fn converged(&self) -> usize {
        self.converged
    }
    /// Distinct solution points (tolerance on the weight vector).
    pub fn distinct(&self) -> usize {
        self.distinct
    }
    /// Distinct solutions modulo the network's discrete symmetries.
    pub fn orbits(&self) -> usize {
        self.orbits
    }
    /// Order of the symmetry group (unit permutations, and sign flips for odd or even activations).
    pub fn symmetry_order(&self) -> f64 {
        self.symmetry_order
    }
    /// Degree `D` of each equation in the weights.
    pub fn degree(&self) -> &num_bigint::BigUint {
        &self.degree
    }
    /// Bezout bound `D^W` on isolated complex solutions.
    pub fn bezout(&self) -> &Magnitude {
        &self.bezout
    }
    /// Kostlan's expected real count for a random system, `sqrt(D^W)`.
    pub fn real_estimate(&self) -> &Magnitude {
        &self.real_estimate
    }
    /// The paper's `k^(L N)`.
    pub fn paper_bezout(&self) -> &Magnitude {
        &self.paper_bezout
    }
}
