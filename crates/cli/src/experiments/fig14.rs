//! Figures 4 and 14-17 of the paper: full-batch gradient descent (BGD) with
//! branches.
//!
//! Protocol (`PROTOCOLS.md`): train from scratch with BGD (the main
//! trajectory). At each branch epoch, copy the main model, perturb every
//! layer with Gaussian noise of standard deviation `alpha * std(W)`, and train
//! the copy with BGD to the end. Epoch by epoch, average each branch with the
//! main trajectory (t = 0.5) and evaluate the averaged model. Draw classical
//! MDS (1 - cosine) of one layer's weights over the main trajectory, the
//! branches and the averaged models, each point labelled with its training
//! error in percent. A variant is one (alpha, layer) pair: Figures 14-15 use
//! alpha = 0.25 and layer 2, Figures 16-17 alpha = 1.0 and layer 3; all
//! variants share the main trajectory.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use landscape_mds::{ClassicalMds, Dissimilarity};
use landscape_net::{self as net, BgdConfig, Dcnn, NetConfig, PerturbScale};
use landscape_trajectory::{SnapshotId, SnapshotKind, Store};
use serde::{Deserialize, Serialize};

use super::config::{ensure, Scale, Validate};
use super::data::{self, DataConfig};
use super::run::{self, RunLog, RunRecord};
use super::trajectory::{EvalConfig, Metrics, Recorder};
use crate::plot;

/// One (alpha, layer) variant of the experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Name of the overview figure, e.g. `fig14` (also the run prefix in the store).
    pub name: String,
    /// Name of the per-branch panels figure, e.g. `fig15`.
    pub branches_figure: String,
    /// Perturbation strength: noise std = alpha * (std or mean |W| of each tensor).
    pub alpha: f64,
    /// The paper's layer number whose weights are drawn (2 = first convolution, 6 = last).
    pub layer: usize,
}

/// What counts as holding, for the verdicts (percentage points).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// The main trajectory "reaches (near) zero training error" at or below this.
    pub zero_error: f64,
    /// An averaged model is "in the basin" if its training error exceeds the
    /// worse of its two parents by at most this.
    pub basin: f64,
    /// The epoch-0 branch is "behind a wall" if its averaged model's excess
    /// error over the worse parent is at least this.
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

/// One scale of the experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fig14Config {
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub data: DataConfig,
    #[serde(default)]
    pub net: NetConfig,
    pub bgd: BgdConfig,
    /// Length of the main trajectory (BGD epochs = steps).
    pub epochs: usize,
    /// Epochs of the main trajectory where branches start.
    pub branch_epochs: Vec<usize>,
    #[serde(default)]
    pub perturb_scale: PerturbScale,
    pub variants: Vec<Variant>,
    #[serde(default)]
    pub eval: EvalConfig,
    #[serde(default)]
    pub thresholds: Thresholds,
}

impl Validate for Fig14Config {
    fn validate(&self, p: &str) -> Result<()> {
        self.data.validate(p)?;
        self.net
            .validate()
            .map_err(|e| anyhow::anyhow!("`{p}.net`: {e}"))?;
        ensure(
            self.epochs >= 1,
            &format!("{p}.epochs"),
            "must be at least 1",
        )?;
        ensure(
            self.bgd.lr > 0.0 && self.bgd.lr.is_finite(),
            &format!("{p}.bgd.lr"),
            format!("{} must be a positive number", self.bgd.lr),
        )?;
        ensure(
            self.bgd.momentum == 0.0,
            &format!("{p}.bgd.momentum"),
            "must be 0: the resumable runner does not store optimizer state (the paper's BGD is plain gradient descent)",
        )?;
        ensure(
            self.bgd.chunk_size >= 1,
            &format!("{p}.bgd.chunk_size"),
            "must be at least 1",
        )?;
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
        ensure(
            !self.variants.is_empty(),
            &format!("{p}.variants"),
            "needs at least one variant",
        )?;
        let layers = self.net.widths.len() + 2;
        for (i, v) in self.variants.iter().enumerate() {
            let k = format!("{p}.variants[{i}]");
            ensure(
                v.alpha >= 0.0 && v.alpha.is_finite(),
                &format!("{k}.alpha"),
                format!("{} must be a number >= 0", v.alpha),
            )?;
            ensure(
                (2..=layers).contains(&v.layer),
                &format!("{k}.layer"),
                format!("layer {} does not exist: the network's layers are 2..={layers} (the paper counts the input as layer 1)", v.layer),
            )?;
            ensure(
                !v.name.is_empty()
                    && v.name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                &format!("{k}.name"),
                "must be a non-empty file name of letters, digits, '-' or '_'",
            )?;
        }
        ensure(
            self.eval.chunk_size >= 1,
            &format!("{p}.eval.chunk_size"),
            "must be at least 1",
        )?;
        Ok(())
    }
}

