//! Orthogonal Procrustes alignment of one configuration onto another.
use ndarray::{Array1, Array2, ArrayBase, Axis, Data, Ix2};
use ndarray_linalg::SVD;
use serde::{Deserialize, Serialize};

use crate::error::{MdsError, Result};

/// The best map `y ≈ s · (x - μ_x) R + μ_y` of a source configuration onto a
/// target one (least squares), with R orthogonal (reflections allowed: MDS
/// axes have arbitrary signs).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Procrustes {
    rotation: Array2<f64>,
    scale: f64,
    source_mean: Array1<f64>,
    target_mean: Array1<f64>,
    residual: f64,
    relative_residual: f64,
}

impl Procrustes {
    /// The k x k orthogonal matrix R (acting on row vectors: `x R`).
    pub fn rotation(&self) -> &Array2<f64> {
        &self.rotation
    }

    /// The scale s (1 unless scaling was allowed).
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The translation: the centroids of the source and of the target.
    pub fn means(&self) -> (&Array1<f64>, &Array1<f64>) {
        (&self.source_mean, &self.target_mean)
    }

    /// `‖s (X - μ_x) R + μ_y - Y‖_F`: the root of the summed squared distances
    /// between aligned source points and their targets.
    pub fn residual(&self) -> f64 {
        self.residual
    }

    /// The residual divided by `‖Y - μ_y‖_F` (0 when the target is a single point).
    pub fn relative_residual(&self) -> f64 {
        self.relative_residual
    }

    /// Maps points (rows, k columns) of the source's space into the target's.
    pub fn apply<S: Data<Elem = f64>>(&self, points: &ArrayBase<S, Ix2>) -> Result<Array2<f64>> {
        let k = self.rotation.nrows();
        if points.ncols() != k {
            return Err(MdsError::ShapeMismatch {
                what: "points to align",
                found: points.dim(),
                expected: format!("{k} columns"),
            });
        }
        let centred = points - &self.source_mean;
        Ok(centred.dot(&self.rotation) * self.scale + &self.target_mean)
    }
}

/// Aligns `source` onto `target` (same shape: n points x k dimensions, rows
/// matched) by translation and an orthogonal map, plus a uniform scale when
/// `scaling` is true.
pub fn procrustes<S, T>(
    source: &ArrayBase<S, Ix2>,
    target: &ArrayBase<T, Ix2>,
    scaling: bool,
) -> Result<Procrustes>
where
    S: Data<Elem = f64>,
    T: Data<Elem = f64>,
{
    if source.is_empty() {
        return Err(MdsError::Empty {
            what: "Procrustes source",
        });
    }
    if source.dim() != target.dim() {
        return Err(MdsError::ShapeMismatch {
            what: "Procrustes target",
            found: target.dim(),
            expected: format!("the source's shape {:?}", source.dim()),
        });
    }
    for (what, m) in [
        ("Procrustes source", source.view()),
        ("Procrustes target", target.view()),
    ] {
        if let Some(((row, col), &value)) = m.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(MdsError::NonFinite {
                what,
                row,
                col,
                value,
            });
        }
    }
    let source_mean = source.mean_axis(Axis(0)).ok_or(MdsError::Empty {
        what: "Procrustes source",
    })?;
    let target_mean = target.mean_axis(Axis(0)).ok_or(MdsError::Empty {
        what: "Procrustes target",
    })?;
    let x = source - &source_mean;
    let y = target - &target_mean;
    let cross = x.t().dot(&y);
    let (u, sigma, vt) = cross.svd(true, true).map_err(|source| MdsError::Linalg {
        step: "Procrustes SVD",
        source,
    })?;
    let (Some(u), Some(vt)) = (u, vt) else {
        return Err(MdsError::Linalg {
            step: "Procrustes SVD",
            // `svd(true, true)` always returns both factors; this names the impossible case.
            source: ndarray_linalg::error::LinalgError::NotStandardShape {
                obj: "SVD factors U and Vᵀ (not returned)",
                rows: i32::try_from(cross.nrows()).unwrap_or(i32::MAX),
                cols: i32::try_from(cross.ncols()).unwrap_or(i32::MAX),
            },
        });
    };
    let rotation = u.dot(&vt);
    let x_norm_sq: f64 = x.iter().map(|v| v * v).sum();
    let scale = if scaling && x_norm_sq > 0.0 {
        sigma.sum() / x_norm_sq
    } else {
        1.0
    };
    let diff = x.dot(&rotation) * scale - &y;
    let residual = diff.iter().map(|v| v * v).sum::<f64>().sqrt();
    let y_norm = y.iter().map(|v| v * v).sum::<f64>().sqrt();
    let relative_residual = if y_norm > 0.0 { residual / y_norm } else { 0.0 };
    Ok(Procrustes {
        rotation,
        scale,
        source_mean,
        target_mean,
        residual,
        relative_residual,
    })
}
