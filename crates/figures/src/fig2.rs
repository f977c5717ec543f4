//! Figure 2 of the paper: the "polynomial net" against the ReLU net
//! (protocol and deviations: `docs/protocols.md`).
//!
//! The same network is trained with ReLU and, one run per degree of a sweep,
//! with every ReLU replaced by the polynomial of that degree fitted to ReLU on
//! `[-radius, radius]` (least squares on Chebyshev nodes, evaluated with
//! Horner's rule). Every net starts from the same initial weights (one seed),
//! sees the same data in the same order (one SGD seed) and follows the same
//! SGD schedule. The paper's claim: a polynomial that approximates ReLU well
//! near 0 trains about as well as ReLU. A polynomial net can blow up (a
//! non-finite loss stops its training): that degree is recorded as diverged,
//! with the epoch, never dropped.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use landscape_net::{Activation, NetConfig, Phase, PolyFit, SgdConfig};
use landscape_trajectory::{SnapshotId, Store};
use serde::{Deserialize, Serialize};

use crate::Report;
use landscape_engine::analysis::{csv_field, Finding, Verdict};
use landscape_engine::config::{self, ensure, ensure_range, Validate};
use landscape_engine::data::DataConfig;
use landscape_engine::eval::{EvalConfig, Metrics};
use landscape_engine::experiment::{self, Experiment, SummaryHead};
use landscape_engine::identity::RunId;
use landscape_engine::plot;
use landscape_engine::provenance::write_atomic;
use landscape_engine::recorder::{self, Divergence, Recorder, EPOCH_LOSS, OUT_OF_INTERVAL};
use landscape_engine::session::{self, RunOptions, Session, SessionSpec};
use landscape_engine::ExperimentError;

/// What counts as "about as well" (analysis only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Largest |final training error (polynomial) - (ReLU)|, percentage points.
    pub train_margin: f64,
    /// Largest |final test error (polynomial) - (ReLU)|, percentage points.
    pub test_margin: f64,
    /// Largest share (0..1) of hidden pre-activations outside `[-r, r]` in any
    /// epoch for the polynomial net to count as the approximation the theory
    /// needs.
    pub out_of_interval: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            train_margin: 5.0,
            test_margin: 5.0,
            out_of_interval: 0.01,
        }
    }
}

/// One scale of the experiment (`experiments/fig2.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fig2Config {
    /// Seed of the initialisation (every net's) and of the SGD data order.
    pub seed: u64,
    /// Which images.
    #[serde(default)]
    pub data: DataConfig,
    /// The ReLU network; the polynomial nets are the same with another activation.
    #[serde(default)]
    pub net: NetConfig,
    /// The SGD schedule of every net.
    #[serde(default)]
    pub sgd: SgdConfig,
    /// SGD epochs of every net.
    pub epochs: u32,
    /// Half-width of the interval `[-radius, radius]` the polynomials fit ReLU on.
    pub radius: f64,
    /// The polynomial degrees of the sweep (strictly increasing).
    pub degrees: Vec<usize>,
    /// The degree drawn against ReLU and judged by `trains_like_relu` (analysis).
    pub main_degree: usize,
    /// Evaluation.
    #[serde(default)]
    pub eval: EvalConfig,
    /// Verdict thresholds (analysis).
    #[serde(default)]
    pub thresholds: Thresholds,
}

/// Config keys that change only the analysis, not the stored models.
pub const ANALYSIS_ONLY: &[&str] = &["thresholds", "main_degree"];

impl Fig2Config {
    /// The SGD phase every net trains with.
    pub fn phases(&self) -> Vec<Phase> {
        vec![Phase::Sgd {
            epochs: self.epochs,
            sgd: self.sgd.clone(),
        }]
    }

    /// The polynomial fits of the sweep, in the order of `degrees`.
    pub fn fits(&self) -> Result<Vec<PolyFit>> {
        self.degrees
            .iter()
            .map(|&d| Ok(Activation::fit_relu(d, self.radius)?))
            .collect()
    }
}

