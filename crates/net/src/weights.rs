//! Weight-space operations: perturbation, interpolation, averaging.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::model::{tensor_from, tensor_values};
use crate::{Dcnn, NamedTensor, NetError};

/// The per-tensor scale of a Gaussian perturbation.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum PerturbScale {
    /// `alpha * std(W)` (unbiased standard deviation, as `torch.std`).
    #[default]
    Std,
    /// `alpha * mean(|W|)`.
    MeanAbs,
}

/// What [`perturb_with`] does: which tensors get Gaussian noise, and how much.
///
/// The default (`alpha = 0`, [`PerturbScale::Std`], `biases = false`) leaves
/// the model unchanged; set `alpha`. Missing fields take their defaults when
/// deserialised (`{"alpha": 0.25}` is the paper's perturbation of the weight
/// tensors with noise of std `0.25 * std(W)`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PerturbSpec {
    /// Noise scale relative to each tensor's own scale (finite, `>= 0`).
    pub alpha: f64,
    /// The per-tensor scale `s(W)`: the noise std is `alpha * s(W)`.
    pub scale: PerturbScale,
    /// Whether bias tensors are perturbed too (the paper perturbs only the
    /// weight tensors). When `false` they are left bit-identical and no
    /// random numbers are drawn for them.
    pub biases: bool,
}

impl Default for PerturbSpec {
    fn default() -> Self {
        Self {
            alpha: 0.0,
            scale: PerturbScale::Std,
            biases: false,
        }
    }
}

/// The noise one tensor received from [`perturb_with`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PerturbedTensor {
    /// Export name, e.g. `layer3.weight`.
    pub name: String,
    /// `s(W)`: the tensor's own scale before perturbation ([`PerturbScale`]).
    pub scale: f64,
    /// The standard deviation of the added noise, `alpha * s(W)`.
    pub sigma: f64,
}

/// What [`perturb_with`] did: one entry per perturbed tensor, in export order
/// (untouched tensors are not listed).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct PerturbReport {
    /// The perturbed tensors.
    pub tensors: Vec<PerturbedTensor>,
}

/// `s(W)` of `values` for `scale`.
fn tensor_scale(values: &[f32], scale: PerturbScale) -> f64 {
    let n = values.len() as f64;
    match scale {
        PerturbScale::Std => {
            if values.len() < 2 {
                0.0
            } else {
                let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
                let ss = values
                    .iter()
                    .map(|&v| (f64::from(v) - mean).powi(2))
                    .sum::<f64>();
                (ss / (n - 1.0)).sqrt()
            }
        }
        PerturbScale::MeanAbs => {
            if values.is_empty() {
                0.0
            } else {
                values.iter().map(|&v| f64::from(v).abs()).sum::<f64>() / n
            }
        }
    }
}

