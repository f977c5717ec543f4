//! Figure 40 of the paper: does overparametrisation hurt generalisation?
//! (protocol and deviations: `docs/protocols.md`).
//!
//! For each training-set size N and each target ratio of parameters to
//! training images (up to about 60), the paper's network is widened (every
//! hidden width scaled alike) to the parameter count closest to the target,
//! trained with SGD once per seed, and its validation error (on held-out
//! test images) recorded. One store per N (`store-n<N>/`), one run per
//! (width, seed); every epoch is recorded and evaluated, so a killed run
//! resumes like every other experiment.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use landscape_net::{NetConfig, Phase, SgdConfig};
use landscape_trajectory::Store;
use serde::{Deserialize, Serialize};

use crate::Report;
use landscape_engine::analysis::{Finding, Verdict};
use landscape_engine::config::{self, ensure, ensure_range, Validate};
use landscape_engine::data::{self, DataConfig};
use landscape_engine::eval::{EvalConfig, Evaluator, Metrics};
use landscape_engine::experiment::{self, Experiment, SummaryHead};
use landscape_engine::identity::RunId;
use landscape_engine::plot;
use landscape_engine::recorder::Recorder;
use landscape_engine::session::{RunOptions, Session, SessionSpec};
use landscape_engine::ExperimentError;

/// What counts as "hurts" (analysis only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Extra percentage points beyond the seed spread.
    pub margin: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { margin: 0.0 }
    }
}

/// One scale of the experiment (`experiments/fig40.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fig40Config {
    /// Training-set sizes.
    pub train_sizes: Vec<usize>,
    /// Target parameters per training image.
    pub param_ratios: Vec<f64>,
    /// Seeds; every (N, width) is trained once per seed.
    pub seeds: Vec<u64>,
    /// SGD epochs of every network.
    pub epochs: u32,
    /// The test subset (validation) and how subsets are drawn; its
    /// `train_size` is ignored (set by `train_sizes`).
    #[serde(default)]
    pub data: DataConfig,
    /// SGD settings.
    #[serde(default)]
    pub sgd: SgdConfig,
    /// Evaluation.
    #[serde(default)]
    pub eval: EvalConfig,
    /// Verdict thresholds (analysis).
    #[serde(default)]
    pub thresholds: Thresholds,
}

/// Config keys that change only the analysis, not the stored models.
pub const ANALYSIS_ONLY: &[&str] = &["thresholds"];

/// The paper's network with every hidden width scaled by `s` (at least 1 channel).
pub fn scaled_net(s: f64) -> NetConfig {
    let base = NetConfig::paper();
    NetConfig {
        widths: base
            .widths
            .iter()
            .map(|&w| ((w as f64 * s).round() as i64).max(1))
            .collect(),
        ..base
    }
}

/// The width scale (and network) whose parameter count is closest to
/// `target` (searched on a fine geometric grid of scales; the first on ties).
pub fn net_for_params(target: f64) -> (f64, NetConfig) {
    let (lo, hi, steps) = (1e-3f64, 64.0f64, 4000);
    let mut best = (f64::INFINITY, lo, scaled_net(lo));
    for i in 0..=steps {
        let s = lo * (hi / lo).powf(f64::from(i) / f64::from(steps));
        let net = scaled_net(s);
        let d = (net.param_count() as f64 - target).abs();
        if d < best.0 {
            best = (d, s, net);
        }
    }
    (best.1, best.2)
}

impl Fig40Config {
    /// The data of training-set size `n`.
    pub fn data_for(&self, n: usize) -> DataConfig {
        DataConfig {
            train_size: Some(n),
            ..self.data.clone()
        }
    }

    /// The widths trained at training-set size `n`, one per ratio.
    pub fn nets_for(&self, n: usize) -> Vec<(f64, NetConfig)> {
        self.param_ratios
            .iter()
            .map(|&r| net_for_params(r * n as f64))
            .collect()
    }
}

