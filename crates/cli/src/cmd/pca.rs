//! `landscape pca`: Li et al.'s PCA view of a trajectory — the loss on the
//! plane of its first two principal components (resumable, shardable, as
//! `landscape surface plane`), with the projected trajectory drawn on top and
//! the projection error (stored vs contour train loss at each point).
use anyhow::{anyhow, bail, Context, Result};
use landscape_probe::slices::{self, Geometry, SurfaceReport};
use landscape_surface::{Centre, PcaParams};
use landscape_trajectory::{Filter, Store};

use super::surface::{options, print_report, Common};

const EXAMPLES: &str = "\
Examples:
  landscape store ls runs/fig14-quick/store --filter run=main   # the trajectory
  landscape pca --store runs/fig14-quick/store --filter run=main --out runs/pca-main
  landscape pca --store S --filter run=main,epoch=0..50 --centre mean --points 31 --out runs/pca
  # 2 processes, then one merge:
  landscape pca --store S --filter run=main --shard 1/2 --out runs/pca/1   # and 2/2
  landscape surface merge --out runs/pca-main runs/pca/1 runs/pca/2

The snapshots the filter selects (store order; the last is the final point)
are fitted by PCA over their model tensors (BN buffers excluded). Centres:
final (default: second moments about the final weights, origin there), mean
(ordinary PCA) and mean-axes-final-origin (Li et al.'s plot_trajectory.py).
Outputs: pca.json (explained shares, coordinates, residuals, centre),
trajectory.csv (per point: coordinates, residual, stored train loss, the
contour's interpolated train loss there, their differences), points.csv and
grid.json (the resumable grid), plane.{png,svg}, grid.csv and summary.json
(with `projection_error`: max and median absolute and relative differences).";

fn parse_centre(s: &str) -> Result<Centre, String> {
    serde_json::from_value(serde_json::Value::String(s.replace('-', "_")))
        .map_err(|_| format!("`{s}`: expected final, mean or mean-axes-final-origin"))
}

/// Li et al.'s PCA view of a trajectory.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct PcaArgs {
    /// The trajectory's snapshots, as in `landscape store ls --filter` (e.g. run=main
    /// or run=main,epoch=0..50); at least 3.
    #[arg(long, value_name = "FILTER")]
    filter: String,
    /// The centre: final, mean or mean-axes-final-origin.
    #[arg(long, default_value = "final", value_parser = parse_centre)]
    centre: Centre,
    /// Leave 1-D parameters (biases, BN affine) out of the PCA (Li et al.'s
    /// --ignore biasbn); BN buffers are always left out.
    #[arg(long)]
    ignore_1d: bool,
    /// Points per axis of the grid.
    #[arg(long, default_value_t = 21)]
    points: usize,
    /// Margin around the projected trajectory, as a share of each axis' span.
    #[arg(long, default_value_t = 0.25)]
    margin: f64,
    #[command(flatten)]
    common: Common,
}

/// Runs `landscape pca`.
pub fn run(args: PcaArgs) -> Result<()> {
    if args.points < 2 {
        bail!("--points: expected at least 2, found {}", args.points);
    }
    if !(args.margin.is_finite() && args.margin >= 0.0) {
        bail!("--margin: expected a number >= 0, found {}", args.margin);
    }
    let opts = options(args.common);
    let filter: Filter = args
        .filter
        .parse()
        .map_err(|e| anyhow!("--filter `{}`: {e}", args.filter))?;
    let store = Store::open(&opts.store)
        .with_context(|| format!("opening the store {} (--store)", opts.store.display()))?;
    let snapshots: Vec<_> = store.find(&filter).iter().map(|s| s.id()).collect();
    if snapshots.len() < 3 {
        bail!(
            "--filter `{}` selects {} snapshot(s) of {}: a 2-component PCA needs at least 3 \
             (see `landscape store ls {} --filter ...`)",
            args.filter,
            snapshots.len(),
            opts.store.display(),
            opts.store.display()
        );
    }
    drop(store);
    let geometry = Geometry::Pca {
        snapshots,
        params: PcaParams::new(2)
            .centre(args.centre)
            .include_1d(!args.ignore_1d),
        margin: args.margin,
        points: args.points,
    };
    let report = slices::run(&geometry, &opts)?;
    print_report(&report);
    print_pca(&report);
    Ok(())
}

#[allow(clippy::print_stdout)]
fn print_pca(r: &SurfaceReport) {
    let Some(s) = &r.summary else {
        return;
    };
    if let Some(share) = s["pca"]["explained_share"].as_array() {
        let share: Vec<String> = share
            .iter()
            .map(|v| format!("{:.2}%", 100.0 * v.as_f64().unwrap_or(f64::NAN)))
            .collect();
        println!(
            "  PCA (centre {}): explained variance {}; largest distance from the plane {:.3e}",
            s["pca"]["centre"].as_str().unwrap_or("?"),
            share.join(", "),
            s["pca"]["max_residual"].as_f64().unwrap_or(f64::NAN)
        );
    }
    let e = &s["projection_error"];
    if e.is_object() {
        let f = |k: &str| e[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "  projection error (stored vs contour train loss over {} points): \
             max |d| {:.4e}, median |d| {:.4e}, max rel {:.3e}, median rel {:.3e}",
            e["compared"],
            f("max_abs"),
            f("median_abs"),
            f("max_rel"),
            f("median_rel")
        );
    }
}
