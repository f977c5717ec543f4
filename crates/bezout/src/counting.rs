//! The counting argument of Section 3 / Appendix A as exact numbers.
//!
//! A network is described layer by layer ([`Architecture`]): how many weights
//! a layer has, how many values it outputs, and whether a polynomial
//! activation follows it. Replacing each activation by a polynomial of degree
//! `k_l` makes every output a polynomial in the weights, whose degree obeys an
//! exact recurrence: a layer multiplies a weight (degree 1) by the previous
//! layer's output (degree `d_{l-1}`), adds a bias (degree 1), then applies the
//! activation, so
//!
//! ```text
//! d_0 = 0,   d_l = k_l * (1 + d_{l-1})      (k_l = 1 for a linear layer)
//! ```
//!
//! For `L` layers with the same `k` on the `L - 1` hidden ones and a linear
//! output this is `D = 1 + k + ... + k^(L-1) = (k^L - 1)/(k - 1)`, slightly
//! below the paper's `k^L` (which is also the degree one gets if the output
//! layer were activated too, up to lower-order terms: `k + ... + k^L`). The
//! degree in the *input* is `prod k_l` over hidden layers, `k^(L-1)`.
//!
//! Batch normalisation: with batch statistics, BN divides a pre-activation by
//! `sqrt(var + eps)`, a function of the weights, so the network is no longer
//! polynomial in the weights and Bezout's theorem does not apply directly.
//! The count here treats the BN statistics as fixed constants (as at
//! inference, with running statistics), which makes BN an affine map of
//! degree 1 that leaves every degree unchanged. (BN with batch statistics
//! also makes each hidden layer's map invariant to rescaling that layer's
//! weights, one more flat direction per BN layer on top of `W - N`.)

use std::fmt;

use num_bigint::BigUint;
use num_traits::{One, Zero};

use crate::error::{BezoutError, Result};
use crate::magnitude::Magnitude;

/// One layer of a network for counting purposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSpec {
    name: String,
    weights: u64,
    outputs: u64,
    activated: bool,
}

impl LayerSpec {
    /// A layer called `name` with `weights` trainable parameters (biases
    /// included), producing `outputs` values, followed by a polynomial
    /// activation when `activated`.
    pub fn new(name: impl Into<String>, weights: u64, outputs: u64, activated: bool) -> Self {
        Self {
            name: name.into(),
            weights,
            outputs,
            activated,
        }
    }

    /// The layer's display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Trainable parameters, biases included.
    pub fn weights(&self) -> u64 {
        self.weights
    }

    /// Number of values the layer outputs (per data point).
    pub fn outputs(&self) -> u64 {
        self.outputs
    }

    /// Whether a polynomial activation follows the layer.
    pub fn activated(&self) -> bool {
        self.activated
    }
}

/// A layered network, as far as degree and dimension counting needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Architecture {
    name: String,
    layers: Vec<LayerSpec>,
    paper_depth: usize,
}

/// Default widths of the paper's CIFAR network (paper layers 2..5): with conv
/// biases this gives exactly the 188,810 parameters the paper reports.
pub const PAPER_CIFAR_WIDTHS: [u64; 4] = [32, 64, 152, 56];

impl Architecture {
    /// An architecture from its layers, input to output.
    pub fn new(name: impl Into<String>, layers: Vec<LayerSpec>) -> Result<Self> {
        if layers.is_empty() {
            return Err(BezoutError::invalid("layers", "[]", "at least one layer"));
        }
        if let Some(l) = layers.iter().find(|l| l.weights == 0 || l.outputs == 0) {
            return Err(BezoutError::invalid(
                "layers",
                format!(
                    "{} with {} weights and {} outputs",
                    l.name, l.weights, l.outputs
                ),
                "every layer to have at least one weight and one output",
            ));
        }
        let paper_depth = layers.len();
        Ok(Self {
            name: name.into(),
            layers,
            paper_depth,
        })
    }

    /// The `L` of the paper's `k^L` estimate, when it differs from the number
    /// of weight layers (the Appendix A tree has two layers of nodes, each
    /// node two weight layers).
    pub fn with_paper_depth(mut self, l: usize) -> Self {
        self.paper_depth = l;
        self
    }

