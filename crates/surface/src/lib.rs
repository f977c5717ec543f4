//! Loss along lines and planes in weight space, without libtorch.
//!
//! This crate holds the maths behind the loss-landscape pictures of Liao &
//! Poggio's "Theory of Deep Learning II" and of Li et al.'s "Visualizing
//! the Loss Landscape of Neural Nets" (whose Python scripts it replaces):
//! which weights to evaluate, and what to do with the values. Evaluating a
//! network at those weights is left to the crates that link libtorch.
//!
//! # Pieces
//!
//! * [`Weights`] — a snapshot as ordered named row-major `f32` tensors
//!   (from and to `Vec<landscape_trajectory::Tensor>`), with `f64`
//!   accumulated [`dot`](Weights::dot), [`norm`](Weights::norm),
//!   [`cosine`](Weights::cosine), [`sub`](Weights::sub),
//!   [`offset`](Weights::offset) (`a + x d1 + y d2`) and
//!   [`lerp`](Weights::lerp) (bit-exact at `t = 0` and `t = 1`).
//!   [`TensorRole`] tells filters (`ndim >= 2`), 1-D parameters and
//!   buffers (`running_mean`, `running_var`, `num_batches_tracked`) apart.
//! * [`DirectionParams`] → [`Direction`] — seeded Gaussian directions
//!   (`ChaCha8Rng`) with filter / layer / weight normalisation;
//!   [`orthogonalise`] (Gram-Schmidt in f64) and
//!   [`DirectionParams::plane`] for two orthogonal directions.
//! * [`LineSpec`] and [`Barrier`] — the `t` grid of a line (with `t = 0`
//!   and `t = 1` exactly on it) and the barrier: the largest excess of the
//!   loss (or error) over the chord between the endpoints.
//! * [`PlaneSpec`] / [`Axis`] / [`GridPoint`] and [`Plane`] — grids of plane
//!   coordinates (row-major, rows are y), random planes
//!   ([`Plane::random`]), planes through three snapshots
//!   ([`Plane::through`]), [`Plane::point`] and least-squares
//!   [`Plane::project`].
//! * [`PcaParams`] → [`Pca`] — PCA of a trajectory via the n x n Gram
//!   matrix (f64, BLAS + LAPACK `syevd` through `ndarray-linalg`): unit
//!   orthogonal components, explained shares, coordinates, reconstruction
//!   errors, and the PCA [`Plane`].
//! * [`Grid`] — contours of values on a grid by the `contour` crate:
//!   [`Grid::isolines`] and [`Grid::bands`] in data coordinates,
//!   [`levels`] (linear or log-spaced) and [`bilinear`] interpolation.
//! * [`GridStore`] / [`Shard`] / [`GridKey`] / [`merge`] — resumable,
//!   shardable bookkeeping of evaluated points: `grid.json` +
//!   `points.csv`, appended and synced point by point.
//!
//! # Li et al.'s conventions, and ours
//!
//! | Li et al. (`loss-landscape`) | here |
//! |---|---|
//! | `--xnorm filter` (default) | [`Normalisation::Filter`] (default) |
//! | `--xnorm layer` | [`Normalisation::Layer`] |
//! | `--xnorm weight`: direction × weights, entry-wise | [`Normalisation::Weight`]: all filter tensors scaled together to the weights' norm (different!) |
//! | `--xignore biasbn`: 1-D tensors zero | `include_1d: false` (default) |
//! | no `biasbn`: 1-D tensors = the weights' values | `include_1d: true` |
//! | `--dir_type states`: BN buffers in the direction | never: buffers are always zero in directions; a BN policy upstream handles them |
//! | `d.mul_(w.norm() / (d.norm() + 1e-10))` | exact ratio; a zero-norm filter stays zero |
//! | `torch.randn` per tensor | `ChaCha8Rng::seed_from_u64(seed)`, f64 standard normals tensor by tensor, row-major, one per entry of every tensor |
//! | x and y directions independent, nearly orthogonal | `d2` orthogonalised against `d1` and not re-normalised (see [`DirectionParams::plane`]) |
//! | `--x=-1:1:51 --y=-1:1:51` | [`PlaneSpec::default`] |
//! | 1-D interpolation `--x=-0.5:1.5:401` between two models | [`LineSpec::between`] (41 points) |
//! | trajectory PCA: `w_i - w_final`, then sklearn `PCA` (which re-centres on the mean) | [`Centre::MeanAxesFinalOrigin`]; [`Centre::Final`] (default) uses second moments about the final point, [`Centre::Mean`] ordinary PCA |
//! | sklearn's `svd_flip` signs | the same rule on the coordinates (see [`PcaParams::fit`]) |
//!
//! # Example
//!
//! ```
//! use landscape_surface::{
//!     Barrier, DirectionParams, Grid, GridPoint, LineSpec, Plane, PlaneSpec, Axis, Weights,
//! };
//! use landscape_trajectory::Tensor;
//!
//! let tensor = |name: &str, shape: &[usize], f: &dyn Fn(usize) -> f32| Tensor {
//!     name: name.into(),
//!     shape: shape.to_vec(),
//!     data: (0..shape.iter().product()).map(f).collect(),
//! };
//! let w = Weights::new(vec![
//!     tensor("conv.weight", &[4, 3, 3, 3], &|i| (i as f32 * 0.1).sin()),
//!     tensor("conv.bias", &[4], &|i| i as f32),
//!     tensor("bn.running_mean", &[4], &|_| 0.5),
//! ])?;
//!
//! // A random filter-normalised plane around w, and a coarse grid on it.
//! let plane = Plane::random(&w, &DirectionParams::new(42))?;
//! let spec = PlaneSpec::new(Axis::new(-1.0, 1.0, 5), Axis::new(-1.0, 1.0, 5));
//! let mut values = Vec::new();
//! for p in spec.points()? {
//!     let weights = plane.at(&p)?; // evaluate the network here
//!     let dist = weights.sub(&w)?.norm();
//!     values.push(dist * dist);
//! }
//! // Projections recover plane coordinates.
//! let pr = plane.project(&plane.point(0.5, -0.25)?)?;
//! assert!((pr.x - 0.5).abs() < 1e-5 && (pr.y + 0.25).abs() < 1e-5);
//!
//! // Contours of the (here quadratic) surface, in plane coordinates.
//! let grid = Grid::from_spec(&spec, values)?;
//! let iso = grid.isolines(&[0.5 * w.norm().powi(2)])?;
//! assert!(!iso[0].lines.is_empty());
//!
//! // The barrier along a line between two snapshots.
//! let ts = LineSpec::between().ts()?;
//! let loss: Vec<f64> = ts.iter().map(|t| 1.0 + 4.0 * t * (1.0 - t)).collect();
//! let b = Barrier::of(&ts, &loss)?;
//! assert!((b.height() - 1.0).abs() < 1e-12 && b.t() == 0.5);
//! # let _ = GridPoint { index: 0, ix: 0, iy: 0, x: 0.0, y: 0.0 };
//! # Ok::<(), landscape_surface::SurfaceError>(())
//! ```
//!
//! # Resumable, sharded grids
//!
//! ```
//! use landscape_surface::{merge, GridHeader, GridKey, GridSpec, GridStore, PlaneSpec, Axis, Shard};
//!
//! let tmp = tempfile::tempdir().map_err(|e| landscape_surface::SurfaceError::Merge { message: e.to_string() })?;
//! let spec = GridSpec::Plane(PlaneSpec::new(Axis::new(-1.0, 1.0, 3), Axis::new(-1.0, 1.0, 3)));
//! let key = GridKey { dataset: "cifar10:test".into(), ..GridKey::default() };
//! let mut folders = Vec::new();
//! for k in 1..=2 {
//!     let shard: Shard = format!("{k}/2").parse()?; // from `--shard K/N`
//!     let dir = tmp.path().join(format!("shard{k}"));
//!     let mut store = GridStore::open(&dir, GridHeader::new(key.clone(), spec, shard, &["test_loss"]))?;
//!     for i in store.missing() {
//!         let p = store.point(i)?;
//!         store.record(i, &[p.x * p.x + p.y * p.y])?; // evaluate here
//!     }
//!     folders.push(dir);
//! }
//! let table = merge(&folders, tmp.path().join("all"))?;
//! assert_eq!(table.column("test_loss")?.len(), 9);
//! # Ok::<(), landscape_surface::SurfaceError>(())
//! ```
mod contour;
mod direction;
mod error;
mod grid;
mod line;
mod pca;
mod plane;
mod weights;

pub use crate::contour::{bilinear, levels, Band, Grid, Isoline, Point, Polygon, Spacing};
pub use direction::{
    normalise, orthogonalise, Direction, DirectionParams, Normalisation, Orthogonalised,
    PlaneDirections,
};
pub use error::{Result, SurfaceError};
pub use grid::{
    merge, read_grid, GridHeader, GridKey, GridRow, GridSpec, GridStore, GridTable, Shard,
    GRID_JSON, POINTS_CSV,
};
pub use line::{Barrier, Barriers, LineSpec};
pub use pca::{Centre, Pca, PcaParams, PcaProjection};
pub use plane::{Axis, GridPoint, Plane, PlaneSpec, Projection, ThroughPlane};
pub use weights::{TensorRole, Weights, BUFFER_SUFFIXES};
