//! Loss along lines and planes through stored snapshots: the engine behind
//! `landscape surface line|plane|merge` and `landscape pca` (the plane of a
//! trajectory's first two principal components, [`Geometry::Pca`], with
//! `pca.json`, `trajectory.csv` and the projection error in `summary.json`).
//!
//! The maths (which weights, barriers, contours, the resumable grid store)
//! is `landscape_surface`'s; this module evaluates the network there. It
//! opens the snapshots as [`crate::snapshot`] does (the data, network and
//! evaluation the stored metrics were computed with, flags overriding the BN
//! policy and the subset sizes; `surface.json` says which came from where),
//! then evaluates the points of a
//! [`GridSpec`] one by one into a [`GridStore`]: every finished point is
//! appended and synced, so a killed run resumes at the next missing point,
//! and a run whose inputs differ (snapshots, directions, spec, BN policy,
//! data, network, chunk size, device kind) is refused by the [`GridKey`]
//! check before anything is written. With a shard `K/N` ([`SurfaceOptions::shard`]) only one block of
//! points is evaluated; [`merge`] joins the shard folders.
//!
//! When a folder holds the whole grid, [`write_outputs`] draws it:
//! `line.{png,svg}` or `plane.{png,svg}`, `grid.csv` (planes) and
//! `summary.json` (barriers of lines between two snapshots; the endpoints'
//! or centre's evaluated against stored metrics; minima).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use landscape_net::{self as net, Dcnn, DeviceChoice, NetConfig};
use landscape_surface::{
    self as surface, levels, Barrier, Direction, DirectionParams, Grid, GridHeader, GridKey,
    GridPoint, GridSpec, GridStore, GridTable, LineSpec, Pca, PcaParams, Plane, PlaneSpec, Shard,
    Spacing, SurfaceError, Weights,
};
use landscape_trajectory::{SnapshotId, Store};
use serde::{Deserialize, Serialize};

use landscape_engine::data::{self, DataConfig};
use landscape_engine::eval::{EvalConfig, Evaluator, Metrics};
use landscape_engine::plot::{
    self, ContourLines, Curve, HeatMap, LabeledPoint, LinePanel, VerticalMark,
};
use landscape_engine::provenance::{write_atomic, write_json};

use crate::input::Input;
use crate::snapshot::{
    content_crc, data_identity, read_weights, resolve, to_named, Overrides, Setting, SnapshotRef,
};

/// The value columns of every grid, in order.
pub const COLUMNS: [&str; 4] = ["train_loss", "train_error", "test_loss", "test_error"];

/// The descriptive metadata of a surface folder (not part of its key).
pub const SURFACE_JSON: &str = "surface.json";

/// The PCA of a `plane-pca` surface: centre, shares, coordinates, residuals.
pub const PCA_JSON: &str = "pca.json";

/// The projected trajectory of a `plane-pca` surface, one row per snapshot.
pub const TRAJECTORY_CSV: &str = "trajectory.csv";

/// Which surface to evaluate.
#[derive(Clone, Debug, PartialEq)]
pub enum Geometry {
    /// The line `(1 - t) from + t to` (default `t` in `[-0.5, 1.5]`).
    Between {
        /// The snapshot at `t = 0`.
        from: SnapshotId,
        /// The snapshot at `t = 1`.
        to: SnapshotId,
        /// The `t` grid.
        spec: LineSpec,
    },
    /// The line `at + t d` along a random (filter-normalised) direction `d`
    /// (default `t` in `[-1, 1]`).
    Direction {
        /// The snapshot at `t = 0`.
        at: SnapshotId,
        /// The direction's seed and normalisation.
        params: DirectionParams,
        /// The `t` grid.
        spec: LineSpec,
    },
    /// Li et al.'s random plane `at + x d1 + y d2`.
    RandomPlane {
        /// The snapshot at `(0, 0)`.
        at: SnapshotId,
        /// The directions' seed and normalisation.
        params: DirectionParams,
        /// The grid.
        spec: PlaneSpec,
    },
    /// The plane through three snapshots (`a` at the origin, `b` at
    /// `(1, 0)`), on a grid around all three.
    Through {
        /// The three snapshots.
        snapshots: [SnapshotId; 3],
        /// Margin around the three points, as a share of each axis' span.
        margin: f64,
        /// Points per axis.
        points: usize,
    },
    /// Li et al.'s PCA view of a trajectory: the plane through the PCA
    /// origin spanned by the first two components of the snapshots (in
    /// trajectory order; the last is the "final" point), on a grid around
    /// their projections.
    Pca {
        /// The trajectory, in order (at least 3 snapshots).
        snapshots: Vec<SnapshotId>,
        /// Centre and 1-D parameters (2 components are always used).
        params: PcaParams,
        /// Margin around the projected points, as a share of each axis' span.
        margin: f64,
        /// Points per axis.
        points: usize,
    },
}