    /// The `L` used in the paper's `k^L` (default: the number of weight layers).
    pub fn paper_depth(&self) -> usize {
        self.paper_depth
    }

    /// The paper's CIFAR-10 network (Section 4.1): input 32x32x3, five 3x3
    /// stride-2 pad-1 convolutions (paper layers 2..6, 32->16->8->4->2->1), BN
    /// without affine after the hidden ones, the last one giving 10 logits.
    /// `widths` are the output channels of paper layers 2..5; conv biases are
    /// counted.
    pub fn paper_cifar(widths: [u64; 4]) -> Result<Self> {
        if let Some(w) = widths.iter().find(|&&w| w == 0) {
            return Err(BezoutError::invalid("widths", w, "positive channel counts"));
        }
        let chans = [3, widths[0], widths[1], widths[2], widths[3], 10];
        let sides = [32u64, 16, 8, 4, 2, 1];
        let layers = (0..5)
            .map(|i| {
                let (cin, cout) = (chans[i], chans[i + 1]);
                let hidden = i < 4;
                LayerSpec::new(
                    format!(
                        "layer {} conv3x3/2 {cin}->{cout} ({}->{}){}",
                        i + 2,
                        sides[i],
                        sides[i + 1],
                        if hidden { " +BN" } else { "" }
                    ),
                    9 * cin * cout + cout,
                    cout * sides[i + 1] * sides[i + 1],
                    hidden,
                )
            })
            .collect();
        Self::new(format!("paper-cifar (widths {widths:?})"), layers)
    }

    /// The example of the paper's Appendix A (Figure 7): four inputs and a
    /// binary tree `f = g2(g11(x1, x2), g12(x3, x4))`, each node a sum of
    /// `units` ridge functions `sum_i a_i sigma(<v_i, x> + t_i)` of two
    /// inputs. `units = 1` is the "one ReLU per node" case of equation (5).
    pub fn appendix_a(units: u64) -> Result<Self> {
        if units == 0 {
            return Err(BezoutError::invalid(
                "units",
                units,
                "at least one unit per node",
            ));
        }
        Ok(Self::new(
            format!("appendix-a (binary tree, {units} unit(s) per node; paper L = 2 node layers)"),
            vec![
                LayerSpec::new(
                    "nodes g11, g12: v_i, t_i (2 inputs each)",
                    2 * units * 3,
                    2 * units,
                    true,
                ),
                LayerSpec::new("nodes g11, g12: outputs a_i", 2 * units, 2, false),
                LayerSpec::new("node g2: v_i, t_i (2 inputs)", units * 3, units, true),
                LayerSpec::new("node g2: output a_i", units, 1, false),
            ],
        )?
        .with_paper_depth(2))
    }

    /// A fully connected network with biases: `sizes = [inputs, hidden..., outputs]`,
    /// every hidden layer activated, the output linear.
    pub fn mlp(sizes: &[u64]) -> Result<Self> {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(BezoutError::invalid(
                "sizes",
                format!("{sizes:?}"),
                "at least [inputs, outputs], all positive",
            ));
        }
        let last = sizes.len() - 2;
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                LayerSpec::new(
                    format!("dense {}->{}", w[0], w[1]),
                    w[0] * w[1] + w[1],
                    w[1],
                    i < last,
                )
            })
            .collect();
        Self::new(format!("mlp {sizes:?}"), layers)
    }

    /// The architecture's display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layers, input to output.
    pub fn layers(&self) -> &[LayerSpec] {
        &self.layers
    }

    /// Number of weight layers `L` (the paper's count, input not included).
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// Number of activated (hidden) layers.
    pub fn activated_layers(&self) -> usize {
        self.layers.iter().filter(|l| l.activated).count()
    }

    /// Total number of weights `W`.
    pub fn weights(&self) -> u64 {
        self.layers.iter().map(|l| l.weights).sum()
    }

    /// Values output per data point (the last layer's outputs).
    pub fn outputs(&self) -> u64 {
        self.layers.last().map_or(0, |l| l.outputs)
    }

    /// Exact degrees with the same activation degree `k` on every activated layer.
    pub fn degrees_uniform(&self, k: u32) -> Result<Degrees> {
        self.degrees(&vec![k; self.activated_layers()])
    }

    /// Exact degrees with one activation degree per activated layer (mixed degrees).
    pub fn degrees(&self, ks: &[u32]) -> Result<Degrees> {
        if ks.len() != self.activated_layers() {
            return Err(BezoutError::invalid(
                "ks",
                format!("{} degrees", ks.len()),
                "one activation degree per activated layer",
            ));
        }
        if let Some(k) = ks.iter().find(|&&k| k == 0) {
            return Err(BezoutError::invalid("ks", k, "activation degrees >= 1"));
        }
        let mut in_weights = Vec::with_capacity(self.layers.len());
        let mut in_input = Vec::with_capacity(self.layers.len());
        let mut d = BigUint::zero();
        let mut dx = BigUint::one();
        let mut next = ks.iter();
        for layer in &self.layers {
            let k = if layer.activated {
                next.next().copied().unwrap_or(1)
            } else {
                1
            };
            d = (d + 1u32) * k;
            dx *= k;
            in_weights.push(d.clone());
            in_input.push(dx.clone());
        }
        let uniform = match ks.split_first() {
            Some((first, rest)) if rest.iter().all(|k| k == first) => Some(*first),
            None => Some(1),
            _ => None,
        };
        let paper_k = uniform;
        let paper = uniform.map(|k| BigUint::from(k).pow(self.paper_depth as u32));
        Ok(Degrees {
            ks: ks.to_vec(),
            in_weights,
            in_input,
            total: d,
            total_input: dx,
            paper,
            paper_k,
        })
    }
}

