//! The paper's experiments, each a config under `experiments/` and a module
//! here: its plan (which trajectories), its findings and its panels. The CLI
//! and xtask reach every one of them through [`run`] by name; [`index`] writes
//! the page that gathers their results.
//!
//! Built on `landscape-engine` (configs, recorder, analysis, plots, sessions)
//! and `landscape-probe` (barriers, planes).
use std::path::PathBuf;

use anyhow::Result;

use landscape_engine::analysis::Finding;
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

/// The experiments `landscape reproduce` knows, with one line each.
pub const FIGURES: &[(&str, &str)] = &[
    (
        "fig14",
        "Figures 4 and 14-17: full-batch GD with branches, averaged models, MDS of the weights",
    ),
    (
        "fig3",
        "Figures 3 and 8-13: SGD in 12 stages of 8 parallel runs, MDS of layers 2 and 5",
    ),
    (
        "random-labels",
        "Section 7: the Figure 3 protocol on random training labels, side by side with true labels",
    ),
    (
        "fig2",
        "Figure 2: the polynomial net against the ReLU net (SGD, a sweep over degrees)",
    ),
    (
        "fig5",
        "Figures 5 and 18-37: perturb SGD and BGD models, retrain 4 times, agreement matrices, interpolation",
    ),
    (
        "fig41",
        "Figures 41-45 (Appendix E): a zero-error model perturbed very little, retrained 4 times",
    ),
    (
        "fig40",
        "Figure 40: validation error against parameter count, widening up to 60x more parameters than images",
    ),
    (
        "sgd-vs-bgd",
        "test error of the SGD and BGD solutions from one initialisation (the paper's 32% vs 40%)",
    ),
    (
        "li2018",
        "Li et al. 2018, Figures 2-3: small- vs large-batch solutions, the 1-D line between them, filter-normalised planes around each",
    ),
];

/// The file every finished experiment writes beside `run.json`: its [`Report`].
pub const REPORT_JSON: &str = "report.json";

/// Runs (or resumes) experiment `figure` with `opts`, then writes its
/// [`Report`] as `report.json` into `opts.out`.
pub fn run(figure: &str, opts: &RunOptions) -> Result<Report> {
    let report = run_only(figure, opts)?;
    landscape_engine::provenance::write_json(&opts.out.join(REPORT_JSON), &report)?;
    Ok(report)
}

/// The one-line description of `figure`, if it is known.
pub fn description(figure: &str) -> Option<&'static str> {
    FIGURES.iter().find(|f| f.0 == figure).map(|f| f.1)
}

fn run_only(figure: &str, opts: &RunOptions) -> Result<Report> {
    match figure {
        "fig14" => fig14::run(opts).map(|s| fig14::report(&s, &opts.out)),
        "fig3" => fig3::run(opts).map(|s| fig3::report(&s, &opts.out)),
        "random-labels" => fig3::run_random_labels(opts).map(|s| fig3::report(&s, &opts.out)),
        "fig2" => fig2::run(opts).map(|s| fig2::report(&s, &opts.out)),
        "fig5" => fig5::run(opts).map(|s| fig5::report(&s, &opts.out)),
        "fig41" => fig41::run(opts).map(|s| fig41::report(&s, &opts.out)),
        "fig40" => fig40::run(opts).map(|s| fig40::report(&s, &opts.out)),
        "sgd-vs-bgd" => sgd_vs_bgd::run(opts).map(|s| sgd_vs_bgd::report(&s, &opts.out)),
        "li2018" => li2018::run(opts).map(|s| li2018::report(&s, &opts.out)),
        other => anyhow::bail!(
            "unknown experiment `{other}`; known: {}",
            FIGURES.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
        ),
    }
}
