//! Random directions with Li et al.'s filter normalisation, and
//! Gram-Schmidt orthogonalisation.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SurfaceError};
use crate::weights::{TensorRole, Weights};

/// How a random direction is rescaled to the weights it perturbs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalisation {
    /// Each filter (slice along dimension 0 of every tensor with `ndim >= 2`)
    /// gets the norm of the same filter of the weights (Li et al.'s
    /// `--xnorm filter`, the default).
    #[default]
    Filter,
    /// Each tensor with `ndim >= 2` gets the tensor's norm (Li et al.'s
    /// `layer`).
    Layer,
    /// All tensors with `ndim >= 2` together are scaled once, to the norm of
    /// the same tensors of the weights. (Li et al.'s `weight` instead
    /// multiplies the direction entry-wise by the weights.)
    Weight,
    /// The raw Gaussian entries are kept.
    None,
}

/// Parameters of a random direction: [`DirectionParams::random`] draws one,
/// [`DirectionParams::plane`] two orthogonal ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DirectionParams {
    /// Seed of the `ChaCha8Rng` the Gaussian entries come from.
    pub seed: u64,
    /// How each drawn direction is rescaled (default [`Normalisation::Filter`]).
    pub normalisation: Normalisation,
    /// If true, 1-D parameters (biases, BatchNorm affine) are set to the
    /// weights' own values, as Li et al. do without `--xignore biasbn`; if
    /// false (default) they are zero, like `--xignore biasbn`.
    pub include_1d: bool,
}

/// A direction in weight space: a [`Weights`]-shaped vector. Buffers are
/// always zero. Dereferences to [`Weights`] for the vector arithmetic.
#[derive(Clone, Debug, PartialEq)]
pub struct Direction {
    vector: Weights,
}

impl Direction {
    /// Wraps a vector as a direction, zeroing its buffers.
    pub fn from_weights(mut vector: Weights) -> Self {
        vector.zero_buffers();
        Self { vector }
    }

    /// The vector.
    pub fn weights(&self) -> &Weights {
        &self.vector
    }

    /// Gives the vector back.
    pub fn into_weights(self) -> Weights {
        self.vector
    }
}

impl std::ops::Deref for Direction {
    type Target = Weights;

    fn deref(&self) -> &Weights {
        &self.vector
    }
}

impl AsRef<Weights> for Direction {
    fn as_ref(&self) -> &Weights {
        &self.vector
    }
}

impl DirectionParams {
    /// Filter-normalised directions from `seed`, 1-D parameters zeroed.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }

    /// Sets the normalisation.
    pub fn normalisation(mut self, normalisation: Normalisation) -> Self {
        self.normalisation = normalisation;
        self
    }

    /// Sets whether 1-D parameters follow the weights.
    pub fn include_1d(mut self, include_1d: bool) -> Self {
        self.include_1d = include_1d;
        self
    }

    /// One random direction for `weights`.
    ///
    /// Entries are drawn as `f64` standard normals from
    /// `ChaCha8Rng::seed_from_u64(seed)`, one per entry of every tensor
    /// (buffers and 1-D tensors included, so that their treatment does not
    /// shift the other tensors' numbers), tensor by tensor in order, each
    /// tensor row-major. Then [`normalise`] applies `normalisation` and
    /// `include_1d`; the result is rounded to `f32` once.
    pub fn random(&self, weights: &Weights) -> Result<Direction> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let raw = draw(&mut rng, weights);
        normalise_f64(raw, weights, self.normalisation, self.include_1d)
    }

    /// Two orthogonal directions for a plane around `weights`.
    ///
    /// `d1` is exactly [`random`](Self::random); `d2` is drawn from the same
    /// random stream right after `d1`'s numbers and normalised the same way,
    /// then orthogonalised against `d1` by [`orthogonalise`] and **not**
    /// re-normalised (which would undo the orthogonality). Li et al. never
    /// orthogonalise (their two directions are only nearly orthogonal,
    /// `|cos| ~ 1/sqrt(#parameters)`); removing that small `d1` component
    /// changes each filter norm of `d2` by a relative amount of the same
    /// order, reported as [`PlaneDirections::filter_norm_deviation`].
    pub fn plane(&self, weights: &Weights) -> Result<PlaneDirections> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let raw1 = draw(&mut rng, weights);
        let raw2 = draw(&mut rng, weights);
        let d1 = normalise_f64(raw1, weights, self.normalisation, self.include_1d)?;
        let d2 = normalise_f64(raw2, weights, self.normalisation, self.include_1d)?;
        let orth = orthogonalise(&d2, &[&d1])?;
        let filter_norm_deviation = filter_deviation(&d2, orth.direction());
        Ok(PlaneDirections {
            d1,
            cos_before: orth.cos_before[0],
            cos_after: orth.cos_after[0],
            d2: orth.direction,
            filter_norm_deviation,
        })
    }
}

