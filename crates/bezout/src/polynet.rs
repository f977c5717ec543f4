//! A small fully connected network with a polynomial activation, its analytic
//! Jacobian (backpropagation) and the exact Hessian of the squared loss
//! (forward-mode dual numbers through the same backpropagation).

use std::ops::{Add, AddAssign, Mul, Neg, Sub};

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::error::{BezoutError, Result};

/// Arithmetic the network code is generic over: `f64`, and dual numbers for
/// Hessian-vector products.
pub(crate) trait Scalar:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Neg<Output = Self> + AddAssign
{
    fn cst(x: f64) -> Self;
}

impl Scalar for f64 {
    fn cst(x: f64) -> Self {
        x
    }
}

/// `v + d eps` with `eps^2 = 0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Dual {
    pub(crate) v: f64,
    pub(crate) d: f64,
}

impl Add for Dual {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            v: self.v + o.v,
            d: self.d + o.d,
        }
    }
}
impl Sub for Dual {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self {
            v: self.v - o.v,
            d: self.d - o.d,
        }
    }
}
impl Mul for Dual {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        Self {
            v: self.v * o.v,
            d: self.v * o.d + self.d * o.v,
        }
    }
}
impl Neg for Dual {
    type Output = Self;
    fn neg(self) -> Self {
        Self {
            v: -self.v,
            d: -self.d,
        }
    }
}
impl AddAssign for Dual {
    fn add_assign(&mut self, o: Self) {
        *self = *self + o;
    }
}
impl Scalar for Dual {
    fn cst(x: f64) -> Self {
        Self { v: x, d: 0.0 }
    }
}

/// A univariate polynomial activation `sigma(z) = sum_j c_j z^j`.
#[derive(Debug, Clone, PartialEq)]
pub struct Activation {
    coefficients: Vec<f64>,
}

impl Activation {
    /// From coefficients `c_0, c_1, ...` (the last one must be non-zero).
    pub fn new(coefficients: Vec<f64>) -> Result<Self> {
        match coefficients.last() {
            Some(&c) if c != 0.0 && coefficients.iter().all(|c| c.is_finite()) => {
                Ok(Self { coefficients })
            }
            _ => Err(BezoutError::invalid(
                "activation",
                format!("{coefficients:?}"),
                "finite coefficients c_0..c_k with c_k != 0",
            )),
        }
    }

    /// `z + z^2 / 2`.
    pub fn quadratic() -> Self {
        Self {
            coefficients: vec![0.0, 1.0, 0.5],
        }
    }

    /// `z + z^2 / 2 + z^3 / 6` (no symmetry other than unit permutations).
    pub fn cubic() -> Self {
        Self {
            coefficients: vec![0.0, 1.0, 0.5, 1.0 / 6.0],
        }
    }

    /// `z + z^3 / 3` (odd: flipping a unit's signs is a symmetry).
    pub fn odd_cubic() -> Self {
        Self {
            coefficients: vec![0.0, 1.0, 0.0, 1.0 / 3.0],
        }
    }

    /// Coefficients `c_0..c_k`.
    pub fn coefficients(&self) -> &[f64] {
        &self.coefficients
    }

    /// The degree `k`.
    pub fn degree(&self) -> u32 {
        (self.coefficients.len() - 1) as u32
    }

    /// `sigma(-z) = -sigma(z)`.
    pub fn is_odd(&self) -> bool {
        self.coefficients.iter().step_by(2).all(|&c| c == 0.0)
    }

    /// `sigma(-z) = sigma(z)`.
    pub fn is_even(&self) -> bool {
        self.coefficients
            .iter()
            .skip(1)
            .step_by(2)
            .all(|&c| c == 0.0)
    }

    fn eval<T: Scalar>(&self, z: T) -> (T, T) {
        let k = self.coefficients.len() - 1;
        let mut v = T::cst(self.coefficients[k]);
        let mut d = T::cst(0.0);
        for &c in self.coefficients[..k].iter().rev() {
            d = d * z + v;
            v = v * z + T::cst(c);
        }
        (v, d)
    }
}

/// A fully connected network `inputs -> hidden... -> 1` with biases on the
/// hidden layers, an optional output bias, and a polynomial activation after
/// every hidden layer. Parameters are laid out layer by layer, each as its
/// weight matrix (row-major, `out x in`) then its bias.
#[derive(Debug, Clone, PartialEq)]
pub struct PolyNet {
    sizes: Vec<usize>,
    activation: Activation,
    output_bias: bool,
}

