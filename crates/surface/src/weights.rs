//! Weights as ordered named tensors, with f64-accumulated vector arithmetic.
use landscape_trajectory::Tensor;

use crate::error::{Result, SurfaceError};

/// Name suffixes of tensors that are buffers, not parameters (BatchNorm
/// statistics). Directions never move them.
pub const BUFFER_SUFFIXES: [&str; 3] = ["running_mean", "running_var", "num_batches_tracked"];

/// What a tensor is, as far as directions are concerned.
///
/// Decided by [`TensorRole::of`] from the name and shape alone:
/// a name ending in one of [`BUFFER_SUFFIXES`] is a [`TensorRole::Buffer`]
/// whatever its shape; otherwise `ndim >= 2` is a [`TensorRole::Filter`]
/// tensor (conv / linear weight, filters along dimension 0) and `ndim <= 1`
/// (biases, BatchNorm weight and bias, scalars) a [`TensorRole::Vector`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TensorRole {
    /// A weight tensor with at least two dimensions; slices along dimension 0
    /// are its filters (output channels / rows).
    Filter,
    /// A parameter with at most one dimension (bias, BatchNorm affine).
    Vector,
    /// A buffer (`running_mean`, `running_var`, `num_batches_tracked`):
    /// always zero in directions.
    Buffer,
}

impl TensorRole {
    /// Classifies a tensor by name and shape (see the type's docs).
    pub fn of(name: &str, shape: &[usize]) -> Self {
        if BUFFER_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            Self::Buffer
        } else if shape.len() >= 2 {
            Self::Filter
        } else {
            Self::Vector
        }
    }
}

/// An ordered list of named row-major `f32` tensors: one network's weights,
/// or a direction of the same layout.
///
/// All reductions ([`dot`](Weights::dot), [`norm`](Weights::norm), …) and
/// combinations accumulate in `f64`; results that are weights are rounded to
/// `f32` once, at the end.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    tensors: Vec<Tensor>,
}

fn describe(t: &Tensor) -> String {
    format!("`{}` {:?}", t.name, t.shape)
}

impl Weights {
    /// Wraps tensors, checking that each shape's product equals its data
    /// length and that names are unique.
    pub fn new(tensors: Vec<Tensor>) -> Result<Self> {
        let mut seen = std::collections::HashSet::new();
        for t in &tensors {
            let expected: usize = t.shape.iter().product();
            if expected != t.data.len() {
                return Err(SurfaceError::TensorSize {
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                    expected,
                    found: t.data.len(),
                });
            }
            if !seen.insert(t.name.as_str()) {
                return Err(SurfaceError::DuplicateTensor {
                    name: t.name.clone(),
                });
            }
        }
        Ok(Self { tensors })
    }