/// Adds Gaussian noise to every layer's weight tensor, and to its bias
/// tensor when `spec.biases`: each perturbed tensor `W` gets
/// `N(0, sigma^2)` element-wise with `sigma = spec.alpha * s(W)`, where `s` is
/// its own [`PerturbScale`] (computed before any noise is added). The noise
/// comes from one ChaCha8 stream seeded with `seed`, drawn element by element
/// (row-major), tensor after tensor in export order, skipping the tensors
/// that are not perturbed; the sum is computed in `f64` and rounded to `f32`.
/// BN running statistics are untouched (re-estimate them with
/// [`crate::reestimate_bn`] if wanted). Returns the name, `s(W)` and `sigma`
/// of every perturbed tensor.
pub fn perturb_with(
    model: &mut Dcnn,
    spec: &PerturbSpec,
    seed: u64,
) -> Result<PerturbReport, NetError> {
    let alpha = spec.alpha;
    if !(alpha.is_finite() && alpha >= 0.0) {
        return Err(NetError::Config {
            field: "alpha".to_string(),
            reason: format!("must be finite and non-negative, found {alpha}"),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let device = model.device();
    let names = model.param_names_shapes();
    let _guard = tch::no_grad_guard();
    let mut report = PerturbReport::default();
    for (p, (name, _)) in model.params().into_iter().zip(names) {
        if !spec.biases && name.ends_with(".bias") {
            continue;
        }
        let values = tensor_values(p)?;
        let s = tensor_scale(&values, spec.scale);
        let sigma = alpha * s;
        let noisy: Vec<f32> = values
            .iter()
            .map(|&v| {
                let z: f64 = StandardNormal.sample(&mut rng);
                (f64::from(v) + sigma * z) as f32
            })
            .collect();
        let mut dst = p.shallow_clone();
        dst.f_copy_(&tensor_from(&noisy, &p.size(), device)?)?;
        report.tensors.push(PerturbedTensor {
            name,
            scale: s,
            sigma,
        });
    }
    Ok(report)
}

/// Adds Gaussian noise to every layer's weight and bias tensor: each tensor
/// `W` gets `N(0, (alpha * s(W))^2)` element-wise, where `s` is its own
/// [`PerturbScale`]. The noise comes from one ChaCha8 stream seeded with
/// `seed`, tensor after tensor in export order. BN running statistics are
/// untouched (re-estimate them with [`crate::reestimate_bn`] if wanted).
///
/// The same as [`perturb_with`] with `biases: true`; use that to leave the
/// biases alone or to learn the noise levels.
pub fn perturb(
    model: &mut Dcnn,
    alpha: f64,
    scale: PerturbScale,
    seed: u64,
) -> Result<(), NetError> {
    let spec = PerturbSpec {
        alpha,
        scale,
        biases: true,
    };
    perturb_with(model, &spec, seed).map(|_| ())
}

fn check_compatible(models: &[&Dcnn]) -> Result<(), NetError> {
    let Some(first) = models.first() else {
        return Err(NetError::Config {
            field: "models".to_string(),
            reason: "must not be empty".to_string(),
        });
    };
    for (i, m) in models.iter().enumerate().skip(1) {
        if m.config() != first.config() || m.device() != first.device() {
            return Err(NetError::Incompatible {
                index: i,
                expected: format!("{:?} on {:?}", first.config(), first.device()),
                found: format!("{:?} on {:?}", m.config(), m.device()),
            });
        }
    }
    Ok(())
}

/// How [`interpolate_in`] computes `(1 - t) a + t b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lerp {
    /// Tensor by tensor in the tensors' `f32` (libtorch's scalar operations:
    /// both products and their sum rounded to `f32`), as [`interpolate`].
    F32,
    /// Element by element in `f64`, rounded once to `f32` (the arithmetic of
    /// `landscape_surface::Weights::lerp`).
    F64,
}

/// `(1 - t) * a + t * b` for every parameter and BN running statistic.
/// `t = 0` and `t = 1` return exact copies of `a` and `b`; other `t`
/// (including outside `[0, 1]`, for extrapolation) are computed in `f32`.
pub fn interpolate(a: &Dcnn, b: &Dcnn, t: f64) -> Result<Dcnn, NetError> {
    interpolate_in(a, b, t, Lerp::F32)
}

/// [`interpolate`] with the arithmetic `lerp` says. `t = 0` and `t = 1`
/// return exact copies of `a` and `b` with either.
pub fn interpolate_in(a: &Dcnn, b: &Dcnn, t: f64, lerp: Lerp) -> Result<Dcnn, NetError> {
    check_compatible(&[a, b])?;
    if !t.is_finite() {
        return Err(NetError::Config {
            field: "t".to_string(),
            reason: format!("must be finite, found {t}"),
        });
    }
    if t == 0.0 {
        return a.try_clone();
    }
    if t == 1.0 {
        return b.try_clone();
    }
    match lerp {
        Lerp::F32 => combine(&[a, b], &[1.0 - t, t]),
        Lerp::F64 => {
            let s = 1.0 - t;
            let mixed: Vec<NamedTensor> = a
                .export()?
                .into_iter()
                .zip(b.export()?)
                .map(|(x, y)| NamedTensor {
                    data: x
                        .data
                        .iter()
                        .zip(&y.data)
                        .map(|(&u, &v)| (s * f64::from(u) + t * f64::from(v)) as f32)
                        .collect(),
                    ..x
                })
                .collect();
            let mut out = a.try_clone()?;
            out.import(&mixed)?;
            Ok(out)
        }
    }
}

/// The element-wise mean of the models' parameters and BN running statistics.
pub fn average(models: &[&Dcnn]) -> Result<Dcnn, NetError> {
    check_compatible(models)?;
    if let [only] = models {
        return only.try_clone();
    }
    let w = 1.0 / models.len() as f64;
    combine(models, &vec![w; models.len()])
}

/// `sum_k weights[k] * models[k]` tensor by tensor.
fn combine(models: &[&Dcnn], weights: &[f64]) -> Result<Dcnn, NetError> {
    let Some(first) = models.first() else {
        return Err(NetError::Config {
            field: "models".to_string(),
            reason: "must not be empty".to_string(),
        });
    };
    let mut out = first.try_clone()?;
    let _guard = tch::no_grad_guard();
    let sources: Vec<Vec<(String, &Tensor)>> = models.iter().map(|m| m.named()).collect();
    for (k, dst) in out.tensors_mut().into_iter().enumerate() {
        let mut acc: Option<Tensor> = None;
        for (src, &w) in sources.iter().zip(weights) {
            let term = src[k].1.f_mul_scalar(w)?;
            acc = Some(match acc {
                None => term,
                Some(a) => a.f_add(&term)?,
            });
        }
        if let Some(a) = acc {
            dst.f_copy_(&a)?;
        }
    }
    Ok(out)
}
