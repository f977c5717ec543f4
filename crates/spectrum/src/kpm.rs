//! Eigenvalue counts in an interval by the kernel polynomial method (KPM):
//! a Jackson-damped Chebyshev expansion of the interval's indicator,
//! traced with Hutchinson probes (Di Napoli, Polizzi & Saad 2016,
//! "Efficient estimation of eigenvalue counts in an interval").
//!
//! The number of eigenvalues of a symmetric `A` in `[a, b]` is the trace of
//! the spectral projector `1_[a,b](A)`. Map the spectrum to `[-1, 1]`
//! (`t = (λ - c) / e` with `[c - e, c + e]` enclosing it), expand the
//! indicator of the mapped window `[α, β]` in Chebyshev polynomials,
//!
//! ```text
//! 1_[α,β](t) ≈ h(t) = Σ_{k=0}^{p} g_k γ_k T_k(t),
//! γ_0 = (acos α - acos β) / π,  γ_k = 2 (sin(k acos α) - sin(k acos β)) / (π k),
//! ```
//!
//! with Jackson's damping factors `g_k`, which make `h` the indicator
//! convolved with a positive kernel of width about `π / (p + 2)` in the
//! angle `θ = acos t` (so `0 <= h <= 1`, no Gibbs oscillations). The count
//! is `tr h(A) ≈ mean over probes z of zᵀ h(A) z`; the Chebyshev moments
//! `zᵀ T_k(A) z` come from the three-term recurrence, two per product
//! (`T_{2k} = 2 T_k² - 1`, `T_{2k+1} = 2 T_{k+1} T_k - T_1`), so degree
//! `p` costs `⌈p / 2⌉` products per probe, and every window is counted from
//! the same moments.
//!
//! Unlike a count read from stochastic Lanczos quadrature (a handful of
//! Gauss nodes, one of which stands for a whole cluster and falls inside
//! the window or outside it), the expansion has a known resolution: an
//! eigenvalue deeper than a few kernel widths inside the window counts as
//! 1, one deeper than that outside as 0. The degree is chosen from the
//! window's width so that its half-width in `θ` is at least
//! `resolution · π / (p + 2)`; when that exceeds the cap the count is
//! computed at the cap and flagged as not resolved.
use std::f64::consts::PI;

use ndarray::{Array1, Array2, ArrayView1, Zip};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SpectrumError};
use crate::lanczos::{extremes, operator_dim, LanczosParams};
use crate::operator::{apply_counted, Operator};
use crate::probe::{random_vector, ProbeDistribution};

/// The two-sided 95% normal quantile used for the probe interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Parameters of the KPM eigenvalue count; validated by
/// [`KpmParams::count`] and [`KpmParams::count_near_zero`].
///
/// ```
/// use landscape_spectrum::{DiagonalOperator, KpmParams};
/// use ndarray::Array1;
///
/// // 300 eigenvalues at 0, 100 spread over [0.1, 1], 20 over [-0.5, -0.05].
/// let mut lambda: Vec<f64> = vec![0.0; 300];
/// lambda.extend((0..100).map(|i| 0.1 + 0.9 * i as f64 / 99.0));
/// lambda.extend((0..20).map(|i| -0.5 + 0.45 * i as f64 / 19.0));
/// let op = DiagonalOperator::new(Array1::from(lambda))?;
///
/// let counts = KpmParams::default().probes(10).count_near_zero(&op, &[1e-2])?;
/// let zero = &counts.windows()[0];
/// assert!(zero.resolved());
/// assert!((zero.estimate() - 300.0).abs() < 15.0);
/// let (low, high) = zero.interval();
/// assert!(low <= 300.0 && 300.0 <= high);
/// # Ok::<(), landscape_spectrum::SpectrumError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KpmParams {
    probes: usize,
    seed: u64,
    distribution: ProbeDistribution,
    degree: Option<usize>,
    max_degree: usize,
    resolution: f64,
    margin: f64,
    bounds: Option<(f64, f64)>,
    lanczos: LanczosParams,
}

