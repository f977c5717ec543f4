//! PCA of a trajectory of weights, through the n x n Gram matrix.
use ndarray::{linalg::general_mat_mul, Array2};
use ndarray_linalg::{Eigh, UPLO};
use serde::{Deserialize, Serialize};

use crate::direction::Direction;
use crate::error::{Result, SurfaceError};
use crate::plane::{Axis, Plane, PlaneSpec};
use crate::weights::{TensorRole, Weights};

/// What the trajectory is centred on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Centre {
    /// The mean of the points: ordinary PCA. Axes and origin are the mean's.
    Mean,
    /// The last point: axes from the second moments about the final
    /// weights, origin at the final weights (the default).
    #[default]
    Final,
    /// Axes of ordinary (mean-centred) PCA, but the origin and all
    /// coordinates relative to the last point. This is what Li et al.'s
    /// `plot_trajectory.py` computes: it subtracts the final weights and
    /// then hands the differences to scikit-learn's `PCA`, which centres
    /// them again on their mean.
    MeanAxesFinalOrigin,
}

/// Parameters of a trajectory PCA: [`PcaParams::fit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PcaParams {
    /// Number of components kept (default 2).
    pub components: usize,
    /// The centre (default [`Centre::Final`]).
    pub centre: Centre,
    /// Whether 1-D parameters (biases, BatchNorm affine) take part (default
    /// true, like Li et al. without `--ignore biasbn`). Buffers never do.
    pub include_1d: bool,
}

impl Default for PcaParams {
    fn default() -> Self {
        Self {
            components: 2,
            centre: Centre::Final,
            include_1d: true,
        }
    }
}

/// A fitted PCA: see [`PcaParams::fit`].
#[derive(Clone, Debug)]
pub struct Pca {
    origin: Weights,
    components: Vec<Direction>,
    eigenvalues: Vec<f64>,
    total: f64,
    coordinates: Vec<Vec<f64>>,
    residuals: Vec<f64>,
    include_1d: bool,
}

/// Coordinates of a point in a [`Pca`] frame and its distance from the
/// frame's affine span.
#[derive(Clone, Debug, PartialEq)]
pub struct PcaProjection {
    /// One coordinate per component.
    pub coordinates: Vec<f64>,
    /// `|w - origin - Σ cₖ vₖ|` over the entries that take part.
    pub residual: f64,
}

/// Bytes of one f64 block of the centred data used for a Gram update.
const BLOCK_BYTES: usize = 64 << 20;

impl PcaParams {
    /// `components` components, [`Centre::Final`], 1-D parameters included.
    pub fn new(components: usize) -> Self {
        Self {
            components,
            ..Self::default()
        }
    }

    /// Sets the centre.
    pub fn centre(mut self, centre: Centre) -> Self {
        self.centre = centre;
        self
    }

    /// Sets whether 1-D parameters take part.
    pub fn include_1d(mut self, include_1d: bool) -> Self {
        self.include_1d = include_1d;
        self
    }

