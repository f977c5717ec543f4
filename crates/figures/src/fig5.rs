//! Figures 5 and 18-37 of the paper: are the minima flat, and are they one
//! point? (protocol and deviations: `docs/protocols.md`).
//!
//! One run of SGD then BGD (the main run). Three models from it (after two
//! SGD epochs and the final one) are each copied, perturbed layerwise (std =
//! alpha x the tensor's std) and retrained with BGD, several times from the
//! same model ([`crate::retrain`]). Per model: the retrained runs' curves,
//! MDS of the configured layers (all runs together and run 1 alone), the two
//! agreement matrices between the retrained models and a reference model
//! (trained as the main run from an independent initialisation), and the
//! error along the straight line between retrained runs 1 and 2 before and
//! after retraining.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use landscape_net::{BgdConfig, NetConfig, PerturbSpec, Phase, SgdConfig};
use landscape_trajectory::SnapshotId;
use serde::{Deserialize, Serialize};

use crate::retrain::{self, Agreement, LayerSpread};
use crate::Report;
use landscape_engine::analysis::{Finding, Verdict};
use landscape_engine::config::{self, ensure, ensure_range, Validate};
use landscape_engine::data::DataConfig;
use landscape_engine::eval::{EvalConfig, Metrics};
use landscape_engine::experiment::{self, Experiment, SummaryHead};
use landscape_engine::identity::RunId;
use landscape_engine::plot;
use landscape_engine::recorder::Recorder;
use landscape_engine::session::{self, RunOptions, Session, SessionSpec};
use landscape_engine::ExperimentError;
use landscape_probe::barriers::{self, BarrierStats, Pair, PairBarrier};
use landscape_surface::Barrier;

/// What counts as holding (analysis only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Training error (percent) counted as zero.
    pub zero_error: f64,
    /// Final mean pairwise 1 - cos of the retrained runs, as a share of the
    /// same mean between their perturbed starts, for "different models".
    pub spread: f64,
    /// "Really become different": on both agreement matrices (P(right |
    /// right) and P(wrong | wrong)), the mean among the retrained runs is at
    /// most 1 minus this.
    pub different_margin: f64,
    /// "(Although a little similar)": on both matrices, the mean among the
    /// retrained runs exceeds their mean agreement with the reference model
    /// (row = reference) by at least this.
    pub similar_margin: f64,
    /// Largest excess of training error (points) over the straight line
    /// between the endpoints for "no barrier".
    pub barrier: f64,
    /// "The earlier the perturbation ... the more different the final
    /// model": on every layer, each model's spread ratio (final mean pairwise
    /// 1 - cos of its retrained runs over the same mean between their
    /// perturbed starts) exceeds this times the next later model's.
    pub earlier_factor: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            zero_error: 1.0,
            spread: 0.5,
            different_margin: 0.02,
            similar_margin: 0.02,
            barrier: 1.0,
            earlier_factor: 1.0,
        }
    }
}

/// One scale of the experiment (`experiments/fig5.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fig5Config {
    /// Seed of the main run (initialisation, SGD order); perturbation seeds derive from it.
    pub seed: u64,
    /// Seed of the reference model.
    pub reference_seed: u64,
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
    /// BGD epochs of the main run after its SGD epochs.
    pub bgd_epochs: u32,
    /// SGD epochs whose models are retrained besides the final one.
    pub sgd_models: Vec<u32>,
    /// Retrained runs per model.
    pub retrain_runs: usize,
    /// BGD epochs of each retraining.
    pub retrain_epochs: u32,
    /// Models on the line between retrained runs 1 and 2 (t = 0..1).
    pub interpolation_points: usize,
    /// The paper's layers drawn and measured (analysis).
    pub layers: Vec<usize>,
    /// Points (t = 0..1, evenly spaced) on the line between every pair of
    /// retrained runs of a model, for their barriers (analysis; 0: none).
    #[serde(default = "default_barrier_points")]
    pub barrier_points: usize,
    /// The perturbation before retraining.
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

/// One model the experiment retrains.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelChoice {
    /// `sgd5`, `sgd30` or `final`: the run prefix in the store and the output folder.
    pub name: String,
    /// Its epoch in the main run.
    pub epoch: u32,
    /// Whether it is the final model of the main run.
    pub is_final: bool,
}

impl Fig5Config {
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

    /// The retraining schedule.
    pub fn retrain_phase(&self) -> Phase {
        Phase::Bgd {
            epochs: self.retrain_epochs,
            bgd: self.bgd.clone(),
        }
    }

    /// The last epoch of the main run.
    pub fn final_epoch(&self) -> u32 {
        self.sgd_epochs + self.bgd_epochs
    }

    /// The models retrained, in order.
    pub fn models(&self) -> Vec<ModelChoice> {
        let mut m: Vec<ModelChoice> = self
            .sgd_models
            .iter()
            .map(|&e| ModelChoice {
                name: format!("sgd{e}"),
                epoch: e,
                is_final: false,
            })
            .collect();
        m.push(ModelChoice {
            name: "final".into(),
            epoch: self.final_epoch(),
            is_final: true,
        });
        m
    }

    /// The t of every point on the interpolation lines (0 and 1 exactly).
    pub fn line_ts(&self) -> Vec<f64> {
        let n = self.interpolation_points.max(2);
        (0..n).map(|i| i as f64 / (n - 1) as f64).collect()
    }
}

impl Validate for Fig5Config {
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
        for (i, &e) in self.sgd_models.iter().enumerate() {
            ensure(
                (1..=self.sgd_epochs).contains(&e),
                &format!("{p}.sgd_models[{i}]"),
                format!(
                    "SGD epoch {e} is not one of the main run's SGD epochs 1..={}",
                    self.sgd_epochs
                ),
            )?;
        }
        ensure(
            self.sgd_models.windows(2).all(|w| w[0] < w[1]),
            &format!("{p}.sgd_models"),
            "must be strictly increasing",
        )?;
        ensure(
            (2..=64).contains(&self.retrain_runs),
            &format!("{p}.retrain_runs"),
            format!(
                "{} must be between 2 and 64 (runs are compared in pairs)",
                self.retrain_runs
            ),
        )?;
        ensure(
            (2..=1001).contains(&self.interpolation_points),
            &format!("{p}.interpolation_points"),
            format!(
                "{} must be between 2 and 1001 (t = 0 and t = 1 at least)",
                self.interpolation_points
            ),
        )?;
        barriers::validate_points(self.barrier_points, &format!("{p}.barrier_points"))?;
        ensure(
            self.reference_seed != self.seed,
            &format!("{p}.reference_seed"),
            "must differ from seed: the reference model is an independent initialisation",
        )?;
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
        let t = &self.thresholds;
        let k = |n: &str| format!("{p}.thresholds.{n}");
        ensure_range(t.zero_error, 0.0, 100.0, &k("zero_error"))?;
        ensure_range(t.spread, 0.0, 1e6, &k("spread"))?;
        ensure_range(t.different_margin, 0.0, 1.0, &k("different_margin"))?;
        ensure_range(t.similar_margin, 0.0, 1.0, &k("similar_margin"))?;
        ensure_range(t.barrier, -100.0, 100.0, &k("barrier"))?;
        ensure_range(t.earlier_factor, 1.0, 1e6, &k("earlier_factor"))
    }
}

