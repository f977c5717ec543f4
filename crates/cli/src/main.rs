//! `landscape`: reproduce and extend the loss-landscape experiments of
//! Liao & Poggio, "Theory of Deep Learning II" (CBMM Memo 066).

mod cmd;
mod logging;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Subcommand};
use landscape_figures::Registry;

const EXAMPLES: &str = "\
Examples:
  landscape data install --archive ~/Downloads/cifar-10-binary.tar.gz
  landscape data verify
  landscape store ls runs/fig14-quick/store
  landscape mds --store runs/fig14-quick/store --layer 2 --out points.csv
  landscape bezout --preset paper-cifar
  landscape reproduce fig14 --scale quick
  landscape surface line --store runs/fig14-quick/store --from 0 --to 6 --out runs/line
  landscape import --from model.pt --store runs/torch/store --train-size 500 --test-size 500
  RUST_LOG=debug landscape -v data verify

cifar-10-binary.tar.gz is the official CIFAR-10 archive,
https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz (`landscape data
install` without --archive downloads it).";

/// Study the loss landscape of deep networks: train, branch, perturb and
/// average CNNs on CIFAR-10, record every weight, and draw the trajectories.
#[derive(clap::Parser)]
#[command(name = "landscape", version, about, long_about = None, after_help = EXAMPLES)]
struct Cli {
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Less log output (errors only).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Allow TF32 in float32 convolutions and matrix products on CUDA: faster
    /// on Ampere and later GPUs, about 1e-3 relative error in losses and
    /// Hessian-vector products. Off by default (NVIDIA_TF32_OVERRIDE=0);
    /// recorded in run.json. No effect on the CPU.
    #[arg(
        long,
        global = true,
        env = "LANDSCAPE_ALLOW_TF32",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    allow_tf32: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install, locate and verify CIFAR-10.
    Data(cmd::data::DataArgs),
    /// Inspect and verify a trajectory store.
    Store(cmd::store::StoreArgs),
    /// Classical (strain) MDS of one layer's weights over the snapshots of a store.
    Mds(cmd::mds::MdsArgs),
    /// Bezout degree and zero counts; numeric check of degenerate zero-error minima.
    Bezout(cmd::bezout::BezoutArgs),
    /// Reproduce one of the paper's experiments end to end (figures, CSV, verdicts).
    Reproduce(cmd::reproduce::ReproduceArgs),
    /// Curvature of the training loss at a stored snapshot: top and smallest
    /// eigenvalues, trace, spectral density, with the spread over seeds.
    Hessian(cmd::hessian::HessianArgs),
    /// The embedding principle: split a hidden channel of a stored snapshot
    /// and compare the two networks (outputs, gradient, Hessian extremes).
    Embed(cmd::embed::EmbedArgs),
    /// PyTorch state_dicts of the paper's network (.safetensors, torch.save)
    /// into a trajectory store, one snapshot per file.
    Import(cmd::import::ImportArgs),
    /// One HTML page (runs/index.html) with every figure run at a scale.
    Index(cmd::index::IndexArgs),
    /// The loss along lines and planes through stored snapshots (resumable, shardable).
    Surface(cmd::surface::SurfaceArgs),
    /// Li et al.'s PCA view of a trajectory: loss contours on the plane of its
    /// first two principal components, with the projected trajectory on top.
    Pca(cmd::pca::PcaArgs),
}

fn main() -> ExitCode {
    run(&Registry::paper())
}

/// The whole tool over `registry`'s experiments (`reproduce`, `index`): a
/// program that adds experiments of its own calls this with its registry.
pub fn run(registry: &Registry) -> ExitCode {
    let matches = cmd::reproduce::with_registry(Cli::command(), registry).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Before libtorch initialises: cuDNN's TF32 off unless --allow-tf32.
    landscape_net::device::configure_tf32(cli.allow_tf32);
    logging::init(cli.verbose, cli.quiet);
    // Before libtorch allocates anything: keep freed tensors' memory in the
    // heap (LANDSCAPE_MALLOC=system: glibc's defaults).
    if let Err(err) = landscape_net::configure_malloc() {
        tracing::error!("{err}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Data(args) => cmd::data::run(args),
        Command::Store(args) => cmd::store::run(args),
        Command::Mds(args) => cmd::mds::run(args),
        Command::Bezout(args) => cmd::bezout::run(args),
        Command::Reproduce(args) => cmd::reproduce::run(args, registry),
        Command::Index(args) => cmd::index::run(args, registry),
        Command::Hessian(args) => cmd::hessian::run(args),
        Command::Import(args) => cmd::import::run(args),
        Command::Embed(args) => cmd::embed::run(args),
        Command::Surface(args) => cmd::surface::run(args),
        Command::Pca(args) => cmd::pca::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            if let Some(hint) = cmd::flag_hint(&err) {
                tracing::error!("{hint}");
            }
            ExitCode::FAILURE
        }
    }
}