impl Default for KpmParams {
    fn default() -> Self {
        Self {
            probes: 30,
            seed: 0,
            distribution: ProbeDistribution::Rademacher,
            degree: None,
            max_degree: 4000,
            resolution: 3.0,
            margin: 0.01,
            bounds: None,
            lanczos: LanczosParams::default()
                .steps(40)
                .tol(1e-4)
                .max_applications(400),
        }
    }
}

impl KpmParams {
    /// The defaults: 30 Rademacher probes, seed 0, degree chosen from the
    /// windows (resolution 3 kernel widths, at most 4,000), spectral bounds
    /// from Lanczos (40 steps, tolerance 1e-4, at most 400 products)
    /// widened by 1% of the spectrum's width.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of Hutchinson probes (default 30, at least 2).
    pub fn probes(mut self, probes: usize) -> Self {
        self.probes = probes;
        self
    }

    /// Seed of the probes and of the Lanczos start vector (ChaCha8; default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self.lanczos = self.lanczos.seed(seed);
        self
    }

    /// Distribution of the probe entries (default Rademacher).
    pub fn distribution(mut self, distribution: ProbeDistribution) -> Self {
        self.distribution = distribution;
        self
    }

    /// A fixed expansion degree (at least 2) instead of the automatic choice.
    pub fn degree(mut self, degree: usize) -> Self {
        self.degree = Some(degree);
        self
    }

    /// The largest degree the automatic choice may take (default 4,000;
    /// degree `p` costs `⌈p / 2⌉` products per probe).
    pub fn max_degree(mut self, max_degree: usize) -> Self {
        self.max_degree = max_degree;
        self
    }

    /// How many kernel widths `π / (p + 2)` (in `θ = acos t`) the window's
    /// half-width must span for the count to be resolved (default 3, > 0).
    pub fn resolution(mut self, resolution: f64) -> Self {
        self.resolution = resolution;
        self
    }

    /// Safety margin added on each side of the Lanczos spectral bounds, as
    /// a share of their distance (default 0.01, in `[0, 1]`); the residual
    /// of each end's Ritz pair is added too. A spectrum that pokes out of
    /// the mapped interval makes the Chebyshev recurrence grow without
    /// bound, so the margin is not optional.
    pub fn margin(mut self, margin: f64) -> Self {
        self.margin = margin;
        self
    }

    /// Known bounds `lower <= λ_min`, `λ_max <= upper` of the spectrum,
    /// used as given (no Lanczos run, no margin).
    pub fn bounds(mut self, lower: f64, upper: f64) -> Self {
        self.bounds = Some((lower, upper));
        self
    }

    /// Lanczos parameters of the spectral-bound estimate.
    pub fn lanczos(mut self, lanczos: LanczosParams) -> Self {
        self.lanczos = lanczos;
        self
    }

    /// The number of probes.
    pub fn get_probes(&self) -> usize {
        self.probes
    }

    /// The resolution in kernel widths.
    pub fn get_resolution(&self) -> f64 {
        self.resolution
    }

    fn validate(&self) -> Result<()> {
        if self.probes < 2 {
            return Err(SpectrumError::invalid(
                "probes",
                self.probes,
                "at least 2 (the standard error needs two samples)",
            ));
        }
        if let Some(p) = self.degree {
            if p < 2 {
                return Err(SpectrumError::invalid("degree", p, "at least 2"));
            }
        }
        if self.max_degree < 2 {
            return Err(SpectrumError::invalid(
                "max_degree",
                self.max_degree,
                "at least 2",
            ));
        }
        if !(self.resolution > 0.0 && self.resolution.is_finite()) {
            return Err(SpectrumError::invalid(
                "resolution",
                self.resolution,
                "a finite number > 0",
            ));
        }
        if !(0.0..=1.0).contains(&self.margin) {
            return Err(SpectrumError::invalid(
                "margin",
                self.margin,
                "a number in [0, 1]",
            ));
        }
        if let Some((lower, upper)) = self.bounds {
            if !(lower.is_finite() && upper.is_finite() && lower < upper) {
                return Err(SpectrumError::invalid(
                    "bounds",
                    format!("[{lower}, {upper}]"),
                    "finite numbers with lower < upper",
                ));
            }
        }
        Ok(())
    }

    /// Counts the eigenvalues of `op` with `|λ| <= rtol · s` for each
    /// `rtol` (in `[0, 1)`), `s = max(|λ_min|, |λ_max|)` from the Lanczos
    /// ends (or the given bounds): the flat directions of a Hessian, as
    /// [`crate::degeneracy`] counts them on an exact spectrum.
    pub fn count_near_zero<O: Operator + ?Sized>(
        &self,
        op: &O,
        rtols: &[f64],
    ) -> Result<EigenvalueCounts> {
        for &rtol in rtols {
            if !(0.0..1.0).contains(&rtol) {
                return Err(SpectrumError::invalid("rtol", rtol, "a number in [0, 1)"));
            }
        }
        self.run(op, Windows::NearZero(rtols))
    }

    /// Counts the eigenvalues of `op` in each closed window `[a, b]`.
    pub fn count<O: Operator + ?Sized>(
        &self,
        op: &O,
        windows: &[(f64, f64)],
    ) -> Result<EigenvalueCounts> {
        for &(a, b) in windows {
            if !(a.is_finite() && b.is_finite() && a <= b) {
                return Err(SpectrumError::invalid(
                    "window",
                    format!("[{a}, {b}]"),
                    "finite numbers with a <= b",
                ));
            }
        }
        self.run(op, Windows::Absolute(windows))
    }

    fn run<O: Operator + ?Sized>(&self, op: &O, windows: Windows<'_>) -> Result<EigenvalueCounts> {
        self.validate()?;
        let n = operator_dim(op)?;
        if windows.is_empty() {
            return Err(SpectrumError::Empty { what: "windows" });
        }
        let mut applications = 0;
        let (ends, lower, upper) = match self.bounds {
            Some((lower, upper)) => ((lower, upper), lower, upper),
            None => {
                let e = extremes(op, &self.lanczos)?;
                applications += e.applications();
                let (min, max) = (e.min().value(), e.max().value());
                let width = (max - min)
                    .max(max.abs().max(min.abs()))
                    .max(f64::MIN_POSITIVE);
                let lower = min - e.min().residual().max(self.margin * width);
                let upper = max + e.max().residual().max(self.margin * width);
                ((min, max), lower, upper)
            }
        };
        let scale = ends.0.abs().max(ends.1.abs());
        let windows: Vec<(f64, f64)> = match windows {
            Windows::NearZero(rtols) => rtols.iter().map(|r| (-r * scale, r * scale)).collect(),
            Windows::Absolute(w) => w.to_vec(),
        };
        let map = Map::new(lower, upper);
        let mapped: Vec<Option<(f64, f64)>> = windows.iter().map(|&w| map.window(w)).collect();
        let required: Vec<usize> = mapped
            .iter()
            .map(|m| {
                m.map_or(0, |(alpha, beta)| {
                    required_degree(alpha, beta, self.resolution)
                })
            })
            .collect();
        let degree = match self.degree {
            Some(p) => p,
            None => required
                .iter()
                .copied()
                .max()
                .unwrap_or(2)
                .clamp(2, self.max_degree),
        };
        if self.degree.is_none() && required.iter().any(|&r| r > self.max_degree) {
            tracing::warn!(
                degree,
                needed = required.iter().max().copied().unwrap_or(0),
                "KPM count: a window needs a degree above the cap; its count is not resolved"
            );
        }
        let moments = chebyshev_moments(op, &map, degree, self, &mut applications)?;
        let jackson = jackson(degree);
        let counts = windows
            .iter()
            .zip(&mapped)
            .zip(&required)
            .map(|((&(a, b), m), &req)| {
                IntervalCount::from_moments(a, b, *m, req, degree, &jackson, &moments, n)
            })
            .collect();
        Ok(EigenvalueCounts {
            dim: n,
            ends,
            bounds: (lower, upper),
            degree,
            probes: self.probes,
            applications,
            moments,
            windows: counts,
        })
    }
}