/// The bundled `experiments/fig5.toml`.
pub const BUNDLED: &str = include_str!("../../../experiments/fig5.toml");

/// The experiment, as the registry (`crate::EXPERIMENTS`) knows it.
pub struct Fig5;

impl Experiment for Fig5 {
    fn name(&self) -> &'static str {
        "fig5"
    }

    fn description(&self) -> &'static str {
        "Figures 5 and 18-37: perturb SGD and BGD models, retrain 4 times, agreement matrices, interpolation"
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
pub fn load_config(opts: &RunOptions) -> Result<Fig5Config> {
    experiment::load_config(&Fig5, opts)
}

/// The straight line between two models: t and the stored metrics.
#[derive(Clone, Debug, Serialize)]
pub struct LinePoint {
    /// Position on the line (0: run 1, 1: run 2).
    pub t: f64,
    /// Its snapshot.
    pub snapshot: SnapshotId,
    /// Its evaluation.
    pub metrics: Metrics,
}

/// Everything measured about one retrained model.
#[derive(Clone, Debug, Serialize)]
pub struct ModelSummary {
    /// Which model.
    pub model: ModelChoice,
    /// Its own evaluation in the main run.
    pub parent: Metrics,
    /// Each run right after perturbing (epoch 0).
    pub perturbed: Vec<Metrics>,
    /// Each run after retraining.
    pub retrained: Vec<Metrics>,
    /// Per layer.
    pub spreads: Vec<LayerSpread>,
    /// Names of the agreement matrices' rows and columns.
    pub agreement_models: Vec<String>,
    /// The matrices (test set).
    pub agreement: Agreement,
    /// Mean P(right | right) among the retrained runs (off the diagonal).
    pub agreement_among: f64,
    /// Mean P(retrained right | reference right): the reference model's row
    /// of `agreement.right`, over the retrained runs' columns.
    pub agreement_with_reference: f64,
    /// Mean P(wrong | wrong) among the retrained runs (off the diagonal).
    pub agreement_among_wrong: f64,
    /// Mean P(retrained wrong | reference wrong): the reference model's row
    /// of `agreement.wrong`, over the retrained runs' columns.
    pub agreement_with_reference_wrong: f64,
    /// The line between perturbed models 1 and 2.
    pub line_before: Vec<LinePoint>,
    /// The line between retrained models 1 and 2.
    pub line_after: Vec<LinePoint>,
    /// Training error along the line after retraining, over the chord.
    pub barrier_after: Option<Barrier>,
    /// The same before retraining.
    pub barrier_before: Option<Barrier>,
    /// Training loss along the line after retraining, over the chord.
    pub loss_barrier_after: Option<Barrier>,
    /// The barriers between every pair of retrained runs (last epoch).
    pub pair_barriers: Vec<PairBarrier>,
    /// Their largest and median values.
    pub pair_barrier_stats: Option<BarrierStats>,
    /// The verdicts.
    pub findings: Vec<Finding>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The experiment, scale and BN evaluation policy (of every number here).
    #[serde(flatten)]
    pub head: SummaryHead,
    /// Training images.
    pub train_images: usize,
    /// The main run at its last epoch.
    pub main_final: Metrics,
    /// The reference model.
    pub reference_final: Metrics,
    /// Per retrained model.
    pub models: Vec<ModelSummary>,
    /// The verdicts that compare the models (`earlier_more_different`).
    pub findings: Vec<Finding>,
}

/// The reference model's run.
pub fn reference_run() -> RunId {
    RunId::Named {
        name: "reference".into(),
    }
}

/// The run holding the line between runs 1 and 2 of `model`, before or after retraining.
pub fn line_run(model: &str, after: bool) -> RunId {
    RunId::Named {
        name: format!("{model}/line-{}", if after { "after" } else { "before" }),
    }
}

