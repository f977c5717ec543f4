//! The comparison the paper implies but does not draw: the test error of the
//! solution SGD finds against the one full-batch gradient descent (BGD) finds,
//! from the same initialisation (protocol and deviations:
//! `docs/protocols.md`). The paper quotes about 32% (SGD) and 40% (BGD) test
//! error on CIFAR-10 (caption of Figures 4 and 14).
//!
//! Both trajectories start from the same seeded initial weights; each trains
//! until its training error reaches the configured (near) zero, or for at most
//! its configured number of epochs. The stopping rule is checked on the stored
//! evaluation of every epoch ([`Recorder::trajectory_until`]), so a resumed
//! run stops at the same epoch.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use landscape_net::{BgdConfig, NetConfig, Phase, SgdConfig};
use landscape_trajectory::SnapshotId;
use serde::{Deserialize, Serialize};

use super::fig2::{epoch_rows, write_curves_csv, EpochRow};
use crate::Report;
use landscape_engine::analysis::{Finding, Verdict};
use landscape_engine::config::{self, ensure_range, Validate};
use landscape_engine::data::DataConfig;
use landscape_engine::eval::{EvalConfig, Metrics};
use landscape_engine::experiment::{self, Experiment, SummaryHead};
use landscape_engine::identity::RunId;
use landscape_engine::plot;
use landscape_engine::recorder::{self, Divergence, Recorder};
use landscape_engine::session::{self, RunOptions, Session, SessionSpec};
use landscape_engine::ExperimentError;

/// The paper's test error of SGD solutions (percent, all of CIFAR-10).
pub const PAPER_SGD: f64 = 32.0;
/// The paper's test error of BGD solutions.
pub const PAPER_BGD: f64 = 40.0;

/// What counts as "generalises better" (analysis only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// BGD's final test error must exceed SGD's by at least this (percentage points).
    pub test_margin: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { test_margin: 2.0 }
    }
}

/// One scale of the experiment (`experiments/sgd-vs-bgd.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgdVsBgdConfig {
    /// Seed of the (shared) initialisation and of the SGD data order.
    pub seed: u64,
    /// Which images.
    #[serde(default)]
    pub data: DataConfig,
    /// The network.
    #[serde(default)]
    pub net: NetConfig,
    /// SGD settings.
    #[serde(default)]
    pub sgd: SgdConfig,
    /// Most SGD epochs.
    pub sgd_epochs: u32,
    /// BGD settings.
    pub bgd: BgdConfig,
    /// Most BGD epochs (= steps).
    pub bgd_epochs: u32,
    /// A trajectory stops at the first epoch whose training error (percent)
    /// is at most this.
    pub stop_at_train_error: f64,
    /// Evaluation.
    #[serde(default)]
    pub eval: EvalConfig,
    /// Verdict thresholds (analysis).
    #[serde(default)]
    pub thresholds: Thresholds,
}

/// Config keys that change only the analysis, not the stored models.
pub const ANALYSIS_ONLY: &[&str] = &["thresholds"];

impl SgdVsBgdConfig {
    fn sgd_phase(&self, epochs: u32) -> Phase {
        Phase::Sgd {
            epochs,
            sgd: self.sgd.clone(),
        }
    }

    fn bgd_phase(&self, epochs: u32) -> Phase {
        Phase::Bgd {
            epochs,
            bgd: self.bgd.clone(),
        }
    }
}

impl Validate for SgdVsBgdConfig {
    fn validate(&self, p: &str) -> Result<(), ExperimentError> {
        config::validate_setup(p, &self.data, Some(&self.net), &self.eval)?;
        config::ensure_epochs(
            p,
            &[
                ("sgd_epochs", self.sgd_epochs),
                ("bgd_epochs", self.bgd_epochs),
            ],
        )?;
        self.sgd_phase(self.sgd_epochs).validate(p)?;
        self.bgd_phase(self.bgd_epochs).validate(p)?;
        ensure_range(
            self.stop_at_train_error,
            0.0,
            100.0,
            &format!("{p}.stop_at_train_error"),
        )?;
        ensure_range(
            self.thresholds.test_margin,
            0.0,
            100.0,
            &format!("{p}.thresholds.test_margin"),
        )
    }
}

/// The bundled `experiments/sgd-vs-bgd.toml`.
pub const BUNDLED: &str = include_str!("../../../experiments/sgd-vs-bgd.toml");

/// The experiment, as the registry (`crate::EXPERIMENTS`) knows it.
pub struct SgdVsBgd;