impl Validate for Fig2Config {
    fn validate(&self, p: &str) -> Result<(), ExperimentError> {
        config::validate_setup(p, &self.data, Some(&self.net), &self.eval)?;
        ensure(
            self.net.activation == Activation::Relu,
            &format!("{p}.net.activation"),
            "must be relu: it is the ReLU net; the polynomial nets come from `degrees` and `radius`",
        )?;
        config::ensure_epochs(p, &[("epochs", self.epochs)])?;
        for ph in self.phases() {
            ph.validate(p)?;
        }
        ensure_range(self.radius, 1e-3, 1e3, &format!("{p}.radius"))?;
        ensure(
            !self.degrees.is_empty(),
            &format!("{p}.degrees"),
            "needs at least one degree",
        )?;
        ensure(
            self.degrees.windows(2).all(|w| w[0] < w[1]),
            &format!("{p}.degrees"),
            "must be strictly increasing",
        )?;
        for (i, &d) in self.degrees.iter().enumerate() {
            Activation::fit_relu(d, self.radius).map_err(|e| ExperimentError::Config {
                key: format!("{p}.degrees[{i}]"),
                reason: e.to_string(),
            })?;
        }
        ensure(
            self.degrees.contains(&self.main_degree),
            &format!("{p}.main_degree"),
            format!(
                "{} is not one of the degrees {:?}",
                self.main_degree, self.degrees
            ),
        )?;
        let t = &self.thresholds;
        ensure_range(
            t.train_margin,
            0.0,
            100.0,
            &format!("{p}.thresholds.train_margin"),
        )?;
        ensure_range(
            t.test_margin,
            0.0,
            100.0,
            &format!("{p}.thresholds.test_margin"),
        )?;
        ensure_range(
            t.out_of_interval,
            0.0,
            1.0,
            &format!("{p}.thresholds.out_of_interval"),
        )
    }
}

/// The bundled `experiments/fig2.toml`.
pub const BUNDLED: &str = include_str!("../../../experiments/fig2.toml");

/// The experiment, as the registry (`crate::EXPERIMENTS`) knows it.
pub struct Fig2;

impl Experiment for Fig2 {
    fn name(&self) -> &'static str {
        "fig2"
    }

    fn description(&self) -> &'static str {
        "Figure 2: the polynomial net against the ReLU net (SGD, a sweep over degrees)"
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
pub fn load_config(opts: &RunOptions) -> Result<Fig2Config> {
    experiment::load_config(&Fig2, opts)
}

/// The run name of the ReLU net.
pub const RELU: &str = "relu";

/// The run name of the polynomial net of `degree`.
pub fn poly_name(degree: usize) -> String {
    format!("poly-d{degree}")
}

/// One row of the sweep table: a net, how far it trained, its final numbers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NetRow {
    /// Run name: `relu` or `poly-d<degree>`.
    pub name: String,
    /// Polynomial degree (`None` for ReLU).
    pub degree: Option<usize>,
    /// Fitting interval half-width (`None` for ReLU).
    pub radius: Option<f64>,
    /// `max |p - relu|` on `[-r, r]` (`None` for ReLU).
    pub sup_error: Option<f64>,
    /// The activation the net ran (ReLU, or the polynomial's coefficients).
    pub activation: Activation,
    /// `complete` or `diverged`.
    pub status: String,
    /// Where training diverged, if it did.
    pub diverged: Option<Divergence>,
    /// The last stored epoch (the final one, or the one before divergence).
    pub last_epoch: u32,
    /// The metrics of that epoch's stored snapshot.
    pub last: Metrics,
    /// Final training error minus ReLU's (percentage points).
    pub train_error_vs_relu: f64,
    /// Final test error minus ReLU's (percentage points).
    pub test_error_vs_relu: f64,
    /// Largest per-epoch share of hidden pre-activations outside `[-r, r]`.
    pub max_out_of_interval_share: f64,
    /// The share in the last stored epoch.
    pub last_out_of_interval_share: f64,
}

impl NetRow {
    /// Trained every planned epoch.
    pub fn complete(&self) -> bool {
        self.diverged.is_none()
    }

    /// The status as printed: `complete` or `diverged at epoch E (step S)`.
    pub fn status_text(&self) -> String {
        match &self.diverged {
            None => "complete".into(),
            Some(d) => format!("diverged at epoch {} (step {})", d.epoch, d.step),
        }
    }

    /// The legend text: ReLU, or the polynomial's degree, interval and sup error.
    pub fn legend(&self) -> String {
        let base = match (self.degree, self.radius, self.sup_error) {
            (Some(d), Some(r), Some(e)) => {
                format!("polynomial degree {d} on [-{r}, {r}], sup error {e:.3}")
            }
            _ => "ReLU".into(),
        };
        match &self.diverged {
            Some(d) => format!("{base} (diverged at epoch {})", d.epoch),
            None => base,
        }
    }
}

/// One stored epoch of one net: the evaluated metrics and what training measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EpochRow {
    /// The snapshot.
    pub id: SnapshotId,
    /// The epoch.
    pub epoch: u32,
    /// Evaluated metrics.
    pub metrics: Metrics,
    /// Mean training loss during the epoch (absent at epoch 0).
    pub epoch_loss: Option<f64>,
    /// Share of pre-activations outside `[-r, r]` during the epoch (absent at epoch 0).
    pub out_of_interval_share: Option<f64>,
}