    /// The tensors, in order.
    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    /// Gives the tensors back (e.g. to hand to libtorch or a store).
    pub fn into_tensors(self) -> Vec<Tensor> {
        self.tensors
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether there are no tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Total number of scalar entries.
    pub fn numel(&self) -> usize {
        self.tensors.iter().map(|t| t.data.len()).sum()
    }

    /// The tensor of that name, if any.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The [`TensorRole`] of every tensor, in order.
    pub fn roles(&self) -> Vec<TensorRole> {
        self.tensors
            .iter()
            .map(|t| TensorRole::of(&t.name, &t.shape))
            .collect()
    }

    /// Weights of the same layout, all zero.
    pub fn zeros_like(&self) -> Self {
        self.map(|_, _| 0.0)
    }

    /// Checks that `other` has the same tensor names, order and shapes;
    /// the error names the first mismatching tensor.
    pub fn check_layout(&self, other: &Weights) -> Result<()> {
        for (index, (a, b)) in self.tensors.iter().zip(&other.tensors).enumerate() {
            if a.name != b.name || a.shape != b.shape {
                return Err(SurfaceError::Layout {
                    index,
                    expected: describe(a),
                    found: describe(b),
                });
            }
        }
        let n = self.tensors.len().min(other.tensors.len());
        if self.tensors.len() != other.tensors.len() {
            let say = |w: &Weights| {
                w.tensors
                    .get(n)
                    .map_or_else(|| "no tensor (end of list)".to_owned(), describe)
            };
            return Err(SurfaceError::Layout {
                index: n,
                expected: say(self),
                found: say(other),
            });
        }
        Ok(())
    }

    /// Inner product over all entries (buffers included), accumulated in f64.
    pub fn dot(&self, other: &Weights) -> Result<f64> {
        self.check_layout(other)?;
        Ok(self.dot_where(other, |_| true))
    }

    /// Euclidean norm over all entries, accumulated in f64.
    pub fn norm(&self) -> f64 {
        self.dot_where(self, |_| true).sqrt()
    }

    /// Cosine similarity `<a, b> / (|a| |b|)`; 0 when either is zero.
    pub fn cosine(&self, other: &Weights) -> Result<f64> {
        let d = self.dot(other)?;
        let n = self.norm() * other.norm();
        Ok(if n > 0.0 { d / n } else { 0.0 })
    }

    /// `self - other`, entry by entry (computed in f64, rounded to f32).
    pub fn sub(&self, other: &Weights) -> Result<Weights> {
        self.combine(&[(-1.0, other)])
    }

    /// `self * s` (computed in f64, rounded to f32).
    pub fn scaled(&self, s: f64) -> Weights {
        self.map(|_, v| v * s)
    }

    /// `self + Σ cᵢ wᵢ` over the `(cᵢ, wᵢ)` terms, each entry accumulated in
    /// f64 and rounded to f32 once.
    pub fn combine(&self, terms: &[(f64, &Weights)]) -> Result<Weights> {
        for (_, w) in terms {
            self.check_layout(w)?;
        }
        let tensors = self
            .tensors
            .iter()
            .enumerate()
            .map(|(ti, t)| {
                let data = t
                    .data
                    .iter()
                    .enumerate()
                    .map(|(e, &v)| {
                        let mut acc = f64::from(v);
                        for (c, w) in terms {
                            acc += c * f64::from(w.tensors[ti].data[e]);
                        }
                        acc as f32
                    })
                    .collect();
                Tensor {
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                    data,
                }
            })
            .collect();
        Ok(Self { tensors })
    }

    /// `self + x d1 + y d2`: the point `(x, y)` of the plane through `self`
    /// spanned by `d1`, `d2`.
    pub fn offset(&self, x: f64, d1: &Weights, y: f64, d2: &Weights) -> Result<Weights> {
        self.combine(&[(x, d1), (y, d2)])
    }

    /// `(1 - t) a + t b`, computed in f64 and rounded to f32. `t = 0` returns
    /// exactly `a` and `t = 1` exactly `b` (bit for bit, also for signed
    /// zeros and NaNs, which the formula alone would not guarantee).
    pub fn lerp(a: &Weights, b: &Weights, t: f64) -> Result<Weights> {
        a.check_layout(b)?;
        if t == 0.0 {
            return Ok(a.clone());
        }
        if t == 1.0 {
            return Ok(b.clone());
        }
        let s = 1.0 - t;
        Ok(a.zip_map(b, |x, y| s * x + t * y))
    }

    /// Sets every buffer tensor (see [`TensorRole::Buffer`]) to zero.
    pub fn zero_buffers(&mut self) {
        for t in &mut self.tensors {
            if TensorRole::of(&t.name, &t.shape) == TensorRole::Buffer {
                t.data.iter_mut().for_each(|v| *v = 0.0);
            }
        }
    }

    // ---- crate-internal helpers ----

    /// Inner product over the tensors whose role passes `keep` (layouts are
    /// assumed checked).
    pub(crate) fn dot_where(&self, other: &Weights, keep: impl Fn(TensorRole) -> bool) -> f64 {
        self.tensors
            .iter()
            .zip(&other.tensors)
            .filter(|(t, _)| keep(TensorRole::of(&t.name, &t.shape)))
            .map(|(a, b)| {
                a.data
                    .iter()
                    .zip(&b.data)
                    .map(|(&x, &y)| f64::from(x) * f64::from(y))
                    .sum::<f64>()
            })
            .sum()
    }

    /// Applies `f(role, value)` to every entry (in f64), rounding to f32.
    pub(crate) fn map(&self, f: impl Fn(TensorRole, f64) -> f64) -> Weights {
        let tensors = self
            .tensors
            .iter()
            .map(|t| {
                let role = TensorRole::of(&t.name, &t.shape);
                Tensor {
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                    data: t
                        .data
                        .iter()
                        .map(|&v| f(role, f64::from(v)) as f32)
                        .collect(),
                }
            })
            .collect();
        Self { tensors }
    }

    /// Entry-wise `f(self, other)` in f64, rounded to f32 (layouts assumed checked).
    pub(crate) fn zip_map(&self, other: &Weights, f: impl Fn(f64, f64) -> f64) -> Weights {
        let tensors = self
            .tensors
            .iter()
            .zip(&other.tensors)
            .map(|(a, b)| Tensor {
                name: a.name.clone(),
                shape: a.shape.clone(),
                data: a
                    .data
                    .iter()
                    .zip(&b.data)
                    .map(|(&x, &y)| f(f64::from(x), f64::from(y)) as f32)
                    .collect(),
            })
            .collect();
        Self { tensors }
    }

    /// Mutable access to the tensors (layout must be kept).
    pub(crate) fn tensors_mut(&mut self) -> &mut [Tensor] {
        &mut self.tensors
    }
}

impl TryFrom<Vec<Tensor>> for Weights {
    type Error = SurfaceError;

