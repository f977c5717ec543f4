//! Stochastic Lanczos quadrature (SLQ): the spectral density of a large
//! symmetric operator (Golub & Meurant; Lin, Saad & Yang 2016; Ghorbani,
//! Krishnan & Xiao 2019; PyHessian).
use ndarray::{Array1, ArrayView1};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SpectrumError};
use crate::lanczos::{lanczos, operator_dim, Quadrature};
use crate::operator::{check_finite, Operator};
use crate::probe::{random_vector, ProbeDistribution};

/// Parameters of stochastic Lanczos quadrature; validated by [`SlqParams::run`].
///
/// ```
/// use landscape_spectrum::{DiagonalOperator, SlqParams};
/// use ndarray::Array1;
///
/// let op = DiagonalOperator::new(Array1::linspace(-1.0, 4.0, 200))?;
/// let density = SlqParams::default().runs(4).steps(30).run(&op)?;
/// // tr(A)/n = 1.5 (the mean eigenvalue), estimated from 4 random vectors.
/// assert!((density.moment(1) - 1.5).abs() < 0.3);
/// let grid = density.grid(500, 0.5)?;
/// let smooth = density.smoothed(grid.view(), 0.05)?;
/// assert!((smooth.integral() - 1.0).abs() < 1e-3);
/// # Ok::<(), landscape_spectrum::SpectrumError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SlqParams {
    runs: usize,
    steps: usize,
    seed: u64,
    distribution: ProbeDistribution,
}

impl Default for SlqParams {
    fn default() -> Self {
        Self {
            runs: 10,
            steps: 100,
            seed: 0,
            distribution: ProbeDistribution::Rademacher,
        }
    }
}

impl SlqParams {
    /// The defaults: 10 runs of 100 steps, seed 0, Rademacher start vectors.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of independent random start vectors `n_v` (default 10).
    pub fn runs(mut self, runs: usize) -> Self {
        self.runs = runs;
        self
    }

    /// Lanczos steps `m` per run (default 100; capped at the dimension):
    /// each run's quadrature integrates polynomials of degree `<= 2m - 1`
    /// exactly.
    pub fn steps(mut self, steps: usize) -> Self {
        self.steps = steps;
        self
    }

    /// Seed of the start vectors (ChaCha8; default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Distribution of the start vectors' entries before normalisation
    /// (default [`ProbeDistribution::Rademacher`], as PyHessian). Both have
    /// `E[v vᵀ] = I / n` once normalised.
    pub fn distribution(mut self, distribution: ProbeDistribution) -> Self {
        self.distribution = distribution;
        self
    }

    /// Runs `runs` Lanczos iterations (full reorthogonalisation), each from
    /// a random unit vector `v`, and keeps each run's Gauss quadrature of
    /// the spectral measure of `v`: nodes = Ritz values, weights = squared
    /// first components of the tridiagonal's eigenvectors. Uses
    /// `runs · min(steps, n)` operator applications (fewer after a breakdown).
    pub fn run<O: Operator + ?Sized>(&self, op: &O) -> Result<Density> {
        if self.runs == 0 {
            return Err(SpectrumError::invalid("runs", self.runs, "at least 1"));
        }
        if self.steps == 0 {
            return Err(SpectrumError::invalid("steps", self.steps, "at least 1"));
        }
        let n = operator_dim(op)?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut quadratures = Vec::with_capacity(self.runs);
        let mut applications = 0;
        for run in 0..self.runs {
            let start = random_vector(&mut rng, n, self.distribution);
            let decomposition = lanczos(op, start, self.steps, false)?;
            applications += decomposition.applications();
            tracing::debug!(
                run,
                steps = decomposition.len(),
                breakdown = decomposition.breakdown(),
                "SLQ run"
            );
            quadratures.push(decomposition.quadrature()?);
        }
        Ok(Density {
            dim: n,
            quadratures,
            applications,
        })
    }
}

/// The spectral density estimate of [`SlqParams::run`]: one Gauss
/// quadrature rule per run. The density estimate is
/// `φ(t) = (1/n_v) Σ_runs Σ_k w_k δ(t - θ_k)`, whose integral against `f`
/// estimates `tr f(A) / n`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Density {
    dim: usize,
    quadratures: Vec<Quadrature>,
    applications: usize,
}

impl Density {
    /// The operator's dimension `n`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Each run's nodes and weights.
    pub fn quadratures(&self) -> &[Quadrature] {
        &self.quadratures
    }

    /// Operator applications used in all.
    pub fn applications(&self) -> usize {
        self.applications
    }

    /// The estimate of `tr(A^p) / n`: the mean over runs of `Σ_k w_k θ_k^p`
    /// (1 for `p = 0`). Each run's term is exactly `vᵀ A^p v` for
    /// `p <= 2m - 1`, an unbiased estimate of `tr(A^p) / n`.
    pub fn moment(&self, p: u32) -> f64 {
        let runs = self.quadratures.len() as f64;
        self.quadratures.iter().map(|q| q.moment(p)).sum::<f64>() / runs
    }

    /// The moments `p = 0 ..= max_p`, as [`Density::moment`].
    pub fn moments(&self, max_p: u32) -> Array1<f64> {
        (0..=max_p).map(|p| self.moment(p)).collect()
    }

