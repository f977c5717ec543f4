//! Figures 41-45 (Appendix E) of the paper: a model with zero training
//! error, perturbed very little (std = alpha x the mean weight magnitude of
//! each layer) and retrained with BGD several times (protocol and
//! deviations: `docs/protocols.md`). The paper's claims: the training error
//! stays at zero throughout, and the runs still drift apart in weight space.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use landscape_net::{BgdConfig, NetConfig, PerturbSpec, Phase, SgdConfig};
use landscape_trajectory::SnapshotId;
use serde::{Deserialize, Serialize};

use crate::retrain;
use crate::Report;
use landscape_engine::analysis::{Finding, Verdict};
use landscape_engine::config::{self, ensure, ensure_range, Validate};
use landscape_engine::data::DataConfig;
use landscape_engine::eval::{EvalConfig, Metrics};
use landscape_engine::experiment::{self, Experiment, SummaryHead};
use landscape_engine::identity::RunId;
use landscape_engine::session::{self, RunOptions, Session, SessionSpec};
use landscape_engine::ExperimentError;
use landscape_probe::barriers::{self, BarrierStats, Pair, PairBarrier};

/// What counts as holding (analysis only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// The largest training error (percent) of any recorded retrained model
    /// for "stays at zero".
    pub zero_error: f64,
    /// "Do not converge to the same weights": the runs' final mean pairwise
    /// 1 - cos is at least this share of the same mean right after
    /// perturbing, on every layer (as fig5's `spread`).
    pub spread: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            zero_error: 0.0,
            spread: 0.5,
        }
    }
}

/// One scale of the experiment (`experiments/fig41.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fig41Config {
    /// Seed of the main run; perturbation seeds derive from it.
    pub seed: u64,
    /// Which images.
    #[serde(default)]
    pub data: DataConfig,
    /// The network.
    #[serde(default)]
    pub net: NetConfig,
    /// SGD settings of the main run.
    #[serde(default)]
    pub sgd: SgdConfig,
    /// SGD epochs of the main run.
    pub sgd_epochs: u32,
    /// BGD settings (main run and retraining).
    pub bgd: BgdConfig,
    /// Most BGD epochs of the main run.
    pub bgd_epochs: u32,
    /// The main run stops at the first epoch with at most this training error.
    pub stop_at_train_error: f64,
    /// Retrained runs.
    pub retrain_runs: usize,
    /// BGD epochs of each retraining.
    pub retrain_epochs: u32,
    /// The paper's layers drawn and measured (analysis).
    pub layers: Vec<usize>,
    /// Points (t = 0..1, evenly spaced) on the line between every pair of
    /// retrained runs, for their barriers (analysis; 0: none).
    #[serde(default = "default_barrier_points")]
    pub barrier_points: usize,
    /// The perturbation.
    pub perturb: PerturbSpec,
    /// Evaluation.
    #[serde(default)]
    pub eval: EvalConfig,
    /// Verdict thresholds (analysis).
    #[serde(default)]
    pub thresholds: Thresholds,
}

/// Config keys that change only the analysis, not the stored models.
pub const ANALYSIS_ONLY: &[&str] = &["thresholds", "layers", "barrier_points"];

fn default_barrier_points() -> usize {
    5
}

