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
use landscape_probe::input::Input;

/// The flag of each probe setting in `landscape surface`, `pca`, `hessian`,
/// `embed` and `import` (the probes name settings by their fields; this is
/// the [`landscape_probe::input::Names`] these commands pass).
pub fn flag(input: Input) -> &'static str {
    match input {
        Input::Store => "--store",
        Input::Id => "--id",
        Input::From => "--from",
        Input::To => "--to",
        Input::Centre => "--at",
        Input::Trajectory => "--filter",
        Input::Through => "--through",
        Input::Out => "--out",
        Input::TrainSize => "--train-size",
        Input::TestSize => "--test-size",
        Input::SampleSeed => "--sample-seed",
        Input::Bn => "--bn",
        Input::ChunkSize => "--chunk-size",
        Input::Points => "--points",
        Input::Margin => "--margin",
        Input::Files => "--from",
        Input::Run => "--run",
        other => other.name(),
    }
}

/// A settings check of a library (e.g. `SpectrumConfig::validate("")`) that
/// names a field (`lanczos_steps`), naming the flag that sets it instead
/// (`--lanczos-steps`: the commands' flags are their fields in kebab case).
pub fn field_as_flag(e: ExperimentError) -> ExperimentError {
    match e {
        ExperimentError::Config { key, reason } => ExperimentError::Config {
            key: format!("--{}", key.replace('_', "-")),
            reason,
        },
        other => other,
    }
}

/// [`flag`] for the commands whose training images are `--sample`
/// (`landscape hessian`, `embed`).
pub fn sample_flag(input: Input) -> &'static str {
    match input {
        Input::TrainSize => "--sample",
        other => flag(other),
    }
}

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use landscape_probe::hessian::SpectrumConfig;

    #[test]
    fn a_spectrum_setting_is_named_by_its_flag() {
        let bad = SpectrumConfig {
            lanczos_steps: 3,
            top_k: 5,
            ..SpectrumConfig::default()
        };
        let e = bad.validate("").map_err(field_as_flag).unwrap_err();
        assert!(e.to_string().contains("`--lanczos-steps`"), "{e}");
    }

    #[test]
    fn the_sample_commands_name_the_training_images_by_sample() {
        assert_eq!(flag(Input::TrainSize), "--train-size");
        assert_eq!(sample_flag(Input::TrainSize), "--sample");
        assert_eq!(sample_flag(Input::Centre), "--at");
    }
}