/// Runs (or resumes) the experiment and writes every output into `opts.out`.
pub fn run(opts: &RunOptions) -> Result<Summary> {
    let cfg = load_config(opts)?;
    let models = cfg.models();
    let outputs: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    let mut s = Session::start(
        opts,
        &SessionSpec {
            experiment: "fig5",
            config: &cfg,
            seed: cfg.seed,
            data: &cfg.data,
            net: &cfg.net,
            analysis_only: ANALYSIS_ONLY,
            outputs: &outputs,
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
    let main = s.log.phase("train_main", || {
        rec.trajectory(&RunId::Main, 0, &phases, cfg.seed, || rec.init(cfg.seed))
    })?;
    let reference = s.log.phase("train_reference", || {
        rec.trajectory(&reference_run(), 0, &phases, cfg.reference_seed, || {
            rec.init(cfg.reference_seed)
        })
    })?;
    let ts = cfg.line_ts();
    let mut trained = Vec::new();
    for (mi, m) in models.iter().enumerate() {
        let parent = *main
            .get(&m.epoch)
            .with_context(|| format!("the main run has no epoch {}", m.epoch))?;
        let runs = s.log.phase(&format!("retrain_{}", m.name), || {
            retrain::retrain(
                &rec,
                &m.name,
                mi,
                parent,
                &cfg.perturb,
                &cfg.retrain_phase(),
                cfg.retrain_runs,
                cfg.seed,
            )
        })?;
        let (before, after) = s.log.phase(&format!("lines_{}", m.name), || {
            let ends = |e: u32| -> Result<(SnapshotId, SnapshotId)> {
                Ok((
                    *runs[0].get(&e).context("run 1 has no such epoch")?,
                    *runs[1].get(&e).context("run 2 has no such epoch")?,
                ))
            };
            let (a0, b0) = ends(0)?;
            let (a1, b1) = ends(cfg.retrain_epochs)?;
            Ok::<_, anyhow::Error>((
                rec.line(&line_run(&m.name, false), a0, b0, &ts)?,
                rec.line(&line_run(&m.name, true), a1, b1, &ts)?,
            ))
        })?;
        trained.push((parent, runs, before, after));
    }
    let ref_final = *reference
        .get(&cfg.final_epoch())
        .context("the reference run has no last epoch")?;
    let mut summaries = Vec::new();
    for (m, (parent, runs, before, after)) in models.iter().zip(&trained) {
        let ms = s.log.phase(&format!("analyse_{}", m.name), || {
            analyse(
                &cfg, m, &rec, *parent, runs, ref_final, before, after, &s.out,
            )
        })?;
        summaries.push(ms);
    }
    let main_final = rec.metrics(main[&cfg.final_epoch()])?;
    let reference_final = rec.metrics(ref_final)?;
    let summary = Summary {
        head: SummaryHead::new("fig5", opts, &cfg.eval),
        train_images: s.data.train_len(),
        main_final,
        reference_final,
        findings: vec![earlier_more_different(&cfg.thresholds, &summaries)],
        models: summaries,
    };
    experiment::finish(&s.out, &mut s.log, &summary, rec.written())?;
    Ok(summary)
}

fn line_points(rec: &Recorder<'_>, line: &[(f64, SnapshotId)]) -> Result<Vec<LinePoint>> {
    line.iter()
        .map(|&(t, id)| {
            Ok(LinePoint {
                t,
                snapshot: id,
                metrics: rec.metrics(id)?,
            })
        })
        .collect()
}

/// The barrier of `f` along a stored line (`None` if the line lacks t = 0 or
/// 1, or a value in between is not finite).
fn barrier(line: &[LinePoint], f: fn(&Metrics) -> f64) -> Option<Barrier> {
    let ts: Vec<f64> = line.iter().map(|p| p.t).collect();
    let vs: Vec<f64> = line.iter().map(|p| f(&p.metrics)).collect();
    Barrier::of(&ts, &vs).ok()
}

#[allow(clippy::too_many_arguments)]
fn analyse(
    cfg: &Fig5Config,
    m: &ModelChoice,
    rec: &Recorder<'_>,
    parent: SnapshotId,
    runs: &[BTreeMap<u32, SnapshotId>],
    reference: SnapshotId,
    before: &[(f64, SnapshotId)],
    after: &[(f64, SnapshotId)],
    out: &Path,
) -> Result<ModelSummary> {
    let last = cfg.retrain_epochs;
    let ids = |e: u32| -> Result<Vec<SnapshotId>> {
        runs.iter()
            .enumerate()
            .map(|(k, r)| {
                r.get(&e).copied().with_context(|| {
                    format!(
                        "{} has no epoch {e}",
                        retrain::run_id(&m.name, k).run_name()
                    )
                })
            })
            .collect()
    };
    let (starts, ends) = (ids(0)?, ids(last)?);
    let metrics =
        |v: &[SnapshotId]| -> Result<Vec<Metrics>> { v.iter().map(|&i| rec.metrics(i)).collect() };
    let perturbed = metrics(&starts)?;
    let retrained = metrics(&ends)?;

    // Agreement on the test set: the retrained models, then the reference.
    let mut correct = Vec::new();
    for &id in ends.iter().chain(std::iter::once(&reference)) {
        let mut model = rec.load(id)?;
        correct.push(rec.evaluator().test_correct(&mut model)?);
    }
    let agreement = Agreement::of(&correct)?;
    let n = runs.len();
    let among: Vec<usize> = (0..n).collect();
    let agreement_among = Agreement::mean_off_diagonal(&agreement.right, &among);
    // Row = reference, columns = retrained runs: P(retrained | reference).
    let agreement_with_reference = Agreement::mean_between(&agreement.right, &[n], &among);
    let agreement_among_wrong = Agreement::mean_off_diagonal(&agreement.wrong, &among);
    let agreement_with_reference_wrong = Agreement::mean_between(&agreement.wrong, &[n], &among);
    let mut agreement_models: Vec<String> = (1..=n).map(|k| format!("retrained {k}")).collect();
    agreement_models.push("reference".into());

    let store = rec.store();
    let spreads = cfg
        .layers
        .iter()
        .map(|&layer| retrain::layer_spread(&store, parent, &starts, &ends, layer))
        .collect::<Result<Vec<_>>>()?;

    let line_before = line_points(rec, before)?;
    let line_after = line_points(rec, after)?;
    let dir = out.join(&m.name);
    let run_ids: Vec<RunId> = (0..n).map(|k| retrain::run_id(&m.name, k)).collect();
    let title = format!(
        "{}: epoch-{} model + noise {} x std(W), {} runs",
        m.name, m.epoch, cfg.perturb.alpha, n
    );
    let (mut files, _) = retrain::draw_runs(&store, &dir, &title, &run_ids, &cfg.layers)?;
    drop(store);
    files.extend(draw_agreement(
        &dir,
        &m.name,
        &agreement,
        &agreement_models,
    )?);
    files.extend(draw_lines(&dir, &m.name, &line_before, &line_after)?);
    let pair_barriers = if cfg.barrier_points >= 2 {
        let pairs: Vec<Pair> = (0..n)
            .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
            .map(|(i, j)| Pair {
                label: format!("{}: retrained {} vs {}", m.name, i + 1, j + 1),
                a: ends[i],
                b: ends[j],
            })
            .collect();
        let (rows, f) =
            barriers::pair_barriers(rec, &pairs, &barriers::pair_ts(cfg.barrier_points), &dir)?;
        files.extend(f);
        rows
    } else {
        Vec::new()
    };
    let parent_metrics = rec.metrics(parent)?;
    let mut ms = ModelSummary {
        model: m.clone(),
        parent: parent_metrics,
        perturbed,
        retrained,
        spreads,
        agreement_models,
        agreement_among,
        agreement_with_reference,
        agreement_among_wrong,
        agreement_with_reference_wrong,
        barrier_after: barrier(&line_after, |x| x.train_error),
        barrier_before: barrier(&line_before, |x| x.train_error),
        loss_barrier_after: barrier(&line_after, |x| x.train_loss),
        pair_barrier_stats: (!pair_barriers.is_empty()).then(|| BarrierStats::of(&pair_barriers)),
        pair_barriers,
        agreement,
        line_before,
        line_after,
        findings: Vec::new(),
        files,
    };
    let csv = dir.join("lines.csv");
    write_lines_csv(&csv, &ms)?;
    ms.files.push(csv);
    ms.findings = findings(&cfg.thresholds, &ms);
    Ok(ms)
}

fn write_lines_csv(path: &Path, ms: &ModelSummary) -> Result<()> {
    let mut text = String::from("line,t,snapshot,train_loss,train_error,test_loss,test_error\n");
    for (name, line) in [("before", &ms.line_before), ("after", &ms.line_after)] {
        for p in line {
            text += &format!(
                "{name},{},{},{},{},{},{}\n",
                p.t,
                p.snapshot,
                p.metrics.train_loss,
                p.metrics.train_error,
                p.metrics.test_loss,
                p.metrics.test_error
            );
        }
    }
    landscape_engine::provenance::write_atomic(path, text.as_bytes())
}

fn draw_agreement(
    dir: &Path,
    name: &str,
    a: &Agreement,
    labels: &[String],
) -> Result<Vec<PathBuf>> {
    let n = labels.len();
    let axis: Vec<f64> = (1..=n).map(|i| i as f64).collect();
    // Row r is drawn at y = n - r (row 1 on top), so y's categories run backwards.
    let y_ticks: Vec<String> = labels.iter().rev().cloned().collect();
    let map = |title: &str, m: &[Vec<f64>]| {
        // Row r of the matrix is drawn at y = n - r so that row 1 is on top.
        let values: Vec<Vec<f64>> = (0..n).rev().map(|r| m[r].clone()).collect();
        let marks = (0..n)
            .flat_map(|r| (0..n).map(move |c| (r, c)))
            .map(|(r, c)| plot::LabeledPoint {
                x: (c + 1) as f64,
                y: (n - r) as f64,
                label: format!("{:.2}", m[r][c]),
                tooltip: Some(format!("row {}, column {}", labels[r], labels[c])),
            })
            .collect();
        plot::HeatMap {
            title: title.to_owned(),
            x_label: "column model".to_owned(),
            y_label: "row model".to_owned(),
            xs: axis.clone(),
            ys: axis.clone(),
            values,
            log: false,
            marks,
            x_ticks: labels.to_vec(),
            y_ticks: y_ticks.clone(),
            colour_label: "probability".to_owned(),
        }
    };
    let mut csv = String::from("matrix,row,column,value\n");
    for (mname, m) in [
        ("right_given_right", &a.right),
        ("wrong_given_wrong", &a.wrong),
    ] {
        for (r, row) in m.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                csv += &format!("{mname},{},{},{v}\n", labels[r], labels[c]);
            }
        }
    }
    let path = dir.join("agreement.csv");
    landscape_engine::provenance::write_atomic(&path, csv.as_bytes())?;
    let mut files = vec![path];
    files.extend(plot::heat_maps(
        &dir.join("agreement"),
        &format!(
            "{name}: agreement on the test set between the retrained models and the reference"
        ),
        &[
            map("P(column right | row right)", &a.right),
            map("P(column wrong | row wrong)", &a.wrong),
        ],
        2,
        (1500, 700),
    )?);
    Ok(files)
}