enum Windows<'a> {
    NearZero(&'a [f64]),
    Absolute(&'a [(f64, f64)]),
}

impl Windows<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Windows::NearZero(r) => r.is_empty(),
            Windows::Absolute(w) => w.is_empty(),
        }
    }
}

/// The affine map of `[lower, upper]` onto `[-1, 1]`.
#[derive(Clone, Copy, Debug)]
struct Map {
    center: f64,
    half_width: f64,
}

impl Map {
    fn new(lower: f64, upper: f64) -> Self {
        Self {
            center: 0.5 * (lower + upper),
            half_width: 0.5 * (upper - lower),
        }
    }

    /// The window `[a, b]` mapped and clipped to `[-1, 1]`; `None` when it
    /// misses the interval.
    fn window(&self, (a, b): (f64, f64)) -> Option<(f64, f64)> {
        let alpha = (a - self.center) / self.half_width;
        let beta = (b - self.center) / self.half_width;
        (beta >= -1.0 && alpha <= 1.0).then(|| (alpha.max(-1.0), beta.min(1.0)))
    }
}

/// The smallest degree at which the window's half-width in `θ` spans
/// `resolution` kernel widths `π / (p + 2)`.
fn required_degree(alpha: f64, beta: f64, resolution: f64) -> usize {
    let dtheta = alpha.acos() - beta.acos();
    if dtheta <= 0.0 {
        return usize::MAX;
    }
    let p = (2.0 * resolution * PI / dtheta - 2.0).ceil();
    if p >= 1e9 {
        usize::MAX
    } else {
        p.max(2.0) as usize
    }
}

