//! Curvature along a trajectory: [`crate::hessian::analyse`] at each of
//! several stored snapshots (the top eigenvalues by Lanczos, the trace by
//! Hutchinson, optionally the smallest eigenvalue and the SLQ density, each
//! over seeds), the engine behind `landscape hessian` on a trajectory.
//!
//! The snapshots are loaded one after the other into one model by a
//! [`SnapshotSeries`] (the same data, network and weights as the
//! single-snapshot [`crate::snapshot::load_snapshot`] gives, so the same seeds give the
//! same numbers). The output folder is resumable: `curvature.json` holds the
//! key of everything the values depend on besides the snapshot (the spectrum
//! settings, the data's identity, the network, the device kind) and
//! `rows.jsonl` one line per finished snapshot, keyed by its id and content
//! CRC, appended and synced as soon as it is done. A killed run continues
//! with the snapshots not yet there; a folder made with other settings is
//! refused before anything is written, and so is a row whose snapshot has
//! other contents now. `curvature.csv` and `curvature.{png,svg}` are
//! rewritten from every row of the folder after each invocation.
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use landscape_net::DeviceChoice;
use landscape_trajectory::{SnapshotId, Store};
use serde::{Deserialize, Serialize};

use crate::hessian::{self, SpectrumConfig, Stat};
use crate::input::Input;
use crate::snapshot::{Overrides, Setting, SnapshotSeries};
use landscape_engine::plot::{self, Curve, LinePanel};
use landscape_engine::provenance::{write_atomic, write_json};

/// The header of a curvature folder.
pub const CURVATURE_JSON: &str = "curvature.json";
/// One JSON line per finished snapshot.
pub const ROWS_JSONL: &str = "rows.jsonl";
/// The table of every finished snapshot.
pub const CURVATURE_CSV: &str = "curvature.csv";

/// Everything a snapshot's curvature depends on besides its weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurvatureKey {
    /// The estimators' settings (BN, chunk size, seeds, ...).
    pub spectrum: SpectrumConfig,
    /// The identity of the training images the loss averages over.
    pub dataset: String,
    /// The network (JSON).
    pub net: String,
    /// `cpu` or `cuda`.
    pub device: String,
}

impl CurvatureKey {
    /// CRC-32 (hex) of the key's JSON.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        format!("{:08x}", crc32fast::hash(json.as_bytes()))
    }
}

/// `curvature.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CurvatureHeader {
    /// [`CurvatureKey::fingerprint`] (informative).
    pub fingerprint: String,
    /// What is checked when the folder is opened again.
    pub key: CurvatureKey,
    /// The store of the first invocation (informative).
    pub store: PathBuf,
    /// Data, network and BN settings and where they came from (informative).
    pub settings: BTreeMap<String, Setting>,
}

/// One finished snapshot: a line of `rows.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvatureRow {
    /// The snapshot id.
    pub id: u64,
    /// CRC-32 (hex) of its model tensors' names and checksums.
    pub crc32: String,
    /// Its run.
    pub run: String,
    /// Its kind.
    pub kind: String,
    /// Its epoch, if any.
    pub epoch: Option<u32>,
    /// The epoch on the plot's axis: a run that starts from another run's
    /// snapshot (a retraining from a perturbed model) continues from that
    /// snapshot's epoch.
    pub plot_epoch: Option<f64>,
    /// Its stored metrics.
    pub metrics: BTreeMap<String, f64>,
    /// Examples the loss averages over.
    pub examples: usize,
    /// Parameters.
    pub dim: usize,
    /// The differentiated loss.
    pub loss: f64,
    /// Its gradient's norm.
    pub gradient_norm: f64,
    /// The top eigenvalues (descending) over seeds.
    pub top: Vec<Stat>,
    /// Per seed: the top eigenvalues.
    pub top_per_seed: Vec<Vec<f64>>,
    /// Per seed: whether the top-k solver converged.
    pub converged: Vec<bool>,
    /// The trace over seeds.
    pub trace: Stat,
    /// Per seed: Hutchinson's estimate.
    pub trace_per_seed: Vec<f64>,
    /// Per seed: its standard error.
    pub trace_se: Vec<f64>,
    /// The smallest eigenvalue over seeds, if estimated.
    pub smallest: Option<Stat>,
    /// The SLQ share of near-zero eigenvalues, if estimated.
    pub near_zero_share: Option<f64>,
    /// Hessian-vector products, all seeds.
    pub products: usize,
    /// Seconds spent on this snapshot.
    pub seconds: f64,
}

