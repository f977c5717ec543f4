//! Planes in weight space: grids of plane coordinates, random planes around
//! a snapshot, planes through three snapshots, points and projections.
use serde::{Deserialize, Serialize};

use crate::direction::{orthogonalise, Direction, DirectionParams};
use crate::error::{Result, SurfaceError};
use crate::line::grid_value;
use crate::weights::{TensorRole, Weights};

/// Evenly spaced coordinates along one axis of a plane, ends included.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Axis {
    /// Smallest coordinate.
    pub min: f64,
    /// Largest coordinate.
    pub max: f64,
    /// Number of points (>= 2).
    pub points: usize,
}

impl Default for Axis {
    /// `[-1, 1]` with 51 points (Li et al.'s `--x=-1:1:51`).
    fn default() -> Self {
        Self {
            min: -1.0,
            max: 1.0,
            points: 51,
        }
    }
}

impl Axis {
    /// An axis from `min` to `max` with `points` points.
    pub fn new(min: f64, max: f64, points: usize) -> Self {
        Self { min, max, points }
    }

    /// Checks `points >= 2` and finite `min < max`.
    pub fn validate(&self, field: &'static str) -> Result<()> {
        if self.points < 2 {
            return Err(SurfaceError::invalid(
                field,
                self.points,
                "at least 2 points",
            ));
        }
        if !(self.min.is_finite() && self.max.is_finite() && self.min < self.max) {
            return Err(SurfaceError::invalid(
                field,
                format!("[{}, {}]", self.min, self.max),
                "finite min < max",
            ));
        }
        Ok(())
    }

    /// The grid spacing.
    pub fn step(&self) -> f64 {
        (self.max - self.min) / (self.points.max(2) - 1) as f64
    }

    /// The coordinate of point `i`: `(min (n-1-i) + max i) / (n-1)`, so the
    /// ends are exact and a symmetric axis has exactly 0 in the middle.
    pub fn value(&self, i: usize) -> f64 {
        grid_value(self.min, self.max, self.points, i)
    }

    /// All coordinates, ascending.
    pub fn values(&self) -> Vec<f64> {
        (0..self.points).map(|i| self.value(i)).collect()
    }
}

/// A grid over a plane: `y.points` rows of `x.points` columns.
/// Default 51 x 51 over `[-1, 1]²`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlaneSpec {
    /// The first direction's coordinates (columns).
    pub x: Axis,
    /// The second direction's coordinates (rows).
    pub y: Axis,
}

/// One point of a grid. Points are numbered row-major: rows are `y`,
/// columns `x`, `index = iy * nx + ix`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridPoint {
    /// Row-major index.
    pub index: usize,
    /// Column (x) index.
    pub ix: usize,
    /// Row (y) index.
    pub iy: usize,
    /// x coordinate.
    pub x: f64,
    /// y coordinate.
    pub y: f64,
}

impl PlaneSpec {
    /// A grid from two axes.
    pub fn new(x: Axis, y: Axis) -> Self {
        Self { x, y }
    }

    /// Validates both axes.
    pub fn validate(&self) -> Result<()> {
        self.x.validate("plane.x")?;
        self.y.validate("plane.y")
    }

    /// Number of grid points.
    pub fn len(&self) -> usize {
        self.x.points * self.y.points
    }

    /// Whether the grid has no points.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The point with that row-major index.
    pub fn point(&self, index: usize) -> Result<GridPoint> {
        if index >= self.len() {
            return Err(SurfaceError::Point {
                index,
                message: format!("out of range: the grid has {} points", self.len()),
            });
        }
        let (iy, ix) = (index / self.x.points, index % self.x.points);
        Ok(GridPoint {
            index,
            ix,
            iy,
            x: self.x.value(ix),
            y: self.y.value(iy),
        })
    }

    /// All points, row-major (validated first).
    pub fn points(&self) -> Result<Vec<GridPoint>> {
        self.validate()?;
        (0..self.len()).map(|i| self.point(i)).collect()
    }
}

/// Where a weight vector falls on a plane: least-squares coordinates and the
/// distance from the plane.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    /// Coordinate along `d1`.
    pub x: f64,
    /// Coordinate along `d2`.
    pub y: f64,
    /// `|w - point(x, y)|` over all non-buffer entries.
    pub residual: f64,
}