impl Experiment for SgdVsBgd {
    fn name(&self) -> &'static str {
        "sgd-vs-bgd"
    }

    fn description(&self) -> &'static str {
        "test error of the SGD and BGD solutions from one initialisation (the paper's 32% vs 40%)"
    }

    fn bundled_config(&self) -> &'static str {
        BUNDLED
    }

    fn analysis_only(&self) -> &'static [&'static str] {
        ANALYSIS_ONLY
    }

    fn run(&self, opts: &RunOptions) -> Result<Report> {
        run(opts).map(|s| report(&s, &opts.out))
    }
}

/// Loads the experiment file (bundled or `opts.config_file`) and picks the scale.
pub fn load_config(opts: &RunOptions) -> Result<SgdVsBgdConfig> {
    experiment::load_config(&SgdVsBgd, opts)
}

/// Why a trajectory stopped.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Stop {
    /// Its training error reached the threshold at this epoch.
    ReachedZero {
        /// The epoch.
        epoch: u32,
    },
    /// It trained the most epochs allowed without reaching it.
    MaxEpochs {
        /// The last epoch.
        epoch: u32,
    },
    /// Its loss became non-finite; the epochs before are stored.
    Diverged(Divergence),
}

/// One trajectory's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    /// `sgd` or `bgd`.
    pub name: String,
    /// The schedule, in words.
    pub schedule: String,
    /// Why it stopped.
    pub stop: Stop,
    /// The epoch its numbers are from (the last stored one).
    pub final_epoch: u32,
    /// Gradient steps taken up to `final_epoch`.
    pub steps: u64,
    /// The stored metrics of that epoch.
    pub last: Metrics,
    /// The paper's test error for this optimiser.
    pub paper_test_error: f64,
}

impl Outcome {
    /// Reached the training-error threshold.
    pub fn fitted(&self) -> bool {
        matches!(self.stop, Stop::ReachedZero { .. })
    }

    /// Trained without divergence.
    pub fn finite(&self) -> bool {
        !matches!(self.stop, Stop::Diverged(_))
    }

    /// The stop reason as printed.
    pub fn stop_text(&self) -> String {
        match self.stop {
            Stop::ReachedZero { epoch } => format!("reached the threshold at epoch {epoch}"),
            Stop::MaxEpochs { epoch } => format!("stopped at the last epoch ({epoch})"),
            Stop::Diverged(d) => format!("diverged at epoch {} (step {})", d.epoch, d.step),
        }
    }
}

/// `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The experiment, scale and BN evaluation policy (of every number here).
    #[serde(flatten)]
    pub head: SummaryHead,
    /// Training images.
    pub train_images: usize,
    /// The stopping threshold on training error (percent).
    pub stop_at_train_error: f64,
    /// The SGD trajectory.
    pub sgd: Outcome,
    /// The BGD trajectory.
    pub bgd: Outcome,
    /// The verdicts.
    pub findings: Vec<Finding>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Trains `run` from `rec.init(seed)` for at most `max` epochs of `phase`,
/// stopping at the first epoch whose stored training error is at most `stop`
/// (or where it diverges).
pub fn train_until(
    rec: &Recorder<'_>,
    run: &RunId,
    phase: Phase,
    stop: f64,
    seed: u64,
) -> Result<(BTreeMap<u32, SnapshotId>, Stop)> {
    let ids = match rec.trajectory_until(
        run,
        0,
        &[phase],
        seed,
        || rec.init(seed),
        |m| m.train_error <= stop,
    ) {
        Ok(ids) => ids,
        Err(e) => {
            return match recorder::divergence(&e) {
                Some(d) => {
                    tracing::warn!(run = %run.run_name(), epoch = d.epoch, step = d.step, "training diverged; recorded as diverged");
                    Ok((rec.existing(run), Stop::Diverged(d)))
                }
                None => Err(e),
            }
        }
    };
    let (&last, &id) = ids
        .iter()
        .next_back()
        .with_context(|| format!("`{}` has no snapshot", run.run_name()))?;
    let stop = if rec.metrics(id)?.train_error <= stop {
        Stop::ReachedZero { epoch: last }
    } else {
        Stop::MaxEpochs { epoch: last }
    };
    Ok((ids, stop))
}

