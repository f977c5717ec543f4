//! Figures 3 and 8-13 of the paper: SGD in stages of parallel runs; and its
//! Section 7 control, the same protocol on random training labels (protocol
//! and deviations: `docs/protocols.md`).
//!
//! The training is cut into stages. In each stage several SGD runs start from
//! the same model: runs `1..=copies` from a bit-identical copy of run 1's final
//! model of the previous stage, the others from a perturbed copy of it
//! (Gaussian noise of std `alpha * std(W)` on each weight tensor). Stage 1
//! starts from one seeded random initialisation. Every epoch of every run is
//! recorded; stage `s` covers epochs `(s - 1) E ..= s E`. Pictures: classical
//! MDS (1 - cosine) of one layer over some stages, each point drawn as its
//! stage number and coloured by run, and the runs of some stages in separate
//! panels, each point drawn as its epoch within the stage.
//!
//! `random-labels` (Section 7) runs the same plan twice into one output
//! folder: on the true labels (`store/`) and on randomised training labels
//! (`store-random/`, test labels untouched), and puts the same statistics of
//! the two side by side.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use landscape_net::{NetConfig, PerturbSpec, Phase, SgdConfig};
use landscape_trajectory::{SnapshotId, Store};
use serde::{Deserialize, Serialize};

use landscape_engine::analysis::{self, Distance, Finding, LayerView, Point, Verdict};
use landscape_engine::config::{self, ensure, ensure_range, Scale, Validate};
use landscape_engine::data::{
    self, DataConfig, ExperimentData, RandomLabelsConfig, SubsetIdentity,
};
use landscape_engine::eval::{EvalConfig, Evaluator, Metrics};
use landscape_engine::experiment::{self, SummaryHead};
use landscape_engine::identity::{Origin, RunId};
use landscape_engine::plot;
use landscape_engine::provenance::RunLog;
use landscape_engine::recorder::Recorder;
use landscape_engine::session::{self, RunOptions, Session, SessionSpec};
use landscape_engine::ExperimentError;
use landscape_probe::barriers::{self, BarrierStats, Pair, PairBarrier};

/// One MDS picture: the runs of `stages` embedded together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Picture {
    /// File stem of the overview (`fig8`).
    pub name: String,
    /// The paper's layer number embedded (2 = first convolution).
    pub layer: usize,
    /// The stages embedded and drawn (1-based, increasing).
    pub stages: Vec<u32>,
    /// File stem of the per-stage panels (`fig9`), drawn with this picture's
    /// embedding; absent: none.
    #[serde(default)]
    pub panels: Option<String>,
    /// The stages drawn separately (a subset of `stages`).
    #[serde(default)]
    pub panel_stages: Vec<u32>,
}

/// What counts as holding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Runs end apart in a stage when the smallest 1 - cos between two of
    /// its runs' final models is above this floor of numerical noise (1 -
    /// cos is scale-free; 1e-6 is about 8 f32 epsilons, what a cosine in
    /// single precision can resolve; two bit-identical reruns give 0).
    pub noise_floor: f64,
    /// "Almost always": runs end apart in at least this share of the stages.
    pub apart_share: f64,
    /// Errors agree when, in every stage, the runs' final training errors span
    /// at most this many percentage points, and so do their test errors.
    pub error_spread: f64,
    /// Later stages move less when run 1's mean displacement over the last
    /// third of the stages is at most this times its mean over the first third.
    pub late_early_ratio: f64,
    /// The training error does not get stuck when run 1's training error falls
    /// by at least this many points from each stage's end to the next (or
    /// both are at most `zero_error`).
    pub min_progress: f64,
    /// A training error at or below this (percent) counts as fitted.
    pub zero_error: f64,
    /// random-labels: the trajectory statistics of random and true labels
    /// are the same shape when, for each statistic, the ranges of its
    /// per-stage values overlap or their nearest ends are within this factor.
    pub shape_factor: f64,
    /// With Euclidean distance (`same_with_euclidean`), a stage's runs end
    /// apart when the smallest distance between two final models is above
    /// this times the mean norm of the final models (the same floor of
    /// numerical noise, relative: 1e-6 is about 8 f32 epsilons).
    pub euclidean_noise_floor: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            noise_floor: 1e-6,
            apart_share: 0.8,
            error_spread: 3.0,
            late_early_ratio: 0.5,
            min_progress: 0.1,
            zero_error: 1.0,
            shape_factor: 2.0,
            euclidean_noise_floor: 1e-6,
        }
    }
}

/// One scale of the experiment (`experiments/fig3.toml`, `experiments/random-labels.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fig3Config {
    /// Seed of the initialisation (shuffle and noise seeds derive from it).
    pub seed: u64,
    /// Which images (true labels; see `random_labels`).
    #[serde(default)]
    pub data: DataConfig,
    /// The network.
    #[serde(default)]
    pub net: NetConfig,
    /// SGD settings of every run.
    pub sgd: SgdConfig,
    /// Number of stages.
    pub stages: u32,
    /// Runs per stage.
    pub runs: u32,
    /// Runs `1..=copies` start from a copy of the stage's start model, the
    /// others from a perturbed copy.
    pub copies: u32,
    /// SGD epochs per stage (every one recorded).
    pub epochs_per_stage: u32,
    /// The perturbation of runs `copies + 1..=runs`.
    pub perturb: PerturbSpec,
    /// `random-labels` only: how the training labels are randomised (the
    /// true-label run uses `data` as it is).
    #[serde(default)]
    pub random_labels: Option<RandomLabelsConfig>,
    /// The layer the distances behind the verdicts are measured on.
    pub measure_layer: usize,
    /// The MDS pictures.
    pub pictures: Vec<Picture>,
    /// Evaluation.
    #[serde(default)]
    pub eval: EvalConfig,
    /// Verdict thresholds.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Points (t = 0..1, evenly spaced) on the straight line between every
    /// pair of a stage's runs at the stage's end, for their barriers
    /// (analysis; 0: none; 3: the midpoint only).
    #[serde(default = "default_barrier_points")]
    pub barrier_points: usize,
}

fn default_barrier_points() -> usize {
    3
}

/// Config keys that change only the analysis, not the stored models.
pub const ANALYSIS_ONLY: &[&str] = &["thresholds", "pictures", "measure_layer", "barrier_points"];

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn strictly_increasing(v: &[u32]) -> bool {
    v.windows(2).all(|w| w[0] < w[1])
}

impl Validate for Fig3Config {
    fn validate(&self, p: &str) -> Result<(), ExperimentError> {
        config::validate_setup(p, &self.data, Some(&self.net), &self.eval)?;
        ensure(
            self.data.random_labels.is_none(),
            &format!("{p}.data.random_labels"),
            "the stages train on `data` as it is; random labels are the top-level `random_labels` of the random-labels experiment",
        )?;
        barriers::validate_points(self.barrier_points, &format!("{p}.barrier_points"))?;
        ensure(
            (2..=1000).contains(&self.stages),
            &format!("{p}.stages"),
            format!(
                "{} must be between 2 and 1000 (comparing stages needs two)",
                self.stages
            ),
        )?;
        ensure(
            (2..=100).contains(&self.runs),
            &format!("{p}.runs"),
            format!("{} must be between 2 and 100", self.runs),
        )?;
        ensure(
            (1..=self.runs).contains(&self.copies),
            &format!("{p}.copies"),
            format!(
                "{} must be between 1 and runs ({}): run 1 continues the chain",
                self.copies, self.runs
            ),
        )?;
        config::ensure_epochs(p, &[("epochs_per_stage", self.epochs_per_stage)])?;
        Phase::Sgd {
            epochs: self.epochs_per_stage,
            sgd: self.sgd.clone(),
        }
        .validate(p)?;
        ensure_range(
            self.perturb.alpha,
            0.0,
            100.0,
            &format!("{p}.perturb.alpha"),
        )?;
        let layers = self.net.widths.len() + 2;
        let layer_ok = |l: usize, key: &str| {
            ensure(
                (2..=layers).contains(&l),
                key,
                format!("layer {l} does not exist: the network's layers are 2..={layers} (the paper counts the input as layer 1)"),
            )
        };
        layer_ok(self.measure_layer, &format!("{p}.measure_layer"))?;
        ensure(
            !self.pictures.is_empty(),
            &format!("{p}.pictures"),
            "needs at least one picture",
        )?;
        let mut names = std::collections::BTreeSet::new();
        for (i, pic) in self.pictures.iter().enumerate() {
            let k = format!("{p}.pictures[{i}]");
            layer_ok(pic.layer, &format!("{k}.layer"))?;
            for n in std::iter::once(&pic.name).chain(pic.panels.as_ref()) {
                ensure(
                    valid_name(n),
                    &format!("{k}.name"),
                    format!("`{n}` must be a non-empty file name of letters, digits, '-' or '_'"),
                )?;
                ensure(
                    n != "curves" && names.insert(n.clone()),
                    &format!("{k}.name"),
                    format!("`{n}` is used twice (or is `curves`)"),
                )?;
            }
            ensure(
                !pic.stages.is_empty() && strictly_increasing(&pic.stages),
                &format!("{k}.stages"),
                "must be a non-empty, strictly increasing list",
            )?;
            for (j, s) in pic.stages.iter().enumerate() {
                ensure(
                    (1..=self.stages).contains(s),
                    &format!("{k}.stages[{j}]"),
                    format!("stage {s} does not exist (stages are 1..={})", self.stages),
                )?;
            }
            ensure(
                pic.panels.is_some() != pic.panel_stages.is_empty(),
                &format!("{k}.panel_stages"),
                "`panels` and `panel_stages` go together",
            )?;
            ensure(
                strictly_increasing(&pic.panel_stages),
                &format!("{k}.panel_stages"),
                "must be strictly increasing",
            )?;
            for (j, s) in pic.panel_stages.iter().enumerate() {
                ensure(
                    pic.stages.contains(s),
                    &format!("{k}.panel_stages[{j}]"),
                    format!("stage {s} is not in this picture's stages"),
                )?;
            }
        }
        let t = &self.thresholds;
        let k = |n: &str| format!("{p}.thresholds.{n}");
        ensure_range(t.noise_floor, 0.0, 2.0, &k("noise_floor"))?;
        ensure(
            t.apart_share > 0.0 && t.apart_share <= 1.0,
            &k("apart_share"),
            format!("{} must be a share in (0, 1]", t.apart_share),
        )?;
        ensure_range(t.error_spread, 0.0, 100.0, &k("error_spread"))?;
        ensure_range(t.late_early_ratio, 0.0, 1e6, &k("late_early_ratio"))?;
        ensure_range(t.min_progress, 0.0, 100.0, &k("min_progress"))?;
        ensure_range(t.zero_error, 0.0, 100.0, &k("zero_error"))?;
        ensure_range(t.shape_factor, 1.0, 1e6, &k("shape_factor"))?;
        ensure_range(
            t.euclidean_noise_floor,
            0.0,
            2.0,
            &k("euclidean_noise_floor"),
        )
    }
}