impl Validate for Fig41Config {
    fn validate(&self, p: &str) -> Result<(), ExperimentError> {
        config::validate_setup(p, &self.data, Some(&self.net), &self.eval)?;
        config::ensure_epochs(
            p,
            &[
                ("sgd_epochs", self.sgd_epochs),
                ("bgd_epochs", self.bgd_epochs),
                ("retrain_epochs", self.retrain_epochs),
            ],
        )?;
        for ph in self.main_phases() {
            ph.validate(p)?;
        }
        ensure_range(
            self.stop_at_train_error,
            0.0,
            100.0,
            &format!("{p}.stop_at_train_error"),
        )?;
        ensure(
            (2..=64).contains(&self.retrain_runs),
            &format!("{p}.retrain_runs"),
            format!(
                "{} must be between 2 and 64 (runs are compared in pairs)",
                self.retrain_runs
            ),
        )?;
        barriers::validate_points(self.barrier_points, &format!("{p}.barrier_points"))?;
        let layers = self.net.widths.len() + 2;
        ensure(
            !self.layers.is_empty(),
            &format!("{p}.layers"),
            "needs at least one layer",
        )?;
        for (i, &l) in self.layers.iter().enumerate() {
            ensure(
                (2..=layers).contains(&l),
                &format!("{p}.layers[{i}]"),
                format!("layer {l} does not exist: the network's layers are 2..={layers} (the paper counts the input as layer 1)"),
            )?;
        }
        retrain::validate_perturb(&self.perturb, &format!("{p}.perturb"))?;
        ensure_range(
            self.thresholds.zero_error,
            0.0,
            100.0,
            &format!("{p}.thresholds.zero_error"),
        )?;
        ensure_range(
            self.thresholds.spread,
            0.0,
            1e6,
            &format!("{p}.thresholds.spread"),
        )
    }
}

impl Fig41Config {
    /// The main run's schedule.
    pub fn main_phases(&self) -> Vec<Phase> {
        vec![
            Phase::Sgd {
                epochs: self.sgd_epochs,
                sgd: self.sgd.clone(),
            },
            Phase::Bgd {
                epochs: self.bgd_epochs,
                bgd: self.bgd.clone(),
            },
        ]
    }
}

/// The bundled `experiments/fig41.toml`.
pub const BUNDLED: &str = include_str!("../../../experiments/fig41.toml");

/// The experiment, as the registry (`crate::EXPERIMENTS`) knows it.
pub struct Fig41;

impl Experiment for Fig41 {
    fn name(&self) -> &'static str {
        "fig41"
    }

    fn description(&self) -> &'static str {
        "Figures 41-45 (Appendix E): a zero-error model perturbed very little, retrained 4 times"
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
pub fn load_config(opts: &RunOptions) -> Result<Fig41Config> {
    experiment::load_config(&Fig41, opts)
}

/// Per layer: pairwise 1 - cos between the runs, right after perturbing and at the end.
pub type Drift = retrain::LayerSpread;

/// `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The experiment, scale and BN evaluation policy (of every number here).
    #[serde(flatten)]
    pub head: SummaryHead,
    /// Training images.
    pub train_images: usize,
    /// The main-run epoch of the perturbed model.
    pub model_epoch: u32,
    /// Its evaluation.
    pub model: Metrics,
    /// The largest training error of each retrained run over all its recorded epochs.
    pub largest_train_error: Vec<f64>,
    /// Each run's last evaluation.
    pub retrained: Vec<Metrics>,
    /// Per layer.
    pub drift: Vec<Drift>,
    /// The barriers between every pair of retrained runs (last epoch).
    pub pair_barriers: Vec<PairBarrier>,
    /// Their largest and median values.
    pub pair_barrier_stats: Option<BarrierStats>,
    /// The verdicts.
    pub findings: Vec<Finding>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Runs (or resumes) the experiment and writes every output into `opts.out`.