/// Runs (or resumes) the experiment and writes every output into `opts.out`.
pub fn run(opts: &RunOptions) -> Result<Summary> {
    let cfg = load_config(opts)?;
    let mut s = Session::start(
        opts,
        &SessionSpec {
            experiment: "sgd-vs-bgd",
            config: &cfg,
            seed: cfg.seed,
            data: &cfg.data,
            net: &cfg.net,
            analysis_only: ANALYSIS_ONLY,
            outputs: &["sgd-vs-bgd"],
        },
    )?;
    let rec = session::recorder(
        &s.out,
        &s.data,
        &cfg.eval,
        &cfg.net,
        s.device,
        &s.fingerprint,
    )?;
    let n = s.data.train_len() as u64;
    let sgd_run = RunId::Named { name: "sgd".into() };
    let bgd_run = RunId::Named { name: "bgd".into() };
    let (sgd_ids, sgd_stop) = s.log.phase("train_sgd", || {
        train_until(
            &rec,
            &sgd_run,
            cfg.sgd_phase(cfg.sgd_epochs),
            cfg.stop_at_train_error,
            cfg.seed,
        )
    })?;
    let (bgd_ids, bgd_stop) = s.log.phase("train_bgd", || {
        train_until(
            &rec,
            &bgd_run,
            cfg.bgd_phase(cfg.bgd_epochs),
            cfg.stop_at_train_error,
            cfg.seed,
        )
    })?;
    let store = rec.store();
    let mut curves = BTreeMap::new();
    curves.insert("sgd".to_owned(), epoch_rows(&store, &sgd_ids)?);
    curves.insert("bgd".to_owned(), epoch_rows(&store, &bgd_ids)?);
    let batch = cfg.sgd.batch_size.max(1) as u64;
    let outcome = |name: &str,
                   schedule: String,
                   stop: Stop,
                   steps_per_epoch: u64,
                   paper: f64|
     -> Result<Outcome> {
        let last = curves
            .get(name)
            .and_then(|c| c.last())
            .with_context(|| format!("`{name}` has no stored epoch"))?;
        Ok(Outcome {
            name: name.to_owned(),
            schedule,
            stop,
            final_epoch: last.epoch,
            steps: u64::from(last.epoch) * steps_per_epoch,
            last: last.metrics,
            paper_test_error: paper,
        })
    };
    let sgd = outcome(
        "sgd",
        format!("SGD, batch {}, lr {}", cfg.sgd.batch_size, cfg.sgd.lr),
        sgd_stop,
        n.div_ceil(batch),
        PAPER_SGD,
    )?;
    let bgd = outcome(
        "bgd",
        format!("BGD (full batch), lr {}", cfg.bgd.lr),
        bgd_stop,
        1,
        PAPER_BGD,
    )?;
    let dir = s.out.join("sgd-vs-bgd");
    std::fs::create_dir_all(&dir)?;
    let mut files = vec![write_curves_csv(&dir.join("curves.csv"), &curves)?];
    files.extend(draw(&dir, &curves, &sgd, &bgd, s.data.train_len())?);
    let summary = Summary {
        head: SummaryHead::new("sgd-vs-bgd", opts, &cfg.eval),
        train_images: s.data.train_len(),
        stop_at_train_error: cfg.stop_at_train_error,
        findings: findings(&cfg.thresholds, cfg.stop_at_train_error, &sgd, &bgd),
        sgd,
        bgd,
        files,
    };
    drop(store);
    experiment::finish(&s.out, &mut s.log, &summary, rec.written())?;
    Ok(summary)
}

