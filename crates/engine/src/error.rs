//! The errors a caller may want to tell apart. Everything else travels as
//! `anyhow::Error` with its context chain; these can be found in one with
//! `err.downcast_ref::<ExperimentError>()`.
use std::path::PathBuf;

/// Errors of the experiment engine that callers act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExperimentError {
    /// A configuration value is out of range or inconsistent.
    #[error("`{key}`: {reason}")]
    Config {
        /// The key, as written in the experiment file (`quick.branch_epochs[2]`).
        key: String,
        /// What was expected.
        reason: String,
    },
    /// The output folder holds results made by another configuration (or
    /// other data, network or code version): resuming would mix them up.
    #[error(
        "{out} holds results of a different configuration; nothing was changed.\n{}\n\
         Either write to another output folder, or start over in this one with a fresh run \
         (which deletes its store and results).",
        differences.iter().map(|d| format!("  {d}")).collect::<Vec<_>>().join("\n")
    )]
    FingerprintMismatch {
        /// The output folder.
        out: PathBuf,
        /// One line per key that differs: `key: stored X, now Y`.
        differences: Vec<String>,
    },
    /// A stored snapshot does not fit the plan (wrong epoch range or run).
    #[error("store {store}: {reason}")]
    Store {
        /// The store folder.
        store: PathBuf,
        /// What does not fit.
        reason: String,
    },
}