/// Which snapshots, where, with what.
#[derive(Clone, Debug)]
pub struct CurvatureOptions {
    /// The trajectory store.
    pub store: PathBuf,
    /// The snapshots, in order.
    pub snapshots: Vec<SnapshotId>,
    /// The output folder.
    pub out: PathBuf,
    /// The estimators.
    pub spectrum: SpectrumConfig,
    /// Settings that replace `run.json`'s (and the names messages give them).
    pub overrides: Overrides,
    /// auto, cpu or cuda.
    pub device: DeviceChoice,
    /// CIFAR-10 folder.
    pub data_dir: Option<PathBuf>,
    /// libtorch CPU threads.
    pub threads: Option<usize>,
}

/// What an invocation did.
#[derive(Clone, Debug)]
pub struct CurvatureReport {
    /// The output folder.
    pub out: PathBuf,
    /// Snapshots evaluated by this invocation.
    pub evaluated: usize,
    /// Selected snapshots found already done.
    pub reused: usize,
    /// Every row of the folder, by id (the selected and any earlier ones).
    pub rows: Vec<CurvatureRow>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// The rows of `rows.jsonl`, and the length of its complete lines (a last
/// line without `\n`, cut short by a kill, is not counted).
fn read_rows(path: &Path) -> Result<(Vec<CurvatureRow>, u64)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    let mut rows = Vec::new();
    for (n, line) in text[..complete].lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: CurvatureRow = serde_json::from_str(line).with_context(|| {
            format!(
                "{} line {}: not a curvature row (delete the line to compute that snapshot again)",
                path.display(),
                n + 1
            )
        })?;
        rows.push(row);
    }
    Ok((rows, complete as u64))
}

/// The first field (dotted path) where two JSON values differ.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> Option<String> {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                let (va, vb) = (
                    x.get(k).unwrap_or(&serde_json::Value::Null),
                    y.get(k).unwrap_or(&serde_json::Value::Null),
                );
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let Some(d) = first_difference(va, vb, &p) {
                    return Some(d);
                }
            }
            None
        }
        _ if a == b => None,
        _ => Some(format!("`{path}`: stored {b}, now {a}")),
    }
}

/// Opens (or creates) the folder for `key`: refuses one made with another key.
fn open_folder(
    out: &Path,
    out_name: &str,
    key: &CurvatureKey,
    store: &Path,
    settings: &BTreeMap<String, Setting>,
) -> Result<()> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create {} ({out_name})", out.display()))?;
    let path = out.join(CURVATURE_JSON);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let found: CurvatureHeader = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a curvature header: is {out_name} another command's folder?",
                path.display()
            )
        })?;
        if found.key != *key {
            let d = first_difference(
                &serde_json::to_value(key)?,
                &serde_json::to_value(&found.key)?,
                "",
            )
            .unwrap_or_else(|| "the key".to_owned());
            bail!(
                "{} holds curvature computed with other settings ({d}; fingerprint {} here, {} now); \
                 nothing was changed. Use another {out_name} for other settings",
                out.display(),
                found.key.fingerprint(),
                key.fingerprint()
            );
        }
    } else {
        write_json(
            &path,
            &CurvatureHeader {
                fingerprint: key.fingerprint(),
                key: key.clone(),
                store: std::fs::canonicalize(store).unwrap_or_else(|_| store.to_path_buf()),
                settings: settings.clone(),
            },
        )?;
    }
    Ok(())
}

/// The plot epoch of snapshot `id`: its epoch, plus, when its run's first
/// snapshot has a parent in another run (a retraining from a perturbed
/// model), that parent's plot epoch. `None` without an epoch.
fn plot_epoch(store: &Store, id: u64) -> Option<f64> {
    let meta = |id: u64| store.get(SnapshotId(id)).ok().map(|i| i.meta());
    let mut x = 0.0;
    let mut cur = id;
    // Every step moves to an earlier run; the store bounds the depth.
    for _ in 0..=store.len() {
        let m = meta(cur)?;
        x += f64::from(m.epoch()?);
        let mut first = m;
        for _ in 0..=store.len() {
            match first.parent().and_then(|p| meta(p.get())) {
                Some(pm) if pm.run() == m.run() => first = pm,
                _ => break,
            }
        }
        match first.parent() {
            Some(p) if meta(p.get()).is_some_and(|pm| pm.run() != m.run()) => cur = p.get(),
            _ => return Some(x),
        }
    }
    None
}

