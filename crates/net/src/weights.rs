//! Weight-space operations: perturbation, interpolation, averaging.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::model::{tensor_from, tensor_values};
use crate::{Dcnn, NetError};

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

/// Adds Gaussian noise to every layer's weight and bias tensor: each tensor
/// `W` gets `N(0, (alpha * s(W))^2)` element-wise, where `s` is its own
/// [`PerturbScale`]. The noise comes from one ChaCha8 stream seeded with
/// `seed`, tensor after tensor in export order. BN running statistics are
/// untouched (re-estimate them with [`crate::reestimate_bn`] if wanted).
pub fn perturb(
    model: &mut Dcnn,
    alpha: f64,
    scale: PerturbScale,
    seed: u64,
) -> Result<(), NetError> {
    if !(alpha.is_finite() && alpha >= 0.0) {
        return Err(NetError::Config {
            field: "alpha".to_string(),
            reason: format!("must be finite and non-negative, found {alpha}"),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let device = model.device();
    let _guard = tch::no_grad_guard();
    for p in model.params() {
        let values = tensor_values(p)?;
        let n = values.len() as f64;
        let s = match scale {
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
            PerturbScale::MeanAbs => values.iter().map(|&v| f64::from(v).abs()).sum::<f64>() / n,
        };
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
    }
    Ok(())
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

/// `(1 - t) * a + t * b` for every parameter and BN running statistic.
/// `t = 0` and `t = 1` return exact copies of `a` and `b`; other `t`
/// (including outside `[0, 1]`, for extrapolation) are computed in `f32`.
pub fn interpolate(a: &Dcnn, b: &Dcnn, t: f64) -> Result<Dcnn, NetError> {
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
    combine(&[a, b], &[1.0 - t, t])
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
