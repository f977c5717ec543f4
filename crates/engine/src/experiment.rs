//! What an experiment is to everything around it: the [`Experiment`] trait
//! (its name, description, bundled config, analysis-only keys, `run` and
//! `report`), the [`Report`] it ends with, and the steps every experiment
//! shares: loading its config ([`load_config`], whose checks start with
//! [`config::validate_setup`]), the head of `summary.json`
//! ([`SummaryHead`]), writing it ([`finish`]) and listing the standard files
//! ([`standard_files`]).
//!
//! The paper's experiments implement it in `landscape-figures`, whose
//! registry is the one list the CLI, xtask, the index page and the tests read.
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::analysis::Finding;
use crate::config::{self, Validate};
use crate::eval::EvalConfig;
use crate::provenance::{write_json, RunLog};
use crate::session::RunOptions;

/// The file every finished experiment writes beside `run.json`: its [`Report`].
pub const REPORT_JSON: &str = "report.json";
/// The file every experiment writes with its numbers (see [`finish`]).
pub const SUMMARY_JSON: &str = "summary.json";
/// The provenance file every run writes (see [`crate::provenance::RunLog`]).
pub const RUN_JSON: &str = "run.json";
/// The folder of stored snapshots every run records into.
pub const STORE: &str = "store";

/// What a finished experiment reports on the terminal (and, as
/// `report.json` in its output folder, to the index page).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// The experiment's name.
    pub experiment: String,
    /// One-line facts printed first (final errors, ...).
    pub headline: Vec<String>,
    /// Verdict tables, one per variant or comparison.
    pub sections: Vec<Section>,
    /// Every file written.
    pub files: Vec<PathBuf>,
}

/// One verdict table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Section {
    /// Its title.
    pub title: String,
    /// Its findings.
    pub findings: Vec<Finding>,
}

/// The first fields of every experiment's `summary.json` (flattened into
/// it, in this order): which experiment, at which scale, evaluated with
/// which BN policy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SummaryHead {
    /// The experiment's name (`fig14`).
    pub experiment: String,
    /// The scale.
    pub scale: String,
    /// The BN evaluation policy.
    pub bn_eval: String,
}

impl SummaryHead {
    /// The head of `experiment`'s summary of a run with `opts`, evaluated
    /// with `eval`.
    pub fn new(experiment: &str, opts: &RunOptions, eval: &EvalConfig) -> Self {
        SummaryHead {
            experiment: experiment.to_owned(),
            scale: opts.scale.to_string(),
            bn_eval: eval.bn.as_str().to_owned(),
        }
    }
}

/// One experiment `landscape reproduce` can run.
///
/// An implementation is a unit struct in its module beside the module's
/// `run` and `report`; registering it (one line in `landscape-figures`'
/// registry) is all it takes to appear in `landscape reproduce --help`,
/// `reproduce all`, xtask and the index page.
pub trait Experiment: Sync {
    /// Its name on the command line and in folder names (`fig14`).
    fn name(&self) -> &'static str;
    /// One line on what it reproduces.
    fn description(&self) -> &'static str;
    /// The text of its bundled experiment file (`experiments/<name>.toml`).
    fn bundled_config(&self) -> &'static str;
    /// Config keys that change only the analysis (see
    /// [`crate::provenance::Fingerprint::new`]).
    fn analysis_only(&self) -> &'static [&'static str];
    /// Runs (or resumes) the experiment into `opts.out`, writing every
    /// output and `summary.json`, and returns its [`Report`] (the module's
    /// `report` of the summary `run` wrote).
    fn run(&self, opts: &RunOptions) -> Result<Report>;
}

/// Runs `experiment` with `opts`, then writes its [`Report`] as
/// `report.json` into `opts.out` (a `fresh` run deletes the previous one
/// first, with the rest of the folder's results: see
/// [`crate::provenance::prepare_output`]).
pub fn run_and_report(experiment: &dyn Experiment, opts: &RunOptions) -> Result<Report> {
    let report = experiment.run(opts)?;
    write_json(&opts.out.join(REPORT_JSON), &report)?;
    Ok(report)
}

/// Loads the experiment file (`opts.config_file`, else the experiment's
/// bundled one), validates every scale and returns the one of `opts.scale`.
pub fn load_config<C>(experiment: &dyn Experiment, opts: &RunOptions) -> Result<C>
where
    C: DeserializeOwned + Validate + Clone,
{
    let file = match &opts.config_file {
        Some(path) => config::load::<C>(path)?,
        None => config::parse::<C>(
            experiment.bundled_config(),
            &bundled_origin(experiment.name()),
        )?,
    };
    Ok(file.scale(opts.scale).clone())
}

/// How a bundled experiment file is named in errors:
/// `experiments/fig14.toml (bundled)`.
pub fn bundled_origin(name: &str) -> String {
    format!("experiments/{name}.toml (bundled)")
}

/// Ends a run: writes `summary` as `summary.json` into the output folder
/// `out`, then finishes its `run.json` (`log`, a [`crate::session::Session`]'s) with the
/// number of snapshots written.
pub fn finish<S: Serialize>(
    out: &Path,
    log: &mut RunLog,
    summary: &S,
    written: usize,
) -> Result<()> {
    write_json(&out.join(SUMMARY_JSON), summary)?;
    log.finish(written)
}

/// The files every run writes besides its own (`summary.json`, `run.json`),
/// then the given store folders, all under `out`, for a [`Report`].
pub fn standard_files<'a>(out: &Path, stores: impl IntoIterator<Item = &'a str>) -> Vec<PathBuf> {
    [SUMMARY_JSON, RUN_JSON]
        .into_iter()
        .chain(stores)
        .map(|f| out.join(f))
        .collect()
}
