//! `landscape hessian`: curvature of the training loss at a stored snapshot
//! (top eigenvalues, the most negative one, trace, spectral density), each
//! repeated over seeds so that the spread is printed beside the estimate;
//! with --filter or --ids, the top eigenvalue and trace along a trajectory
//! (resumable, one row per snapshot: `landscape_probe::curvature`).
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use landscape_engine::plot;
use landscape_engine::provenance::{write_atomic, write_json};
use landscape_net::{HessianBn, HessianPrecision};
use landscape_probe::curvature::{self, CurvatureOptions, CurvatureReport};
use landscape_probe::hessian::{self, SpectrumConfig, SpectrumReport};
use landscape_probe::snapshot::{self, Overrides, SubsetSize};
use landscape_trajectory::{Filter, SnapshotId, Store};

const EXAMPLES: &str = "\
Examples:
  landscape store ls runs/fig5-quick/store                 # find the snapshot ids
  landscape hessian --store runs/fig5-quick/store --id 80 --out runs/hessian-final
  landscape hessian --store S --id 80 --sample 200 --seeds 0,1,2,3,4 --out runs/h200
  landscape hessian --store S --id 80 --sample 100 --sample-seed 3 --out runs/h100-s3
  landscape hessian --store S --id 80 --bn batch --chunk-size 100 --out runs/h-batch
  landscape hessian --store S --id 80 --jacobian-images 20 --out runs/h-rank
  landscape hessian --store S --id 80 --layers 2,3,4,5,6 --out runs/h-layers
  landscape hessian --store S --id 80 --zero-rtol 1e-2 --count-probes 10 --out runs/h-count
  # along a trajectory: every 5th snapshot of run main (and the last), resumable
  landscape hessian --store runs/fig14-quick/store --filter run=main --every 5 \
      --top-k 1 --probes 10 --slq-runs 0 --no-smallest --seeds 0,1 --out runs/curv-main
  landscape hessian --store runs/fig5-quick/store --ids 80,439,465,491,517 --out runs/curv-final

The loss is the mean cross-entropy over the run's training subset (run.json
beside the store), or a stratified subset of --sample images (nested: the
first 100 are among the first 500). --sample-seed S draws another stratified
subset for each S, from the run's training subset when --sample fits in it,
else from the whole CIFAR-10 training split (images the model may not have
been trained on): independent samples, to see how much an estimate depends
on which images it averages over. --bn fixed
(default) differentiates with the snapshot's BN running statistics (eval
mode; the stored statistics were re-estimated on the training set when the
snapshot was recorded); --bn batch with each chunk's own batch statistics
(ghost batches of --chunk-size), which is another function of the weights
and has another Hessian. Outputs in --out: hessian.json (every estimate per
seed, mean and spread over seeds, settings), eigenvalues.csv, density.csv
and density.{png,svg} (SLQ spectral density on a log axis, one curve per
seed).

The degeneracy count (eigenvalues with |lambda| <= --zero-rtol x top) is
the kernel polynomial method: a Jackson-damped Chebyshev expansion of the
window's indicator, traced with --count-probes Rademacher probes, in float64
products by default (--count-precision). Its degree follows from the
window's width relative to the spectrum's (about 6 pi / width in the angle
variable; degree p costs p / 2 products per probe, capped by
--count-max-degree, beyond which the count is printed as not resolved). It
prints the estimate with its 95% interval (probe standard error and a bound
on the smoothing bias near the threshold). The SLQ density is kept for the
picture only: its few Gauss nodes cannot count a cluster at zero.

Trajectory mode (--filter [--every K] or --ids): the same estimates at each
selected snapshot, loaded one after the other with the same data, network
and seeds as --id gives (so the same numbers). Every finished snapshot is
appended to rows.jsonl at once, keyed by its id and content CRC; a killed
run continues with the snapshots not yet done, and a folder made with other
settings (estimators, seeds, data, network, device kind) is refused
unchanged. curvature.json holds the key; curvature.csv (id, run, kind,
epoch, plot epoch, stored train loss/error, top eigenvalue and trace mean
and std over seeds, smallest eigenvalue, gradient norm) and
curvature.{png,svg} (top eigenvalue and trace against the epoch, one curve
per run; a retraining continues from the epoch of the snapshot it started
from) cover every row of the folder.";

