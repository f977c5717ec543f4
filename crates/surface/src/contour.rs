//! Contours of a grid of values: isolines, filled bands, level choice and
//! bilinear interpolation, all in data (plane) coordinates.
use contour::ContourBuilder;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SurfaceError};
use crate::plane::PlaneSpec;

/// A point in data coordinates `(x, y)`.
pub type Point = (f64, f64);

/// Values on a rectilinear grid: `values[iy * nx + ix]` at `(x[ix], y[iy])`
/// (row-major, rows are y; the order of [`PlaneSpec::points`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    x: Vec<f64>,
    y: Vec<f64>,
    values: Vec<f64>,
}

/// How [`levels`] spaces its levels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spacing {
    /// Evenly spaced.
    #[default]
    Linear,
    /// Evenly spaced in `log(v)` (needs all values > 0): dense near a
    /// minimum, as loss surfaces need.
    Log,
}

/// The isolines at one level: open or closed polylines in data coordinates
/// (a closed one repeats its first point at the end).
#[derive(Clone, Debug, PartialEq)]
pub struct Isoline {
    /// The level.
    pub level: f64,
    /// The polylines.
    pub lines: Vec<Vec<Point>>,
}

/// A polygon with holes, in data coordinates (rings closed).
#[derive(Clone, Debug, PartialEq)]
pub struct Polygon {
    /// The outer ring.
    pub exterior: Vec<Point>,
    /// The holes.
    pub holes: Vec<Vec<Point>>,
}

impl Polygon {
    /// Area (exterior minus holes), orientation-independent.
    pub fn area(&self) -> f64 {
        ring_area(&self.exterior).abs() - self.holes.iter().map(|h| ring_area(h).abs()).sum::<f64>()
    }
}

/// The region where `lower <= value < upper`, as polygons.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    /// Lower level (included).
    pub lower: f64,
    /// Upper level (excluded).
    pub upper: f64,
    /// The polygons.
    pub polygons: Vec<Polygon>,
}

fn ring_area(r: &[Point]) -> f64 {
    let mut s = 0.0;
    for w in r.windows(2) {
        s += w[0].0 * w[1].1 - w[1].0 * w[0].1;
    }
    s / 2.0
}

