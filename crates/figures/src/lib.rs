//! The paper's experiments, each a config under `experiments/` and a module
//! here: its plan (which trajectories), its findings and its panels, and an
//! [`Experiment`] that [`EXPERIMENTS`] lists: the one registry the CLI,
//! xtask, the index page ([`index`]) and the tests read.
//!
//! Built on `landscape-engine` (configs, recorder, analysis, plots, sessions)
//! and `landscape-probe` (barriers, planes).
use anyhow::Result;

pub use landscape_engine::experiment::{Experiment, Report, Section, REPORT_JSON};
use landscape_engine::session::RunOptions;

pub mod fig14;
pub mod fig2;
pub mod fig3;
pub mod fig40;
pub mod fig41;
pub mod fig5;
pub mod index;
pub mod li2018;
pub mod retrain;
pub mod sgd_vs_bgd;

/// Helpers of the experiments' config tests.
#[cfg(test)]
pub(crate) mod testing {
    use landscape_engine::config::{parse, Validate};
    use serde::de::DeserializeOwned;
    use serde::Serialize;

    /// The error of parsing `text` with its first `from` replaced by `to`
    /// (panics if the edit does not apply or the file parses).
    pub(crate) fn edit_error<C>(text: &str, from: &str, to: &str) -> String
    where
        C: DeserializeOwned + Validate + Serialize + Clone,
    {
        let bad = text.replacen(from, to, 1);
        assert_ne!(bad, text, "edit `{from}` did not apply");
        match parse::<C>(&bad, "x") {
            Ok(_) => panic!("`{from}` -> `{to}` was accepted"),
            Err(e) => format!("{e:#}"),
        }
    }
}

/// The paper's experiments, in the order `reproduce all` runs them: the one
/// list the CLI (`reproduce --help`, `reproduce all`, `reproduce --list`),
/// xtask, the index page and the tests read. Adding an experiment is its
/// module, its `experiments/<name>.toml` and one line here.
pub const EXPERIMENTS: &[&dyn Experiment] = &[
    &fig14::Fig14,
    &fig3::Experiment::Fig3,
    &fig3::Experiment::RandomLabels,
    &fig2::Fig2,
    &fig5::Fig5,
    &fig41::Fig41,
    &fig40::Fig40,
    &sgd_vs_bgd::SgdVsBgd,
    &li2018::Li2018,
];

/// A list of experiments: the paper's ([`Registry::paper`]), or those plus
/// more (a program built on this crate adds its own with [`Registry::with`]).
#[derive(Clone)]
pub struct Registry {
    experiments: Vec<&'static dyn Experiment>,
}

impl Registry {
    /// The paper's experiments ([`EXPERIMENTS`]).
    pub fn paper() -> Registry {
        Registry {
            experiments: EXPERIMENTS.to_vec(),
        }
    }

    /// This list with `experiment` added at the end.
    pub fn with(mut self, experiment: &'static dyn Experiment) -> Registry {
        self.experiments.push(experiment);
        self
    }

    /// Every experiment, in order.
    pub fn experiments(&self) -> &[&'static dyn Experiment] {
        &self.experiments
    }

    /// Every name, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.experiments.iter().map(|e| e.name()).collect()
    }

    /// The experiment called `name`.
    pub fn get(&self, name: &str) -> Result<&'static dyn Experiment> {
        self.experiments
            .iter()
            .find(|e| e.name() == name)
            .copied()
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown experiment `{name}`; known: {}",
                    self.names().join(", ")
                )
            })
    }

    /// Runs (or resumes) experiment `name` with `opts`, then writes its
    /// [`Report`] as `report.json` into `opts.out`.
    pub fn run(&self, name: &str, opts: &RunOptions) -> Result<Report> {
        landscape_engine::experiment::run_and_report(self.get(name)?, opts)
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::paper()
    }
}
