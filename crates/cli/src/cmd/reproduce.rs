//! `landscape reproduce <figure>`: run one of the paper's experiments end to end.
use std::path::PathBuf;

use anyhow::Result;
use landscape_engine::analysis::Verdict;
use landscape_engine::config::Scale;
use landscape_figures::{self as figures, FIGURES};
use landscape_engine::session::RunOptions;
use landscape_net::DeviceChoice;

const EXAMPLES: &str = "\
Examples:
  landscape reproduce fig14                       # quick scale, into runs/fig14-quick
  landscape reproduce fig14 --scale medium        # about an hour on 2 CPU cores
  landscape reproduce fig14 --scale paper --device cuda --out runs/fig14-paper
  landscape reproduce fig14 --scale smoke --out /tmp/smoke
  landscape reproduce fig14 --config my-fig14.toml --scale quick --out runs/mine
  landscape reproduce fig2 --threads 1            # polynomial vs ReLU network, degree sweep
  landscape reproduce fig3                        # SGD in 12 stages of 8 runs
  landscape reproduce random-labels               # the fig3 protocol on random labels
  landscape reproduce sgd-vs-bgd                  # test error of SGD vs BGD solutions
  landscape reproduce li2018 --threads 1          # Li et al. 2018: small vs large batch, line and planes
  landscape reproduce all --scale quick           # every figure, then runs/index.html

Killed or interrupted, the same command resumes from the last complete snapshot
(bit-identical on the same machine and thread count). An output folder made
with another configuration is refused: use another --out, or --fresh to start
over. Changing only thresholds or what is drawn re-runs only the analysis.
What each scale runs and how it deviates from the paper: docs/protocols.md.";

fn figure_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = FIGURES.iter().map(|f| f.0).collect();
    v.push("all");
    v
}

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ReproduceArgs {
    /// Which experiment: fig14 (Figures 4, 14-17: BGD with branches), fig2
    /// (polynomial vs ReLU net), fig3 (Figures 3, 8-13: SGD in 12 stages of 8
    /// runs), random-labels (Section 7), sgd-vs-bgd (test error of SGD vs BGD
    /// solutions), fig5 (Figures 5, 18-37), fig41 (Figures 41-45), fig40,
    /// li2018 (Li et al. 2018, Figures 2-3: small- vs large-batch minima, the
    /// line between them and filter-normalised planes around each);
    /// `all`: every one in turn into <out>/<figure>-<scale> (--out: the runs
    /// folder, default runs/), then <out>/index.html.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(figure_names()))]
    pub figure: String,
    /// smoke (seconds, for tests), quick (minutes on a laptop CPU), medium (about
    /// an hour on 2 CPU cores), paper (the full protocol; GPU).
    #[arg(long, default_value = "quick")]
    pub scale: Scale,
    /// Output folder (default: runs/<figure>-<scale>). Re-running resumes it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Delete the output folder's earlier results (store, figures, run.json) and start over.
    #[arg(long)]
    pub fresh: bool,
    /// auto (CUDA when present), cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// CIFAR-10 folder (default: $LANDSCAPE_CIFAR10, then the workspace's data/;
    /// none yet? `landscape data install`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// An experiment file to use instead of the bundled experiments/<figure>.toml.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(args: ReproduceArgs) -> Result<()> {
    if args.figure == "all" {
        return run_all(args);
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{}-{}", args.figure, args.scale)));
    let report = figures::run(&args.figure, &options(&args, out))?;
    print_report(&report);
    Ok(())
}

fn options(args: &ReproduceArgs, out: PathBuf) -> RunOptions {
    RunOptions {
        scale: args.scale,
        out,
        device: args.device,
        data_dir: args.data.clone(),
        config_file: args.config.clone(),
        threads: args.threads,
        fresh: args.fresh,
        command: std::env::args().collect(),
    }
}

/// Every figure in turn (each resumes like a single run), then the index page.
#[allow(clippy::print_stdout)]
fn run_all(args: ReproduceArgs) -> Result<()> {
    anyhow::ensure!(
        args.config.is_none(),
        "--config names one experiment's file; `reproduce all` uses the bundled experiments/<figure>.toml of each"
    );
    let runs = args.out.clone().unwrap_or_else(|| PathBuf::from("runs"));
    let t0 = std::time::Instant::now();
    let mut times = Vec::new();
    let mut failed = None;
    for (name, _) in FIGURES {
        let t = std::time::Instant::now();
        let out = runs.join(format!("{name}-{}", args.scale));
        tracing::info!(figure = name, out = %out.display(), "reproduce all: next figure");
        match figures::run(name, &options(&args, out)) {
            Ok(report) => {
                println!("\n=== {name} ===");
                print_report(&report);
                times.push((name, t.elapsed().as_secs_f64()));
            }
            Err(e) => {
                failed = Some(e.context(format!("reproduce all: {name} failed (the figures before it are done; the same command resumes)")));
                break;
            }
        }
    }
    let index = landscape_figures::index::write_index(&runs, args.scale.as_str())?;
    println!(
        "\nreproduce all --scale {}: {:.0} s in all",
        args.scale,
        t0.elapsed().as_secs_f64()
    );
    for (name, s) in &times {
        println!("  {name:<14} {s:>8.0} s");
    }
    println!(
        "index: {} ({} figures, {} SVG panels)",
        index.page.display(),
        index.present.len(),
        index.svgs
    );
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[allow(clippy::print_stdout)]
fn print_report(report: &figures::Report) {
    for line in &report.headline {
        println!("{line}");
    }
    for s in &report.sections {
        println!("\n{}:", s.title);
        println!(
            "  {:<24} {:<14} {:<28} numbers",
            "finding", "verdict", "threshold"
        );
        for f in &s.findings {
            let mark = match f.verdict {
                Verdict::DoesNotHold => "DOES NOT HOLD",
                v => v.as_str(),
            };
            println!(
                "  {:<24} {:<14} {:<28} {}",
                f.id,
                mark,
                f.threshold.to_string(),
                f.numbers
            );
        }
    }
    let files: Vec<String> = report
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    println!("\nwrote: {}", files.join(", "));
}