fn draw_lines(
    dir: &Path,
    name: &str,
    before: &[LinePoint],
    after: &[LinePoint],
) -> Result<Vec<PathBuf>> {
    let curve = |line: &[LinePoint], label: &str, col: usize, f: fn(&Metrics) -> f64| plot::Curve {
        name: label.to_owned(),
        color: plot::palette(col),
        points: line.iter().map(|p| (p.t, f(&p.metrics))).collect(),
    };
    let panel = |title: &str, y: &str, f: fn(&Metrics) -> f64| plot::LinePanel {
        title: title.to_owned(),
        x_label: "t: (1 - t) run 1 + t run 2".to_owned(),
        y_label: y.to_owned(),
        curves: vec![
            curve(before, "perturbed models (before retraining)", 1, f),
            curve(after, "retrained models", 2, f),
        ],
    };
    plot::line_panels(
        &dir.join("interpolation"),
        &format!("{name}: the straight line between runs 1 and 2 (BN re-estimated at every point)"),
        &[
            panel("training error", "error %", |m| m.train_error),
            panel("test error", "error %", |m| m.test_error),
            panel("training loss", "loss", |m| m.train_loss),
            panel("test loss", "loss", |m| m.test_loss),
        ],
        2,
        (1400, 1000),
    )
}

fn max_of(v: &[Metrics], f: fn(&Metrics) -> f64) -> f64 {
    v.iter().map(f).fold(f64::NEG_INFINITY, f64::max)
}

/// The paper's findings for one retrained model, judged on the numbers. Never bent to pass.
pub fn findings(t: &Thresholds, ms: &ModelSummary) -> Vec<Finding> {
    let train = |v: &[Metrics]| v.iter().map(|m| m.train_error).collect::<Vec<_>>();
    let after_perturb = max_of(&ms.perturbed, |m| m.train_error);
    let after_retrain = max_of(&ms.retrained, |m| m.train_error);
    let zero_numbers = serde_json::json!({
        "parent_train_error": ms.parent.train_error,
        "largest_after_perturbing": after_perturb,
        "largest_after_retraining": after_retrain,
        "after_perturbing": train(&ms.perturbed),
        "after_retraining": train(&ms.retrained),
    });
    let mut out = vec![if ms.model.is_final {
        Finding {
            id: "zero_error_survives".into(),
            claim: "the minimum is flat: the final model has zero training error, and so has every perturbed copy after retraining (right after perturbing: reported, not judged)".into(),
            verdict: Verdict::from_bool(
                ms.parent.train_error <= t.zero_error && after_retrain <= t.zero_error,
            ),
            threshold: serde_json::json!({ "zero_error": t.zero_error }),
            numbers: zero_numbers,
        }
    } else {
        Finding {
            id: "training_error".into(),
            claim: "training error of the model, of its perturbed copies and after retraining (a model from the SGD phase: not judged for zero error)".into(),
            verdict: Verdict::Reported,
            threshold: serde_json::Value::Null,
            numbers: zero_numbers,
        }
    }];
    let ratios: Vec<f64> = ms.spreads.iter().map(|s| s.ratio).collect();
    out.push(Finding {
        id: "different_models".into(),
        claim: "the retrained runs end at different weights, not one point: their mean pairwise 1 - cos after retraining is at least the threshold's share of the same mean between their perturbed starts, on every layer".into(),
        verdict: Verdict::from_bool(!ratios.is_empty() && ratios.iter().all(|r| r.is_finite() && *r >= t.spread)),
        threshold: serde_json::json!({ "spread": t.spread }),
        numbers: serde_json::json!({
            "layers": ms.spreads.iter().map(|s| s.layer).collect::<Vec<_>>(),
            "end_over_start": ratios,
            "end_mean": ms.spreads.iter().map(|s| s.end.mean).collect::<Vec<_>>(),
            "start_mean": ms.spreads.iter().map(|s| s.start.mean).collect::<Vec<_>>(),
            "perturbation_1_minus_cos": ms.spreads.iter().map(|s| s.perturbation).collect::<Vec<_>>(),
        }),
    });
    out.push(agree_on_test(t, ms));
    let b = |x: &Option<Barrier>| serde_json::to_value(x).unwrap_or(serde_json::Value::Null);
    out.push(Finding {
        id: "no_barrier".into(),
        claim: "no barrier between retrained runs 1 and 2: along the straight line, the training error exceeds the chord between the endpoints by at most the threshold (the paper: interpolations can have even lower error)".into(),
        verdict: Verdict::from_bool(ms.barrier_after.is_some_and(|x| x.height() <= t.barrier)),
        threshold: serde_json::json!({ "barrier": t.barrier }),
        numbers: serde_json::json!({
            "train_error_after": b(&ms.barrier_after),
            "train_loss_after": b(&ms.loss_barrier_after),
            "train_error_before": b(&ms.barrier_before),
        }),
    });
    out
}

