//! Curvature of the training loss at a model, PyHessian-style but with error
//! bars: the top eigenvalues (Lanczos with full reorthogonalisation), the
//! most negative eigenvalue (a minimum or a saddle?), the trace (Hutchinson)
//! and the spectral density (stochastic Lanczos quadrature), each repeated
//! over seeds so that their spread is reported beside them.
//!
//! The operator is [`landscape_net::LossHessian`] (double backward, chunked,
//! BN statistics fixed or per batch: see [`landscape_net::HessianBn`]); the
//! linear algebra is `landscape-spectrum` (no libtorch).
use anyhow::{Context, Result};
use landscape_net::{Data, Dcnn, HessianBn, HessianPrecision, LossHessian};
/// The two-sided 95% normal quantile of the count intervals.
pub use landscape_spectrum::Z95;
use landscape_spectrum::{
    extremes, top_k, HutchinsonParams, KpmParams, LanczosParams, Operator, SlqParams, SpectrumError,
};
use ndarray::{ArrayView1, ArrayViewMut1};
use serde::{Deserialize, Serialize};

use landscape_engine::config::ensure;
use landscape_engine::ExperimentError;

/// The Hessian of the loss as a `landscape-spectrum` operator.
pub struct HessianOperator<'a>(pub LossHessian<'a>);

impl Operator for HessianOperator<'_> {
    fn dim(&self) -> usize {
        self.0.dim()
    }

    fn apply(
        &self,
        x: ArrayView1<'_, f64>,
        mut y: ArrayViewMut1<'_, f64>,
    ) -> landscape_spectrum::Result<()> {
        let v: Vec<f64> = x.iter().copied().collect();
        let hv = self.0.hvp(&v).map_err(SpectrumError::operator)?;
        for (a, b) in y.iter_mut().zip(hv) {
            *a = b;
        }
        Ok(())
    }
}

/// What to estimate, and how hard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpectrumConfig {
    /// BN statistics of the differentiated loss.
    pub bn: HessianBn,
    /// Examples per forward/backward chunk (memory; with `batch` BN, also the ghost batch).
    pub chunk_size: usize,
    /// Top eigenvalues.
    pub top_k: usize,
    /// Lanczos basis size of the eigensolvers.
    pub lanczos_steps: usize,
    /// Relative residual at which an eigenpair counts as converged.
    pub tol: f64,
    /// Most Hessian-vector products per eigensolver run.
    pub max_products: usize,
    /// Hutchinson probes per trace estimate.
    pub probes: usize,
    /// Also the smallest eigenvalue (one more Lanczos run per seed; without
    /// it, [`SpectrumReport::min_eigenvalue`] is NaN).
    pub smallest: bool,
    /// SLQ runs (random start vectors) per density (0: no density, and
    /// [`SpectrumReport::near_zero_share`] is NaN).
    pub slq_runs: usize,
    /// Lanczos steps per SLQ run.
    pub slq_steps: usize,
    /// Every estimate is repeated with each seed.
    pub seeds: Vec<u64>,
    /// |eigenvalue| <= this times the largest counts as zero (degeneracy).
    pub zero_rtol: f64,
    /// Hutchinson probes of the near-zero count (kernel polynomial method;
    /// 0: no count).
    pub count_probes: usize,
    /// Largest Chebyshev degree of the near-zero count (degree `p` costs
    /// `p / 2` products per probe); a window that needs more is counted at
    /// this degree and flagged as not resolved.
    pub count_max_degree: usize,
    /// Float type of the near-zero count's products (`f64`: float64 copies
    /// of the model and data, so that round-off does not blur the window).
    pub count_precision: HessianPrecision,
}

impl Default for SpectrumConfig {
    fn default() -> Self {
        SpectrumConfig {
            bn: HessianBn::Fixed,
            chunk_size: 1000,
            top_k: 5,
            lanczos_steps: 30,
            tol: 1e-3,
            max_products: 300,
            probes: 30,
            smallest: true,
            slq_runs: 3,
            slq_steps: 30,
            seeds: vec![0, 1, 2],
            zero_rtol: 1e-3,
            count_probes: 30,
            count_max_degree: 4000,
            count_precision: HessianPrecision::F64,
        }
    }
}

