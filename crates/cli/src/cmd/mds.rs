//! `landscape mds`: classical (strain) MDS of one layer's weights over the
//! snapshots of a trajectory store, written as CSV with each snapshot's
//! metadata, plus an eigenvalue summary on stdout.
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use landscape_mds::{dissimilarity_matrix, ClassicalMds, Dissimilarity, EigenSolver, Embedding};
use landscape_trajectory::{Filter, SnapshotInfo, Store};

const EXAMPLES: &str = "\
Examples:
  landscape mds --store runs/fig14-quick/store --layer 2 --out points.csv
  landscape mds --store runs/fig14-quick/store --layer 5 --filter run=main,kind=trained --out l5.csv
  landscape mds --store runs/s --layer 2 --metric euclidean --dims 3 --solver full --out p.csv
  landscape mds --store runs/long --layer 2 --solver partial --spectrum --out p.csv

The CSV has the columns id, run, kind, stage, epoch, step, x, y (z, w, then
dim5... for more dimensions), and one column per metric recorded in any
selected snapshot (empty where a snapshot lacks it).
Filters are comma-separated key=value terms, all of which must hold:
  run=main  kind=trained|perturbed|interpolated|averaged|initial|other:NAME
  id=10..20  stage=1..=3  epoch=0..50  step=..1000  parent=ID  has=test_error";

/// Which eigensolver to use.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum SolverArg {
    /// Full decomposition up to 800 points, Lanczos (top k only) above.
    Auto,
    /// Full decomposition (gives explained ratio and negative mass at any n).
    Full,
    /// Lanczos, top k eigenpairs only.
    Partial,
}

/// Classical MDS of one layer's weights over the snapshots of a store.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct MdsArgs {
    /// The trajectory store folder.
    #[arg(long, value_name = "PATH")]
    store: PathBuf,
    /// The paper's layer number: its weight and bias tensors (`layerN.*`,
    /// without batch-norm statistics), concatenated per snapshot.
    #[arg(long, default_value_t = 2)]
    layer: u32,
    /// Only the snapshots this filter selects (see below); default all.
    #[arg(long, value_name = "FILTER")]
    filter: Option<String>,
    /// Dissimilarity between weight vectors: cosine (1 - cosine similarity,
    /// the paper's), euclidean or squared-euclidean.
    #[arg(long, default_value = "cosine")]
    metric: Dissimilarity,
    /// Number of output dimensions.
    #[arg(long, default_value_t = 2)]
    dims: usize,
    /// Eigensolver.
    #[arg(long, value_enum, default_value_t = SolverArg::Auto)]
    solver: SolverArg,
    /// With the partial solver, also compute every eigenvalue (values only,
    /// O(n³) but several times cheaper than --solver full), so that the
    /// explained share and the negative mass are reported.
    #[arg(long)]
    spectrum: bool,
    /// The CSV file to write.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub fn run(args: MdsArgs) -> Result<()> {
    let store = Store::open(&args.store)
        .with_context(|| format!("opening the store {}", args.store.display()))?;
    let filter: Filter = match &args.filter {
        Some(text) => text
            .parse()
            .with_context(|| format!("parsing the filter {text:?}"))?,
        None => Filter::all(),
    };
    let spinner = spinner();
    spinner.set_message(format!(
        "reading layer {} of the selected snapshots",
        args.layer
    ));
    let weights = store
        .read_layer(&filter, args.layer)
        .with_context(|| format!("reading layer {} from {}", args.layer, args.store.display()))?;
    let infos: Vec<&SnapshotInfo> = weights
        .ids()
        .iter()
        .map(|&id| store.get(id))
        .collect::<Result<_, _>>()?;
    let (n, dim) = weights.matrix().dim();
    if n < args.dims {
        bail!(
            "the filter selects {n} snapshots: need at least --dims {} of them",
            args.dims
        );
    }
    tracing::info!(n, dim, tensors = ?weights.names(), "read the weight matrix");

    spinner.set_message(format!(
        "{n} x {n} {} dissimilarities (dimension {dim})",
        args.metric
    ));
    let d = dissimilarity_matrix(weights.matrix(), args.metric).map_err(|e| match e {
        landscape_mds::MdsError::ZeroRow { row } => match infos.get(row) {
            Some(info) => anyhow::anyhow!(
                "snapshot {} has all-zero layer-{} weights: its cosine dissimilarity is undefined",
                info.id(),
                args.layer
            ),
            None => landscape_mds::MdsError::ZeroRow { row }.into(),
        },
        other => other.into(),
    })?;
    spinner.set_message(format!("classical MDS of {n} points"));
    let solver = match args.solver {
        SolverArg::Auto => EigenSolver::Auto,
        SolverArg::Full => EigenSolver::Full,
        SolverArg::Partial => EigenSolver::Partial,
    };
    let embedding = ClassicalMds::params(args.dims)
        .solver(solver)
        .spectrum(args.spectrum)
        .fit_owned(d)?;
    spinner.finish_and_clear();

    write_csv(&args, &infos, &embedding)?;
    print_summary(&args, n, dim, &embedding);
    Ok(())
}

fn spinner() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn write_csv(args: &MdsArgs, infos: &[&SnapshotInfo], embedding: &Embedding) -> Result<()> {
    // The one points-CSV schema every tool writes (shared with `reproduce`).
    let text = landscape_engine::analysis::points_csv(infos, embedding.coordinates());
    let file =
        File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut out = BufWriter::new(file);
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .with_context(|| format!("writing {}", args.out.display()))?;
    Ok(())
}

#[allow(clippy::print_stdout)]
fn print_summary(args: &MdsArgs, n: usize, dim: usize, e: &Embedding) {
    println!(
        "classical MDS of layer {} ({} snapshots x {} weights, {}), {} dimensions, {:?} eigensolver",
        args.layer,
        n,
        dim,
        args.metric,
        e.k(),
        e.solver()
    );
    let shown: Vec<String> = e
        .eigenvalues()
        .iter()
        .take(e.k() + 4)
        .map(|v| format!("{v:.6e}"))
        .collect();
    println!("  top eigenvalues: {}", shown.join(", "));
    match e.explained_ratio() {
        Some(r) => println!(
            "  explained share of the positive spectrum: {:.2}%",
            100.0 * r
        ),
        None => {
            println!(
                "  explained share: not computed by the partial solver (add --spectrum, or use --solver full)"
            )
        }
    }
    if let Some(m) = e.negative_mass() {
        println!(
            "  negative eigenvalue mass: {:.2}% of the total |spectrum|",
            100.0 * m
        );
    }
    println!("  strain: {:.4}", e.strain());
    println!("  wrote {}", args.out.display());
}
