//! `landscape surface`: the loss along lines and planes through stored
//! snapshots (resumable, shardable), and merging shards.
use std::path::PathBuf;

use anyhow::{bail, Result};
use landscape_engine::eval::BnPolicy;
use landscape_probe::slices::{self, Geometry, SurfaceOptions, SurfaceReport};
use landscape_probe::snapshot::{Overrides, SubsetSize};
use landscape_surface::{Axis, DirectionParams, LineSpec, Normalisation, PlaneSpec, Shard};
use landscape_trajectory::SnapshotId;

const EXAMPLES: &str = "\
Examples:
  landscape store ls runs/fig14-quick/store            # find the snapshot ids
  landscape surface line --store runs/fig14-quick/store --from 0 --to 6 --out runs/line-0-6
  landscape surface line --store runs/fig14-quick/store --at 6 --direction-seed 1 --out runs/dir-6
  landscape surface plane --store runs/fig14-quick/store --at 6 --points 21 --out runs/plane-6
  landscape surface plane --store runs/fig14-quick/store --through 0,3,6 --out runs/plane-0-3-6
  # 3 machines (or processes), then one merge:
  landscape surface plane --store S --at 6 --shard 1/3 --out runs/p/1   # and 2/3, 3/3
  landscape surface merge --out runs/plane-6 runs/p/1 runs/p/2 runs/p/3
  # barriers (linear mode connectivity) between every pair of 3 snapshots:
  landscape surface barrier --store runs/fig5-quick/store --ids 120,146,172 --out runs/barriers

The data, network and evaluation (BN policy, chunk size) come from run.json
beside the store, so the points at the snapshots reproduce their stored
metrics; --bn, --train-size, --test-size and --chunk-size override them
(without run.json, --train-size and --test-size are required and the network
is inferred from the tensor shapes). surface.json and summary.json say which
setting came from where. Every finished point is appended to points.csv at
once: a killed run resumes with the same command. A folder made with other
inputs (snapshots, directions, grid, BN policy, data) is refused unchanged.
Outputs: line.{png,svg} or plane.{png,svg} (+ grid.csv), summary.json
(barriers of loss and error between two snapshots; evaluated vs stored
metrics at the snapshots).";

/// Loss along lines and planes through stored snapshots.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct SurfaceArgs {
    #[command(subcommand)]
    command: SurfaceCommand,
}

#[derive(clap::Subcommand)]
enum SurfaceCommand {
    /// The loss along a line: between two snapshots (--from, --to), or along a
    /// random filter-normalised direction around one (--at).
    #[command(after_help = EXAMPLES)]
    Line(LineArgs),
    /// The loss on a plane: a random one around a snapshot (--at), or the one
    /// through three snapshots (--through A,B,C).
    #[command(after_help = EXAMPLES)]
    Plane(PlaneArgs),
    /// Barriers between snapshots: the line t in [0, 1] between every pair of
    /// --ids (or each --pairs A:B), one surface folder per pair under --out,
    /// and the table of barriers (barriers.csv).
    #[command(after_help = EXAMPLES)]
    Barrier(BarrierArgs),
    /// Join shard folders (--shard K/N runs) into one, then draw it.
    #[command(after_help = EXAMPLES)]
    Merge(MergeArgs),
}

fn parse_bn(s: &str) -> Result<BnPolicy, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("`{s}`: expected reestimate, running or batch"))
}

fn parse_normalisation(s: &str) -> Result<Normalisation, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("`{s}`: expected filter, layer, weight or none"))
}

/// What every evaluating subcommand shares.
#[derive(clap::Args, Clone)]
pub(crate) struct Common {
    /// The trajectory store (run.json is read from the folder above it).
    #[arg(long)]
    store: PathBuf,
    /// Output folder: the grid store (grid.json, points.csv), figures and summary.
    #[arg(long)]
    out: PathBuf,
    /// Evaluate only block K of N of the points (into its own --out); join with `surface merge`.
    #[arg(long, value_name = "K/N", default_value = "1/1")]
    shard: Shard,
    /// BN policy: reestimate (exact statistics over the training set), running or
    /// batch (default: run.json's, else reestimate).
    #[arg(long, value_parser = parse_bn)]
    bn: Option<BnPolicy>,
    /// Training images to evaluate on: a number or `all` (default: run.json's).
    #[arg(long, value_name = "N|all")]
    train_size: Option<SubsetSize>,
    /// Test images to evaluate on: a number or `all` (default: run.json's).
    #[arg(long, value_name = "N|all")]
    test_size: Option<SubsetSize>,
    /// Images per forward pass (default: run.json's, else 1000).
    #[arg(long)]
    chunk_size: Option<usize>,
    #[command(flatten)]
    compute: super::Compute,
}