/// Per-layer exact degrees of a network with polynomial activations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Degrees {
    ks: Vec<u32>,
    in_weights: Vec<BigUint>,
    in_input: Vec<BigUint>,
    total: BigUint,
    total_input: BigUint,
    paper: Option<BigUint>,
    paper_k: Option<u32>,
}

impl Degrees {
    /// Activation degrees of the activated layers.
    pub fn ks(&self) -> &[u32] {
        &self.ks
    }

    /// Degree in the weights of each layer's output.
    pub fn per_layer_in_weights(&self) -> &[BigUint] {
        &self.in_weights
    }

    /// Degree in the input of each layer's output.
    pub fn per_layer_in_input(&self) -> &[BigUint] {
        &self.in_input
    }

    /// Degree `D` in the weights of each zero-error equation `f(w; x_i) = y_i`.
    pub fn in_weights(&self) -> &BigUint {
        &self.total
    }

    /// Degree of the network's output in its input.
    pub fn in_input(&self) -> &BigUint {
        &self.total_input
    }

    /// The paper's estimate `k^L` (uniform degrees only).
    pub fn paper_estimate(&self) -> Option<&BigUint> {
        self.paper.as_ref()
    }

    /// The common activation degree `k`, if all activated layers share one
    /// (1 when no layer is activated).
    pub fn uniform_k(&self) -> Option<u32> {
        self.paper_k
    }
}

/// How many equations a data point contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EquationsPerPoint {
    /// One equation per data point, as the paper counts (a scalar regression).
    #[default]
    One,
    /// One equation per network output (regression on all `m` outputs, e.g.
    /// one-hot targets on 10 logits: `10 N` equations).
    AllOutputs,
}

/// Whether the zero-error system has more unknowns than equations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Determinacy {
    /// `W > E`: generically a solution set of dimension `W - E` (if consistent).
    Under,
    /// `W = E`: generically finitely many solutions, at most the Bezout bound.
    Well,
    /// `W < E`: a random system is generically inconsistent.
    Over,
}

impl fmt::Display for Determinacy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Under => "under-determined",
            Self::Well => "well-determined (square)",
            Self::Over => "over-determined",
        })
    }
}

/// Parameters of a count: a network, activation degrees, and `N`.
#[derive(Debug, Clone)]
pub struct CountParams {
    arch: Architecture,
    ks: Option<Vec<u32>>,
    k: u32,
    n: u64,
    per_point: EquationsPerPoint,
}

impl CountParams {
    /// Count for `arch` with `n` data points, degree-2 activations, one
    /// equation per point.
    pub fn new(arch: Architecture, n: u64) -> Self {
        Self {
            arch,
            ks: None,
            k: 2,
            n,
            per_point: EquationsPerPoint::One,
        }
    }