fn draw(
    dir: &Path,
    curves: &BTreeMap<String, Vec<EpochRow>>,
    sgd: &Outcome,
    bgd: &Outcome,
    n: usize,
) -> Result<Vec<PathBuf>> {
    let runs = [(sgd, 1usize), (bgd, 2usize)];
    let series = |name: &str, f: fn(&Metrics) -> f64| -> Vec<(f64, f64)> {
        curves
            .get(name)
            .map(|rs| {
                rs.iter()
                    .map(|e| (f64::from(e.epoch), f(&e.metrics)))
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .collect()
            })
            .unwrap_or_default()
    };
    let last_epoch = f64::from(sgd.final_epoch.max(bgd.final_epoch).max(1));
    let panel = |title: &str, y: &str, f: fn(&Metrics) -> f64, paper: bool| {
        let mut c: Vec<plot::Curve> = runs
            .iter()
            .map(|(o, col)| plot::Curve {
                name: format!("{} ({})", o.schedule, o.stop_text()),
                color: plot::palette(*col),
                points: series(&o.name, f),
            })
            .collect();
        if paper {
            for (o, col) in runs {
                c.push(plot::Curve {
                    name: format!(
                        "paper, {}: ~{}% (all 50,000 images)",
                        o.name.to_uppercase(),
                        o.paper_test_error
                    ),
                    color: plot::palette(col + 4),
                    points: vec![(0.0, o.paper_test_error), (last_epoch, o.paper_test_error)],
                });
            }
        }
        plot::LinePanel {
            title: title.to_owned(),
            x_label: "epoch (SGD: N/batch steps; BGD: 1 step)".to_owned(),
            y_label: y.to_owned(),
            curves: c,
        }
    };
    plot::line_panels(
        &dir.join("sgd-vs-bgd"),
        &format!(
            "SGD vs BGD from the same initialisation, {n} training images: test error {:.1}% vs {:.1}%",
            sgd.last.test_error, bgd.last.test_error
        ),
        &[
            panel("training error", "error %", |m| m.train_error, false),
            panel("test error", "error %", |m| m.test_error, true),
            panel("training loss", "loss", |m| m.train_loss, false),
            panel("test loss", "loss", |m| m.test_loss, false),
        ],
        2,
        (1500, 1100),
    )
}

/// The comparison, judged. Never bent to pass.
pub fn findings(t: &Thresholds, stop_at: f64, sgd: &Outcome, bgd: &Outcome) -> Vec<Finding> {
    let one = |o: &Outcome| {
        serde_json::json!({
            "schedule": o.schedule,
            "stop": o.stop_text(),
            "final_epoch": o.final_epoch,
            "steps": o.steps,
            "final_train_error": o.last.train_error,
            "final_test_error": o.last.test_error,
        })
    };
    let gap = bgd.last.test_error - sgd.last.test_error;
    vec![
        Finding {
            id: "both_fit".into(),
            claim: "both optimisers reach (near) zero training error from the same initialisation (the paper compares solutions)".into(),
            verdict: Verdict::from_bool(sgd.fitted() && bgd.fitted()),
            threshold: serde_json::json!({ "stop_at_train_error": stop_at }),
            numbers: serde_json::json!({ "sgd": one(sgd), "bgd": one(bgd) }),
        },
        Finding {
            id: "test_errors".into(),
            claim: "test error of each solution next to the paper's (about 32% for SGD, 40% for BGD, on all of CIFAR-10)".into(),
            verdict: Verdict::Reported,
            threshold: serde_json::Value::Null,
            numbers: serde_json::json!({
                "sgd": sgd.last.test_error,
                "bgd": bgd.last.test_error,
                "paper_sgd": PAPER_SGD,
                "paper_bgd": PAPER_BGD,
            }),
        },
        Finding {
            id: "sgd_generalises_better".into(),
            claim: "SGD's solution generalises better than BGD's: BGD's final test error exceeds SGD's by at least the margin (paper: 40% vs 32%, 8 points)".into(),
            verdict: Verdict::from_bool(sgd.finite() && bgd.finite() && gap >= t.test_margin),
            threshold: serde_json::json!({ "test_margin": t.test_margin }),
            numbers: serde_json::json!({
                "bgd_minus_sgd": gap,
                "paper_bgd_minus_sgd": PAPER_BGD - PAPER_SGD,
                "sgd_diverged": !sgd.finite(),
                "bgd_diverged": !bgd.finite(),
            }),
        },
    ]
}