impl Geometry {
    /// The name written to `grid.json` and `surface.json`.
    pub fn name(&self) -> &'static str {
        match self {
            Geometry::Between { .. } => "line-between",
            Geometry::Direction { .. } => "line-direction",
            Geometry::RandomPlane { .. } => "plane-random",
            Geometry::Through { .. } => "plane-through",
            Geometry::Pca { .. } => "plane-pca",
        }
    }

    fn snapshots(&self) -> Vec<(&'static str, SnapshotId)> {
        match self {
            Geometry::Between { from, to, .. } => vec![("from", *from), ("to", *to)],
            Geometry::Direction { at, .. } | Geometry::RandomPlane { at, .. } => {
                vec![("centre", *at)]
            }
            Geometry::Pca { snapshots, .. } => {
                snapshots.iter().map(|&id| ("trajectory", id)).collect()
            }
            Geometry::Through { snapshots, .. } => vec![
                ("a", snapshots[0]),
                ("b", snapshots[1]),
                ("c", snapshots[2]),
            ],
        }
    }

    fn directions(&self) -> Option<DirectionParams> {
        match self {
            Geometry::Direction { params, .. } | Geometry::RandomPlane { params, .. } => {
                Some(*params)
            }
            _ => None,
        }
    }
}

/// Where to read, where to write, on what.
#[derive(Clone, Debug)]
pub struct SurfaceOptions {
    /// The trajectory store (its `run.json` is looked for in the folder above).
    pub store: PathBuf,
    /// The output folder (the grid store and the figures).
    pub out: PathBuf,
    /// Which block of points this process evaluates.
    pub shard: Shard,
    /// auto, cpu or cuda.
    pub device: DeviceChoice,
    /// CIFAR-10 folder (default: `LANDSCAPE_CIFAR10`, then the workspace's `data/`).
    pub data_dir: Option<PathBuf>,
    /// libtorch CPU threads (default: all cores).
    pub threads: Option<usize>,
    /// Settings given as flags.
    pub overrides: Overrides,
    /// The command line, for `surface.json`.
    pub command: Vec<String>,
}

/// `surface.json`: what a surface folder was computed from, in words (the
/// key in `grid.json` is what is checked; this is what is shown).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SurfaceMeta {
    /// [`Geometry::name`].
    pub surface: String,
    /// The store.
    pub store: PathBuf,
    /// The `run.json` the settings were read from, if any.
    pub run_json: Option<PathBuf>,
    /// BN policy, subset sizes, chunk size, network: value and source.
    pub settings: BTreeMap<String, Setting>,
    /// The data configuration used.
    pub data: DataConfig,
    /// The evaluation settings used.
    pub eval: EvalConfig,
    /// The network.
    pub net: NetConfig,
    /// Where the images came from.
    pub data_source: PathBuf,
    /// Whether the loaded subsets have the identities recorded in `run.json`'s
    /// fingerprint (`None`: nothing to compare with).
    pub data_matches_run: Option<bool>,
    /// The snapshots.
    pub snapshots: Vec<SnapshotRef>,
    /// The random directions' parameters, if any.
    pub directions: Option<DirectionParams>,
    /// Facts about the directions (norms, cosines).
    pub direction_stats: BTreeMap<String, f64>,
    /// The device.
    pub device: String,
    /// The device in detail (GPU, driver, CUDA, cuDNN, TF32); absent in
    /// folders written before it was recorded.
    #[serde(default)]
    pub device_info: Option<net::DeviceInfo>,
    /// libtorch CPU threads.
    pub threads: usize,
    /// The command line of the last invocation.
    pub command: Vec<String>,
}

/// What a `surface` invocation did.
#[derive(Clone, Debug)]
pub struct SurfaceReport {
    /// The output folder.
    pub out: PathBuf,
    /// The shard evaluated.
    pub shard: Shard,
    /// Points evaluated by this invocation.
    pub evaluated: usize,
    /// Points of this shard done in all.
    pub done: usize,
    /// Points of this shard.
    pub shard_points: usize,
    /// Points of the whole grid.
    pub total_points: usize,
    /// Files written (figures, tables, summary); empty for an unfinished or
    /// partial (sharded) grid.
    pub files: Vec<PathBuf>,
    /// `summary.json`, when written.
    pub summary: Option<serde_json::Value>,
}

/// A progress bar over grid points.
fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>20} [{bar:30}] {pos}/{len} points, {elapsed} elapsed, ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// The weights at a grid point.
enum Maths {
    /// `(1 - x) a + x b` ([`Evaluator::between`], in `f64` as
    /// [`Weights::lerp`]).
    Lerp(Dcnn, Dcnn),
    Along(Weights, Direction),
    Plane(Plane),
}

impl Maths {
    /// The metrics at grid point `i` (`p`); `model` is the network the
    /// weights of a point off the segment between two models are loaded into.
    fn evaluate(
        &self,
        evaluator: &Evaluator<'_>,
        model: &mut Dcnn,
        i: usize,
        p: &GridPoint,
    ) -> Result<Metrics> {
        let evaluating = || format!("evaluating point {i} ({}, {})", p.x, p.y);
        let w = match self {
            Maths::Lerp(a, b) => {
                let (_, m) = evaluator
                    .between(a, b, p.x, net::Lerp::F64)
                    .with_context(evaluating)?;
                return Ok(m);
            }
            Maths::Along(w, d) => w.combine(&[(p.x, d.weights())])?,
            Maths::Plane(plane) => plane.at(p)?,
        };
        model
            .import(&to_named(w))
            .with_context(|| format!("loading the weights of point {i} into the network"))?;
        evaluator.evaluate(model).with_context(evaluating)
    }
}

