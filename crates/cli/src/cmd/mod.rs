//! One module per subcommand: clap arguments and the code that runs them.
pub mod bezout;
pub mod data;
pub mod embed;
pub mod hessian;
pub mod import;
pub mod index;
pub mod mds;
pub mod pca;
pub mod reproduce;
pub mod store;
pub mod surface;

use std::path::PathBuf;

use landscape_engine::ExperimentError;
use landscape_net::DeviceChoice;

/// What the user can do about `err`, in this tool's flags: the libraries
/// name settings and actions in their own terms (an output folder, a fresh
/// run), the command line maps them to its flags here.
pub fn flag_hint(err: &anyhow::Error) -> Option<&'static str> {
    err.chain()
        .find_map(|e| match e.downcast_ref::<ExperimentError>()? {
            ExperimentError::FingerprintMismatch { .. } => Some(
                "another output folder is --out; a fresh run in this one is --fresh \
                 (deletes its store and results)",
            ),
            _ => None,
        })
}

/// Where a command computes: the device, libtorch's CPU threads and the
/// CIFAR-10 folder; the same flags, with the same help, in every command
/// that evaluates a network (`#[command(flatten)]`).
#[derive(clap::Args, Clone, Debug)]
pub struct Compute {
    /// auto (CUDA when present), cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// CIFAR-10 folder (default: $LANDSCAPE_CIFAR10, then the workspace's data/;
    /// none yet? `landscape data install`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}
