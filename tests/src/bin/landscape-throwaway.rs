//! The `landscape` tool with one more experiment than the paper's: a
//! throwaway one this file defines and adds through the registry alone
//! (`Registry::paper().with(..)`), nothing else. `tests/tests/index.rs` runs it
//! to check that such an experiment shows up in `landscape reproduce --help`,
//! `reproduce --list`, `reproduce all` and the index page.
#![allow(clippy::print_stdout)]
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use landscape_engine::config::{ensure, Validate};
use landscape_engine::data::DataConfig;
use landscape_engine::experiment::{self, Experiment, Report};
use landscape_engine::plot::{self, Curve, LinePanel};
use landscape_engine::session::{RunOptions, Session, SessionSpec};
use landscape_engine::ExperimentError;
use landscape_figures::Registry;
use landscape_net::NetConfig;
use serde::{Deserialize, Serialize};

// The CLI's own source, so that this binary is the real tool.
#[path = "../../../crates/cli/src/main.rs"]
#[allow(dead_code)]
mod cli;

const BUNDLED: &str = r#"
experiment = "throwaway"
description = "a test's own experiment: the sizes of its data sets, drawn"

[base]
seed = 7
data = { train_size = 60, test_size = 40 }
"#;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThrowawayConfig {
    seed: u64,
    data: DataConfig,
}

impl Validate for ThrowawayConfig {
    fn validate(&self, prefix: &str) -> Result<(), ExperimentError> {
        self.data.validate(&format!("{prefix}.data"))?;
        ensure(
            self.seed < 1000,
            &format!("{prefix}.seed"),
            "must be below 1000",
        )
    }
}

#[derive(Serialize)]
struct Summary {
    experiment: &'static str,
    train: usize,
    test: usize,
    files: Vec<PathBuf>,
}

struct Throwaway;

impl Experiment for Throwaway {
    fn name(&self) -> &'static str {
        "throwaway"
    }

    fn description(&self) -> &'static str {
        "a test's own experiment, added through the registry alone"
    }

    fn bundled_config(&self) -> &'static str {
        BUNDLED
    }

    fn analysis_only(&self) -> &'static [&'static str] {
        &[]
    }

    fn run(&self, opts: &RunOptions) -> Result<Report> {
        let cfg: ThrowawayConfig = experiment::load_config(self, opts)?;
        let net = NetConfig::paper();
        let mut s = Session::start(
            opts,
            &SessionSpec {
                experiment: self.name(),
                config: &cfg,
                seed: cfg.seed,
                data: &cfg.data,
                net: &net,
                analysis_only: self.analysis_only(),
                outputs: &["throwaway"],
            },
        )?;
        let (train, test) = (s.data.train_len(), s.data.test_len());
        let dir = s.out.join("throwaway");
        std::fs::create_dir_all(&dir)?;
        let files = plot::line_panels(
            &dir.join("sizes"),
            "data set sizes",
            &[LinePanel {
                title: "images".into(),
                x_label: "set (0: train, 1: test)".into(),
                y_label: "images".into(),
                curves: vec![Curve {
                    name: "images".into(),
                    color: plot::palette(0),
                    points: vec![(0.0, train as f64), (1.0, test as f64)],
                }],
            }],
            1,
            (400, 300),
        )?;
        let summary = Summary {
            experiment: "throwaway",
            train,
            test,
            files,
        };
        experiment::finish(&s.out, &mut s.log, &summary, 0)?;
        Ok(report(&summary, &opts.out))
    }
}

fn report(s: &Summary, out: &Path) -> Report {
    let mut files = s.files.clone();
    files.extend(experiment::standard_files(out, []));
    Report {
        experiment: s.experiment.into(),
        headline: vec![format!("{} training and {} test images", s.train, s.test)],
        sections: Vec::new(),
        files,
    }
}

fn main() -> ExitCode {
    cli::run(&Registry::paper().with(&Throwaway))
}