/// Evaluates this shard's missing points of a surface into `opts.out`, then
/// (when the folder holds the whole grid) writes its figures and summary.
pub fn run(geometry: &Geometry, opts: &SurfaceOptions) -> Result<SurfaceReport> {
    let name = |input| opts.overrides.name(input);
    let store = Store::open(&opts.store).with_context(|| {
        format!(
            "opening the store {} ({})",
            opts.store.display(),
            name(Input::Store)
        )
    })?;
    let roles = geometry.snapshots();
    for (role, id) in &roles {
        store.get(*id).map_err(|e| {
            anyhow!(
                "{}: snapshot {id}: {e} (see `landscape store ls {}`)",
                name(match *role {
                    "from" => Input::From,
                    "to" => Input::To,
                    "centre" => Input::Centre,
                    "trajectory" => Input::Trajectory,
                    _ => Input::Through,
                }),
                opts.store.display()
            )
        })?;
    }
    let first = store.read_snapshot(roles[0].1)?;
    let r = resolve(&opts.store, &first, &opts.overrides)?;
    drop(first);
    let threads = opts.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    net::set_threads(threads);
    let device = opts.device.resolve()?;
    let mut model = Dcnn::new(&r.net, device, 0)?;
    let names = model.tensor_names();
    let weights = roles
        .iter()
        .map(|(_, id)| read_weights(&store, *id, &names, &r.net))
        .collect::<Result<Vec<_>>>()?;
    // The surface maths.
    let mut direction_stats = BTreeMap::new();
    let mut coords: Vec<(f64, f64)> = Vec::new();
    let mut fitted: Option<Pca> = None;
    let (maths, spec) = match geometry {
        Geometry::Between { spec, .. } => {
            let d = weights[1].sub(&weights[0])?;
            direction_stats.insert("distance".to_owned(), d.norm());
            coords = vec![(0.0, 0.0), (1.0, 0.0)];
            let mut ends = Vec::with_capacity(2);
            for w in weights.iter().take(2) {
                let mut m = model.try_clone()?;
                m.import(&to_named(w.clone()))
                    .context("loading the weights of an end into the network")?;
                ends.push(m);
            }
            let (Some(b), Some(a)) = (ends.pop(), ends.pop()) else {
                bail!("a line between two models needs two snapshots");
            };
            (Maths::Lerp(a, b), GridSpec::Line(*spec))
        }
        Geometry::Direction { params, spec, .. } => {
            let d = params.random(&weights[0])?;
            direction_stats.insert("direction_norm".to_owned(), d.norm());
            direction_stats.insert("weights_norm".to_owned(), weights[0].norm());
            coords = vec![(0.0, 0.0)];
            (Maths::Along(weights[0].clone(), d), GridSpec::Line(*spec))
        }
        Geometry::RandomPlane { params, spec, .. } => {
            let dirs = params.plane(&weights[0])?;
            direction_stats.insert("cos_before".to_owned(), dirs.cos_before());
            direction_stats.insert("cos_after".to_owned(), dirs.cos_after());
            direction_stats.insert(
                "filter_norm_deviation".to_owned(),
                dirs.filter_norm_deviation(),
            );
            let (d1, d2) = dirs.into_pair();
            direction_stats.insert("d1_norm".to_owned(), d1.norm());
            direction_stats.insert("d2_norm".to_owned(), d2.norm());
            direction_stats.insert("weights_norm".to_owned(), weights[0].norm());
            coords = vec![(0.0, 0.0)];
            (
                Maths::Plane(Plane::new(weights[0].clone(), d1, d2)?),
                GridSpec::Plane(*spec),
            )
        }
        Geometry::Through { margin, points, .. } => {
            let tp = Plane::through(&weights[0], &weights[1], &weights[2])?;
            coords.extend([tp.a(), tp.b(), tp.c()]);
            let spec = tp.suggest_spec(*margin, *points);
            direction_stats.insert("d1_norm".to_owned(), tp.plane().d1().norm());
            direction_stats.insert("d2_norm".to_owned(), tp.plane().d2().norm());
            (Maths::Plane(tp.into_plane()), GridSpec::Plane(spec))
        }
        Geometry::Pca {
            params,
            margin,
            points,
            ..
        } => {
            let pca = params
                .fit(&weights)
                .context("fitting the PCA of the trajectory")?;
            let plane = pca.plane()?;
            let spec = pca.suggest_spec(*margin, *points)?;
            spec.validate().map_err(|e| {
                anyhow!(
                    "the PCA grid ({}/{}): {e}",
                    name(Input::Points),
                    name(Input::Margin)
                )
            })?;
            coords.extend(pca.coordinates().iter().map(|c| (c[0], c[1])));
            for (k, share) in pca.explained_share().iter().enumerate() {
                direction_stats.insert(format!("explained_share_{}", k + 1), *share);
            }
            direction_stats.insert("d1_norm".to_owned(), plane.d1().norm());
            direction_stats.insert("d2_norm".to_owned(), plane.d2().norm());
            direction_stats.insert("cos_d1_d2".to_owned(), plane.d1().cosine(plane.d2())?);
            direction_stats.insert("origin_norm".to_owned(), pca.origin().norm());
            fitted = Some(pca);
            (Maths::Plane(plane), GridSpec::Plane(spec))
        }
    };
    drop(weights);
    // The data, and the key of everything the values depend on.
    let data = data::load(&r.data, opts.data_dir.as_deref(), device)?;
    let data_matches_run = r.run_json.as_ref().and_then(|rj| {
        let train = rj.fingerprint.get("data.train")?;
        let test = rj.fingerprint.get("data.test")?;
        let same = serde_json::to_string(&data.train_id).ok()? == *train
            && serde_json::to_string(&data.test_id).ok()? == *test;
        Some(same)
    });
    if data_matches_run == Some(false) {
        tracing::warn!(
            run_json = %r.run_json.as_ref().map(|x| x.path.display().to_string()).unwrap_or_default(),
            "the evaluation data differ from the run's (other sizes, or another CIFAR-10 folder): \
             the points will not reproduce the stored metrics"
        );
    }
    let mut snapshots = Vec::new();
    let mut key_snapshots = Vec::new();
    for ((role, id), (x, y)) in roles.iter().zip(&coords) {
        let info = store.get(*id)?;
        let crc = content_crc(&store, *id, &names)?;
        key_snapshots.push(format!("{id}:{crc:08x}"));
        let m = info.meta();
        snapshots.push(SnapshotRef {
            role: (*role).to_owned(),
            id: id.get(),
            run: m.run().to_owned(),
            kind: m.kind().name(),
            epoch: m.epoch(),
            crc32: format!("{crc:08x}"),
            metrics: m.metrics().clone(),
            x: *x,
            y: *y,
        });
    }
    let mut extra = BTreeMap::new();
    extra.insert("surface".to_owned(), geometry.name().to_owned());
    extra.insert("net".to_owned(), serde_json::to_string(&r.net)?);
    extra.insert("chunk_size".to_owned(), r.eval.chunk_size.to_string());
    extra.insert(
        "device".to_owned(),
        if device.is_cuda() { "cuda" } else { "cpu" }.to_owned(),
    );
    if let Geometry::Through { margin, points, .. } | Geometry::Pca { margin, points, .. } =
        geometry
    {
        extra.insert("margin".to_owned(), margin.to_string());
        extra.insert("points".to_owned(), points.to_string());
    }
    if let Geometry::Pca { params, .. } = geometry {
        extra.insert("pca".to_owned(), serde_json::to_string(params)?);
    }
    let key = GridKey {
        snapshots: key_snapshots,
        directions: geometry.directions(),
        bn_policy: r.eval.bn.as_str().to_owned(),
        dataset: data_identity(&data),
        extra,
    };
    let header = GridHeader::new(key, spec, opts.shard, &COLUMNS);
    let mut grid = match GridStore::open(&opts.out, header) {
        Ok(g) => g,
        Err(e @ (SurfaceError::KeyMismatch { .. } | SurfaceError::StoreMismatch { .. })) => {
            return Err(anyhow::Error::new(e).context(format!(
                "{} holds another surface (or another shard of it); nothing was changed. \
                 Use another {} for other inputs",
                opts.out.display(),
                name(Input::Out)
            )))
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("opening the grid store in {}", opts.out.display())))
        }
    };
    let meta = SurfaceMeta {
        surface: geometry.name().to_owned(),
        store: std::fs::canonicalize(&opts.store).unwrap_or_else(|_| opts.store.clone()),
        run_json: r.run_json.as_ref().map(|x| x.path.clone()),
        settings: r.settings,
        data: r.data.clone(),
        eval: r.eval.clone(),
        net: r.net.clone(),
        data_source: data.source.clone(),
        data_matches_run,
        snapshots,
        directions: geometry.directions(),
        direction_stats,
        device: format!("{device:?}"),
        device_info: Some(net::DeviceInfo::of(device)),
        threads,
        command: opts.command.clone(),
    };
    write_json(&opts.out.join(SURFACE_JSON), &meta)?;
    if let (Some(pca), Geometry::Pca { params, .. }) = (&fitted, geometry) {
        write_json(
            &opts.out.join(PCA_JSON),
            &pca_json(pca, params, &meta.snapshots),
        )?;
        let residuals = pca.reconstruction_error().to_vec();
        write_trajectory(&opts.out, &meta.snapshots, &residuals, None)?;
    }
    let missing = grid.missing();
    let shard_points = grid.range().len();
    let total_points = grid.header().spec.points()?.len();
    tracing::info!(
        surface = geometry.name(),
        shard = %opts.shard,
        points = shard_points,
        done = grid.done_count(),
        to_evaluate = missing.len(),
        out = %opts.out.display(),
        "evaluating surface points"
    );
    let evaluator = Evaluator::new(&data, r.eval.clone());
    let bar = progress(missing.len() as u64, geometry.name());
    for &i in &missing {
        let p = grid.point(i)?;
        let m = maths.evaluate(&evaluator, &mut model, i, &p)?;
        grid.record(i, &[m.train_loss, m.train_error, m.test_loss, m.test_error])?;
        tracing::debug!(
            index = i,
            x = p.x,
            y = p.y,
            train_loss = m.train_loss,
            "point done"
        );
        bar.inc(1);
    }
    bar.finish_and_clear();
    let done = grid.done_count();
    let mut report = SurfaceReport {
        out: opts.out.clone(),
        shard: opts.shard,
        evaluated: missing.len(),
        done,
        shard_points,
        total_points,
        files: Vec::new(),
        summary: None,
    };
    drop(grid);
    if opts.shard == Shard::all() {
        let (files, summary) = write_outputs(&opts.out)?;
        report.files = files;
        report.summary = Some(summary);
    } else {
        tracing::info!(
            shard = %opts.shard,
            "shard complete; join the shards with `landscape surface merge`"
        );
    }
    Ok(report)
}