/// The two experiments this module runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Experiment {
    /// Figures 3 and 8-13 (true labels).
    Fig3,
    /// Section 7: the same plan on true and on random labels.
    RandomLabels,
}

/// The bundled `experiments/fig3.toml`.
pub const BUNDLED: &str = include_str!("../../../experiments/fig3.toml");
/// The bundled `experiments/random-labels.toml`.
pub const BUNDLED_RANDOM: &str = include_str!("../../../experiments/random-labels.toml");

impl Experiment {
    /// The name on the command line and in `run.json`.
    pub fn name(self) -> &'static str {
        match self {
            Experiment::Fig3 => "fig3",
            Experiment::RandomLabels => "random-labels",
        }
    }

    /// The bundled experiment file.
    pub fn bundled(self) -> &'static str {
        match self {
            Experiment::Fig3 => BUNDLED,
            Experiment::RandomLabels => BUNDLED_RANDOM,
        }
    }

    /// The output folders of the label sets (true, random).
    fn folders(self) -> &'static [&'static str] {
        match self {
            Experiment::Fig3 => &["fig3"],
            Experiment::RandomLabels => &["true-labels", "random-labels"],
        }
    }
}

impl experiment::Experiment for Experiment {
    fn name(&self) -> &'static str {
        Experiment::name(*self)
    }

    fn description(&self) -> &'static str {
        match self {
            Experiment::Fig3 => {
                "Figures 3 and 8-13: SGD in 12 stages of 8 parallel runs, MDS of layers 2 and 5"
            }
            Experiment::RandomLabels => {
                "Section 7: the Figure 3 protocol on random training labels, side by side with true labels"
            }
        }
    }

    fn bundled_config(&self) -> &'static str {
        self.bundled()
    }

    fn analysis_only(&self) -> &'static [&'static str] {
        ANALYSIS_ONLY
    }

    fn run(&self, opts: &RunOptions) -> Result<crate::Report> {
        run_experiment(*self, opts).map(|s| report(&s, &opts.out))
    }
}

/// Parses an experiment file for `which`: `random_labels` must be set for
/// `random-labels` and absent for `fig3`, at every scale.
pub fn parse_config(
    which: Experiment,
    text: &str,
    origin: &str,
) -> Result<config::ExperimentFile<Fig3Config>> {
    let file = config::parse::<Fig3Config>(text, origin)?;
    for scale in Scale::ALL {
        let set = file.scale(scale).random_labels.is_some();
        let want = which == Experiment::RandomLabels;
        if set != want {
            return Err(ExperimentError::Config {
                key: format!("{scale}.random_labels"),
                reason: if want {
                    "random-labels needs `random_labels = { mode = \"permutation\" | \"uniform\", seed = N }`".into()
                } else {
                    "fig3 trains on the true labels; random labels are the `random-labels` experiment".into()
                },
            })
            .with_context(|| format!("invalid experiment file {origin}"));
        }
    }
    Ok(file)
}

/// Loads the experiment file (bundled or `opts.config_file`) and picks the scale.
pub fn load_config(which: Experiment, opts: &RunOptions) -> Result<Fig3Config> {
    let file = match &opts.config_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read experiment file {}", path.display()))?;
            parse_config(which, &text, &path.display().to_string())?
        }
        None => parse_config(
            which,
            which.bundled(),
            &experiment::bundled_origin(which.name()),
        )?,
    };
    Ok(file.scale(opts.scale).clone())
}

/// The SGD shuffle seed of run `run` of stage `stage`: distinct per run.
pub fn run_seed(seed: u64, stage: u32, run: u32) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(1_000 * u64::from(stage) + u64::from(run))
}

/// The perturbation seed of run `run` of stage `stage`.
pub fn noise_seed(seed: u64, stage: u32, run: u32) -> u64 {
    run_seed(seed, stage, run) ^ 0x5EED_0000_0000_0001
}

/// Snapshot ids by run, each by epoch.
pub type Trajectories = BTreeMap<RunId, BTreeMap<u32, SnapshotId>>;

/// Trains (or resumes) every stage into `rec`'s store; phases are timed in
/// `log` as `<tag>stage<s>`.
fn train_stages(
    rec: &Recorder<'_>,
    cfg: &Fig3Config,
    log: &mut RunLog,
    tag: &str,
) -> Result<Trajectories> {
    let e = cfg.epochs_per_stage;
    let phases = [Phase::Sgd {
        epochs: e,
        sgd: cfg.sgd.clone(),
    }];
    let mut out = Trajectories::new();
    // Run 1's final model of the previous stage.
    let mut prev_final: Option<SnapshotId> = None;
    for stage in 1..=cfg.stages {
        let start = (stage - 1) * e;
        let runs = log.phase(&format!("{tag}stage{stage}"), || {
            let mut runs = Vec::new();
            // The stage's start model: run 1's final of the previous stage,
            // or (stage 1) the initialisation run 1 recorded.
            let mut parent = prev_final;
            for run in 1..=cfg.runs {
                let id = RunId::Stage { stage, run };
                let t =
                    rec.trajectory(&id, start, &phases, run_seed(cfg.seed, stage, run), || {
                        if run <= cfg.copies {
                            match prev_final {
                                None => rec.init(cfg.seed),
                                Some(p) => Ok((rec.load(p)?, Origin::Copied { parent: p })),
                            }
                        } else {
                            let p = parent.context("the stage's start model is not recorded")?;
                            rec.perturbed(p, &cfg.perturb, noise_seed(cfg.seed, stage, run))
                        }
                    })?;
                if parent.is_none() {
                    parent = t.get(&start).copied();
                }
                runs.push((id, t));
            }
            Ok(runs)
        })?;
        out.extend(runs);
        let last = &out[&RunId::Stage { stage, run: 1 }];
        prev_final = Some(
            *last
                .get(&(stage * e))
                .with_context(|| format!("stage {stage} run 1 has no epoch {}", stage * e))?,
        );
    }
    Ok(out)
}

/// The numbers of one stage (distances on `measure_layer`, 1 - cos).
#[derive(Clone, Debug, Serialize)]
pub struct StageNumbers {
    /// 1-based.
    pub stage: u32,
    /// Its first epoch (the start models).
    pub start_epoch: u32,
    /// Its last epoch.
    pub end_epoch: u32,
    /// Final training error of each run (run 1 first), percent.
    pub final_train_error: Vec<f64>,
    /// Final test error of each run, percent.
    pub final_test_error: Vec<f64>,
    /// max - min of `final_train_error`.
    pub train_error_spread: f64,
    /// max - min of `final_test_error`.
    pub test_error_spread: f64,
    /// Smallest 1 - cos between two runs' final models.
    pub final_distance_min: f64,
    /// Mean 1 - cos over all pairs of final models.
    pub final_distance_mean: f64,
    /// Largest 1 - cos between two runs' final models.
    pub final_distance_max: f64,
    /// Smallest 1 - cos between the final models of two unperturbed runs
    /// (runs 1..=copies; null with fewer than two).
    pub same_start_distance_min: Option<f64>,
    /// The step of one epoch: 1 - cos between each run's models at the last
    /// two epochs of the stage, mean over runs.
    pub epoch_step: f64,
    /// `final_distance_min / epoch_step`.
    pub separation_ratio: f64,
    /// Mean Euclidean norm of the runs' final models on the layer (the
    /// scale of the Euclidean noise floor).
    pub final_norm: f64,
    /// Run 1's displacement over the stage: 1 - cos between its start and final models.
    pub displacement: f64,
    /// Run 1's final training error.
    pub run1_train_error: f64,
}

/// Statistics of one label set, compared side by side in `random-labels`.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    /// The initial model's training error.
    pub initial_train_error: f64,
    /// Run 1 after the first stage.
    pub first_stage_train_error: f64,
    /// Run 1 after the last stage.
    pub final_train_error: f64,
    /// Run 1 after the last stage.
    pub final_test_error: f64,
    /// Median over stages of `separation_ratio`.
    pub median_separation_ratio: f64,
    /// Smallest `separation_ratio`.
    pub min_separation_ratio: f64,
    /// Median over stages of `final_distance_mean`.
    pub median_final_distance: f64,
    /// Median over stages of `epoch_step`.
    pub median_epoch_step: f64,
    /// Mean displacement of run 1 over the first third of the stages (at least one).
    pub early_displacement: f64,
    /// Mean displacement over the last third.
    pub late_displacement: f64,
    /// `late_displacement / early_displacement`.
    pub late_early_ratio: f64,
    /// Smallest and largest `separation_ratio` over the stages (finite ones).
    pub separation_ratio_range: Option<Range>,
    /// Smallest and largest displacement of a stage of the last third over
    /// `early_displacement` (their mean is `late_early_ratio`).
    pub late_early_range: Option<Range>,
    /// Largest `train_error_spread` of any stage.
    pub max_train_error_spread: f64,
    /// Largest `test_error_spread` of any stage.
    pub max_test_error_spread: f64,
}

fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => 0.5 * (s[n / 2 - 1] + s[n / 2]),
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn spread(v: &[f64]) -> f64 {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    max - min
}

/// The smallest and largest of a statistic's values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Range {
    /// Smallest.
    pub lo: f64,
    /// Largest.
    pub hi: f64,
}

