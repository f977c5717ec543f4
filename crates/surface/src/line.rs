//! Loss along a line: the `t` grid and the barrier between two endpoints.
use serde::{Deserialize, Serialize};

use crate::error::{Result, SurfaceError};

/// Evenly spaced parameters `t` along a line.
///
/// Between two snapshots `a`, `b` the point at `t` is
/// [`Weights::lerp`](crate::Weights::lerp)`(a, b, t)` (default
/// [`LineSpec::between`]: `[-0.5, 1.5]`, 41 points); around one snapshot `w`
/// along a direction `d` it is `w + t d` (default [`LineSpec::around`]:
/// `[-1, 1]`, 41 points). `Default` (and serde's defaults) is `between`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LineSpec {
    /// Smallest `t`.
    pub t_min: f64,
    /// Largest `t`.
    pub t_max: f64,
    /// Number of points (>= 2), both ends included.
    pub points: usize,
}

impl Default for LineSpec {
    fn default() -> Self {
        Self::between()
    }
}

/// The grid value `i` of `n` evenly spaced values from `lo` to `hi`, as the
/// weighted mean `(lo (n-1-i) + hi i) / (n-1)`: both ends exact, and
/// symmetric grids hit 0 exactly.
pub(crate) fn grid_value(lo: f64, hi: f64, n: usize, i: usize) -> f64 {
    let m = (n - 1) as f64;
    (lo * (m - i as f64) + hi * i as f64) / m
}

impl LineSpec {
    /// `[-0.5, 1.5]` with 41 points (step 0.05): the line between two
    /// snapshots, with `t = 0` and `t = 1` on the grid.
    pub fn between() -> Self {
        Self {
            t_min: -0.5,
            t_max: 1.5,
            points: 41,
        }
    }

    /// `[-1, 1]` with 41 points (step 0.05): a direction around one snapshot.
    pub fn around() -> Self {
        Self {
            t_min: -1.0,
            t_max: 1.0,
            points: 41,
        }
    }

    /// Checks `points >= 2`, finite `t_min < t_max`.
    pub fn validate(&self) -> Result<()> {
        if self.points < 2 {
            return Err(SurfaceError::invalid(
                "line.points",
                self.points,
                "at least 2",
            ));
        }
        if !(self.t_min.is_finite() && self.t_max.is_finite() && self.t_min < self.t_max) {
            return Err(SurfaceError::invalid(
                "line.t_min/t_max",
                format!("{}/{}", self.t_min, self.t_max),
                "finite numbers with t_min < t_max",
            ));
        }
        Ok(())
    }

    /// The grid step.
    pub fn step(&self) -> f64 {
        (self.t_max - self.t_min) / (self.points.max(2) - 1) as f64
    }

    /// The `t` values, ascending, ends included.
    ///
    /// `t = 0` and `t = 1`, when inside `[t_min, t_max]`, must be grid
    /// points (within 1e-6 of a step) and are then returned **exactly**
    /// (snapped); otherwise this is an error, since the endpoints' own
    /// values are needed for barriers and as references.
    pub fn ts(&self) -> Result<Vec<f64>> {
        self.validate()?;
        let n = self.points;
        let mut ts: Vec<f64> = (0..n)
            .map(|i| grid_value(self.t_min, self.t_max, n, i))
            .collect();
        let step = self.step();
        for target in [0.0, 1.0] {
            if target < self.t_min || target > self.t_max {
                continue;
            }
            let r = (target - self.t_min) / step;
            let i = r.round();
            if (r - i).abs() > 1e-6 {
                return Err(SurfaceError::invalid(
                    "line.points",
                    n,
                    format!(
                        "a count that puts t = {target} on the grid of [{}, {}] (it falls {r:.3} steps from t_min)",
                        self.t_min, self.t_max
                    ),
                ));
            }
            ts[i as usize] = target;
        }
        Ok(ts)
    }
}

/// The barrier along a line: the largest excess of `v(t)` over the chord
/// `(1 - t) v(0) + t v(1)` for `t` in `[0, 1]`.
///
/// It is never negative: the endpoints themselves have excess 0. For a
/// convex (or linear) profile it is 0, at `t = 0`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Barrier {
    height: f64,
    t: f64,
    value: f64,
    v0: f64,
    v1: f64,
    lowest: f64,
}

/// Barriers of the loss and of the error along the same line.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Barriers {
    /// Barrier of the loss.
    pub loss: Barrier,
    /// Barrier of the error rate.
    pub error: Barrier,
}