/// Merges shard folders into `out` (see [`landscape_surface::merge`]),
/// copies the first shard's `surface.json`, and writes the figures and
/// summary of the whole grid.
pub fn merge(shards: &[PathBuf], out: &Path) -> Result<SurfaceReport> {
    let table = surface::merge(shards, out).context("merging the shard folders")?;
    for name in [SURFACE_JSON, PCA_JSON] {
        if let Some(meta) = shards.iter().map(|s| s.join(name)).find(|p| p.is_file()) {
            let bytes =
                std::fs::read(&meta).with_context(|| format!("reading {}", meta.display()))?;
            write_atomic(&out.join(name), &bytes)?;
        }
    }
    let total = table.rows().len();
    let (files, summary) = write_outputs(out)?;
    Ok(SurfaceReport {
        out: out.to_path_buf(),
        shard: Shard::all(),
        evaluated: 0,
        done: total,
        shard_points: total,
        total_points: total,
        files,
        summary: Some(summary),
    })
}

fn read_meta(dir: &Path) -> Result<Option<SurfaceMeta>> {
    let path = dir.join(SURFACE_JSON);
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(serde_json::from_str(&text).with_context(|| {
        format!("{} is not a surface description", path.display())
    })?))
}

/// `pca.json` of a trajectory PCA fitted with `params` on `snapshots`.
fn pca_json(pca: &Pca, params: &PcaParams, snapshots: &[SnapshotRef]) -> serde_json::Value {
    let points: Vec<serde_json::Value> = snapshots
        .iter()
        .zip(pca.coordinates())
        .zip(pca.reconstruction_error())
        .enumerate()
        .map(|(i, ((s, c), r))| {
            serde_json::json!({
                "index": i,
                "id": s.id,
                "run": s.run,
                "kind": s.kind,
                "epoch": s.epoch,
                "coordinates": c,
                "x": c[0],
                "y": c[1],
                "residual": r,
            })
        })
        .collect();
    serde_json::json!({
        "centre": params.centre,
        "include_1d": params.include_1d,
        "centre_meaning": match params.centre {
            surface::Centre::Final => "axes from the second moments about the final point; origin at the final point",
            surface::Centre::Mean => "ordinary PCA: axes and origin from the mean of the points",
            surface::Centre::MeanAxesFinalOrigin => "axes of ordinary (mean-centred) PCA, origin at the final point (Li et al.'s plot_trajectory.py)",
        },
        "components": pca.components().len(),
        "explained_share": pca.explained_share(),
        "spectrum_share": pca.spectrum_share(),
        "eigenvalues": pca.eigenvalues(),
        "origin_norm": pca.origin().norm(),
        "points": points,
    })
}