impl Validate for Fig40Config {
    fn validate(&self, p: &str) -> Result<(), ExperimentError> {
        config::validate_setup(p, &self.data, None, &self.eval)?;
        config::ensure_epochs(p, &[("epochs", self.epochs)])?;
        Phase::Sgd {
            epochs: self.epochs,
            sgd: self.sgd.clone(),
        }
        .validate(p)?;
        ensure(
            !self.train_sizes.is_empty() && self.train_sizes.windows(2).all(|w| w[0] < w[1]),
            &format!("{p}.train_sizes"),
            "must be a non-empty, strictly increasing list",
        )?;
        for (i, &n) in self.train_sizes.iter().enumerate() {
            ensure(
                (10..=50_000).contains(&n),
                &format!("{p}.train_sizes[{i}]"),
                format!("{n} must be between 10 and 50000 (CIFAR-10 has 50,000 training images)"),
            )?;
        }
        ensure(
            !self.param_ratios.is_empty() && self.param_ratios.windows(2).all(|w| w[0] < w[1]),
            &format!("{p}.param_ratios"),
            "must be a non-empty, strictly increasing list",
        )?;
        for (i, &r) in self.param_ratios.iter().enumerate() {
            ensure_range(r, 1e-3, 1e4, &format!("{p}.param_ratios[{i}]"))?;
        }
        ensure(
            !self.seeds.is_empty(),
            &format!("{p}.seeds"),
            "needs at least one seed (two or more give a spread)",
        )?;
        let mut s = self.seeds.clone();
        s.sort_unstable();
        s.dedup();
        ensure(
            s.len() == self.seeds.len(),
            &format!("{p}.seeds"),
            "has a repeated seed",
        )?;
        ensure_range(
            self.thresholds.margin,
            0.0,
            100.0,
            &format!("{p}.thresholds.margin"),
        )
    }
}

/// The bundled `experiments/fig40.toml`.
pub const BUNDLED: &str = include_str!("../../../experiments/fig40.toml");

/// The experiment, as the registry (`crate::EXPERIMENTS`) knows it.
pub struct Fig40;

impl Experiment for Fig40 {
    fn name(&self) -> &'static str {
        "fig40"
    }

    fn description(&self) -> &'static str {
        "Figure 40: validation error against parameter count, widening up to 60x more parameters than images"
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
pub fn load_config(opts: &RunOptions) -> Result<Fig40Config> {
    experiment::load_config(&Fig40, opts)
}

/// The run of one (width index, seed) in an N's store.
pub fn run_id(width: usize, seed: u64) -> RunId {
    RunId::Named {
        name: format!("width{}/seed{seed}", width + 1),
    }
}

/// One trained network.
#[derive(Clone, Debug, Serialize)]
pub struct Trained {
    /// Its seed.
    pub seed: u64,
    /// Its last evaluation.
    pub last: Metrics,
}

/// One (N, width) point.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    /// Training images.
    pub train_size: usize,
    /// The target parameters per image.
    pub target_ratio: f64,
    /// The width scale.
    pub width_scale: f64,
    /// The hidden widths.
    pub widths: Vec<i64>,
    /// Parameters of the network.
    pub params: usize,
    /// params / N.
    pub ratio: f64,
    /// One per seed.
    pub runs: Vec<Trained>,
    /// Mean validation error over seeds.
    pub mean_val_error: f64,
    /// Max - min of the validation error over seeds.
    pub val_spread: f64,
    /// Mean final training error.
    pub mean_train_error: f64,
}

/// One widening step that raised the validation error.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// Training images.
    pub train_size: usize,
    /// Parameters before and after.
    pub params: (usize, usize),
    /// Mean validation error before and after.
    pub val_error: (f64, f64),
    /// The rise.
    pub rise: f64,
    /// The larger seed spread of the two.
    pub spread: f64,
    /// Whether the rise exceeds spread + margin.
    pub hurts: bool,
}

/// `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The experiment, scale and BN evaluation policy.
    #[serde(flatten)]
    pub head: SummaryHead,
    /// Validation images.
    pub validation_images: usize,
    /// Every point.
    pub points: Vec<Point>,
    /// Every widening step.
    pub steps: Vec<Step>,
    /// The verdicts.
    pub findings: Vec<Finding>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Runs (or resumes) the experiment and writes every output into `opts.out`.