impl PolyNet {
    /// `inputs -> hidden... -> 1`.
    pub fn new(
        inputs: usize,
        hidden: &[usize],
        activation: Activation,
        output_bias: bool,
    ) -> Result<Self> {
        if inputs == 0 || hidden.is_empty() || hidden.contains(&0) {
            return Err(BezoutError::invalid(
                "hidden",
                format!("inputs {inputs}, hidden {hidden:?}"),
                "at least one input and one non-empty hidden layer",
            ));
        }
        let mut sizes = vec![inputs];
        sizes.extend_from_slice(hidden);
        sizes.push(1);
        Ok(Self {
            sizes,
            activation,
            output_bias,
        })
    }

    /// Layer sizes, input to output.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The activation.
    pub fn activation(&self) -> &Activation {
        &self.activation
    }

    /// Whether the output layer has a bias.
    pub fn output_bias(&self) -> bool {
        self.output_bias
    }

    fn n_layers(&self) -> usize {
        self.sizes.len() - 1
    }

    fn has_bias(&self, l: usize) -> bool {
        l + 1 < self.n_layers() || self.output_bias
    }

    /// Offset of layer `l`'s weight matrix, and of its bias.
    /// (For `l` = the number of layers: the total count, twice.)
    pub(crate) fn offsets(&self, l: usize) -> (usize, usize) {
        let mut off = 0;
        for i in 0..l {
            off += self.sizes[i] * self.sizes[i + 1]
                + if self.has_bias(i) {
                    self.sizes[i + 1]
                } else {
                    0
                };
        }
        let matrix = if l < self.n_layers() {
            self.sizes[l] * self.sizes[l + 1]
        } else {
            0
        };
        (off, off + matrix)
    }

    /// Number of parameters `W`.
    pub fn n_params(&self) -> usize {
        self.offsets(self.n_layers()).0
    }

    /// Output and gradient with respect to the parameters, for one input.
    pub(crate) fn output_and_grad<T: Scalar>(
        &self,
        w: &[T],
        x: ArrayView1<'_, f64>,
        grad: &mut [T],
    ) -> T {
        let nl = self.n_layers();
        // h[l] is the input of layer l; dz[l] the activation's derivative at layer l's pre-activation.
        let mut h: Vec<Vec<T>> = Vec::with_capacity(nl + 1);
        let mut dsig: Vec<Vec<T>> = Vec::with_capacity(nl);
        h.push(x.iter().map(|&v| T::cst(v)).collect());
        for l in 0..nl {
            let (wo, bo) = self.offsets(l);
            let (fan_in, fan_out) = (self.sizes[l], self.sizes[l + 1]);
            let mut out = Vec::with_capacity(fan_out);
            let mut der = Vec::with_capacity(fan_out);
            for i in 0..fan_out {
                let mut z = if self.has_bias(l) {
                    w[bo + i]
                } else {
                    T::cst(0.0)
                };
                for (j, &hj) in h[l].iter().enumerate() {
                    z += w[wo + i * fan_in + j] * hj;
                }
                if l + 1 < nl {
                    let (s, ds) = self.activation.eval(z);
                    out.push(s);
                    der.push(ds);
                } else {
                    out.push(z);
                    der.push(T::cst(1.0));
                }
            }
            h.push(out);
            dsig.push(der);
        }
        let y = h[nl][0];
        // Backward: delta is d output / d pre-activation of layer l.
        let mut delta: Vec<T> = dsig[nl - 1].clone();
        for l in (0..nl).rev() {
            let (wo, bo) = self.offsets(l);
            let (fan_in, fan_out) = (self.sizes[l], self.sizes[l + 1]);
            for i in 0..fan_out {
                for j in 0..fan_in {
                    grad[wo + i * fan_in + j] = delta[i] * h[l][j];
                }
                if self.has_bias(l) {
                    grad[bo + i] = delta[i];
                }
            }
            if l > 0 {
                let mut prev = vec![T::cst(0.0); fan_in];
                for (i, &di) in delta.iter().enumerate() {
                    for (j, p) in prev.iter_mut().enumerate() {
                        *p += w[wo + i * fan_in + j] * di;
                    }
                }
                for (p, &ds) in prev.iter_mut().zip(&dsig[l - 1]) {
                    *p = *p * ds;
                }
                delta = prev;
            }
        }
        y
    }

    /// Outputs `f(w; x_i)` for the rows `x_i` of `x`.
    pub fn outputs(&self, w: ArrayView1<'_, f64>, x: ArrayView2<'_, f64>) -> Array1<f64> {
        self.outputs_and_jacobian(w, x).0
    }

