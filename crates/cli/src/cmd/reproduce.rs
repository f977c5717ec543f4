//! `landscape reproduce <figure>`: run one of the paper's experiments end to end.
use std::path::PathBuf;

use anyhow::Result;
use clap::builder::{PossibleValue, PossibleValuesParser};
use landscape_engine::analysis::Verdict;
use landscape_engine::config::Scale;
use landscape_engine::experiment::Report;
use landscape_engine::session::RunOptions;
use landscape_figures::Registry;

const EXAMPLES: &str = "\
Examples:
  landscape reproduce fig14                       # quick scale, into runs/fig14-quick
  landscape reproduce fig14 --scale medium        # about an hour on 2 CPU cores
  landscape reproduce fig14 --scale paper --device cuda --out runs/fig14-paper
  landscape reproduce fig14 --scale smoke --out /tmp/smoke
  landscape reproduce fig14 --config my-fig14.toml --scale quick --out runs/mine
  landscape reproduce all --scale quick           # every figure, then runs/index.html
  landscape reproduce --list                      # the experiments' names, one a line

Killed or interrupted, the same command resumes from the last complete snapshot
(bit-identical on the same machine and thread count). An output folder made
with another configuration is refused: use another --out, or --fresh to start
over. Changing only thresholds or what is drawn re-runs only the analysis.
What each scale runs and how it deviates from the paper: docs/protocols.md.";

/// The `reproduce` subcommand of `command` with `registry`'s experiments as
/// the values of its FIGURE argument (each with its line in `--help`).
pub fn with_registry(command: clap::Command, registry: &Registry) -> clap::Command {
    let mut values: Vec<PossibleValue> = registry
        .experiments()
        .iter()
        .map(|e| PossibleValue::new(e.name()).help(e.description()))
        .collect();
    values.push(PossibleValue::new("all").help(
        "every experiment above in turn into <out>/<figure>-<scale> (--out: the runs \
         folder, default runs/), then <out>/index.html",
    ));
    command.mut_subcommand("reproduce", |c| {
        c.mut_arg("figure", |a| {
            a.value_parser(PossibleValuesParser::new(values))
        })
    })
}

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ReproduceArgs {
    /// Which experiment, or `all` (every one in turn).
    #[arg(required_unless_present = "list")]
    pub figure: Option<String>,
    /// Print the experiments' names, one a line (for scripts), and exit.
    #[arg(long, conflicts_with = "figure")]
    pub list: bool,
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
    #[command(flatten)]
    pub compute: super::Compute,
    /// An experiment file to use instead of the bundled experiments/<figure>.toml.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[allow(clippy::print_stdout)]
pub fn run(args: ReproduceArgs, registry: &Registry) -> Result<()> {
    let figure = match (&args.figure, args.list) {
        (_, true) => {
            for name in registry.names() {
                println!("{name}");
            }
            return Ok(());
        }
        (Some(f), false) => f.clone(),
        (None, false) => anyhow::bail!("name an experiment (or `all`, or --list)"),
    };
    if figure == "all" {
        return run_all(args, registry);
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{}-{}", figure, args.scale)));
    let report = registry.run(&figure, &options(&args, out))?;
    print_report(&report);
    Ok(())
}

fn options(args: &ReproduceArgs, out: PathBuf) -> RunOptions {
    RunOptions {
        scale: args.scale,
        out,
        device: args.compute.device,
        data_dir: args.compute.data.clone(),
        config_file: args.config.clone(),
        threads: args.compute.threads,
        fresh: args.fresh,
        command: std::env::args().collect(),
    }
}

/// Every figure in turn (each resumes like a single run), then the index page.
#[allow(clippy::print_stdout)]
fn run_all(args: ReproduceArgs, registry: &Registry) -> Result<()> {
    anyhow::ensure!(
        args.config.is_none(),
        "--config names one experiment's file; `reproduce all` uses the bundled experiments/<figure>.toml of each"
    );
    let runs = args.out.clone().unwrap_or_else(|| PathBuf::from("runs"));
    let t0 = std::time::Instant::now();
    let mut times = Vec::new();
    let mut failed = None;
    for name in registry.names() {
        let t = std::time::Instant::now();
        let out = runs.join(format!("{name}-{}", args.scale));
        tracing::info!(figure = name, out = %out.display(), "reproduce all: next figure");
        match registry.run(name, &options(&args, out)) {
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
    let index = landscape_figures::index::write_index(&runs, args.scale.as_str(), registry)?;
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

/// The terminal's width for the verdict tables (`COLUMNS`, else 100).
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&w| w >= 60)
        .unwrap_or(100)
}

#[allow(clippy::print_stdout)]
fn print_report(report: &Report) {
    use landscape_engine::analysis::{number_items, wrap_items};
    for line in &report.headline {
        println!("{line}");
    }
    let width = terminal_width();
    // Each finding: its id and verdict, then its numbers and its threshold
    // as short `key = value` items, wrapped (summary.json has every digit).
    for s in &report.sections {
        println!("\n{}:", s.title);
        for f in &s.findings {
            let mark = match f.verdict {
                Verdict::DoesNotHold => "DOES NOT HOLD",
                v => v.as_str(),
            };
            println!("  {:<26} {mark}", f.id);
            for line in wrap_items(&number_items(&f.numbers), width.saturating_sub(6)) {
                println!("      {line}");
            }
            if !f.threshold.is_null() {
                let items = number_items(&f.threshold);
                for (i, line) in wrap_items(&items, width.saturating_sub(18))
                    .iter()
                    .enumerate()
                {
                    let head = if i == 0 { "threshold: " } else { "           " };
                    println!("      {head}{line}");
                }
            }
        }
    }
    let files: Vec<String> = report
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    println!("\nwrote: {}", files.join(", "));
}
