//! Classical (Torgerson) MDS: parameters, fitting and the resulting embedding.
use ndarray::{s, Array1, Array2, ArrayBase, Axis, Data, Ix2, Zip};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::eigen::{self, Eigenpairs, LanczosParams};
use crate::error::{MdsError, Result};

/// Which eigensolver computes the top eigenpairs of the centred matrix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EigenSolver {
    /// [`EigenSolver::Full`] up to [`MdsParams::partial_threshold`] points,
    /// [`EigenSolver::Partial`] above.
    #[default]
    Auto,
    /// LAPACK `syevd`: the whole spectrum, O(n³). Gives
    /// [`Embedding::explained_ratio`] and [`Embedding::negative_mass`].
    Full,
    /// Lanczos with full reorthogonalisation: the top k only, O(n²) per step.
    /// Falls back to the full solver if it does not converge.
    Partial,
}

/// How the arbitrary sign of each axis is fixed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignConvention {
    /// The point with the largest |coordinate| on the axis gets a positive one
    /// (near-ties within 1e-9 relative go to the lowest point index).
    #[default]
    LargestPositive,
    /// The first point with a non-zero coordinate gets a positive one (e.g. a
    /// trajectory's first snapshot lies on the positive side of every axis).
    FirstPositive,
}

/// Entry point, in the style of linfa: `ClassicalMds::params(2).fit(&d)`.
#[derive(Clone, Copy, Debug)]
pub struct ClassicalMds;

impl ClassicalMds {
    /// Parameters for a `k`-dimensional embedding, with defaults for the rest.
    pub fn params(k: usize) -> MdsParams {
        MdsParams {
            k,
            solver: EigenSolver::Auto,
            sign: SignConvention::LargestPositive,
            partial_threshold: 800,
            tolerance: 1e-10,
            seed: 0,
            max_krylov: 400,
        }
    }
}

/// Parameters of classical MDS; validated by [`MdsParams::fit`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MdsParams {
    k: usize,
    solver: EigenSolver,
    sign: SignConvention,
    partial_threshold: usize,
    tolerance: f64,
    seed: u64,
    max_krylov: usize,
}

impl MdsParams {
    /// The eigensolver (default [`EigenSolver::Auto`]).
    pub fn solver(mut self, solver: EigenSolver) -> Self {
        self.solver = solver;
        self
    }

    /// The sign convention per axis (default [`SignConvention::LargestPositive`]).
    pub fn sign_convention(mut self, sign: SignConvention) -> Self {
        self.sign = sign;
        self
    }

    /// Above this many points, [`EigenSolver::Auto`] uses the partial solver (default 800).
    pub fn partial_threshold(mut self, n: usize) -> Self {
        self.partial_threshold = n;
        self
    }

    /// Relative residual `‖Bv - λv‖ / ‖B‖₂` at which the partial solver stops
    /// (default 1e-10; eigenvalues are then accurate to about its square).
    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Seed of the partial solver's start vector (default 0): output is deterministic.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Largest Krylov dimension of the partial solver before it falls back to
    /// the full one (default 400).
    pub fn max_krylov(mut self, dim: usize) -> Self {
        self.max_krylov = dim;
        self
    }

    /// The number of output dimensions.
    pub fn k(&self) -> usize {
        self.k
    }

    fn check(&self, n: usize) -> Result<()> {
        if self.k == 0 || self.k > n {
            return Err(MdsError::InvalidDimension { k: self.k, n });
        }
        if !(self.tolerance > 0.0 && self.tolerance < 1.0) {
            return Err(MdsError::InvalidParameter {
                name: "tolerance",
                value: self.tolerance.to_string(),
                expected: "a number in (0, 1)",
            });
        }
        if self.max_krylov < self.k {
            return Err(MdsError::InvalidParameter {
                name: "max_krylov",
                value: self.max_krylov.to_string(),
                expected: "at least k",
            });
        }
        Ok(())
    }

