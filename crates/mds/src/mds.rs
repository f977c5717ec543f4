//! Classical (Torgerson) MDS: parameters, fitting and the resulting embedding.
use ndarray::{s, Array1, Array2, ArrayBase, Axis, Data, Ix2, Zip};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::eigen::{self, Eigenpairs};
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
    /// Thick-restart Lanczos with full reorthogonalisation: the top k only,
    /// O(n²) per step (add [`MdsParams::spectrum`] for every eigenvalue).
    /// Falls back to the full solver if it has not converged after
    /// [`MdsParams::max_restarts`] restarts.
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
            max_krylov: 128,
            max_restarts: DEFAULT_MAX_RESTARTS,
            spectrum: false,
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
    #[serde(default = "default_max_restarts")]
    max_restarts: usize,
    #[serde(default)]
    spectrum: bool,
}

/// Restarts of the partial solver before it falls back to the full one.
const DEFAULT_MAX_RESTARTS: usize = 100;

fn default_max_restarts() -> usize {
    DEFAULT_MAX_RESTARTS
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

    /// Basis size at which the partial solver restarts, keeping its best
    /// Ritz vectors (default 128; memory `max_krylov · n` numbers).
    pub fn max_krylov(mut self, dim: usize) -> Self {
        self.max_krylov = dim;
        self
    }

    /// Restarts of the partial solver before it gives up and falls back to
    /// the full one (default 100).
    pub fn max_restarts(mut self, restarts: usize) -> Self {
        self.max_restarts = restarts;
        self
    }

    /// With the partial solver, also compute every eigenvalue (values only:
    /// LAPACK `dsyevd` without eigenvectors, after the top k are found), so
    /// that [`Embedding::explained_ratio`] and [`Embedding::negative_mass`]
    /// are reported at any n. O(n³): at n = 4,000 on a 2-core machine, about
    /// 4 s against under 1 s for the top k alone and 6-7 s for the full solver.
    /// Default `false`.
    pub fn spectrum(mut self, all: bool) -> Self {
        self.spectrum = all;
        self
    }

    /// The number of output dimensions.
    pub fn k(&self) -> usize {
        self.k
    }

    fn check_shape(&self, (n, cols): (usize, usize)) -> Result<()> {
        if n == 0 || cols == 0 {
            return Err(MdsError::Empty {
                what: "dissimilarity matrix",
            });
        }
        if n != cols {
            return Err(MdsError::NotSquare { rows: n, cols });
        }
        self.check(n)
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
    /// Works on a copy; [`MdsParams::fit_owned`] reuses the caller's matrix
    /// instead and needs half the memory (8 n² bytes rather than 16 n²).
    ///
    /// Errors on an empty, non-square, non-finite, negative, asymmetric (beyond
    /// 1e-9 relative) or non-zero-diagonal matrix, and on `k` outside `1..=n`.
    pub fn fit<S: Data<Elem = f64>>(&self, dissimilarity: &ArrayBase<S, Ix2>) -> Result<Embedding> {
        self.check_shape(dissimilarity.dim())?;
        self.fit_owned(parallel_copy(dissimilarity))
    }

    /// [`MdsParams::fit`] on a matrix it may overwrite: the squared and
    /// double-centred matrix is computed in its place, so the largest
    /// allocation is the input itself (n = 40,000 points: 12.8 GB).
    pub fn fit_owned(&self, dissimilarity: Array2<f64>) -> Result<Embedding> {
        self.check_shape(dissimilarity.dim())?;
        let mut b = crate::into_standard_layout(dissimilarity);
        let n = b.nrows();
        let exactly_symmetric = validate(&b)?;
        if !exactly_symmetric {
            symmetrise(&mut b);
        }
        square_off_diagonal(&mut b);
        let (row_means, frobenius_sq) = double_centre(&mut b);

        let use_partial = match self.solver {
            EigenSolver::Full => false,
            EigenSolver::Partial => true,
            EigenSolver::Auto => n > self.partial_threshold,
        };
        let (pairs, solver, spectrum) = if use_partial {
            match eigen::lanczos(
                b.view(),
                self.k,
                self.tolerance,
                self.seed,
                self.max_krylov,
                self.max_restarts,
            )? {
                Some(pairs) => {
                    let spectrum = if self.spectrum {
                        Some(eigen::values_only(b)?)
                    } else {
                        None
                    };
                    (pairs, EigenSolver::Partial, spectrum)
                }
                None => {
                    tracing::warn!(
                        n,
                        k = self.k,
                        "Lanczos did not converge; using the full eigensolver"
                    );
                    (eigen::full(b, self.k)?, EigenSolver::Full, None)
                }
            }
        } else {
            (eigen::full(b, self.k)?, EigenSolver::Full, None)
        };
        let Eigenpairs {
            mut values,
            mut vectors,
        } = pairs;
        let whole_spectrum = solver == EigenSolver::Full || spectrum.is_some();
        if let Some(mut all) = spectrum {
            // The top k stay those of the partial solver, so that the
            // coordinates are exactly V_k sqrt(lambda_k) of the reported values.
            all.slice_mut(s![..self.k]).assign(&values);
            values = all;
        }
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
        let (explained_ratio, negative_mass) = if whole_spectrum {
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

/// Rows per band (and columns per tile) of the blocked passes over `D` and
/// its transpose: a 64 x 64 tile of `f64` is 32 KiB, cache-sized.
const TILE: usize = 64;

/// A standard-layout copy of `d`, written by all threads: first touches of
/// freshly mapped pages are the cost of a large copy, and they run in parallel.
fn parallel_copy<S: Data<Elem = f64>>(d: &ArrayBase<S, Ix2>) -> Array2<f64> {
    let mut out = Array2::<f64>::zeros(d.raw_dim());
    Zip::from(out.rows_mut())
        .and(d.rows())
        .par_for_each(|mut o, r| o.assign(&r));
    out
}

/// What one band of rows contributes to the validation of `D`.
#[derive(Default)]
struct BandCheck {
    /// The first non-finite or negative entry: (row, col, value).
    bad: Option<(usize, usize, f64)>,
    /// Largest finite |entry|.
    scale: f64,
    /// Largest |d_ij - d_ji| and where.
    asymmetry: (f64, usize, usize),
    /// Largest diagonal entry and where.
    diagonal: (f64, usize),
}

/// Checks that `D` is finite, non-negative, symmetric and
/// zero on the diagonal, each within 1e-9 of its largest entry, in one
/// parallel read of its upper triangle and the matching lower tiles.
/// Returns whether `D` is exactly symmetric.
fn validate(d: &Array2<f64>) -> Result<bool> {
    let n = d.nrows();
    let what = "dissimilarity matrix";
    let bands: Vec<BandCheck> = (0..n.div_ceil(TILE))
        .into_par_iter()
        .map(|band| {
            let mut c = BandCheck::default();
            let (i0, i1) = (band * TILE, ((band + 1) * TILE).min(n));
            for j0 in (i0..n).step_by(TILE) {
                let j1 = (j0 + TILE).min(n);
                for i in i0..i1 {
                    for j in j0.max(i)..j1 {
                        let (v, t) = (d[[i, j]], d[[j, i]]);
                        for (r, col, x) in [(i, j, v), (j, i, t)] {
                            if !(x.is_finite() && x >= 0.0) {
                                if c.bad.is_none() {
                                    c.bad = Some((r, col, x));
                                }
                            } else if x > c.scale {
                                c.scale = x;
                            }
                        }
                        if i == j {
                            if v > c.diagonal.0 {
                                c.diagonal = (v, i);
                            }
                        } else if (v - t).abs() > c.asymmetry.0 {
                            c.asymmetry = ((v - t).abs(), i, j);
                        }
                    }
                }
            }
            c
        })
        .collect();
    if let Some((row, col, value)) = bands.iter().find_map(|c| c.bad) {
        return Err(if value.is_finite() {
            MdsError::Negative {
                what,
                row,
                col,
                value,
            }
        } else {
            MdsError::NonFinite {
                what,
                row,
                col,
                value,
            }
        });
    }
    let scale = bands.iter().fold(0.0_f64, |m, c| m.max(c.scale));
    let tol = 1e-9 * scale.max(f64::MIN_POSITIVE);
    let diagonal = bands
        .iter()
        .map(|c| c.diagonal)
        .fold((0.0, 0), |m, v| if v.0 > m.0 { v } else { m });
    if diagonal.0 > tol {
        return Err(MdsError::NonZeroDiagonal {
            row: diagonal.1,
            value: diagonal.0,
        });
    }
    let asymmetry =
        bands
            .iter()
            .map(|c| c.asymmetry)
            .fold((0.0, 0, 0), |m, v| if v.0 > m.0 { v } else { m });
    if asymmetry.0 > tol {
        let (row, col) = (asymmetry.1, asymmetry.2);
        return Err(MdsError::NotSymmetric {
            row,
            col,
            value: d[[row, col]],
            transposed: d[[col, row]],
        });
    }
    Ok(asymmetry.0 == 0.0)
}

/// Replaces `D` by `(D + Dᵀ) / 2`, tile pair by tile pair (only for inputs
/// that are symmetric within tolerance but not exactly).
fn symmetrise(d: &mut Array2<f64>) {
    let n = d.nrows();
    for i0 in (0..n).step_by(TILE) {
        for j0 in (i0..n).step_by(TILE) {
            for i in i0..(i0 + TILE).min(n) {
                for j in j0.max(i + 1)..(j0 + TILE).min(n) {
                    let m = 0.5 * (d[[i, j]] + d[[j, i]]);
                    d[[i, j]] = m;
                    d[[j, i]] = m;
                }
            }
        }
    }
}

/// `A = D ∘ D` in place, with an exactly zero diagonal.
fn square_off_diagonal(d: &mut Array2<f64>) {
    d.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut row)| {
            row.mapv_inplace(|v| v * v);
            row[i] = 0.0;
        });
}

/// Turns `A` into `B = -½ J A J` in place; returns the row means of `A` and
/// `‖B‖_F²`.
fn double_centre(a: &mut Array2<f64>) -> (Array1<f64>, f64) {
    let n = a.nrows() as f64;
    let row_means: Array1<f64> = a
        .axis_iter(Axis(0))
        .into_par_iter()
        .map(|r| r.sum() / n)
        .collect::<Vec<_>>()
        .into();
    let grand = row_means.sum() / n;
    let frobenius_sq = a
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .map(|(i, mut row)| {
            let mut sum = 0.0;
            for (j, v) in row.iter_mut().enumerate() {
                // (r_i + r_j) is commutative: B stays exactly symmetric.
                *v = -0.5 * (*v - (row_means[i] + row_means[j]) + grand);
                sum += *v * *v;
            }
            sum
        })
        .sum();
    (row_means, frobenius_sq)
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
    /// full solver (or the partial one with [`MdsParams::spectrum`]), the top
    /// k with the partial one.
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
    /// `None` when the partial solver ran without [`MdsParams::spectrum`]: it
    /// needs the whole spectrum.
    pub fn explained_ratio(&self) -> Option<f64> {
        self.explained_ratio
    }

    /// Mass of the negative eigenvalues, `Σ_{λ<0} |λ| / Σ |λ|`: 0 for a
    /// Euclidean dissimilarity, larger the less Euclidean it is. `None` when
    /// the partial solver ran without [`MdsParams::spectrum`].
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