/// Two orthogonal directions made by [`DirectionParams::plane`].
#[derive(Clone, Debug)]
pub struct PlaneDirections {
    d1: Direction,
    d2: Direction,
    cos_before: f64,
    cos_after: f64,
    filter_norm_deviation: f64,
}

impl PlaneDirections {
    /// The first direction (exactly normalised).
    pub fn d1(&self) -> &Direction {
        &self.d1
    }

    /// The second direction (normalised, then orthogonalised against `d1`).
    pub fn d2(&self) -> &Direction {
        &self.d2
    }

    /// Both directions, by value.
    pub fn into_pair(self) -> (Direction, Direction) {
        (self.d1, self.d2)
    }

    /// Cosine between `d1` and `d2` before orthogonalisation.
    pub fn cos_before(&self) -> f64 {
        self.cos_before
    }

    /// Cosine between the stored `d1` and `d2` (f64 arithmetic on the f32
    /// entries).
    pub fn cos_after(&self) -> f64 {
        self.cos_after
    }

    /// Largest `| |f_after| / |f_before| - 1 |` over the filters `f` of
    /// `d2` (slices along dimension 0 of tensors with `ndim >= 2`): how far
    /// orthogonalisation moved `d2` away from exact filter normalisation.
    pub fn filter_norm_deviation(&self) -> f64 {
        self.filter_norm_deviation
    }
}

/// Result of [`orthogonalise`].
#[derive(Clone, Debug)]
pub struct Orthogonalised {
    direction: Direction,
    cos_before: Vec<f64>,
    cos_after: Vec<f64>,
}

impl Orthogonalised {
    /// The orthogonalised direction.
    pub fn direction(&self) -> &Direction {
        &self.direction
    }

    /// Gives the direction back.
    pub fn into_direction(self) -> Direction {
        self.direction
    }

    /// Cosine with each `against` vector before.
    pub fn cos_before(&self) -> &[f64] {
        &self.cos_before
    }

    /// Cosine with each `against` vector after, measured on the stored f32
    /// entries in f64 arithmetic.
    pub fn cos_after(&self) -> &[f64] {
        &self.cos_after
    }
}

fn draw(rng: &mut ChaCha8Rng, weights: &Weights) -> Vec<Vec<f64>> {
    weights
        .tensors()
        .iter()
        .map(|t| {
            (0..t.data.len())
                .map(|_| StandardNormal.sample(&mut *rng))
                .collect()
        })
        .collect()
}