    /// Embeds the n points whose dissimilarities are the square, symmetric,
    /// non-negative, zero-diagonal `dissimilarity` (n x n) into `k` dimensions.
    ///
    /// Errors on an empty, non-square, non-finite, negative, asymmetric (beyond
    /// 1e-9 relative) or non-zero-diagonal matrix, and on `k` outside `1..=n`.
    pub fn fit<S: Data<Elem = f64>>(&self, dissimilarity: &ArrayBase<S, Ix2>) -> Result<Embedding> {
        let (n, cols) = dissimilarity.dim();
        if n == 0 || cols == 0 {
            return Err(MdsError::Empty {
                what: "dissimilarity matrix",
            });
        }
        if n != cols {
            return Err(MdsError::NotSquare { rows: n, cols });
        }
        self.check(n)?;
        let mut b = squared_symmetric(dissimilarity)?;
        let row_means = double_centre(&mut b);
        let frobenius_sq: f64 = b.par_iter().map(|v| v * v).sum();

        let use_partial = match self.solver {
            EigenSolver::Full => false,
            EigenSolver::Partial => true,
            EigenSolver::Auto => n > self.partial_threshold,
        };
        let (pairs, solver) = if use_partial {
            let lanczos = LanczosParams {
                k: self.k,
                tol: self.tolerance,
                seed: self.seed,
                max_dim: self.max_krylov,
            };
            match eigen::lanczos(b.view(), &lanczos)? {
                Some(pairs) => (pairs, EigenSolver::Partial),
                None => {
                    tracing::warn!(
                        n,
                        k = self.k,
                        "Lanczos did not converge; using the full eigensolver"
                    );
                    (eigen::full(b, self.k)?, EigenSolver::Full)
                }
            }
        } else {
            (eigen::full(b, self.k)?, EigenSolver::Full)
        };
        let Eigenpairs {
            values,
            mut vectors,
        } = pairs;
        eigen::fix_signs(&mut vectors, self.sign);
        let top = values.slice(s![..self.k]).to_owned();
        // Eigenvalues within rounding of zero carry no distance information;
        // their eigenvectors may be any vector of the null space (the all-ones
        // vector included), so they get zero coordinates rather than noise.
        let largest = values.iter().fold(0.0_f64, |m, l| m.max(l.abs()));
        let negligible = largest * (n as f64) * 16.0 * f64::EPSILON;
        let mut coordinates = vectors.clone();
        for (mut col, &lambda) in coordinates.axis_iter_mut(Axis(1)).zip(top.iter()) {
            let root = if lambda > negligible {
                lambda.sqrt()
            } else {
                0.0
            };
            col.mapv_inplace(|v| v * root);
            // B is double-centred, so every eigenvector with a non-zero
            // eigenvalue is orthogonal to the ones vector: remove the
            // rounding residue so that the embedding is centred exactly.
            let mean = col.sum() / n as f64;
            col.mapv_inplace(|v| v - mean);
        }
        let captured_sq: f64 = top.iter().filter(|&&l| l > 0.0).map(|l| l * l).sum();
        let strain = if frobenius_sq > 0.0 {
            ((frobenius_sq - captured_sq).max(0.0) / frobenius_sq).sqrt()
        } else {
            0.0
        };
        let (explained_ratio, negative_mass) = if solver == EigenSolver::Full {
            let positive: f64 = values.iter().filter(|&&l| l > 0.0).sum();
            let negative: f64 = values.iter().filter(|&&l| l < 0.0).map(|l| -l).sum();
            let kept: f64 = top.iter().filter(|&&l| l > 0.0).sum();
            let ratio = if positive > 0.0 { kept / positive } else { 1.0 };
            let mass = if positive + negative > 0.0 {
                negative / (positive + negative)
            } else {
                0.0
            };
            (Some(ratio), Some(mass))
        } else {
            (None, None)
        };
        tracing::debug!(n, k = self.k, ?solver, strain, "classical MDS fitted");
        Ok(Embedding {
            coordinates,
            axes: vectors,
            eigenvalues: values,
            row_means,
            negligible,
            explained_ratio,
            negative_mass,
            strain,
            solver,
        })
    }
}

/// The squared dissimilarities `A = D ∘ D`, after checking `D`. Entries are
/// squared from `(d_ij + d_ji) / 2`, so `A` is exactly symmetric.
fn squared_symmetric<S: Data<Elem = f64>>(d: &ArrayBase<S, Ix2>) -> Result<Array2<f64>> {
    let d = d.view();
    let n = d.nrows();
    let scale = d
        .iter()
        .fold(
            0.0_f64,
            |acc, v| if v.is_finite() { acc.max(v.abs()) } else { acc },
        )
        .max(f64::MIN_POSITIVE);
    let tol = 1e-9 * scale;
    let mut a = Array2::<f64>::zeros((n, n));
    // Rows in bands of TILE, columns in tiles of TILE: the transposed reads
    // d[j, i] stay within one cache-sized tile.
    const TILE: usize = 64;
    let first_error = a
        .axis_chunks_iter_mut(Axis(0), TILE)
        .into_par_iter()
        .enumerate()
        .map(|(band, mut rows)| -> Result<()> {
            let i0 = band * TILE;
            for j0 in (0..n).step_by(TILE) {
                for (di, mut row) in rows.rows_mut().into_iter().enumerate() {
                    let i = i0 + di;
                    for j in j0..(j0 + TILE).min(n) {
                        let (v, t) = (d[[i, j]], d[[j, i]]);
                        let what = "dissimilarity matrix";
                        if !v.is_finite() {
                            return Err(MdsError::NonFinite {
                                what,
                                row: i,
                                col: j,
                                value: v,
                            });
                        }
                        if v < 0.0 {
                            return Err(MdsError::Negative {
                                what,
                                row: i,
                                col: j,
                                value: v,
                            });
                        }
                        if i == j && v > tol {
                            return Err(MdsError::NonZeroDiagonal { row: i, value: v });
                        }
                        if (v - t).abs() > tol && t.is_finite() {
                            return Err(MdsError::NotSymmetric {
                                row: i,
                                col: j,
                                value: v,
                                transposed: t,
                            });
                        }
                        let m = if i == j { 0.0 } else { 0.5 * (v + t) };
                        row[j] = m * m;
                    }
                }
            }
            Ok(())
        })
        .collect::<Vec<_>>()
        .into_iter()
        .find(Result::is_err);
    if let Some(err) = first_error {
        err?;
    }
    Ok(a)
}

