//! `landscape reproduce <figure>`: run one of the paper's experiments end to end.
use std::path::PathBuf;

use anyhow::Result;
use landscape_cli::experiments::config::Scale;
use landscape_cli::experiments::fig14::{self, Fig14Options};
use landscape_net::DeviceChoice;

const EXAMPLES: &str = "\
Examples:
  landscape reproduce fig14                       # quick scale, into runs/fig14-quick
  landscape reproduce fig14 --scale paper --device cuda --out runs/fig14-paper
  landscape reproduce fig14 --scale smoke --out /tmp/smoke
  landscape reproduce fig14 --config my-fig14.toml --scale quick

Killed or interrupted, the same command resumes from the last complete snapshot.";

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ReproduceArgs {
    /// Which experiment.
    #[arg(value_enum)]
    pub figure: Figure,
    /// smoke (seconds, for tests), quick (minutes on a laptop CPU), paper (the full protocol; GPU).
    #[arg(long, value_enum, default_value_t = Scale::Quick)]
    pub scale: Scale,
    /// Output folder (default: runs/<figure>-<scale>). Re-running resumes it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// auto (CUDA when present), cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// CIFAR-10 folder (default: $LANDSCAPE_CIFAR10, then the workspace's data/).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// An experiment file to use instead of the bundled experiments/<figure>.toml.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// The experiments `reproduce` knows.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Figure {
    /// Figures 4 and 14-17: full-batch GD with branches, MDS of the weights.
    Fig14,
}

#[allow(clippy::print_stdout)]
pub fn run(args: ReproduceArgs) -> Result<()> {
    match args.figure {
        Figure::Fig14 => {
            let out = args
                .out
                .unwrap_or_else(|| PathBuf::from(format!("runs/fig14-{}", args.scale)));
            let opts = Fig14Options {
                scale: args.scale,
                out: out.clone(),
                device: args.device,
                data_dir: args.data,
                config_file: args.config,
                threads: args.threads,
                command: std::env::args().collect(),
            };
            let summary = fig14::run(&opts)?;
            println!(
                "main trajectory: final training error {:.2}%, test error {:.2}%",
                summary.main_final_train_error, summary.main_final_test_error
            );
            for v in &summary.variants {
                println!("\n{} (alpha = {}, layer {}):", v.name, v.alpha, v.layer);
                println!("  {:<24} {:<14} numbers", "finding", "verdict");
                for f in &v.findings {
                    println!("  {:<24} {:<14} {}", f.id, f.verdict, f.numbers);
                }
            }
            let mut files: Vec<String> = summary
                .variants
                .iter()
                .flat_map(|v| v.files.iter().map(|f| f.display().to_string()))
                .collect();
            files.push(out.join("summary.json").display().to_string());
            files.push(out.join("run.json").display().to_string());
            files.push(out.join("store").display().to_string());
            println!("\nwrote: {}", files.join(", "));
            Ok(())
        }
    }
}