/// Evaluates the selected snapshots missing from `opts.out`, then writes
/// `curvature.csv` and `curvature.{png,svg}` for every row of the folder.
pub fn run(opts: &CurvatureOptions) -> Result<CurvatureReport> {
    opts.spectrum.validate("")?;
    let Some(&first) = opts.snapshots.first() else {
        bail!("no snapshot selected");
    };
    let mut series = SnapshotSeries::open(
        &opts.store,
        first,
        &opts.overrides,
        opts.device,
        opts.data_dir.as_deref(),
        opts.threads,
    )?;
    for &id in &opts.snapshots {
        series.store().get(id).map_err(|e| {
            anyhow!(
                "snapshot {id}: {e} (see `landscape store ls {}`)",
                opts.store.display()
            )
        })?;
    }
    let key = CurvatureKey {
        spectrum: opts.spectrum.clone(),
        dataset: series.data_identity(),
        net: serde_json::to_string(&series.net)?,
        device: series.device_kind().to_owned(),
    };
    open_folder(
        &opts.out,
        opts.overrides.name(Input::Out),
        &key,
        &opts.store,
        &series.settings,
    )?;
    let rows_path = opts.out.join(ROWS_JSONL);
    let (mut rows, complete) = read_rows(&rows_path)?;
    let mut file: File = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&rows_path)
        .with_context(|| format!("opening {}", rows_path.display()))?;
    let len = file
        .metadata()
        .with_context(|| format!("reading {}", rows_path.display()))?
        .len();
    if len != complete {
        tracing::warn!(path = %rows_path.display(), dropped = len - complete, "dropping a truncated last line");
        file.set_len(complete)
            .with_context(|| format!("truncating {}", rows_path.display()))?;
    }
    let done: HashMap<u64, String> = rows.iter().map(|r| (r.id, r.crc32.clone())).collect();
    let mut todo = Vec::new();
    let mut reused = 0;
    for &id in &opts.snapshots {
        let crc = series.content_crc(id)?;
        match done.get(&id.get()) {
            Some(c) if *c == crc => reused += 1,
            Some(c) => bail!(
                "{}: the row of snapshot {id} was computed from contents with CRC {c}, but snapshot \
                 {id} of {} has CRC {crc} (another store?); nothing was changed. Use another {}",
                rows_path.display(),
                opts.store.display(),
                opts.overrides.name(Input::Out)
            ),
            None if todo.contains(&id) => {}
            None => todo.push(id),
        }
    }
    tracing::info!(
        selected = opts.snapshots.len(),
        done = reused,
        to_evaluate = todo.len(),
        out = %opts.out.display(),
        "curvature along the trajectory"
    );
    for (i, &id) in todo.iter().enumerate() {
        let t0 = std::time::Instant::now();
        let info = series.load(id)?;
        let r = hessian::analyse(&series.model, &series.data.train, &opts.spectrum)
            .with_context(|| format!("the Hessian at snapshot {id}"))?;
        let row = CurvatureRow {
            id: id.get(),
            crc32: info.crc32,
            run: info.run,
            kind: info.kind,
            epoch: info.epoch,
            plot_epoch: plot_epoch(series.store(), id.get()),
            metrics: info.metrics,
            examples: r.examples,
            dim: r.dim,
            loss: r.loss,
            gradient_norm: r.gradient_norm,
            top: r.top.clone(),
            top_per_seed: r.seeds.iter().map(|s| s.top.clone()).collect(),
            converged: r.seeds.iter().map(|s| s.converged).collect(),
            trace: r.trace,
            trace_per_seed: r.seeds.iter().map(|s| s.trace).collect(),
            trace_se: r.seeds.iter().map(|s| s.trace_se).collect(),
            smallest: opts.spectrum.smallest.then_some(r.min_eigenvalue),
            near_zero_share: r.near_zero_share.is_finite().then_some(r.near_zero_share),
            products: r.seeds.iter().map(|s| s.products).sum(),
            seconds: t0.elapsed().as_secs_f64(),
        };
        let mut line = serde_json::to_string(&row)?;
        line.push('\n');
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .with_context(|| format!("appending to {}", rows_path.display()))?;
        tracing::info!(
            snapshot = id.get(),
            run = %row.run,
            epoch = ?row.epoch,
            top = row.top.first().map_or(f64::NAN, |s| s.mean),
            trace = row.trace.mean,
            seconds = row.seconds,
            "{} of {} done",
            i + 1,
            todo.len()
        );
        rows.push(row);
    }
    drop(file);
    rows.sort_by_key(|r| r.id);
    let files = write_outputs(&opts.out, &rows, &opts.spectrum)?;
    Ok(CurvatureReport {
        out: opts.out.clone(),
        evaluated: todo.len(),
        reused,
        rows,
        files,
    })
}