/// Turns `A` into `B = -½ J A J` in place and returns the row means of `A`.
fn double_centre(a: &mut Array2<f64>) -> Array1<f64> {
    let n = a.nrows() as f64;
    let row_means: Array1<f64> = a
        .axis_iter(Axis(0))
        .into_par_iter()
        .map(|r| r.sum() / n)
        .collect::<Vec<_>>()
        .into();
    let grand = row_means.sum() / n;
    a.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut row)| {
            for (j, v) in row.iter_mut().enumerate() {
                // (r_i + r_j) is commutative: B stays exactly symmetric.
                *v = -0.5 * (*v - (row_means[i] + row_means[j]) + grand);
            }
        });
    row_means
}

/// A classical MDS embedding and what is needed to judge and extend it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Embedding {
    coordinates: Array2<f64>,
    axes: Array2<f64>,
    eigenvalues: Array1<f64>,
    row_means: Array1<f64>,
    explained_ratio: Option<f64>,
    negative_mass: Option<f64>,
    /// Eigenvalues at or below this are rounding noise: zero coordinates.
    #[serde(default)]
    negligible: f64,
    strain: f64,
    solver: EigenSolver,
}

impl Embedding {
    /// The n x k coordinates `V_k · diag(√λ_k)`; an axis whose eigenvalue is
    /// not positive is all zeros. Centred: every column sums to ~0.
    pub fn coordinates(&self) -> &Array2<f64> {
        &self.coordinates
    }

    /// The unit eigenvectors of the k axes (n x k), signs fixed by the convention.
    pub fn axes(&self) -> &Array2<f64> {
        &self.axes
    }

    /// Eigenvalues of the double-centred matrix, descending: all n with the
    /// full solver, the top k with the partial one.
    pub fn eigenvalues(&self) -> &Array1<f64> {
        &self.eigenvalues
    }

    /// Number of output dimensions.
    pub fn k(&self) -> usize {
        self.coordinates.ncols()
    }

    /// Number of embedded points.
    pub fn n_points(&self) -> usize {
        self.coordinates.nrows()
    }

    /// Share of the positive spectrum that the k axes explain,
    /// `Σ_{i<k} max(λ_i, 0) / Σ_{λ>0} λ` (1 when all points coincide).
    /// `None` when the partial solver ran: it needs the whole spectrum.
    pub fn explained_ratio(&self) -> Option<f64> {
        self.explained_ratio
    }

    /// Mass of the negative eigenvalues, `Σ_{λ<0} |λ| / Σ |λ|`: 0 for a
    /// Euclidean dissimilarity, larger the less Euclidean it is. `None` when
    /// the partial solver ran.
    pub fn negative_mass(&self) -> Option<f64> {
        self.negative_mass
    }

    /// Torgerson's strain, `‖B - X Xᵀ‖_F / ‖B‖_F` with `B` the double-centred
    /// squared dissimilarities and `X` the coordinates (0 = exact).
    pub fn strain(&self) -> f64 {
        self.strain
    }

    /// The solver that actually ran ([`EigenSolver::Full`] or [`EigenSolver::Partial`]).
    pub fn solver(&self) -> EigenSolver {
        self.solver
    }

    /// Places new points into this picture without recomputing it (Gower's
    /// formula, as in landmark MDS): row r of `dissimilarities` (m x n) holds
    /// new point r's dissimilarities to the n embedded points. A training
    /// point placed this way lands on its own coordinates.
    pub fn place<S: Data<Elem = f64>>(
        &self,
        dissimilarities: &ArrayBase<S, Ix2>,
    ) -> Result<Array2<f64>> {
        let n = self.n_points();
        let (m, cols) = dissimilarities.dim();
        if cols != n {
            return Err(MdsError::ShapeMismatch {
                what: "new points' dissimilarities",
                found: (m, cols),
                expected: format!("one column per embedded point ({n})"),
            });
        }
        for ((row, col), &v) in dissimilarities.indexed_iter() {
            let what = "new points' dissimilarities";
            if !v.is_finite() {
                return Err(MdsError::NonFinite {
                    what,
                    row,
                    col,
                    value: v,
                });
            }
            if v < 0.0 {
                return Err(MdsError::Negative {
                    what,
                    row,
                    col,
                    value: v,
                });
            }
        }
        let mut centred = dissimilarities.mapv(|v| v * v);
        Zip::from(centred.rows_mut()).for_each(|mut r| r -= &self.row_means);
        let mut placed = centred.dot(&self.axes);
        for (mut col, &lambda) in placed.axis_iter_mut(Axis(1)).zip(self.eigenvalues.iter()) {
            let factor = if lambda > self.negligible {
                -0.5 / lambda.sqrt()
            } else {
                0.0
            };
            col.mapv_inplace(|v| v * factor);
        }
        Ok(placed)
    }
}