/// Jackson's damping factors `g_0..g_p` (Di Napoli, Polizzi & Saad 2016, eq. 3.8).
fn jackson(p: usize) -> Array1<f64> {
    let q = (p + 2) as f64;
    let a = PI / q;
    Array1::from_shape_fn(p + 1, |k| {
        let k = k as f64;
        ((1.0 - k / q) * a.sin() * (k * a).cos() + a.cos() * (k * a).sin() / q) / a.sin()
    })
}

/// Chebyshev coefficients `γ_0..γ_p` of the indicator of `[α, β] ⊂ [-1, 1]`.
fn indicator_coefficients(alpha: f64, beta: f64, p: usize) -> Array1<f64> {
    let (ta, tb) = (alpha.acos(), beta.acos());
    Array1::from_shape_fn(p + 1, |k| {
        if k == 0 {
            (ta - tb) / PI
        } else {
            let k = k as f64;
            2.0 * ((k * ta).sin() - (k * tb).sin()) / (PI * k)
        }
    })
}

/// The damped expansion `h(t) = Σ c_k T_k(t)` at `t = cos θ`.
fn evaluate(coefficients: &Array1<f64>, theta: f64) -> f64 {
    coefficients
        .iter()
        .enumerate()
        .map(|(k, c)| c * (k as f64 * theta).cos())
        .sum()
}

/// Per-probe moments `zᵀ T_k(Ã) z`, `k = 0..=p` (rows: probes).
fn chebyshev_moments<O: Operator + ?Sized>(
    op: &O,
    map: &Map,
    p: usize,
    params: &KpmParams,
    applications: &mut usize,
) -> Result<Array2<f64>> {
    let n = op.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let mut moments = Array2::<f64>::zeros((params.probes, p + 1));
    let half = p.div_ceil(2);
    let mut product = Array1::<f64>::zeros(n);
    for probe in 0..params.probes {
        let z = random_vector(&mut rng, n, params.distribution);
        // w_{k+1} = 2 Ã w_k - w_{k-1}, Ã = (A - c) / e.
        let mut previous = z.clone();
        apply_counted(op, z.view(), product.view_mut(), applications)?;
        let mut current = (&product - &(map.center * &z)) / map.half_width;
        let mu0 = z.dot(&z);
        let mu1 = z.dot(&current);
        let mut row = moments.row_mut(probe);
        row[0] = mu0;
        row[1] = mu1;
        // current = w_k, previous = w_{k-1}; fill μ_{2k} and μ_{2k+1}.
        for k in 1..=half {
            if 2 * k <= p {
                row[2 * k] = 2.0 * current.dot(&current) - mu0;
            }
            if 2 * k < p {
                apply_counted(op, current.view(), product.view_mut(), applications)?;
                let scale = 2.0 / map.half_width;
                let shift = 2.0 * map.center / map.half_width;
                let mut next = Array1::<f64>::zeros(n);
                Zip::from(&mut next)
                    .and(&product)
                    .and(&current)
                    .and(&previous)
                    .for_each(|w, &a, &c, &q| *w = scale * a - shift * c - q);
                row[2 * k + 1] = 2.0 * next.dot(&current) - mu1;
                previous = std::mem::replace(&mut current, next);
            }
        }
        tracing::debug!(probe, "KPM probe");
    }
    Ok(moments)
}