impl SpectrumConfig {
    /// Checks every value; errors name the field (`lanczos_steps`) after the
    /// prefix `p`.
    pub fn validate(&self, p: &str) -> Result<(), ExperimentError> {
        ensure(
            self.chunk_size >= 2,
            &format!("{p}chunk_size"),
            "must be at least 2",
        )?;
        ensure(self.top_k >= 1, &format!("{p}top_k"), "must be at least 1")?;
        ensure(
            self.lanczos_steps > self.top_k,
            &format!("{p}lanczos_steps"),
            format!(
                "{} must exceed the number of top eigenvalues ({})",
                self.lanczos_steps, self.top_k
            ),
        )?;
        ensure(
            self.probes >= 2,
            &format!("{p}probes"),
            "must be at least 2",
        )?;
        ensure(
            self.slq_runs == 0 || self.slq_steps >= 2,
            &format!("{p}slq_steps"),
            format!(
                "{} SLQ run(s) need at least 2 steps each (or no SLQ runs: no density)",
                self.slq_runs
            ),
        )?;
        ensure(
            !self.seeds.is_empty(),
            &format!("{p}seeds"),
            "needs at least one seed",
        )?;
        ensure(
            self.tol > 0.0 && self.tol < 1.0,
            &format!("{p}tol"),
            format!("{} must be in (0, 1)", self.tol),
        )?;
        ensure(
            self.count_probes != 1,
            &format!("{p}count_probes"),
            "must be 0 (no count) or at least 2 (the standard error needs two)",
        )?;
        ensure(
            self.count_max_degree >= 2,
            &format!("{p}count_max_degree"),
            "must be at least 2",
        )?;
        ensure(
            self.zero_rtol >= 0.0 && self.zero_rtol < 1.0,
            &format!("{p}zero_rtol"),
            format!("{} must be in [0, 1)", self.zero_rtol),
        )
    }
}

/// One seed's estimates.
#[derive(Clone, Debug, Serialize)]
pub struct SeedEstimate {
    /// The seed.
    pub seed: u64,
    /// Top eigenvalues, descending.
    pub top: Vec<f64>,
    /// Their residuals `|H v - lambda v|`.
    pub residuals: Vec<f64>,
    /// Whether the top-k solver converged.
    pub converged: bool,
    /// The most negative (smallest) eigenvalue.
    pub min_eigenvalue: f64,
    /// Its residual.
    pub min_residual: f64,
    /// Hutchinson's trace.
    pub trace: f64,
    /// Its standard error.
    pub trace_se: f64,
    /// SLQ nodes of every run.
    pub density_nodes: Vec<Vec<f64>>,
    /// SLQ weights of every run.
    pub density_weights: Vec<Vec<f64>>,
    /// This seed's SLQ share of eigenvalues with |lambda| <= zero_rtol x top
    /// (top: the mean over seeds): the weight of the Gauss nodes inside the
    /// window, kept for comparison only (a few nodes stand for the whole
    /// cluster at zero, so this share jumps; the count is
    /// [`SpectrumReport::near_zero_count`]).
    pub near_zero_share: f64,
    /// Hessian-vector products used for this seed.
    pub products: usize,
}

/// Mean and sample standard deviation over seeds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 with one seed).
    pub std: f64,
}