/// `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The experiment, scale and BN evaluation policy (of every number here).
    #[serde(flatten)]
    pub head: SummaryHead,
    /// SGD epochs planned for every net.
    pub epochs: u32,
    /// Training images.
    pub train_images: usize,
    /// The interval half-width.
    pub radius: f64,
    /// The degree drawn against ReLU.
    pub main_degree: usize,
    /// The sweep table: ReLU first, then each degree.
    pub sweep: Vec<NetRow>,
    /// The verdicts.
    pub findings: Vec<Finding>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Trains `run` with the recorder's current net; a divergence is an outcome,
/// not an error: the stored prefix is returned with where it diverged.
pub fn train_or_diverge(
    rec: &Recorder<'_>,
    run: &RunId,
    phases: &[Phase],
    seed: u64,
) -> Result<(BTreeMap<u32, SnapshotId>, Option<Divergence>)> {
    match rec.trajectory(run, 0, phases, seed, || rec.init(seed)) {
        Ok(ids) => Ok((ids, None)),
        Err(e) => match recorder::divergence(&e) {
            Some(d) => {
                tracing::warn!(
                    run = %run.run_name(),
                    epoch = d.epoch,
                    step = d.step,
                    loss = d.loss,
                    "training diverged; recorded as diverged"
                );
                Ok((rec.existing(run), Some(d)))
            }
            None => Err(e),
        },
    }
}

/// Runs (or resumes) the experiment and writes every output into `opts.out`.
pub fn run(opts: &RunOptions) -> Result<Summary> {
    let cfg = load_config(opts)?;
    let mut s = Session::start(
        opts,
        &SessionSpec {
            experiment: "fig2",
            config: &cfg,
            seed: cfg.seed,
            data: &cfg.data,
            net: &cfg.net,
            analysis_only: ANALYSIS_ONLY,
            outputs: &["fig2"],
        },
    )?;
    let mut rec = session::recorder(
        &s.out,
        &s.data,
        &cfg.eval,
        &cfg.net,
        s.device,
        &s.fingerprint,
    )?;
    let phases = cfg.phases();
    let fits = cfg.fits()?;
    // ReLU first, then the degrees; one run identity per network.
    let mut nets: Vec<(String, NetConfig, Option<&PolyFit>)> =
        vec![(RELU.to_owned(), cfg.net.clone(), None)];
    for f in &fits {
        nets.push((
            poly_name(f.degree),
            cfg.net.clone().with_activation(f.activation.clone()),
            Some(f),
        ));
    }
    let mut trained = Vec::new();
    for (name, net, fit) in &nets {
        rec.set_net(net.clone());
        let run = RunId::Named { name: name.clone() };
        let (ids, div) = s.log.phase(&format!("train_{name}"), || {
            train_or_diverge(&rec, &run, &phases, cfg.seed)
        })?;
        trained.push((name.clone(), *fit, ids, div));
    }

    let store = rec.store();
    let dir = s.out.join("fig2");
    std::fs::create_dir_all(&dir)?;
    let mut curves = BTreeMap::new();
    for (name, _, ids, _) in &trained {
        curves.insert(name.clone(), epoch_rows(&store, ids)?);
    }
    let mut rows = Vec::new();
    for (name, fit, _, div) in &trained {
        rows.push(net_row(name, *fit, *div, &curves[name])?);
    }
    set_relu_differences(&mut rows);
    let mut files = Vec::new();
    files.push(write_curves_csv(&dir.join("curves.csv"), &curves)?);
    files.push(write_sweep_csv(&dir.join("sweep.csv"), &rows)?);
    files.extend(draw(&cfg, &dir, &rows, &curves)?);
    let findings = findings(&cfg.thresholds, cfg.main_degree, &rows);
    let summary = Summary {
        head: SummaryHead::new("fig2", opts, &cfg.eval),
        epochs: cfg.epochs,
        train_images: s.data.train_len(),
        radius: cfg.radius,
        main_degree: cfg.main_degree,
        sweep: rows,
        findings,
        files,
    };
    drop(store);
    experiment::finish(&s.out, &mut s.log, &summary, rec.written())?;
    Ok(summary)
}

/// The stored epochs of one trajectory, with the training-time metrics.
pub fn epoch_rows(store: &Store, ids: &BTreeMap<u32, SnapshotId>) -> Result<Vec<EpochRow>> {
    ids.iter()
        .map(|(&epoch, &id)| {
            let info = store.get(id)?;
            let meta = info.meta();
            Ok(EpochRow {
                id,
                epoch,
                metrics: Metrics::from_map(meta.metrics())
                    .with_context(|| format!("snapshot {id} has no train/test metrics"))?,
                epoch_loss: meta.metric(EPOCH_LOSS),
                out_of_interval_share: meta.metric(OUT_OF_INTERVAL),
            })
        })
        .collect()
}