/// Random-direction settings.
#[derive(clap::Args)]
struct DirectionArgs {
    /// How random directions are rescaled: filter (Li et al.'s default), layer, weight or none.
    #[arg(long, default_value = "filter", value_parser = parse_normalisation)]
    normalisation: Normalisation,
    /// Move 1-D parameters (biases) too, by their own values (Li et al. without --xignore biasbn).
    #[arg(long)]
    include_1d: bool,
}

#[derive(clap::Args)]
struct LineArgs {
    /// The snapshot at t = 0 (an id as `landscape store ls` prints it).
    #[arg(long, requires = "to", conflicts_with = "at")]
    from: Option<SnapshotId>,
    /// The snapshot at t = 1.
    #[arg(long, requires = "from")]
    to: Option<SnapshotId>,
    /// The snapshot at t = 0 of a line along a random direction.
    #[arg(long, required_unless_present = "from")]
    at: Option<SnapshotId>,
    /// The random direction's seed (with --at).
    #[arg(long, alias = "seed", default_value_t = 0)]
    direction_seed: u64,
    #[command(flatten)]
    direction: DirectionArgs,
    /// Smallest t (default: -0.5 between snapshots, -1 along a direction).
    #[arg(long, allow_negative_numbers = true)]
    t_min: Option<f64>,
    /// Largest t (default: 1.5 between snapshots, 1 along a direction).
    #[arg(long, allow_negative_numbers = true)]
    t_max: Option<f64>,
    /// Number of points, both ends included; t = 0 and t = 1 must fall on the grid.
    #[arg(long, default_value_t = 41)]
    points: usize,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args)]
struct PlaneArgs {
    /// The centre of a random plane (an id as `landscape store ls` prints it).
    #[arg(long, required_unless_present = "through", conflicts_with = "through")]
    at: Option<SnapshotId>,
    /// Three snapshots A,B,C: the plane through them (A at (0, 0), B at (1, 0)).
    #[arg(long, value_delimiter = ',', value_name = "A,B,C")]
    through: Option<Vec<SnapshotId>>,
    /// The random directions' seed (with --at).
    #[arg(long, alias = "direction-seed", default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    direction: DirectionArgs,
    /// Points per axis (odd, so that the centre is a grid point).
    #[arg(long, default_value_t = 51)]
    points: usize,
    /// Half-width of both axes around the centre (with --at): [-R, R]^2.
    #[arg(
        long,
        value_name = "R",
        default_value_t = 1.0,
        conflicts_with = "through"
    )]
    range: f64,
    /// Margin around the three snapshots, as a share of each axis' span (with --through).
    #[arg(long, default_value_t = 0.25)]
    margin: f64,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args)]
struct BarrierArgs {
    /// Snapshots: every pair of them (ids as `landscape store ls` prints them).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "A,B,...",
        required_unless_present = "pairs"
    )]
    ids: Option<Vec<SnapshotId>>,
    /// Explicit pairs A:B (t = 0 at A), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "A:B,...", conflicts_with = "ids", value_parser = parse_pair)]
    pairs: Option<Vec<(SnapshotId, SnapshotId)>>,
    /// Points on each line, t = 0..1 (both ends included).
    #[arg(long, default_value_t = 11)]
    points: usize,
    #[command(flatten)]
    common: Common,
}

