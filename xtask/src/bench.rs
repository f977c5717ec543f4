//! `cargo xtask bench <what>`: benchmarks that print numbers side by side with
//! a baseline measured in the same run. They never decide pass/fail.
mod dataset;
mod hessian;
mod mds;
mod store;
mod surface;
mod train;

use anyhow::Result;

use crate::setup;

#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(clap::Subcommand)]
pub enum BenchWhat {
    /// SGD step (batch 100) and BGD epoch (5,000 images): landscape-net vs PyTorch eager.
    Train,
    /// Loading all 60,000 CIFAR-10 images from the installed binary files.
    Dataset,
    /// Trajectory store: write throughput, layer-2 read of 1,000 snapshots vs raw copy.
    Store,
    /// Loss-surface points: landscape's one-pass evaluator vs layer-by-layer vs PyTorch one point at a time.
    Surface,
    /// Classical MDS at n = 1,000 and 4,000 (dimension 30,000) vs numpy + scipy.
    Mds,
    /// Hessian-vector products and the top Hessian eigenvalue (1,000 images):
    /// landscape (double backward, Lanczos) vs PyHessian's PyTorch recipe (power iteration).
    Hessian,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let env = setup::run(&setup::SetupArgs::default())?;
    match args.what {
        BenchWhat::Train => train::run(&env),
        BenchWhat::Dataset => dataset::run(&env),
        BenchWhat::Store => store::run(&env),
        BenchWhat::Mds => mds::run(&env),
        BenchWhat::Surface => surface::run(&env),
        BenchWhat::Hessian => hessian::run(&env),
    }
}