fn net_row(
    name: &str,
    fit: Option<&PolyFit>,
    diverged: Option<Divergence>,
    epochs: &[EpochRow],
) -> Result<NetRow> {
    let last = epochs
        .last()
        .with_context(|| format!("`{name}` has no stored epoch"))?;
    let shares: Vec<f64> = epochs
        .iter()
        .filter_map(|e| e.out_of_interval_share)
        .collect();
    Ok(NetRow {
        name: name.to_owned(),
        degree: fit.map(|f| f.degree),
        radius: fit.map(|f| f.radius),
        sup_error: fit.map(|f| f.sup_error),
        activation: fit.map_or(Activation::Relu, |f| f.activation.clone()),
        status: if diverged.is_some() {
            "diverged"
        } else {
            "complete"
        }
        .into(),
        diverged,
        last_epoch: last.epoch,
        last: last.metrics,
        train_error_vs_relu: f64::NAN,
        test_error_vs_relu: f64::NAN,
        max_out_of_interval_share: shares.iter().copied().fold(0.0, f64::max),
        last_out_of_interval_share: shares.last().copied().unwrap_or(0.0),
    })
}

/// Fills each row's differences to the ReLU row (NaN without one).
pub fn set_relu_differences(rows: &mut [NetRow]) {
    let relu = rows.iter().find(|r| r.degree.is_none()).map(|r| r.last);
    for r in rows.iter_mut() {
        let (tr, te) = relu.map_or((f64::NAN, f64::NAN), |m| {
            (
                r.last.train_error - m.train_error,
                r.last.test_error - m.test_error,
            )
        });
        r.train_error_vs_relu = tr;
        r.test_error_vs_relu = te;
    }
}

pub(crate) fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// `curves.csv`: one line per stored epoch of every net, the stored values unrounded.
pub(crate) fn write_curves_csv(
    path: &Path,
    curves: &BTreeMap<String, Vec<EpochRow>>,
) -> Result<PathBuf> {
    let mut text = String::from(
        "net,epoch,snapshot,train_error,test_error,train_loss,test_loss,epoch_loss,out_of_interval_share\n",
    );
    for (name, rows) in curves {
        for r in rows {
            let m = r.metrics;
            text += &format!(
                "{},{},{},{},{},{},{},{},{}\n",
                csv_field(name),
                r.epoch,
                r.id,
                m.train_error,
                m.test_error,
                m.train_loss,
                m.test_loss,
                opt(r.epoch_loss),
                opt(r.out_of_interval_share)
            );
        }
    }
    write_atomic(path, text.as_bytes())?;
    Ok(path.to_path_buf())
}

/// `sweep.csv`: the sweep table, the stored values unrounded.
fn write_sweep_csv(path: &Path, rows: &[NetRow]) -> Result<PathBuf> {
    let mut text = String::from(
        "net,degree,radius,sup_error,status,diverged_epoch,diverged_step,last_epoch,final_train_error,final_test_error,final_train_loss,final_test_loss,train_error_vs_relu,test_error_vs_relu,max_out_of_interval_share,last_out_of_interval_share\n",
    );
    for r in rows {
        text += &format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            csv_field(&r.name),
            opt(r.degree),
            opt(r.radius),
            opt(r.sup_error),
            r.status,
            opt(r.diverged.map(|d| d.epoch)),
            opt(r.diverged.map(|d| d.step)),
            r.last_epoch,
            r.last.train_error,
            r.last.test_error,
            r.last.train_loss,
            r.last.test_loss,
            r.train_error_vs_relu,
            r.test_error_vs_relu,
            r.max_out_of_interval_share,
            r.last_out_of_interval_share
        );
    }
    write_atomic(path, text.as_bytes())?;
    Ok(path.to_path_buf())
}