fn parse_pair(s: &str) -> Result<(SnapshotId, SnapshotId), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}`: expected A:B (two snapshot ids)"))?;
    let id = |x: &str| {
        x.trim()
            .parse::<SnapshotId>()
            .map_err(|e| format!("`{s}`: `{x}` is not a snapshot id ({e})"))
    };
    Ok((id(a)?, id(b)?))
}

#[derive(clap::Args)]
pub(crate) struct MergeArgs {
    /// The folder to write (must not hold a grid yet).
    #[arg(long)]
    out: PathBuf,
    /// The shard folders (`--out` of each `--shard K/N` run).
    #[arg(required = true, value_name = "SHARD_DIR")]
    shards: Vec<PathBuf>,
}

/// Joins shard folders into `a.out` and prints the report (`landscape surface
/// merge` and `landscape store merge`).
pub(crate) fn merge(a: MergeArgs) -> Result<()> {
    print_report(&slices::merge(&a.shards, &a.out)?);
    Ok(())
}

/// Runs `landscape surface`.
pub fn run(args: SurfaceArgs) -> Result<()> {
    let report = match args.command {
        SurfaceCommand::Line(a) => line(a)?,
        SurfaceCommand::Plane(a) => plane(a)?,
        SurfaceCommand::Merge(a) => return merge(a),
        SurfaceCommand::Barrier(a) => return barrier(a),
    };
    print_report(&report);
    Ok(())
}

pub(crate) fn options(c: Common) -> SurfaceOptions {
    SurfaceOptions {
        store: c.store,
        out: c.out,
        shard: c.shard,
        device: c.compute.device,
        data_dir: c.compute.data,
        threads: c.compute.threads,
        overrides: Overrides {
            bn: c.bn,
            train_size: c.train_size,
            test_size: c.test_size,
            chunk_size: c.chunk_size,
            names: Some(super::flag),
            train_only: false,
            sample_seed: None,
        },
        command: std::env::args().collect(),
    }
}

fn params(seed: u64, d: &DirectionArgs) -> DirectionParams {
    DirectionParams::new(seed)
        .normalisation(d.normalisation)
        .include_1d(d.include_1d)
}

fn line(a: LineArgs) -> Result<SurfaceReport> {
    let geometry = match (a.from, a.to, a.at) {
        (Some(from), Some(to), None) => {
            let d = LineSpec::between();
            Geometry::Between {
                from,
                to,
                spec: LineSpec {
                    t_min: a.t_min.unwrap_or(d.t_min),
                    t_max: a.t_max.unwrap_or(d.t_max),
                    points: a.points,
                },
            }
        }
        (None, None, Some(at)) => {
            let d = LineSpec::around();
            Geometry::Direction {
                at,
                params: params(a.direction_seed, &a.direction),
                spec: LineSpec {
                    t_min: a.t_min.unwrap_or(d.t_min),
                    t_max: a.t_max.unwrap_or(d.t_max),
                    points: a.points,
                },
            }
        }
        _ => bail!("give either --from and --to, or --at"),
    };
    if let Geometry::Between { spec, .. } | Geometry::Direction { spec, .. } = &geometry {
        spec.ts()
            .map_err(|e| anyhow::anyhow!("--t-min/--t-max/--points: {e}"))?;
    }
    slices::run(&geometry, &options(a.common))
}