/// Curvature of the training loss at a stored snapshot.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct HessianArgs {
    /// The trajectory store (run.json is read from the folder above it).
    #[arg(long)]
    store: PathBuf,
    /// The snapshot (as `landscape store ls` prints it).
    #[arg(long, required_unless_present_any = ["filter", "ids"], conflicts_with_all = ["filter", "ids"])]
    id: Option<SnapshotId>,
    /// Trajectory mode: the snapshots this filter selects, as in `landscape
    /// store ls --filter` (e.g. run=main or run=main,epoch=0..50), in store order.
    #[arg(long, value_name = "FILTER", conflicts_with = "ids")]
    filter: Option<String>,
    /// With --filter: every K-th selected snapshot (the first, the K+1-th,
    /// ...), and always the last.
    #[arg(long, value_name = "K", requires = "filter")]
    every: Option<usize>,
    /// Trajectory mode: these snapshots, in this order.
    #[arg(long, value_delimiter = ',', value_name = "ID,ID,...")]
    ids: Option<Vec<SnapshotId>>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Training images the loss averages over (a stratified subset; default:
    /// the run's training subset).
    #[arg(long)]
    sample: Option<SubsetSize>,
    /// Draw the --sample images with this seed (another stratified subset per
    /// seed) from the run's training subset, or from the whole training split
    /// when --sample exceeds it; recorded in hessian.json.
    #[arg(long)]
    sample_seed: Option<u64>,
    /// BN statistics of the differentiated loss: fixed or batch.
    #[arg(long, default_value = "fixed")]
    bn: HessianBn,
    /// Images per forward/backward chunk (memory; with --bn batch also the ghost batch).
    #[arg(long, default_value_t = 1000)]
    chunk_size: usize,
    /// Top eigenvalues.
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    /// Lanczos basis size.
    #[arg(long, default_value_t = 30)]
    lanczos_steps: usize,
    /// Relative residual of a converged eigenpair.
    #[arg(long, default_value_t = 1e-3)]
    tol: f64,
    /// Most Hessian-vector products per eigensolver run.
    #[arg(long, default_value_t = 300)]
    max_products: usize,
    /// Hutchinson probes per trace estimate.
    #[arg(long, default_value_t = 30)]
    probes: usize,
    /// Skip the smallest eigenvalue (one Lanczos run per seed fewer).
    #[arg(long)]
    no_smallest: bool,
    /// SLQ runs per density (0: no density).
    #[arg(long, default_value_t = 3)]
    slq_runs: usize,
    /// Lanczos steps per SLQ run.
    #[arg(long, default_value_t = 30)]
    slq_steps: usize,
    /// Seeds; every estimate is repeated with each.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    seeds: Vec<u64>,
    /// |lambda| <= this times the top eigenvalue counts as a flat direction.
    #[arg(long, default_value_t = 1e-3)]
    zero_rtol: f64,
    /// Rademacher probes of the degeneracy count (0: no count; default 30
    /// at one snapshot, 0 in trajectory mode).
    #[arg(long)]
    count_probes: Option<usize>,
    /// Largest Chebyshev degree of the degeneracy count.
    #[arg(long, default_value_t = 4000)]
    count_max_degree: usize,
    /// Float type of the degeneracy count's Hessian-vector products: f64
    /// (float64 copies of the weights and images) or f32.
    #[arg(long, default_value = "f64")]
    count_precision: HessianPrecision,
    /// Also the rank of the Jacobian of the outputs on the first N training
    /// images (N x classes rows; memory N x classes x parameters x 8 bytes):
    /// the Gauss-Newton part J^T J of the Hessian has at least
    /// parameters - rank zero eigenvalues.
    #[arg(long, conflicts_with_all = ["filter", "ids"])]
    jacobian_images: Option<usize>,
    /// Also each of these layers' own block of the Hessian (its weight and
    /// bias; paper numbers, 2 = first convolution): top-k and smallest
    /// eigenvalues, trace and SLQ density (layers-density.csv), over the same seeds.
    #[arg(long, value_delimiter = ',', value_name = "L,...")]
    layers: Vec<usize>,
    #[command(flatten)]
    compute: super::Compute,
}