fn draw(
    cfg: &Fig2Config,
    dir: &Path,
    rows: &[NetRow],
    curves: &BTreeMap<String, Vec<EpochRow>>,
) -> Result<Vec<PathBuf>> {
    let finite = |pts: Vec<(f64, f64)>| -> Vec<(f64, f64)> {
        pts.into_iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect()
    };
    let series = |r: &NetRow, f: &dyn Fn(&EpochRow) -> Option<f64>| -> Vec<(f64, f64)> {
        finite(
            curves
                .get(&r.name)
                .map(|rs| {
                    rs.iter()
                        .filter_map(|e| Some((f64::from(e.epoch), f(e)?)))
                        .collect()
                })
                .unwrap_or_default(),
        )
    };
    // One colour per net, the same in every panel: ReLU black, then the degrees.
    let color = |r: &NetRow| plot::palette(rows.iter().position(|x| x.name == r.name).unwrap_or(0));
    let x_label = format!("epoch (SGD, batch {})", cfg.sgd.batch_size);
    let metric_panels = |shown: &[&NetRow]| -> Vec<plot::LinePanel> {
        let panel = |title: &str, y: &str, f: fn(&Metrics) -> f64| plot::LinePanel {
            title: title.to_owned(),
            x_label: x_label.clone(),
            y_label: y.to_owned(),
            curves: shown
                .iter()
                .map(|r| plot::Curve {
                    name: r.legend(),
                    color: color(r),
                    points: series(r, &|e| Some(f(&e.metrics))),
                })
                .collect(),
        };
        vec![
            panel("training error", "error %", |m| m.train_error),
            panel("test error", "error %", |m| m.test_error),
            panel("training loss", "loss", |m| m.train_loss),
            panel("test loss", "loss", |m| m.test_loss),
        ]
    };
    let relu = rows.iter().find(|r| r.degree.is_none());
    let main = rows.iter().find(|r| r.degree == Some(cfg.main_degree));
    let polys: Vec<&NetRow> = rows.iter().filter(|r| r.degree.is_some()).collect();
    let side_by_side: Vec<&NetRow> = relu.into_iter().chain(main).collect();
    let mut panels = metric_panels(&side_by_side);
    panels.push(plot::LinePanel {
        title: format!(
            "pre-activations outside [-{r}, {r}] during each epoch",
            r = cfg.radius
        ),
        x_label: x_label.clone(),
        y_label: "% of hidden pre-activations".into(),
        curves: polys
            .iter()
            .map(|r| plot::Curve {
                name: format!("degree {}", r.degree.unwrap_or(0)),
                color: color(r),
                points: series(r, &|e| e.out_of_interval_share.map(|s| 100.0 * s)),
            })
            .collect(),
    });
    let completed: Vec<&&NetRow> = polys.iter().filter(|r| r.complete()).collect();
    let at_degree = |f: fn(&Metrics) -> f64| -> Vec<(f64, f64)> {
        finite(
            completed
                .iter()
                .map(|r| (r.degree.unwrap_or(0) as f64, f(&r.last)))
                .collect(),
        )
    };
    let flat = |v: Option<f64>| -> Vec<(f64, f64)> {
        match (v, cfg.degrees.first(), cfg.degrees.last()) {
            (Some(v), Some(&a), Some(&b)) => finite(vec![(a as f64, v), (b as f64, v)]),
            _ => Vec::new(),
        }
    };
    let diverged: Vec<String> = polys
        .iter()
        .filter_map(|r| Some(format!("{} at epoch {}", r.degree?, r.diverged?.epoch)))
        .collect();
    panels.push(plot::LinePanel {
        title: if diverged.is_empty() {
            format!("final errors by degree (epoch {})", cfg.epochs)
        } else {
            format!(
                "final errors by degree (diverged, not drawn: {})",
                diverged.join(", ")
            )
        },
        x_label: "polynomial degree".into(),
        y_label: "error %".into(),
        curves: vec![
            plot::Curve {
                name: "polynomial: training error".into(),
                color: plot::palette(1),
                points: at_degree(|m| m.train_error),
            },
            plot::Curve {
                name: "polynomial: test error".into(),
                color: plot::palette(2),
                points: at_degree(|m| m.test_error),
            },
            plot::Curve {
                name: "ReLU: training error".into(),
                color: plot::palette(3),
                points: flat(relu.map(|r| r.last.train_error)),
            },
            plot::Curve {
                name: "ReLU: test error".into(),
                color: plot::palette(0),
                points: flat(relu.map(|r| r.last.test_error)),
            },
        ],
    });
    let mut files = plot::line_panels(
        &dir.join("fig2"),
        &format!(
            "fig2: ReLU net vs polynomial net (degree {}), {} training images, SGD batch {}, lr {}",
            cfg.main_degree,
            cfg.data.train_len(),
            cfg.sgd.batch_size,
            cfg.sgd.lr
        ),
        &panels,
        2,
        (1500, 1600),
    )?;
    let all: Vec<&NetRow> = rows.iter().collect();
    files.extend(plot::line_panels(
        &dir.join("sweep"),
        &format!(
            "fig2: every degree of the sweep against ReLU (interval [-{r}, {r}])",
            r = cfg.radius
        ),
        &metric_panels(&all),
        2,
        (1500, 1100),
    )?);
    Ok(files)
}

/// Whether a row trained every epoch and ends within the margins of ReLU.
fn within(t: &Thresholds, r: &NetRow) -> bool {
    r.complete()
        && r.train_error_vs_relu.abs() <= t.train_margin
        && r.test_error_vs_relu.abs() <= t.test_margin
}

/// The smallest degree from which every larger degree of the sweep trains
/// within the margins of ReLU (`None` if even the largest does not).
pub fn from_degree(t: &Thresholds, rows: &[NetRow]) -> Option<usize> {
    let mut polys: Vec<&NetRow> = rows.iter().filter(|r| r.degree.is_some()).collect();
    polys.sort_by_key(|r| r.degree);
    let mut from = None;
    for r in polys.iter().rev() {
        if within(t, r) {
            from = r.degree;
        } else {
            break;
        }
    }
    from
}