    /// Fits the PCA of `points` (in trajectory order; the last is the
    /// "final" point).
    ///
    /// The centred points `X` (n x D, only the entries that take part) are
    /// never formed: the Gram matrix `G = X Xᵀ` is accumulated in f64 block
    /// by block (BLAS `dgemm` on at most 64 MiB of widened data at a time),
    /// then its eigenpairs `G u = λ u` come from LAPACK's symmetric solver,
    /// and each kept component is `v = Xᵀ u / √λ` (unit norm, orthogonal),
    /// rounded to f32. Coordinates and reconstruction errors are then
    /// computed with [`Pca::project`] on the stored components.
    ///
    /// Sign convention (scikit-learn's `svd_flip` on `U`, as used by Li et
    /// al.): each component's sign makes positive the coordinate of the
    /// point farthest from the Gram centre along it (the first such point
    /// on ties).
    pub fn fit(&self, points: &[Weights]) -> Result<Pca> {
        let n = points.len();
        if n < 2 {
            return Err(SurfaceError::invalid(
                "pca points",
                n,
                "at least 2 snapshots",
            ));
        }
        if self.components == 0 || self.components >= n {
            return Err(SurfaceError::invalid(
                "pca.components",
                self.components,
                format!("between 1 and {} (the number of points minus one)", n - 1),
            ));
        }
        let first = &points[0];
        for p in &points[1..] {
            first.check_layout(p)?;
        }
        let keep = keep_fn(self.include_1d);
        let roles = first.roles();
        let last = &points[n - 1];
        // The Gram centre (mean or final), per tensor, in f64.
        let gram_centre: Vec<Vec<f64>> = match self.centre {
            Centre::Final => to_f64(last),
            Centre::Mean | Centre::MeanAxesFinalOrigin => {
                let mut m: Vec<Vec<f64>> = first
                    .tensors()
                    .iter()
                    .map(|t| vec![0.0; t.data.len()])
                    .collect();
                for p in points {
                    for (mt, t) in m.iter_mut().zip(p.tensors()) {
                        mt.iter_mut()
                            .zip(&t.data)
                            .for_each(|(a, &b)| *a += f64::from(b));
                    }
                }
                m.iter_mut()
                    .for_each(|mt| mt.iter_mut().for_each(|a| *a /= n as f64));
                m
            }
        };
        let block = (BLOCK_BYTES / 8 / n).max(1);
        let mut g = Array2::<f64>::zeros((n, n));
        for_blocks(points, &roles, &keep, &gram_centre, block, |x, _, _| {
            general_mat_mul(1.0, &x, &x.t(), 1.0, &mut g);
        });
        let (vals, vecs) = g.eigh(UPLO::Lower).map_err(|e| SurfaceError::Eigen {
            n,
            message: e.to_string(),
        })?;
        // Descending order.
        let order: Vec<usize> = (0..n).rev().collect();
        let eigenvalues: Vec<f64> = order.iter().map(|&i| vals[i]).collect();
        let total: f64 = g.diag().sum();
        let k = self.components;
        let mut u = Array2::<f64>::zeros((k, n));
        for c in 0..k {
            let lambda = eigenvalues[c];
            if !lambda.is_finite() || lambda <= (1e-12 * eigenvalues[0]).max(0.0) {
                return Err(SurfaceError::Degenerate {
                    what: format!(
                        "PCA component {} has no variance (eigenvalue {lambda:e}): the {n} points span fewer than {k} dimensions",
                        c + 1
                    ),
                });
            }
            let col = vecs.column(order[c]);
            // Sign: the entry of largest magnitude (first on ties) positive.
            let mut arg = 0;
            for i in 1..n {
                if col[i].abs() > col[arg].abs() {
                    arg = i;
                }
            }
            let sign = if col[arg] < 0.0 { -1.0 } else { 1.0 };
            let scale = sign / lambda.sqrt();
            for i in 0..n {
                u[[c, i]] = col[i] * scale;
            }
        }
        // Components v = Xᵀ u / √λ, block by block.
        let mut comps: Vec<Vec<Vec<f64>>> = (0..k).map(|_| vec![Vec::new(); roles.len()]).collect();
        for comp in &mut comps {
            for (ct, t) in comp.iter_mut().zip(first.tensors()) {
                *ct = vec![0.0; t.data.len()];
            }
        }
        for_blocks(
            points,
            &roles,
            &keep,
            &gram_centre,
            block,
            |x, ti, start| {
                let mut v = Array2::<f64>::zeros((k, x.ncols()));
                general_mat_mul(1.0, &u, &x, 0.0, &mut v);
                for (c, comp) in comps.iter_mut().enumerate() {
                    comp[ti][start..start + x.ncols()]
                        .iter_mut()
                        .zip(v.row(c))
                        .for_each(|(a, &b)| *a = b);
                }
            },
        );
        let components: Vec<Direction> = comps
            .into_iter()
            .map(|c| {
                let mut w = first.zeros_like();
                for (t, d) in w.tensors_mut().iter_mut().zip(c) {
                    t.data = d.into_iter().map(|v| v as f32).collect();
                }
                Direction::from_weights(w)
            })
            .collect();
        let origin = match self.centre {
            Centre::Mean => {
                let mut w = first.zeros_like();
                for (t, m) in w.tensors_mut().iter_mut().zip(&gram_centre) {
                    t.data = m.iter().map(|&v| v as f32).collect();
                }
                w
            }
            Centre::Final | Centre::MeanAxesFinalOrigin => last.clone(),
        };
        let mut pca = Pca {
            origin,
            components,
            eigenvalues,
            total,
            coordinates: Vec::with_capacity(n),
            residuals: Vec::with_capacity(n),
            include_1d: self.include_1d,
        };
        for p in points {
            let pr = pca.project(p)?;
            pca.coordinates.push(pr.coordinates);
            pca.residuals.push(pr.residual);
        }
        tracing::debug!(
            n,
            k,
            share = ?pca.explained_share(),
            "fitted trajectory PCA"
        );
        Ok(pca)
    }
}