/// The bundled `experiments/fig14.toml`.
pub const BUNDLED: &str = include_str!("../../../../experiments/fig14.toml");

/// What to run.
#[derive(Clone, Debug)]
pub struct Fig14Options {
    pub scale: Scale,
    pub out: PathBuf,
    pub device: net::DeviceChoice,
    pub data_dir: Option<PathBuf>,
    /// An experiment file to use instead of the bundled one.
    pub config_file: Option<PathBuf>,
    pub threads: Option<usize>,
    pub command: Vec<String>,
}

/// One finding of the paper and whether it holds here.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub id: String,
    pub claim: String,
    /// "holds", "does not hold", or "reported" (a number with no threshold).
    pub verdict: String,
    pub numbers: serde_json::Value,
}

/// Per-branch numbers at the end of the run.
#[derive(Clone, Debug, Serialize)]
pub struct BranchSummary {
    pub branch: usize,
    pub from_epoch: usize,
    pub final_train_error: f64,
    pub final_test_error: f64,
    pub averaged_train_error: f64,
    pub averaged_test_error: f64,
    /// Averaged error minus the worse parent's (percentage points).
    pub averaging_excess: f64,
    /// ||branch - main|| / ||main|| over all weights and biases, final epoch.
    pub relative_distance: f64,
    /// 1 - cosine between branch and main on the variant's layer, final epoch.
    pub layer_cosine_distance: f64,
}

/// `summary.json` for one variant.
#[derive(Clone, Debug, Serialize)]
pub struct VariantSummary {
    pub name: String,
    pub alpha: f64,
    pub layer: usize,
    pub branches: Vec<BranchSummary>,
    /// Share of the positive spectrum the 2 MDS axes explain.
    pub mds_explained: Option<f64>,
    /// Mass of negative eigenvalues (1 - cosine is not Euclidean).
    pub mds_negative_mass: Option<f64>,
    /// The leading eigenvalues of the double-centred matrix.
    pub mds_eigenvalues: Vec<f64>,
    pub findings: Vec<Finding>,
    pub files: Vec<PathBuf>,
}

/// `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub experiment: String,
    pub scale: String,
    pub main_final_train_error: f64,
    pub main_final_test_error: f64,
    pub main_final_train_loss: f64,
    pub variants: Vec<VariantSummary>,
}

/// A recorded model, as drawn and written to the CSV.
#[derive(Clone, Debug)]
struct Point {
    id: SnapshotId,
    trajectory: String,
    kind: String,
    epoch: u32,
    metrics: Metrics,
}

fn branch_run(v: &Variant, i: usize) -> String {
    format!("{}/branch{}", v.name, i + 1)
}

fn avg_run(v: &Variant, i: usize) -> String {
    format!("{}/avg{}", v.name, i + 1)
}

/// Seed of the perturbation of branch `i` of variant `vi`.
fn branch_seed(seed: u64, vi: usize, i: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(1_000 * (vi as u64 + 1) + i as u64 + 1)
}

/// Loads the experiment file (bundled or `--config`) and picks the scale.
pub fn load_config(opts: &Fig14Options) -> Result<Fig14Config> {
    let file = match &opts.config_file {
        Some(path) => super::config::load::<Fig14Config>(path)?,
        None => super::config::parse::<Fig14Config>(BUNDLED, "experiments/fig14.toml (bundled)")?,
    };
    Ok(file.scale(opts.scale).clone())
}