/// The paper's finding, judged on the sweep. Never bent to pass.
pub fn findings(t: &Thresholds, main_degree: usize, rows: &[NetRow]) -> Vec<Finding> {
    let relu = rows.iter().find(|r| r.degree.is_none());
    let main = rows.iter().find(|r| r.degree == Some(main_degree));
    let relu_ok = relu.is_some_and(NetRow::complete);
    let row_json = |r: &NetRow| {
        serde_json::json!({
            "net": r.name,
            "degree": r.degree,
            "sup_error": r.sup_error,
            "status": r.status_text(),
            "final_train_error": r.last.train_error,
            "final_test_error": r.last.test_error,
            "train_error_vs_relu": r.train_error_vs_relu,
            "test_error_vs_relu": r.test_error_vs_relu,
        })
    };
    let margins =
        serde_json::json!({ "train_margin": t.train_margin, "test_margin": t.test_margin });
    let mut out = vec![Finding {
        id: "trains_like_relu".into(),
        claim: format!(
            "the polynomial net (degree {main_degree}) trains about as well as the ReLU net: final training and test errors each within the margin of ReLU's, with no divergence"
        ),
        verdict: Verdict::from_bool(relu_ok && main.is_some_and(|m| within(t, m))),
        threshold: margins.clone(),
        numbers: serde_json::json!({
            "relu": relu.map(row_json),
            "polynomial": main.map(row_json),
        }),
    }];
    let from = if relu_ok { from_degree(t, rows) } else { None };
    out.push(Finding {
        id: "from_degree".into(),
        claim: "from some degree on, every polynomial net of the sweep trains about as well as ReLU (same margins)".into(),
        verdict: Verdict::from_bool(from.is_some()),
        threshold: margins,
        numbers: serde_json::json!({
            "from_degree": from,
            "degrees": rows.iter().filter(|r| r.degree.is_some()).map(|r| {
                let mut v = row_json(r);
                v["within_margins"] = serde_json::json!(relu_ok && within(t, r));
                v
            }).collect::<Vec<_>>(),
        }),
    });
    out.push(Finding {
        id: "in_interval".into(),
        claim: format!(
            "the polynomial net (degree {main_degree}) stays where its polynomial approximates ReLU: in every epoch at most the threshold share of hidden pre-activations falls outside the fitted interval"
        ),
        verdict: Verdict::from_bool(
            main.is_some_and(|m| m.max_out_of_interval_share <= t.out_of_interval),
        ),
        threshold: serde_json::json!({ "out_of_interval": t.out_of_interval }),
        numbers: serde_json::json!({
            "max_share": main.map(|m| m.max_out_of_interval_share),
            "last_share": main.map(|m| m.last_out_of_interval_share),
            "max_share_by_degree": rows.iter().filter_map(|r| Some(serde_json::json!({ "degree": r.degree?, "max_share": r.max_out_of_interval_share }))).collect::<Vec<_>>(),
        }),
    });
    out.push(Finding {
        id: "divergence".into(),
        claim: "nets whose training loss became non-finite (stopped there, kept in the table)"
            .into(),
        verdict: Verdict::Reported,
        threshold: serde_json::Value::Null,
        numbers: serde_json::json!({
            "diverged": rows.iter().filter_map(|r| {
                let d = r.diverged?;
                Some(serde_json::json!({ "net": r.name, "degree": r.degree, "epoch": d.epoch, "step": d.step }))
            }).collect::<Vec<_>>(),
        }),
    });
    out
}

fn pct(v: f64) -> String {
    format!("{v:.2}%")
}

fn signed(v: f64) -> String {
    if v.is_finite() {
        format!("{v:+.2}")
    } else {
        "-".into()
    }
}

/// The sweep table as printed lines.
pub fn sweep_table(rows: &[NetRow]) -> Vec<String> {
    let mut out = vec![format!(
        "  {:<9} {:>6} {:>9}  {:<29} {:>9} {:>9} {:>8} {:>8} {:>10}",
        "net",
        "degree",
        "sup err",
        "status",
        "train err",
        "test err",
        "d train",
        "d test",
        "max out %"
    )];
    for r in rows {
        out.push(format!(
            "  {:<9} {:>6} {:>9}  {:<29} {:>9} {:>9} {:>8} {:>8} {:>10}",
            r.name,
            r.degree.map_or("-".into(), |d| d.to_string()),
            r.sup_error.map_or("-".into(), |e| format!("{e:.4}")),
            format!("{} (epoch {})", r.status_text(), r.last_epoch),
            pct(r.last.train_error),
            pct(r.last.test_error),
            if r.degree.is_some() {
                signed(r.train_error_vs_relu)
            } else {
                "-".into()
            },
            if r.degree.is_some() {
                signed(r.test_error_vs_relu)
            } else {
                "-".into()
            },
            format!("{:.3}", 100.0 * r.max_out_of_interval_share),
        ));
    }
    out
}