    /// Outputs and the `N x W` Jacobian `J_ij = d f(w; x_i) / d w_j`.
    pub fn outputs_and_jacobian(
        &self,
        w: ArrayView1<'_, f64>,
        x: ArrayView2<'_, f64>,
    ) -> (Array1<f64>, Array2<f64>) {
        let p = self.n_params();
        let w: Vec<f64> = w.to_vec();
        let mut f = Array1::zeros(x.nrows());
        let mut jac = Array2::zeros((x.nrows(), p));
        let mut g = vec![0.0; p];
        for (i, xi) in x.rows().into_iter().enumerate() {
            f[i] = self.output_and_grad(&w, xi, &mut g);
            jac.row_mut(i).assign(&ArrayView1::from(&g[..]));
        }
        (f, jac)
    }

    /// The exact Hessian of `L(w) = 1/2 sum_i (f(w; x_i) - y_i)^2`,
    /// `J^T J + sum_i r_i Hess f_i`, one column per dual-number pass through
    /// backpropagation of the loss gradient.
    pub fn loss_hessian(
        &self,
        w: ArrayView1<'_, f64>,
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, f64>,
    ) -> Array2<f64> {
        let p = self.n_params();
        let mut hess = Array2::zeros((p, p));
        let mut wd: Vec<Dual> = w.iter().map(|&v| Dual { v, d: 0.0 }).collect();
        let mut g = vec![Dual::cst(0.0); p];
        for col in 0..p {
            wd[col].d = 1.0;
            let mut acc = vec![Dual::cst(0.0); p];
            for (xi, &yi) in x.rows().into_iter().zip(y.iter()) {
                let r = self.output_and_grad(&wd, xi, &mut g) - Dual::cst(yi);
                for (a, &gj) in acc.iter_mut().zip(&g) {
                    *a += r * gj;
                }
            }
            for (row, a) in acc.iter().enumerate() {
                hess[[row, col]] = a.d;
            }
            wd[col].d = 0.0;
        }
        hess
    }

    /// The parameters mapped to a canonical representative of their orbit
    /// under the network's discrete symmetries: permutations of the units of
    /// each hidden layer and, for an odd (even) activation, flipping the sign
    /// of a unit's incoming weights and bias (and its outgoing weights). Each
    /// unit is first sign-normalised (first incoming weight >= 0), then units
    /// are sorted by their first incoming weight, layer by layer.
    pub fn canonical(&self, w: ArrayView1<'_, f64>) -> Array1<f64> {
        let mut w = w.to_owned();
        let nl = self.n_layers();
        for l in 0..nl - 1 {
            let (wo, bo) = self.offsets(l);
            let (wo2, _) = self.offsets(l + 1);
            let (fan_in, units, next) = (self.sizes[l], self.sizes[l + 1], self.sizes[l + 2]);
            if self.activation.is_odd() || self.activation.is_even() {
                for i in 0..units {
                    if w[wo + i * fan_in] < 0.0 {
                        for j in 0..fan_in {
                            w[wo + i * fan_in + j] = -w[wo + i * fan_in + j];
                        }
                        w[bo + i] = -w[bo + i];
                        if self.activation.is_odd() {
                            for o in 0..next {
                                w[wo2 + o * units + i] = -w[wo2 + o * units + i];
                            }
                        }
                    }
                }
            }
            let mut order: Vec<usize> = (0..units).collect();
            order.sort_by(|&a, &b| w[wo + a * fan_in].total_cmp(&w[wo + b * fan_in]));
            let old = w.clone();
            for (new_i, &old_i) in order.iter().enumerate() {
                for j in 0..fan_in {
                    w[wo + new_i * fan_in + j] = old[wo + old_i * fan_in + j];
                }
                w[bo + new_i] = old[bo + old_i];
                for o in 0..next {
                    w[wo2 + o * units + new_i] = old[wo2 + o * units + old_i];
                }
            }
        }
        w
    }

    /// Order of the discrete symmetry group used by [`Self::canonical`].
    pub fn symmetry_order(&self) -> f64 {
        let signs = self.activation.is_odd() || self.activation.is_even();
        self.sizes[1..self.sizes.len() - 1]
            .iter()
            .map(|&h| {
                (1..=h).map(|i| i as f64).product::<f64>()
                    * if signs { 2f64.powi(h as i32) } else { 1.0 }
            })
            .product()
    }
}