fn read_pca_json(dir: &Path) -> Result<Option<serde_json::Value>> {
    let path = dir.join(PCA_JSON);
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(serde_json::from_str(&text).with_context(|| {
        format!("{} is not valid JSON", path.display())
    })?))
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Writes `trajectory.csv`: per snapshot, its plane coordinates, distance
/// from the plane, stored train loss and (with the evaluated grid) the
/// contour's bilinearly interpolated train loss there, with their absolute
/// and relative differences. Returns the path and the summary of the
/// differences (`null` without a grid).
fn write_trajectory(
    dir: &Path,
    snapshots: &[SnapshotRef],
    residuals: &[f64],
    grid: Option<&Grid>,
) -> Result<(PathBuf, serde_json::Value)> {
    let mut csv = String::from(
        "index,id,run,kind,epoch,x,y,residual,true_train_loss,contour_train_loss,abs_difference,rel_difference\n",
    );
    let (mut abs, mut rel) = (Vec::new(), Vec::new());
    let opt = |v: Option<f64>| v.map_or_else(String::new, |v| v.to_string());
    for (i, s) in snapshots.iter().enumerate() {
        let truth = s.metrics.get("train_loss").copied();
        let contour = grid.and_then(|g| match g.bilinear(s.x, s.y) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(id = s.id, "no contour value at the projected point: {e}");
                None
            }
        });
        let (d, r) = match (truth, contour) {
            (Some(t), Some(c)) => {
                let d = (c - t).abs();
                let r = if t != 0.0 { d / t.abs() } else { f64::NAN };
                abs.push(d);
                rel.push(r);
                (Some(d), Some(r))
            }
            _ => (None, None),
        };
        csv.push_str(&format!(
            "{i},{},{},{},{},{},{},{},{},{},{},{}\n",
            s.id,
            s.run,
            s.kind,
            s.epoch.map_or_else(String::new, |e| e.to_string()),
            s.x,
            s.y,
            opt(residuals.get(i).copied()),
            opt(truth),
            opt(contour),
            opt(d),
            opt(r),
        ));
    }
    let path = dir.join(TRAJECTORY_CSV);
    write_atomic(&path, csv.as_bytes())?;
    let summary = if grid.is_some() {
        let compared = abs.len();
        let max = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
        serde_json::json!({
            "what": "stored train loss of each snapshot vs the contour's bilinearly interpolated train loss at its projection",
            "points": snapshots.len(),
            "compared": compared,
            "max_abs": max(&abs),
            "median_abs": median(&mut abs.clone()),
            "max_rel": max(&rel),
            "median_rel": median(&mut rel.clone()),
        })
    } else {
        serde_json::Value::Null
    };
    Ok((path, summary))
}

