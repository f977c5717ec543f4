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
//!
//! With `seeds = S`, seed `k` (`0..S`) trains one more such pair from
//! initialisation (and SGD data-order) seed `seed + k`, stored as its own
//! runs (`sgd`, `bgd` for `k = 0`, `sgd-seed<seed + k>`, `bgd-seed<seed + k>`
//! after). The verdict compares the test errors of the final models image by
//! image on the shared test set ([`PairedDifference`]: a 95% interval over
//! seeds and images), recomputed from the stored final models on every run,
//! so re-running a finished folder re-judges without training.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use landscape_net::{BgdConfig, NetConfig, Phase, SgdConfig};
use landscape_trajectory::SnapshotId;
use serde::{Deserialize, Serialize};

use super::fig2::{epoch_rows, write_curves_csv, EpochRow};
use crate::Report;
use landscape_engine::analysis::paired::PairedDifference;
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
    /// BGD's final test error must exceed SGD's by at least this (percentage
    /// points): judged against the 95% interval of the paired difference
    /// (holds when its lower end is at least this, does not hold when its
    /// upper end is below, undecided otherwise).
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
    /// Pairs of trajectories: pair `k` starts from seed `seed + k`. Left out
    /// of the fingerprint when 1, so a folder made before the key existed
    /// (one pair) still resumes.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub seeds: u32,
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

fn one() -> u32 {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_one(n: &u32) -> bool {
    *n == 1
}

/// Most pairs of trajectories (`seeds`).
pub const MAX_SEEDS: u32 = 100;

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
        config::ensure(
            (1..=MAX_SEEDS).contains(&self.seeds),
            &format!("{p}.seeds"),
            format!("{} must be from 1 to {MAX_SEEDS}", self.seeds),
        )?;
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
    /// The SGD trajectory (of the first seed).
    pub sgd: Outcome,
    /// The BGD trajectory (of the first seed).
    pub bgd: Outcome,
    /// Every seed's pair, the first included.
    pub pairs: Vec<Pair>,
    /// BGD's test error minus SGD's, image by image on the test set, over
    /// every pair.
    pub comparison: PairedDifference,
    /// The verdicts.
    pub findings: Vec<Finding>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// The two trajectories from one seed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pair {
    /// Their initialisation (and SGD data-order) seed.
    pub seed: u64,
    /// The SGD trajectory.
    pub sgd: Outcome,
    /// The BGD trajectory.
    pub bgd: Outcome,
}

