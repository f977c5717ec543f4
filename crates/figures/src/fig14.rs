//! Figures 4 and 14-17 of the paper: full-batch gradient descent (BGD) with
//! branches (protocol and deviations: `docs/protocols.md`).
//!
//! Train from scratch with BGD (the main trajectory). At each branch epoch,
//! copy the main model, perturb each layer's weights with Gaussian noise of
//! std `alpha * std(W)`, and train the copy with BGD to the end. Epoch by
//! epoch, average each branch with the main trajectory (t = 0.5). Draw
//! classical MDS (1 - cosine) of one layer's weights, each model labelled with
//! its training error in percent. A variant is one (alpha, layer) pair:
//! Figures 14-15 use alpha = 0.25 and layer 2, Figures 16-17 alpha = 1.0 and
//! layer 3; all variants share the main trajectory.
use std::collections::BTreeMap;

use anyhow::{Context, Result};
use landscape_net::{BgdConfig, NetConfig, PerturbScale, PerturbSpec, Phase};
use landscape_trajectory::{SnapshotId, Store};
use serde::{Deserialize, Serialize};

use crate::Report;
use landscape_engine::analysis::{self, Distance, Finding, LayerView, Point, Verdict};
use landscape_engine::config::{self, ensure, ensure_range, Validate};
use landscape_engine::data::DataConfig;
use landscape_engine::eval::{EvalConfig, Metrics};
use landscape_engine::experiment::{self, Experiment, SummaryHead};
use landscape_engine::identity::RunId;
use landscape_engine::plot;
use landscape_engine::session::{self, RunOptions, Session, SessionSpec};
use landscape_engine::ExperimentError;
use landscape_probe::barriers::{self, BarrierStats, Pair, PairBarrier};

/// One (alpha, layer) variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Name of the overview figure (`fig14`); also the run prefix in the store.
    pub name: String,
    /// Name of the per-branch panels figure (`fig15`).
    pub branches_figure: String,
    /// Perturbation strength: noise std = alpha * scale(W) per tensor.
    pub alpha: f64,
    /// The paper's layer number drawn and measured (2 = first convolution).
    pub layer: usize,
    /// The branches (1-based) behind which the paper saw a wall.
    #[serde(default)]
    pub expected_walls: Vec<usize>,
}

/// The perturbation that starts a branch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Perturbation {
    /// `std` (the paper) or `mean_abs`.
    pub scale: PerturbScale,
    /// Perturb biases too (the paper perturbs the weight tensors).
    pub biases: bool,
}

impl Default for Perturbation {
    fn default() -> Self {
        Perturbation {
            scale: PerturbScale::Std,
            biases: false,
        }
    }
}

/// What counts as holding (percentage points of training error).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// The main trajectory reaches (near) zero training error at or below this.
    pub zero_error: f64,
    /// A branch is in the main trajectory's basin if its averaged model's
    /// largest excess error (over the worse parent, any epoch) is at most this.
    pub basin: f64,
    /// A branch is behind a wall if that excess is at least this.
    pub wall: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            zero_error: 1.0,
            basin: 5.0,
            wall: 10.0,
        }
    }
}

/// One scale of the experiment (`experiments/fig14.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fig14Config {
    /// Seed of the initialisation (branch noise seeds derive from it).
    pub seed: u64,
    /// Which images.
    #[serde(default)]
    pub data: DataConfig,
    /// The network.
    #[serde(default)]
    pub net: NetConfig,
    /// BGD settings.
    pub bgd: BgdConfig,
    /// Length of the main trajectory (BGD epochs = steps).
    pub epochs: u32,
    /// Epochs of the main trajectory where branches start.
    pub branch_epochs: Vec<u32>,
    /// The branch perturbation.
    #[serde(default)]
    pub perturb: Perturbation,
    /// Epochs after branching at which every branch's distance is compared
    /// (absent: as many as the last branch has).
    #[serde(default)]
    pub horizon: Option<u32>,
    /// The (alpha, layer) variants.
    pub variants: Vec<Variant>,
    /// Evaluation.
    #[serde(default)]
    pub eval: EvalConfig,
    /// Verdict thresholds.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Points (t = 0..1, evenly spaced) on the straight line between the
    /// main trajectory's last model and each branch's, for their barriers
    /// (analysis; 0: none).
    #[serde(default = "default_barrier_points")]
    pub barrier_points: usize,
}

fn default_barrier_points() -> usize {
    5
}

/// Config keys that change only the analysis, not the stored models.
pub const ANALYSIS_ONLY: &[&str] = &[
    "thresholds",
    "barrier_points",
    "horizon",
    "variants[*].layer",
    "variants[*].expected_walls",
    "variants[*].branches_figure",
];

impl Fig14Config {
    /// The horizon in effect.
    pub fn horizon(&self) -> u32 {
        let last = self.branch_epochs.last().copied().unwrap_or(0);
        self.horizon.unwrap_or(self.epochs - last)
    }
}