/// One agreement matrix, judged for `agree_on_test`.
struct MatrixAgreement {
    /// Mean among the retrained runs (off the diagonal).
    among: f64,
    /// Mean of the reference model's row over the retrained runs' columns.
    with_reference: f64,
}

impl MatrixAgreement {
    /// "Really become different": below 1 by at least the margin.
    fn different(&self, t: &Thresholds) -> bool {
        self.among.is_finite() && self.among <= 1.0 - t.different_margin
    }

    /// "A little similar": above the reference's agreement by at least the margin.
    fn similar(&self, t: &Thresholds) -> bool {
        self.among.is_finite()
            && self.with_reference.is_finite()
            && self.among - self.with_reference >= t.similar_margin
    }

    fn numbers(&self, t: &Thresholds, m: &[Vec<f64>], n: usize) -> serde_json::Value {
        let runs: Vec<usize> = (0..n).collect();
        serde_json::json!({
            "among_retrained": self.among,
            "retrained_given_reference": self.with_reference,
            "reference_given_retrained": Agreement::mean_between(m, &runs, &[n]),
            "one_minus_among": 1.0 - self.among,
            "among_minus_reference": self.among - self.with_reference,
            "different": self.different(t),
            "similar": self.similar(t),
        })
    }
}

/// `agree_on_test`: the paper's "really become different (although a little
/// similar)", on both matrices.
fn agree_on_test(t: &Thresholds, ms: &ModelSummary) -> Finding {
    let right = MatrixAgreement {
        among: ms.agreement_among,
        with_reference: ms.agreement_with_reference,
    };
    let wrong = MatrixAgreement {
        among: ms.agreement_among_wrong,
        with_reference: ms.agreement_with_reference_wrong,
    };
    let n = ms.retrained.len();
    Finding {
        id: "agree_on_test".into(),
        claim: "the retrained models really become different (although a little similar): on P(column right | row right) and on P(column wrong | row wrong), the mean agreement among the retrained runs is below 1 by at least the different margin and above the reference model's agreement with them (row = reference) by at least the similar margin".into(),
        verdict: Verdict::from_bool(
            right.different(t) && right.similar(t) && wrong.different(t) && wrong.similar(t),
        ),
        threshold: serde_json::json!({
            "different_margin": t.different_margin,
            "similar_margin": t.similar_margin,
        }),
        numbers: serde_json::json!({
            "right_given_right": right.numbers(t, &ms.agreement.right, n),
            "wrong_given_wrong": wrong.numbers(t, &ms.agreement.wrong, n),
            "test_errors": ms.retrained.iter().map(|m| m.test_error).collect::<Vec<_>>(),
        }),
    }
}

/// `earlier_more_different`: the paper's "The earlier the perturbation is in
/// the training process the more different the final model would be",
/// judged per layer on the spread ratio (final mean pairwise 1 - cos of a
/// model's retrained runs over the same mean between their perturbed
/// starts) of the models in epoch order. The ratio, not the final spread
/// alone: the perturbation is the same in the paper's units (alpha x each
/// tensor's std) at every model, but its size in 1 - cos is not (the
/// weights' mean against their std and the unperturbed biases change over
/// training), so the ratio asks what retraining made of the same
/// perturbation. The final spreads and their order are reported beside it.
pub fn earlier_more_different(t: &Thresholds, models: &[ModelSummary]) -> Finding {
    let mut ms: Vec<&ModelSummary> = models.iter().collect();
    ms.sort_by_key(|m| m.model.epoch);
    let decreasing = |v: &[f64], factor: f64| {
        v.iter().all(|x| x.is_finite()) && v.windows(2).all(|w| w[0] > factor * w[1])
    };
    let layers: Vec<usize> = ms
        .first()
        .map(|m| m.spreads.iter().map(|s| s.layer).collect())
        .unwrap_or_default();
    let mut all = true;
    let mut per_layer = Vec::new();
    for (i, &layer) in layers.iter().enumerate() {
        let pick = |f: fn(&LayerSpread) -> f64| -> Vec<f64> {
            ms.iter()
                .map(|m| {
                    m.spreads
                        .get(i)
                        .filter(|s| s.layer == layer)
                        .map_or(f64::NAN, f)
                })
                .collect()
        };
        let (ratio, end, start) = (
            pick(|s| s.ratio),
            pick(|s| s.end.mean),
            pick(|s| s.start.mean),
        );
        let holds = decreasing(&ratio, t.earlier_factor);
        all &= holds;
        per_layer.push(serde_json::json!({
            "layer": layer,
            "end_over_start": ratio,
            "end_1_minus_cos": end,
            "start_1_minus_cos": start,
            "end_over_start_decreasing": holds,
            "end_decreasing": decreasing(&end, 1.0),
        }));
    }
    let compared = ms.len() >= 2 && !layers.is_empty();
    Finding {
        id: "earlier_more_different".into(),
        claim: "the earlier the perturbation is in the training process, the more different the final models: on every layer, the spread of the retrained runs (final mean pairwise 1 - cos over the same mean between their perturbed starts) of each model exceeds the threshold times the next later model's (the final spreads alone are reported)".into(),
        verdict: if compared {
            Verdict::from_bool(all)
        } else {
            Verdict::Reported
        },
        threshold: serde_json::json!({ "earlier_factor": t.earlier_factor }),
        numbers: serde_json::json!({
            "models": ms.iter().map(|m| m.model.name.as_str()).collect::<Vec<_>>(),
            "epochs": ms.iter().map(|m| m.model.epoch).collect::<Vec<_>>(),
            "per_layer": per_layer,
        }),
    }
}