fn metrics_of(values: &[f64]) -> Metrics {
    Metrics {
        train_loss: values[0],
        train_error: values[1],
        test_loss: values[2],
        test_error: values[3],
    }
}

/// The largest relative difference between evaluated and stored metrics
/// (`None` if a stored one is missing).
fn max_relative_difference(evaluated: &Metrics, stored: &BTreeMap<String, f64>) -> Option<f64> {
    let e = evaluated.to_map();
    COLUMNS
        .iter()
        .map(|c| {
            let (a, b) = (e[*c], *stored.get(*c)?);
            let scale = a.abs().max(b.abs());
            Some(if scale == 0.0 {
                0.0
            } else {
                (a - b).abs() / scale
            })
        })
        .try_fold(0.0f64, |acc, d| d.map(|d| acc.max(d)))
}

/// Evaluated against stored metrics, for each snapshot lying on a grid point.
fn snapshot_checks(table: &GridTable, meta: Option<&SurfaceMeta>) -> Vec<serde_json::Value> {
    let Some(meta) = meta else {
        return Vec::new();
    };
    meta.snapshots
        .iter()
        .map(|s| {
            let row = table.rows().iter().find(|r| r.x == s.x && r.y == s.y);
            let evaluated = row.map(|r| metrics_of(&r.values));
            serde_json::json!({
                "role": s.role,
                "id": s.id,
                "run": s.run,
                "epoch": s.epoch,
                "x": s.x,
                "y": s.y,
                "on_grid": row.is_some(),
                "stored": s.metrics,
                "evaluated": evaluated,
                "max_relative_difference": evaluated.and_then(|e| max_relative_difference(&e, &s.metrics)),
            })
        })
        .collect()
}

fn label(s: &SnapshotRef) -> String {
    let epoch = s.epoch.map(|e| format!(" e{e}")).unwrap_or_default();
    format!("{} ({} {}{epoch})", s.role, s.id, s.run)
}

fn barrier_json(b: &Barrier) -> serde_json::Value {
    serde_json::to_value(b).unwrap_or(serde_json::Value::Null)
}