impl Validate for Fig14Config {
    fn validate(&self, p: &str) -> Result<(), ExperimentError> {
        config::validate_setup(p, &self.data, Some(&self.net), &self.eval)?;
        config::ensure_epochs(p, &[("epochs", self.epochs)])?;
        Phase::Bgd {
            epochs: self.epochs,
            bgd: self.bgd.clone(),
        }
        .validate(p)?;
        barriers::validate_points(self.barrier_points, &format!("{p}.barrier_points"))?;
        ensure(
            !self.branch_epochs.is_empty(),
            &format!("{p}.branch_epochs"),
            "needs at least one epoch",
        )?;
        for (i, &b) in self.branch_epochs.iter().enumerate() {
            ensure(
                b < self.epochs,
                &format!("{p}.branch_epochs[{i}]"),
                format!(
                    "branch epoch {b} is not before the last epoch ({p}.epochs = {})",
                    self.epochs
                ),
            )?;
        }
        ensure(
            self.branch_epochs.windows(2).all(|w| w[0] < w[1]),
            &format!("{p}.branch_epochs"),
            "must be strictly increasing",
        )?;
        let last = self.branch_epochs.last().copied().unwrap_or(0);
        if let Some(h) = self.horizon {
            ensure(
                h >= 1 && h <= self.epochs - last,
                &format!("{p}.horizon"),
                format!(
                    "{h} must be between 1 and {} (the epochs the last branch trains)",
                    self.epochs - last
                ),
            )?;
        }
        ensure(
            !self.variants.is_empty(),
            &format!("{p}.variants"),
            "needs at least one variant",
        )?;
        let layers = self.net.widths.len() + 2;
        let mut names = std::collections::BTreeSet::new();
        for (i, v) in self.variants.iter().enumerate() {
            let k = format!("{p}.variants[{i}]");
            ensure_range(v.alpha, 0.0, 100.0, &format!("{k}.alpha"))?;
            ensure(
                (2..=layers).contains(&v.layer),
                &format!("{k}.layer"),
                format!("layer {} does not exist: the network's layers are 2..={layers} (the paper counts the input as layer 1)", v.layer),
            )?;
            for n in [&v.name, &v.branches_figure] {
                ensure(
                    !n.is_empty()
                        && n.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                    &format!("{k}.name"),
                    format!("`{n}` must be a non-empty file name of letters, digits, '-' or '_'"),
                )?;
            }
            ensure(
                names.insert(v.name.clone()),
                &format!("{k}.name"),
                format!("`{}` is used twice", v.name),
            )?;
            for (j, &w) in v.expected_walls.iter().enumerate() {
                ensure(
                    (1..=self.branch_epochs.len()).contains(&w),
                    &format!("{k}.expected_walls[{j}]"),
                    format!(
                        "branch {w} does not exist (branches are 1..={})",
                        self.branch_epochs.len()
                    ),
                )?;
            }
        }
        let t = &self.thresholds;
        ensure_range(
            t.zero_error,
            0.0,
            100.0,
            &format!("{p}.thresholds.zero_error"),
        )?;
        ensure_range(t.basin, 0.0, 100.0, &format!("{p}.thresholds.basin"))?;
        ensure_range(t.wall, 0.0, 100.0, &format!("{p}.thresholds.wall"))?;
        ensure(
            t.wall > t.basin,
            &format!("{p}.thresholds.wall"),
            format!(
                "{} must be larger than thresholds.basin ({})",
                t.wall, t.basin
            ),
        )
    }
}

/// The bundled `experiments/fig14.toml`.
pub const BUNDLED: &str = include_str!("../../../experiments/fig14.toml");

/// The experiment, as the registry (`crate::EXPERIMENTS`) knows it.
pub struct Fig14;

impl Experiment for Fig14 {
    fn name(&self) -> &'static str {
        "fig14"
    }

    fn description(&self) -> &'static str {
        "Figures 4 and 14-17: full-batch GD with branches, averaged models, MDS of the weights"
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
pub fn load_config(opts: &RunOptions) -> Result<Fig14Config> {
    experiment::load_config(&Fig14, opts)
}

/// Seed of the perturbation of branch `i` (0-based) of variant `vi`.
pub fn branch_seed(seed: u64, vi: usize, i: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(1_000 * (vi as u64 + 1) + i as u64 + 1)
}

fn branch_id(v: &Variant, i: usize, from: u32) -> RunId {
    RunId::Branch {
        variant: v.name.clone(),
        index: i + 1,
        from_epoch: from,
    }
}

fn avg_id(v: &Variant, i: usize, from: u32) -> RunId {
    RunId::Averaged {
        variant: v.name.clone(),
        index: i + 1,
        from_epoch: from,
    }
}

/// The numbers behind the verdicts, per branch.
#[derive(Clone, Debug, Serialize)]
pub struct BranchNumbers {
    /// 1-based.
    pub branch: usize,
    /// Main epoch it starts from.
    pub from_epoch: u32,
    /// Training / test error of the branch at the last epoch.
    pub final_train_error: f64,
    /// Test error of the branch at the last epoch.
    pub final_test_error: f64,
    /// 1 - cos(branch, main) on the variant's layer right after the perturbation.
    pub distance_at_branching: f64,
    /// The same, `horizon` epochs after branching.
    pub distance_at_horizon: f64,
    /// distance_at_horizon / distance_at_branching.
    pub relative_distance: f64,
    /// Largest (averaged error - worse parent's error) over the averaged trajectory.
    pub max_excess: f64,
    /// The epoch of that largest excess.
    pub max_excess_epoch: u32,
    /// The averaged model's training error at that epoch.
    pub averaged_error_at_max: f64,
    /// The averaged model's training error at the last epoch.
    pub final_averaged_error: f64,
}