pub fn run(opts: &RunOptions) -> Result<Summary> {
    let cfg = load_config(opts)?;
    let largest = *cfg.train_sizes.last().context("no training-set size")?;
    let base_net = NetConfig::paper();
    let mut s = Session::start(
        opts,
        &SessionSpec {
            experiment: "fig40",
            config: &cfg,
            seed: cfg.seeds.first().copied().unwrap_or(0),
            data: &cfg.data_for(largest),
            net: &base_net,
            analysis_only: ANALYSIS_ONLY,
            outputs: &["fig40"],
        },
    )?;
    let phase = Phase::Sgd {
        epochs: cfg.epochs,
        sgd: cfg.sgd.clone(),
    };
    let mut points = Vec::new();
    let mut written = 0;
    for &n in &cfg.train_sizes {
        let data = if n == largest {
            None
        } else {
            Some(data::load(
                &cfg.data_for(n),
                opts.data_dir.as_deref(),
                s.device,
            )?)
        };
        let data = data.as_ref().unwrap_or(&s.data);
        let store = Store::open_or_create(s.out.join(format!("store-n{n}")))?;
        let mut rec = Recorder::new(
            store,
            data,
            Evaluator::new(data, cfg.eval.clone()),
            base_net.clone(),
            s.device,
            &s.fingerprint.hash,
        );
        for (wi, ((scale, net), &target)) in cfg
            .nets_for(n)
            .into_iter()
            .zip(&cfg.param_ratios)
            .enumerate()
        {
            rec.set_net(net.clone());
            let mut runs = Vec::new();
            for &seed in &cfg.seeds {
                let id = run_id(wi, seed);
                let ids = s.log.phase(&format!("train_n{n}"), || {
                    rec.trajectory(&id, 0, std::slice::from_ref(&phase), seed, || {
                        rec.init(seed)
                    })
                })?;
                let last = *ids.values().next_back().context("no snapshot")?;
                runs.push(Trained {
                    seed,
                    last: rec.metrics(last)?,
                });
            }
            let vals: Vec<f64> = runs.iter().map(|r| r.last.test_error).collect();
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let params = net.param_count();
            points.push(Point {
                train_size: n,
                target_ratio: target,
                width_scale: scale,
                widths: net.widths.clone(),
                params,
                ratio: params as f64 / n as f64,
                mean_val_error: mean(&vals),
                val_spread: vals.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                    - vals.iter().copied().fold(f64::INFINITY, f64::min),
                mean_train_error: mean(
                    &runs.iter().map(|r| r.last.train_error).collect::<Vec<_>>(),
                ),
                runs,
            });
        }
        written += rec.written();
    }
    let steps = steps(&points, cfg.thresholds.margin);
    let dir = s.out.join("fig40");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut files = vec![write_csv(&dir.join("points.csv"), &points)?];
    files.extend(draw(&dir, &points, s.data.test.len())?);
    let summary = Summary {
        head: SummaryHead::new("fig40", opts, &cfg.eval),
        validation_images: s.data.test.len(),
        findings: findings(&cfg, &points, &steps),
        points,
        steps,
        files,
    };
    experiment::finish(&s.out, &mut s.log, &summary, written)?;
    Ok(summary)
}

/// Every consecutive widening step, per N, judged against the seed spread.
pub fn steps(points: &[Point], margin: f64) -> Vec<Step> {
    let mut by_n: BTreeMap<usize, Vec<&Point>> = BTreeMap::new();
    for p in points {
        by_n.entry(p.train_size).or_default().push(p);
    }
    let mut out = Vec::new();
    for (n, mut ps) in by_n {
        ps.sort_by_key(|p| p.params);
        for w in ps.windows(2) {
            let (a, b) = (w[0], w[1]);
            if a.params == b.params {
                continue;
            }
            let rise = b.mean_val_error - a.mean_val_error;
            let spread = a.val_spread.max(b.val_spread);
            out.push(Step {
                train_size: n,
                params: (a.params, b.params),
                val_error: (a.mean_val_error, b.mean_val_error),
                rise,
                spread,
                hurts: rise > spread + margin,
            });
        }
    }
    out
}

/// The paper's claim, judged. Never bent to pass.
pub fn findings(cfg: &Fig40Config, points: &[Point], steps: &[Step]) -> Vec<Finding> {
    let hurting: Vec<&Step> = steps.iter().filter(|s| s.hurts).collect();
    let max_ratio = points.iter().map(|p| p.ratio).fold(0.0, f64::max);
    vec![
        Finding {
            id: "widening_does_not_hurt".into(),
            claim: "more parameters than data do not hurt: no widening step raises the mean validation error by more than the seed spread (max - min over seeds) of the two widths plus the margin".into(),
            verdict: Verdict::from_bool(cfg.seeds.len() >= 2 && hurting.is_empty() && !steps.is_empty()),
            threshold: serde_json::json!({ "margin": cfg.thresholds.margin, "seeds": cfg.seeds.len() }),
            numbers: serde_json::json!({
                "steps": steps.len(),
                "hurting": hurting.iter().map(|s| serde_json::json!({
                    "train_size": s.train_size, "params": s.params, "val_error": s.val_error, "rise": s.rise, "spread": s.spread,
                })).collect::<Vec<_>>(),
                "largest_rise": steps.iter().map(|s| s.rise).fold(f64::NEG_INFINITY, f64::max),
            }),
        },
        Finding {
            id: "overparametrisation_reached".into(),
            claim: "the widest networks have many more parameters than training images (the paper: up to about 60 times)".into(),
            verdict: Verdict::Reported,
            threshold: serde_json::Value::Null,
            numbers: serde_json::json!({ "largest_params_per_image": max_ratio }),
        },
    ]
}