/// The terminal report of a finished run.
pub fn report(s: &Summary, out: &Path) -> super::Report {
    let mut files = s.files.clone();
    files.extend(experiment::standard_files(out, [experiment::STORE]));
    let line = |o: &Outcome| {
        format!(
            "{}: {}; epoch {} ({} steps): training error {:.2}%, test error {:.2}% (paper ~{}%)",
            o.schedule,
            o.stop_text(),
            o.final_epoch,
            o.steps,
            o.last.train_error,
            o.last.test_error,
            o.paper_test_error
        )
    };
    super::Report {
        experiment: s.head.experiment.clone(),
        headline: vec![
            format!(
                "{} training images, from the same initialisation (BN: {}):",
                s.train_images, s.head.bn_eval
            ),
            line(&s.sgd),
            line(&s.bgd),
        ],
        sections: vec![super::Section {
            title: "SGD vs BGD".into(),
            findings: s.findings.clone(),
        }],
        files,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use landscape_engine::config::{self, Scale};

    fn bundled() -> config::ExperimentFile<SgdVsBgdConfig> {
        config::parse::<SgdVsBgdConfig>(BUNDLED, "bundled").unwrap()
    }

    #[test]
    fn paper_scale_is_the_protocol() {
        let file = bundled();
        let p = file.scale(Scale::Paper);
        assert_eq!(p.data.train_size, None);
        assert_eq!(p.net, NetConfig::paper());
        assert_eq!(
            (p.sgd.batch_size, p.sgd.lr, p.sgd.momentum),
            (100, 0.01, 0.0)
        );
        assert_eq!(p.bgd.ghost_batch, None, "BGD is one batch of all images");
        let fig14 = super::super::fig14::load_config(&RunOptions {
            scale: Scale::Paper,
            out: PathBuf::new(),
            device: landscape_net::DeviceChoice::Cpu,
            data_dir: None,
            config_file: None,
            threads: None,
            fresh: false,
            command: Vec::new(),
        })
        .unwrap();
        for s in Scale::ALL {
            let c = file.scale(s);
            assert_eq!(c.sgd, p.sgd, "{s}");
            assert_eq!(
                c.bgd.lr, fig14.bgd.lr,
                "{s}: BGD's learning rate is fig14's"
            );
        }
    }

    fn outcome(name: &str, test: f64, stop: Stop) -> Outcome {
        Outcome {
            name: name.into(),
            schedule: name.into(),
            stop,
            final_epoch: 30,
            steps: 30,
            last: Metrics {
                train_loss: 0.01,
                train_error: 0.5,
                test_loss: 2.0,
                test_error: test,
            },
            paper_test_error: 0.0,
        }
    }

    fn verdicts(sgd: &Outcome, bgd: &Outcome) -> BTreeMap<String, Verdict> {
        findings(&Thresholds::default(), 1.0, sgd, bgd)
            .into_iter()
            .map(|f| (f.id, f.verdict))
            .collect()
    }

    const Z: Stop = Stop::ReachedZero { epoch: 30 };

    #[test]
    fn verdicts_hold_on_paper_like_numbers() {
        let v = verdicts(&outcome("sgd", 32.0, Z), &outcome("bgd", 40.0, Z));
        assert_eq!(v["both_fit"], Verdict::Holds);
        assert_eq!(v["test_errors"], Verdict::Reported);
        assert_eq!(v["sgd_generalises_better"], Verdict::Holds);
        // Exactly the margin holds.
        let v = verdicts(&outcome("sgd", 38.0, Z), &outcome("bgd", 40.0, Z));
        assert_eq!(v["sgd_generalises_better"], Verdict::Holds);
    }

    #[test]
    fn verdicts_fail_on_contrary_numbers() {
        // BGD better, equal, or better by less than the margin.
        for (s, b) in [(40.0, 32.0), (35.0, 35.0), (39.0, 40.0)] {
            let v = verdicts(&outcome("sgd", s, Z), &outcome("bgd", b, Z));
            assert_eq!(v["sgd_generalises_better"], Verdict::DoesNotHold, "{s} {b}");
        }
        let v = verdicts(
            &outcome("sgd", 32.0, Z),
            &outcome("bgd", 40.0, Stop::MaxEpochs { epoch: 30 }),
        );
        assert_eq!(v["both_fit"], Verdict::DoesNotHold);
        // A diverged trajectory's last test error is not a solution's.
        let d = Stop::Diverged(Divergence {
            epoch: 3,
            step: 0,
            loss: f64::NAN,
        });
        let v = verdicts(&outcome("sgd", 32.0, Z), &outcome("bgd", 90.0, d));
        assert_eq!(v["both_fit"], Verdict::DoesNotHold);
        assert_eq!(v["sgd_generalises_better"], Verdict::DoesNotHold);
    }

    #[test]
    fn bundled_scales_validate_and_edits_are_caught() {
        bundled();
        let edit =
            |from: &str, to: &str| crate::testing::edit_error::<SgdVsBgdConfig>(BUNDLED, from, to);
        let e = edit("stop_at_train_error = 1.0", "stop_at_train_error = -1.0");
        assert!(e.contains("smoke.stop_at_train_error"), "{e}");
        let e = edit("test_margin = 2.0", "test_margin = nan");
        assert!(e.contains("thresholds.test_margin"), "{e}");
        let e = edit("lr = 0.01", "lr = 0.0");
        assert!(e.contains("sgd.lr"), "{e}");
        let e = edit("seed = 0", "seed = 0\nsead = 1");
        assert!(e.contains("sead"), "{e}");
    }
}