/// `summary.json` for one variant.
#[derive(Clone, Debug, Serialize)]
pub struct VariantSummary {
    /// The variant's name.
    pub name: String,
    /// Its alpha.
    pub alpha: f64,
    /// Its layer.
    pub layer: usize,
    /// The horizon the distances were judged at.
    pub horizon: u32,
    /// Per-branch numbers.
    pub branches: Vec<BranchNumbers>,
    /// Share of the positive spectrum the 2 MDS axes explain.
    pub mds_explained: Option<f64>,
    /// Mass of negative eigenvalues (1 - cosine is not Euclidean).
    pub mds_negative_mass: Option<f64>,
    /// The leading eigenvalues.
    pub mds_eigenvalues: Vec<f64>,
    /// The verdicts.
    pub findings: Vec<Finding>,
    /// The barriers between the main run's last model and each branch's
    /// (the line whose midpoint the averaged model is at that epoch).
    pub pair_barriers: Vec<PairBarrier>,
    /// Their largest and median values.
    pub pair_barrier_stats: Option<BarrierStats>,
    /// Files written.
    pub files: Vec<std::path::PathBuf>,
}

/// `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The experiment, scale and BN evaluation policy (of every number here).
    #[serde(flatten)]
    pub head: SummaryHead,
    /// The main trajectory at its last epoch.
    pub main_final: Metrics,
    /// Per variant.
    pub variants: Vec<VariantSummary>,
}