/// The affine plane `origin + x d1 + y d2` in weight space.
///
/// Buffers (BatchNorm statistics) are never moved: every point has the
/// origin's buffers, and projections ignore buffers.
#[derive(Clone, Debug)]
pub struct Plane {
    origin: Weights,
    d1: Direction,
    d2: Direction,
    gram: [f64; 3],
}

fn not_buffer(r: TensorRole) -> bool {
    r != TensorRole::Buffer
}

impl Plane {
    /// A plane from an origin and two linearly independent directions
    /// (need not be orthogonal; projections solve the 2 x 2 normal
    /// equations).
    pub fn new(origin: Weights, d1: Direction, d2: Direction) -> Result<Self> {
        origin.check_layout(&d1)?;
        origin.check_layout(&d2)?;
        let g11 = d1.dot_where(&d1, not_buffer);
        let g12 = d1.dot_where(&d2, not_buffer);
        let g22 = d2.dot_where(&d2, not_buffer);
        let det = g11 * g22 - g12 * g12;
        if g11 == 0.0 || g22 == 0.0 || det <= 1e-12 * g11 * g22 {
            return Err(SurfaceError::Degenerate {
                what: "the plane's directions are zero or parallel".to_owned(),
            });
        }
        Ok(Self {
            origin,
            d1,
            d2,
            gram: [g11, g12, g22],
        })
    }

    /// Li et al.'s random plane around `center`: two orthogonal normalised
    /// directions from [`DirectionParams::plane`].
    pub fn random(center: &Weights, params: &DirectionParams) -> Result<Self> {
        let (d1, d2) = params.plane(center)?.into_pair();
        Self::new(center.clone(), d1, d2)
    }

    /// The plane through three snapshots: origin `a`, `d1 = b - a`, and
    /// `d2` = `c - a` orthogonalised against `d1` and rescaled to `|d1|`,
    /// so plane distances are isometric (in units of `|b - a|`). Buffers are
    /// zero in both directions. Then `a = (0, 0)`, `b = (1, 0)` and
    /// `c = (cx, cy)` with `cy > 0`.
    pub fn through(a: &Weights, b: &Weights, c: &Weights) -> Result<ThroughPlane> {
        let d1 = Direction::from_weights(b.sub(a)?);
        let dc = Direction::from_weights(c.sub(a)?);
        if d1.dot_where(&d1, not_buffer) == 0.0 {
            return Err(SurfaceError::Degenerate {
                what: "b equals a (outside buffers): no first direction".to_owned(),
            });
        }
        let orth = orthogonalise(&dc, &[&d1]).map_err(|e| match e {
            SurfaceError::Degenerate { .. } => SurfaceError::Degenerate {
                what: "a, b and c are collinear: no second direction".to_owned(),
            },
            e => e,
        })?;
        let d2 = orth.into_direction();
        // Rescale to |d1|, then orthogonalise once more so the rounding of
        // the rescaled f32 entries is polished away as well.
        let d2 = Direction::from_weights(d2.scaled(d1.norm() / d2.norm()));
        let d2 = orthogonalise(&d2, &[&d1])?.into_direction();
        let plane = Self::new(a.clone(), d1, d2)?;
        let pb = plane.project(b)?;
        let pc = plane.project(c)?;
        Ok(ThroughPlane {
            plane,
            coords: [(0.0, 0.0), (pb.x, pb.y), (pc.x, pc.y)],
        })
    }

    /// The origin.
    pub fn origin(&self) -> &Weights {
        &self.origin
    }

    /// The x direction.
    pub fn d1(&self) -> &Direction {
        &self.d1
    }

    /// The y direction.
    pub fn d2(&self) -> &Direction {
        &self.d2
    }

    /// `origin + x d1 + y d2` (f64, rounded to f32 once).
    pub fn point(&self, x: f64, y: f64) -> Result<Weights> {
        self.origin.offset(x, &self.d1, y, &self.d2)
    }

    /// The weights at a grid point.
    pub fn at(&self, p: &GridPoint) -> Result<Weights> {
        self.point(p.x, p.y)
    }

    /// Least-squares coordinates of `w` on the plane (the orthogonal
    /// projection of `w - origin` onto the span of `d1`, `d2`), and the
    /// residual distance, both over non-buffer entries.
    pub fn project(&self, w: &Weights) -> Result<Projection> {
        self.origin.check_layout(w)?;
        let mut b1 = 0.0;
        let mut b2 = 0.0;
        self.for_each_entry(w, |r, u, v| {
            b1 += r * u;
            b2 += r * v;
        });
        let [g11, g12, g22] = self.gram;
        let det = g11 * g22 - g12 * g12;
        let x = (g22 * b1 - g12 * b2) / det;
        let y = (g11 * b2 - g12 * b1) / det;
        let mut sq = 0.0;
        self.for_each_entry(w, |r, u, v| {
            let e = r - x * u - y * v;
            sq += e * e;
        });
        Ok(Projection {
            x,
            y,
            residual: sq.sqrt(),
        })
    }