    fn try_from(tensors: Vec<Tensor>) -> Result<Self> {
        Self::new(tensors)
    }
}

impl From<Weights> for Vec<Tensor> {
    fn from(w: Weights) -> Self {
        w.tensors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn tensor(name: &str, shape: &[usize], data: Vec<f32>) -> Tensor {
        Tensor {
            name: name.to_owned(),
            shape: shape.to_vec(),
            data,
        }
    }

    fn pair(a: Vec<f32>, b: Vec<f32>) -> (Weights, Weights) {
        let n = a.len();
        let wa = Weights::new(vec![tensor("w", &[n], a)]).unwrap();
        let wb = Weights::new(vec![tensor("w", &[n], b)]).unwrap();
        (wa, wb)
    }

    #[test]
    fn roles_by_name_and_shape() {
        assert_eq!(
            TensorRole::of("conv1.weight", &[16, 3, 3, 3]),
            TensorRole::Filter
        );
        assert_eq!(TensorRole::of("fc.weight", &[10, 64]), TensorRole::Filter);
        assert_eq!(TensorRole::of("conv1.bias", &[16]), TensorRole::Vector);
        assert_eq!(TensorRole::of("bn1.weight", &[16]), TensorRole::Vector);
        assert_eq!(
            TensorRole::of("bn1.running_mean", &[16]),
            TensorRole::Buffer
        );
        assert_eq!(TensorRole::of("bn1.running_var", &[16]), TensorRole::Buffer);
        assert_eq!(
            TensorRole::of("bn1.num_batches_tracked", &[]),
            TensorRole::Buffer
        );
        assert_eq!(TensorRole::of("scale", &[]), TensorRole::Vector);
    }

    #[test]
    fn construction_is_validated_and_round_trips() {
        let err = Weights::new(vec![tensor("a", &[2, 2], vec![1.0; 3])]).unwrap_err();
        assert!(err.to_string().contains("`a`"), "{err}");
        let err = Weights::new(vec![
            tensor("a", &[1], vec![1.0]),
            tensor("a", &[1], vec![2.0]),
        ])
        .unwrap_err();
        assert!(matches!(err, SurfaceError::DuplicateTensor { .. }));
        let ts = vec![
            tensor("a", &[2], vec![1.0, 2.0]),
            tensor("b", &[], vec![3.0]),
        ];
        let w = Weights::try_from(ts.clone()).unwrap();
        assert_eq!(w.numel(), 3);
        assert_eq!(w.get("b").unwrap().data, vec![3.0]);
        assert_eq!(Vec::<Tensor>::from(w), ts);
    }

    #[test]
    fn layout_mismatch_names_first_bad_tensor() {
        let a = Weights::new(vec![
            tensor("x", &[2], vec![0.0; 2]),
            tensor("y", &[2, 2], vec![0.0; 4]),
        ])
        .unwrap();
        let b = Weights::new(vec![
            tensor("x", &[2], vec![0.0; 2]),
            tensor("y", &[4], vec![0.0; 4]),
        ])
        .unwrap();
        let err = a.check_layout(&b).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("#1") && msg.contains("`y` [2, 2]") && msg.contains("`y` [4]"),
            "{msg}"
        );
        let c = Weights::new(vec![tensor("x", &[2], vec![0.0; 2])]).unwrap();
        let msg = a.check_layout(&c).unwrap_err().to_string();
        assert!(msg.contains("no tensor"), "{msg}");
        assert!(a.dot(&b).is_err());
    }