pub fn run(opts: &RunOptions) -> Result<Summary> {
    let cfg = load_config(opts)?;
    let mut s = Session::start(
        opts,
        &SessionSpec {
            experiment: "fig41",
            config: &cfg,
            seed: cfg.seed,
            data: &cfg.data,
            net: &cfg.net,
            analysis_only: ANALYSIS_ONLY,
            outputs: &["fig41"],
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
    let phases = cfg.main_phases();
    let stop = cfg.stop_at_train_error;
    let main = s.log.phase("train_main", || {
        rec.trajectory_until(
            &RunId::Main,
            0,
            &phases,
            cfg.seed,
            || rec.init(cfg.seed),
            |m| m.train_error <= stop,
        )
    })?;
    let (&model_epoch, &parent) = main
        .iter()
        .next_back()
        .context("the main run has no snapshot")?;
    let runs = s.log.phase("retrain", || {
        retrain::retrain(
            &rec,
            "zero",
            0,
            parent,
            &cfg.perturb,
            &Phase::Bgd {
                epochs: cfg.retrain_epochs,
                bgd: cfg.bgd.clone(),
            },
            cfg.retrain_runs,
            cfg.seed,
        )
    })?;
    let summary = s.log.phase("analyse", || {
        analyse(
            &cfg,
            opts,
            &rec,
            model_epoch,
            parent,
            &runs,
            &s.out,
            s.data.train_len(),
        )
    })?;
    experiment::finish(&s.out, &mut s.log, &summary, rec.written())?;
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
fn analyse(
    cfg: &Fig41Config,
    opts: &RunOptions,
    rec: &landscape_engine::recorder::Recorder<'_>,
    model_epoch: u32,
    parent: SnapshotId,
    runs: &[BTreeMap<u32, SnapshotId>],
    out: &Path,
    train_images: usize,
) -> Result<Summary> {
    let ids = |e: u32| -> Result<Vec<SnapshotId>> {
        runs.iter()
            .enumerate()
            .map(|(k, r)| {
                r.get(&e).copied().with_context(|| {
                    format!("{} has no epoch {e}", retrain::run_id("zero", k).run_name())
                })
            })
            .collect()
    };
    let (starts, ends) = (ids(0)?, ids(cfg.retrain_epochs)?);
    let mut largest = Vec::new();
    for r in runs {
        let mut worst = f64::NEG_INFINITY;
        for &id in r.values() {
            worst = worst.max(rec.metrics(id)?.train_error);
        }
        largest.push(worst);
    }
    let retrained = ends
        .iter()
        .map(|&i| rec.metrics(i))
        .collect::<Result<Vec<_>>>()?;
    let store = rec.store();
    let drift = cfg
        .layers
        .iter()
        .map(|&layer| retrain::layer_spread(&store, parent, &starts, &ends, layer))
        .collect::<Result<Vec<_>>>()?;
    let run_ids: Vec<RunId> = (0..runs.len())
        .map(|k| retrain::run_id("zero", k))
        .collect();
    let (files, _) = retrain::draw_runs(
        &store,
        &out.join("fig41"),
        &format!(
            "fig41: epoch-{model_epoch} model + noise {} x mean |W|, {} runs",
            cfg.perturb.alpha,
            runs.len()
        ),
        &run_ids,
        &cfg.layers,
    )?;
    drop(store);
    let mut files = files;
    let n = ends.len();
    let pair_barriers = if cfg.barrier_points >= 2 {
        let pairs: Vec<Pair> = (0..n)
            .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
            .map(|(i, j)| Pair {
                label: format!("retrained {} vs {}", i + 1, j + 1),
                a: ends[i],
                b: ends[j],
            })
            .collect();
        let (rows, f) = barriers::pair_barriers(
            rec,
            &pairs,
            &barriers::pair_ts(cfg.barrier_points),
            &out.join("fig41"),
        )?;
        files.extend(f);
        rows
    } else {
        Vec::new()
    };
    let model = rec.metrics(parent)?;
    let findings = findings(cfg, &model, &largest, &drift);
    Ok(Summary {
        head: SummaryHead::new("fig41", opts, &cfg.eval),
        train_images,
        model_epoch,
        model,
        largest_train_error: largest,
        retrained,
        drift,
        pair_barrier_stats: (!pair_barriers.is_empty()).then(|| BarrierStats::of(&pair_barriers)),
        pair_barriers,
        findings,
        files,
    })
}

/// The paper's findings, judged on the numbers. Never bent to pass.
pub fn findings(
    cfg: &Fig41Config,
    model: &Metrics,
    largest: &[f64],
    drift: &[Drift],
) -> Vec<Finding> {
    let t = &cfg.thresholds;
    let worst = largest.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let ratios: Vec<f64> = drift.iter().map(|d| d.ratio).collect();
    vec![
        Finding {
            id: "zero_error_model".into(),
            claim: "the main run reaches zero training error (the model Appendix E perturbs)".into(),
            verdict: Verdict::from_bool(model.train_error <= cfg.stop_at_train_error),
            threshold: serde_json::json!({ "stop_at_train_error": cfg.stop_at_train_error }),
            numbers: serde_json::json!({ "train_error": model.train_error, "test_error": model.test_error }),
        },
        Finding {
            id: "stays_zero".into(),
            claim: "the training error is zero at every recorded epoch of every retrained run, right after perturbing included".into(),
            verdict: Verdict::from_bool(
                model.train_error <= t.zero_error && worst.is_finite() && worst <= t.zero_error,
            ),
            threshold: serde_json::json!({ "zero_error": t.zero_error }),
            numbers: serde_json::json!({ "largest": worst, "largest_per_run": largest, "model": model.train_error }),
        },
        Finding {
            id: "drift_apart".into(),
            claim: "the runs do not converge to the same weights: they stay apart, their mean pairwise 1 - cos at the end being at least the threshold's share of the same mean right after perturbing, on every layer".into(),
            verdict: Verdict::from_bool(!ratios.is_empty() && ratios.iter().all(|r| r.is_finite() && *r >= t.spread)),
            threshold: serde_json::json!({ "spread": t.spread }),
            numbers: serde_json::json!({
                "layers": drift.iter().map(|d| d.layer).collect::<Vec<_>>(),
                "end_over_start": ratios,
                "smallest_end_over_start": ratios.iter().copied().fold(f64::INFINITY, f64::min),
                "start_mean": drift.iter().map(|d| d.start.mean).collect::<Vec<_>>(),
                "end_mean": drift.iter().map(|d| d.end.mean).collect::<Vec<_>>(),
                "perturbation_1_minus_cos": drift.iter().map(|d| d.perturbation).collect::<Vec<_>>(),
            }),
        },
    ]
}

/// The terminal report of a finished run.
pub fn report(s: &Summary, out: &Path) -> super::Report {
    let mut files = s.files.clone();
    files.extend(experiment::standard_files(out, [experiment::STORE]));
    super::Report {
        experiment: s.head.experiment.clone(),
        headline: [format!(
            "{} training images; perturbed model: main epoch {}, training error {:.2}%, test error {:.2}% (BN: {})",
            s.train_images, s.model_epoch, s.model.train_error, s.model.test_error, s.head.bn_eval
        )]
        .into_iter()
        .chain(
            s.pair_barrier_stats
                .as_ref()
                .map(|b| b.line("between the retrained runs (fig41/barriers.csv)")),
        )
        .collect(),
        sections: vec![super::Section {
            title: "Appendix E: tiny perturbations of a zero-error model".into(),
            findings: s.findings.clone(),
        }],
        files,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::retrain::Spread;
    use landscape_engine::config;
    use landscape_engine::config::Scale;

    fn bundled() -> config::ExperimentFile<Fig41Config> {
        config::parse::<Fig41Config>(BUNDLED, "bundled").unwrap()
    }

    #[test]
    fn paper_scale_is_the_protocol() {
        let file = bundled();
        let p = file.scale(Scale::Paper);
        assert_eq!(p.perturb.alpha, 0.01);
        assert_eq!(p.perturb.scale, landscape_net::PerturbScale::MeanAbs);
        assert_eq!((p.retrain_runs, p.retrain_epochs), (4, 400));
        assert_eq!(p.layers, [2, 4]);
        assert_eq!(p.stop_at_train_error, 0.0);
        assert_eq!(p.thresholds.zero_error, 0.0);
        assert_eq!(p.net, NetConfig::paper());
        for s in Scale::ALL {
            assert_eq!(file.scale(s).perturb, p.perturb, "{s}");
        }
    }

    fn drift(ratio: f64) -> Drift {
        let s = |m| Spread {
            mean: m,
            min: m,
            max: m,
        };
        Drift {
            layer: 2,
            perturbation: 1e-4,
            start: s(2e-4),
            end: s(2e-4 * ratio),
            ratio,
        }
    }

    fn verdicts(model_err: f64, largest: &[f64], d: &[Drift]) -> BTreeMap<String, Verdict> {
        let cfg = bundled().scale(Scale::Paper).clone();
        let m = Metrics {
            train_loss: 0.001,
            train_error: model_err,
            test_loss: 2.0,
            test_error: 40.0,
        };
        findings(&cfg, &m, largest, d)
            .into_iter()
            .map(|f| (f.id, f.verdict))
            .collect()
    }

    #[test]
    fn verdicts_follow_the_numbers() {
        let v = verdicts(0.0, &[0.0; 4], &[drift(3.0), drift(1.5)]);
        assert!(v.values().all(|&x| x == Verdict::Holds), "{v:?}");
        // Runs that draw a little closer but stay apart (the quick run:
        // end / start 0.95 on layer 2, 1.04 on layer 4) do not converge to
        // the same weights.
        let v = verdicts(0.0, &[0.0; 4], &[drift(0.95), drift(1.04)]);
        assert_eq!(v["drift_apart"], Verdict::Holds);
        // One epoch of one run at 0.2%: not zero.
        let v = verdicts(0.0, &[0.0, 0.2, 0.0, 0.0], &[drift(3.0)]);
        assert_eq!(v["stays_zero"], Verdict::DoesNotHold);
        // Runs pulled back to a third of their start spread converge; one
        // layer is enough. Exactly half holds.
        let v = verdicts(0.0, &[0.0; 4], &[drift(3.0), drift(0.3)]);
        assert_eq!(v["drift_apart"], Verdict::DoesNotHold);
        let v = verdicts(0.0, &[0.0; 4], &[drift(3.0), drift(0.5)]);
        assert_eq!(v["drift_apart"], Verdict::Holds);
        let v = verdicts(0.0, &[0.0; 4], &[drift(f64::NAN)]);
        assert_eq!(v["drift_apart"], Verdict::DoesNotHold);
        // The model itself not at zero.
        let v = verdicts(0.4, &[0.0; 4], &[drift(3.0)]);
        assert_eq!(v["zero_error_model"], Verdict::DoesNotHold);
        assert_eq!(v["stays_zero"], Verdict::DoesNotHold);
    }

    #[test]
    fn drift_apart_reports_the_ratios() {
        let cfg = bundled().scale(Scale::Paper).clone();
        assert_eq!(cfg.thresholds.spread, 0.5);
        let m = Metrics {
            train_loss: 0.001,
            train_error: 0.0,
            test_loss: 2.0,
            test_error: 40.0,
        };
        let f = findings(&cfg, &m, &[0.0; 4], &[drift(0.8), drift(0.4)])
            .into_iter()
            .find(|f| f.id == "drift_apart")
            .unwrap();
        assert_eq!(f.verdict, Verdict::DoesNotHold, "0.4 < 0.5 on one layer");
        assert_eq!(f.threshold["spread"], 0.5);
        assert_eq!(f.numbers["end_over_start"][0], 0.8);
        assert_eq!(f.numbers["smallest_end_over_start"], 0.4);
        assert_eq!(f.numbers["start_mean"][1], 2e-4);
    }

    #[test]
    fn bundled_scales_validate_and_edits_are_caught() {
        bundled();
        let edit =
            |from: &str, to: &str| crate::testing::edit_error::<Fig41Config>(BUNDLED, from, to);
        let e = edit("layers = [2, 4]", "layers = [1, 4]");
        assert!(e.contains("layers[0]"), "{e}");
        let e = edit("scale = \"mean_abs\"\nbiases", "scale = \"median\"\nbiases");
        assert!(e.contains("median") || e.contains("scale"), "{e}");
        let e = edit("spread = 0.5", "spread = -1.0");
        assert!(e.contains("thresholds.spread"), "{e}");
        let e = edit("spread = 0.5", "drift = 1.0");
        assert!(e.contains("drift"), "the old key is refused: {e}");
    }
}