fn num(x: f64) -> String {
    if x.is_finite() {
        x.to_string()
    } else {
        String::new()
    }
}

/// `curvature.csv` and `curvature.{png,svg}` from `rows` (sorted by id),
/// computed with `cfg`.
pub fn write_outputs(
    out: &Path,
    rows: &[CurvatureRow],
    cfg: &SpectrumConfig,
) -> Result<Vec<PathBuf>> {
    let mut csv = String::from(
        "id,run,kind,epoch,plot_epoch,train_loss,train_error,loss,examples,top_eigenvalue_mean,\
         top_eigenvalue_std,trace_mean,trace_std,smallest_mean,smallest_std,gradient_norm,\
         products,seconds\n",
    );
    for r in rows {
        let m = |k: &str| r.metrics.get(k).copied().map_or(String::new(), num);
        let top = r.top.first().copied().unwrap_or(Stat {
            mean: f64::NAN,
            std: f64::NAN,
        });
        csv += &format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.1}\n",
            r.id,
            r.run,
            r.kind,
            r.epoch.map_or(String::new(), |e| e.to_string()),
            r.plot_epoch.map_or(String::new(), num),
            m("train_loss"),
            m("train_error"),
            num(r.loss),
            r.examples,
            num(top.mean),
            num(top.std),
            num(r.trace.mean),
            num(r.trace.std),
            r.smallest.map_or(String::new(), |s| num(s.mean)),
            r.smallest.map_or(String::new(), |s| num(s.std)),
            num(r.gradient_norm),
            r.products,
            r.seconds
        );
    }
    let csv_path = out.join(CURVATURE_CSV);
    write_atomic(&csv_path, csv.as_bytes())?;
    let mut files = vec![csv_path];
    // One curve per run, in order of first appearance; x = plot epoch.
    let mut runs: Vec<&str> = Vec::new();
    for r in rows {
        if !runs.contains(&r.run.as_str()) {
            runs.push(&r.run);
        }
    }
    let curves = |f: &dyn Fn(&CurvatureRow) -> Option<f64>| -> Vec<Curve> {
        runs.iter()
            .enumerate()
            .map(|(i, run)| {
                let mut points: Vec<(f64, f64)> = rows
                    .iter()
                    .filter(|r| r.run == *run)
                    .filter_map(|r| Some((r.plot_epoch?, f(r)?)))
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                Curve {
                    name: (*run).to_owned(),
                    color: plot::palette(i),
                    points,
                }
            })
            .filter(|c| !c.points.is_empty())
            .collect()
    };
    let top = curves(&|r| r.top.first().map(|s| s.mean));
    let trace = curves(&|r| Some(r.trace.mean));
    if top.is_empty() {
        return Ok(files);
    }
    let examples = rows.first().map_or(0, |r| r.examples);
    files.extend(plot::line_panels_dotted(
        &out.join("curvature"),
        &format!(
            "Hessian of the training loss ({examples} images, BN {}) along the trajectory, mean over {} seed(s)",
            cfg.bn.as_str(),
            cfg.seeds.len()
        ),
        &[
            LinePanel {
                title: "top eigenvalue (Lanczos)".into(),
                x_label: "epoch".into(),
                y_label: "top eigenvalue".into(),
                curves: top,
            },
            LinePanel {
                title: "trace (Hutchinson)".into(),
                x_label: "epoch".into(),
                y_label: "trace".into(),
                curves: trace,
            },
        ],
        2,
        (1400, 560),
    )?);
    Ok(files)
}