fn norm_f64(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn norm_f32(v: &[f32]) -> f64 {
    v.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

fn ratio(target: f64, current: f64) -> f64 {
    if current > 0.0 {
        target / current
    } else {
        0.0
    }
}

/// Rescales a raw direction to `weights` (see [`Normalisation`]): buffers
/// are zeroed, 1-D tensors zeroed or (with `include_1d`) set to the
/// weights' values, tensors with `ndim >= 2` rescaled. A filter, tensor or
/// direction of zero norm stays zero (Li et al. divide by `norm + 1e-10`
/// instead; the results agree unless a norm is near 1e-10).
pub fn normalise(
    raw: &Weights,
    weights: &Weights,
    normalisation: Normalisation,
    include_1d: bool,
) -> Result<Direction> {
    weights.check_layout(raw)?;
    let raw = raw
        .tensors()
        .iter()
        .map(|t| t.data.iter().map(|&v| f64::from(v)).collect())
        .collect();
    normalise_f64(raw, weights, normalisation, include_1d)
}

fn normalise_f64(
    mut raw: Vec<Vec<f64>>,
    weights: &Weights,
    normalisation: Normalisation,
    include_1d: bool,
) -> Result<Direction> {
    let roles = weights.roles();
    let mut filter_sq_d = 0.0;
    let mut filter_sq_w = 0.0;
    for ((d, t), role) in raw.iter_mut().zip(weights.tensors()).zip(&roles) {
        match role {
            TensorRole::Buffer => d.iter_mut().for_each(|v| *v = 0.0),
            TensorRole::Vector => {
                for (v, &w) in d.iter_mut().zip(&t.data) {
                    *v = if include_1d { f64::from(w) } else { 0.0 };
                }
            }
            TensorRole::Filter => match normalisation {
                Normalisation::Filter => {
                    let rows = t.shape[0];
                    if rows > 0 && !d.is_empty() {
                        let len = d.len() / rows;
                        for (df, wf) in d.chunks_mut(len).zip(t.data.chunks(len)) {
                            let s = ratio(norm_f32(wf), norm_f64(df));
                            df.iter_mut().for_each(|v| *v *= s);
                        }
                    }
                }
                Normalisation::Layer => {
                    let s = ratio(norm_f32(&t.data), norm_f64(d));
                    d.iter_mut().for_each(|v| *v *= s);
                }
                Normalisation::Weight => {
                    filter_sq_d += d.iter().map(|x| x * x).sum::<f64>();
                    filter_sq_w += norm_f32(&t.data).powi(2);
                }
                Normalisation::None => {}
            },
        }
    }
    if normalisation == Normalisation::Weight {
        let s = ratio(filter_sq_w.sqrt(), filter_sq_d.sqrt());
        for (d, role) in raw.iter_mut().zip(&roles) {
            if *role == TensorRole::Filter {
                d.iter_mut().for_each(|v| *v *= s);
            }
        }
    }
    let mut out = weights.zeros_like();
    for (t, d) in out.tensors_mut().iter_mut().zip(raw) {
        t.data = d.into_iter().map(|v| v as f32).collect();
    }
    Ok(Direction { vector: out })
}

fn flat_f64(w: &Weights) -> Vec<f64> {
    w.tensors()
        .iter()
        .flat_map(|t| t.data.iter().map(|&v| f64::from(v)))
        .collect()
}

fn dot_f64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Removes from `d` its components along `against` (Gram-Schmidt in f64).
///
/// The `against` vectors are first orthonormalised among themselves (in
/// f64), then their span is projected out of `d` twice ("twice is
/// enough"). The result is rounded to f32, and the rounding's own small
/// loss of orthogonality is then removed by adjusting a few entries of the
/// result (those where a change is finest compared with the `against`
/// entry), so that the **stored** vectors are orthogonal to about 1e-13 in
/// cosine. Entries that are zero in `d` (buffers, zeroed 1-D tensors) stay
/// zero. The result is not rescaled. Buffers of the result are zero.
///
/// A vector of which less than 1e-6 of its norm remains after removing the
/// earlier ones (in the span within f32 rounding) is an error.
pub fn orthogonalise(d: &Weights, against: &[&Weights]) -> Result<Orthogonalised> {
    for a in against {
        d.check_layout(a)?;
    }
    let cos_before = against
        .iter()
        .map(|a| d.cosine(a))
        .collect::<Result<Vec<_>>>()?;
    // Orthonormal basis of the against span.
    let mut basis: Vec<Vec<f64>> = Vec::new();
    for (j, a) in against.iter().enumerate() {
        let mut q = flat_f64(a);
        let n0 = norm_f64(&q);
        for _ in 0..2 {
            for b in &basis {
                let c = dot_f64(&q, b);
                q.iter_mut().zip(b).for_each(|(x, y)| *x -= c * y);
            }
        }
        let n = norm_f64(&q);
        if n <= 1e-6 * n0 || n == 0.0 {
            return Err(SurfaceError::Degenerate {
                what: format!("against vector #{j} is zero or in the span of the ones before it"),
            });
        }
        q.iter_mut().for_each(|x| *x /= n);
        basis.push(q);
    }
    let mut v = flat_f64(d);
    let n0 = norm_f64(&v);
    for _ in 0..2 {
        for b in &basis {
            let c = dot_f64(&v, b);
            v.iter_mut().zip(b).for_each(|(x, y)| *x -= c * y);
        }
    }
    let n = norm_f64(&v);
    if n <= 1e-6 * n0 || n == 0.0 {
        return Err(SurfaceError::Degenerate {
            what: "the direction lies in the span of the vectors it is orthogonalised against"
                .to_owned(),
        });
    }
    // Round to f32 (keeping exact zeros where d was zero), then polish.
    let free: Vec<bool> = flat_f64(d).iter().map(|&x| x != 0.0).collect();
    let mut v32: Vec<f32> = v
        .iter()
        .zip(&free)
        .map(|(&x, &f)| if f { x as f32 } else { 0.0 })
        .collect();
    let flats: Vec<Vec<f32>> = against
        .iter()
        .map(|a| {
            a.tensors()
                .iter()
                .flat_map(|t| t.data.iter().copied())
                .collect()
        })
        .collect();
    polish(&mut v32, &free, &flats);
    let mut out = d.zeros_like();
    let mut it = v32.into_iter();
    for t in out.tensors_mut() {
        for x in &mut t.data {
            *x = it.next().unwrap_or(0.0);
        }
    }
    out.zero_buffers();
    let cos_after = against
        .iter()
        .map(|a| out.cosine(a))
        .collect::<Result<Vec<_>>>()?;
    Ok(Orthogonalised {
        direction: Direction { vector: out },
        cos_before,
        cos_after,
    })
}

/// Makes the f32 vector `v` orthogonal (in f64 arithmetic) to each of
/// `against` far beyond f32 rounding, by nudging single free entries.
fn polish(v: &mut [f32], free: &[bool], against: &[Vec<f32>]) {
    let dot = |v: &[f32], a: &[f32]| -> f64 {
        v.iter()
            .zip(a)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum()
    };
    for _round in 0..8 {
        let mut worst: f64 = 0.0;
        for a in against {
            let na = norm_f32(a);
            let nv = norm_f32(v);
            if na == 0.0 || nv == 0.0 {
                continue;
            }
            let r = dot(v, a);
            if (r / (na * nv)).abs() < 1e-14 {
                continue;
            }
            // The entry where a change moves the dot product most for the
            // finest f32 step: large |a_k|, small |v_k|.
            let mut best: Option<(usize, f64)> = None;
            for (k, (&vk, &ak)) in v.iter().zip(a).enumerate() {
                if !free[k] || ak == 0.0 {
                    continue;
                }
                let score = f64::from(ak).abs() / f64::from(vk.abs()).max(1e-30);
                if best.is_none_or(|(_, s)| score > s) {
                    best = Some((k, score));
                }
            }
            let Some((k, _)) = best else { continue };
            let nk = (f64::from(v[k]) - r / f64::from(a[k])) as f32;
            if nk != 0.0 {
                v[k] = nk;
            }
            worst = worst.max((dot(v, a) / (na * norm_f32(v))).abs());
        }
        if worst < 1e-14 {
            break;
        }
    }
}

/// Largest relative change of a filter norm between two directions.
fn filter_deviation(before: &Weights, after: &Weights) -> f64 {
    let mut worst: f64 = 0.0;
    for (b, a) in before.tensors().iter().zip(after.tensors()) {
        if TensorRole::of(&b.name, &b.shape) != TensorRole::Filter || b.data.is_empty() {
            continue;
        }
        let len = b.data.len() / b.shape[0];
        for (fb, fa) in b.data.chunks(len).zip(a.data.chunks(len)) {
            let nb = norm_f32(fb);
            if nb > 0.0 {
                worst = worst.max((norm_f32(fa) / nb - 1.0).abs());
            }
        }
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;
    use landscape_trajectory::Tensor;
    use proptest::prelude::*;

    fn t(name: &str, shape: &[usize], f: impl Fn(usize) -> f32) -> Tensor {
        let n = shape.iter().product();
        Tensor {
            name: name.to_owned(),
            shape: shape.to_vec(),
            data: (0..n).map(f).collect(),
        }
    }

    /// A small CNN-like layout with filters, biases, BN and buffers.
    pub(crate) fn net(scale: f32) -> Weights {
        Weights::new(vec![
            t("conv1.weight", &[4, 3, 3, 3], |i| {
                scale * ((i as f32 * 0.37).sin() + 0.1 * (i % 5) as f32)
            }),
            t("conv1.bias", &[4], |i| 0.1 * i as f32 - 0.2),
            t("bn1.weight", &[4], |i| 1.0 + 0.05 * i as f32),
            t("bn1.bias", &[4], |i| 0.01 * i as f32),
            t("bn1.running_mean", &[4], |i| 0.3 * i as f32),
            t("bn1.running_var", &[4], |i| 1.0 + i as f32),
            t("bn1.num_batches_tracked", &[], |_| 100.0),
            t("fc.weight", &[10, 16], |i| {
                scale * ((i as f32 * 0.11).cos() - 0.3)
            }),
            t("fc.bias", &[10], |i| 0.02 * i as f32),
        ])
        .unwrap()
    }

    fn filter_norms(w: &Weights) -> Vec<f64> {
        let mut out = Vec::new();
        for t in w.tensors() {
            if t.shape.len() >= 2 {
                let len = t.data.len() / t.shape[0];
                out.extend(t.data.chunks(len).map(norm_f32));
            }
        }
        out
    }

    #[test]
    fn filter_normalised_direction_matches_weight_filters() {
        let w = net(1.0);
        let d = DirectionParams::new(7).random(&w).unwrap();
        let (fw, fd) = (filter_norms(&w), filter_norms(&d));
        assert_eq!(fw.len(), 4 + 10);
        for (a, b) in fw.iter().zip(&fd) {
            assert!(((a - b) / a).abs() < 1e-5, "{a} vs {b}");
        }
        // 1-D and buffers are zero.
        for t in d.tensors() {
            if t.shape.len() < 2 {
                assert!(t.data.iter().all(|&v| v == 0.0), "{}", t.name);
            }
        }
    }

    #[test]
    fn include_1d_copies_parameters_but_never_buffers() {
        let w = net(1.0);
        let d = DirectionParams::new(7).include_1d(true).random(&w).unwrap();
        for (a, b) in w.tensors().iter().zip(d.tensors()) {
            match TensorRole::of(&a.name, &a.shape) {
                TensorRole::Vector => assert_eq!(a.data, b.data, "{}", a.name),
                TensorRole::Buffer => assert!(b.data.iter().all(|&v| v == 0.0), "{}", a.name),
                TensorRole::Filter => {}
            }
        }
        // Filter tensors do not depend on include_1d (same random stream).
        let d0 = DirectionParams::new(7).random(&w).unwrap();
        assert_eq!(d0.tensors()[0].data, d.tensors()[0].data);
        assert_eq!(d0.tensors()[7].data, d.tensors()[7].data);
    }

    #[test]
    fn layer_and_weight_normalisation() {
        let w = net(2.0);
        let d = DirectionParams::new(3)
            .normalisation(Normalisation::Layer)
            .random(&w)
            .unwrap();
        for i in [0, 7] {
            let (a, b) = (
                norm_f32(&w.tensors()[i].data),
                norm_f32(&d.tensors()[i].data),
            );
            assert!(((a - b) / a).abs() < 1e-6);
        }
        let d = DirectionParams::new(3)
            .normalisation(Normalisation::Weight)
            .random(&w)
            .unwrap();
        let sq = |x: &Weights| {
            (norm_f32(&x.tensors()[0].data).powi(2) + norm_f32(&x.tensors()[7].data).powi(2)).sqrt()
        };
        assert!((sq(&w) / sq(&d) - 1.0).abs() < 1e-6);
        // None keeps standard normal entries: mean square about 1.
        let d = DirectionParams::new(3)
            .normalisation(Normalisation::None)
            .random(&w)
            .unwrap();
        let ms = norm_f32(&d.tensors()[7].data).powi(2) / 160.0;
        assert!((0.7..1.3).contains(&ms), "{ms}");
    }

    #[test]
    fn determinism_by_seed() {
        let w = net(1.0);
        let a = DirectionParams::new(11).random(&w).unwrap();
        let b = DirectionParams::new(11).random(&w).unwrap();
        let c = DirectionParams::new(12).random(&w).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let p = DirectionParams::new(11).plane(&w).unwrap();
        assert_eq!(p.d1(), &a);
    }

    #[test]
    fn plane_directions_are_orthogonal() {
        let w = net(1.0);
        let p = DirectionParams::new(5).plane(&w).unwrap();
        let c = p.d1().cosine(p.d2()).unwrap();
        assert!(c.abs() < 1e-10, "{c}");
        assert_eq!(c, p.cos_after());
        assert!(p.cos_before().abs() > 1e-6);
        // The filter norms of d2 moved by about |cos_before|, not more.
        assert!(p.filter_norm_deviation() < 10.0 * p.cos_before().abs() + 1e-6);
        for t in p.d2().tensors() {
            if t.shape.len() < 2 {
                assert!(t.data.iter().all(|&v| v == 0.0), "{}", t.name);
            }
        }
    }

    #[test]
    fn orthogonalise_against_two_and_degenerate() {
        let w = net(1.0);
        let a = DirectionParams::new(1).random(&w).unwrap();
        let b = DirectionParams::new(2).random(&w).unwrap();
        let c = DirectionParams::new(3).random(&w).unwrap();
        let o = orthogonalise(&c, &[&a, &b]).unwrap();
        assert_eq!(o.cos_before().len(), 2);
        for x in o.cos_after() {
            assert!(x.abs() < 1e-10, "{x}");
        }
        let err = orthogonalise(&a, &[&a]).unwrap_err();
        assert!(matches!(err, SurfaceError::Degenerate { .. }), "{err}");
        let err = orthogonalise(&c, &[&a, &a]).unwrap_err();
        assert!(err.to_string().contains("#1"), "{err}");
    }

    #[test]
    fn normalise_public_matches_random() {
        let w = net(1.5);
        let raw = DirectionParams::new(9)
            .normalisation(Normalisation::None)
            .include_1d(false)
            .random(&w)
            .unwrap();
        let d = normalise(&raw, &w, Normalisation::Filter, false).unwrap();
        let fw = filter_norms(&w);
        for (a, b) in fw.iter().zip(filter_norms(&d)) {
            assert!(((a - b) / a).abs() < 1e-5);
        }
    }

    #[test]
    fn params_serde_defaults_and_unknown_fields() {
        let p: DirectionParams = serde_json::from_str(r#"{"seed": 4}"#).unwrap();
        assert_eq!(p, DirectionParams::new(4));
        let p: DirectionParams =
            serde_json::from_str(r#"{"normalisation": "layer", "include_1d": true}"#).unwrap();
        assert_eq!(p.normalisation, Normalisation::Layer);
        assert!(p.include_1d);
        assert!(serde_json::from_str::<DirectionParams>(r#"{"sed": 4}"#).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn random_planes_orthogonal_for_any_seed(seed in any::<u64>(), scale in 0.01f32..10.0) {
            let w = net(scale);
            let p = DirectionParams::new(seed).plane(&w).unwrap();
            prop_assert!(p.cos_after().abs() < 1e-10);
            let fw = filter_norms(&w);
            for (a, b) in fw.iter().zip(filter_norms(p.d1())) {
                prop_assert!(((a - b) / a).abs() < 1e-5);
            }
        }
    }
}
