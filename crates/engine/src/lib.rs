//! The experiment engine of `landscape`: everything an experiment needs except
//! its own protocol and findings, so that each figure of the paper (and each
//! method beside it) is one config file and one small module, and every probe
//! of stored snapshots shares the same data, evaluation and provenance.
//!
//! * [`config`]: experiment files as one `[base]` table plus per-scale
//!   overrides (`smoke`, `quick`, `medium`, `paper`), unknown keys refused,
//!   every scale validated before anything runs;
//! * [`data`]: CIFAR-10 subsets as device tensors, with their identity (CRC32
//!   of indices and labels) for provenance;
//! * [`identity`]: typed run identities (main, branch, averaged, stage/run,
//!   ...) and origins (init, trained, perturbed, interpolated), stored in
//!   every snapshot;
//! * [`provenance`]: the fingerprint of everything that determines the
//!   results, `run.json`, and refusing to resume a folder made by another
//!   configuration;
//! * [`eval`]: one evaluator for any weights (BN policy explicit), stored or not;
//! * [`recorder`]: resumable trajectories (SGD with momentum, BGD, phases),
//!   perturbed and interpolated models, optimiser state saved with each
//!   snapshot so a killed run resumes bit-identically on the CPU (closely on a GPU);
//! * [`analysis`]: points, layer MDS, the shared points CSV, distances, verdicts;
//! * [`plot`]: labelled MDS panels with hover tooltips, curves;
//! * [`experiment`]: the [`experiment::Experiment`] trait every experiment
//!   implements, its report, and the steps all share (config loading,
//!   `summary.json`, the standard files);
//! * [`session`]: the start of every run (threads, device, data, checks, `run.json`).
//!
//! The paper's experiments are built on it in `landscape-figures`; the probes
//! of stored snapshots (lines, planes, barriers, PCA, Hessian, curvature,
//! imports) in `landscape-probe`.
//!
//! What is reproduced and how it deviates from the paper: `docs/protocols.md`;
//! what is bit-identical and what is not: `docs/reproducibility.md`.
pub mod analysis;
pub mod config;
pub mod data;
mod error;
pub mod eval;
pub mod experiment;
pub mod identity;
pub mod plot;
pub mod provenance;
pub mod recorder;
pub mod session;

pub use error::ExperimentError;