fn check_axis(field: &'static str, a: &[f64], uniform: bool) -> Result<()> {
    if a.len() < 2 {
        return Err(SurfaceError::invalid(
            field,
            format!("{} points", a.len()),
            "at least 2",
        ));
    }
    if let Some(i) = a
        .windows(2)
        .position(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
    {
        return Err(SurfaceError::invalid(
            field,
            format!(
                "{}[{i}] = {}, {}[{}] = {}",
                field,
                a[i],
                field,
                i + 1,
                a[i + 1]
            ),
            "strictly increasing finite coordinates",
        ));
    }
    if uniform {
        let h = (a[a.len() - 1] - a[0]) / (a.len() - 1) as f64;
        let tol = 1e-6 * h;
        if let Some(i) = (0..a.len()).find(|&i| (a[i] - (a[0] + i as f64 * h)).abs() > tol) {
            return Err(SurfaceError::invalid(
                field,
                format!("{}[{i}] = {}", field, a[i]),
                "evenly spaced coordinates (contouring assumes a uniform grid)",
            ));
        }
    }
    Ok(())
}

impl Grid {
    /// A grid of `y.len()` rows by `x.len()` columns; axes strictly
    /// increasing, values finite.
    pub fn new(x: Vec<f64>, y: Vec<f64>, values: Vec<f64>) -> Result<Self> {
        check_axis("grid.x", &x, false)?;
        check_axis("grid.y", &y, false)?;
        if values.len() != x.len() * y.len() {
            return Err(SurfaceError::invalid(
                "grid values",
                format!("{} values", values.len()),
                format!(
                    "{} x {} = {} (ny x nx)",
                    y.len(),
                    x.len(),
                    x.len() * y.len()
                ),
            ));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(SurfaceError::NonFinite {
                what: "grid values",
                index: i,
                value: values[i],
            });
        }
        Ok(Self { x, y, values })
    }

    /// A grid over a [`PlaneSpec`], values in its point order.
    pub fn from_spec(spec: &PlaneSpec, values: Vec<f64>) -> Result<Self> {
        spec.validate()?;
        Self::new(spec.x.values(), spec.y.values(), values)
    }

    /// x coordinates (columns).
    pub fn x(&self) -> &[f64] {
        &self.x
    }

    /// y coordinates (rows).
    pub fn y(&self) -> &[f64] {
        &self.y
    }

    /// The values, row-major.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The value at column `ix`, row `iy`.
    pub fn at(&self, ix: usize, iy: usize) -> f64 {
        self.values[iy * self.x.len() + ix]
    }

    fn builder(&self) -> Result<(ContourBuilder, f64, f64)> {
        check_axis("grid.x", &self.x, true)?;
        check_axis("grid.y", &self.y, true)?;
        let (nx, ny) = (self.x.len(), self.y.len());
        let hx = (self.x[nx - 1] - self.x[0]) / (nx - 1) as f64;
        let hy = (self.y[ny - 1] - self.y[0]) / (ny - 1) as f64;
        Ok((ContourBuilder::new(nx, ny, true), hx, hy))
    }

    /// Maps the `contour` crate's pixel coordinates (value `i` at `i + 0.5`)
    /// to data coordinates.
    fn to_data(&self, hx: f64, hy: f64, p: (f64, f64)) -> Point {
        (self.x[0] + (p.0 - 0.5) * hx, self.y[0] + (p.1 - 0.5) * hy)
    }

    /// The isolines at each level (marching squares with linear
    /// interpolation along cell edges, by the `contour` crate).
    ///
    /// The crate closes every ring along the outside of the grid; those
    /// pieces are not isolines and are cut away, so a line that leaves the
    /// grid ends at the last cell it crosses (never outside the axes'
    /// range). A level crossing no cell gives no lines.
    pub fn isolines(&self, levels: &[f64]) -> Result<Vec<Isoline>> {
        let (builder, hx, hy) = self.builder()?;
        let (nx, ny) = (self.x.len() as f64, self.y.len() as f64);
        let lines = builder
            .lines(&self.values, levels)
            .map_err(|e| SurfaceError::Contour {
                message: format!("{e:?}"),
            })?;
        let on_border = |p: &Point| p.0 <= 0.0 || p.1 <= 0.0 || p.0 >= nx || p.1 >= ny;
        Ok(lines
            .into_iter()
            .zip(levels)
            .map(|(line, &level)| {
                let mut out = Vec::new();
                for ring in line.geometry().0.iter() {
                    let pts: Vec<Point> = ring.0.iter().map(|c| (c.x, c.y)).collect();
                    for piece in split_at_border(&pts, &on_border) {
                        if piece.len() >= 2 {
                            out.push(piece.into_iter().map(|p| self.to_data(hx, hy, p)).collect());
                        }
                    }
                }
                Isoline { level, lines: out }
            })
            .collect())
    }

    /// Filled bands between consecutive levels (`levels` ascending, at
    /// least 2): band `k` is where `levels[k] <= v < levels[k + 1]`.
    /// Polygon vertices that the `contour` crate puts on the outside of the
    /// grid (half a cell beyond the outer points) are clamped onto the
    /// axes' range, so bands tile exactly the grid's rectangle.
    pub fn bands(&self, levels: &[f64]) -> Result<Vec<Band>> {
        if levels.len() < 2
            || levels
                .windows(2)
                .any(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
        {
            return Err(SurfaceError::invalid(
                "band levels",
                format!("{levels:?}"),
                "at least 2 strictly ascending levels",
            ));
        }
        let (builder, hx, hy) = self.builder()?;
        let (x0, x1) = (self.x[0], self.x[self.x.len() - 1]);
        let (y0, y1) = (self.y[0], self.y[self.y.len() - 1]);
        let map = |c: &contour::Pt| {
            let (x, y) = self.to_data(hx, hy, (c.x, c.y));
            (x.clamp(x0, x1), y.clamp(y0, y1))
        };
        let bands = builder
            .isobands(&self.values, levels)
            .map_err(|e| SurfaceError::Contour {
                message: format!("{e:?}"),
            })?;
        Ok(bands
            .into_iter()
            .map(|b| {
                let polygons = b
                    .geometry()
                    .0
                    .iter()
                    .map(|p| Polygon {
                        exterior: p.exterior().0.iter().map(map).collect(),
                        holes: p
                            .interiors()
                            .iter()
                            .map(|h| h.0.iter().map(map).collect())
                            .collect(),
                    })
                    .collect();
                Band {
                    lower: b.min_v(),
                    upper: b.max_v(),
                    polygons,
                }
            })
            .collect())
    }

    /// Bilinear interpolation at `(x, y)` inside the grid's rectangle
    /// (exact for functions `a + b x + c y + d x y`); an error outside.
    pub fn bilinear(&self, x: f64, y: f64) -> Result<f64> {
        let (ix, fx) = locate("x", &self.x, x)?;
        let (iy, fy) = locate("y", &self.y, y)?;
        let v00 = self.at(ix, iy);
        let v10 = self.at(ix + 1, iy);
        let v01 = self.at(ix, iy + 1);
        let v11 = self.at(ix + 1, iy + 1);
        Ok((1.0 - fy) * ((1.0 - fx) * v00 + fx * v10) + fy * ((1.0 - fx) * v01 + fx * v11))
    }
}

/// `bilinear(grid, x, y)`: see [`Grid::bilinear`].
pub fn bilinear(grid: &Grid, x: f64, y: f64) -> Result<f64> {
    grid.bilinear(x, y)
}

fn locate(axis: &'static str, a: &[f64], v: f64) -> Result<(usize, f64)> {
    let (lo, hi) = (a[0], a[a.len() - 1]);
    if !(lo..=hi).contains(&v) {
        return Err(SurfaceError::invalid(
            if axis == "x" {
                "bilinear x"
            } else {
                "bilinear y"
            },
            v,
            format!("a coordinate inside the grid's range [{lo}, {hi}]"),
        ));
    }
    // Last i with a[i] <= v, at most len - 2.
    let i = a
        .partition_point(|&t| t <= v)
        .saturating_sub(1)
        .min(a.len() - 2);
    Ok((i, (v - a[i]) / (a[i + 1] - a[i])))
}

/// Splits a (closed) ring into the maximal runs of vertices not on the
/// border; a ring with no border vertex is returned whole.
fn split_at_border(
    ring: &[(f64, f64)],
    on_border: &impl Fn(&(f64, f64)) -> bool,
) -> Vec<Vec<(f64, f64)>> {
    let Some(first_border) = ring.iter().position(on_border) else {
        return vec![ring.to_vec()];
    };
    // Walk once around the ring starting at a border vertex. Drop the
    // closing duplicate so each vertex is visited once.
    let closed = ring.len() > 1 && ring[0] == ring[ring.len() - 1];
    let body = if closed {
        &ring[..ring.len() - 1]
    } else {
        ring
    };
    let n = body.len();
    let mut out = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    for k in 0..=n {
        let p = body[(first_border + k) % n];
        if on_border(&p) {
            if cur.len() >= 2 {
                out.push(std::mem::take(&mut cur));
            } else {
                cur.clear();
            }
        } else {
            cur.push(p);
        }
    }
    if cur.len() >= 2 {
        out.push(cur);
    }
    out
}

/// `n` contour levels strictly between the smallest and largest of
/// `values` (non-finite values are ignored): level `k = 1..=n` is
/// `lo + (hi - lo) k / (n + 1)` ([`Spacing::Linear`]) or
/// `lo (hi / lo)^(k / (n + 1))` ([`Spacing::Log`], which needs `lo > 0`).
pub fn levels(values: &[f64], n: usize, spacing: Spacing) -> Result<Vec<f64>> {
    if n == 0 {
        return Err(SurfaceError::invalid("levels n", n, "at least 1"));
    }
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
        return Err(SurfaceError::invalid(
            "levels values",
            format!("range [{lo}, {hi}]"),
            "at least two different finite values",
        ));
    }
    let f = |k: usize| k as f64 / (n + 1) as f64;
    match spacing {
        Spacing::Linear => Ok((1..=n).map(|k| lo + (hi - lo) * f(k)).collect()),
        Spacing::Log => {
            if lo <= 0.0 {
                return Err(SurfaceError::invalid(
                    "levels values",
                    format!("minimum {lo}"),
                    "all values > 0 for log-spaced levels",
                ));
            }
            Ok((1..=n).map(|k| lo * (hi / lo).powf(f(k))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plane::Axis;
    use proptest::prelude::*;

    fn paraboloid(n: usize) -> Grid {
        let spec = PlaneSpec::new(Axis::new(-1.0, 1.0, n), Axis::new(-1.0, 1.0, n));
        let v = spec
            .points()
            .unwrap()
            .iter()
            .map(|p| p.x * p.x + p.y * p.y)
            .collect();
        Grid::from_spec(&spec, v).unwrap()
    }

    #[test]
    fn circle_isolines_lie_at_their_radius() {
        let g = paraboloid(51);
        let h = 2.0 / 50.0;
        for r in [0.3_f64, 0.5, 0.77] {
            let iso = g.isolines(&[r * r]).unwrap();
            assert_eq!(iso.len(), 1);
            let lines = &iso[0].lines;
            assert_eq!(lines.len(), 1, "one closed circle at r = {r}");
            let l = &lines[0];
            assert_eq!(l.first(), l.last(), "closed");
            assert!(l.len() > 20);
            for &(x, y) in l {
                let d = (x.hypot(y) - r).abs();
                assert!(d < h * h, "r = {r}: point ({x}, {y}) off by {d}");
            }
        }
        // A circle leaving the grid: open arcs, all inside the square, at radius r.
        let r = 1.2_f64;
        let iso = g.isolines(&[r * r]).unwrap();
        assert_eq!(iso[0].lines.len(), 4, "four corner arcs");
        for l in &iso[0].lines {
            assert_ne!(l.first(), l.last());
            for &(x, y) in l {
                assert!(x.abs() <= 1.0 && y.abs() <= 1.0);
                assert!((x.hypot(y) - r).abs() < h * h, "({x}, {y})");
            }
        }
        // No crossing: nothing.
        assert!(g.isolines(&[5.0]).unwrap()[0].lines.is_empty());
    }

    #[test]
    fn bands_have_the_right_areas() {
        let g = paraboloid(101);
        let bands = g.bands(&[0.09, 0.49, 1.0, 3.0]).unwrap();
        assert_eq!(bands.len(), 3);
        let area = |b: &Band| b.polygons.iter().map(Polygon::area).sum::<f64>();
        let pi = std::f64::consts::PI;
        assert_eq!((bands[0].lower, bands[0].upper), (0.09, 0.49));
        assert!(
            (area(&bands[0]) - pi * 0.4).abs() < 0.01,
            "{}",
            area(&bands[0])
        );
        assert!(
            (area(&bands[1]) - pi * 0.51).abs() < 0.01,
            "{}",
            area(&bands[1])
        );
        assert!(
            (area(&bands[2]) - (4.0 - pi)).abs() < 0.01,
            "{}",
            area(&bands[2])
        );
        for b in &bands {
            for p in &b.polygons {
                assert!(p
                    .exterior
                    .iter()
                    .all(|&(x, y)| x.abs() <= 1.0 && y.abs() <= 1.0));
            }
        }
        assert!(g.bands(&[1.0]).is_err());
        assert!(g.bands(&[1.0, 0.5]).is_err());
    }

    #[test]
    fn levels_linear_and_log() {
        let v = [1.0, 2.0, 100.0, f64::NAN];
        let l = levels(&v, 3, Spacing::Linear).unwrap();
        assert_eq!(l, vec![25.75, 50.5, 75.25]);
        let l = levels(&v, 1, Spacing::Log).unwrap();
        assert!((l[0] - 10.0).abs() < 1e-12);
        assert!(levels(&[0.0, 1.0], 2, Spacing::Log).is_err());
        assert!(levels(&[1.0, 1.0], 2, Spacing::Linear).is_err());
        assert!(levels(&v, 0, Spacing::Linear).is_err());
    }

    #[test]
    fn grid_validation() {
        assert!(Grid::new(vec![0.0, 1.0], vec![0.0, 1.0], vec![1.0; 3]).is_err());
        assert!(Grid::new(vec![0.0, 0.0], vec![0.0, 1.0], vec![1.0; 4]).is_err());
        let e = Grid::new(
            vec![0.0, 1.0],
            vec![0.0, 1.0],
            vec![1.0, f64::INFINITY, 1.0, 1.0],
        )
        .unwrap_err();
        assert!(matches!(e, SurfaceError::NonFinite { index: 1, .. }));
        let g = Grid::new(vec![0.0, 1.0, 3.0], vec![0.0, 1.0], vec![0.0; 6]).unwrap();
        assert!(g
            .isolines(&[0.5])
            .unwrap_err()
            .to_string()
            .contains("evenly spaced"));
        assert!(g.bilinear(3.5, 0.0).is_err());
        assert_eq!(g.bilinear(3.0, 1.0).unwrap(), 0.0);
    }

    proptest! {
        #[test]
        fn bilinear_is_exact_on_bilinear_functions(
            a in -5.0f64..5.0, b in -5.0f64..5.0, c in -5.0f64..5.0, d in -5.0f64..5.0,
            x in -1.0f64..=1.0, y in -2.0f64..=3.0,
        ) {
            let f = |x: f64, y: f64| a + b * x + c * y + d * x * y;
            let xs = Axis::new(-1.0, 1.0, 7).values();
            // Uneven y axis: bilinear does not need a uniform grid.
            let ys = vec![-2.0, -1.5, 0.0, 0.1, 2.0, 3.0];
            let v = ys.iter().flat_map(|&y| xs.iter().map(move |&x| f(x, y))).collect();
            let g = Grid::new(xs.clone(), ys, v).unwrap();
            let got = bilinear(&g, x, y).unwrap();
            prop_assert!((got - f(x, y)).abs() < 1e-12 * (1.0 + f(x, y).abs()) + 1e-12);
        }
    }
}