/// One line per pair (each its own resumable surface folder), then the table.
#[allow(clippy::print_stdout)]
fn barrier(a: BarrierArgs) -> Result<()> {
    if a.common.shard != Shard::all() {
        bail!("--shard: `surface barrier` runs whole lines; shard with --pairs across machines instead");
    }
    let pairs: Vec<(SnapshotId, SnapshotId)> = match (&a.ids, &a.pairs) {
        (Some(ids), None) => {
            if ids.len() < 2 {
                bail!(
                    "--ids: expected at least two snapshot ids, found {}",
                    ids.len()
                );
            }
            (0..ids.len())
                .flat_map(|i| (i + 1..ids.len()).map(move |j| (i, j)))
                .map(|(i, j)| (ids[i], ids[j]))
                .collect()
        }
        (None, Some(p)) if !p.is_empty() => p.clone(),
        _ => bail!("give --ids A,B,... or --pairs A:B,..."),
    };
    let spec = LineSpec {
        t_min: 0.0,
        t_max: 1.0,
        points: a.points,
    };
    spec.ts().map_err(|e| anyhow::anyhow!("--points: {e}"))?;
    let root = a.common.out.clone();
    let mut csv = String::from("a,b,metric,barrier,t,lowest,value_a,value_b,folder\n");
    println!(
        "{:>6} {:>6}  {:<12} {:>12} {:>6} {:>12}",
        "a", "b", "metric", "barrier", "at t", "lowest"
    );
    for (from, to) in pairs {
        let mut opts = options(Common {
            out: root.join(format!("pair-{from}-{to}")),
            ..a.common.clone()
        });
        opts.command = std::env::args().collect();
        let geometry = Geometry::Between { from, to, spec };
        let r = slices::run(&geometry, &opts)?;
        let barriers = r
            .summary
            .as_ref()
            .and_then(|s| s.get("barrier"))
            .and_then(|b| b.as_object())
            .cloned()
            .unwrap_or_default();
        for (metric, b) in &barriers {
            let f = |k: &str| b[k].as_f64().unwrap_or(f64::NAN);
            csv += &format!(
                "{from},{to},{metric},{},{},{},{},{},{}\n",
                f("height"),
                f("t"),
                f("lowest"),
                f("v0"),
                f("v1"),
                r.out.display()
            );
            println!(
                "{from:>6} {to:>6}  {metric:<12} {:>12.5} {:>6} {:>12.5}",
                f("height"),
                f("t"),
                f("lowest")
            );
        }
    }
    let path = root.join("barriers.csv");
    landscape_engine::provenance::write_atomic(&path, csv.as_bytes())?;
    println!("wrote {}", path.display());
    Ok(())
}

fn plane(a: PlaneArgs) -> Result<SurfaceReport> {
    let geometry = match (a.at, &a.through) {
        (Some(at), None) => {
            let axis = Axis::new(-a.range, a.range, a.points);
            let spec = PlaneSpec::new(axis, axis);
            spec.validate()
                .map_err(|e| anyhow::anyhow!("--range/--points: {e}"))?;
            Geometry::RandomPlane {
                at,
                params: params(a.seed, &a.direction),
                spec,
            }
        }
        (None, Some(ids)) => {
            let [x, y, z] = ids.as_slice() else {
                bail!(
                    "--through: expected three snapshot ids A,B,C, found {}",
                    ids.len()
                );
            };
            if a.points < 2 {
                bail!("--points: expected at least 2, found {}", a.points);
            }
            if !(a.margin.is_finite() && a.margin >= 0.0) {
                bail!("--margin: expected a number >= 0, found {}", a.margin);
            }
            Geometry::Through {
                snapshots: [*x, *y, *z],
                margin: a.margin,
                points: a.points,
            }
        }
        _ => bail!("give either --at or --through A,B,C"),
    };
    slices::run(&geometry, &options(a.common))
}

#[allow(clippy::print_stdout)]
pub(crate) fn print_report(r: &SurfaceReport) {
    println!(
        "{}: shard {}: {} of {} points done ({} evaluated now); the grid has {} points",
        r.out.display(),
        r.shard,
        r.done,
        r.shard_points,
        r.evaluated,
        r.total_points
    );
    if let Some(s) = &r.summary {
        if let Some(b) = s.get("barrier").and_then(|b| b.as_object()) {
            for (name, v) in b {
                println!(
                    "  barrier of {name:<12} {:>10.4} at t = {}",
                    v["height"].as_f64().unwrap_or(f64::NAN),
                    v["t"]
                );
            }
        }
        if let Some(snaps) = s.get("snapshots").and_then(|x| x.as_array()) {
            for x in snaps {
                if let Some(d) = x["max_relative_difference"].as_f64() {
                    println!(
                        "  snapshot {} ({}): evaluated vs stored metrics, largest relative difference {d:.2e}",
                        x["id"], x["role"].as_str().unwrap_or("")
                    );
                }
            }
        }
        if let Some(m) = s.get("minimum").and_then(|m| m.get("train_loss")) {
            println!(
                "  lowest train loss {} at ({}, {})",
                m["value"], m["x"], m["y"]
            );
        }
    }
    if !r.files.is_empty() {
        let files: Vec<String> = r.files.iter().map(|f| f.display().to_string()).collect();
        println!("wrote: {}", files.join(", "));
    }
}