fn write_csv(path: &Path, points: &[Point]) -> Result<PathBuf> {
    let mut t = String::from(
        "train_size,target_ratio,width_scale,widths,params,params_per_image,seed,train_error,val_error,train_loss,val_loss\n",
    );
    for p in points {
        for r in &p.runs {
            let widths: Vec<String> = p.widths.iter().map(i64::to_string).collect();
            t += &format!(
                "{},{},{},{},{},{},{},{},{},{},{}\n",
                p.train_size,
                p.target_ratio,
                p.width_scale,
                widths.join(" "),
                p.params,
                p.ratio,
                r.seed,
                r.last.train_error,
                r.last.test_error,
                r.last.train_loss,
                r.last.test_loss
            );
        }
    }
    landscape_engine::provenance::write_atomic(path, t.as_bytes())?;
    Ok(path.to_path_buf())
}

/// A paler shade of `c` (seed curves beside their mean).
fn lighten(c: plotters::style::RGBColor) -> plotters::style::RGBColor {
    let l = |v: u8| ((u16::from(v) + 2 * 255) / 3) as u8;
    plotters::style::RGBColor(l(c.0), l(c.1), l(c.2))
}

fn draw(dir: &Path, points: &[Point], val_images: usize) -> Result<Vec<PathBuf>> {
    let mut sizes: Vec<usize> = points.iter().map(|p| p.train_size).collect();
    sizes.dedup();
    let curves = |f: fn(&Metrics) -> f64, mean: bool| -> Vec<plot::Curve> {
        let mut c = Vec::new();
        for (i, &n) in sizes.iter().enumerate() {
            let ps: Vec<&Point> = points.iter().filter(|p| p.train_size == n).collect();
            let xy = |p: &Point, v: f64| ((p.params as f64).log10(), v);
            if mean {
                c.push(plot::Curve {
                    name: format!("N = {n}: mean over seeds"),
                    color: plot::palette(i + 1),
                    points: ps
                        .iter()
                        .map(|p| {
                            xy(
                                p,
                                p.runs.iter().map(|r| f(&r.last)).sum::<f64>()
                                    / p.runs.len() as f64,
                            )
                        })
                        .collect(),
                });
            }
            let seeds = ps.first().map_or(0, |p| p.runs.len());
            for k in 0..seeds {
                c.push(plot::Curve {
                    name: format!("N = {n}, seed {}", ps[0].runs[k].seed),
                    color: lighten(plot::palette(i + 1)),
                    points: ps
                        .iter()
                        .filter_map(|p| p.runs.get(k).map(|r| xy(p, f(&r.last))))
                        .collect(),
                });
            }
        }
        c
    };
    let x_label = "log10(parameters); N x 1 .. N x 60 per training-set size";
    plot::line_panels(
        &dir.join("fig40"),
        &format!("fig40: validation error ({val_images} held-out images) against parameter count"),
        &[
            plot::LinePanel {
                title: "validation error".into(),
                x_label: x_label.into(),
                y_label: "error %".into(),
                curves: curves(|m| m.test_error, true),
            },
            plot::LinePanel {
                title: "training error".into(),
                x_label: x_label.into(),
                y_label: "error %".into(),
                curves: curves(|m| m.train_error, true),
            },
        ],
        2,
        (1600, 700),
    )
}