    /// The standard error of [`Density::moment`] over the runs (sample
    /// standard deviation over `√runs`); `None` with a single run.
    pub fn moment_standard_error(&self, p: u32) -> Option<f64> {
        let runs = self.quadratures.len();
        if runs < 2 {
            return None;
        }
        let mean = self.moment(p);
        let variance = self
            .quadratures
            .iter()
            .map(|q| (q.moment(p) - mean).powi(2))
            .sum::<f64>()
            / (runs as f64 - 1.0);
        Some((variance / runs as f64).sqrt())
    }

    /// The estimate of `tr(A)`: `n` times [`Density::moment`]`(1)`.
    pub fn trace(&self) -> f64 {
        self.dim as f64 * self.moment(1)
    }

    /// The smallest and the largest node over all runs.
    pub fn node_range(&self) -> (f64, f64) {
        self.quadratures
            .iter()
            .flat_map(|q| q.nodes.iter().copied())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), t| {
                (lo.min(t), hi.max(t))
            })
    }

    /// PyHessian's broadening: `σ = √(1e-5 · max(1, λ_hi - λ_lo))` over the
    /// node range.
    pub fn default_sigma(&self) -> f64 {
        let (lo, hi) = self.node_range();
        (1e-5 * (hi - lo).max(1.0)).sqrt()
    }

    /// `points` equally spaced points from the smallest node minus `margin`
    /// to the largest plus `margin`. For [`Density::smoothed`] to integrate
    /// to 1 over the grid, take `margin >= 5σ` and a spacing below `σ`.
    pub fn grid(&self, points: usize, margin: f64) -> Result<Array1<f64>> {
        if points < 2 {
            return Err(SpectrumError::invalid("points", points, "at least 2"));
        }
        if !(margin >= 0.0 && margin.is_finite()) {
            return Err(SpectrumError::invalid(
                "margin",
                margin,
                "a finite number >= 0",
            ));
        }
        let (lo, hi) = self.node_range();
        Ok(Array1::linspace(lo - margin, hi + margin, points))
    }

    /// The Gaussian-broadened density on `grid`:
    /// `φ_σ(t) = (1/n_v) Σ_runs Σ_k w_k N(t; θ_k, σ²)`.
    ///
    /// Not renormalised: it integrates to 1 over the real line, so to 1
    /// over a grid that covers the nodes with a margin of a few `σ` and a
    /// spacing below `σ` ([`SmoothedDensity::integral`] shows how close;
    /// [`SmoothedDensity::normalised`] rescales as PyHessian does).
    pub fn smoothed(&self, grid: ArrayView1<'_, f64>, sigma: f64) -> Result<SmoothedDensity> {
        if !(sigma > 0.0 && sigma.is_finite()) {
            return Err(SpectrumError::invalid(
                "sigma",
                sigma,
                "a finite number > 0",
            ));
        }
        if grid.is_empty() {
            return Err(SpectrumError::Empty { what: "grid" });
        }
        check_finite("grid", grid.iter().copied())?;
        let runs = self.quadratures.len() as f64;
        let norm = 1.0 / (runs * sigma * (2.0 * std::f64::consts::PI).sqrt());
        let mut atoms = Vec::new();
        for q in &self.quadratures {
            atoms.extend(q.nodes.iter().copied().zip(q.weights.iter().copied()));
        }
        let density = grid.mapv(|t| {
            let sum: f64 = atoms
                .iter()
                .map(|&(node, weight)| {
                    let z = (t - node) / sigma;
                    weight * (-0.5 * z * z).exp()
                })
                .sum();
            sum * norm
        });
        Ok(SmoothedDensity {
            grid: grid.to_owned(),
            density,
            sigma,
        })
    }
}

/// A spectral density sampled on a grid, from [`Density::smoothed`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SmoothedDensity {
    grid: Array1<f64>,
    density: Array1<f64>,
    sigma: f64,
}

impl SmoothedDensity {
    /// Density floor for logarithmic plots: [`SmoothedDensity::floored`]
    /// with this `epsilon` keeps `log10` finite (PyHessian plots
    /// `density + 1e-7`; the floor changes nothing above it).
    pub const LOG_FLOOR: f64 = 1e-12;

    /// The grid points.
    pub fn grid(&self) -> ArrayView1<'_, f64> {
        self.grid.view()
    }

    /// The density at each grid point.
    pub fn density(&self) -> ArrayView1<'_, f64> {
        self.density.view()
    }

    /// The Gaussian width `σ`.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// The trapezoidal integral of the density over the grid (0 for a
    /// single point).
    pub fn integral(&self) -> f64 {
        let g = &self.grid;
        let d = &self.density;
        (1..g.len())
            .map(|i| 0.5 * (g[i] - g[i - 1]) * (d[i] + d[i - 1]))
            .sum()
    }

    /// The density rescaled so that [`SmoothedDensity::integral`] is 1
    /// (unchanged when the integral is 0).
    pub fn normalised(&self) -> Self {
        let integral = self.integral();
        let mut out = self.clone();
        if integral > 0.0 {
            out.density.mapv_inplace(|d| d / integral);
        }
        out
    }

    /// The density with every value below `epsilon` raised to `epsilon`, for
    /// logarithmic axes (e.g. [`SmoothedDensity::LOG_FLOOR`]).
    pub fn floored(&self, epsilon: f64) -> Array1<f64> {
        self.density.mapv(|d| d.max(epsilon))
    }
}