/// Runs (or resumes) the experiment and writes every output into `opts.out`.
pub fn run(opts: &RunOptions) -> Result<Summary> {
    let cfg = load_config(opts)?;
    let outputs: Vec<&str> = cfg.variants.iter().map(|v| v.name.as_str()).collect();
    let mut s = Session::start(
        opts,
        &SessionSpec {
            experiment: "fig14",
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
    let phases = |from: u32| {
        vec![Phase::Bgd {
            epochs: cfg.epochs - from,
            bgd: cfg.bgd.clone(),
        }]
    };

    let main = s.log.phase("train_main", || {
        rec.trajectory(&RunId::Main, 0, &phases(0), cfg.seed, || rec.init(cfg.seed))
    })?;
    let mut trajectories = BTreeMap::new();
    for (vi, v) in cfg.variants.iter().enumerate() {
        for (i, &b) in cfg.branch_epochs.iter().enumerate() {
            let parent = main[&b];
            let spec = PerturbSpec {
                alpha: v.alpha,
                scale: cfg.perturb.scale,
                biases: cfg.perturb.biases,
            };
            let bid = branch_id(v, i, b);
            let branch = s.log.phase(&format!("train_{}_branches", v.name), || {
                rec.trajectory(&bid, b, &phases(b), cfg.seed, || {
                    rec.perturbed(parent, &spec, branch_seed(cfg.seed, vi, i))
                })
            })?;
            let aid = avg_id(v, i, b);
            let avg = s.log.phase(&format!("average_{}", v.name), || {
                rec.interpolated_trajectory(&aid, &main, &branch, 0.5)
            })?;
            trajectories.insert(bid, branch);
            trajectories.insert(aid, avg);
        }
    }
    trajectories.insert(RunId::Main, main.clone());

    let mut variants = Vec::new();
    for v in &cfg.variants {
        let mut vs = s.log.phase(&format!("analyse_{}", v.name), || {
            analyse(&cfg, v, &rec.store(), &trajectories, &s.out)
        })?;
        if cfg.barrier_points >= 2 {
            let main_last = main[&cfg.epochs];
            let pairs = (0..cfg.branch_epochs.len())
                .map(|i| {
                    let bid = branch_id(v, i, cfg.branch_epochs[i]);
                    let last = trajectories
                        .get(&bid)
                        .and_then(|t| t.get(&cfg.epochs))
                        .with_context(|| {
                            format!("{} has no epoch {}", bid.run_name(), cfg.epochs)
                        })?;
                    Ok(Pair {
                        label: format!(
                            "{}: main vs {} (epoch {})",
                            v.name,
                            bid.run_name(),
                            cfg.epochs
                        ),
                        a: main_last,
                        b: *last,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let (rows, files) = s.log.phase(&format!("barriers_{}", v.name), || {
                barriers::pair_barriers(
                    &rec,
                    &pairs,
                    &barriers::pair_ts(cfg.barrier_points),
                    &s.out.join(&v.name),
                )
            })?;
            vs.pair_barrier_stats = Some(BarrierStats::of(&rows));
            vs.pair_barriers = rows;
            vs.files.extend(files);
        }
        variants.push(vs);
    }
    let main_final = rec.metrics(main[&cfg.epochs])?;
    let summary = Summary {
        head: SummaryHead::new("fig14", opts, &cfg.eval),
        main_final,
        variants,
    };
    experiment::finish(&s.out, &mut s.log, &summary, rec.written())?;
    Ok(summary)
}

fn analyse(
    cfg: &Fig14Config,
    v: &Variant,
    store: &Store,
    traj: &BTreeMap<RunId, BTreeMap<u32, SnapshotId>>,
    out: &std::path::Path,
) -> Result<VariantSummary> {
    let nb = cfg.branch_epochs.len();
    // Runs drawn: main, then the branches, then the averaged models.
    let branches: Vec<RunId> = (0..nb)
        .map(|i| branch_id(v, i, cfg.branch_epochs[i]))
        .collect();
    let averages: Vec<RunId> = (0..nb)
        .map(|i| avg_id(v, i, cfg.branch_epochs[i]))
        .collect();
    let runs: Vec<RunId> = [vec![RunId::Main], branches.clone(), averages.clone()].concat();
    let view = LayerView::new(store, |r| runs.contains(r), v.layer, 2)?;

    let dir = out.join(&v.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let csv = dir.join("points.csv");
    view.write_csv(store, &csv)?;
    let mut files = vec![csv];
    let error_label = |p: &Point| format!("{:.1}", p.metrics.train_error);
    let group = |r: usize| view.group(&runs[r], r, error_label);
    let scale = match cfg.perturb.scale {
        PerturbScale::Std => "std",
        _ => "mean |W|",
    };
    files.extend(plot::scatter_panels(
        &dir.join(&v.name),
        &format!(
            "{}: BGD with branches (alpha = {} x {scale}), {} training images, {} epochs",
            v.name,
            v.alpha,
            cfg.data.train_len(),
            cfg.epochs
        ),
        &[plot::ScatterPanel {
            title: format!(
                "MDS (1 - cosine) of layer {} weights; labels: training error %",
                v.layer
            ),
            groups: (0..runs.len()).map(group).collect(),
        }],
        1,
        (1400, 1100),
        true,
        11,
    )?);
    let panels: Vec<plot::ScatterPanel> = (0..nb)
        .map(|i| plot::ScatterPanel {
            title: format!(
                "branch {} from epoch {} (layer {})",
                i + 1,
                cfg.branch_epochs[i],
                v.layer
            ),
            groups: vec![group(0), group(1 + i), group(1 + nb + i)],
        })
        .collect();
    files.extend(plot::scatter_panels(
        &dir.join(&v.branches_figure),
        &format!(
            "{}: the branches of {} drawn separately (layer {})",
            v.branches_figure, v.name, v.layer
        ),
        &panels,
        2,
        (1600, 1300),
        true,
        11,
    )?);
    files.extend(plot::line_panels(
        &dir.join("curves"),
        &format!("{}: error and loss of every trajectory", v.name),
        &analysis::metric_curves(&view.points, &runs, "epoch (BGD step)"),
        2,
        (1400, 1000),
    )?);

    // Numbers behind the verdicts.
    let horizon = cfg.horizon();
    let main = &traj[&RunId::Main];
    let train = |r: &RunId| view.series(r, |m| m.train_error);
    let mut numbers = Vec::new();
    for (i, &b) in cfg.branch_epochs.iter().enumerate() {
        let bt = &traj[&branches[i]];
        let d0 = analysis::layer_distance(store, main[&b], bt[&b], v.layer)?;
        let dh =
            analysis::layer_distance(store, main[&(b + horizon)], bt[&(b + horizon)], v.layer)?;
        let excess = analysis::max_excess(
            &train(&averages[i]),
            &train(&RunId::Main),
            &train(&branches[i]),
        )
        .with_context(|| {
            format!(
                "{} has no epoch in common with its parents",
                averages[i].run_name()
            )
        })?;
        let at_end = |r: &RunId| {
            view.metrics(r, cfg.epochs)
                .with_context(|| format!("{} has no epoch {}", r.run_name(), cfg.epochs))
        };
        let fin = at_end(&branches[i])?;
        numbers.push(BranchNumbers {
            branch: i + 1,
            from_epoch: b,
            final_train_error: fin.train_error,
            final_test_error: fin.test_error,
            distance_at_branching: d0,
            distance_at_horizon: dh,
            relative_distance: if d0 > 0.0 { dh / d0 } else { f64::NAN },
            max_excess: excess.max,
            max_excess_epoch: excess.epoch,
            averaged_error_at_max: excess.value,
            final_averaged_error: at_end(&averages[i])?.train_error,
        });
    }
    let main_final = view
        .metrics(&RunId::Main, cfg.epochs)
        .context("main has no last epoch")?;
    // later_branches_closer again with Euclidean distance, and on the other
    // variants' layers (1 - cos).
    let closer = |layer: usize, distance: Distance| -> Result<Closer> {
        let mut c = Closer {
            layer,
            distance,
            from_epochs: cfg.branch_epochs.clone(),
            at_branching: Vec::new(),
            at_horizon: Vec::new(),
        };
        for (i, &b) in cfg.branch_epochs.iter().enumerate() {
            let bt = &traj[&branches[i]];
            c.at_branching
                .push(pair_distance(store, main[&b], bt[&b], layer, distance)?);
            c.at_horizon.push(pair_distance(
                store,
                main[&(b + horizon)],
                bt[&(b + horizon)],
                layer,
                distance,
            )?);
        }
        Ok(c)
    };
    let base = Closer::of(v.layer, Distance::Cosine, &numbers);
    let euclidean = [closer(v.layer, Distance::Euclidean)?];
    let others = cfg
        .variants
        .iter()
        .map(|w| w.layer)
        .filter(|&l| l != v.layer)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|l| closer(l, Distance::Cosine))
        .collect::<Result<Vec<_>>>()?;
    let mut found = findings(&cfg.thresholds, v, &main_final, &numbers);
    found.push(same_closer(
        "same_with_euclidean",
        "Euclidean distance gives qualitatively similar results: later_branches_closer reaches the same verdict with Euclidean distance as with 1 - cos",
        &base,
        &euclidean,
    ));
    found.push(same_closer(
        "same_on_other_layers",
        "the weights of different layers tend to produce qualitatively similar results: later_branches_closer (1 - cos) reaches the same verdict on the other variants' layers as on this one (reported when no variant draws another layer)",
        &base,
        &others,
    ));
    let emb = &view.embedding;
    Ok(VariantSummary {
        name: v.name.clone(),
        alpha: v.alpha,
        layer: v.layer,
        horizon,
        mds_explained: emb.explained_ratio(),
        mds_negative_mass: emb.negative_mass(),
        mds_eigenvalues: emb.eigenvalues().iter().take(10).copied().collect(),
        findings: found,
        branches: numbers,
        pair_barriers: Vec::new(),
        pair_barrier_stats: None,
        files,
    })
}

/// The terminal report of a finished run.
pub fn report(s: &Summary, out: &std::path::Path) -> super::Report {
    let mut files: Vec<std::path::PathBuf> =
        s.variants.iter().flat_map(|v| v.files.clone()).collect();
    files.extend(experiment::standard_files(out, [experiment::STORE]));
    super::Report {
        experiment: s.head.experiment.clone(),
        headline: [format!(
            "main trajectory: final training error {:.2}%, test error {:.2}% (BN: {})",
            s.main_final.train_error, s.main_final.test_error, s.head.bn_eval
        )]
        .into_iter()
        .chain(s.variants.iter().filter_map(|v| {
            v.pair_barrier_stats.as_ref().map(|b| {
                b.line(&format!(
                    "{}: main vs each branch at the last epoch ({}/barriers.csv)",
                    v.name, v.name
                ))
            })
        }))
        .collect(),
        sections: s
            .variants
            .iter()
            .map(|v| super::Section {
                title: format!("{} (alpha = {}, layer {})", v.name, v.alpha, v.layer),
                findings: v.findings.clone(),
            })
            .collect(),
        files,
    }
}

/// `distance` between the `layer` parameters of snapshots `a` and `b`.
fn pair_distance(
    store: &Store,
    a: SnapshotId,
    b: SnapshotId,
    layer: usize,
    distance: Distance,
) -> Result<f64> {
    let m = analysis::layer_matrix(store, &[a, b], layer)?;
    let (ra, rb) = (m.row(0), m.row(1));
    Ok(distance.of(
        ra.as_slice().context("matrix layout")?,
        rb.as_slice().context("matrix layout")?,
    ))
}

/// The distances behind `later_branches_closer`, measured one way: per
/// branch, between branch and main right after the perturbation and
/// `horizon` epochs later.
#[derive(Clone, Debug)]
pub struct Closer {
    /// The paper's layer.
    pub layer: usize,
    /// The distance.
    pub distance: Distance,
    /// Each branch's main epoch.
    pub from_epochs: Vec<u32>,
    /// Right after the perturbation.
    pub at_branching: Vec<f64>,
    /// `horizon` epochs after branching.
    pub at_horizon: Vec<f64>,
}

impl Closer {
    /// The numbers the variant measured (1 - cos on its layer).
    pub fn of(layer: usize, distance: Distance, branches: &[BranchNumbers]) -> Closer {
        Closer {
            layer,
            distance,
            from_epochs: branches.iter().map(|b| b.from_epoch).collect(),
            at_branching: branches.iter().map(|b| b.distance_at_branching).collect(),
            at_horizon: branches.iter().map(|b| b.distance_at_horizon).collect(),
        }
    }

    /// At the horizon over right after the perturbation (NaN where the
    /// perturbation did not move the layer).
    pub fn relative(&self) -> Vec<f64> {
        self.at_branching
            .iter()
            .zip(&self.at_horizon)
            .map(|(&d0, &dh)| if d0 > 0.0 { dh / d0 } else { f64::NAN })
            .collect()
    }

    /// `later_branches_closer`: the relative distance strictly decreases
    /// from each branch to the next (at least two branches).
    pub fn holds(&self) -> bool {
        closer_holds(&self.relative())
    }

    fn numbers(&self) -> serde_json::Value {
        serde_json::json!({
            "distance": self.distance.as_str(),
            "layer": self.layer,
            "later_branches_closer": Verdict::from_bool(self.holds()).as_str(),
            "relative_distance": self.relative(),
            "distance_at_branching": self.at_branching,
            "distance_at_horizon": self.at_horizon,
        })
    }
}

fn closer_holds(rel: &[f64]) -> bool {
    rel.len() >= 2 && rel.iter().all(|r| r.is_finite()) && rel.windows(2).all(|w| w[1] < w[0])
}

/// Whether `later_branches_closer` reaches the same verdict measured each
/// of the `variants` ways as measured `base`'s way: holds when every one
/// does, reported when there is none.
pub fn same_closer(id: &str, claim: &str, base: &Closer, variants: &[Closer]) -> Finding {
    let rows: Vec<serde_json::Value> = variants
        .iter()
        .map(|c| {
            let mut n = c.numbers();
            n["same"] = serde_json::json!(c.holds() == base.holds());
            n
        })
        .collect();
    Finding {
        id: id.to_owned(),
        claim: claim.to_owned(),
        verdict: if variants.is_empty() {
            Verdict::Reported
        } else {
            Verdict::from_bool(variants.iter().all(|c| c.holds() == base.holds()))
        },
        threshold: serde_json::Value::Null,
        numbers: serde_json::json!({
            "from_epochs": base.from_epochs,
            "configured": base.numbers(),
            "variants": rows,
        }),
    }
}

/// The paper's findings for one variant, judged on the numbers. Never bent to pass.
pub fn findings(
    t: &Thresholds,
    v: &Variant,
    main: &Metrics,
    branches: &[BranchNumbers],
) -> Vec<Finding> {
    let mut out = vec![
        Finding {
            id: "no_local_minimum".into(),
            claim: "BGD does not get stuck: the main trajectory's training error goes to (about) 0".into(),
            verdict: Verdict::from_bool(main.train_error <= t.zero_error),
            threshold: serde_json::json!({ "zero_error": t.zero_error }),
            numbers: serde_json::json!({ "final_train_error": main.train_error, "final_train_loss": main.train_loss }),
        },
        Finding {
            id: "test_error".into(),
            claim: "BGD solutions generalise somewhat worse than SGD's (paper: about 40% test error for BGD, 32% for SGD, on all of CIFAR-10)".into(),
            verdict: Verdict::Reported,
            threshold: serde_json::Value::Null,
            numbers: serde_json::json!({ "final_test_error": main.test_error, "paper_bgd": 40.0, "paper_sgd": 32.0 }),
        },
    ];
    let rel: Vec<f64> = branches.iter().map(|b| b.relative_distance).collect();
    let decreasing = closer_holds(&rel);
    out.push(Finding {
        id: "later_branches_closer".into(),
        claim: format!(
            "the same perturbation leads less far later in training: 1 - cos on layer {} between branch and main, the same number of epochs after branching, relative to right after the perturbation, decreases from each branch to the next",
            v.layer
        ),
        verdict: Verdict::from_bool(decreasing),
        threshold: serde_json::json!("strictly decreasing"),
        numbers: serde_json::json!({
            "from_epochs": branches.iter().map(|b| b.from_epoch).collect::<Vec<_>>(),
            "relative_distance": rel,
            "distance_at_branching": branches.iter().map(|b| b.distance_at_branching).collect::<Vec<_>>(),
            "distance_at_horizon": branches.iter().map(|b| b.distance_at_horizon).collect::<Vec<_>>(),
        }),
    });
    let (walls, others): (Vec<&BranchNumbers>, Vec<&BranchNumbers>) = branches
        .iter()
        .partition(|b| v.expected_walls.contains(&b.branch));
    let excess = |bs: &[&BranchNumbers]| -> serde_json::Value {
        bs.iter()
            .map(|b| serde_json::json!({ "branch": b.branch, "from_epoch": b.from_epoch, "max_excess": b.max_excess, "at_epoch": b.max_excess_epoch, "averaged_error": b.averaged_error_at_max }))
            .collect()
    };
    let others_max = others
        .iter()
        .map(|b| b.max_excess)
        .fold(f64::NEG_INFINITY, f64::max);
    if !walls.is_empty() {
        let ok = walls
            .iter()
            .all(|b| b.max_excess >= t.wall && b.max_excess > others_max);
        out.push(Finding {
            id: "walls".into(),
            claim: format!(
                "a wall separates the main trajectory from the branch(es) {:?} (paper: splitting very early, or a very large perturbation): averaging them raises the training error, at some epoch, by at least the threshold over the worse parent, and more than for any other branch",
                v.expected_walls
            ),
            verdict: Verdict::from_bool(ok),
            threshold: serde_json::json!({ "wall": t.wall }),
            numbers: serde_json::json!({ "expected_walls": excess(&walls), "largest_other_excess": if others_max.is_finite() { serde_json::json!(others_max) } else { serde_json::Value::Null } }),
        });
    }
    if !others.is_empty() {
        let ok = others.iter().all(|b| b.max_excess <= t.basin);
        out.push(Finding {
            id: "basins".into(),
            claim: "every other branch stays in the main trajectory's basin: its average with main keeps the error of the worse parent (within the threshold) at every epoch".into(),
            verdict: Verdict::from_bool(ok),
            threshold: serde_json::json!({ "basin": t.basin }),
            numbers: serde_json::json!({ "branches": excess(&others) }),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use landscape_engine::config;
    use landscape_engine::config::Scale;

    fn bundled() -> config::ExperimentFile<Fig14Config> {
        config::parse::<Fig14Config>(BUNDLED, "bundled").unwrap()
    }

    #[test]
    fn paper_scale_is_the_protocol() {
        let file = bundled();
        let p = file.scale(Scale::Paper);
        assert_eq!(p.branch_epochs, [0, 10, 50, 200]);
        assert_eq!(p.data.train_size, None, "all 50,000 training images");
        assert_eq!(p.bgd.ghost_batch, None, "BGD is one batch of all images");
        assert_eq!(
            p.perturb,
            Perturbation {
                scale: PerturbScale::Std,
                biases: false
            }
        );
        let v: Vec<(f64, usize, Vec<usize>)> = p
            .variants
            .iter()
            .map(|v| (v.alpha, v.layer, v.expected_walls.clone()))
            .collect();
        assert_eq!(v, [(0.25, 2, vec![1]), (1.0, 3, vec![1, 2])]);
        assert_eq!(p.net, NetConfig::paper());
        for s in [Scale::Quick, Scale::Medium] {
            let q = file.scale(s);
            assert_eq!(q.branch_epochs.len(), 4, "{s}");
            assert_eq!(q.branch_epochs[0], 0, "{s}");
            assert_eq!(q.net, NetConfig::paper(), "{s}");
            assert_eq!(q.variants, p.variants, "{s}");
            assert_eq!(q.bgd.ghost_batch, None, "{s}");
        }
        assert_eq!(file.scale(Scale::Medium).data.train_size, Some(5000));
    }

    fn branch(i: usize, from: u32, excess: f64, rel: f64) -> BranchNumbers {
        BranchNumbers {
            branch: i,
            from_epoch: from,
            final_train_error: 0.0,
            final_test_error: 50.0,
            distance_at_branching: 0.1,
            distance_at_horizon: 0.1 * rel,
            relative_distance: rel,
            max_excess: excess,
            max_excess_epoch: from + 1,
            averaged_error_at_max: excess,
            final_averaged_error: 0.0,
        }
    }

    fn verdicts(
        main_err: f64,
        walls: &[usize],
        branches: &[BranchNumbers],
    ) -> BTreeMap<String, Verdict> {
        let v = Variant {
            name: "f".into(),
            branches_figure: "g".into(),
            alpha: 0.25,
            layer: 2,
            expected_walls: walls.to_vec(),
        };
        let m = Metrics {
            train_loss: 0.01,
            train_error: main_err,
            test_loss: 2.0,
            test_error: 45.0,
        };
        findings(&Thresholds::default(), &v, &m, branches)
            .into_iter()
            .map(|f| (f.id, f.verdict))
            .collect()
    }

    fn closer(layer: usize, distance: Distance, d0: [f64; 4], dh: [f64; 4]) -> Closer {
        Closer {
            layer,
            distance,
            from_epochs: vec![0, 10, 50, 200],
            at_branching: d0.to_vec(),
            at_horizon: dh.to_vec(),
        }
    }

    #[test]
    fn same_closer_holds_when_every_variant_reaches_the_same_verdict() {
        // 1 - cos on layer 2: 0.3/0.1 = 3, 2, 1.5, 1.2, decreasing.
        let base = closer(2, Distance::Cosine, [0.1; 4], [0.3, 0.2, 0.15, 0.12]);
        assert!(base.holds());
        // Euclidean: 12/4 = 3, 10/5 = 2, 9/6 = 1.5, 7/7 = 1, decreasing.
        let e = closer(
            2,
            Distance::Euclidean,
            [4.0, 5.0, 6.0, 7.0],
            [12.0, 10.0, 9.0, 7.0],
        );
        let f = same_closer("same_with_euclidean", "c", &base, std::slice::from_ref(&e));
        assert_eq!(f.verdict, Verdict::Holds);
        assert_eq!(
            f.numbers["from_epochs"],
            serde_json::json!([0, 10, 50, 200])
        );
        assert_eq!(f.numbers["configured"]["distance"], "1 - cos");
        assert_eq!(f.numbers["configured"]["later_branches_closer"], "holds");
        let r = &f.numbers["variants"][0];
        assert_eq!(r["distance"], "euclidean");
        assert_eq!(r["layer"], 2);
        assert_eq!(
            r["relative_distance"],
            serde_json::json!([3.0, 2.0, 1.5, 1.0])
        );
        assert_eq!(r["later_branches_closer"], "holds");
        assert_eq!(r["same"], true);
        // Both not holding is the same conclusion too.
        let flat = closer(2, Distance::Cosine, [0.1; 4], [0.2; 4]);
        let flat3 = closer(
            3,
            Distance::Cosine,
            [0.25, 0.5, 0.25, 0.5],
            [0.25, 0.75, 0.25, 0.5],
        );
        let f = same_closer("same_on_other_layers", "c", &flat, &[flat3]);
        assert_eq!(f.verdict, Verdict::Holds);
        assert_eq!(
            f.numbers["variants"][0]["relative_distance"],
            serde_json::json!([1.0, 1.5, 1.0, 1.0])
        );
    }

    #[test]
    fn same_closer_fails_when_a_variant_differs() {
        let base = closer(2, Distance::Cosine, [0.1; 4], [0.3, 0.2, 0.15, 0.12]);
        // Layer 3: 2, 2.5, 1.5, 1 (branch 2 moves further than branch 1).
        let l3 = closer(3, Distance::Cosine, [0.1; 4], [0.2, 0.25, 0.15, 0.1]);
        let same = closer(6, Distance::Cosine, [0.1; 4], [0.4, 0.3, 0.2, 0.1]);
        let f = same_closer("same_on_other_layers", "c", &base, &[same, l3]);
        assert_eq!(f.verdict, Verdict::DoesNotHold);
        assert_eq!(f.numbers["variants"][0]["same"], true);
        let r = &f.numbers["variants"][1];
        assert_eq!(r["layer"], 3);
        assert_eq!(r["later_branches_closer"], "does not hold");
        assert_eq!(r["same"], false);
        // A perturbation that did not move the layer (0 at branching): NaN,
        // which cannot hold.
        let zero = closer(
            2,
            Distance::Euclidean,
            [0.0, 5.0, 6.0, 7.0],
            [1.0, 10.0, 9.0, 7.0],
        );
        assert!(zero.relative()[0].is_nan());
        let f = same_closer("same_with_euclidean", "c", &base, &[zero]);
        assert_eq!(f.verdict, Verdict::DoesNotHold);
        // No other layer: reported.
        let f = same_closer("same_on_other_layers", "c", &base, &[]);
        assert_eq!(f.verdict, Verdict::Reported);
    }

    #[test]
    fn verdicts_hold_on_paper_like_numbers() {
        let b = [
            branch(1, 0, 40.0, 3.0),
            branch(2, 10, 1.0, 2.0),
            branch(3, 50, 0.0, 1.0),
            branch(4, 200, 0.0, 0.5),
        ];
        let v = verdicts(0.0, &[1], &b);
        assert_eq!(v["no_local_minimum"], Verdict::Holds);
        assert_eq!(v["test_error"], Verdict::Reported);
        assert_eq!(v["later_branches_closer"], Verdict::Holds);
        assert_eq!(v["walls"], Verdict::Holds);
        assert_eq!(v["basins"], Verdict::Holds);
        // alpha = 1.0: walls behind the first two branches.
        let b = [
            branch(1, 0, 40.0, 3.0),
            branch(2, 10, 25.0, 2.0),
            branch(3, 50, 2.0, 1.0),
            branch(4, 200, 0.0, 0.5),
        ];
        let v = verdicts(0.0, &[1, 2], &b);
        assert_eq!(v["walls"], Verdict::Holds);
        assert_eq!(v["basins"], Verdict::Holds);
    }

    #[test]
    fn verdicts_fail_on_contrary_numbers() {
        let b = [
            branch(1, 0, 0.0, 0.5),
            branch(2, 10, 30.0, 1.0),
            branch(3, 50, 0.0, 1.5),
            branch(4, 200, 0.0, 2.0),
        ];
        let v = verdicts(12.0, &[1], &b);
        assert_eq!(v["no_local_minimum"], Verdict::DoesNotHold);
        assert_eq!(v["later_branches_closer"], Verdict::DoesNotHold);
        assert_eq!(v["walls"], Verdict::DoesNotHold);
        assert_eq!(v["basins"], Verdict::DoesNotHold);
    }

    #[test]
    fn a_wall_must_exceed_every_other_branch() {
        // Epoch-0 excess above the threshold, but a later branch's is larger:
        // that is not a wall "between" main and the early branch only.
        let b = [
            branch(1, 0, 15.0, 3.0),
            branch(2, 10, 20.0, 2.0),
            branch(3, 50, 0.0, 1.0),
        ];
        let v = verdicts(0.0, &[1], &b);
        assert_eq!(v["walls"], Verdict::DoesNotHold);
        assert_eq!(
            v["basins"],
            Verdict::DoesNotHold,
            "branch 2's 20 points exceed the basin threshold"
        );
        // Below the wall threshold: no wall even if larger than the others.
        let b = [branch(1, 0, 9.0, 3.0), branch(2, 10, 1.0, 2.0)];
        assert_eq!(verdicts(0.0, &[1], &b)["walls"], Verdict::DoesNotHold);
        // Exactly at the threshold holds.
        let b = [branch(1, 0, 10.0, 3.0), branch(2, 10, 1.0, 2.0)];
        assert_eq!(verdicts(0.0, &[1], &b)["walls"], Verdict::Holds);
        // Equal relative distances are not "closer".
        let b = [branch(1, 0, 10.0, 1.0), branch(2, 10, 1.0, 1.0)];
        assert_eq!(
            verdicts(0.0, &[1], &b)["later_branches_closer"],
            Verdict::DoesNotHold
        );
    }

    #[test]
    fn bundled_scales_validate_and_edits_are_caught() {
        bundled();
        let edit =
            |from: &str, to: &str| crate::testing::edit_error::<Fig14Config>(BUNDLED, from, to);
        let e = edit(
            "branch_epochs = [0, 10, 50, 200]",
            "branch_epochs = [0, 10, 500, 200]",
        );
        assert!(e.contains("paper.branch_epochs[2]"), "{e}");
        let e = edit("wall = 10.0", "wall = 1.0");
        assert!(e.contains("thresholds.wall"), "{e}");
        let e = edit("wall = 10.0", "wall = inf");
        assert!(e.contains("thresholds.wall"), "{e}");
        let e = edit("expected_walls = [1, 2]", "expected_walls = [1, 7]");
        assert!(e.contains("variants[1].expected_walls[1]"), "{e}");
        let e = edit("seed = 0", "seed = 0\nsead = 1");
        assert!(e.contains("sead"), "{e}");
    }
}