    /// Calls `f(w - origin, d1, d2)` for every non-buffer entry (in f64).
    fn for_each_entry(&self, w: &Weights, mut f: impl FnMut(f64, f64, f64)) {
        let it = self
            .origin
            .tensors()
            .iter()
            .zip(w.tensors())
            .zip(self.d1.tensors().iter().zip(self.d2.tensors()));
        for ((o, t), (u, v)) in it {
            if TensorRole::of(&o.name, &o.shape) == TensorRole::Buffer {
                continue;
            }
            for (((&o, &t), &u), &v) in o.data.iter().zip(&t.data).zip(&u.data).zip(&v.data) {
                f(f64::from(t) - f64::from(o), f64::from(u), f64::from(v));
            }
        }
    }
}

/// A plane made by [`Plane::through`], with the three points' coordinates.
#[derive(Clone, Debug)]
pub struct ThroughPlane {
    plane: Plane,
    coords: [(f64, f64); 3],
}

impl ThroughPlane {
    /// The plane.
    pub fn plane(&self) -> &Plane {
        &self.plane
    }

    /// Gives the plane back.
    pub fn into_plane(self) -> Plane {
        self.plane
    }

    /// Coordinates of `a`: `(0, 0)`.
    pub fn a(&self) -> (f64, f64) {
        self.coords[0]
    }

    /// Coordinates of `b`: `(1, 0)` up to rounding.
    pub fn b(&self) -> (f64, f64) {
        self.coords[1]
    }

    /// Coordinates of `c`: `(cx, cy)`, `cy > 0`.
    pub fn c(&self) -> (f64, f64) {
        self.coords[2]
    }