/// Runs (or resumes) the experiment and writes every output into `opts.out`.
pub fn run(opts: &Fig14Options) -> Result<Summary> {
    let cfg = load_config(opts)?;
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    let threads = opts.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    net::set_threads(threads);
    let device = opts.device.resolve()?;
    let record = RunRecord {
        experiment: "fig14".into(),
        scale: opts.scale.to_string(),
        seed: cfg.seed,
        config: serde_json::to_value(&cfg)?,
        git_revision: run::git_revision(),
        versions: Default::default(),
        device: format!("{device:?}"),
        threads,
        command: opts.command.clone(),
        timings_s: BTreeMap::new(),
        total_s: 0.0,
        resumed: false,
        status: String::new(),
    };
    let mut log = RunLog::start(&opts.out, record)?;
    let data = log.phase("load_data", || {
        data::load(&cfg.data, opts.data_dir.as_deref(), device)
    })?;
    tracing::info!(
        train = data.train_len,
        test = data.test_len,
        source = %data.source.display(),
        params = cfg.net.param_count(),
        "data loaded"
    );
    let store = Store::open_or_create(opts.out.join("store"))?;
    let rec = Recorder {
        store: std::cell::RefCell::new(store),
        data: &data,
        eval: cfg.eval.clone(),
        net: cfg.net.clone(),
        device,
    };
    let epochs = cfg.epochs as u32;

    // Main trajectory: BGD from a seeded random initialisation.
    let main = log.phase("train_main", || {
        rec.bgd_trajectory(
            "main",
            0,
            epochs,
            &cfg.bgd,
            || {
                Ok((
                    Dcnn::new(&cfg.net, device, cfg.seed)?,
                    SnapshotKind::Initial,
                    None,
                ))
            },
            "main",
        )
    })?;

    // Branches and their averages with the main trajectory, per variant.
    for (vi, v) in cfg.variants.iter().enumerate() {
        for (i, &b) in cfg.branch_epochs.iter().enumerate() {
            let b = b as u32;
            let run_name = branch_run(v, i);
            let parent = main[&b];
            let branch = log.phase(&format!("train_{}_branches", v.name), || {
                rec.bgd_trajectory(
                    &run_name,
                    b,
                    epochs,
                    &cfg.bgd,
                    || {
                        let mut model = rec.load(parent)?;
                        net::perturb(
                            &mut model,
                            v.alpha,
                            cfg.perturb_scale,
                            branch_seed(cfg.seed, vi, i),
                        )?;
                        Ok((model, SnapshotKind::Perturbed, Some(parent)))
                    },
                    &run_name,
                )
            })?;
            log.phase(&format!("average_{}", v.name), || {
                average_with_main(&rec, &main, &branch, &avg_run(v, i))
            })?;
        }
    }

    // Analysis: MDS, figures, CSV, verdicts.
    let mut variants = Vec::new();
    let store = rec.store.borrow();
    for v in &cfg.variants {
        let vs = log.phase(&format!("analyse_{}", v.name), || {
            analyse(&cfg, v, &store, &opts.out)
        })?;
        variants.push(vs);
    }
    let last = store_point(&store, main[&epochs])?;
    let summary = Summary {
        experiment: "fig14".into(),
        scale: opts.scale.to_string(),
        main_final_train_error: last.metrics.train_error,
        main_final_test_error: last.metrics.test_error,
        main_final_train_loss: last.metrics.train_loss,
        variants,
    };
    run::write_json(&opts.out.join("summary.json"), &summary)?;
    log.finish()?;
    Ok(summary)
}