#[allow(clippy::print_stdout)]
pub fn run(args: HessianArgs) -> Result<()> {
    let cfg = SpectrumConfig {
        bn: args.bn,
        chunk_size: args.chunk_size,
        top_k: args.top_k,
        lanczos_steps: args.lanczos_steps,
        tol: args.tol,
        max_products: args.max_products,
        probes: args.probes,
        smallest: !args.no_smallest,
        slq_runs: args.slq_runs,
        slq_steps: args.slq_steps,
        seeds: args.seeds.clone(),
        zero_rtol: args.zero_rtol,
        count_probes: args
            .count_probes
            .unwrap_or(if args.id.is_some() { 30 } else { 0 }),
        count_max_degree: args.count_max_degree,
        count_precision: args.count_precision,
    };
    cfg.validate("").map_err(super::field_as_flag)?;
    let overrides = Overrides {
        train_size: args.sample,
        names: Some(super::sample_flag),
        train_only: true,
        sample_seed: args.sample_seed,
        ..Overrides::default()
    };
    let Some(id) = args.id else {
        return trajectory(args, cfg, overrides);
    };
    let snap = snapshot::load_snapshot(
        &args.store,
        id,
        &overrides,
        args.compute.device,
        args.compute.data.as_deref(),
        args.compute.threads,
    )?;
    let t0 = std::time::Instant::now();
    let report = hessian::analyse(&snap.model, &snap.data.train, &cfg)?;
    let jacobian = match args.jacobian_images {
        Some(n) => Some(hessian::jacobian_rank(
            &snap.model,
            &snap.data.train,
            n,
            args.bn,
        )?),
        None => None,
    };
    let layers = if args.layers.is_empty() {
        Vec::new()
    } else {
        hessian::analyse_layers(&snap.model, &snap.data.train, &cfg, &args.layers)?
    };
    let secs = t0.elapsed().as_secs_f64();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {} (--out)", args.out.display()))?;
    write_json(
        &args.out.join("hessian.json"),
        &serde_json::json!({
            "store": args.store,
            "snapshot": id,
            "run": snap.run,
            "epoch": snap.epoch,
            "stored_metrics": snap.metrics,
            "settings": snap.settings,
            "sample": snap.data.train_id,
            "seconds": secs,
            "report": report,
            "jacobian": jacobian,
            "layers": layers,
        }),
    )?;
    let mut csv = String::from("seed,k,eigenvalue,residual\n");
    for s in &report.seeds {
        for (k, (v, r)) in s.top.iter().zip(&s.residuals).enumerate() {
            csv += &format!("{},{},{v},{r}\n", s.seed, k + 1);
        }
        csv += &format!("{},min,{},{}\n", s.seed, s.min_eigenvalue, s.min_residual);
    }
    write_atomic(&args.out.join("eigenvalues.csv"), csv.as_bytes())?;
    let files = if report.config.slq_runs > 0 {
        draw_density(&args.out, &report)?
    } else {
        Vec::new()
    };
    println!(
        "snapshot {} ({} epoch {}), {} parameters, loss over {} training images: {:.6} (gradient norm {:.3e}); BN {}",
        id,
        snap.run,
        snap.epoch.map_or("-".to_owned(), |e| e.to_string()),
        report.dim,
        report.examples,
        report.loss,
        report.gradient_norm,
        report.bn
    );
    println!("over {} seed(s), mean +- std:", report.seeds.len());
    for (k, s) in report.top.iter().enumerate() {
        println!(
            "  eigenvalue {:>2}: {:>12.5} +- {:.2e}",
            k + 1,
            s.mean,
            s.std
        );
    }
    if report.config.smallest {
        println!(
            "  smallest     : {:>12.5} +- {:.2e}  (smallest / largest = {:.2e}: {})",
            report.min_eigenvalue.mean,
            report.min_eigenvalue.std,
            report.negative_ratio,
            if report.negative_ratio < -report.config.tol {
                "negative curvature: a saddle, or not yet a minimum"
            } else {
                "no negative curvature beyond the tolerance"
            }
        );
    }
    println!(
        "  trace        : {:>12.5} +- {:.2e} over seeds (Hutchinson standard errors {:?})",
        report.trace.mean,
        report.trace.std,
        report
            .seeds
            .iter()
            .map(|s| format!("{:.2e}", s.trace_se))
            .collect::<Vec<_>>()
    );
    if let Some(c) = &report.near_zero_count {
        println!(
            "  near-zero eigenvalues (|lambda| <= {} x top = {:.3e}): {}",
            c.rtol,
            c.threshold,
            count_line(c, report.dim)
        );
    }
    if let Some(j) = &jacobian {
        println!(
            "  Jacobian of the outputs on {} images: rank {} of {} rows; {} parameters, so J^T J has at least {} zero eigenvalues (largest singular value {:.3e}, cut-off {:.3e})",
            j.examples,
            j.rank,
            j.rows,
            j.params,
            j.null_directions,
            j.singular_values.first().copied().unwrap_or(0.0),
            j.threshold
        );
    }
    let mut layer_csv = String::from("layer,seed,run,node,weight\n");
    for l in &layers {
        println!(
            "  layer {} block ({} parameters): largest {:.5} +- {:.2e}, smallest {:.5} +- {:.2e}, trace {:.5} +- {:.2e}, top {}: [{}]{}",
            l.layer,
            l.params,
            l.top.mean,
            l.top.std,
            l.min_eigenvalue.mean,
            l.min_eigenvalue.std,
            l.trace.mean,
            l.trace.std,
            l.top_k.len(),
            l.top_k
                .iter()
                .map(|s| format!("{:.5}", s.mean))
                .collect::<Vec<_>>()
                .join(", "),
            l.near_zero_count
                .as_ref()
                .map_or(String::new(), |c| format!(
                    "; near-zero eigenvalues {}",
                    count_line(c, l.params)
                ))
        );
        for d in &l.density {
            for (run, (nodes, weights)) in d.nodes.iter().zip(&d.weights).enumerate() {
                for (n, w) in nodes.iter().zip(weights) {
                    layer_csv += &format!("{},{},{run},{n},{w}\n", l.layer, d.seed);
                }
            }
        }
    }
    if !layers.is_empty() {
        write_atomic(&args.out.join("layers-density.csv"), layer_csv.as_bytes())?;
    }
    println!(
        "{} Hessian-vector products in {:.1} s; wrote {}",
        report.seeds.iter().map(|s| s.products).sum::<usize>()
            + report.near_zero_count.as_ref().map_or(0, |c| c.products)
            + layers
                .iter()
                .filter_map(|l| l.near_zero_count.as_ref())
                .map(|c| c.products)
                .sum::<usize>(),
        secs,
        ["hessian.json", "eigenvalues.csv", "density.csv"]
            .into_iter()
            .take(if report.config.slq_runs > 0 { 3 } else { 2 })
            .map(str::to_owned)
            .chain(files.iter().map(|f| f.display().to_string()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// A degeneracy count as one line: estimate, 95% interval, its parts.
pub(crate) fn count_line(c: &hessian::NearZeroCount, dim: usize) -> String {
    format!(
        "{:.0} of {} (95% interval {:.0}..{:.0}: probe standard error {:.1}, smoothing bias <= {:.1}; KPM degree {}, {} probes, {} {} products{}",
        c.estimate,
        dim,
        c.low,
        c.high,
        c.standard_error,
        c.bias_bound,
        c.degree,
        c.probes,
        c.products,
        c.precision,
        if c.resolved {
            ")".to_owned()
        } else {
            format!(
                "; NOT RESOLVED: the window needs degree {}, raise --count-max-degree)",
                c.required_degree
                    .map_or("infinite".to_owned(), |d| d.to_string())
            )
        }
    )
}

/// The snapshots of trajectory mode: the filter's (every K-th and the
/// last) or the listed ones.
fn select(args: &HessianArgs) -> Result<Vec<SnapshotId>> {
    if let Some(ids) = &args.ids {
        if ids.is_empty() {
            bail!("--ids: expected at least one snapshot id");
        }
        return Ok(ids.clone());
    }
    let text = args.filter.as_deref().unwrap_or_default();
    let filter: Filter = text
        .parse()
        .map_err(|e| anyhow!("--filter `{text}`: {e}"))?;
    let store = Store::open(&args.store)
        .with_context(|| format!("opening the store {} (--store)", args.store.display()))?;
    let all: Vec<SnapshotId> = store.find(&filter).iter().map(|s| s.id()).collect();
    let Some(&last) = all.last() else {
        bail!(
            "--filter `{text}` selects no snapshot of {} (see `landscape store ls {} --filter ...`)",
            args.store.display(),
            args.store.display()
        );
    };
    let every = args.every.unwrap_or(1);
    if every == 0 {
        bail!("--every: expected at least 1, found 0");
    }
    let mut ids: Vec<SnapshotId> = all.iter().copied().step_by(every).collect();
    if ids.last() != Some(&last) {
        ids.push(last);
    }
    Ok(ids)
}

/// Trajectory mode.
fn trajectory(args: HessianArgs, cfg: SpectrumConfig, overrides: Overrides) -> Result<()> {
    let snapshots = select(&args)?;
    let t0 = std::time::Instant::now();
    let report = curvature::run(&CurvatureOptions {
        store: args.store,
        snapshots,
        out: args.out,
        spectrum: cfg,
        overrides,
        device: args.compute.device,
        data_dir: args.compute.data,
        threads: args.compute.threads,
    })?;
    print_trajectory(&report, t0.elapsed().as_secs_f64());
    Ok(())
}

#[allow(clippy::print_stdout)]
fn print_trajectory(r: &CurvatureReport, secs: f64) {
    println!(
        "{} snapshot(s) evaluated, {} already done, in {secs:.1} s; {} row(s) in {}:",
        r.evaluated,
        r.reused,
        r.rows.len(),
        r.out.display()
    );
    println!(
        "  {:>5}  {:<18} {:>5}  {:>10}  {:>9}  {:>22}  {:>22}  {:>10}",
        "id", "run", "epoch", "train_loss", "train_err", "top eigenvalue", "trace", "grad norm"
    );
    for row in &r.rows {
        let top = row.top.first();
        println!(
            "  {:>5}  {:<18} {:>5}  {:>10.4}  {:>9.2}  {:>12.5} +- {:.1e}  {:>12.4} +- {:.1e}  {:>10.3e}",
            row.id,
            row.run,
            row.epoch.map_or("-".to_owned(), |e| e.to_string()),
            row.metrics.get("train_loss").copied().unwrap_or(f64::NAN),
            row.metrics.get("train_error").copied().unwrap_or(f64::NAN),
            top.map_or(f64::NAN, |s| s.mean),
            top.map_or(f64::NAN, |s| s.std),
            row.trace.mean,
            row.trace.std,
            row.gradient_norm
        );
    }
    println!(
        "wrote {}",
        r.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// The SLQ density of every seed on one grid, log10 axis, and as CSV.
fn draw_density(out: &std::path::Path, r: &SpectrumReport) -> Result<Vec<PathBuf>> {
    let (lo, hi) = r
        .seeds
        .iter()
        .flat_map(|s| s.density_nodes.iter().flatten())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let span = (hi - lo).max(1e-12);
    let sigma = (1e-5 * span.max(1.0))
        .sqrt()
        .min(span / 50.0)
        .max(span / 2000.0);
    let n = 400;
    let grid: Vec<f64> = (0..n)
        .map(|i| lo - 0.05 * span + (1.1 * span) * i as f64 / (n - 1) as f64)
        .collect();
    let mut csv = String::from("seed,eigenvalue,density\n");
    let mut curves = Vec::new();
    for (i, s) in r.seeds.iter().enumerate() {
        let runs = s.density_nodes.len().max(1) as f64;
        let dens: Vec<f64> = grid
            .iter()
            .map(|&x| {
                s.density_nodes
                    .iter()
                    .zip(&s.density_weights)
                    .flat_map(|(nd, w)| nd.iter().zip(w))
                    .map(|(&t, &w)| {
                        w * (-(x - t).powi(2) / (2.0 * sigma * sigma)).exp()
                            / (sigma * (2.0 * std::f64::consts::PI).sqrt())
                    })
                    .sum::<f64>()
                    / runs
            })
            .collect();
        for (x, d) in grid.iter().zip(&dens) {
            csv += &format!("{},{x},{d}\n", s.seed);
        }
        curves.push(plot::Curve {
            name: format!("seed {}", s.seed),
            color: plot::palette(i + 1),
            points: grid
                .iter()
                .zip(&dens)
                .map(|(&x, &d)| (x, d.max(1e-12).log10()))
                .collect(),
        });
    }
    write_atomic(&out.join("density.csv"), csv.as_bytes())?;
    plot::line_panels(
        &out.join("density"),
        &format!(
            "Hessian spectral density (SLQ, Gaussian width {sigma:.2e}), {} parameters, BN {}",
            r.dim, r.bn
        ),
        &[plot::LinePanel {
            title: "log10 density (floored at 1e-12)".into(),
            x_label: "eigenvalue".into(),
            y_label: "log10 density".into(),
            curves,
        }],
        1,
        (1200, 700),
    )
}