impl Barrier {
    /// The barrier of `values` sampled at `ts` (ascending, same length,
    /// containing exactly `0.0` and `1.0`). Values at `t` outside `[0, 1]`
    /// are ignored (they may be NaN); those inside must be finite. Ties go to
    /// the smallest `t`.
    pub fn of(ts: &[f64], values: &[f64]) -> Result<Self> {
        if ts.len() != values.len() {
            return Err(SurfaceError::invalid(
                "barrier values",
                format!("{} values", values.len()),
                format!("one per t ({} t values)", ts.len()),
            ));
        }
        if let Some(i) = ts
            .windows(2)
            .position(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
        {
            return Err(SurfaceError::invalid(
                "barrier t",
                format!("t[{}] = {}, t[{}] = {}", i, ts[i], i + 1, ts[i + 1]),
                "strictly ascending t values",
            ));
        }
        let find = |target: f64| {
            ts.iter().position(|&t| t == target).ok_or_else(|| {
                SurfaceError::invalid(
                    "barrier t",
                    format!("no t = {target}"),
                    "t values that contain exactly 0.0 and 1.0 (see LineSpec::ts)",
                )
            })
        };
        let (i0, i1) = (find(0.0)?, find(1.0)?);
        if let Some(i) = (i0..=i1).find(|&i| !values[i].is_finite()) {
            return Err(SurfaceError::NonFinite {
                what: "line values in [0, 1]",
                index: i,
                value: values[i],
            });
        }
        let (v0, v1) = (values[i0], values[i1]);
        let mut best = Self {
            height: 0.0,
            t: 0.0,
            value: v0,
            v0,
            v1,
            lowest: v0,
        };
        for (&t, &v) in ts[i0..=i1].iter().zip(&values[i0..=i1]) {
            best.lowest = best.lowest.min(v);
            let excess = v - ((1.0 - t) * v0 + t * v1);
            if excess > best.height {
                best.height = excess;
                best.t = t;
                best.value = v;
            }
        }
        Ok(best)
    }

    /// Barriers of loss and error sampled at the same `ts`.
    pub fn of_loss_and_error(ts: &[f64], loss: &[f64], error: &[f64]) -> Result<Barriers> {
        Ok(Barriers {
            loss: Self::of(ts, loss)?,
            error: Self::of(ts, error)?,
        })
    }

    /// The barrier height, `max_t v(t) - chord(t)` (>= 0).
    pub fn height(&self) -> f64 {
        self.height
    }

    /// Where the maximum excess is (0 when there is none).
    pub fn t(&self) -> f64 {
        self.t
    }

    /// The value `v(t)` at that point.
    pub fn value(&self) -> f64 {
        self.value
    }

    /// `v(0)`.
    pub fn v0(&self) -> f64 {
        self.v0
    }

    /// `v(1)`.
    pub fn v1(&self) -> f64 {
        self.v1
    }

    /// The smallest value for `t` in `[0, 1]` (below both endpoints when an
    /// interpolation is better than either end).
    pub fn lowest(&self) -> f64 {
        self.lowest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn barrier_is_the_excess_over_the_chord_with_the_lowest_value() {
        let ts: Vec<f64> = (0..=10).map(|i| f64::from(i) / 10.0).collect();
        let vs: Vec<f64> = ts
            .iter()
            .map(|t| 10.0 * (1.0 - t) + 20.0 * t + 40.0 * t * (1.0 - t))
            .collect();
        let b = Barrier::of(&ts, &vs).unwrap();
        assert!((b.height() - 10.0).abs() < 1e-12, "{b:?}");
        assert_eq!(b.t(), 0.5);
        assert_eq!((b.v0(), b.v1(), b.lowest()), (10.0, 20.0, 10.0));
        // A convex valley: no barrier (the endpoints give 0), lower value inside.
        let b = Barrier::of(&[0.0, 0.5, 1.0], &[5.0, 1.0, 5.0]).unwrap();
        assert_eq!((b.height(), b.lowest()), (0.0, 1.0));
        assert!(Barrier::of(&[0.0, 0.5], &[1.0, 2.0]).is_err());
    }

    #[test]
    fn defaults_hit_zero_and_one_exactly() {
        let ts = LineSpec::between().ts().unwrap();
        assert_eq!(ts.len(), 41);
        assert_eq!(ts[0], -0.5);
        assert_eq!(ts[40], 1.5);
        assert_eq!(ts[10], 0.0);
        assert_eq!(ts[30], 1.0);
        assert!((ts[11] - 0.05).abs() < 1e-15);
        let ts = LineSpec::around().ts().unwrap();
        assert_eq!((ts[0], ts[20], ts[40]), (-1.0, 0.0, 1.0));
        let ts = LineSpec {
            t_min: -0.3,
            t_max: 1.2,
            points: 16,
        }
        .ts()
        .unwrap();
        assert!(ts.contains(&0.0) && ts.contains(&1.0));
        let ts = LineSpec {
            t_min: 0.25,
            t_max: 0.75,
            points: 3,
        }
        .ts()
        .unwrap();
        assert_eq!(ts, vec![0.25, 0.5, 0.75]);
    }

    #[test]
    fn invalid_specs_are_refused() {
        let e = LineSpec {
            points: 1,
            ..LineSpec::between()
        }
        .ts()
        .unwrap_err();
        assert!(e.to_string().contains("line.points"), "{e}");
        let e = LineSpec {
            t_min: 1.0,
            t_max: 0.0,
            points: 5,
        }
        .ts()
        .unwrap_err();
        assert!(e.to_string().contains("t_min < t_max"), "{e}");
        let e = LineSpec {
            t_min: -1.0,
            t_max: 1.0,
            points: 40,
        }
        .ts()
        .unwrap_err();
        assert!(e.to_string().contains("t = 0"), "{e}");
        let s: LineSpec = serde_json::from_str(r#"{"points": 21}"#).unwrap();
        assert_eq!((s.t_min, s.t_max, s.points), (-0.5, 1.5, 21));
        assert!(serde_json::from_str::<LineSpec>(r#"{"pts": 21}"#).is_err());
    }

    #[test]
    fn barrier_of_a_bump_on_a_slope() {
        let ts = LineSpec::between().ts().unwrap();
        // v = 2 + t + 4 t (1 - t): chord 2 + t, excess 4t(1-t), max 1 at 0.5.
        let v: Vec<f64> = ts.iter().map(|t| 2.0 + t + 4.0 * t * (1.0 - t)).collect();
        let b = Barrier::of(&ts, &v).unwrap();
        assert!((b.height() - 1.0).abs() < 1e-12);
        assert!((b.t() - 0.5).abs() < 1e-12);
        assert!((b.value() - 3.5).abs() < 1e-12);
        assert_eq!((b.v0(), b.v1()), (2.0, 3.0));
        // A convex profile has no barrier; values outside [0,1] are ignored.
        let mut v: Vec<f64> = ts.iter().map(|t| (t - 0.3) * (t - 0.3)).collect();
        v[0] = f64::NAN;
        let b = Barrier::of(&ts, &v).unwrap();
        assert_eq!((b.height(), b.t()), (0.0, 0.0));
        // An asymmetric bump: excess t^2 (1-t) peaks at t = 2/3.
        let v: Vec<f64> = ts.iter().map(|t| 5.0 * t * t * (1.0 - t)).collect();
        let b = Barrier::of(&ts, &v).unwrap();
        assert!((b.t() - 0.65).abs() < 1e-12, "{}", b.t());
        assert!((b.height() - 5.0 * 0.65 * 0.65 * 0.35).abs() < 1e-12);
    }

    #[test]
    fn loss_and_error_together_and_errors() {
        let ts = LineSpec {
            t_min: 0.0,
            t_max: 1.0,
            points: 5,
        }
        .ts()
        .unwrap();
        let loss = [0.1, 0.5, 0.9, 0.4, 0.2];
        let err = [0.0, 0.2, 0.1, 0.0, 0.0];
        let b = Barrier::of_loss_and_error(&ts, &loss, &err).unwrap();
        assert!((b.loss.height() - (0.9 - 0.15)).abs() < 1e-12);
        assert_eq!(b.loss.t(), 0.5);
        assert!((b.error.height() - 0.2).abs() < 1e-12);
        assert_eq!(b.error.t(), 0.25);
        assert!(Barrier::of(&ts, &loss[..4]).is_err());
        assert!(Barrier::of(&[0.0, 0.5], &[1.0, 2.0])
            .unwrap_err()
            .to_string()
            .contains("1"));
        let e = Barrier::of(&ts, &[0.1, f64::NAN, 0.9, 0.4, 0.2]).unwrap_err();
        assert!(matches!(e, SurfaceError::NonFinite { index: 1, .. }), "{e}");
        assert!(Barrier::of(&[0.0, 1.0, 0.5], &[1.0, 2.0, 3.0]).is_err());
    }

    proptest! {
        #[test]
        fn any_grid_through_zero_and_one_contains_them(lo in 1usize..30, extra_hi in 0usize..30, per_unit in 1usize..20) {
            // t_min = -lo/per_unit, t_max = 1 + extra_hi/per_unit.
            let u = per_unit as f64;
            let spec = LineSpec { t_min: -(lo as f64) / u, t_max: 1.0 + extra_hi as f64 / u, points: lo + per_unit + extra_hi + 1 };
            let ts = spec.ts().unwrap();
            prop_assert!(ts.contains(&0.0));
            prop_assert!(ts.contains(&1.0));
            prop_assert!(ts.windows(2).all(|w| w[0] < w[1]));
        }

        #[test]
        fn barrier_is_nonnegative_and_bounds_excess(v in proptest::collection::vec(-5.0f64..5.0, 11)) {
            let ts = LineSpec { t_min: 0.0, t_max: 1.0, points: 11 }.ts().unwrap();
            let b = Barrier::of(&ts, &v).unwrap();
            prop_assert!(b.height() >= 0.0);
            for (t, x) in ts.iter().zip(&v) {
                prop_assert!(x - ((1.0 - t) * v[0] + t * v[10]) <= b.height() + 1e-12);
            }
        }
    }
}