/// The terminal report of a finished run.
pub fn report(s: &Summary, out: &Path) -> super::Report {
    let mut files = s.files.clone();
    files.extend(experiment::standard_files(out, [experiment::STORE]));
    let mut headline = vec![format!(
        "final errors after {} SGD epochs on {} training images (interval [-{r}, {r}]; BN: {}):",
        s.epochs,
        s.train_images,
        s.head.bn_eval,
        r = s.radius
    )];
    headline.extend(sweep_table(&s.sweep));
    super::Report {
        experiment: s.head.experiment.clone(),
        headline,
        sections: vec![super::Section {
            title: format!("fig2 (polynomial degree {} vs ReLU)", s.main_degree),
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

    fn bundled() -> config::ExperimentFile<Fig2Config> {
        config::parse::<Fig2Config>(BUNDLED, "bundled").unwrap()
    }

    #[test]
    fn paper_scale_is_the_protocol() {
        let file = bundled();
        let p = file.scale(Scale::Paper);
        assert_eq!(p.data.train_size, None, "all 50,000 training images");
        assert_eq!(p.net, NetConfig::paper());
        assert_eq!(p.sgd, SgdConfig::default());
        assert_eq!((p.sgd.batch_size, p.sgd.lr), (100, 0.01));
        assert!(p.degrees.contains(&p.main_degree));
        for s in Scale::ALL {
            let c = file.scale(s);
            assert_eq!(c.sgd, p.sgd, "{s}: every scale uses the paper's SGD");
            assert_eq!(c.net.activation, Activation::Relu, "{s}");
        }
        let smoke = file.scale(Scale::Smoke);
        assert_eq!(smoke.degrees, [2, 4]);
        assert_eq!(smoke.net.widths, [8, 8, 8, 8]);
    }

    fn row(degree: Option<usize>, train: f64, test: f64, div: Option<u32>) -> NetRow {
        NetRow {
            name: degree.map_or(RELU.into(), poly_name),
            degree,
            radius: degree.map(|_| 4.0),
            sup_error: degree.map(|d| 1.0 / (d + 1) as f64),
            activation: Activation::Relu,
            status: if div.is_some() {
                "diverged"
            } else {
                "complete"
            }
            .into(),
            diverged: div.map(|e| Divergence {
                epoch: e,
                step: 3,
                loss: f64::NAN,
            }),
            last_epoch: div.map_or(10, |e| e - 1),
            last: Metrics {
                train_loss: 0.5,
                train_error: train,
                test_loss: 1.5,
                test_error: test,
            },
            train_error_vs_relu: f64::NAN,
            test_error_vs_relu: f64::NAN,
            max_out_of_interval_share: 0.001,
            last_out_of_interval_share: 0.0005,
        }
    }

    fn verdicts(rows: &mut [NetRow], main: usize) -> BTreeMap<String, Verdict> {
        set_relu_differences(rows);
        findings(&Thresholds::default(), main, rows)
            .into_iter()
            .map(|f| (f.id, f.verdict))
            .collect()
    }

    #[test]
    fn verdicts_hold_when_the_polynomial_trains_like_relu() {
        let mut rows = [
            row(None, 10.0, 40.0, None),
            row(Some(2), 30.0, 55.0, None),
            row(Some(4), 14.0, 43.0, None),
            row(Some(8), 11.0, 41.0, None),
            row(Some(16), 9.0, 39.5, None),
        ];
        let v = verdicts(&mut rows, 8);
        assert_eq!(v["trains_like_relu"], Verdict::Holds);
        assert_eq!(v["from_degree"], Verdict::Holds);
        assert_eq!(v["in_interval"], Verdict::Holds);
        assert_eq!(v["divergence"], Verdict::Reported);
        assert_eq!(from_degree(&Thresholds::default(), &rows), Some(4));
        assert_eq!(rows[2].train_error_vs_relu, 4.0);
        // Exactly at the margin holds.
        let mut rows = [row(None, 10.0, 40.0, None), row(Some(8), 15.0, 35.0, None)];
        assert_eq!(verdicts(&mut rows, 8)["trains_like_relu"], Verdict::Holds);
    }

    #[test]
    fn verdicts_fail_when_it_does_not() {
        // Training error too far from ReLU's (worse or better), test error too far.
        for (train, test) in [(16.0, 40.0), (4.0, 40.0), (10.0, 46.0)] {
            let mut rows = [row(None, 10.0, 40.0, None), row(Some(8), train, test, None)];
            let v = verdicts(&mut rows, 8);
            assert_eq!(
                v["trains_like_relu"],
                Verdict::DoesNotHold,
                "{train} {test}"
            );
            assert_eq!(v["from_degree"], Verdict::DoesNotHold, "{train} {test}");
        }
        // Leaving the interval.
        let mut rows = [row(None, 10.0, 40.0, None), row(Some(8), 10.0, 40.0, None)];
        rows[1].max_out_of_interval_share = 0.02;
        assert_eq!(verdicts(&mut rows, 8)["in_interval"], Verdict::DoesNotHold);
    }

    #[test]
    fn a_diverged_degree_never_counts_as_training_like_relu() {
        // Degree 16 diverged at epoch 3 with errors (before) close to ReLU's:
        // it is not "about as well", and no degree qualifies "from" below it.
        let mut rows = [
            row(None, 10.0, 40.0, None),
            row(Some(4), 11.0, 41.0, None),
            row(Some(8), 11.0, 41.0, None),
            row(Some(16), 10.0, 40.0, Some(3)),
        ];
        let v = verdicts(&mut rows, 16);
        assert_eq!(v["trains_like_relu"], Verdict::DoesNotHold);
        assert_eq!(v["from_degree"], Verdict::DoesNotHold);
        let f = findings(&Thresholds::default(), 16, &rows);
        let div = &f.iter().find(|f| f.id == "divergence").unwrap().numbers;
        assert_eq!(div["diverged"][0]["degree"], 16);
        assert_eq!(div["diverged"][0]["epoch"], 3);
        // A low degree that diverged does not stop higher degrees qualifying.
        let mut rows = [
            row(None, 10.0, 40.0, None),
            row(Some(2), 10.0, 40.0, Some(1)),
            row(Some(8), 11.0, 41.0, None),
        ];
        let v = verdicts(&mut rows, 8);
        assert_eq!(v["trains_like_relu"], Verdict::Holds);
        assert_eq!(from_degree(&Thresholds::default(), &rows), Some(8));
        // "From which degree on" means every larger degree too.
        let mut rows = [
            row(None, 10.0, 40.0, None),
            row(Some(4), 11.0, 41.0, None),
            row(Some(8), 30.0, 41.0, None),
            row(Some(16), 11.0, 41.0, None),
        ];
        set_relu_differences(&mut rows);
        assert_eq!(from_degree(&Thresholds::default(), &rows), Some(16));
        // ReLU itself diverged: nothing is judged to hold.
        let mut rows = [
            row(None, 10.0, 40.0, Some(2)),
            row(Some(8), 10.0, 40.0, None),
        ];
        let v = verdicts(&mut rows, 8);
        assert_eq!(v["trains_like_relu"], Verdict::DoesNotHold);
        assert_eq!(v["from_degree"], Verdict::DoesNotHold);
    }

    #[test]
    fn divergence_is_found_through_the_error_chain() {
        let e: anyhow::Error = landscape_net::NetError::Diverged {
            epoch: 7,
            step: 12,
            loss: f64::INFINITY,
        }
        .into();
        let e = e.context("training `poly-d16` epoch 7");
        assert_eq!(
            recorder::divergence(&e),
            Some(Divergence {
                epoch: 7,
                step: 12,
                loss: f64::INFINITY
            })
        );
        let other = anyhow::anyhow!("disk full").context("recording");
        assert_eq!(recorder::divergence(&other), None);
    }

    #[test]
    fn the_table_and_legend_name_divergence_and_the_fit() {
        let mut rows = [
            row(None, 10.0, 40.0, None),
            row(Some(16), 10.0, 40.0, Some(3)),
        ];
        set_relu_differences(&mut rows);
        assert_eq!(rows[0].legend(), "ReLU");
        assert_eq!(
            rows[1].legend(),
            "polynomial degree 16 on [-4, 4], sup error 0.059 (diverged at epoch 3)"
        );
        let t = sweep_table(&rows).join("\n");
        assert!(t.contains("diverged at epoch 3 (step 3)"), "{t}");
    }

    #[test]
    fn bundled_scales_validate_and_edits_are_caught() {
        bundled();
        let edit =
            |from: &str, to: &str| crate::testing::edit_error::<Fig2Config>(BUNDLED, from, to);
        let e = edit("main_degree = 8", "main_degree = 5");
        assert!(e.contains("quick.main_degree"), "{e}");
        let e = edit("degrees = [2, 4, 8, 16]", "degrees = [2, 8, 4, 16]");
        assert!(e.contains("quick.degrees"), "{e}");
        let e = edit("degrees = [2, 4, 8, 16]", "degrees = [2, 4, 8, 99]");
        assert!(e.contains("quick.degrees[3]"), "{e}");
        let e = edit("radius = 8.0", "radius = -1.0");
        assert!(e.contains("quick.radius"), "{e}");
        let e = edit("train_margin = 5.0", "train_margin = nan");
        assert!(e.contains("thresholds.train_margin"), "{e}");
        let e = edit("seed = 0", "seed = 0\nsead = 1");
        assert!(e.contains("sead"), "{e}");
    }
}
