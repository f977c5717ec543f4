//! Project automation, in the style of rust-analyzer's xtask: one module per
//! task, `project_root()`, and no libtorch here: every build or test is a
//! `cargo` child process.
//!
//! ```text
//! cargo xtask setup            # libtorch (PyPI torch==2.13.0) + LAPACK, once per machine
//! cargo xtask test             # setup, then the whole test suite
//! cargo xtask reproduce fig14  # the paper's Figure 14, end to end
//! cargo xtask reproduce all --scale quick  # every figure, then runs/index.html
//! cargo xtask check-index      # render runs/index.html in headless Chromium
//! cargo xtask bench train      # benchmarks against baselines run side by side
//! cargo xtask gpu-check        # the CUDA path: links, CPU vs CUDA results, memory
//! ```

mod bench;
mod check_index;
mod gpu_check;
mod reproduce;
mod setup;
mod test;
mod util;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Project automation for landscape",
    version
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install libtorch (PyPI torch==2.13.0) into a per-user cache and LAPACK
    /// (Debian's libopenblas-dev). Idempotent; quiet when there is nothing to do.
    Setup(setup::SetupArgs),
    /// Run setup, then the whole test suite (unit, integration and doc tests).
    Test(test::TestArgs),
    /// Benchmarks, each against a baseline measured in the same run.
    Bench(bench::BenchArgs),
    /// Reproduce a figure end to end: setup, data, release build, run.
    Reproduce(reproduce::ReproduceArgs),
    /// Render runs/index.html in headless Chromium (installed by setup if
    /// missing) and fail on a broken image, a missing figure or a script error.
    CheckIndex(check_index::CheckIndexArgs),
    /// Check the CUDA path on a machine with an NVIDIA GPU (under 10 minutes):
    /// linked libraries, device tests with CUDA required, every experiment at
    /// smoke scale and surface/hessian/pca/import on CPU and CUDA compared,
    /// peak GPU memory of an exact full-batch step. Without a GPU it checks
    /// the links and the `--device cuda` error and says that no GPU was found.
    GpuCheck(gpu_check::GpuCheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<()> = match cli.task {
        Task::Setup(args) => setup::run(&args).map(|_| ()),
        Task::Test(args) => test::run(&args),
        Task::Bench(args) => bench::run(&args),
        Task::Reproduce(args) => reproduce::run(&args),
        Task::CheckIndex(args) => check_index::run(&args),
        Task::GpuCheck(args) => gpu_check::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            util::say(format!("error: {err:#}"));
            ExitCode::FAILURE
        }
    }
}
