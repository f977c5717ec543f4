//! Activations: ReLU and its polynomial surrogate.
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::NetError;

/// Number of points of the dense grid on which [`PolyFit::sup_error`] is measured.
const SUP_GRID: usize = 20_001;

/// The activation used after every hidden layer (2..=5).
///
/// Serialised as `{"kind":"relu"}` or
/// `{"kind":"poly","coefficients":[c0, c1, ...],"radius":r}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Activation {
    /// `max(x, 0)`.
    #[default]
    Relu,
    /// `sum_k coefficients[k] * x^k` (monomial basis, lowest degree first),
    /// evaluated with Horner's rule. `radius` is the interval `[-r, r]` the
    /// polynomial was fitted on: inputs outside it are counted during training,
    /// never clamped.
    Poly {
        /// Monomial coefficients, `c0` first.
        coefficients: Vec<f64>,
        /// Half-width of the fitting interval.
        radius: f64,
    },
}

/// A polynomial fitted to ReLU, with its quality.
#[derive(Clone, Debug, PartialEq)]
pub struct PolyFit {
    /// The resulting [`Activation::Poly`].
    pub activation: Activation,
    /// `max |p(x) - relu(x)|` over `[-r, r]` (dense grid of 20,001 points, in f64).
    pub sup_error: f64,
    /// Polynomial degree.
    pub degree: usize,
    /// Half-width of the fitting interval.
    pub radius: f64,
}

impl Activation {
    /// Fits ReLU on `[-radius, radius]` with a polynomial of `degree` by least
    /// squares on `4 * (degree + 1)` Chebyshev nodes.
    ///
    /// On Chebyshev nodes the Chebyshev polynomials `T_0..T_degree` are
    /// discretely orthogonal, so the least-squares solution is the discrete
    /// Chebyshev projection (no linear system to solve); it is then converted
    /// to the monomial basis in `x` for Horner evaluation.
    pub fn fit_relu(degree: usize, radius: f64) -> Result<PolyFit, NetError> {
        let fail = |reason: &str| NetError::Fit {
            degree,
            radius,
            reason: reason.to_string(),
        };
        if !(radius.is_finite() && radius > 0.0) {
            return Err(fail("the radius must be finite and positive"));
        }
        if degree == 0 || degree > 40 {
            return Err(fail(
                "the degree must be in 1..=40 (the monomial basis is ill-conditioned beyond)",
            ));
        }
        let m = 4 * (degree + 1);
        // Chebyshev coefficients of relu(r t), t in [-1, 1].
        let mut cheb = vec![0.0f64; degree + 1];
        for j in 0..m {
            let theta = std::f64::consts::PI * (j as f64 + 0.5) / m as f64;
            let t = theta.cos();
            let y = (radius * t).max(0.0);
            for (k, c) in cheb.iter_mut().enumerate() {
                *c += y * (k as f64 * theta).cos();
            }
        }
        for (k, c) in cheb.iter_mut().enumerate() {
            *c *= if k == 0 { 1.0 } else { 2.0 } / m as f64;
        }
        // Chebyshev -> monomial in t via the recurrence T_{k+1} = 2 t T_k - T_{k-1}.
        let mut in_t = vec![0.0f64; degree + 1];
        let mut prev = vec![0.0f64; degree + 1]; // T_{k-1}
        let mut cur = vec![0.0f64; degree + 1]; // T_k
        prev[0] = 1.0;
        in_t[0] += cheb[0];
        if degree >= 1 {
            cur[1] = 1.0;
            in_t[1] += cheb[1];
        }
        for &ck in cheb.iter().skip(2) {
            let mut next = vec![0.0f64; degree + 1];
            for i in 0..degree {
                next[i + 1] += 2.0 * cur[i];
            }
            for (n, p) in next.iter_mut().zip(&prev) {
                *n -= p;
            }
            for (a, n) in in_t.iter_mut().zip(&next) {
                *a += ck * n;
            }
            prev = std::mem::replace(&mut cur, next);
        }
        // t = x / r.
        let coefficients: Vec<f64> = in_t
            .iter()
            .enumerate()
            .map(|(k, a)| a / radius.powi(k as i32))
            .collect();
        if coefficients.iter().any(|c| !c.is_finite()) {
            return Err(fail("non-finite coefficient"));
        }
        let activation = Activation::Poly {
            coefficients,
            radius,
        };
        let sup_error = (0..SUP_GRID)
            .map(|i| {
                let x = -radius + 2.0 * radius * i as f64 / (SUP_GRID - 1) as f64;
                (activation.eval_f64(x) - x.max(0.0)).abs()
            })
            .fold(0.0f64, f64::max);
        Ok(PolyFit {
            activation,
            sup_error,
            degree,
            radius,
        })
    }

    /// The activation at one point, in f64 (Horner's rule for polynomials).
    pub fn eval_f64(&self, x: f64) -> f64 {
        match self {
            Activation::Relu => x.max(0.0),
            Activation::Poly { coefficients, .. } => {
                coefficients.iter().rev().fold(0.0, |acc, c| acc * x + c)
            }
        }
    }

    /// The fitting radius of a polynomial activation (`None` for ReLU).
    pub fn radius(&self) -> Option<f64> {
        match self {
            Activation::Relu => None,
            Activation::Poly { radius, .. } => Some(*radius),
        }
    }

    /// Checks the activation's parameters.
    pub fn validate(&self) -> Result<(), NetError> {
        match self {
            Activation::Relu => Ok(()),
            Activation::Poly {
                coefficients,
                radius,
            } => {
                let bad = |reason: &str| NetError::Config {
                    field: "activation".to_string(),
                    reason: reason.to_string(),
                };
                if coefficients.is_empty() {
                    return Err(bad("has no coefficients (expected at least c0)"));
                }
                if let Some(i) = coefficients.iter().position(|c| !c.is_finite()) {
                    return Err(NetError::Config {
                        field: format!("activation.coefficients[{i}]"),
                        reason: "must be finite".to_string(),
                    });
                }
                if !(radius.is_finite() && *radius > 0.0) {
                    return Err(NetError::Config {
                        field: "activation.radius".to_string(),
                        reason: format!("must be finite and positive, found {radius}"),
                    });
                }
                Ok(())
            }
        }
    }

    /// Applies the activation element-wise inside the autograd graph
    /// (Horner's rule for polynomials; nothing is clamped).
    pub fn apply(&self, xs: &Tensor) -> Result<Tensor, NetError> {
        match self {
            Activation::Relu => Ok(xs.f_relu()?),
            Activation::Poly { coefficients, .. } => {
                let mut rev = coefficients.iter().rev();
                let Some(&lead) = rev.next() else {
                    return Ok(xs.f_zeros_like()?);
                };
                if coefficients.len() == 1 {
                    return Ok(xs.f_zeros_like()?.f_add_scalar(lead)?);
                }
                // Horner: ((c_n x + c_{n-1}) x + ...) x + c_0.
                let mut acc = xs.f_mul_scalar(lead)?;
                let mut rest = rev.peekable();
                while let Some(&c) = rest.next() {
                    acc = acc.f_add_scalar(c)?;
                    if rest.peek().is_some() {
                        acc = acc.f_mul(xs)?;
                    }
                }
                Ok(acc)
            }
        }
    }
}