fn keep_fn(include_1d: bool) -> impl Fn(TensorRole) -> bool {
    move |r| match r {
        TensorRole::Filter => true,
        TensorRole::Vector => include_1d,
        TensorRole::Buffer => false,
    }
}

fn to_f64(w: &Weights) -> Vec<Vec<f64>> {
    w.tensors()
        .iter()
        .map(|t| t.data.iter().map(|&v| f64::from(v)).collect())
        .collect()
}

/// Calls `f(X_block, tensor_index, start)` for consecutive column blocks of
/// the centred data matrix (n rows), over the tensors that take part.
fn for_blocks(
    points: &[Weights],
    roles: &[TensorRole],
    keep: &impl Fn(TensorRole) -> bool,
    centre: &[Vec<f64>],
    block: usize,
    mut f: impl FnMut(ndarray::ArrayView2<'_, f64>, usize, usize),
) {
    let n = points.len();
    let mut x = Array2::<f64>::zeros((n, 0));
    for (ti, role) in roles.iter().enumerate() {
        if !keep(*role) {
            continue;
        }
        let len = centre[ti].len();
        let mut start = 0;
        while start < len {
            let end = (start + block).min(len);
            let w = end - start;
            if x.ncols() != w {
                x = Array2::<f64>::zeros((n, w));
            }
            for (i, p) in points.iter().enumerate() {
                let src = &p.tensors()[ti].data[start..end];
                let c = &centre[ti][start..end];
                x.row_mut(i)
                    .iter_mut()
                    .zip(src.iter().zip(c))
                    .for_each(|(a, (&s, &m))| *a = f64::from(s) - m);
            }
            f(x.view(), ti, start);
            start = end;
        }
    }
}

impl Pca {
    /// The origin of the frame (mean or final weights; see [`Centre`]).
    pub fn origin(&self) -> &Weights {
        &self.origin
    }

    /// The kept components: unit-norm, mutually orthogonal (within f32
    /// rounding) directions, zero on entries that do not take part.
    pub fn components(&self) -> &[Direction] {
        &self.components
    }

    /// All n eigenvalues of the Gram matrix of the centred points,
    /// descending (sums of squares: not divided by n or n - 1).
    pub fn eigenvalues(&self) -> &[f64] {
        &self.eigenvalues
    }

    /// Share of the total (centred) sum of squares explained by each kept
    /// component: descending, summing to at most 1.
    pub fn explained_share(&self) -> Vec<f64> {
        self.spectrum_share()
            .into_iter()
            .take(self.components.len())
            .collect()
    }

    /// Share of every eigenvalue (all n), negative rounding noise clamped
    /// to 0.
    pub fn spectrum_share(&self) -> Vec<f64> {
        self.eigenvalues
            .iter()
            .map(|&l| {
                if self.total > 0.0 {
                    l.max(0.0) / self.total
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// Coordinates of each input point (n rows of k), relative to the
    /// origin.
    pub fn coordinates(&self) -> &[Vec<f64>] {
        &self.coordinates
    }

    /// Distance of each input point from the frame's affine span.
    pub fn reconstruction_error(&self) -> &[f64] {
        &self.residuals
    }

    /// Coordinates of any weights (same layout) in this frame, and their
    /// distance from it, over the entries that take part.
    pub fn project(&self, w: &Weights) -> Result<PcaProjection> {
        self.origin.check_layout(w)?;
        let keep = keep_fn(self.include_1d);
        let mut coordinates = vec![0.0; self.components.len()];
        let each = |f: &mut dyn FnMut(f64, &[f64])| {
            let mut vs = vec![0.0; self.components.len()];
            for (ti, (o, t)) in self.origin.tensors().iter().zip(w.tensors()).enumerate() {
                if !keep(TensorRole::of(&o.name, &o.shape)) {
                    continue;
                }
                for e in 0..o.data.len() {
                    for (v, c) in vs.iter_mut().zip(&self.components) {
                        *v = f64::from(c.tensors()[ti].data[e]);
                    }
                    f(f64::from(t.data[e]) - f64::from(o.data[e]), &vs);
                }
            }
        };
        each(&mut |r, vs| {
            for (c, v) in coordinates.iter_mut().zip(vs) {
                *c += r * v;
            }
        });
        let mut sq = 0.0;
        each(&mut |r, vs| {
            let e = r - coordinates.iter().zip(vs).map(|(c, v)| c * v).sum::<f64>();
            sq += e * e;
        });
        Ok(PcaProjection {
            coordinates,
            residual: sq.sqrt(),
        })
    }

    /// The plane through the origin spanned by the first two components
    /// (for loss contours in the PCA view); needs `components >= 2`.
    pub fn plane(&self) -> Result<Plane> {
        match &self.components[..] {
            [v1, v2, ..] => Plane::new(self.origin.clone(), v1.clone(), v2.clone()),
            _ => Err(SurfaceError::invalid(
                "pca.components",
                self.components.len(),
                "at least 2 for a plane",
            )),
        }
    }

    /// A grid covering the points' first two coordinates, widened by
    /// `margin` times each span on each side, `points` points per axis.
    pub fn suggest_spec(&self, margin: f64, points: usize) -> Result<PlaneSpec> {
        if self.components.len() < 2 {
            return Err(SurfaceError::invalid(
                "pca.components",
                self.components.len(),
                "at least 2 for a plane",
            ));
        }
        let axis = |k: usize| {
            let lo = self
                .coordinates
                .iter()
                .map(|c| c[k])
                .fold(f64::INFINITY, f64::min);
            let hi = self
                .coordinates
                .iter()
                .map(|c| c[k])
                .fold(f64::NEG_INFINITY, f64::max);
            let m = margin.max(0.0) * (hi - lo);
            Axis::new(lo - m, hi + m, points)
        };
        Ok(PlaneSpec::new(axis(0), axis(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use landscape_trajectory::Tensor;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn from_flat(v: &[f32]) -> Weights {
        // Layout: a 2-D filter tensor, a bias, and a buffer (ignored).
        let (a, b) = v.split_at(v.len() - 3);
        Weights::new(vec![
            Tensor {
                name: "w".into(),
                shape: vec![a.len() / 4, 4],
                data: a.to_vec(),
            },
            Tensor {
                name: "b".into(),
                shape: vec![3],
                data: b.to_vec(),
            },
            Tensor {
                name: "bn.running_var".into(),
                shape: vec![2],
                data: vec![v[0] * 7.0, 1.0],
            },
        ])
        .unwrap()
    }

    fn random_vec(rng: &mut ChaCha8Rng, d: usize) -> Vec<f64> {
        (0..d).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    /// n points p0 + α e1 + β e2 in dimension d.
    fn planar(n: usize, d: usize, seed: u64) -> Vec<Weights> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (p0, e1, e2) = (
            random_vec(&mut rng, d),
            random_vec(&mut rng, d),
            random_vec(&mut rng, d),
        );
        (0..n)
            .map(|_| {
                let (a, b): (f64, f64) = (rng.random_range(-3.0..3.0), rng.random_range(-1.0..1.0));
                let v: Vec<f32> = (0..d)
                    .map(|i| (p0[i] + a * e1[i] + b * e2[i]) as f32)
                    .collect();
                from_flat(&v)
            })
            .collect()
    }

    #[test]
    fn points_in_an_affine_plane_are_reproduced() {
        let pts = planar(30, 4 * 50 + 3, 1);
        for centre in [Centre::Mean, Centre::Final, Centre::MeanAxesFinalOrigin] {
            let pca = PcaParams::new(2).centre(centre).fit(&pts).unwrap();
            let share = pca.explained_share();
            assert!(
                (share[0] + share[1] - 1.0).abs() < 1e-9,
                "{centre:?} {share:?}"
            );
            assert!(share[0] >= share[1]);
            let scale = pts[0].norm();
            for r in pca.reconstruction_error() {
                assert!(*r < 1e-5 * scale, "{centre:?} residual {r}");
            }
            let c = pca.components();
            assert!((c[0].norm() - 1.0).abs() < 1e-6);
            assert!((c[1].norm() - 1.0).abs() < 1e-6);
            assert!(c[0].dot(&c[1]).unwrap().abs() < 1e-6);
            // Buffers take no part.
            assert!(c[0]
                .get("bn.running_var")
                .unwrap()
                .data
                .iter()
                .all(|&v| v == 0.0));
            // Reconstruct a point from its coordinates.
            let x = &pca.coordinates()[3];
            let back = pca.origin().offset(x[0], &c[0], x[1], &c[1]).unwrap();
            let diff = back.sub(&pts[3]).unwrap();
            let d = diff
                .get("w")
                .unwrap()
                .data
                .iter()
                .map(|v| f64::from(*v).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(d < 1e-5 * scale, "{d}");
        }
    }

    #[test]
    fn final_origin_puts_last_point_at_zero_and_shares_mean_axes() {
        let pts = planar(12, 4 * 20 + 3, 2);
        let mean = PcaParams::new(2).centre(Centre::Mean).fit(&pts).unwrap();
        let li = PcaParams::new(2)
            .centre(Centre::MeanAxesFinalOrigin)
            .fit(&pts)
            .unwrap();
        let last = li.coordinates().last().unwrap();
        assert!(last[0].abs() < 1e-9 && last[1].abs() < 1e-9);
        for k in 0..2 {
            assert!((mean.components()[k].cosine(&li.components()[k]).unwrap() - 1.0).abs() < 1e-9);
            // Coordinates differ by the final point's mean-centred coordinate.
            let shift = mean.coordinates().last().unwrap()[k];
            for (a, b) in mean.coordinates().iter().zip(li.coordinates()) {
                assert!((a[k] - shift - b[k]).abs() < 1e-5);
            }
        }
        assert_eq!(mean.explained_share(), li.explained_share());
    }

    #[test]
    fn dominant_direction_and_sign_convention() {
        // Points along e (a line) plus small noise: component 1 ∥ e.
        let d = 4 * 30 + 3;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let e = random_vec(&mut rng, d);
        let pts: Vec<Weights> = (0..20)
            .map(|i| {
                let t = i as f64 - 9.5;
                let v: Vec<f32> = (0..d)
                    .map(|j| (t * e[j] + 0.01 * rng.random_range(-1.0..1.0)) as f32)
                    .collect();
                from_flat(&v)
            })
            .collect();
        let pca = PcaParams::new(2).centre(Centre::Mean).fit(&pts).unwrap();
        let ew = from_flat(&e.iter().map(|&x| x as f32).collect::<Vec<_>>());
        let mut ew = ew;
        ew.zero_buffers();
        assert!(pca.components()[0].cosine(&ew).unwrap().abs() > 0.9999);
        assert!(pca.explained_share()[0] > 0.999);
        // Sign: the point with the largest |coordinate| is positive.
        for k in 0..2 {
            let c: Vec<f64> = pca.coordinates().iter().map(|c| c[k]).collect();
            let arg = (0..c.len()).fold(0, |m, i| if c[i].abs() > c[m].abs() { i } else { m });
            assert!(c[arg] > 0.0);
        }
        // Deterministic.
        let again = PcaParams::new(2).centre(Centre::Mean).fit(&pts).unwrap();
        assert_eq!(pca.components(), again.components());
    }

    #[test]
    fn invalid_inputs() {
        let pts = planar(3, 4 * 5 + 3, 3);
        assert!(PcaParams::new(3)
            .fit(&pts)
            .unwrap_err()
            .to_string()
            .contains("pca.components"));
        assert!(PcaParams::new(1).fit(&pts[..1]).is_err());
        let same = vec![pts[0].clone(), pts[0].clone(), pts[0].clone()];
        let e = PcaParams::new(1).fit(&same).unwrap_err();
        assert!(matches!(e, SurfaceError::Degenerate { .. }), "{e}");
        let p: PcaParams = serde_json::from_str(r#"{"centre": "mean_axes_final_origin"}"#).unwrap();
        assert_eq!(
            (p.components, p.centre, p.include_1d),
            (2, Centre::MeanAxesFinalOrigin, true)
        );
        assert!(serde_json::from_str::<PcaParams>(r#"{"center": "mean"}"#).is_err());
    }

    #[test]
    fn pca_plane_and_spec_cover_the_trajectory() {
        let pts = planar(10, 4 * 10 + 3, 4);
        let pca = PcaParams::default().fit(&pts).unwrap();
        let plane = pca.plane().unwrap();
        let spec = pca.suggest_spec(0.1, 11).unwrap();
        for p in &pts {
            let pr = plane.project(p).unwrap();
            assert!(spec.x.min <= pr.x && pr.x <= spec.x.max);
            assert!(spec.y.min <= pr.y && pr.y <= spec.y.max);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn shares_descend_and_sum_to_at_most_one(seed in any::<u64>(), n in 3usize..12, k in 1usize..3) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let d = 4 * 6 + 3;
            let pts: Vec<Weights> = (0..n)
                .map(|_| from_flat(&random_vec(&mut rng, d).iter().map(|&x| x as f32).collect::<Vec<_>>()))
                .collect();
            let pca = PcaParams::new(k.min(n - 1)).centre(Centre::Mean).fit(&pts).unwrap();
            let s = pca.explained_share();
            prop_assert!(s.iter().sum::<f64>() <= 1.0 + 1e-12);
            prop_assert!(s.windows(2).all(|w| w[0] >= w[1]));
            let all: f64 = pca.spectrum_share().iter().sum();
            prop_assert!((all - 1.0).abs() < 1e-9);
            // Residual² + Σ coord² = |x - mean|² (Pythagoras).
            for (i, p) in pts.iter().enumerate() {
                let c = &pca.coordinates()[i];
                let mut centred = p.sub(pca.origin()).unwrap();
                centred.zero_buffers();
                let lhs = pca.reconstruction_error()[i].powi(2) + c.iter().map(|x| x * x).sum::<f64>();
                prop_assert!((lhs - centred.norm().powi(2)).abs() < 1e-4 * (1.0 + lhs));
            }
        }
    }
}