/// The counts of [`KpmParams::count`] / [`KpmParams::count_near_zero`]:
/// one [`IntervalCount`] per window, from shared Chebyshev moments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EigenvalueCounts {
    dim: usize,
    ends: (f64, f64),
    bounds: (f64, f64),
    degree: usize,
    probes: usize,
    applications: usize,
    moments: Array2<f64>,
    windows: Vec<IntervalCount>,
}

impl EigenvalueCounts {
    /// The operator's dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The spectrum's ends `(λ_min, λ_max)` as estimated by Lanczos (or the
    /// given bounds).
    pub fn ends(&self) -> (f64, f64) {
        self.ends
    }

    /// The interval mapped onto `[-1, 1]`: the ends widened by the margin.
    pub fn bounds(&self) -> (f64, f64) {
        self.bounds
    }

    /// The expansion degree used.
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// The number of probes.
    pub fn probes(&self) -> usize {
        self.probes
    }

    /// Operator applications used (bounds and moments).
    pub fn applications(&self) -> usize {
        self.applications
    }

    /// Per-probe Chebyshev moments `zᵀ T_k(Ã) z` (probes x (degree + 1)).
    pub fn moments(&self) -> &Array2<f64> {
        &self.moments
    }

    /// One count per window, in the order asked.
    pub fn windows(&self) -> &[IntervalCount] {
        &self.windows
    }
}

/// The estimated number of eigenvalues in one window, with its error bar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntervalCount {
    lower: f64,
    upper: f64,
    estimate: f64,
    standard_error: f64,
    bias_bound: f64,
    resolved: bool,
    required_degree: Option<usize>,
    samples: Array1<f64>,
}

impl IntervalCount {
    #[allow(clippy::too_many_arguments)]
    fn from_moments(
        lower: f64,
        upper: f64,
        mapped: Option<(f64, f64)>,
        required: usize,
        degree: usize,
        jackson: &Array1<f64>,
        moments: &Array2<f64>,
        n: usize,
    ) -> Self {
        let Some((alpha, beta)) = mapped else {
            // The window misses the spectrum's enclosing interval: no eigenvalue.
            return Self {
                lower,
                upper,
                estimate: 0.0,
                standard_error: 0.0,
                bias_bound: 0.0,
                resolved: true,
                required_degree: Some(0),
                samples: Array1::zeros(moments.nrows()),
            };
        };
        let coefficients = indicator_coefficients(alpha, beta, degree) * jackson;
        let samples = moments.dot(&coefficients);
        let probes = samples.len() as f64;
        let estimate = samples.sum() / probes;
        let variance = samples.iter().map(|s| (s - estimate).powi(2)).sum::<f64>() / (probes - 1.0);
        let standard_error = (variance / probes).sqrt();
        let bias_bound = bias_bound(alpha, beta, &coefficients, jackson, moments).min(n as f64);
        Self {
            lower,
            upper,
            estimate,
            standard_error,
            bias_bound,
            resolved: required <= degree,
            required_degree: (required != usize::MAX).then_some(required),
            samples,
        }
    }

    /// The window's lower end.
    pub fn lower(&self) -> f64 {
        self.lower
    }

    /// The window's upper end.
    pub fn upper(&self) -> f64 {
        self.upper
    }

    /// The estimated count: the mean over probes of `zᵀ h(A) z`.
    pub fn estimate(&self) -> f64 {
        self.estimate
    }

    /// The probes' standard error (sample standard deviation over `√probes`).
    pub fn standard_error(&self) -> f64 {
        self.standard_error
    }

    /// A bound on the smoothing bias `|tr h(A) - count|`, estimated from
    /// the same moments: `Σ_i |h(λ_i) - 1_[a,b](λ_i)|` is the trace of the
    /// kernel's counting error `|h - 1_[a,b]|` (a bump of height about ½ at
    /// each edge that decays over a few kernel widths); its own damped
    /// expansion smooths that bump once more, which the factor 2 makes up
    /// for. Upper end of its 95% interval. It is large exactly when many
    /// eigenvalues sit within a few kernel widths of the window's edges,
    /// where no polynomial of this degree can tell inside from outside.
    pub fn bias_bound(&self) -> f64 {
        self.bias_bound
    }