/// The terminal report of a finished run.
pub fn report(s: &Summary, out: &Path) -> super::Report {
    let mut files = s.files.clone();
    // One store per training-set size (`store-n<N>/`).
    let mut stores: Vec<String> = Vec::new();
    for p in &s.points {
        let name = format!("store-n{}", p.train_size);
        if !stores.contains(&name) {
            stores.push(name);
        }
    }
    files.extend(experiment::standard_files(
        out,
        stores.iter().map(String::as_str),
    ));
    let mut headline = vec![format!(
        "validation error on {} held-out images (BN: {}), mean over seeds:",
        s.validation_images, s.head.bn_eval
    )];
    for p in &s.points {
        headline.push(format!(
            "  N = {:>6}: {:>9} parameters ({:>6.1} per image): validation {:.2}% (spread {:.2}), training {:.2}%",
            p.train_size, p.params, p.ratio, p.mean_val_error, p.val_spread, p.mean_train_error
        ));
    }
    super::Report {
        experiment: s.head.experiment.clone(),
        headline,
        sections: vec![super::Section {
            title: "Figure 40: overparametrisation".into(),
            findings: s.findings.clone(),
        }],
        files,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use landscape_engine::config;
    use landscape_engine::config::Scale;

    #[test]
    fn widths_hit_the_target_parameter_counts() {
        assert_eq!(scaled_net(1.0), NetConfig::paper());
        assert_eq!(net_for_params(188_810.0).1, NetConfig::paper());
        for target in [2_000.0, 15_000.0, 60_000.0, 600_000.0] {
            let (_, net) = net_for_params(target);
            let p = net.param_count() as f64;
            assert!((p - target).abs() / target < 0.05, "{target}: {p}");
        }
        // Below the narrowest network (every width 1) the narrowest is chosen.
        let (_, net) = net_for_params(10.0);
        assert_eq!(net.widths, [1, 1, 1, 1]);
    }

    fn point(n: usize, params: usize, vals: &[f64]) -> Point {
        let runs: Vec<Trained> = vals
            .iter()
            .enumerate()
            .map(|(k, &v)| Trained {
                seed: k as u64,
                last: Metrics {
                    train_loss: 0.0,
                    train_error: 0.0,
                    test_loss: 1.0,
                    test_error: v,
                },
            })
            .collect();
        Point {
            train_size: n,
            target_ratio: 1.0,
            width_scale: 1.0,
            widths: vec![],
            params,
            ratio: params as f64 / n as f64,
            mean_val_error: vals.iter().sum::<f64>() / vals.len() as f64,
            val_spread: vals.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                - vals.iter().copied().fold(f64::INFINITY, f64::min),
            mean_train_error: 0.0,
            runs,
        }
    }

    #[test]
    fn a_rise_beyond_the_seed_spread_hurts() {
        let cfg = config::parse::<Fig40Config>(BUNDLED, "b")
            .unwrap()
            .scale(Scale::Quick)
            .clone();
        let verdict = |ps: &[Point]| findings(&cfg, ps, &steps(ps, 0.0))[0].verdict;
        // Falling validation error: holds.
        let ps = [
            point(100, 100, &[60.0, 62.0]),
            point(100, 1000, &[55.0, 57.0]),
        ];
        assert_eq!(verdict(&ps), Verdict::Holds);
        // A rise of 1 point within a 2-point spread: holds.
        let ps = [
            point(100, 100, &[60.0, 62.0]),
            point(100, 1000, &[61.0, 63.0]),
        ];
        assert_eq!(verdict(&ps), Verdict::Holds);
        // A rise of 5 points with a 2-point spread: hurts.
        let ps = [
            point(100, 100, &[60.0, 62.0]),
            point(100, 1000, &[65.0, 67.0]),
        ];
        assert_eq!(verdict(&ps), Verdict::DoesNotHold);
        let st = steps(&ps, 0.0);
        assert_eq!((st[0].rise, st[0].spread, st[0].hurts), (5.0, 2.0, true));
        // Steps are per N: a rise across two N is not a widening step.
        let ps = [
            point(100, 100, &[60.0, 60.0]),
            point(200, 1000, &[70.0, 70.0]),
        ];
        assert!(steps(&ps, 0.0).is_empty());
    }

    #[test]
    fn bundled_scales_validate_and_edits_are_caught() {
        let file = config::parse::<Fig40Config>(BUNDLED, "b").unwrap();
        for s in Scale::ALL {
            let c = file.scale(s);
            assert!(c.seeds.len() >= 2, "{s}: a spread needs two seeds");
        }
        let p = file.scale(Scale::Paper);
        assert_eq!(p.param_ratios.last(), Some(&60.0));
        let edit =
            |from: &str, to: &str| crate::testing::edit_error::<Fig40Config>(BUNDLED, from, to);
        let e = edit("seeds = [0, 1]", "seeds = [1, 1]");
        assert!(e.contains("seeds"), "{e}");
        let e = edit("train_sizes = [250, 1000]", "train_sizes = [1000, 250]");
        assert!(e.contains("quick.train_sizes"), "{e}");
        let e = edit(
            "train_sizes = [5000, 10000, 50000]",
            "train_sizes = [5000, 60000]",
        );
        assert!(e.contains("train_sizes[1]"), "{e}");
    }
}