/// The terminal report of a finished run.
pub fn report(s: &Summary, out: &Path) -> super::Report {
    let mut files: Vec<PathBuf> = s.models.iter().flat_map(|m| m.files.clone()).collect();
    files.extend(experiment::standard_files(out, [experiment::STORE]));
    super::Report {
        experiment: s.head.experiment.clone(),
        headline: [format!(
            "{} training images; main run: final training error {:.2}%, test error {:.2}%; reference model: {:.2}%, {:.2}% (BN: {})",
            s.train_images,
            s.main_final.train_error,
            s.main_final.test_error,
            s.reference_final.train_error,
            s.reference_final.test_error,
            s.head.bn_eval
        )]
        .into_iter()
        .chain(s.models.iter().filter_map(|m| {
            m.pair_barrier_stats.as_ref().map(|b| {
                b.line(&format!(
                    "between the retrained runs of {} (barriers.csv)",
                    m.model.name
                ))
            })
        }))
        .collect(),
        sections: s
            .models
            .iter()
            .map(|m| super::Section {
                title: format!("{} (main epoch {})", m.model.name, m.model.epoch),
                findings: m.findings.clone(),
            })
            .chain((!s.findings.is_empty()).then(|| super::Section {
                title: "across the models (earliest to latest)".into(),
                findings: s.findings.clone(),
            }))
            .collect(),
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

    fn bundled() -> config::ExperimentFile<Fig5Config> {
        config::parse::<Fig5Config>(BUNDLED, "bundled").unwrap()
    }

    #[test]
    fn paper_scale_is_the_protocol() {
        let file = bundled();
        let p = file.scale(Scale::Paper);
        assert_eq!((p.sgd_epochs, p.bgd_epochs), (60, 400));
        assert_eq!(p.sgd_models, [5, 30]);
        assert_eq!((p.retrain_runs, p.retrain_epochs), (4, 200));
        assert_eq!(p.perturb.alpha, 0.1);
        assert_eq!(p.perturb.scale, landscape_net::PerturbScale::Std);
        assert_eq!(p.layers, [2, 4, 6]);
        assert_eq!((p.sgd.batch_size, p.sgd.lr), (100, 0.01));
        assert_eq!(p.data.train_size, None);
        assert_eq!(p.net, NetConfig::paper());
        let names: Vec<String> = p.models().into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["sgd5", "sgd30", "final"]);
        assert_eq!(p.models()[2].epoch, 460);
        let ts = p.line_ts();
        assert_eq!(ts.len(), 11);
        assert_eq!((ts[0], ts[10]), (0.0, 1.0));
        for s in Scale::ALL {
            let c = file.scale(s);
            assert!(c.interpolation_points >= 5, "{s}");
            assert_eq!(c.retrain_runs, 4, "{s}: the paper's 4 runs at every scale");
            assert_eq!(c.perturb, p.perturb, "{s}");
        }
    }

    fn metrics(train: f64, test: f64) -> Metrics {
        Metrics {
            train_loss: train / 100.0,
            train_error: train,
            test_loss: 2.0,
            test_error: test,
        }
    }

    fn spread(ratio: f64) -> LayerSpread {
        let s = |m| Spread {
            mean: m,
            min: m,
            max: m,
        };
        LayerSpread {
            layer: 2,
            perturbation: 0.01,
            start: s(0.02),
            end: s(0.02 * ratio),
            ratio,
        }
    }

    fn line(vals: &[f64]) -> Vec<LinePoint> {
        let n = vals.len();
        vals.iter()
            .enumerate()
            .map(|(i, &v)| LinePoint {
                t: i as f64 / (n - 1) as f64,
                snapshot: SnapshotId(i as u64),
                metrics: metrics(v, 40.0),
            })
            .collect()
    }

    fn summary(
        is_final: bool,
        after: f64,
        ratio: f64,
        agree: f64,
        line_after: &[f64],
    ) -> ModelSummary {
        let la = line(line_after);
        ModelSummary {
            model: ModelChoice {
                name: "final".into(),
                epoch: 10,
                is_final,
            },
            parent: metrics(0.0, 40.0),
            perturbed: vec![metrics(after, 40.0); 4],
            retrained: vec![metrics(0.0, 40.0); 4],
            spreads: vec![spread(ratio), spread(ratio)],
            agreement_models: vec![],
            agreement: Agreement {
                right: vec![],
                wrong: vec![],
            },
            agreement_among: agree,
            agreement_with_reference: 0.6,
            agreement_among_wrong: agree,
            agreement_with_reference_wrong: 0.6,
            line_before: line(&[0.0, 30.0, 0.0]),
            barrier_after: barrier(&la, |m| m.train_error),
            barrier_before: None,
            loss_barrier_after: None,
            pair_barriers: vec![],
            pair_barrier_stats: None,
            line_after: la,
            findings: vec![],
            files: vec![],
        }
    }

    fn verdicts(ms: &ModelSummary) -> BTreeMap<String, Verdict> {
        findings(&Thresholds::default(), ms)
            .into_iter()
            .map(|f| (f.id, f.verdict))
            .collect()
    }

    #[test]
    fn verdicts_hold_on_paper_like_numbers() {
        let v = verdicts(&summary(true, 0.0, 1.2, 0.85, &[0.0, 0.0, 0.0]));
        assert_eq!(v["zero_error_survives"], Verdict::Holds);
        assert_eq!(v["different_models"], Verdict::Holds);
        assert_eq!(v["agree_on_test"], Verdict::Holds);
        assert_eq!(v["no_barrier"], Verdict::Holds);
        // An SGD-phase model is reported, not judged for zero error.
        let v = verdicts(&summary(false, 30.0, 1.2, 0.85, &[0.0, 0.0, 0.0]));
        assert_eq!(v["training_error"], Verdict::Reported);
        assert!(!v.contains_key("zero_error_survives"));
    }

    #[test]
    fn verdicts_fail_on_contrary_numbers() {
        let mut ms = summary(true, 5.0, 0.1, 0.5, &[0.0, 20.0, 0.0]);
        ms.retrained[2] = metrics(1.2, 40.0);
        let v = verdicts(&ms);
        assert_eq!(v["zero_error_survives"], Verdict::DoesNotHold);
        assert_eq!(v["different_models"], Verdict::DoesNotHold);
        assert_eq!(v["agree_on_test"], Verdict::DoesNotHold);
        assert_eq!(v["no_barrier"], Verdict::DoesNotHold);
        // One layer pulled back to a point is enough to fail.
        let mut ms = summary(true, 0.0, 1.2, 0.85, &[0.0, 0.0, 0.0]);
        ms.spreads[1] = spread(0.2);
        assert_eq!(verdicts(&ms)["different_models"], Verdict::DoesNotHold);
        // The parent itself not at zero error: not a zero-error minimum.
        let mut ms = summary(true, 0.0, 1.2, 0.85, &[0.0, 0.0, 0.0]);
        ms.parent = metrics(3.0, 40.0);
        assert_eq!(verdicts(&ms)["zero_error_survives"], Verdict::DoesNotHold);
    }

    fn finding(ms: &ModelSummary, id: &str) -> Finding {
        findings(&Thresholds::default(), ms)
            .into_iter()
            .find(|f| f.id == id)
            .unwrap()
    }

    #[test]
    fn zero_error_survives_is_judged_after_retraining_only() {
        // Perturbing lifts the training error to 5%; retraining brings every
        // copy back to 0.4% (<= 1%): the minimum is flat.
        let mut ms = summary(true, 5.0, 1.2, 0.85, &[0.0, 0.0, 0.0]);
        ms.retrained[3] = metrics(0.4, 40.0);
        let f = finding(&ms, "zero_error_survives");
        assert_eq!(f.verdict, Verdict::Holds);
        assert_eq!(f.numbers["largest_after_perturbing"], 5.0);
        assert_eq!(f.numbers["largest_after_retraining"], 0.4);
        assert_eq!(f.numbers["after_perturbing"][0], 5.0);
        // One retrained copy at 1.2% > 1%: it does not survive.
        ms.retrained[1] = metrics(1.2, 40.0);
        let f = finding(&ms, "zero_error_survives");
        assert_eq!(f.verdict, Verdict::DoesNotHold);
        assert_eq!(f.numbers["largest_after_retraining"], 1.2);
    }

    /// A 5 x 5 agreement matrix: `among` off the diagonal between the 4
    /// retrained runs, `reference` in the reference's row (4) and column.
    fn matrix(among: f64, reference: f64) -> Vec<Vec<f64>> {
        (0..5)
            .map(|r| {
                (0..5)
                    .map(|c| match (r, c) {
                        _ if r == c => 1.0,
                        (4, _) => reference,
                        (_, 4) => reference - 0.1,
                        _ => among,
                    })
                    .collect()
            })
            .collect()
    }

    fn with_agreement(right: (f64, f64), wrong: (f64, f64)) -> ModelSummary {
        let mut ms = summary(true, 0.0, 1.2, 0.85, &[0.0, 0.0, 0.0]);
        ms.agreement = Agreement {
            right: matrix(right.0, right.1),
            wrong: matrix(wrong.0, wrong.1),
        };
        let among: Vec<usize> = (0..4).collect();
        let mean = |m: &[Vec<f64>]| {
            (
                Agreement::mean_off_diagonal(m, &among),
                Agreement::mean_between(m, &[4], &among),
            )
        };
        (ms.agreement_among, ms.agreement_with_reference) = mean(&ms.agreement.right);
        (ms.agreement_among_wrong, ms.agreement_with_reference_wrong) = mean(&ms.agreement.wrong);
        ms
    }

    #[test]
    fn agree_on_test_is_different_but_a_little_similar_on_both_matrices() {
        let close = |v: &serde_json::Value, x: f64| {
            let y = v.as_f64().unwrap();
            assert!((y - x).abs() < 1e-12, "{y} != {x}");
        };
        // The paper's picture: the copies agree more with each other than
        // with the reference, and not perfectly, on both matrices.
        let f = finding(&with_agreement((0.95, 0.63), (0.90, 0.70)), "agree_on_test");
        assert_eq!(f.verdict, Verdict::Holds);
        let r = &f.numbers["right_given_right"];
        close(&r["among_retrained"], 0.95);
        close(&r["retrained_given_reference"], 0.63);
        close(&r["reference_given_retrained"], 0.53);
        close(&r["one_minus_among"], 0.05);
        close(&r["among_minus_reference"], 0.32);
        assert_eq!(r["different"], true);
        assert_eq!(r["similar"], true);
        let w = &f.numbers["wrong_given_wrong"];
        close(&w["among_retrained"], 0.90);
        close(&w["retrained_given_reference"], 0.70);
        assert_eq!(f.threshold["different_margin"], 0.02);
        assert_eq!(f.threshold["similar_margin"], 0.02);
        // Just inside both margins (0.025 each) still holds.
        let f = finding(
            &with_agreement((0.975, 0.95), (0.90, 0.70)),
            "agree_on_test",
        );
        assert_eq!(f.verdict, Verdict::Holds);
    }

    #[test]
    fn agree_on_test_fails_when_either_half_fails_on_either_matrix() {
        let v = |right, wrong| finding(&with_agreement(right, wrong), "agree_on_test").verdict;
        // Not different: the copies are one model on the test set (right).
        assert_eq!(v((0.995, 0.63), (0.90, 0.70)), Verdict::DoesNotHold);
        // Not different on the wrong | wrong matrix only.
        assert_eq!(v((0.95, 0.63), (0.99, 0.70)), Verdict::DoesNotHold);
        // Not similar: the copies agree with each other no more than with
        // the reference (0.66 against 0.65, the quick sgd2 numbers).
        assert_eq!(v((0.66, 0.65), (0.90, 0.70)), Verdict::DoesNotHold);
        // Not similar on the wrong | wrong matrix only.
        assert_eq!(v((0.95, 0.63), (0.70, 0.72)), Verdict::DoesNotHold);
        // A matrix without numbers (a model never wrong) cannot hold.
        assert_eq!(v((0.95, 0.63), (f64::NAN, 0.70)), Verdict::DoesNotHold);
    }

    /// A model at `epoch` whose layers 2, 4 and 6 start 0.02 apart and end
    /// `ratios` times that.
    fn at_epoch(name: &str, epoch: u32, ratios: [f64; 3]) -> ModelSummary {
        let mut ms = summary(name == "final", 0.0, 1.0, 0.85, &[0.0, 0.0, 0.0]);
        ms.model = ModelChoice {
            name: name.into(),
            epoch,
            is_final: name == "final",
        };
        ms.spreads = [2, 4, 6]
            .iter()
            .zip(ratios)
            .map(|(&layer, r)| LayerSpread { layer, ..spread(r) })
            .collect();
        ms
    }

    #[test]
    fn earlier_more_different_holds_when_every_layer_decreases() {
        let t = Thresholds::default();
        // Given out of order: judged in epoch order sgd5, sgd30, final.
        let models = [
            at_epoch("final", 460, [0.9, 0.8, 0.5]),
            at_epoch("sgd5", 5, [3.0, 2.5, 1.5]),
            at_epoch("sgd30", 30, [1.4, 1.2, 0.9]),
        ];
        let f = earlier_more_different(&t, &models);
        assert_eq!(f.verdict, Verdict::Holds);
        assert_eq!(
            f.numbers["models"],
            serde_json::json!(["sgd5", "sgd30", "final"])
        );
        assert_eq!(f.numbers["epochs"], serde_json::json!([5, 30, 460]));
        let l4 = &f.numbers["per_layer"][1];
        assert_eq!(l4["layer"], 4);
        assert_eq!(l4["end_over_start"], serde_json::json!([2.5, 1.2, 0.8]));
        let end: Vec<f64> = l4["end_1_minus_cos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (e, want) in end.iter().zip([0.05, 0.024, 0.016]) {
            assert!((e - want).abs() < 1e-12, "{e} != {want}");
        }
        assert_eq!(
            l4["start_1_minus_cos"],
            serde_json::json!([0.02, 0.02, 0.02])
        );
        assert_eq!(l4["end_over_start_decreasing"], true);
        assert_eq!(l4["end_decreasing"], true);
        assert_eq!(f.threshold["earlier_factor"], 1.0);
        // The smallest step is layer 4's 1.2 -> 0.8 (x 1.5; the others are
        // x 1.56 and more): a margin of 1.4 holds, one of 1.5 does not.
        let strict = Thresholds {
            earlier_factor: 1.4,
            ..t.clone()
        };
        assert_eq!(
            earlier_more_different(&strict, &models).verdict,
            Verdict::Holds
        );
        let stricter = Thresholds {
            earlier_factor: 1.5,
            ..t
        };
        assert_eq!(
            earlier_more_different(&stricter, &models).verdict,
            Verdict::DoesNotHold
        );
    }

    #[test]
    fn earlier_more_different_fails_when_one_layer_does_not_decrease() {
        let t = Thresholds::default();
        // Layer 6: sgd30's runs end further apart than sgd5's (1.6 > 1.5).
        let models = [
            at_epoch("sgd5", 5, [3.0, 2.5, 1.5]),
            at_epoch("sgd30", 30, [1.4, 1.2, 1.6]),
            at_epoch("final", 460, [0.9, 0.8, 0.5]),
        ];
        let f = earlier_more_different(&t, &models);
        assert_eq!(f.verdict, Verdict::DoesNotHold);
        assert_eq!(f.numbers["per_layer"][0]["end_over_start_decreasing"], true);
        assert_eq!(
            f.numbers["per_layer"][2]["end_over_start_decreasing"],
            false
        );
        assert_eq!(f.numbers["per_layer"][2]["end_decreasing"], false);
        // Equal is not "more different".
        let flat = [
            at_epoch("sgd5", 5, [1.0, 1.0, 1.0]),
            at_epoch("final", 460, [1.0, 1.0, 1.0]),
        ];
        assert_eq!(
            earlier_more_different(&t, &flat).verdict,
            Verdict::DoesNotHold
        );
        // Coinciding starts (ratio NaN) cannot hold.
        let nan = [
            at_epoch("sgd5", 5, [f64::NAN, 2.0, 2.0]),
            at_epoch("final", 460, [1.0, 1.0, 1.0]),
        ];
        assert_eq!(
            earlier_more_different(&t, &nan).verdict,
            Verdict::DoesNotHold
        );
        // One model: nothing to compare, reported.
        let one = [at_epoch("final", 460, [1.0, 1.0, 1.0])];
        assert_eq!(earlier_more_different(&t, &one).verdict, Verdict::Reported);
    }

    #[test]
    fn bundled_scales_validate_and_edits_are_caught() {
        bundled();
        let edit =
            |from: &str, to: &str| crate::testing::edit_error::<Fig5Config>(BUNDLED, from, to);
        let e = edit("sgd_models = [5, 30]", "sgd_models = [5, 61]");
        assert!(e.contains("paper.sgd_models[1]"), "{e}");
        let e = edit("retrain_runs = 4", "retrain_runs = 1");
        assert!(e.contains("retrain_runs"), "{e}");
        let e = edit("layers = [2, 4, 6]", "layers = [2, 7]");
        assert!(e.contains("layers[1]"), "{e}");
        let e = edit("reference_seed = 1", "reference_seed = 0");
        assert!(e.contains("reference_seed"), "{e}");
        let e = edit("alpha = 0.1", "alpha = -0.1");
        assert!(e.contains("perturb.alpha"), "{e}");
        let e = edit("different_margin = 0.02", "different_margin = 1.5");
        assert!(e.contains("thresholds.different_margin"), "{e}");
        let e = edit("similar_margin = 0.02", "similar_margin = -0.1");
        assert!(e.contains("thresholds.similar_margin"), "{e}");
        let e = edit("similar_margin = 0.02", "agreement = 0.75");
        assert!(e.contains("agreement"), "the old key is refused: {e}");
        let e = edit("earlier_factor = 1.0", "earlier_factor = 0.9");
        assert!(e.contains("thresholds.earlier_factor"), "{e}");
        let e = edit("seed = 0", "seed = 0\nsead = 1");
        assert!(e.contains("sead"), "{e}");
    }
}