/// Writes the figures, tables and `summary.json` of a complete grid in
/// `dir`; returns the files and the summary.
pub fn write_outputs(dir: &Path) -> Result<(Vec<PathBuf>, serde_json::Value)> {
    let table = surface::read_grid(dir)
        .with_context(|| format!("reading the grid in {}", dir.display()))?;
    if !table.is_complete()? {
        bail!(
            "{} holds {} of the grid's {} points: run the missing shards (or merge them) first",
            dir.display(),
            table.rows().len(),
            table.header().spec.points()?.len()
        );
    }
    let meta = read_meta(dir)?;
    let header = table.header().clone();
    let col = |c: &str| table.column(c);
    let mut summary = serde_json::json!({
        "surface": meta.as_ref().map(|m| m.surface.clone()),
        "fingerprint": header.fingerprint,
        "key": header.key,
        "spec": header.spec,
        "settings": meta.as_ref().map(|m| m.settings.clone()),
        "data_matches_run": meta.as_ref().and_then(|m| m.data_matches_run),
        "directions": header.key.directions,
        "direction_stats": meta.as_ref().map(|m| m.direction_stats.clone()),
        "snapshots": snapshot_checks(&table, meta.as_ref()),
    });
    let mut files = Vec::new();
    let title = meta
        .as_ref()
        .map(
            |m| match (m.surface.as_str(), m.snapshots.first(), m.snapshots.last()) {
                ("plane-pca", Some(a), Some(b)) => format!(
                    "PCA view of {} snapshots: {} to {} (projected trajectory in red)",
                    m.snapshots.len(),
                    label(a).trim_start_matches("trajectory "),
                    label(b).trim_start_matches("trajectory ")
                ),
                _ => {
                    let snaps: Vec<String> = m.snapshots.iter().map(label).collect();
                    format!("{}: {}", m.surface, snaps.join(", "))
                }
            },
        )
        .unwrap_or_else(|| "surface".to_owned());
    match header.spec {
        GridSpec::Line(spec) => {
            let ts =
                col("train_loss").map(|_| table.rows().iter().map(|r| r.x).collect::<Vec<_>>())?;
            let curve = |name: &str, c: &str, color: usize| -> Result<Curve> {
                Ok(Curve {
                    name: name.to_owned(),
                    color: plot::palette(color),
                    points: ts.iter().copied().zip(col(c)?).collect(),
                })
            };
            let panels = [
                LinePanel {
                    title: "loss".into(),
                    x_label: "t".into(),
                    y_label: "cross-entropy".into(),
                    curves: vec![
                        curve("train", "train_loss", 1)?,
                        curve("test", "test_loss", 2)?,
                    ],
                },
                LinePanel {
                    title: "error".into(),
                    x_label: "t".into(),
                    y_label: "error (%)".into(),
                    curves: vec![
                        curve("train", "train_error", 1)?,
                        curve("test", "test_error", 2)?,
                    ],
                },
            ];
            let marks: Vec<VerticalMark> = meta
                .as_ref()
                .map(|m| {
                    m.snapshots
                        .iter()
                        .map(|s| VerticalMark {
                            x: s.x,
                            label: label(s),
                        })
                        .collect()
                })
                .unwrap_or_default();
            files.extend(plot::line_panels_marked(
                &dir.join("line"),
                &title,
                &panels,
                &marks,
                2,
                (1200, 480),
            )?);
            let mut barriers = serde_json::Map::new();
            let is_between = meta.as_ref().is_none_or(|m| m.surface == "line-between");
            if is_between && ts.contains(&0.0) && ts.contains(&1.0) {
                for c in COLUMNS {
                    let b = Barrier::of(&ts, &col(c)?)
                        .with_context(|| format!("the barrier of {c}"))?;
                    barriers.insert(c.to_owned(), barrier_json(&b));
                }
            }
            summary["t"] =
                serde_json::json!({"min": spec.t_min, "max": spec.t_max, "points": spec.points});
            summary["barrier"] = if barriers.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::Value::Object(barriers)
            };
        }
        GridSpec::Plane(spec) => {
            let mut csv = String::from("x,y");
            for c in COLUMNS {
                csv.push(',');
                csv.push_str(c);
            }
            csv.push('\n');
            for r in table.rows() {
                csv.push_str(&format!("{},{}", r.x, r.y));
                for v in &r.values {
                    csv.push_str(&format!(",{v}"));
                }
                csv.push('\n');
            }
            let csv_path = dir.join("grid.csv");
            write_atomic(&csv_path, csv.as_bytes())?;
            files.push(csv_path);
            let (xs, ys) = (spec.x.values(), spec.y.values());
            let rows =
                |v: &[f64]| -> Vec<Vec<f64>> { v.chunks(xs.len()).map(<[f64]>::to_vec).collect() };
            let loss = col("train_loss")?;
            let error = col("train_error")?;
            let is_pca = meta.as_ref().is_some_and(|m| m.surface == "plane-pca");
            let marks: Vec<LabeledPoint> = meta
                .as_ref()
                .map(|m| {
                    m.snapshots
                        .iter()
                        .map(|s| LabeledPoint {
                            x: s.x,
                            y: s.y,
                            label: match s.role.as_str() {
                                "centre" => "+".to_owned(),
                                "trajectory" => s
                                    .epoch
                                    .map_or_else(|| format!("#{}", s.id), |e| format!("e{e}")),
                                r => r.to_uppercase(),
                            },
                            tooltip: Some(label(s)),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let all_positive = loss.iter().all(|v| v.is_finite() && *v > 0.0);
            let spacing = if all_positive {
                Spacing::Log
            } else {
                Spacing::Linear
            };
            let (level_values, lines) = match levels(&loss, 12, spacing) {
                Ok(lv) => {
                    let grid = table.to_grid("train_loss")?;
                    let iso = grid.isolines(&lv)?;
                    (lv, iso.into_iter().flat_map(|i| i.lines).collect())
                }
                Err(e) => {
                    tracing::warn!("no contour lines: {e}");
                    (Vec::new(), Vec::new())
                }
            };
            let share = |k: usize| {
                meta.as_ref()
                    .and_then(|m| m.direction_stats.get(&format!("explained_share_{k}")))
                    .map_or_else(String::new, |s| {
                        format!(", {:.1}% of the variance", 100.0 * s)
                    })
            };
            let pca_labels = (
                format!("x (principal component 1{})", share(1)),
                format!("y (principal component 2{})", share(2)),
            );
            let (x_label, y_label) = match meta.as_ref().map(|m| m.surface.as_str()) {
                Some("plane-through") => ("x (units of |b - a|)", "y (units of |b - a|)"),
                Some("plane-pca") => (pca_labels.0.as_str(), pca_labels.1.as_str()),
                _ => ("x (direction 1)", "y (direction 2)"),
            };
            let trail: Vec<(f64, f64)> = match (&meta, is_pca) {
                (Some(m), true) => m.snapshots.iter().map(|s| (s.x, s.y)).collect(),
                _ => Vec::new(),
            };
            let maps = [
                HeatMap {
                    title: "train loss".into(),
                    x_label: x_label.into(),
                    y_label: y_label.into(),
                    xs: xs.clone(),
                    ys: ys.clone(),
                    values: rows(&loss),
                    log: all_positive,
                    marks: marks.clone(),
                    x_ticks: Vec::new(),
                    y_ticks: Vec::new(),
                    colour_label: "train loss".into(),
                },
                HeatMap {
                    title: "train error (%)".into(),
                    x_label: x_label.into(),
                    y_label: y_label.into(),
                    xs: xs.clone(),
                    ys: ys.clone(),
                    values: rows(&error),
                    log: false,
                    marks,
                    x_ticks: Vec::new(),
                    y_ticks: Vec::new(),
                    colour_label: "train error (%)".into(),
                },
            ];
            files.extend(plot::heat_maps_with_contours(
                &dir.join("plane"),
                &title,
                &maps,
                &[
                    ContourLines {
                        lines,
                        trail: trail.clone(),
                    },
                    ContourLines {
                        lines: Vec::new(),
                        trail,
                    },
                ],
                2,
                (1300, 620),
            )?);
            let argmin = |v: &[f64]| -> serde_json::Value {
                let best = v
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| x.is_finite())
                    .min_by(|a, b| a.1.total_cmp(b.1));
                match best {
                    Some((i, &val)) => {
                        let r = &table.rows()[i];
                        serde_json::json!({"value": val, "x": r.x, "y": r.y})
                    }
                    None => serde_json::Value::Null,
                }
            };
            summary["minimum"] = serde_json::json!({
                "train_loss": argmin(&loss),
                "train_error": argmin(&error),
                "test_loss": argmin(&col("test_loss")?),
                "test_error": argmin(&col("test_error")?),
            });
            summary["contour_levels"] = serde_json::json!(level_values);
            summary["contour_spacing"] = serde_json::json!(spacing);
            if let (Some(m), true) = (&meta, is_pca) {
                let pca = read_pca_json(dir)?;
                let residuals: Vec<f64> = pca
                    .as_ref()
                    .and_then(|p| p.get("points"))
                    .and_then(|p| p.as_array())
                    .map(|ps| {
                        ps.iter()
                            .map(|p| p["residual"].as_f64().unwrap_or(f64::NAN))
                            .collect()
                    })
                    .unwrap_or_default();
                let grid = table.to_grid("train_loss")?;
                let (path, error) = write_trajectory(dir, &m.snapshots, &residuals, Some(&grid))?;
                files.push(path);
                summary["projection_error"] = error;
                summary["pca"] = serde_json::json!({
                    "centre": pca.as_ref().map(|p| p["centre"].clone()),
                    "explained_share": pca.as_ref().map(|p| p["explained_share"].clone()),
                    "max_residual": residuals.iter().copied().fold(0.0f64, f64::max),
                });
            }
        }
    }
    let summary_path = dir.join("summary.json");
    write_json(&summary_path, &summary)?;
    files.push(summary_path);
    Ok((files, summary))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn relative_differences() {
        let m = Metrics {
            train_loss: 1.0,
            train_error: 0.0,
            test_loss: 2.0,
            test_error: 50.0,
        };
        let mut s = m.to_map();
        assert_eq!(max_relative_difference(&m, &s), Some(0.0));
        s.insert("test_loss".into(), 1.0);
        assert_eq!(max_relative_difference(&m, &s), Some(0.5));
        s.remove("test_error");
        assert_eq!(max_relative_difference(&m, &s), None);
    }

    /// The segment between two models (`Evaluator::between` with
    /// `Lerp::F64`) holds exactly the weights `Weights::lerp` gives, which
    /// is what surface lines were evaluated at before they went through it.
    #[test]
    fn the_f64_segment_is_weights_lerp_bit_for_bit() {
        let cfg = NetConfig {
            widths: vec![3, 2, 2, 2],
            ..NetConfig::paper()
        };
        let device = net::tch::Device::Cpu;
        let a = Dcnn::new(&cfg, device, 1).unwrap();
        let b = Dcnn::new(&cfg, device, 2).unwrap();
        let weights = |m: &Dcnn| {
            let tensors = m
                .export()
                .unwrap()
                .into_iter()
                .map(|t| landscape_trajectory::Tensor {
                    name: t.name,
                    shape: t.shape,
                    data: t.data,
                })
                .collect();
            Weights::new(tensors).unwrap()
        };
        let (wa, wb) = (weights(&a), weights(&b));
        for t in [0.0, 0.1, 1.0 / 3.0, 0.5, 0.9, 1.0, -0.25, 1.5] {
            let m = net::interpolate_in(&a, &b, t, net::Lerp::F64).unwrap();
            let got: Vec<Vec<u32>> = m
                .export()
                .unwrap()
                .iter()
                .map(|t| t.data.iter().map(|v| v.to_bits()).collect())
                .collect();
            let want: Vec<Vec<u32>> = to_named(Weights::lerp(&wa, &wb, t).unwrap())
                .iter()
                .map(|t| t.data.iter().map(|v| v.to_bits()).collect())
                .collect();
            assert_eq!(got, want, "t = {t}");
        }
    }
}