/// Averages branch and main epoch by epoch (t = 0.5) into run `name`.
fn average_with_main(
    rec: &Recorder<'_>,
    main: &BTreeMap<u32, SnapshotId>,
    branch: &BTreeMap<u32, SnapshotId>,
    name: &str,
) -> Result<()> {
    let done = rec.existing(name)?;
    let todo: Vec<(u32, SnapshotId)> = branch
        .iter()
        .filter(|(e, _)| !done.contains_key(e))
        .map(|(e, id)| (*e, *id))
        .collect();
    let bar = super::trajectory::progress(todo.len() as u64, name);
    for (epoch, bid) in todo {
        let mid = main[&epoch];
        let a = rec.load(mid)?;
        let b = rec.load(bid)?;
        let mut avg = net::interpolate(&a, &b, 0.5)?;
        rec.record(
            &mut avg,
            name,
            epoch,
            SnapshotKind::Interpolated,
            Some(bid),
            &[("parent_a", mid.to_string()), ("t", "0.5".to_owned())],
        )?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

fn store_point(store: &Store, id: SnapshotId) -> Result<Point> {
    let info = store.get(id)?;
    Ok(Point {
        id,
        trajectory: info.meta().run().to_owned(),
        kind: info.meta().kind().name(),
        epoch: info.meta().epoch().unwrap_or(0),
        metrics: Metrics::from_map(info.meta().metrics())
            .with_context(|| format!("snapshot {id} has no train/test metrics"))?,
    })
}

fn layer_names(layer: usize) -> Vec<String> {
    vec![format!("layer{layer}.weight"), format!("layer{layer}.bias")]
}

fn all_weight_names(cfg: &NetConfig) -> Vec<String> {
    (2..=cfg.widths.len() + 2).flat_map(layer_names).collect()
}

fn rel_distance(a: &[f32], b: &[f32]) -> f64 {
    let (mut d, mut n) = (0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        d += f64::from(x - y).powi(2);
        n += f64::from(*x).powi(2);
    }
    (d / n.max(f64::MIN_POSITIVE)).sqrt()
}

fn cosine_distance(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    1.0 - ab / (aa.sqrt() * bb.sqrt()).max(f64::MIN_POSITIVE)
}

fn analyse(cfg: &Fig14Config, v: &Variant, store: &Store, out: &Path) -> Result<VariantSummary> {
    let epochs = cfg.epochs as u32;
    let nb = cfg.branch_epochs.len();
    // The points of this variant: main, its branches and averages, in a fixed order.
    let mut runs = vec!["main".to_owned()];
    runs.extend((0..nb).map(|i| branch_run(v, i)));
    runs.extend((0..nb).map(|i| avg_run(v, i)));
    let infos = store.snapshots();
    let mut points = Vec::new();
    for r in &runs {
        let mut these: Vec<_> = infos.iter().filter(|s| s.meta().run() == r).collect();
        these.sort_by_key(|s| s.meta().epoch());
        for s in these {
            points.push(store_point(store, s.id())?);
        }
    }
    let ids: Vec<SnapshotId> = points.iter().map(|p| p.id).collect();
    let names = layer_names(v.layer);
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let matrix = store.read_matrix_ids(&ids, &name_refs)?.into_parts().1;
    let diss = landscape_mds::dissimilarity_matrix(&matrix, Dissimilarity::Cosine)?;
    let emb = ClassicalMds::params(2).fit_owned(diss)?;
    let coords = emb.coordinates();

    let dir = out.join(&v.name);
    std::fs::create_dir_all(&dir)?;
    let mut files = Vec::new();

    // CSV of every point.
    let csv_path = dir.join("points.csv");
    {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "id",
            "trajectory",
            "kind",
            "epoch",
            "x",
            "y",
            "train_error",
            "train_loss",
            "test_error",
            "test_loss",
        ])?;
        for (k, p) in points.iter().enumerate() {
            w.write_record([
                p.id.to_string(),
                p.trajectory.clone(),
                p.kind.clone(),
                p.epoch.to_string(),
                format!("{:.9e}", coords[[k, 0]]),
                format!("{:.9e}", coords[[k, 1]]),
                format!("{:.4}", p.metrics.train_error),
                format!("{:.6}", p.metrics.train_loss),
                format!("{:.4}", p.metrics.test_error),
                format!("{:.6}", p.metrics.test_loss),
            ])?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| anyhow::anyhow!("writing CSV: {e}"))?;
        run::write_atomic(&csv_path, &bytes)?;
    }
    files.push(csv_path);

    // Figures.
    let display = |traj: &str| -> String {
        if traj == "main" {
            "main".to_owned()
        } else if let Some(i) = traj
            .rsplit('/')
            .next()
            .and_then(|s| s.strip_prefix("branch"))
        {
            format!(
                "branch {i} (from epoch {})",
                cfg.branch_epochs
                    .get(i.parse::<usize>().unwrap_or(1).saturating_sub(1))
                    .copied()
                    .unwrap_or(0)
            )
        } else if let Some(i) = traj.rsplit('/').next().and_then(|s| s.strip_prefix("avg")) {
            format!("averaged {i}")
        } else {
            traj.to_owned()
        }
    };
    let make_group = |r: usize| -> plot::Group {
        let traj = &runs[r];
        plot::Group {
            name: display(traj),
            color: plot::palette(r),
            points: points
                .iter()
                .enumerate()
                .filter(|(_, p)| &p.trajectory == traj)
                .map(|(k, p)| plot::LabeledPoint {
                    x: coords[[k, 0]],
                    y: coords[[k, 1]],
                    label: format!("{:.1}", p.metrics.train_error),
                })
                .collect(),
            connect: true,
        }
    };
    let overview = plot::ScatterPanel {
        title: format!(
            "MDS (1 - cosine) of layer {} weights; labels: training error %",
            v.layer
        ),
        groups: (0..runs.len()).map(make_group).collect(),
    };
    files.extend(plot::scatter_panels(
        &dir.join(&v.name),
        &format!(
            "{}: BGD with branches (alpha = {} x std), {} scale",
            v.name,
            v.alpha,
            cfg_scale_hint(cfg)
        ),
        &[overview],
        1,
        (1400, 1100),
        true,
        11,
    )?);
    let panels: Vec<plot::ScatterPanel> = (0..nb)
        .map(|i| plot::ScatterPanel {
            title: format!("branch {} from epoch {}", i + 1, cfg.branch_epochs[i]),
            groups: vec![make_group(0), make_group(1 + i), make_group(1 + nb + i)],
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
    let curve = |r: usize, f: fn(&Metrics) -> f64| plot::Curve {
        name: display(&runs[r]),
        color: plot::palette(r),
        points: points
            .iter()
            .filter(|p| p.trajectory == runs[r])
            .map(|p| (f64::from(p.epoch), f(&p.metrics)))
            .collect(),
    };
    let all: Vec<usize> = (0..runs.len()).collect();
    let line = |title: &str, y: &str, f: fn(&Metrics) -> f64| plot::LinePanel {
        title: title.to_owned(),
        x_label: "epoch (BGD step)".to_owned(),
        y_label: y.to_owned(),
        curves: all.iter().map(|&r| curve(r, f)).collect(),
    };
    files.extend(plot::line_panels(
        &dir.join("curves"),
        &format!("{}: error and loss of every trajectory", v.name),
        &[
            line("training error", "error %", |m| m.train_error),
            line("test error", "error %", |m| m.test_error),
            line("training loss", "loss", |m| m.train_loss),
            line("test loss", "loss", |m| m.test_loss),
        ],
        2,
        (1400, 1000),
    )?);

    // Numbers behind the verdicts.
    let final_of = |traj: &str| {
        points
            .iter()
            .filter(|p| p.trajectory == traj)
            .max_by_key(|p| p.epoch)
            .cloned()
    };
    let main_final = final_of("main").context("no main trajectory")?;
    let all_names = all_weight_names(&cfg.net);
    let all_refs: Vec<&str> = all_names.iter().map(String::as_str).collect();
    let main_w = store
        .read_matrix_ids(&[main_final.id], &all_refs)?
        .into_parts()
        .1;
    let main_l = store
        .read_matrix_ids(&[main_final.id], &name_refs)?
        .into_parts()
        .1;
    let mut branches = Vec::new();
    for i in 0..nb {
        let b = final_of(&branch_run(v, i)).context("missing branch")?;
        let a = final_of(&avg_run(v, i)).context("missing averaged model")?;
        debug_assert_eq!(b.epoch, epochs);
        let bw = store.read_matrix_ids(&[b.id], &all_refs)?.into_parts().1;
        let bl = store.read_matrix_ids(&[b.id], &name_refs)?.into_parts().1;
        let worse = main_final.metrics.train_error.max(b.metrics.train_error);
        branches.push(BranchSummary {
            branch: i + 1,
            from_epoch: cfg.branch_epochs[i],
            final_train_error: b.metrics.train_error,
            final_test_error: b.metrics.test_error,
            averaged_train_error: a.metrics.train_error,
            averaged_test_error: a.metrics.test_error,
            averaging_excess: a.metrics.train_error - worse,
            relative_distance: rel_distance(
                bw.as_slice().context("matrix layout")?,
                main_w.as_slice().context("matrix layout")?,
            ),
            layer_cosine_distance: cosine_distance(
                bl.as_slice().context("matrix layout")?,
                main_l.as_slice().context("matrix layout")?,
            ),
        });
    }
    let findings = findings(cfg, &main_final.metrics, &branches);
    Ok(VariantSummary {
        name: v.name.clone(),
        alpha: v.alpha,
        layer: v.layer,
        mds_explained: emb.explained_ratio(),
        mds_negative_mass: emb.negative_mass(),
        mds_eigenvalues: emb.eigenvalues().iter().take(10).copied().collect(),
        branches,
        findings,
        files,
    })
}

fn cfg_scale_hint(cfg: &Fig14Config) -> String {
    format!(
        "{} training images, {} epochs",
        cfg.data
            .train_size
            .map_or("50000".to_owned(), |n| n.to_string()),
        cfg.epochs
    )
}

fn verdict(ok: bool) -> String {
    if ok { "holds" } else { "does not hold" }.to_owned()
}

/// The paper's findings, checked against the numbers. Never bent to pass.
pub fn findings(cfg: &Fig14Config, main: &Metrics, branches: &[BranchSummary]) -> Vec<Finding> {
    let t = &cfg.thresholds;
    let mut out = Vec::new();
    out.push(Finding {
        id: "no_local_minimum".into(),
        claim: "BGD does not get stuck: the main trajectory's training error goes to (about) 0"
            .into(),
        verdict: verdict(main.train_error <= t.zero_error),
        numbers: serde_json::json!({
            "final_train_error": main.train_error,
            "final_train_loss": main.train_loss,
            "threshold": t.zero_error,
        }),
    });
    out.push(Finding {
        id: "test_error".into(),
        claim: "BGD solutions generalise somewhat worse than SGD's (paper: about 40% test error for BGD, 32% for SGD, on all of CIFAR-10)".into(),
        verdict: "reported".into(),
        numbers: serde_json::json!({ "final_test_error": main.test_error, "paper_bgd": 40.0, "paper_sgd": 32.0 }),
    });
    let d: Vec<f64> = branches.iter().map(|b| b.relative_distance).collect();
    let monotone = d.windows(2).all(|w| w[1] < w[0]);
    out.push(Finding {
        id: "later_branches_closer".into(),
        claim: "as training proceeds, the same perturbation leads less far: later branches end closer to the main trajectory".into(),
        verdict: verdict(d.len() >= 2 && monotone),
        numbers: serde_json::json!({
            "branch_epochs": cfg.branch_epochs,
            "relative_distance_to_main": d,
            "layer_cosine_distance_to_main": branches.iter().map(|b| b.layer_cosine_distance).collect::<Vec<_>>(),
            "strictly_decreasing": monotone,
        }),
    });
    let later: Vec<&BranchSummary> = branches.iter().filter(|b| b.from_epoch > 0).collect();
    let basin_ok = !later.is_empty() && later.iter().all(|b| b.averaging_excess <= t.basin);
    out.push(Finding {
        id: "averaging_basin".into(),
        claim: "averaging a (later) branch with the main trajectory keeps reasonable error: both lie in one basin".into(),
        verdict: verdict(basin_ok),
        numbers: serde_json::json!({
            "averaged_train_error": branches.iter().map(|b| b.averaged_train_error).collect::<Vec<_>>(),
            "excess_over_worse_parent": branches.iter().map(|b| b.averaging_excess).collect::<Vec<_>>(),
            "threshold": t.basin,
            "judged_on_branches_from_epochs": later.iter().map(|b| b.from_epoch).collect::<Vec<_>>(),
        }),
    });
    if let Some(b0) = branches.iter().find(|b| b.from_epoch == 0) {
        let others_max = later
            .iter()
            .map(|b| b.averaging_excess)
            .fold(f64::NEG_INFINITY, f64::max);
        let wall = b0.averaging_excess >= t.wall && b0.averaging_excess > others_max;
        out.push(Finding {
            id: "wall".into(),
            claim: "the branch from epoch 0 lands in a different basin: its average with the main trajectory has a much higher error (a wall between them)".into(),
            verdict: verdict(wall),
            numbers: serde_json::json!({
                "epoch0_excess": b0.averaging_excess,
                "largest_later_excess": if others_max.is_finite() { serde_json::json!(others_max) } else { serde_json::Value::Null },
                "threshold": t.wall,
                "epoch0_relative_distance": b0.relative_distance,
            }),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundled() -> super::super::config::ExperimentFile<Fig14Config> {
        super::super::config::parse::<Fig14Config>(BUNDLED, "bundled").unwrap()
    }

    #[test]
    fn paper_scale_is_the_protocol() {
        let file = bundled();
        let p = file.scale(Scale::Paper);
        assert_eq!(p.branch_epochs, [0, 10, 50, 200]);
        assert_eq!(p.data.train_size, None, "all 50,000 training images");
        assert_eq!(p.perturb_scale, PerturbScale::Std);
        let v: Vec<(f64, usize)> = p.variants.iter().map(|v| (v.alpha, v.layer)).collect();
        assert_eq!(v, [(0.25, 2), (1.0, 3)]);
        assert_eq!(p.net, NetConfig::paper());
        let count = p.net.param_count() as f64;
        assert!((count / 188_810.0 - 1.0).abs() < 0.02);
        // quick keeps the protocol's shape: 4 branches, the first at epoch 0.
        let q = file.scale(Scale::Quick);
        assert_eq!(q.branch_epochs.len(), 4);
        assert_eq!(q.branch_epochs[0], 0);
        assert_eq!(q.net, NetConfig::paper());
    }

    fn branch(from: usize, excess: f64, dist: f64) -> BranchSummary {
        BranchSummary {
            branch: 1,
            from_epoch: from,
            final_train_error: 0.0,
            final_test_error: 50.0,
            averaged_train_error: excess,
            averaged_test_error: 50.0,
            averaging_excess: excess,
            relative_distance: dist,
            layer_cosine_distance: dist,
        }
    }

    fn verdicts(main_err: f64, branches: &[BranchSummary]) -> BTreeMap<String, String> {
        let cfg = bundled().quick.clone();
        let m = Metrics {
            train_loss: 0.01,
            train_error: main_err,
            test_loss: 2.0,
            test_error: 45.0,
        };
        findings(&cfg, &m, branches)
            .into_iter()
            .map(|f| (f.id, f.verdict))
            .collect()
    }

    #[test]
    fn verdicts_follow_the_numbers() {
        let paper_like = [
            branch(0, 40.0, 0.9),
            branch(2, 1.0, 0.5),
            branch(8, 0.0, 0.2),
            branch(30, 0.0, 0.1),
        ];
        let v = verdicts(0.0, &paper_like);
        assert_eq!(v["no_local_minimum"], "holds");
        assert_eq!(v["later_branches_closer"], "holds");
        assert_eq!(v["averaging_basin"], "holds");
        assert_eq!(v["wall"], "holds");
        assert_eq!(v["test_error"], "reported");

        let contrary = [
            branch(0, 0.0, 0.1),
            branch(2, 30.0, 0.5),
            branch(8, 0.0, 0.6),
            branch(30, 0.0, 0.7),
        ];
        let v = verdicts(12.0, &contrary);
        assert_eq!(v["no_local_minimum"], "does not hold");
        assert_eq!(v["later_branches_closer"], "does not hold");
        assert_eq!(v["averaging_basin"], "does not hold");
        assert_eq!(v["wall"], "does not hold");
    }

    #[test]
    fn bundled_scales_validate_and_edits_are_caught() {
        bundled();
        let bad = BUNDLED.replace(
            "branch_epochs = [0, 10, 50, 200]",
            "branch_epochs = [0, 10, 500, 200]",
        );
        let err = format!(
            "{:#}",
            super::super::config::parse::<Fig14Config>(&bad, "x").unwrap_err()
        );
        assert!(err.contains("paper.branch_epochs[2]"), "{err}");
        let bad = BUNDLED.replace("[paper]\nseed = 0", "[paper]\nseed = 0\nsead = 1");
        let err = format!(
            "{:#}",
            super::super::config::parse::<Fig14Config>(&bad, "x").unwrap_err()
        );
        assert!(err.contains("sead"), "{err}");
    }
}