impl Range {
    /// The range of the finite values of `v` (`None` if there is none).
    pub fn of(v: &[f64]) -> Option<Range> {
        let f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        (!f.is_empty()).then(|| Range {
            lo: f.iter().copied().fold(f64::INFINITY, f64::min),
            hi: f.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    /// How far apart two ranges of non-negative numbers are, as a factor: 1
    /// if they overlap, else the higher range's smallest value over the
    /// lower range's largest (infinite if that is not positive).
    pub fn gap(self, other: Range) -> f64 {
        if self.lo <= other.hi && other.lo <= self.hi {
            return 1.0;
        }
        let (low, high) = if self.hi < other.lo {
            (self, other)
        } else {
            (other, self)
        };
        if low.hi > 0.0 {
            high.lo / low.hi
        } else {
            f64::INFINITY
        }
    }
}

/// Stages in the first and in the last third (at least one each).
pub fn thirds(n: usize) -> usize {
    n.div_ceil(3).max(1)
}

impl Stats {
    /// The statistics of `stages`, the first starting from a model with
    /// training error `initial_train_error`.
    pub fn of(initial_train_error: f64, stages: &[StageNumbers], final_test_error: f64) -> Stats {
        let k = thirds(stages.len());
        let d: Vec<f64> = stages.iter().map(|s| s.displacement).collect();
        let early = mean(&d[..k.min(d.len())]);
        let late = mean(&d[d.len().saturating_sub(k)..]);
        let sep: Vec<f64> = stages.iter().map(|s| s.separation_ratio).collect();
        let late_over_early: Vec<f64> = d[d.len().saturating_sub(k)..]
            .iter()
            .map(|x| x / early)
            .collect();
        Stats {
            separation_ratio_range: Range::of(&sep),
            late_early_range: Range::of(&late_over_early),
            initial_train_error,
            first_stage_train_error: stages.first().map_or(f64::NAN, |s| s.run1_train_error),
            final_train_error: stages.last().map_or(f64::NAN, |s| s.run1_train_error),
            final_test_error,
            median_separation_ratio: median(&sep),
            min_separation_ratio: sep.iter().copied().fold(f64::INFINITY, f64::min),
            median_final_distance: median(
                &stages
                    .iter()
                    .map(|s| s.final_distance_mean)
                    .collect::<Vec<_>>(),
            ),
            median_epoch_step: median(&stages.iter().map(|s| s.epoch_step).collect::<Vec<_>>()),
            early_displacement: early,
            late_displacement: late,
            late_early_ratio: late / early,
            max_train_error_spread: stages
                .iter()
                .map(|s| s.train_error_spread)
                .fold(f64::NEG_INFINITY, f64::max),
            max_test_error_spread: stages
                .iter()
                .map(|s| s.test_error_spread)
                .fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// Ids of the trajectory findings compared between label sets.
pub const TRAJECTORY_FINDINGS: [&str; 3] =
    ["runs_end_apart", "errors_agree", "later_stages_move_less"];

/// The paper's findings for one label set, judged on the numbers (1 - cos
/// on `layer`). Never bent to pass.
pub fn findings(
    t: &Thresholds,
    layer: usize,
    stages: &[StageNumbers],
    stats: &Stats,
) -> Vec<Finding> {
    findings_with(t, layer, Distance::Cosine, stages, stats)
}

/// The floor of numerical noise of `final_distance_min` with `distance`.
fn noise_floor(t: &Thresholds, distance: Distance, s: &StageNumbers) -> f64 {
    match distance {
        Distance::Cosine => t.noise_floor,
        Distance::Euclidean => t.euclidean_noise_floor * s.final_norm,
    }
}

/// [`findings`] on stage numbers measured with `distance` on `layer`.
pub fn findings_with(
    t: &Thresholds,
    layer: usize,
    distance: Distance,
    stages: &[StageNumbers],
    stats: &Stats,
) -> Vec<Finding> {
    let per_stage = |f: fn(&StageNumbers) -> f64| -> Vec<f64> { stages.iter().map(f).collect() };
    let d = distance.as_str();
    // A stage's runs end apart when its closest two final models are
    // further apart than numerical noise.
    let (apart_stages, together_stages): (Vec<&StageNumbers>, Vec<&StageNumbers>) =
        stages.iter().partition(|s| {
            s.final_distance_min.is_finite() && s.final_distance_min > noise_floor(t, distance, s)
        });
    let mut apart_numbers = serde_json::json!({
        "final_distance_min": per_stage(|s| s.final_distance_min),
        "stages_apart": apart_stages.iter().map(|s| s.stage).collect::<Vec<_>>(),
        "stages_within_noise": together_stages.iter().map(|s| s.stage).collect::<Vec<_>>(),
        "share_apart": f64::NAN,
        "separation_ratio": per_stage(|s| s.separation_ratio),
        "epoch_step": per_stage(|s| s.epoch_step),
    });
    let apart_threshold = match distance {
        Distance::Cosine => {
            serde_json::json!({ "noise_floor": t.noise_floor, "apart_share": t.apart_share })
        }
        Distance::Euclidean => {
            apart_numbers["final_norm"] = serde_json::json!(per_stage(|s| s.final_norm));
            serde_json::json!({ "euclidean_noise_floor": t.euclidean_noise_floor, "apart_share": t.apart_share })
        }
    };
    let apart_share = if stages.is_empty() {
        f64::NAN
    } else {
        apart_stages.len() as f64 / stages.len() as f64
    };
    let apart = apart_share.is_finite() && apart_share >= t.apart_share;
    apart_numbers["share_apart"] = serde_json::json!(apart_share);
    let agree = !stages.is_empty()
        && stages.iter().all(|s| {
            s.train_error_spread <= t.error_spread && s.test_error_spread <= t.error_spread
        });
    let moves_less = stages.len() >= 2
        && stats.late_displacement.is_finite()
        && stats.early_displacement > 0.0
        && stats.late_displacement <= t.late_early_ratio * stats.early_displacement;
    // Run 1's training error at epoch 0, then at the end of each stage.
    let ends: Vec<f64> = std::iter::once(stats.initial_train_error)
        .chain(stages.iter().map(|s| s.run1_train_error))
        .collect();
    let stuck: Vec<usize> = ends
        .windows(2)
        .enumerate()
        .filter(|(_, w)| {
            let fitted = w[0] <= t.zero_error && w[1] <= t.zero_error;
            !(fitted || w[1] <= w[0] - t.min_progress)
        })
        .map(|(i, _)| i + 1)
        .collect();
    vec![
        Finding {
            id: "runs_end_apart".into(),
            claim: format!(
                "running any trajectory with SGD again almost always leads to a slightly different model: in at least the threshold's share of the stages, the smallest {d} (layer {layer}) between two runs' final models is above the noise floor (the ratio to one epoch's step is reported, not judged)"
            ),
            verdict: Verdict::from_bool(apart),
            threshold: apart_threshold,
            numbers: apart_numbers,
        },
        Finding {
            id: "errors_agree".into(),
            claim: "while their errors agree: in every stage the runs' final training errors span at most the threshold, and so do their test errors".into(),
            verdict: Verdict::from_bool(agree),
            threshold: serde_json::json!({ "error_spread": t.error_spread }),
            numbers: serde_json::json!({
                "train_error_spread": per_stage(|s| s.train_error_spread),
                "test_error_spread": per_stage(|s| s.test_error_spread),
            }),
        },
        Finding {
            id: "later_stages_move_less".into(),
            claim: format!(
                "later stages move less: run 1's displacement over a stage ({d}, layer {layer}, start to end of the stage), mean over the last third of the stages, is at most the threshold times its mean over the first third"
            ),
            verdict: Verdict::from_bool(moves_less),
            threshold: serde_json::json!({ "late_early_ratio": t.late_early_ratio }),
            numbers: serde_json::json!({
                "displacement": per_stage(|s| s.displacement),
                "stages_per_third": thirds(stages.len()),
                "early": stats.early_displacement,
                "late": stats.late_displacement,
                "ratio": stats.late_early_ratio,
            }),
        },
        Finding {
            id: "training_error_falls".into(),
            claim: "SGD does not get stuck: run 1's training error falls by at least the threshold from the start to the end of stage 1 and from each stage's end to the next, until it is fitted".into(),
            verdict: Verdict::from_bool(stuck.is_empty() && !stages.is_empty()),
            threshold: serde_json::json!({ "min_progress": t.min_progress, "zero_error": t.zero_error }),
            numbers: serde_json::json!({
                "train_error_at_epoch_0_then_each_stage_end": ends,
                "stages_without_progress": stuck,
            }),
        },
        Finding {
            id: "test_error".into(),
            claim: "SGD's solutions generalise (paper: about 32% test error for SGD, 40% for BGD, on all of CIFAR-10)".into(),
            verdict: Verdict::Reported,
            threshold: serde_json::Value::Null,
            numbers: serde_json::json!({ "final_test_error": stats.final_test_error, "paper_sgd": 32.0, "paper_bgd": 40.0 }),
        },
    ]
}

/// The findings whose numbers are distances between models: judged again
/// with Euclidean distance and on other layers.
pub const DISTANCE_FINDINGS: [&str; 2] = ["runs_end_apart", "later_stages_move_less"];

/// The findings of one label set recomputed with another distance or layer.
#[derive(Clone, Debug)]
pub struct Variant {
    /// The paper's layer.
    pub layer: usize,
    /// The distance.
    pub distance: Distance,
    /// [`findings_with`] on its numbers.
    pub findings: Vec<Finding>,
}

fn verdict_of(fs: &[Finding], id: &str) -> Option<Verdict> {
    fs.iter().find(|f| f.id == id).map(|f| f.verdict)
}

/// Whether each variant reaches the configured verdicts (`base`: 1 - cos on
/// `layer`) on every one of [`DISTANCE_FINDINGS`]: holds when all do,
/// reported when there is no variant. Each variant's verdicts and numbers
/// are given.
fn same_conclusion(
    id: &str,
    claim: String,
    layer: usize,
    base: &[Finding],
    variants: &[Variant],
) -> Finding {
    let configured: serde_json::Map<String, serde_json::Value> = DISTANCE_FINDINGS
        .iter()
        .map(|&f| {
            (
                (*f).to_owned(),
                serde_json::json!(verdict_of(base, f).map(Verdict::as_str)),
            )
        })
        .collect();
    let mut all_same = true;
    let rows: Vec<serde_json::Value> = variants
        .iter()
        .map(|v| {
            let differ: Vec<&str> = DISTANCE_FINDINGS
                .iter()
                .copied()
                .filter(|&f| {
                    let (a, b) = (verdict_of(base, f), verdict_of(&v.findings, f));
                    a.is_none() || a != b
                })
                .collect();
            all_same &= differ.is_empty();
            let pick = |f: fn(&Finding) -> serde_json::Value| -> serde_json::Map<String, serde_json::Value> {
                v.findings
                    .iter()
                    .filter(|x| DISTANCE_FINDINGS.contains(&x.id.as_str()))
                    .map(|x| (x.id.clone(), f(x)))
                    .collect()
            };
            serde_json::json!({
                "distance": v.distance.as_str(),
                "layer": v.layer,
                "same": differ.is_empty(),
                "differing": differ,
                "verdicts": pick(|x| serde_json::json!(x.verdict.as_str())),
                "thresholds": pick(|x| x.threshold.clone()),
                "numbers": pick(|x| x.numbers.clone()),
            })
        })
        .collect();
    Finding {
        id: id.to_owned(),
        claim,
        verdict: if variants.is_empty() {
            Verdict::Reported
        } else {
            Verdict::from_bool(all_same)
        },
        threshold: serde_json::Value::Null,
        numbers: serde_json::json!({
            "configured": { "distance": Distance::Cosine.as_str(), "layer": layer, "verdicts": configured },
            "variants": rows,
        }),
    }
}

/// `same_with_euclidean`: the paper's "Euclidean distance gives
/// qualitatively similar results though", on the distance findings.
pub fn same_with_euclidean(layer: usize, base: &[Finding], variants: &[Variant]) -> Finding {
    same_conclusion(
        "same_with_euclidean",
        format!("Euclidean distance gives qualitatively similar results: runs_end_apart and later_stages_move_less (layer {layer}) reach the same verdicts with Euclidean distance as with 1 - cos (each variant's numbers given)"),
        layer,
        base,
        variants,
    )
}

/// `same_on_other_layers`: the paper's "the weights of different layers
/// tend to produce qualitatively similar results", on the distance findings.
pub fn same_on_other_layers(layer: usize, base: &[Finding], variants: &[Variant]) -> Finding {
    let others: Vec<String> = variants.iter().map(|v| v.layer.to_string()).collect();
    same_conclusion(
        "same_on_other_layers",
        format!(
            "the weights of different layers tend to produce qualitatively similar results: runs_end_apart and later_stages_move_less (1 - cos) reach the same verdicts on the pictures' other layers ({}) as on layer {layer} (reported when the pictures draw no other layer)",
            if others.is_empty() { "none".to_owned() } else { others.join(", ") }
        ),
        layer,
        base,
        variants,
    )
}

/// The side-by-side comparison of true and random labels.
pub fn comparison(
    t: &Thresholds,
    truth: (&Stats, &[Finding]),
    random: (&Stats, &[Finding]),
) -> Vec<Finding> {
    let verdict = |fs: &[Finding], id: &str| fs.iter().find(|f| f.id == id).map(|f| f.verdict);
    let pairs: Vec<serde_json::Value> = TRAJECTORY_FINDINGS
        .iter()
        .map(|id| {
            serde_json::json!({
                "finding": id,
                "true": verdict(truth.1, id).map(Verdict::as_str),
                "random": verdict(random.1, id).map(Verdict::as_str),
            })
        })
        .collect();
    let ratio = |a: f64, b: f64| b / a;
    let gap = |a: Option<Range>, b: Option<Range>| match (a, b) {
        (Some(a), Some(b)) => a.gap(b),
        _ => f64::NAN,
    };
    let sep_gap = gap(
        truth.0.separation_ratio_range,
        random.0.separation_ratio_range,
    );
    let le_gap = gap(truth.0.late_early_range, random.0.late_early_range);
    let within = |g: f64| g.is_finite() && g <= t.shape_factor;
    vec![
        Finding {
            id: "same_shape".into(),
            claim: "there is no qualitative difference between random and true labels (Section 7), judged on the numbers: for the separation ratio of each stage (smallest 1 - cos between two runs' final models / one epoch's step) and for the displacement of each stage of the last third over the first third's mean, the range over stages with random labels overlaps the true labels' range or its nearest end is within the factor".into(),
            verdict: Verdict::from_bool(within(sep_gap) && within(le_gap)),
            threshold: serde_json::json!({ "shape_factor": t.shape_factor }),
            numbers: serde_json::json!({
                "separation_ratio": {
                    "true_range": truth.0.separation_ratio_range,
                    "random_range": random.0.separation_ratio_range,
                    "gap": sep_gap,
                    "true_median": truth.0.median_separation_ratio,
                    "random_median": random.0.median_separation_ratio,
                    "random_over_true": ratio(truth.0.median_separation_ratio, random.0.median_separation_ratio),
                },
                "late_early_ratio": {
                    "true_range": truth.0.late_early_range,
                    "random_range": random.0.late_early_range,
                    "gap": le_gap,
                    "true": truth.0.late_early_ratio,
                    "random": random.0.late_early_ratio,
                    "random_over_true": ratio(truth.0.late_early_ratio, random.0.late_early_ratio),
                },
                "verdicts_not_judged": pairs,
            }),
        },
        Finding {
            id: "random_labels_fall".into(),
            claim: "how far SGD fits random labels in the same number of epochs (chance: 90% error)".into(),
            verdict: Verdict::Reported,
            threshold: serde_json::Value::Null,
            numbers: serde_json::json!({
                "random": { "initial": random.0.initial_train_error, "after_stage_1": random.0.first_stage_train_error, "final": random.0.final_train_error, "fall": random.0.initial_train_error - random.0.final_train_error },
                "true": { "initial": truth.0.initial_train_error, "after_stage_1": truth.0.first_stage_train_error, "final": truth.0.final_train_error, "fall": truth.0.initial_train_error - truth.0.final_train_error },
            }),
        },
    ]
}

/// One picture drawn.
#[derive(Clone, Debug, Serialize)]
pub struct PictureSummary {
    /// Its file stem.
    pub name: String,
    /// Its layer.
    pub layer: usize,
    /// Its stages.
    pub stages: Vec<u32>,
    /// Models embedded.
    pub points: usize,
    /// Share of the positive spectrum the 2 MDS axes explain.
    pub mds_explained: Option<f64>,
    /// Mass of negative eigenvalues (1 - cosine is not Euclidean).
    pub mds_negative_mass: Option<f64>,
}

/// `summary.json` for one label set.
#[derive(Clone, Debug, Serialize)]
pub struct LabelSummary {
    /// `true` or `random`.
    pub labels: String,
    /// The training set (indices and labels) it trained on.
    pub train_data: SubsetIdentity,
    /// The test set it was evaluated on.
    pub test_data: SubsetIdentity,
    /// Its store, relative to the output folder.
    pub store: String,
    /// The initial model.
    pub initial: Metrics,
    /// Run 1 at the end of the last stage.
    pub final_run1: Metrics,
    /// Per stage.
    pub stages: Vec<StageNumbers>,
    /// Its statistics.
    pub stats: Stats,
    /// The pictures.
    pub pictures: Vec<PictureSummary>,
    /// The verdicts.
    pub findings: Vec<Finding>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// One row of the true-vs-random table.
#[derive(Clone, Debug, Serialize)]
pub struct TableRow {
    /// The statistic.
    pub statistic: String,
    /// With true labels.
    pub true_labels: f64,
    /// With random labels.
    pub random_labels: f64,
}

/// `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The experiment, scale and BN evaluation policy (of every number here).
    #[serde(flatten)]
    pub head: SummaryHead,
    /// The layer the distances are measured on.
    pub measure_layer: usize,
    /// Stages x runs x epochs.
    pub plan: [u32; 3],
    /// One entry per label set (true, then random).
    pub labels: Vec<LabelSummary>,
    /// What was done to the training labels of the random set.
    pub random_labels: Option<landscape_dataset::RandomLabels>,
    /// The same statistics side by side (random-labels).
    pub table: Vec<TableRow>,
    /// The comparison's verdicts (random-labels).
    pub comparison: Vec<Finding>,
    /// Barriers between every pair of a stage's runs at the stage's end, per
    /// label set.
    pub pair_barriers: Vec<StageBarriers>,
}

/// The barriers between the runs of every stage, for one label set.
#[derive(Clone, Debug, Serialize)]
pub struct StageBarriers {
    /// `true` or `random`.
    pub labels: String,
    /// Over every pair of every stage.
    pub all: BarrierStats,
    /// Per stage: (stage, its pairs' statistics).
    pub per_stage: Vec<(u32, BarrierStats)>,
    /// The table (`barriers.csv` of the label set's folder).
    pub file: PathBuf,
}

/// Barriers between every pair of each stage's runs at the stage's end.
fn stage_barriers(
    rec: &Recorder<'_>,
    cfg: &Fig3Config,
    traj: &Trajectories,
    dir: &Path,
    labels: &str,
) -> Result<Option<StageBarriers>> {
    if cfg.barrier_points < 2 {
        return Ok(None);
    }
    let mut pairs = Vec::new();
    let mut stage_of = Vec::new();
    for stage in 1..=cfg.stages {
        let end = stage * cfg.epochs_per_stage;
        let ends = (1..=cfg.runs)
            .map(|run| {
                traj.get(&RunId::Stage { stage, run })
                    .and_then(|t| t.get(&end))
                    .copied()
                    .with_context(|| format!("stage {stage} run {run} has no epoch {end}"))
            })
            .collect::<Result<Vec<_>>>()?;
        for i in 0..ends.len() {
            for j in i + 1..ends.len() {
                pairs.push(Pair {
                    label: format!("stage {stage}: run {} vs {}", i + 1, j + 1),
                    a: ends[i],
                    b: ends[j],
                });
                stage_of.push(stage);
            }
        }
    }
    let (rows, _) =
        barriers::pair_barriers(rec, &pairs, &barriers::pair_ts(cfg.barrier_points), dir)?;
    let per_stage = (1..=cfg.stages)
        .map(|stage| {
            let mine: Vec<PairBarrier> = rows
                .iter()
                .zip(&stage_of)
                .filter(|(_, &s)| s == stage)
                .map(|(r, _)| r.clone())
                .collect();
            (stage, BarrierStats::of(&mine))
        })
        .collect();
    Ok(Some(StageBarriers {
        labels: labels.to_owned(),
        all: BarrierStats::of(&rows),
        per_stage,
        file: dir.join(barriers::BARRIERS_CSV),
    }))
}

/// Runs (or resumes) Figures 3 and 8-13 and writes every output into `opts.out`.
pub fn run(opts: &RunOptions) -> Result<Summary> {
    run_experiment(Experiment::Fig3, opts)
}

/// Runs (or resumes) the random-labels control (Section 7).
pub fn run_random_labels(opts: &RunOptions) -> Result<Summary> {
    run_experiment(Experiment::RandomLabels, opts)
}

fn run_experiment(which: Experiment, opts: &RunOptions) -> Result<Summary> {
    let cfg = load_config(which, opts)?;
    let folders = which.folders();
    let mut s = Session::start(
        opts,
        &SessionSpec {
            experiment: which.name(),
            config: &cfg,
            seed: cfg.seed,
            data: &cfg.data,
            net: &cfg.net,
            analysis_only: ANALYSIS_ONLY,
            outputs: folders,
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
    let truth = train_stages(&rec, &cfg, &mut s.log, "train_")?;
    let mut written = rec.written();
    let mut labels = Vec::new();
    {
        let store = rec.store();
        let dir = s.out.join(folders[0]);
        let data = &s.data;
        labels.push(s.log.phase("analyse", || {
            analyse(&cfg, &store, &truth, &dir, "true", data, "store")
        })?);
    }
    let mut pair_barriers = Vec::new();
    pair_barriers.extend(s.log.phase("barriers", || {
        stage_barriers(&rec, &cfg, &truth, &s.out.join(folders[0]), "true")
    })?);
    let mut random_record = None;
    if let Some(r) = cfg.random_labels {
        let dcfg = DataConfig {
            random_labels: Some(r),
            ..cfg.data.clone()
        };
        let data_r = data::load(&dcfg, opts.data_dir.as_deref(), s.device)?;
        anyhow::ensure!(
            data_r.test_id == s.data.test_id
                && data_r.train_id.indices_crc32 == s.data.train_id.indices_crc32,
            "randomising the labels changed the images or the test set"
        );
        random_record.clone_from(&data_r.random_labels);
        s.log.record.random_labels.clone_from(&data_r.random_labels);
        let store = Store::open_or_create(s.out.join("store-random"))?;
        let rec_r = Recorder::new(
            store,
            &data_r,
            Evaluator::new(&data_r, cfg.eval.clone()),
            cfg.net.clone(),
            s.device,
            &s.fingerprint.hash,
        );
        let tr = train_stages(&rec_r, &cfg, &mut s.log, "train_random_")?;
        written += rec_r.written();
        let dir_r = s
            .out
            .join(folders.get(1).copied().unwrap_or("random-labels"));
        pair_barriers.extend(s.log.phase("barriers_random", || {
            stage_barriers(&rec_r, &cfg, &tr, &dir_r, "random")
        })?);
        let store = rec_r.store();
        let dir = s
            .out
            .join(folders.get(1).copied().unwrap_or("random-labels"));
        labels.push(s.log.phase("analyse_random", || {
            analyse(&cfg, &store, &tr, &dir, "random", &data_r, "store-random")
        })?);
    }
    let (table, comparison) = match labels.as_slice() {
        [t, r] => (
            table(&t.stats, &r.stats),
            comparison(
                &cfg.thresholds,
                (&t.stats, &t.findings),
                (&r.stats, &r.findings),
            ),
        ),
        _ => (Vec::new(), Vec::new()),
    };
    let summary = Summary {
        head: SummaryHead::new(which.name(), opts, &cfg.eval),
        measure_layer: cfg.measure_layer,
        plan: [cfg.stages, cfg.runs, cfg.epochs_per_stage],
        labels,
        random_labels: random_record,
        table,
        comparison,
        pair_barriers,
    };
    experiment::finish(&s.out, &mut s.log, &summary, written)?;
    Ok(summary)
}

/// A table row's name and how to read it from [`Stats`].
type StatRow = (&'static str, fn(&Stats) -> f64);

fn table(t: &Stats, r: &Stats) -> Vec<TableRow> {
    let rows: [StatRow; 16] = [
        ("training error at epoch 0 (%)", |s| s.initial_train_error),
        ("run 1 training error after stage 1 (%)", |s| {
            s.first_stage_train_error
        }),
        ("run 1 training error at the end (%)", |s| {
            s.final_train_error
        }),
        ("run 1 test error at the end (%)", |s| s.final_test_error),
        (
            "median separation ratio (final distance / epoch step)",
            |s| s.median_separation_ratio,
        ),
        ("smallest separation ratio", |s| s.min_separation_ratio),
        ("largest separation ratio", |s| {
            s.separation_ratio_range.map_or(f64::NAN, |r| r.hi)
        }),
        ("median 1 - cos between final models", |s| {
            s.median_final_distance
        }),
        ("median 1 - cos step of one epoch", |s| s.median_epoch_step),
        ("run 1 displacement per stage, first third", |s| {
            s.early_displacement
        }),
        ("run 1 displacement per stage, last third", |s| {
            s.late_displacement
        }),
        ("late / early displacement", |s| s.late_early_ratio),
        (
            "late / early displacement, smallest stage of the last third",
            |s| s.late_early_range.map_or(f64::NAN, |r| r.lo),
        ),
        (
            "late / early displacement, largest stage of the last third",
            |s| s.late_early_range.map_or(f64::NAN, |r| r.hi),
        ),
        ("largest spread of final training errors (points)", |s| {
            s.max_train_error_spread
        }),
        ("largest spread of final test errors (points)", |s| {
            s.max_test_error_spread
        }),
    ];
    rows.iter()
        .map(|(name, f)| TableRow {
            statistic: (*name).to_owned(),
            true_labels: f(t),
            random_labels: f(r),
        })
        .collect()
}

fn stage_list(stages: &[u32]) -> String {
    match stages {
        [a] => format!("stage {a}"),
        [a, .., b] if stages.windows(2).all(|w| w[1] == w[0] + 1) => format!("stages {a}-{b}"),
        _ => format!(
            "stages {}",
            stages
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn runs_text(a: u32, b: u32) -> String {
    if a == b {
        format!("run {a}")
    } else {
        format!("runs {a}-{b}")
    }
}

/// The numbers of every stage, distances measured with `distance` on `layer`.
fn stage_numbers(
    cfg: &Fig3Config,
    store: &Store,
    snap: &dyn Fn(u32, u32, u32) -> Result<SnapshotId>,
    metrics: &dyn Fn(SnapshotId) -> Result<Metrics>,
    layer: usize,
    distance: Distance,
) -> Result<Vec<StageNumbers>> {
    let e = cfg.epochs_per_stage;
    let n = cfg.runs as usize;
    let copies = cfg.copies as usize;
    let mut stages = Vec::new();
    for stage in 1..=cfg.stages {
        let (start, end) = ((stage - 1) * e, stage * e);
        let mut ids = Vec::new();
        for run in 1..=cfg.runs {
            ids.push(snap(stage, run, end)?);
        }
        for run in 1..=cfg.runs {
            ids.push(snap(stage, run, end - 1)?);
        }
        ids.push(snap(stage, 1, start)?);
        let m = analysis::layer_matrix(store, &ids, layer)?;
        let rows: Vec<&[f32]> = m
            .rows()
            .into_iter()
            .map(|r| r.to_slice().context("matrix layout"))
            .collect::<Result<_>>()?;
        let d = |a: usize, b: usize| distance.of(rows[a], rows[b]);
        let mut pairs = Vec::new();
        let mut same = Vec::new();
        for a in 0..n {
            for b in a + 1..n {
                pairs.push(d(a, b));
                if b < copies {
                    same.push(d(a, b));
                }
            }
        }
        let steps: Vec<f64> = (0..n).map(|k| d(k, n + k)).collect();
        let step = mean(&steps);
        let finals: Vec<Metrics> = ids[..n]
            .iter()
            .map(|&id| metrics(id))
            .collect::<Result<_>>()?;
        let train: Vec<f64> = finals.iter().map(|m| m.train_error).collect();
        let test: Vec<f64> = finals.iter().map(|m| m.test_error).collect();
        let min = pairs.iter().copied().fold(f64::INFINITY, f64::min);
        stages.push(StageNumbers {
            stage,
            start_epoch: start,
            end_epoch: end,
            train_error_spread: spread(&train),
            test_error_spread: spread(&test),
            run1_train_error: train[0],
            final_train_error: train,
            final_test_error: test,
            final_distance_min: min,
            final_distance_mean: mean(&pairs),
            final_distance_max: pairs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            same_start_distance_min: (!same.is_empty())
                .then(|| same.iter().copied().fold(f64::INFINITY, f64::min)),
            epoch_step: step,
            separation_ratio: if step > 0.0 { min / step } else { f64::NAN },
            final_norm: mean(
                &rows[..n]
                    .iter()
                    .map(|r| analysis::euclidean_norm(r))
                    .collect::<Vec<_>>(),
            ),
            displacement: d(0, 2 * n),
        });
    }
    Ok(stages)
}

/// Analyses one label set's store: numbers, verdicts and pictures into `dir`.
fn analyse(
    cfg: &Fig3Config,
    store: &Store,
    traj: &Trajectories,
    dir: &Path,
    labels: &str,
    data: &ExperimentData,
    store_name: &str,
) -> Result<LabelSummary> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let e = cfg.epochs_per_stage;
    let snap = |stage: u32, run: u32, epoch: u32| -> Result<SnapshotId> {
        traj.get(&RunId::Stage { stage, run })
            .and_then(|t| t.get(&epoch))
            .copied()
            .with_context(|| format!("stage {stage} run {run} has no epoch {epoch}"))
    };
    let metrics = |id: SnapshotId| -> Result<Metrics> {
        Metrics::from_map(store.get(id)?.meta().metrics())
            .with_context(|| format!("snapshot {id} has no train/test metrics"))
    };

    // Numbers behind the verdicts.
    let numbers = |layer: usize, distance: Distance| {
        stage_numbers(cfg, store, &snap, &metrics, layer, distance)
    };
    let stages = numbers(cfg.measure_layer, Distance::Cosine)?;
    let initial = metrics(snap(1, 1, 0)?)?;
    let final_run1 = metrics(snap(cfg.stages, 1, cfg.stages * e)?)?;
    let stats = Stats::of(initial.train_error, &stages, final_run1.test_error);
    let mut findings = findings(&cfg.thresholds, cfg.measure_layer, &stages, &stats);
    // The same verdicts with Euclidean distance, and on the pictures' other
    // layers.
    let variant = |layer: usize, distance: Distance| -> Result<Variant> {
        let st = numbers(layer, distance)?;
        let stats = Stats::of(initial.train_error, &st, final_run1.test_error);
        Ok(Variant {
            layer,
            distance,
            findings: findings_with(&cfg.thresholds, layer, distance, &st, &stats),
        })
    };
    let euclidean = [variant(cfg.measure_layer, Distance::Euclidean)?];
    let others = cfg
        .pictures
        .iter()
        .map(|p| p.layer)
        .filter(|&l| l != cfg.measure_layer)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|l| variant(l, Distance::Cosine))
        .collect::<Result<Vec<_>>>()?;
    let (same_euclidean, same_layers) = (
        same_with_euclidean(cfg.measure_layer, &findings, &euclidean),
        same_on_other_layers(cfg.measure_layer, &findings, &others),
    );
    tracing::info!(
        labels,
        same_with_euclidean = same_euclidean.verdict.as_str(),
        same_on_other_layers = same_layers.verdict.as_str(),
        "distance variants"
    );
    findings.extend([same_euclidean, same_layers]);

    // Pictures.
    let what = format!(
        "{} stages x {} runs x {} SGD epochs (batch {}, lr {}), {} training images with {labels} labels",
        cfg.stages,
        cfg.runs,
        e,
        cfg.sgd.batch_size,
        cfg.sgd.lr,
        data.train_len()
    );
    let mut files = Vec::new();
    let mut pictures = Vec::new();
    for pic in &cfg.pictures {
        let view = LayerView::new(
            store,
            |r| matches!(r, RunId::Stage { stage, .. } if pic.stages.contains(stage)),
            pic.layer,
            2,
        )?;
        let csv = dir.join(format!("{}-points.csv", pic.name));
        view.write_csv(store, &csv)?;
        files.push(csv);
        // One group per (stage, run), named by run so that the legend lists runs.
        let group = |stage: u32, run: u32, label: &dyn Fn(&Point) -> String| -> plot::Group {
            let mut g = view.group(&RunId::Stage { stage, run }, run as usize - 1, label);
            g.name = format!("run {run}");
            for p in &mut g.points {
                if let Some(t) = p.tooltip.as_mut() {
                    *t = format!("stage {stage}, {t}");
                }
            }
            g
        };
        let stage_label = |p: &Point| match p.run {
            RunId::Stage { stage, .. } => stage.to_string(),
            _ => String::new(),
        };
        let overview = plot::ScatterPanel {
            title: format!(
                "MDS (1 - cosine) of layer {} weights, {}; each model drawn as its stage number, coloured by run",
                pic.layer,
                stage_list(&pic.stages)
            ),
            groups: pic
                .stages
                .iter()
                .flat_map(|&s| (1..=cfg.runs).map(move |r| (s, r)))
                .map(|(s, r)| group(s, r, &stage_label))
                .collect(),
        };
        files.extend(plot::scatter_panels(
            &dir.join(&pic.name),
            &format!("{}: SGD in stages, {what}", pic.name),
            &[overview],
            1,
            (1400, 1100),
            true,
            11,
        )?);
        if let Some(panels_name) = &pic.panels {
            let mut panels = Vec::new();
            for &stage in &pic.panel_stages {
                let start = (stage - 1) * e;
                let epoch_label = move |p: &Point| p.epoch.saturating_sub(start).to_string();
                let from = if stage == 1 {
                    "the random initialisation".to_owned()
                } else {
                    format!("run 1's final model of stage {}", stage - 1)
                };
                panels.push(plot::ScatterPanel {
                    title: format!("stage {stage}, {} from {from}", runs_text(1, cfg.copies)),
                    groups: (1..=cfg.copies)
                        .map(|r| group(stage, r, &epoch_label))
                        .collect(),
                });
                if cfg.copies < cfg.runs {
                    panels.push(plot::ScatterPanel {
                        title: format!(
                            "stage {stage}, {} from it perturbed (alpha = {})",
                            runs_text(cfg.copies + 1, cfg.runs),
                            cfg.perturb.alpha
                        ),
                        groups: (cfg.copies + 1..=cfg.runs)
                            .map(|r| group(stage, r, &epoch_label))
                            .collect(),
                    });
                }
            }
            let cols = if cfg.copies < cfg.runs { 2 } else { 1 };
            let rows = panels.len().div_ceil(cols) as u32;
            files.extend(plot::scatter_panels(
                &dir.join(panels_name),
                &format!(
                    "{panels_name}: the runs of {} drawn separately (layer {}, MDS of {}); each model drawn as its epoch within the stage",
                    stage_list(&pic.panel_stages),
                    pic.layer,
                    pic.name
                ),
                &panels,
                cols,
                (1600, 120 + 620 * rows.max(1)),
                false,
                12,
            )?);
        }
        let emb = &view.embedding;
        pictures.push(PictureSummary {
            name: pic.name.clone(),
            layer: pic.layer,
            stages: pic.stages.clone(),
            points: view.points.len(),
            mds_explained: emb.explained_ratio(),
            mds_negative_mass: emb.negative_mass(),
        });
    }

    // Curves: every run of every stage, one colour per run.
    let points = analysis::points(store, |r| matches!(r, RunId::Stage { .. }))?;
    let curve = |f: fn(&Metrics) -> f64| -> Vec<plot::Curve> {
        (1..=cfg.stages)
            .flat_map(|s| (1..=cfg.runs).map(move |r| (s, r)))
            .map(|(stage, run)| plot::Curve {
                name: format!("run {run}"),
                color: plot::palette(run as usize - 1),
                points: points
                    .iter()
                    .filter(|p| p.run == RunId::Stage { stage, run })
                    .map(|p| (f64::from(p.epoch), f(&p.metrics)))
                    .collect(),
            })
            .collect()
    };
    let panel = |title: &str, y: &str, f: fn(&Metrics) -> f64| plot::LinePanel {
        title: title.to_owned(),
        x_label: "epoch (SGD)".to_owned(),
        y_label: y.to_owned(),
        curves: curve(f),
    };
    files.extend(plot::line_panels(
        &dir.join("curves"),
        &format!("error and loss of every run, {what}"),
        &[
            panel("training error", "error %", |m| m.train_error),
            panel("test error", "error %", |m| m.test_error),
            panel("training loss", "loss", |m| m.train_loss),
            panel("test loss", "loss", |m| m.test_loss),
        ],
        2,
        (1400, 1000),
    )?);

    Ok(LabelSummary {
        labels: labels.to_owned(),
        train_data: data.train_id.clone(),
        test_data: data.test_id.clone(),
        store: store_name.to_owned(),
        initial,
        final_run1,
        stages,
        stats,
        pictures,
        findings,
        files,
    })
}

/// A table cell: 4 decimals, or 3 significant digits for small distances.
fn number(v: f64) -> String {
    if v != 0.0 && v.abs() < 0.01 {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

/// The terminal report of a finished run.
pub fn report(s: &Summary, out: &Path) -> super::Report {
    let mut files: Vec<PathBuf> = s.labels.iter().flat_map(|l| l.files.clone()).collect();
    files.extend(experiment::standard_files(
        out,
        s.labels.iter().map(|l| l.store.as_str()),
    ));
    let [stages, runs, epochs] = s.plan;
    let mut headline: Vec<String> = s
        .labels
        .iter()
        .map(|l| {
            format!(
                "{} labels: {stages} stages x {runs} runs x {epochs} epochs; run 1's training error {:.2}% -> {:.2}%, test error {:.2}% (BN: {})",
                l.labels, l.initial.train_error, l.final_run1.train_error, l.final_run1.test_error, s.head.bn_eval
            )
        })
        .collect();
    for b in &s.pair_barriers {
        headline.push(b.all.line(&format!(
            "{} labels, between every pair of a stage's runs at its end ({})",
            b.labels,
            b.file.display()
        )));
    }
    if let Some(r) = &s.random_labels {
        headline.push(format!(
            "random labels: {:?}, seed {}, {} of {} training labels changed",
            r.mode, r.seed, r.changed, r.images
        ));
    }
    if !s.table.is_empty() {
        headline.push(String::new());
        headline.push(format!(
            "  {:<56} {:>12} {:>12}",
            format!("statistic (distances: 1 - cos, layer {})", s.measure_layer),
            "true",
            "random"
        ));
        for r in &s.table {
            headline.push(format!(
                "  {:<56} {:>12} {:>12}",
                r.statistic,
                number(r.true_labels),
                number(r.random_labels)
            ));
        }
    }
    let mut sections: Vec<super::Section> = s
        .labels
        .iter()
        .map(|l| super::Section {
            title: format!(
                "{} labels (distances on layer {})",
                l.labels, s.measure_layer
            ),
            findings: l.findings.clone(),
        })
        .collect();
    if !s.comparison.is_empty() {
        sections.push(super::Section {
            title: "true vs random labels".into(),
            findings: s.comparison.clone(),
        });
    }
    super::Report {
        experiment: s.head.experiment.clone(),
        headline,
        sections,
        files,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn bundled(which: Experiment) -> config::ExperimentFile<Fig3Config> {
        parse_config(which, which.bundled(), "bundled").unwrap()
    }

    #[test]
    fn paper_scale_is_the_protocol() {
        let file = bundled(Experiment::Fig3);
        let p = file.scale(Scale::Paper);
        assert_eq!(
            (p.stages, p.runs, p.copies, p.epochs_per_stage),
            (12, 8, 4, 10)
        );
        assert_eq!(
            p.sgd,
            SgdConfig {
                batch_size: 100,
                lr: 0.01,
                momentum: 0.0,
                weight_decay: 0.0
            }
        );
        assert_eq!(
            p.perturb,
            PerturbSpec {
                alpha: 0.01,
                scale: landscape_net::PerturbScale::Std,
                biases: false
            }
        );
        assert_eq!(p.data.train_size, None, "all 50,000 training images");
        assert_eq!(p.net, NetConfig::paper());
        assert_eq!(p.measure_layer, 2);
        type Pic<'a> = (&'a str, usize, Vec<u32>, Option<&'a str>, Vec<u32>);
        let pics: Vec<Pic<'_>> = p
            .pictures
            .iter()
            .map(|x| {
                (
                    x.name.as_str(),
                    x.layer,
                    x.stages.clone(),
                    x.panels.as_deref(),
                    x.panel_stages.clone(),
                )
            })
            .collect();
        let all: Vec<u32> = (1..=12).collect();
        let late: Vec<u32> = (5..=12).collect();
        assert_eq!(
            pics,
            [
                ("fig8", 2, all.clone(), Some("fig9"), vec![1, 2, 3]),
                ("fig10", 2, late.clone(), Some("fig11"), vec![5, 6, 7]),
                ("fig12", 5, all, Some("fig12-stages"), vec![1, 2, 3]),
                ("fig13", 5, late, Some("fig13-stages"), vec![5, 6, 7]),
            ]
        );
        for s in Scale::ALL {
            let c = file.scale(s);
            assert_eq!((c.runs, c.copies), (8, 4), "{s}");
            assert_eq!(c.sgd, p.sgd, "{s}");
            assert_eq!(c.perturb, p.perturb, "{s}");
            assert!(c.random_labels.is_none(), "{s}");
        }
    }

    #[test]
    fn random_labels_is_the_same_protocol_with_random_labels() {
        let f = bundled(Experiment::Fig3);
        let r = bundled(Experiment::RandomLabels);
        for s in Scale::ALL {
            let (a, b) = (f.scale(s), r.scale(s));
            let rl = b.random_labels.unwrap();
            assert_eq!(rl.mode, landscape_dataset::LabelNoise::Permutation, "{s}");
            assert_eq!(
                (a.sgd.clone(), a.perturb, a.runs, a.copies),
                (b.sgd.clone(), b.perturb, b.runs, b.copies),
                "{s}"
            );
            assert_eq!((&a.data, &a.net), (&b.data, &b.net), "{s}");
        }
        let (a, b) = (f.scale(Scale::Paper), r.scale(Scale::Paper));
        let mut b = b.clone();
        b.random_labels = None;
        assert_eq!(a, &b, "paper scale: fig3's protocol exactly, labels aside");
        // Each experiment refuses the other's labels.
        let e = format!(
            "{:#}",
            parse_config(Experiment::Fig3, BUNDLED_RANDOM, "x").unwrap_err()
        );
        assert!(e.contains("random_labels"), "{e}");
        let e = format!(
            "{:#}",
            parse_config(Experiment::RandomLabels, BUNDLED, "x").unwrap_err()
        );
        assert!(e.contains("random_labels"), "{e}");
    }

    #[allow(clippy::too_many_arguments)]
    fn stage(
        s: u32,
        sep: f64,
        spread_train: f64,
        spread_test: f64,
        disp: f64,
        err: f64,
    ) -> StageNumbers {
        StageNumbers {
            stage: s,
            start_epoch: (s - 1) * 10,
            end_epoch: s * 10,
            final_train_error: vec![err; 8],
            final_test_error: vec![40.0; 8],
            train_error_spread: spread_train,
            test_error_spread: spread_test,
            final_distance_min: sep * 0.01,
            final_distance_mean: sep * 0.012,
            final_distance_max: sep * 0.015,
            same_start_distance_min: Some(sep * 0.01),
            epoch_step: 0.01,
            separation_ratio: sep,
            final_norm: 10.0,
            displacement: disp,
            run1_train_error: err,
        }
    }

    fn paper_like() -> Vec<StageNumbers> {
        (1..=12)
            .map(|s| {
                let x = f64::from(s);
                stage(
                    s,
                    2.0 + 0.1 * x,
                    1.0,
                    1.5,
                    0.5 / x,
                    (60.0 / x).max(0.0) - 4.0 * (x - 1.0) / 11.0,
                )
            })
            .collect()
    }

    fn verdicts(stages: &[StageNumbers], t: &Thresholds) -> BTreeMap<String, Verdict> {
        let stats = Stats::of(90.0, stages, 35.0);
        findings(t, 2, stages, &stats)
            .into_iter()
            .map(|f| (f.id, f.verdict))
            .collect()
    }

    #[test]
    fn verdicts_hold_on_paper_like_numbers() {
        let v = verdicts(&paper_like(), &Thresholds::default());
        assert_eq!(v["runs_end_apart"], Verdict::Holds);
        assert_eq!(v["errors_agree"], Verdict::Holds);
        assert_eq!(v["later_stages_move_less"], Verdict::Holds);
        assert_eq!(v["training_error_falls"], Verdict::Holds);
        assert_eq!(v["test_error"], Verdict::Reported);
        // Fitted stages may stay flat at (near) zero.
        let mut s = paper_like();
        for x in &mut s[8..] {
            x.run1_train_error = 0.5;
        }
        s[7].run1_train_error = 0.8;
        assert_eq!(
            verdicts(&s, &Thresholds::default())["training_error_falls"],
            Verdict::Holds
        );
    }

    #[test]
    fn verdicts_fail_on_contrary_numbers() {
        let t = Thresholds::default();
        // Three stages of twelve (share 0.75 < 0.8) whose closest runs end
        // bit-identical, at the floor or unmeasured: not "almost always".
        let mut s = paper_like();
        s[4].final_distance_min = 0.0;
        s[5].final_distance_min = 1e-6;
        s[6].final_distance_min = f64::NAN;
        assert_eq!(verdicts(&s, &t)["runs_end_apart"], Verdict::DoesNotHold);
        // Errors disagree in one stage (training or test).
        let mut s = paper_like();
        s[2].train_error_spread = 3.5;
        assert_eq!(verdicts(&s, &t)["errors_agree"], Verdict::DoesNotHold);
        let mut s = paper_like();
        s[11].test_error_spread = 3.01;
        assert_eq!(verdicts(&s, &t)["errors_agree"], Verdict::DoesNotHold);
        s[11].test_error_spread = 3.0;
        assert_eq!(verdicts(&s, &t)["errors_agree"], Verdict::Holds);
        // Later stages moving as much as early ones.
        let mut s = paper_like();
        for x in &mut s {
            x.displacement = 0.1;
        }
        assert_eq!(
            verdicts(&s, &t)["later_stages_move_less"],
            Verdict::DoesNotHold
        );
        // Exactly half holds (first third: stages 1-4, last third: 9-12).
        for x in &mut s[8..] {
            x.displacement = 0.05;
        }
        assert_eq!(verdicts(&s, &t)["later_stages_move_less"], Verdict::Holds);
        // A plateau above zero error is stuck; so is a rise.
        let mut s = paper_like();
        s[6].run1_train_error = s[5].run1_train_error;
        let v = verdicts(&s, &t);
        assert_eq!(v["training_error_falls"], Verdict::DoesNotHold);
        let mut s = paper_like();
        s[3].run1_train_error = s[2].run1_train_error + 2.0;
        assert_eq!(
            verdicts(&s, &t)["training_error_falls"],
            Verdict::DoesNotHold
        );
        // Stage 1 must fall from the initial error too.
        let mut s = paper_like();
        s[0].run1_train_error = 90.0;
        assert_eq!(
            verdicts(&s, &t)["training_error_falls"],
            Verdict::DoesNotHold
        );
    }

    fn finding(stages: &[StageNumbers], id: &str) -> Finding {
        let stats = Stats::of(90.0, stages, 35.0);
        findings(&Thresholds::default(), 2, stages, &stats)
            .into_iter()
            .find(|f| f.id == id)
            .unwrap()
    }

    #[test]
    fn runs_end_apart_is_judged_against_the_noise_floor() {
        // Runs ending closer than one epoch's step (the quick run's
        // separation ratios, 0.56-1.30) are still different models.
        let quick = [
            0.84, 0.67, 0.89, 1.06, 0.95, 0.56, 0.68, 0.96, 0.97, 1.30, 0.90, 0.94,
        ];
        let mut s = paper_like();
        for (x, r) in s.iter_mut().zip(quick) {
            x.separation_ratio = r;
            x.final_distance_min = r * x.epoch_step;
        }
        let f = finding(&s, "runs_end_apart");
        assert_eq!(f.verdict, Verdict::Holds);
        assert_eq!(f.threshold["noise_floor"], 1e-6);
        assert_eq!(f.threshold["apart_share"], 0.8);
        assert_eq!(f.numbers["share_apart"], 1.0);
        assert_eq!(f.numbers["separation_ratio"][5], 0.56, "reported");
        // Two stages of twelve within the noise (share 10/12 >= 0.8):
        // "almost always" still holds, and says which.
        s[3].final_distance_min = 0.0;
        s[9].final_distance_min = 5e-7;
        let f = finding(&s, "runs_end_apart");
        assert_eq!(f.verdict, Verdict::Holds);
        assert_eq!(f.numbers["stages_within_noise"], serde_json::json!([4, 10]));
        assert_eq!(f.numbers["stages_apart"].as_array().unwrap().len(), 10);
        let share = f.numbers["share_apart"].as_f64().unwrap();
        assert!((share - 10.0 / 12.0).abs() < 1e-12, "{share}");
        // A third: 9/12 = 0.75 < 0.8.
        s[0].final_distance_min = 1e-7;
        assert_eq!(finding(&s, "runs_end_apart").verdict, Verdict::DoesNotHold);
        // Bit-identical reruns in every stage.
        let mut s = paper_like();
        for x in &mut s {
            x.final_distance_min = 0.0;
            x.separation_ratio = 0.0;
        }
        let f = finding(&s, "runs_end_apart");
        assert_eq!(f.verdict, Verdict::DoesNotHold);
        assert_eq!(f.numbers["share_apart"], 0.0);
        // No stages: nothing to judge.
        assert_eq!(finding(&[], "runs_end_apart").verdict, Verdict::DoesNotHold);
    }

    #[test]
    fn ranges_and_their_gap() {
        let a = Range::of(&[0.5, f64::NAN, 1.0, 0.8]).unwrap();
        assert_eq!((a.lo, a.hi), (0.5, 1.0));
        assert!(Range::of(&[f64::NAN]).is_none());
        assert!(Range::of(&[]).is_none());
        let b = Range { lo: 0.9, hi: 3.0 };
        assert_eq!(a.gap(b), 1.0, "overlap");
        let c = Range { lo: 2.5, hi: 4.0 };
        assert_eq!(a.gap(c), 2.5);
        assert_eq!(c.gap(a), 2.5, "symmetric");
        let z = Range { lo: 0.0, hi: 0.0 };
        assert_eq!(z.gap(z), 1.0);
        assert_eq!(z.gap(a), f64::INFINITY);
    }

    #[test]
    fn thirds_cover_short_plans() {
        assert_eq!(thirds(12), 4);
        assert_eq!(thirds(3), 1);
        assert_eq!(thirds(2), 1);
        assert_eq!(thirds(4), 2);
        let s = [
            stage(1, 2.0, 0.0, 0.0, 0.4, 50.0),
            stage(2, 2.0, 0.0, 0.0, 0.1, 40.0),
        ];
        let st = Stats::of(90.0, &s, 45.0);
        assert_eq!((st.early_displacement, st.late_displacement), (0.4, 0.1));
        assert_eq!(st.late_early_ratio, 0.25);
        assert_eq!(st.late_early_range, Some(Range { lo: 0.25, hi: 0.25 }));
        assert_eq!(st.separation_ratio_range, Some(Range { lo: 2.0, hi: 2.0 }));
        assert_eq!(st.first_stage_train_error, 50.0);
        assert_eq!(st.final_train_error, 40.0);
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
    }

    fn compare(truth: &[StageNumbers], random: &[StageNumbers]) -> Vec<Finding> {
        let t = Thresholds::default();
        let st = Stats::of(90.0, truth, 35.0);
        let sr = Stats::of(90.0, random, 90.0);
        let ft = findings(&t, 2, truth, &st);
        let fr = findings(&t, 2, random, &sr);
        comparison(&t, (&st, &ft), (&sr, &fr))
    }

    fn compared(truth: &[StageNumbers], random: &[StageNumbers]) -> BTreeMap<String, Verdict> {
        compare(truth, random)
            .into_iter()
            .map(|f| (f.id, f.verdict))
            .collect()
    }

    #[test]
    fn comparison_holds_when_random_labels_look_the_same() {
        let truth = paper_like();
        let mut random = paper_like();
        // Random labels: errors stay high and fall slowly, the geometry is the same.
        for (i, x) in random.iter_mut().enumerate() {
            x.run1_train_error = 89.0 - 2.0 * i as f64;
            x.separation_ratio *= 1.5;
            x.displacement *= 1.2;
        }
        let v = compared(&truth, &random);
        assert!(!v.contains_key("same_verdicts"), "merged into same_shape");
        assert_eq!(v["same_shape"], Verdict::Holds);
        assert_eq!(v["random_labels_fall"], Verdict::Reported);
        // The quick run's numbers: a separation ratio below one epoch's step
        // with true labels (0.56-1.30, median 0.87), above with random
        // labels (median 1.17): the flags differed, the numbers overlap.
        let mut truth = paper_like();
        let mut random = paper_like();
        for (i, (a, b)) in truth.iter_mut().zip(&mut random).enumerate() {
            a.separation_ratio = [0.84, 0.67, 0.89, 1.06, 0.95, 0.56][i % 6];
            b.separation_ratio = [1.17, 1.3, 0.98, 1.2, 1.1, 1.25][i % 6];
        }
        let f = compare(&truth, &random).remove(0);
        assert_eq!(f.id, "same_shape");
        assert_eq!(f.verdict, Verdict::Holds);
        let sep = &f.numbers["separation_ratio"];
        assert_eq!(sep["gap"], 1.0, "the ranges overlap");
        assert_eq!(sep["true_range"]["lo"], 0.56);
        assert_eq!(sep["random_range"]["hi"], 1.3);
        let pairs = f.numbers["verdicts_not_judged"].as_array().unwrap();
        assert_eq!(pairs[0]["finding"], "runs_end_apart");
        assert_eq!(f.threshold["shape_factor"], 2.0);
    }

    #[test]
    fn comparison_fails_when_the_picture_differs() {
        let truth = paper_like();
        // Random-label runs that stay together: separation 0.2 in every
        // stage, against 2.1-3.2 with true labels (a gap of 10.5).
        let mut random = paper_like();
        for x in &mut random {
            x.separation_ratio = 0.2;
        }
        let f = compare(&truth, &random).remove(0);
        assert_eq!(f.verdict, Verdict::DoesNotHold);
        let g = f.numbers["separation_ratio"]["gap"].as_f64().unwrap();
        assert!((g - 2.1 / 0.2).abs() < 1e-9, "{g}");
        // Later stages shrink much less with random labels: every last-third
        // stage at 0.4 of the first third's mean against 0.1 (a gap of 4).
        let mut random = paper_like();
        for (i, x) in random.iter_mut().enumerate() {
            x.displacement = if i < 4 { 0.5 } else { 0.2 };
        }
        let mut truth = paper_like();
        for (i, x) in truth.iter_mut().enumerate() {
            x.displacement = if i < 4 { 0.5 } else { 0.05 };
        }
        let f = compare(&truth, &random).remove(0);
        assert_eq!(f.verdict, Verdict::DoesNotHold);
        let g = f.numbers["late_early_ratio"]["gap"].as_f64().unwrap();
        assert!((g - 4.0).abs() < 1e-9, "{g}");
        // Within the factor (0.18 against 0.1: 1.8 <= 2) holds.
        for x in &mut random[4..] {
            x.displacement = 0.09;
        }
        assert_eq!(compared(&truth, &random)["same_shape"], Verdict::Holds);
        // Nothing measured (one epoch's step of zero in every stage): cannot hold.
        let mut random = paper_like();
        for x in &mut random {
            x.separation_ratio = f64::NAN;
        }
        assert_eq!(
            compared(&truth, &random)["same_shape"],
            Verdict::DoesNotHold
        );
    }

    /// `stages` measured another way: distances times `scale`, run 1's
    /// displacement replaced by `disp(stage)`, final models of norm `norm`.
    fn variant(
        stages: &[StageNumbers],
        layer: usize,
        distance: Distance,
        scale: f64,
        norm: f64,
        disp: impl Fn(u32) -> f64,
    ) -> Variant {
        let st: Vec<StageNumbers> = stages
            .iter()
            .map(|s| StageNumbers {
                final_distance_min: s.final_distance_min * scale,
                final_distance_mean: s.final_distance_mean * scale,
                final_distance_max: s.final_distance_max * scale,
                epoch_step: s.epoch_step * scale,
                displacement: disp(s.stage),
                final_norm: norm,
                ..s.clone()
            })
            .collect();
        let stats = Stats::of(90.0, &st, 35.0);
        Variant {
            layer,
            distance,
            findings: findings_with(&Thresholds::default(), layer, distance, &st, &stats),
        }
    }

    fn base(stages: &[StageNumbers]) -> Vec<Finding> {
        findings(
            &Thresholds::default(),
            2,
            stages,
            &Stats::of(90.0, stages, 35.0),
        )
    }

    #[test]
    fn same_with_euclidean_holds_when_the_verdicts_agree() {
        let stages = paper_like();
        // Euclidean distances 100 x the 1 - cos ones (smallest 2.1..3.2),
        // final models of norm 10 (floor 1e-5); displacement 30 / stage.
        let v = variant(&stages, 2, Distance::Euclidean, 100.0, 10.0, |s| {
            30.0 / f64::from(s)
        });
        let f = same_with_euclidean(2, &base(&stages), std::slice::from_ref(&v));
        assert_eq!(f.verdict, Verdict::Holds);
        assert_eq!(f.threshold, serde_json::Value::Null);
        let c = &f.numbers["configured"];
        assert_eq!(c["distance"], "1 - cos");
        assert_eq!(c["layer"], 2);
        assert_eq!(c["verdicts"]["runs_end_apart"], "holds");
        assert_eq!(c["verdicts"]["later_stages_move_less"], "holds");
        let r = &f.numbers["variants"][0];
        assert_eq!(r["distance"], "euclidean");
        assert_eq!(r["same"], true);
        assert_eq!(r["differing"], serde_json::json!([]));
        assert_eq!(r["verdicts"]["runs_end_apart"], "holds");
        assert_eq!(r["verdicts"]["later_stages_move_less"], "holds");
        assert_eq!(
            r["thresholds"]["runs_end_apart"]["euclidean_noise_floor"],
            1e-6
        );
        let apart = &r["numbers"]["runs_end_apart"];
        assert_eq!(apart["final_norm"][0], 10.0);
        assert!((apart["final_distance_min"][0].as_f64().unwrap() - 2.1).abs() < 1e-12);
        assert_eq!(apart["share_apart"], 1.0);
        // Early third (stages 1-4): mean of 30, 15, 10, 7.5 = 15.625; late
        // (9-12): 30 x (1/9 + 1/10 + 1/11 + 1/12) / 4 = 2.894...
        let moves = &r["numbers"]["later_stages_move_less"];
        assert!((moves["early"].as_f64().unwrap() - 15.625).abs() < 1e-12);
        let late = 7.5 * (1.0 / 9.0 + 0.1 + 1.0 / 11.0 + 1.0 / 12.0);
        assert!((moves["late"].as_f64().unwrap() - late).abs() < 1e-12);
        // The same verdicts that do not hold are the same conclusion too.
        let mut flat = paper_like();
        for s in &mut flat {
            s.displacement = 0.5;
        }
        let v = variant(&flat, 2, Distance::Euclidean, 100.0, 10.0, |_| 30.0);
        let f = same_with_euclidean(2, &base(&flat), &[v]);
        assert_eq!(
            f.numbers["configured"]["verdicts"]["later_stages_move_less"],
            "does not hold"
        );
        assert_eq!(f.verdict, Verdict::Holds);
    }

    #[test]
    fn same_with_euclidean_fails_when_a_verdict_differs() {
        let stages = paper_like();
        // Euclidean: run 1 moves as far in late stages as in early ones.
        let v = variant(&stages, 2, Distance::Euclidean, 100.0, 10.0, |_| 30.0);
        let f = same_with_euclidean(2, &base(&stages), &[v]);
        assert_eq!(f.verdict, Verdict::DoesNotHold);
        let r = &f.numbers["variants"][0];
        assert_eq!(r["same"], false);
        assert_eq!(
            r["differing"],
            serde_json::json!(["later_stages_move_less"])
        );
        assert_eq!(r["numbers"]["later_stages_move_less"]["ratio"], 1.0);
        // The floor is relative to the models' norm: smallest distances
        // 1e-5 x (2.1..3.2) = 2.1e-5..3.2e-5, above 1e-6 as 1 - cos would be,
        // but below 1e-6 x norm 100 = 1e-4: within the noise with Euclidean.
        let v = variant(&stages, 2, Distance::Euclidean, 1e-3, 100.0, |s| {
            30.0 / f64::from(s)
        });
        let f = same_with_euclidean(2, &base(&stages), &[v]);
        assert_eq!(f.verdict, Verdict::DoesNotHold);
        let r = &f.numbers["variants"][0];
        assert_eq!(r["differing"], serde_json::json!(["runs_end_apart"]));
        assert_eq!(r["numbers"]["runs_end_apart"]["share_apart"], 0.0);
        assert_eq!(
            r["numbers"]["runs_end_apart"]["stages_apart"],
            serde_json::json!([])
        );
    }

    #[test]
    fn same_on_other_layers_needs_every_other_layer() {
        let stages = paper_like();
        let same = variant(&stages, 5, Distance::Cosine, 0.5, 10.0, |s| {
            0.4 / f64::from(s)
        });
        let f = same_on_other_layers(2, &base(&stages), std::slice::from_ref(&same));
        assert_eq!(f.verdict, Verdict::Holds);
        let r = &f.numbers["variants"][0];
        assert_eq!(
            (r["layer"].as_u64(), r["distance"].as_str()),
            (Some(5), Some("1 - cos"))
        );
        assert_eq!(r["thresholds"]["runs_end_apart"]["noise_floor"], 1e-6);
        assert!(
            f.claim.contains("other layers (5) as on layer 2"),
            "{}",
            f.claim
        );
        // Layer 6's runs end within the noise (1 - cos 2.1e-7..3.2e-7).
        let close = variant(&stages, 6, Distance::Cosine, 1e-5, 10.0, |s| {
            0.4 / f64::from(s)
        });
        let f = same_on_other_layers(2, &base(&stages), &[same, close]);
        assert_eq!(f.verdict, Verdict::DoesNotHold);
        assert_eq!(f.numbers["variants"][0]["same"], true);
        assert_eq!(f.numbers["variants"][1]["same"], false);
        assert_eq!(
            f.numbers["variants"][1]["differing"],
            serde_json::json!(["runs_end_apart"])
        );
        // No other layer drawn: reported, not judged.
        let f = same_on_other_layers(2, &base(&stages), &[]);
        assert_eq!(f.verdict, Verdict::Reported);
        assert!(f.claim.contains("other layers (none)"), "{}", f.claim);
    }

    #[test]
    fn bundled_scales_validate_and_edits_are_caught() {
        bundled(Experiment::Fig3);
        bundled(Experiment::RandomLabels);
        let edit = |from: &str, to: &str| {
            let bad = BUNDLED.replacen(from, to, 1);
            assert_ne!(bad, BUNDLED, "edit `{from}` did not apply");
            format!(
                "{:#}",
                parse_config(Experiment::Fig3, &bad, "x").unwrap_err()
            )
        };
        let e = edit("copies = 4", "copies = 9");
        assert!(e.contains(".copies"), "{e}");
        let e = edit(
            "stages = [5, 6, 7, 8, 9, 10, 11, 12]",
            "stages = [5, 6, 7, 8, 9, 10, 11, 13]",
        );
        assert!(e.contains(".pictures[1].stages[7]"), "{e}");
        let e = edit("panel_stages = [5, 6, 7]", "panel_stages = [4, 5, 6]");
        assert!(e.contains(".pictures[1].panel_stages[0]"), "{e}");
        let e = edit("measure_layer = 2", "measure_layer = 7");
        assert!(e.contains("measure_layer"), "{e}");
        let e = edit("error_spread = 3.0", "error_spread = nan");
        assert!(e.contains("thresholds.error_spread"), "{e}");
        let e = edit("apart_share = 0.8", "apart_share = 0.0");
        assert!(e.contains("thresholds.apart_share"), "{e}");
        let e = edit("noise_floor = 1e-6", "noise_floor = -1e-6");
        assert!(e.contains("thresholds.noise_floor"), "{e}");
        let e = edit(
            "euclidean_noise_floor = 1e-6",
            "euclidean_noise_floor = 3.0",
        );
        assert!(e.contains("thresholds.euclidean_noise_floor"), "{e}");
        let e = edit("shape_factor = 2.0", "shape_factor = 0.5");
        assert!(e.contains("thresholds.shape_factor"), "{e}");
        let e = edit("noise_floor = 1e-6", "apart_ratio = 1.0");
        assert!(e.contains("apart_ratio"), "the old key is refused: {e}");
        let e = edit("alpha = 0.01", "alpha = -0.01");
        assert!(e.contains("perturb.alpha"), "{e}");
        let e = edit("seed = 0", "seed = 0\nsead = 1");
        assert!(e.contains("sead"), "{e}");
    }
}