    /// A grid containing all three points with a margin of `margin` times
    /// each axis' span (`x`: span of `0, 1, cx`; `y`: span of `0, cy`) on
    /// each side, `points` points per axis.
    pub fn suggest_spec(&self, margin: f64, points: usize) -> PlaneSpec {
        let xs = self.coords.map(|p| p.0);
        let ys = self.coords.map(|p| p.1);
        let range = |v: [f64; 3]| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let m = margin.max(0.0) * (hi - lo);
            Axis::new(lo - m, hi + m, points)
        };
        PlaneSpec::new(range(xs), range(ys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use landscape_trajectory::Tensor;
    use proptest::prelude::*;

    fn net(f: impl Fn(usize) -> f32) -> Weights {
        let mk = |name: &str, shape: &[usize], off: usize| {
            let n: usize = shape.iter().product();
            Tensor {
                name: name.to_owned(),
                shape: shape.to_vec(),
                data: (0..n).map(|i| f(i + off)).collect(),
            }
        };
        Weights::new(vec![
            mk("conv.weight", &[3, 2, 2, 2], 0),
            mk("conv.bias", &[3], 100),
            mk("bn.running_mean", &[3], 200),
            mk("fc.weight", &[4, 6], 300),
        ])
        .unwrap()
    }

    #[test]
    fn grid_enumeration_is_row_major() {
        let spec = PlaneSpec::new(Axis::new(-1.0, 1.0, 3), Axis::new(0.0, 2.0, 5));
        let pts = spec.points().unwrap();
        assert_eq!(pts.len(), 15);
        assert_eq!(
            pts[4],
            GridPoint {
                index: 4,
                ix: 1,
                iy: 1,
                x: 0.0,
                y: 0.5
            }
        );
        assert_eq!(pts[14].x, 1.0);
        assert_eq!(pts[14].y, 2.0);
        assert!(spec.point(15).is_err());
        let d = PlaneSpec::default().points().unwrap();
        assert_eq!(d.len(), 2601);
        assert_eq!((d[1300].x, d[1300].y), (0.0, 0.0));
        let e = PlaneSpec::new(Axis::new(1.0, 1.0, 3), Axis::default())
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("plane.x"), "{e}");
        let s: PlaneSpec = serde_json::from_str(r#"{"x": {"points": 11}}"#).unwrap();
        assert_eq!((s.x.points, s.y.points, s.x.min), (11, 51, -1.0));
        assert!(serde_json::from_str::<PlaneSpec>(r#"{"z": {}}"#).is_err());
    }

    #[test]
    fn through_reproduces_its_points() {
        let a = net(|i| (i as f32 * 0.3).sin());
        let b = net(|i| (i as f32 * 0.3).sin() + 0.5 * (i as f32 * 0.7).cos());
        let c = net(|i| (i as f32 * 0.3).sin() - 0.2 * (i as f32 * 1.3).sin() + 0.1);
        let tp = Plane::through(&a, &b, &c).unwrap();
        assert_eq!(tp.a(), (0.0, 0.0));
        let (bx, by) = tp.b();
        assert!((bx - 1.0).abs() < 1e-6 && by.abs() < 1e-6, "{bx} {by}"); // f32 rounding of b - a
        let (cx, cy) = tp.c();
        assert!(cy > 0.0);
        let p = tp.plane();
        assert!(p.d1().cosine(p.d2()).unwrap().abs() < 1e-10);
        assert!((p.d1().norm() / p.d2().norm() - 1.0).abs() < 1e-6);
        for (target, (x, y)) in [(&b, (bx, by)), (&c, (cx, cy))] {
            let w = p.point(x, y).unwrap();
            for (t, (u, o)) in target
                .tensors()
                .iter()
                .zip(w.tensors().iter().zip(a.tensors()))
            {
                let is_buffer = t.name.ends_with("running_mean");
                for ((&want, &got), &orig) in t.data.iter().zip(&u.data).zip(&o.data) {
                    if is_buffer {
                        assert_eq!(got, orig, "buffers stay at the origin's");
                    } else {
                        assert!(
                            (want - got).abs() <= 4.0 * f32::EPSILON * (1.0 + want.abs()),
                            "{want} vs {got}"
                        );
                    }
                }
            }
            assert!(p.project(target).unwrap().residual < 1e-5);
        }
        let spec = tp.suggest_spec(0.25, 21);
        for (x, y) in [tp.a(), tp.b(), tp.c()] {
            assert!(spec.x.min < x && x < spec.x.max && spec.y.min < y && y < spec.y.max);
        }
    }

    #[test]
    fn degenerate_through_planes_are_refused() {
        let a = net(|i| i as f32 * 0.01);
        let b = net(|i| i as f32 * 0.02);
        let c = net(|i| i as f32 * 0.03); // on the line a-b
        let e = Plane::through(&a, &b, &c).unwrap_err();
        assert!(e.to_string().contains("collinear"), "{e}");
        let e = Plane::through(&a, &a, &c).unwrap_err();
        assert!(e.to_string().contains("b equals a"), "{e}");
    }

    #[test]
    fn projection_residual_is_distance_from_plane() {
        let w = net(|i| (i as f32 * 0.21).cos());
        let p = Plane::random(&w, &DirectionParams::new(3)).unwrap();
        // Move off the plane along a third orthogonal direction.
        let d3 = DirectionParams::new(99).random(&w).unwrap();
        let d3 = orthogonalise(&d3, &[p.d1(), p.d2()])
            .unwrap()
            .into_direction();
        let q = p.point(0.3, -0.7).unwrap().combine(&[(2.0, &d3)]).unwrap();
        let pr = p.project(&q).unwrap();
        assert!(
            (pr.x - 0.3).abs() < 1e-5 && (pr.y + 0.7).abs() < 1e-5,
            "{pr:?}"
        );
        let want = 2.0 * d3.norm();
        assert!(
            (pr.residual / want - 1.0).abs() < 1e-4,
            "{} vs {want}",
            pr.residual
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn project_inverts_point(seed in any::<u64>(), x in -3.0f64..3.0, y in -3.0f64..3.0) {
            let w = net(|i| (i as f32 * 0.37).sin() + 0.2);
            let p = Plane::random(&w, &DirectionParams::new(seed)).unwrap();
            let pr = p.project(&p.point(x, y).unwrap()).unwrap();
            let scale = w.norm() / p.d1().norm();
            prop_assert!((pr.x - x).abs() < 1e-5 * (1.0 + scale), "{} vs {}", pr.x, x);
            prop_assert!((pr.y - y).abs() < 1e-5 * (1.0 + scale), "{} vs {}", pr.y, y);
            prop_assert!(pr.residual < 1e-5 * w.norm());
        }
    }
}