    /// The same activation degree `k` on every activated layer.
    pub fn degree(mut self, k: u32) -> Self {
        self.k = k;
        self.ks = None;
        self
    }

    /// One activation degree per activated layer (overrides [`Self::degree`]).
    pub fn mixed_degrees(mut self, ks: Vec<u32>) -> Self {
        self.ks = Some(ks);
        self
    }

    /// How many equations each data point contributes.
    pub fn equations_per_point(mut self, per_point: EquationsPerPoint) -> Self {
        self.per_point = per_point;
        self
    }

    /// Validate and compute the counts.
    pub fn fit(&self) -> Result<CountReport> {
        if self.n == 0 {
            return Err(BezoutError::invalid("n", self.n, "at least one data point"));
        }
        let degrees = match &self.ks {
            Some(ks) => self.arch.degrees(ks)?,
            None => self.arch.degrees_uniform(self.k)?,
        };
        let equations = match self.per_point {
            EquationsPerPoint::One => self.n,
            EquationsPerPoint::AllOutputs => self.n.saturating_mul(self.arch.outputs()),
        };
        let w = self.arch.weights();
        let determinacy = match w.cmp(&equations) {
            std::cmp::Ordering::Greater => Determinacy::Under,
            std::cmp::Ordering::Equal => Determinacy::Well,
            std::cmp::Ordering::Less => Determinacy::Over,
        };
        let d = degrees.in_weights().clone();
        let bezout = Magnitude::pow(&d, equations);
        let real_estimate = Magnitude::sqrt_pow(&d, equations);
        let l = self.arch.paper_depth() as u64;
        let (paper_bezout, paper_real) = match degrees.uniform_k() {
            Some(k) => {
                let k = BigUint::from(k);
                let e = l.saturating_mul(self.n);
                (
                    Some(Magnitude::pow(&k, e)),
                    Some(Magnitude::sqrt_pow(&k, e)),
                )
            }
            None => (None, None),
        };
        Ok(CountReport {
            weights: w,
            n: self.n,
            equations,
            dimension: i128::from(w) - i128::from(equations),
            determinacy,
            degrees,
            bezout,
            real_estimate,
            paper_bezout,
            paper_real,
        })
    }
}

/// The counts for one network, `N` and activation degrees.
#[derive(Debug, Clone)]
pub struct CountReport {
    weights: u64,
    n: u64,
    equations: u64,
    dimension: i128,
    determinacy: Determinacy,
    degrees: Degrees,
    bezout: Magnitude,
    real_estimate: Magnitude,
    paper_bezout: Option<Magnitude>,
    paper_real: Option<Magnitude>,
}

impl CountReport {
    /// Number of weights `W`.
    pub fn weights(&self) -> u64 {
        self.weights
    }
    /// Number of data points `N`.
    pub fn n(&self) -> u64 {
        self.n
    }
    /// Number of equations `E` (`N`, or `N` times the outputs).
    pub fn equations(&self) -> u64 {
        self.equations
    }
    /// Expected dimension of the zero-error set, `W - E` (negative: over-determined).
    pub fn dimension(&self) -> i128 {
        self.dimension
    }
    /// Under-, well- or over-determined.
    pub fn determinacy(&self) -> Determinacy {
        self.determinacy
    }
    /// The exact degrees.
    pub fn degrees(&self) -> &Degrees {
        &self.degrees
    }
    /// Bezout bound `D^E` on the isolated (complex, projective) solutions of
    /// a square system of `E` equations of degree `D` (for `W > E`: of the
    /// square system left after fixing `W - E` weights at generic values).
    pub fn bezout(&self) -> &Magnitude {
        &self.bezout
    }
    /// Expected number of real solutions of a random (Kostlan) system of the
    /// same degrees, `sqrt(D^E)` (Shub and Smale; Kostlan).
    pub fn real_estimate(&self) -> &Magnitude {
        &self.real_estimate
    }
    /// The paper's bound `k^(L N)` (uniform degrees only).
    pub fn paper_bezout(&self) -> Option<&Magnitude> {
        self.paper_bezout.as_ref()
    }
    /// The paper's real-solution estimate `k^(L N / 2)` (uniform degrees only).
    pub fn paper_real(&self) -> Option<&Magnitude> {
        self.paper_real.as_ref()
    }
}