impl Stat {
    /// Mean and sample standard deviation of `v` (NaN when empty).
    pub fn of(v: &[f64]) -> Stat {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let std = if v.len() > 1 {
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Stat { mean, std }
    }
}

/// Everything estimated, with the spread over seeds.
#[derive(Clone, Debug, Serialize)]
pub struct SpectrumReport {
    /// Parameters (the Hessian is `dim x dim`).
    pub dim: usize,
    /// Examples the loss averages over.
    pub examples: usize,
    /// The mean loss there.
    pub loss: f64,
    /// The gradient's norm there (small at a critical point).
    pub gradient_norm: f64,
    /// BN statistics used (`fixed` or `batch`).
    pub bn: String,
    /// Per seed.
    pub seeds: Vec<SeedEstimate>,
    /// The k-th top eigenvalue over seeds.
    pub top: Vec<Stat>,
    /// The smallest eigenvalue over seeds.
    pub min_eigenvalue: Stat,
    /// The trace over seeds.
    pub trace: Stat,
    /// min eigenvalue / top eigenvalue (negative: a saddle, within the residuals).
    pub negative_ratio: f64,
    /// The estimated share of eigenvalues that are (near) zero:
    /// [`SpectrumReport::near_zero_count`]'s estimate over `dim` (NaN
    /// without a count).
    pub near_zero_share: f64,
    /// The degeneracy count: the number of eigenvalues with
    /// |lambda| <= zero_rtol x top, by the kernel polynomial method, with
    /// its interval (`None` with `count_probes = 0`).
    pub near_zero_count: Option<NearZeroCount>,
    /// The config it was computed with.
    pub config: SpectrumConfig,
}

/// Estimates the spectrum of the loss Hessian of `model` on `data`.
pub fn analyse(model: &Dcnn, data: &Data, cfg: &SpectrumConfig) -> Result<SpectrumReport> {
    cfg.validate("")?;
    let h = LossHessian::new(model, data, cfg.chunk_size, cfg.bn)?;
    let (loss, grad) = h.loss_and_gradient()?;
    let op = HessianOperator(h);
    let bar =
        landscape_engine::recorder::progress(cfg.seeds.len() as u64, "Hessian spectrum (seeds)");
    let mut seeds = Vec::new();
    for &seed in &cfg.seeds {
        let before = op.0.products();
        let lp = LanczosParams::new()
            .steps(cfg.lanczos_steps.min(op.dim()))
            .tol(cfg.tol)
            .seed(seed)
            .max_applications(cfg.max_products.max(cfg.lanczos_steps));
        let top = top_k(&op, cfg.top_k.min(op.dim()), &lp).context("top eigenvalues")?;
        let (min_eigenvalue, min_residual) = if cfg.smallest {
            let ext = extremes(&op, &lp).context("extreme eigenvalues")?;
            (ext.min().value(), ext.min().residual())
        } else {
            (f64::NAN, f64::NAN)
        };
        let tr = HutchinsonParams::new()
            .probes(cfg.probes)
            .seed(seed)
            .run(&op)
            .context("Hutchinson trace")?;
        let (density_nodes, density_weights) = if cfg.slq_runs > 0 {
            let density = SlqParams::new()
                .runs(cfg.slq_runs)
                .steps(cfg.slq_steps.min(op.dim()))
                .seed(seed)
                .run(&op)
                .context("stochastic Lanczos quadrature")?;
            (
                density
                    .quadratures()
                    .iter()
                    .map(|q| q.nodes().to_vec())
                    .collect(),
                density
                    .quadratures()
                    .iter()
                    .map(|q| q.weights().to_vec())
                    .collect(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        seeds.push(SeedEstimate {
            seed,
            top: top.values().to_vec(),
            residuals: top.residuals().to_vec(),
            converged: top.converged(),
            min_eigenvalue,
            min_residual,
            trace: tr.estimate(),
            trace_se: tr.standard_error(),
            density_nodes,
            density_weights,
            near_zero_share: f64::NAN,
            products: op.0.products() - before,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let k = seeds.iter().map(|s| s.top.len()).min().unwrap_or(0);
    let top: Vec<Stat> = (0..k)
        .map(|i| Stat::of(&seeds.iter().map(|s| s.top[i]).collect::<Vec<_>>()))
        .collect();
    let min_eigenvalue = Stat::of(&seeds.iter().map(|s| s.min_eigenvalue).collect::<Vec<_>>());
    let trace = Stat::of(&seeds.iter().map(|s| s.trace).collect::<Vec<_>>());
    let lmax = top.first().map_or(f64::NAN, |s| s.mean);
    let zero = cfg.zero_rtol * lmax.abs();
    for s in &mut seeds {
        let (mut z, mut a) = (0.0, 0.0);
        for (nodes, weights) in s.density_nodes.iter().zip(&s.density_weights) {
            for (n, w) in nodes.iter().zip(weights) {
                a += w;
                if n.abs() <= zero {
                    z += w;
                }
            }
        }
        s.near_zero_share = if a > 0.0 { z / a } else { f64::NAN };
    }
    let dim = op.dim();
    let near_zero_count = if cfg.count_probes > 0 {
        let counted = LossHessian::new(model, data, cfg.chunk_size, cfg.bn)?
            .with_precision(cfg.count_precision)?;
        Some(near_zero_count(
            &HessianOperator(counted),
            cfg,
            lmax,
            cfg.seeds.first().copied().unwrap_or(0),
        )?)
    } else {
        None
    };
    Ok(SpectrumReport {
        dim,
        examples: op.0.examples(),
        loss,
        gradient_norm: grad.iter().map(|g| g * g).sum::<f64>().sqrt(),
        bn: cfg.bn.as_str().to_owned(),
        negative_ratio: min_eigenvalue.mean / lmax,
        near_zero_share: near_zero_count
            .as_ref()
            .map_or(f64::NAN, |c| c.estimate / dim as f64),
        near_zero_count,
        seeds,
        top,
        min_eigenvalue,
        trace,
        config: cfg.clone(),
    })
}

/// The number of eigenvalues with |lambda| <= rtol x top, by the kernel
/// polynomial method (`landscape_spectrum::KpmParams`: a Jackson-damped
/// Chebyshev expansion of the window's indicator, traced with Rademacher
/// probes), with its 95% interval widened by the smoothing-bias bound.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NearZeroCount {
    /// The relative threshold (`zero_rtol`).
    pub rtol: f64,
    /// The absolute threshold `rtol x top`.
    pub threshold: f64,
    /// The estimated count.
    pub estimate: f64,
    /// The probes' standard error.
    pub standard_error: f64,
    /// The bound on the smoothing bias (eigenvalues near the window's edges).
    pub bias_bound: f64,
    /// Lower end of `estimate -+ (1.96 standard_error + bias_bound)`.
    pub low: f64,
    /// Upper end.
    pub high: f64,
    /// Whether the Chebyshev degree resolves the window (false: the degree
    /// cap was hit and eigenvalues near the threshold are smeared across it).
    pub resolved: bool,
    /// The Chebyshev degree used.
    pub degree: usize,
    /// The degree the window needs.
    pub required_degree: Option<usize>,
    /// Hutchinson probes.
    pub probes: usize,
    /// The spectrum's ends (Lanczos) the expansion is mapped onto, before
    /// the margin.
    pub ends: (f64, f64),
    /// Hessian-vector products used (bounds and moments).
    pub products: usize,
    /// Float type of the products (`f32` or `f64`).
    pub precision: String,
}

/// [`NearZeroCount`] of `op` (a Hessian or one of its blocks) at
/// `cfg.zero_rtol x top`.
fn near_zero_count<O: Operator>(
    op: &O,
    cfg: &SpectrumConfig,
    top: f64,
    seed: u64,
) -> Result<NearZeroCount> {
    let threshold = cfg.zero_rtol * top.abs();
    let params = KpmParams::new()
        .probes(cfg.count_probes)
        .max_degree(cfg.count_max_degree)
        .seed(seed);
    let counts = params
        .count(op, &[(-threshold, threshold)])
        .context("near-zero eigenvalue count (kernel polynomial method)")?;
    let w = counts
        .windows()
        .first()
        .context("near-zero eigenvalue count: no window")?;
    let (low, high) = w.interval();
    tracing::info!(
        estimate = w.estimate(),
        se = w.standard_error(),
        bias = w.bias_bound(),
        degree = counts.degree(),
        resolved = w.resolved(),
        "near-zero count (KPM; 95% interval {low:.1}..{high:.1}, z = {Z95:.2})"
    );
    Ok(NearZeroCount {
        rtol: cfg.zero_rtol,
        threshold,
        estimate: w.estimate(),
        standard_error: w.standard_error(),
        bias_bound: w.bias_bound(),
        low,
        high: high.min(counts.dim() as f64),
        resolved: w.resolved(),
        degree: counts.degree(),
        required_degree: w.required_degree(),
        probes: counts.probes(),
        ends: counts.ends(),
        products: counts.applications(),
        precision: cfg.count_precision.as_str().to_owned(),
    })
}

/// One random direction of the flat subspace `S` of a channel split, and
/// what the wide Hessian does with it (see `landscape_net::split_channel`'s
/// module docs: the form vanishes on `S`; `H s = 0` means the split point is
/// degenerate along `s`, `H s != 0` that it is a strict saddle).
#[derive(Clone, Debug, Serialize)]
pub struct FlatProbe {
    /// `s' H s` for the unit vector `s` of `S` (zero in exact arithmetic).
    pub form: f64,
    /// `|H s|`.
    pub hs_norm: f64,
    /// The smallest eigenvalue of the form on `span{s, H s}`: an upper bound
    /// on the wide Hessian's smallest eigenvalue (negative when `H s != 0`).
    pub certificate: f64,
    /// The control: `u' H u` for a unit vector `u` on the same coordinates
    /// (both copies' outgoing weights, drawn independently), not in `S`.
    pub control_form: f64,
}

/// The curvature of the split network along `S` ([`FlatProbe`]s).
#[derive(Clone, Debug, Serialize)]
pub struct FlatSubspace {
    /// `dim S`: the split channel's outgoing weights.
    pub dim: usize,
    /// The split channel's incoming parameters (filter and bias).
    pub incoming: usize,
    /// One entry per random direction.
    pub probes: Vec<FlatProbe>,
    /// Hessian-vector products used.
    pub products: usize,
}

/// `probes` random unit directions of the outgoing-difference subspace `S`
/// of `split` at the wide network `wide` (three Hessian-vector products each).
pub fn flat_subspace(
    narrow: &Dcnn,
    wide: &Dcnn,
    split: &landscape_net::Split,
    data: &Data,
    cfg: &SpectrumConfig,
    probes: usize,
    seed: u64,
) -> Result<FlatSubspace> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let p = split.outgoing_len(narrow)?;
    let h = LossHessian::new(wide, data, cfg.chunk_size, cfg.bn)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut gauss =
        |n: usize| -> Vec<f64> { (0..n).map(|_| StandardNormal.sample(&mut rng)).collect() };
    let unit = |v: Vec<f64>| -> Vec<f64> {
        let n = norm(&v);
        v.into_iter().map(|x| x / n).collect()
    };
    let mut out = Vec::with_capacity(probes);
    for _ in 0..probes {
        let s = unit(split.outgoing_difference(wide, &gauss(p))?);
        let hs = h.hvp(&s)?;
        let form = dot(&s, &hs);
        let mut r: Vec<f64> = hs.iter().zip(&s).map(|(a, b)| a - form * b).collect();
        let b = norm(&r);
        let certificate = if b > 0.0 {
            r.iter_mut().for_each(|x| *x /= b);
            let c = dot(&r, &h.hvp(&r)?);
            (form + c) / 2.0 - (((form - c) / 2.0).powi(2) + b * b).sqrt()
        } else {
            form
        };
        // The control: independent Gaussian weights on the two outgoing
        // slices. (d1, -d1) + (d2, d2) = (d1 + d2, d2 - d1), whose halves are
        // independent; (d2, d2) is (d2, -d2) with the copy's half negated.
        let (d1, d2) = (gauss(p), gauss(p));
        let a = split.outgoing_difference(wide, &d1)?;
        let b2 = split.outgoing_difference(wide, &d2)?;
        let sign = split.outgoing_difference(wide, &vec![1.0; p])?;
        let u: Vec<f64> = a
            .iter()
            .zip(&b2)
            .zip(&sign)
            .map(|((x, y), o)| x + if *o < 0.0 { -y } else { *y })
            .collect();
        let u = unit(u);
        let control_form = dot(&u, &h.hvp(&u)?);
        out.push(FlatProbe {
            form,
            hs_norm: norm(&hs),
            certificate,
            control_form,
        });
    }
    Ok(FlatSubspace {
        dim: p,
        incoming: split.incoming_len(narrow)?,
        probes: out,
        products: h.products(),
    })
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The rank of the Jacobian of the network's outputs (logits) on a few
/// examples: at a zero-residual minimum of the square loss the Hessian is
/// `J^T J`, so at least `params - rank` of its eigenvalues are zero (the
/// theory's `W - N` flat directions, with `N` outputs).
#[derive(Clone, Debug, Serialize)]
pub struct JacobianRank {
    /// Examples.
    pub examples: usize,
    /// Rows of J (examples x classes).
    pub rows: usize,
    /// Parameters (columns of J).
    pub params: usize,
    /// Numerical rank (singular values above `threshold`).
    pub rank: usize,
    /// `params - rank`.
    pub null_directions: usize,
    /// The cut-off: max(rows, params) x machine epsilon x largest singular value.
    pub threshold: f64,
    /// All singular values, descending.
    pub singular_values: Vec<f64>,
}

/// [`JacobianRank`] of `model` on the first `n` examples of `data`.
pub fn jacobian_rank(model: &Dcnn, data: &Data, n: usize, bn: HessianBn) -> Result<JacobianRank> {
    let sub = data.head(n)?;
    let h = LossHessian::new(model, &sub, sub.len().max(2), bn)?;
    let rows = h.output_jacobian()?;
    let (r, c) = (rows.len(), h.dim());
    let flat: Vec<f64> = rows.into_iter().flatten().collect();
    let j = ndarray::Array2::from_shape_vec((r, c), flat).context("Jacobian shape")?;
    let rank = landscape_spectrum::numerical_rank(&j, landscape_spectrum::default_rank_rtol(r, c))
        .context("singular values of the Jacobian")?;
    Ok(JacobianRank {
        examples: sub.len(),
        rows: r,
        params: c,
        rank: rank.rank(),
        null_directions: c - rank.rank(),
        threshold: rank.threshold(),
        singular_values: rank.singular_values().to_vec(),
    })
}

/// The diagonal block of the Hessian for one layer's parameters (weight and
/// bias of paper layer `layer`): `P H P^T`, with `P` selecting that layer's
/// coordinates. Each product is one full Hessian-vector product of a vector
/// that is zero outside the layer.
pub struct LayerBlock<'a, 'b> {
    op: &'b HessianOperator<'a>,
    offset: usize,
    len: usize,
}

impl<'a, 'b> LayerBlock<'a, 'b> {
    /// The block of paper layer `layer` of `model` (whose Hessian `op` is).
    pub fn new(op: &'b HessianOperator<'a>, model: &Dcnn, layer: usize) -> Result<Self> {
        let (offset, len) = layer_range(model, layer)?;
        if offset + len > op.dim() {
            anyhow::bail!(
                "layer {layer}: parameters {offset}..{} outside the Hessian's {}",
                offset + len,
                op.dim()
            );
        }
        Ok(LayerBlock { op, offset, len })
    }
}

/// Where paper layer `layer`'s parameters (weight, then bias) sit in the
/// flattened parameter vector of the Hessian: `(offset, length)`.
pub fn layer_range(model: &Dcnn, layer: usize) -> Result<(usize, usize)> {
    let wanted = model.layer_tensor_names(layer);
    if wanted.is_empty() {
        anyhow::bail!(
            "layer {layer} does not exist: the network's layers are {}..={} (the paper counts the input as layer 1)",
            landscape_net::FIRST_LAYER,
            model.last_layer()
        );
    }
    let mut offset = 0;
    let mut start = None;
    let mut len = 0;
    for t in model.export()?.iter().filter(|t| !t.name.contains(".bn.")) {
        if wanted.contains(&t.name) {
            start.get_or_insert(offset);
            len += t.data.len();
        }
        offset += t.data.len();
    }
    Ok((start.unwrap_or(0), len))
}

impl Operator for LayerBlock<'_, '_> {
    fn dim(&self) -> usize {
        self.len
    }

    fn apply(
        &self,
        x: ArrayView1<'_, f64>,
        mut y: ArrayViewMut1<'_, f64>,
    ) -> landscape_spectrum::Result<()> {
        let mut v = vec![0.0; self.op.dim()];
        for (a, b) in v[self.offset..self.offset + self.len]
            .iter_mut()
            .zip(x.iter())
        {
            *a = *b;
        }
        let hv = self.op.0.hvp(&v).map_err(SpectrumError::operator)?;
        for (a, b) in y.iter_mut().zip(&hv[self.offset..self.offset + self.len]) {
            *a = *b;
        }
        Ok(())
    }
}

/// The curvature of one layer's block of the Hessian, over seeds.
#[derive(Clone, Debug, Serialize)]
pub struct LayerSpectrum {
    /// The paper's layer number.
    pub layer: usize,
    /// Its parameters (the block is `params x params`).
    pub params: usize,
    /// Largest eigenvalue of the block.
    pub top: Stat,
    /// Smallest eigenvalue of the block.
    pub min_eigenvalue: Stat,
    /// Trace of the block (Hutchinson).
    pub trace: Stat,
    /// The block's top `top_k` eigenvalues (descending), over seeds.
    pub top_k: Vec<Stat>,
    /// Per seed: (top, smallest, trace).
    pub per_seed: Vec<(u64, f64, f64, f64)>,
    /// The block's spectral density (SLQ) per seed: the nodes and weights of
    /// every run (empty with `slq_runs = 0`).
    pub density: Vec<SlqRuns>,
    /// SLQ weight at |eigenvalue| <= zero_rtol x the block's top (NaN without
    /// SLQ; a few Gauss nodes, for comparison only: the count is
    /// [`LayerSpectrum::near_zero_count`]).
    pub near_zero_share: f64,
    /// The block's eigenvalues with |lambda| <= zero_rtol x the block's top,
    /// by the kernel polynomial method (`None` with `count_probes = 0`).
    pub near_zero_count: Option<NearZeroCount>,
}

/// One seed's SLQ quadratures.
#[derive(Clone, Debug, Serialize)]
pub struct SlqRuns {
    /// The seed.
    pub seed: u64,
    /// Nodes of every run.
    pub nodes: Vec<Vec<f64>>,
    /// Weights of every run (each sums to 1).
    pub weights: Vec<Vec<f64>>,
}

/// The top `cfg.top_k` and smallest eigenvalues, the trace and (with
/// `cfg.slq_runs > 0`) the spectral density of the Hessian block of each of
/// `layers` (paper numbers), each over `cfg.seeds`.
pub fn analyse_layers(
    model: &Dcnn,
    data: &Data,
    cfg: &SpectrumConfig,
    layers: &[usize],
) -> Result<Vec<LayerSpectrum>> {
    cfg.validate("")?;
    let op = HessianOperator(LossHessian::new(model, data, cfg.chunk_size, cfg.bn)?);
    let counted = if cfg.count_probes > 0 {
        Some(HessianOperator(
            LossHessian::new(model, data, cfg.chunk_size, cfg.bn)?
                .with_precision(cfg.count_precision)?,
        ))
    } else {
        None
    };
    let mut out = Vec::new();
    for &layer in layers {
        let block = LayerBlock::new(&op, model, layer)?;
        let mut per_seed = Vec::new();
        let mut tops: Vec<Vec<f64>> = Vec::new();
        let mut density = Vec::new();
        for &seed in &cfg.seeds {
            let lp = LanczosParams::new()
                .steps(cfg.lanczos_steps.min(block.dim()))
                .tol(cfg.tol)
                .seed(seed)
                .max_applications(cfg.max_products.max(cfg.lanczos_steps));
            let ext = extremes(&block, &lp)
                .with_context(|| format!("layer {layer}: extreme eigenvalues"))?;
            let tr = HutchinsonParams::new()
                .probes(cfg.probes)
                .seed(seed)
                .run(&block)
                .with_context(|| format!("layer {layer}: Hutchinson trace"))?;
            per_seed.push((seed, ext.max().value(), ext.min().value(), tr.estimate()));
            let k = cfg.top_k.min(block.dim());
            if k > 1 {
                let top = top_k(&block, k, &lp)
                    .with_context(|| format!("layer {layer}: top eigenvalues"))?;
                tops.push(top.values().to_vec());
            } else {
                tops.push(vec![ext.max().value()]);
            }
            if cfg.slq_runs > 0 {
                let d = SlqParams::new()
                    .runs(cfg.slq_runs)
                    .steps(cfg.slq_steps.min(block.dim()))
                    .seed(seed)
                    .run(&block)
                    .with_context(|| format!("layer {layer}: stochastic Lanczos quadrature"))?;
                density.push(SlqRuns {
                    seed,
                    nodes: d.quadratures().iter().map(|q| q.nodes().to_vec()).collect(),
                    weights: d
                        .quadratures()
                        .iter()
                        .map(|q| q.weights().to_vec())
                        .collect(),
                });
            }
        }
        let col =
            |f: fn(&(u64, f64, f64, f64)) -> f64| -> Vec<f64> { per_seed.iter().map(f).collect() };
        let top = Stat::of(&col(|s| s.1));
        let k = tops.iter().map(Vec::len).min().unwrap_or(0);
        let top_k_stats = (0..k)
            .map(|i| Stat::of(&tops.iter().map(|t| t[i]).collect::<Vec<_>>()))
            .collect();
        let (mut zero_w, mut all_w) = (0.0, 0.0);
        for d in &density {
            for (nodes, weights) in d.nodes.iter().zip(&d.weights) {
                for (n, w) in nodes.iter().zip(weights) {
                    all_w += w;
                    if n.abs() <= cfg.zero_rtol * top.mean.abs() {
                        zero_w += w;
                    }
                }
            }
        }
        let near_zero_count = match &counted {
            Some(h) => Some(
                near_zero_count(
                    &LayerBlock::new(h, model, layer)?,
                    cfg,
                    top.mean,
                    cfg.seeds.first().copied().unwrap_or(0),
                )
                .with_context(|| format!("layer {layer}: near-zero count"))?,
            ),
            None => None,
        };
        out.push(LayerSpectrum {
            layer,
            params: block.dim(),
            near_zero_count,
            top,
            min_eigenvalue: Stat::of(&col(|s| s.2)),
            trace: Stat::of(&col(|s| s.3)),
            top_k: top_k_stats,
            per_seed,
            density,
            near_zero_share: if all_w > 0.0 {
                zero_w / all_w
            } else {
                f64::NAN
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use landscape_net::tch::Device;
    use landscape_net::{reestimate_bn, Activation, NetConfig};
    use ndarray::Array2;
    use ndarray_linalg::{Eigh, UPLO};

    fn tiny() -> (Dcnn, Data) {
        let n = 8;
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
        };
        let images: Vec<f32> = (0..n * 3 * 32 * 32).map(|_| next()).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let data = Data::new(&images, &labels, Device::Cpu).unwrap();
        let act = Activation::fit_relu(4, 3.0).unwrap().activation;
        let cfg = NetConfig {
            widths: vec![1, 1, 1, 1],
            activation: act,
            ..NetConfig::paper()
        };
        let mut m = Dcnn::new(&cfg, Device::Cpu, 5).unwrap();
        reestimate_bn(&mut m, &data, 8).unwrap();
        (m, data)
    }

    #[test]
    fn estimates_agree_with_the_exact_spectrum_of_a_small_network() {
        let (model, data) = tiny();
        let h = LossHessian::new(&model, &data, 8, HessianBn::Fixed).unwrap();
        let n = h.dim();
        // The full Hessian, column by column, symmetrised.
        let mut full = Array2::<f64>::zeros((n, n));
        for i in 0..n {
            let mut e = vec![0.0; n];
            e[i] = 1.0;
            let col = h.hvp(&e).unwrap();
            for j in 0..n {
                full[[j, i]] = col[j];
            }
        }
        let sym = (&full + &full.t()) / 2.0;
        let (exact, _) = sym.eigh(UPLO::Upper).unwrap();
        let mut exact: Vec<f64> = exact.to_vec();
        exact.sort_by(|a, b| b.total_cmp(a));
        let scale = exact[0].abs().max(exact[n - 1].abs());
        let trace: f64 = exact.iter().sum();
        let cfg = SpectrumConfig {
            chunk_size: 8,
            top_k: 3,
            lanczos_steps: 40,
            tol: 1e-4,
            max_products: 400,
            probes: 60,
            slq_runs: 8,
            slq_steps: 15,
            seeds: vec![0],
            // A cheap count: these tests are not about it (see
            // tests/degeneracy_count.rs); the default costs minutes.
            count_probes: 2,
            count_max_degree: 200,
            ..SpectrumConfig::default()
        };
        let r = analyse(&model, &data, &cfg).unwrap();
        assert_eq!(r.dim, n);
        for (i, s) in r.top.iter().enumerate() {
            // f32 products: agreement to about 1e-4 of the spectrum's scale.
            assert!(
                (s.mean - exact[i]).abs() <= 1e-4 * scale,
                "top {i}: {} vs exact {}",
                s.mean,
                exact[i]
            );
        }
        assert!(
            (r.min_eigenvalue.mean - exact[n - 1]).abs() <= 1e-4 * scale,
            "min {} vs exact {}",
            r.min_eigenvalue.mean,
            exact[n - 1]
        );
        for s in &r.seeds {
            assert!(
                (s.trace - trace).abs() <= 4.0 * s.trace_se + 1e-6 * scale,
                "Hutchinson {} +- {} vs exact trace {trace}",
                s.trace,
                s.trace_se
            );
            // SLQ: the first moment of every run's quadrature estimates tr(H)/n;
            // the mean over runs is within a few standard errors.
            let m1: Vec<f64> = s
                .density_nodes
                .iter()
                .zip(&s.density_weights)
                .map(|(nd, w)| nd.iter().zip(w).map(|(a, b)| a * b).sum::<f64>())
                .collect();
            let mean = m1.iter().sum::<f64>() / m1.len() as f64;
            let sd =
                (m1.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (m1.len() - 1) as f64).sqrt();
            assert!(
                (mean - trace / n as f64).abs()
                    <= 4.0 * sd / (m1.len() as f64).sqrt() + 1e-6 * scale,
                "SLQ tr/n {mean} vs exact {}",
                trace / n as f64
            );
        }
        assert!(r.gradient_norm.is_finite() && r.loss > 0.0);
        assert_eq!(r.trace.std, 0.0, "one seed: no spread");
        eprintln!(
            "products per seed: {:?}",
            r.seeds.iter().map(|s| s.products).collect::<Vec<_>>()
        );
    }

    #[test]
    fn jacobian_rank_counts_distinct_outputs() {
        let (model, data) = tiny();
        let w = model.num_params();
        let r = jacobian_rank(&model, &data, 3, HessianBn::Fixed).unwrap();
        assert_eq!((r.examples, r.rows, r.params), (3, 30, w));
        assert!(r.rank <= 30 && r.rank >= 20, "rank {} of 30 rows", r.rank);
        assert_eq!(r.null_directions, w - r.rank);
        // The same image three times: the rows repeat, the rank is that of one image.
        let one = data.head(1).unwrap();
        let r1 = jacobian_rank(&model, &one, 1, HessianBn::Fixed).unwrap();
        let mut images = Vec::new();
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
        };
        let first: Vec<f32> = (0..3 * 32 * 32).map(|_| next()).collect();
        for _ in 0..3 {
            images.extend_from_slice(&first);
        }
        let same = Data::new(&images, &[0, 0, 0], Device::Cpu).unwrap();
        let r3 = jacobian_rank(&model, &same, 3, HessianBn::Fixed).unwrap();
        assert_eq!(r3.rows, 30);
        assert_eq!(r3.rank, r1.rank, "three copies of one image add no rank");
    }

    #[test]
    fn a_layer_block_is_the_diagonal_block_of_the_full_hessian() {
        let (model, data) = tiny();
        let h = LossHessian::new(&model, &data, 8, HessianBn::Fixed).unwrap();
        let n = h.dim();
        let mut full = Array2::<f64>::zeros((n, n));
        for i in 0..n {
            let mut e = vec![0.0; n];
            e[i] = 1.0;
            let col = h.hvp(&e).unwrap();
            for j in 0..n {
                full[[j, i]] = col[j];
            }
        }
        let cfg = SpectrumConfig {
            chunk_size: 8,
            lanczos_steps: 40,
            tol: 1e-5,
            max_products: 400,
            probes: 40,
            top_k: 3,
            slq_runs: 2,
            slq_steps: 8,
            seeds: vec![0, 1],
            // A cheap count: these tests are not about it (see
            // tests/degeneracy_count.rs); the default costs minutes.
            count_probes: 2,
            count_max_degree: 200,
            ..SpectrumConfig::default()
        };
        let layers = analyse_layers(&model, &data, &cfg, &[2, 4]).unwrap();
        let mut total = 0;
        for (ls, layer) in layers.iter().zip([2usize, 4]) {
            let (off, len) = layer_range(&model, layer).unwrap();
            assert_eq!(ls.params, len);
            total += len;
            let block = full
                .slice(ndarray::s![off..off + len, off..off + len])
                .to_owned();
            let sym = (&block + &block.t()) / 2.0;
            let (ev, _) = sym.eigh(UPLO::Upper).unwrap();
            let (lo, hi) = (ev[0], ev[len - 1]);
            let scale = lo.abs().max(hi.abs()).max(1e-12);
            assert!(
                (ls.top.mean - hi).abs() <= 1e-3 * scale,
                "layer {layer}: {} vs {hi}",
                ls.top.mean
            );
            assert!(
                (ls.min_eigenvalue.mean - lo).abs() <= 1e-3 * scale,
                "layer {layer}: {} vs {lo}",
                ls.min_eigenvalue.mean
            );
            // The top-k are the block's k largest; every SLQ run is a
            // probability distribution on [smallest, largest].
            assert_eq!(ls.top_k.len(), cfg.top_k.min(len));
            for (i, st) in ls.top_k.iter().enumerate() {
                let want = ev[len - 1 - i];
                assert!(
                    (st.mean - want).abs() <= 1e-3 * scale,
                    "layer {layer} top {i}: {} vs {want}",
                    st.mean
                );
            }
            assert_eq!(ls.density.len(), cfg.seeds.len());
            for d in &ls.density {
                for (nodes, w) in d.nodes.iter().zip(&d.weights) {
                    assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-9);
                    for n in nodes {
                        assert!(
                            *n >= lo - 1e-3 * scale && *n <= hi + 1e-3 * scale,
                            "node {n} outside [{lo}, {hi}]"
                        );
                    }
                }
            }
            assert!((0.0..=1.0).contains(&ls.near_zero_share));
            let tr: f64 = (0..len).map(|i| sym[[i, i]]).sum();
            assert!(
                (ls.trace.mean - tr).abs() <= 0.5 * tr.abs().max(scale),
                "layer {layer}: trace {} vs {tr}",
                ls.trace.mean
            );
        }
        // Layer 2 (1 filter of 3x3x3 + bias) and layer 4 (1x1x3x3 + bias).
        assert_eq!(total, 28 + 10);
        assert!(analyse_layers(&model, &data, &cfg, &[9]).is_err());
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = SpectrumConfig {
            lanczos_steps: 3,
            top_k: 5,
            // A cheap count: these tests are not about it (see
            // tests/degeneracy_count.rs); the default costs minutes.
            count_probes: 2,
            count_max_degree: 200,
            ..SpectrumConfig::default()
        };
        let e = bad.validate("").unwrap_err().to_string();
        assert!(e.contains("`lanczos_steps`"), "{e}");
    }
}