    #[test]
    fn arithmetic_matches_hand_computation() {
        let (a, b) = pair(vec![1.0, 2.0, 2.0], vec![0.0, 3.0, -4.0]);
        assert_eq!(a.norm(), 3.0);
        assert_eq!(a.dot(&b).unwrap(), -2.0);
        assert!((a.cosine(&b).unwrap() - (-2.0 / 15.0)).abs() < 1e-15);
        assert_eq!(a.sub(&b).unwrap().tensors()[0].data, vec![1.0, -1.0, 6.0]);
        let o = a.offset(2.0, &b, -1.0, &a).unwrap();
        assert_eq!(o.tensors()[0].data, vec![0.0, 6.0, -8.0]);
        assert_eq!(a.scaled(0.5).tensors()[0].data, vec![0.5, 1.0, 1.0]);
        assert_eq!(a.zeros_like().norm(), 0.0);
        assert_eq!(a.cosine(&a.zeros_like()).unwrap(), 0.0);
        let mid = Weights::lerp(&a, &b, 0.5).unwrap();
        assert_eq!(mid.tensors()[0].data, vec![0.5, 2.5, -1.0]);
    }

    #[test]
    fn zero_buffers_only_touches_buffers() {
        let mut w = Weights::new(vec![
            tensor("bn.weight", &[2], vec![1.0, 2.0]),
            tensor("bn.running_var", &[2], vec![3.0, 4.0]),
        ])
        .unwrap();
        w.zero_buffers();
        assert_eq!(w.tensors()[0].data, vec![1.0, 2.0]);
        assert_eq!(w.tensors()[1].data, vec![0.0, 0.0]);
    }

    proptest! {
        #[test]
        fn lerp_endpoints_are_bit_exact(
            v in proptest::collection::vec((any::<f32>(), any::<f32>()), 1..40)
        ) {
            let (a, b) = pair(v.iter().map(|p| p.0).collect(), v.iter().map(|p| p.1).collect());
            let at0 = Weights::lerp(&a, &b, 0.0).unwrap();
            let at1 = Weights::lerp(&a, &b, 1.0).unwrap();
            let bits = |w: &Weights| w.tensors()[0].data.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&at0), bits(&a));
            prop_assert_eq!(bits(&at1), bits(&b));
        }

        #[test]
        fn lerp_matches_f64_formula(
            v in proptest::collection::vec((-1e3f32..1e3, -1e3f32..1e3), 1..40),
            t in -1.0f64..2.0,
        ) {
            let (a, b) = pair(v.iter().map(|p| p.0).collect(), v.iter().map(|p| p.1).collect());
            let m = Weights::lerp(&a, &b, t).unwrap();
            for (i, (x, y)) in v.iter().enumerate() {
                let want = ((1.0 - t) * f64::from(*x) + t * f64::from(*y)) as f32;
                prop_assert_eq!(m.tensors()[0].data[i], want);
            }
        }

        #[test]
        fn cauchy_schwarz_and_sub(
            v in proptest::collection::vec((-10f32..10.0, -10f32..10.0), 1..60)
        ) {
            let (a, b) = pair(v.iter().map(|p| p.0).collect(), v.iter().map(|p| p.1).collect());
            let c = a.cosine(&b).unwrap();
            prop_assert!(c.abs() <= 1.0 + 1e-12);
            // |a - b|^2 = |a|^2 - 2<a,b> + |b|^2 (the difference is exact in
            // f32 up to one rounding per entry).
            let d = a.sub(&b).unwrap().norm().powi(2);
            let want = a.norm().powi(2) - 2.0 * a.dot(&b).unwrap() + b.norm().powi(2);
            prop_assert!((d - want).abs() <= 1e-5 * (1.0 + want.abs()));
        }
    }
}