    /// `estimate ± (1.96 · standard_error + bias_bound)`, clipped at 0:
    /// the 95% probe interval widened by the bias bound.
    pub fn interval(&self) -> (f64, f64) {
        let half = Z95 * self.standard_error + self.bias_bound;
        ((self.estimate - half).max(0.0), self.estimate + half)
    }

    /// Whether the degree resolves the window (its half-width spans the
    /// asked number of kernel widths); an unresolved count smears the
    /// eigenvalues near the window into and out of it.
    pub fn resolved(&self) -> bool {
        self.resolved
    }

    /// The degree this window needs (`None`: a window of zero width, which
    /// no degree resolves).
    pub fn required_degree(&self) -> Option<usize> {
        self.required_degree
    }

    /// The per-probe values `zᵀ h(A) z`.
    pub fn samples(&self) -> ArrayView1<'_, f64> {
        self.samples.view()
    }
}

/// See [`IntervalCount::bias_bound`]: twice the trace of the Jackson-damped
/// expansion of `|h - 1_[α,β]|` (the kernel's counting error as a function
/// of the eigenvalue: a bump of height about ½ at each edge, decaying over a
/// few kernel widths), traced with the same moments (mean plus 1.96
/// standard errors, at least 0).
fn bias_bound(
    alpha: f64,
    beta: f64,
    coefficients: &Array1<f64>,
    jackson: &Array1<f64>,
    moments: &Array2<f64>,
) -> f64 {
    let p = coefficients.len() - 1;
    let (ta, tb) = (alpha.acos(), beta.acos());
    // |h - 1_W| on a midpoint grid in θ, and its Chebyshev coefficients
    // c_k = (2 - δ_k0) / π ∫_0^π u(θ) cos(kθ) dθ.
    let points = 8 * (p + 2);
    let step = PI / points as f64;
    let mut u = Array1::<f64>::zeros(p + 1);
    for i in 0..points {
        let theta = (i as f64 + 0.5) * step;
        let inside = theta <= ta && theta >= tb;
        let err = (evaluate(coefficients, theta) - if inside { 1.0 } else { 0.0 }).abs();
        if err < 1e-12 {
            continue;
        }
        // cos(kθ) by the recurrence cos((k+1)θ) = 2 cos θ cos(kθ) - cos((k-1)θ).
        let c = theta.cos();
        let (mut previous, mut current) = (1.0, c);
        u[0] += err;
        for uk in u.iter_mut().skip(1) {
            *uk += 2.0 * err * current;
            let next = 2.0 * c * current - previous;
            previous = current;
            current = next;
        }
    }
    let u = u * (step / PI) * jackson;
    let samples = moments.dot(&u);
    let probes = samples.len() as f64;
    let mean = samples.sum() / probes;
    let variance = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (probes - 1.0);
    2.0 * (mean + Z95 * (variance / probes).sqrt()).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jackson_factors_start_at_one_and_decay() {
        let g = jackson(50);
        assert!((g[0] - 1.0).abs() < 1e-14);
        assert!(g.windows(2).into_iter().all(|w| w[1] <= w[0] + 1e-15));
        assert!(g[50].abs() < 0.01);
    }

    #[test]
    fn damped_indicator_is_between_zero_and_one_and_resolves_the_window() {
        let (alpha, beta) = (-0.2, 0.3);
        let p = required_degree(alpha, beta, 3.0);
        let c = indicator_coefficients(alpha, beta, p) * jackson(p);
        for i in 0..=2000 {
            let theta = PI * i as f64 / 2000.0;
            let h = evaluate(&c, theta);
            assert!((-1e-12..=1.0 + 1e-12).contains(&h), "h({theta}) = {h}");
        }
        // The window's centre counts as 1, a point far outside as 0.
        assert!((evaluate(&c, 0.05_f64.acos()) - 1.0).abs() < 1e-2);
        assert!(evaluate(&c, 0.9_f64.acos()) < 1e-3);
    }
}