/// The store's run of optimiser `name` (`sgd`, `bgd`) of pair `k` with seed
/// `seed`: `name` for the first pair (as before seeds existed), then
/// `name-seed<seed>`.
pub fn run_id(name: &str, k: u32, seed: u64) -> RunId {
    RunId::Named {
        name: if k == 0 {
            name.to_owned()
        } else {
            format!("{name}-seed{seed}")
        },
    }
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
    let batch = cfg.sgd.batch_size.max(1) as u64;
    let mut curves = BTreeMap::new();
    let mut pairs = Vec::new();
    let mut correct = Vec::new();
    for k in 0..cfg.seeds {
        let seed = cfg.seed + u64::from(k);
        let suffix = if k == 0 {
            String::new()
        } else {
            format!("_seed{seed}")
        };
        let (sgd_run, bgd_run) = (run_id("sgd", k, seed), run_id("bgd", k, seed));
        let (sgd_ids, sgd_stop) = s.log.phase(&format!("train_sgd{suffix}"), || {
            train_until(
                &rec,
                &sgd_run,
                cfg.sgd_phase(cfg.sgd_epochs),
                cfg.stop_at_train_error,
                seed,
            )
        })?;
        let (bgd_ids, bgd_stop) = s.log.phase(&format!("train_bgd{suffix}"), || {
            train_until(
                &rec,
                &bgd_run,
                cfg.bgd_phase(cfg.bgd_epochs),
                cfg.stop_at_train_error,
                seed,
            )
        })?;
        // Per test image, right or wrong, of each final model (recomputed
        // from the stored model, so an analysis-only re-run re-judges).
        let last = |ids: &BTreeMap<u32, SnapshotId>, run: &RunId| -> Result<Vec<bool>> {
            let (_, &id) = ids
                .iter()
                .next_back()
                .with_context(|| format!("`{}` has no snapshot", run.run_name()))?;
            let mut model = rec.load(id)?;
            rec.evaluator().test_correct(&mut model)
        };
        let pair_correct = s.log.phase(&format!("per_image{suffix}"), || {
            Ok::<_, anyhow::Error>((last(&sgd_ids, &sgd_run)?, last(&bgd_ids, &bgd_run)?))
        })?;
        correct.push(pair_correct);
        let store = rec.store();
        let mut outcome = |run: &RunId,
                           schedule: String,
                           ids: &BTreeMap<u32, SnapshotId>,
                           stop: Stop,
                           steps_per_epoch: u64,
                           paper: f64|
         -> Result<Outcome> {
            let name = run.run_name();
            let rows = epoch_rows(&store, ids)?;
            let last = rows
                .last()
                .map(|r| (r.epoch, r.metrics))
                .with_context(|| format!("`{name}` has no stored epoch"))?;
            curves.insert(name.clone(), rows);
            Ok(Outcome {
                name,
                schedule,
                stop,
                final_epoch: last.0,
                steps: u64::from(last.0) * steps_per_epoch,
                last: last.1,
                paper_test_error: paper,
            })
        };
        let sgd = outcome(
            &sgd_run,
            format!("SGD, batch {}, lr {}", cfg.sgd.batch_size, cfg.sgd.lr),
            &sgd_ids,
            sgd_stop,
            n.div_ceil(batch),
            PAPER_SGD,
        )?;
        let bgd = outcome(
            &bgd_run,
            format!("BGD (full batch), lr {}", cfg.bgd.lr),
            &bgd_ids,
            bgd_stop,
            1,
            PAPER_BGD,
        )?;
        pairs.push(Pair { seed, sgd, bgd });
    }
    let comparison = PairedDifference::of(&correct)?;
    tracing::info!(
        difference = comparison.difference,
        lo = comparison.interval_95[0],
        hi = comparison.interval_95[1],
        seeds = comparison.seeds,
        images = comparison.images,
        "BGD minus SGD test error, image by image"
    );
    let first = pairs
        .first()
        .cloned()
        .context("the experiment trained no pair (seeds = 0)")?;
    let (sgd, bgd) = (first.sgd, first.bgd);
    let dir = s.out.join("sgd-vs-bgd");
    std::fs::create_dir_all(&dir)?;
    let mut files = vec![write_curves_csv(&dir.join("curves.csv"), &curves)?];
    files.extend(draw(&dir, &curves, &sgd, &bgd, s.data.train_len())?);
    let summary = Summary {
        head: SummaryHead::new("sgd-vs-bgd", opts, &cfg.eval),
        train_images: s.data.train_len(),
        stop_at_train_error: cfg.stop_at_train_error,
        findings: findings(
            &cfg.thresholds,
            cfg.stop_at_train_error,
            &pairs,
            &comparison,
        ),
        sgd,
        bgd,
        pairs,
        comparison,
        files,
    };
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

/// The comparison, judged. Never bent to pass. `pairs` holds every seed's
/// two outcomes (the first pair is the one the paper-like numbers are of);
/// `comparison` their test errors compared image by image.
pub fn findings(
    t: &Thresholds,
    stop_at: f64,
    pairs: &[Pair],
    comparison: &PairedDifference,
) -> Vec<Finding> {
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
    let all = |f: &dyn Fn(&Pair) -> bool| !pairs.is_empty() && pairs.iter().all(f);
    let both_fit = all(&|p| p.sgd.fitted() && p.bgd.fitted());
    let finite = all(&|p| p.sgd.finite() && p.bgd.finite());
    let gaps: Vec<f64> = pairs
        .iter()
        .map(|p| p.bgd.last.test_error - p.sgd.last.test_error)
        .collect();
    let gap = gaps.iter().sum::<f64>() / gaps.len().max(1) as f64;
    let by_seed = |f: &dyn Fn(&Pair) -> serde_json::Value| -> serde_json::Value {
        pairs
            .iter()
            .map(|p| (p.seed.to_string(), f(p)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let (first_sgd, first_bgd) = pairs.first().map_or((f64::NAN, f64::NAN), |p| {
        (p.sgd.last.test_error, p.bgd.last.test_error)
    });
    let mut test_errors = serde_json::json!({
        "sgd": first_sgd,
        "bgd": first_bgd,
        "paper_sgd": PAPER_SGD,
        "paper_bgd": PAPER_BGD,
    });
    let mut fit = if pairs.len() == 1 {
        serde_json::json!({ "sgd": one(&pairs[0].sgd), "bgd": one(&pairs[0].bgd) })
    } else {
        by_seed(&|p| serde_json::json!({ "sgd": one(&p.sgd), "bgd": one(&p.bgd) }))
    };
    if pairs.len() > 1 {
        test_errors["sgd_by_seed"] = by_seed(&|p| p.sgd.last.test_error.into());
        test_errors["bgd_by_seed"] = by_seed(&|p| p.bgd.last.test_error.into());
        if let serde_json::Value::Object(m) = &mut fit {
            m.insert("seeds".into(), pairs.len().into());
        }
    }
    let mut numbers = serde_json::json!({
        "bgd_minus_sgd": gap,
        "paper_bgd_minus_sgd": PAPER_BGD - PAPER_SGD,
        "sgd_diverged": !all(&|p| p.sgd.finite()),
        "bgd_diverged": !all(&|p| p.bgd.finite()),
    });
    if let (serde_json::Value::Object(m), serde_json::Value::Object(c)) =
        (&mut numbers, comparison.to_json())
    {
        m.extend(c);
    }
    if pairs.len() > 1 {
        numbers["bgd_minus_sgd_by_seed"] = gaps.into();
    }
    vec![
        Finding {
            id: "both_fit".into(),
            claim: "both optimisers reach (near) zero training error from the same initialisation (the paper compares solutions), for every seed".into(),
            verdict: Verdict::from_bool(both_fit),
            threshold: serde_json::json!({ "stop_at_train_error": stop_at }),
            numbers: fit,
        },
        Finding {
            id: "test_errors".into(),
            claim: "test error of each solution next to the paper's (about 32% for SGD, 40% for BGD, on all of CIFAR-10)".into(),
            verdict: Verdict::Reported,
            threshold: serde_json::Value::Null,
            numbers: test_errors,
        },
        Finding {
            id: "sgd_generalises_better".into(),
            claim: "SGD's solution generalises better than BGD's: BGD's test error exceeds SGD's by at least the margin, with 95% confidence over the test images (and seeds); undecided at this scale when the interval straddles the margin (paper: 40% vs 32%, 8 points)".into(),
            verdict: if finite {
                comparison.judge(t.test_margin)
            } else {
                Verdict::DoesNotHold
            },
            threshold: serde_json::json!({ "test_margin": t.test_margin }),
            numbers,
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
            format!(
                "BGD minus SGD test error, image by image over {} test images and {} seed(s): {:+.2} points, 95% interval [{:+.2}, {:+.2}]",
                s.comparison.images,
                s.comparison.seeds,
                s.comparison.difference,
                s.comparison.interval_95[0],
                s.comparison.interval_95[1]
            ),
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

    /// Right/wrong on 1,000 test images for a test error of `error` percent:
    /// wrong on the first `10 * error` images (so two models' mistakes
    /// overlap as much as they can).
    fn right(error: f64) -> Vec<bool> {
        let wrong = (error * 10.0).round() as usize;
        (0..1000).map(|i| i >= wrong).collect()
    }

    fn verdicts(sgd: &Outcome, bgd: &Outcome) -> BTreeMap<String, Verdict> {
        let c = PairedDifference::of(&[(right(sgd.last.test_error), right(bgd.last.test_error))])
            .unwrap();
        let pair = Pair {
            seed: 0,
            sgd: sgd.clone(),
            bgd: bgd.clone(),
        };
        findings(&Thresholds::default(), 1.0, &[pair], &c)
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
        // Exactly the margin is undecided: 20 of 1,000 images apart, the
        // interval is about 2 +- 0.9 points.
        let v = verdicts(&outcome("sgd", 38.0, Z), &outcome("bgd", 40.0, Z));
        assert_eq!(v["sgd_generalises_better"], Verdict::Undecided);
        // Well above it: 40 images apart (about 4 +- 1.2) holds.
        let v = verdicts(&outcome("sgd", 36.0, Z), &outcome("bgd", 40.0, Z));
        assert_eq!(v["sgd_generalises_better"], Verdict::Holds);
    }

    #[test]
    fn verdicts_fail_on_contrary_numbers() {
        // BGD better, equal, or worse by 1 point with every disagreement one
        // way (10 of 1,000 images: about 1 +- 0.6): the interval lies below
        // the margin.
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
    fn seeds_are_runs_of_their_own_and_numbers_carry_the_interval() {
        assert_eq!(run_id("sgd", 0, 7).run_name(), "sgd");
        assert_eq!(run_id("bgd", 2, 9).run_name(), "bgd-seed9");
        let pairs: Vec<Pair> = [(32.0, 40.0), (34.0, 39.0)]
            .into_iter()
            .enumerate()
            .map(|(k, (s, b))| Pair {
                seed: k as u64,
                sgd: outcome("sgd", s, Z),
                bgd: outcome("bgd", b, Z),
            })
            .collect();
        let c = PairedDifference::of(
            &pairs
                .iter()
                .map(|p| (right(p.sgd.last.test_error), right(p.bgd.last.test_error)))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        assert!((c.difference - 6.5).abs() < 1e-9);
        let f = findings(&Thresholds::default(), 1.0, &pairs, &c);
        let n = &f[2].numbers;
        assert_eq!(f[2].verdict, Verdict::Holds);
        assert_eq!(n["bgd_minus_sgd"], 6.5);
        assert_eq!(n["bgd_minus_sgd_by_seed"], serde_json::json!([8.0, 5.0]));
        assert_eq!(n["seeds"], 2);
        assert_eq!(n["images"], 1000);
        assert_eq!(n["method"], landscape_engine::analysis::paired::METHOD);
        let lo = n["interval_95"][0].as_f64().unwrap();
        let hi = n["interval_95"][1].as_f64().unwrap();
        assert!((2.0..6.5).contains(&lo) && 6.5 < hi, "{lo} {hi}");
        assert_eq!(f[1].numbers["sgd_by_seed"]["1"], 34.0);
        assert_eq!(f[0].numbers["seeds"], 2);
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
        let e = edit("seeds = 1", "seeds = 0");
        assert!(e.contains("seeds"), "{e}");
    }
}
