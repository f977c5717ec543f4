//! `landscape import`: PyTorch state_dicts of the paper's network into a
//! trajectory store, so that every landscape command works on them.
//!
//! Each file ([`landscape_net::StateDict`]: `.safetensors` or a `torch.save`
//! zip, landscape's or `nn.Sequential` names) becomes one snapshot of the run
//! [`ImportOptions::run`] (the command's default `imported`), with kind `other:imported`, epochs 0, 1, ...
//! in the order given (after the run's earlier imports), the identity
//! [`RunId::Named`] and the origin [`Origin::Imported`] (file name, CRC-32 of
//! its bytes, format, layout). The weights and BN running statistics are
//! stored exactly as read (converted to `f32` when needed).
//!
//! The settings the evaluating commands (`surface`, `hessian`, `pca`, `embed`)
//! need are those of `run.json` beside the store. For a store this command
//! creates, it writes one (`"experiment": "import"`, recorded as imported,
//! not trained): the network read from the shapes, the evaluation settings
//! (the BN policy, default `running`: PyTorch's eval mode with the file's
//! running statistics; the chunk size) and, when the training and test sizes
//! are given, the data; without them the evaluating commands ask for them.
//! An import-made `run.json` is completed later (files appended, data filled
//! in when it had none) but never changed; another `run.json` (a training
//! run's) is left alone, and settings that contradict it are refused.
//!
//! Nothing is written unless every file reads and fits: a store whose
//! network differs from the files' is refused with every mis-shaped tensor
//! named, and a run name that holds snapshots not imported is refused.
//!
//! With data settings known (options or `run.json`), every snapshot is
//! evaluated (on a copy: the stored statistics stay the file's) and its
//! training and test loss and error stored as metrics.
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use landscape_net::{self as net, DeviceChoice, NetConfig, StateDict};
use landscape_trajectory::{SnapshotId, SnapshotKind, SnapshotMeta, Store, TensorRef};
use serde::Serialize;

use crate::input::{Input, Names};
use crate::snapshot::{self, SubsetSize};
use landscape_engine::data::{self, DataConfig};
use landscape_engine::eval::{BnPolicy, EvalConfig, Evaluator, Metrics};
use landscape_engine::identity::{
    Origin, RunId, BN_EVAL_KEY, IDENTITY_KEY, IMPORTED_KIND, ORIGIN_KEY,
};
use landscape_engine::provenance::{write_json, Versions};

/// The `experiment` field of a `run.json` written by `landscape import`.
pub const IMPORT_EXPERIMENT: &str = "import";

/// What to import, where, and how to evaluate it.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The state_dict files, in order.
    pub files: Vec<PathBuf>,
    /// The store (created when missing).
    pub store: PathBuf,
    /// The run name of the snapshots.
    pub run: String,
    /// Training images (with `test_size`: the data to evaluate on).
    pub train_size: Option<SubsetSize>,
    /// Test images.
    pub test_size: Option<SubsetSize>,
    /// The BN evaluation policy (default for a new store: running).
    pub bn: Option<BnPolicy>,
    /// Images per forward pass.
    pub chunk_size: Option<usize>,
    /// How messages name these settings (default [`Input::name`]; a command
    /// line passes its flags).
    pub names: Option<Names>,
    /// auto, cpu or cuda (evaluation only).
    pub device: DeviceChoice,
    /// CIFAR-10 folder.
    pub data_dir: Option<PathBuf>,
    /// libtorch CPU threads.
    pub threads: Option<usize>,
    /// The command line, for `run.json`.
    pub command: Vec<String>,
}

impl ImportOptions {
    /// How `input` is named in messages.
    pub fn name(&self, input: Input) -> &'static str {
        self.names.map_or_else(|| input.name(), |f| f(input))
    }
}

/// One imported file.
#[derive(Clone, Debug, Serialize)]
pub struct ImportedSnapshot {
    /// The snapshot's id in the store.
    pub id: u64,
    /// Its epoch within the run (position of the import).
    pub epoch: u32,
    /// The file, as given.
    pub file: PathBuf,
    /// CRC-32 of the file's bytes (hex).
    pub crc32: String,
    /// `safetensors` or `torch.save`.
    pub format: String,
    /// `landscape` or `sequential`.
    pub layout: String,
    /// The prefix stripped from every name, if any.
    pub prefix: Option<String>,
    /// `(name, element type)` of the tensors converted to `f32`.
    pub converted: Vec<(String, String)>,
    /// The evaluated metrics, when the data settings were known.
    pub metrics: Option<Metrics>,
}

/// What an import did.
#[derive(Clone, Debug, Serialize)]
pub struct ImportReport {
    /// The store.
    pub store: PathBuf,
    /// The run name.
    pub run: String,
    /// The network.
    pub net: NetConfig,
    /// Whether the store was created by this import.
    pub created: bool,
    /// `run.json` beside the store and what was done to it (`written`,
    /// `completed`, `kept`, or `none` when the store sits at a root).
    pub run_json: Option<PathBuf>,
    /// See `run_json`.
    pub run_json_action: String,
    /// The evaluation settings used for the metrics (if evaluated).
    pub eval: EvalConfig,
    /// The data settings used for the metrics (if evaluated).
    pub data: Option<DataConfig>,
    /// The snapshots written.
    pub snapshots: Vec<ImportedSnapshot>,
}

fn file_crc(path: &Path, files: &str) -> Result<u32> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading {} ({files})", path.display()))?;
    Ok(crc32fast::hash(&bytes))
}

/// The network the store's snapshots have: `run.json`'s, else the shapes of
/// its first snapshot (`None` for an empty store).
fn store_net(store: &Store, run_net: Option<&NetConfig>) -> Result<Option<NetConfig>> {
    if let Some(n) = run_net {
        return Ok(Some(n.clone()));
    }
    let Some(first) = store.snapshots().first() else {
        return Ok(None);
    };
    let tensors = store.read_snapshot(first.id())?;
    Ok(Some(snapshot::infer_net(&tensors).with_context(|| {
        format!(
            "the network of snapshot {} of {}",
            first.id(),
            store.dir().display()
        )
    })?))
}

/// Imports `opts.files` into `opts.store`.
pub fn import(opts: &ImportOptions) -> Result<ImportReport> {
    if opts.files.is_empty() {
        bail!(
            "give at least one file in {} (a .safetensors or torch.save state_dict)",
            opts.name(Input::Files)
        );
    }
    if opts.run.trim().is_empty() {
        bail!("{}: the run name must not be empty", opts.name(Input::Run));
    }
    let exists = opts.store.join("index.log").exists();
    let store = if exists {
        Some(Store::open(&opts.store).with_context(|| {
            format!(
                "opening the store {} ({})",
                opts.store.display(),
                opts.name(Input::Store)
            )
        })?)
    } else {
        None
    };
    let run_json = snapshot::read_run_json(&opts.store)?;
    let run_json_value = match &run_json {
        Some(r) => Some(
            serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&r.path)?)
                .with_context(|| format!("{} is not valid JSON", r.path.display()))?,
        ),
        None => None,
    };
    let made_by_import = run_json_value
        .as_ref()
        .and_then(|v| v.get("experiment"))
        .and_then(|e| e.as_str())
        == Some(IMPORT_EXPERIMENT);
    // The network every file must have.
    let expected = match &store {
        Some(s) => store_net(s, run_json.as_ref().and_then(|r| r.net.as_ref()))?,
        None => run_json.as_ref().and_then(|r| r.net.clone()),
    };
    // Read and check every file before writing anything.
    let mut dicts: Vec<(StateDict, u32)> = Vec::with_capacity(opts.files.len());
    for f in &opts.files {
        let want = expected
            .as_ref()
            .or_else(|| dicts.first().map(|(d, _)| &d.config));
        let (format, raws) = net::read_tensors(f)?;
        let sd = StateDict::from_tensors(f, format, raws, want).map_err(|e| {
            match (&expected, dicts.first()) {
                (Some(n), _) => anyhow!(
                    "{e}\n(the store {} holds the network with widths {:?} and {} classes: import \
                 files of another network into another store)",
                    opts.store.display(),
                    n.widths,
                    n.classes
                ),
                (None, Some((d, _))) => anyhow!(
                    "{e}\n(the first of {}, {}, is the network with widths {:?} and {} classes: \
                 every file of one import must have the same network)",
                    opts.name(Input::Files),
                    d.file.display(),
                    d.config.widths,
                    d.config.classes
                ),
                (None, None) => anyhow!("{e}"),
            }
        })?;
        if !sd.converted.is_empty() {
            let mut kinds: Vec<&str> = sd.converted.iter().map(|(_, k)| k.as_str()).collect();
            kinds.sort_unstable();
            kinds.dedup();
            tracing::warn!(
                file = %f.display(),
                tensors = sd.converted.len(),
                from = %kinds.join(", "),
                "converted to float32"
            );
        }
        let crc = file_crc(f, opts.name(Input::Files))?;
        dicts.push((sd, crc));
    }
    let net_cfg = expected.unwrap_or_else(|| dicts[0].0.config.clone());
    // The run must be an imported one (or new).
    let mut next_epoch = 0u32;
    if let Some(s) = &store {
        for info in s.snapshots().iter().filter(|i| i.meta().run() == opts.run) {
            let imported = matches!(
                Origin::from_meta(info.meta()),
                Some(Origin::Imported { .. })
            );
            if !imported {
                bail!(
                    "{} {}: the store {} already holds snapshot {} of that run, which was not \
                     imported; choose another {}",
                    opts.name(Input::Run),
                    opts.run,
                    opts.store.display(),
                    info.id(),
                    opts.name(Input::Run)
                );
            }
            next_epoch = next_epoch.max(info.meta().epoch().map_or(0, |e| e + 1));
        }
    }
    // Settings: flags, else run.json, else the import defaults.
    let run_eval = run_json.as_ref().and_then(|r| r.eval.clone());
    let run_data = run_json.as_ref().and_then(|r| r.data.clone());
    let mut eval = run_eval.clone().unwrap_or(EvalConfig {
        bn: BnPolicy::Running,
        ..EvalConfig::default()
    });
    if let Some(bn) = opts.bn {
        eval.bn = bn;
    }
    if let Some(c) = opts.chunk_size {
        eval.chunk_size = c;
    }
    let name = |input| opts.name(input);
    let sizes = format!("{}/{}", name(Input::TrainSize), name(Input::TestSize));
    eval.validate("import")
        .map_err(|e| anyhow!("{}: {e}", name(Input::ChunkSize)))?;
    let data_cfg = match (opts.train_size, opts.test_size) {
        (Some(tr), Some(te)) => {
            let mut d = run_data.clone().unwrap_or_default();
            d.train_size = tr.0;
            d.test_size = te.0;
            d.validate("import").map_err(|e| anyhow!("{sizes}: {e}"))?;
            Some(d)
        }
        (None, None) => run_data.clone(),
        _ => bail!(
            "give both {} and {} (a number of images or `all`), or neither",
            name(Input::TrainSize),
            name(Input::TestSize)
        ),
    };
    if let Some(r) = &run_json {
        let clash = |what: &str, ours: String, theirs: String| -> Result<()> {
            if ours != theirs {
                bail!(
                    "{}: {what} is {theirs} there but {ours} here; the snapshots of one store are \
                     evaluated with one setting: drop that setting, or import into another store",
                    r.path.display()
                );
            }
            Ok(())
        };
        if let Some(re) = &run_eval {
            clash(
                &format!("the BN policy ({})", name(Input::Bn)),
                eval.bn.as_str().into(),
                re.bn.as_str().into(),
            )?;
            clash(
                &format!("the chunk size ({})", name(Input::ChunkSize)),
                eval.chunk_size.to_string(),
                re.chunk_size.to_string(),
            )?;
        }
        if let (Some(rd), Some(d)) = (&run_data, &data_cfg) {
            clash(
                &format!("the data ({sizes})"),
                serde_json::to_string(d)?,
                serde_json::to_string(rd)?,
            )?;
        }
        if !made_by_import && (opts.train_size.is_some() && run_data.is_none()) {
            bail!(
                "{} was not written by `landscape import` and has no `config.data`: give the \
                 data to the evaluating commands ({}, {}) instead",
                r.path.display(),
                name(Input::TrainSize),
                name(Input::TestSize)
            );
        }
    }
    // Evaluate (on copies) when the data are known.
    let metrics: Vec<Option<Metrics>> = match &data_cfg {
        Some(d) => {
            let threads = opts.threads.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            });
            net::set_threads(threads);
            let device = opts.device.resolve()?;
            let loaded = data::load(d, opts.data_dir.as_deref(), device)?;
            let evaluator = Evaluator::new(&loaded, eval.clone());
            dicts
                .iter()
                .map(|(sd, _)| {
                    let mut model = sd.to_model(device)?;
                    model.set_activation(net_cfg.activation.clone())?;
                    Ok(Some(evaluator.evaluate(&mut model)?))
                })
                .collect::<Result<_>>()?
        }
        None => {
            tracing::info!(
                "no data settings ({sizes} or run.json): the snapshots are stored without metrics"
            );
            vec![None; dicts.len()]
        }
    };
    // Write: the store, then run.json.
    let created = store.is_none();
    let mut store = match store {
        Some(s) => s,
        None => Store::create(&opts.store).with_context(|| {
            format!(
                "creating the store {} ({})",
                opts.store.display(),
                name(Input::Store)
            )
        })?,
    };
    let identity = RunId::Named {
        name: opts.run.clone(),
    };
    let mut snapshots = Vec::new();
    for (((sd, crc), m), epoch) in dicts.iter().zip(&metrics).zip(next_epoch..) {
        let file_name = sd.file.file_name().map_or_else(
            || sd.file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let origin = Origin::Imported {
            file: file_name,
            crc32: format!("{crc:08x}"),
            format: sd.format.as_str().to_owned(),
            layout: sd.layout.as_str().to_owned(),
        };
        let mut meta = SnapshotMeta::new(&opts.run, SnapshotKind::Other(IMPORTED_KIND.to_owned()))
            .with_epoch(epoch)
            .with_extra(IDENTITY_KEY, serde_json::to_string(&identity)?)
            .with_extra(ORIGIN_KEY, serde_json::to_string(&origin)?)
            .with_extra("imported_path", sd.file.display().to_string());
        if let Some(m) = m {
            meta = meta
                .with_metrics(m.to_map())
                .with_extra(BN_EVAL_KEY, eval.bn.as_str());
        }
        let refs: Vec<TensorRef<'_>> = sd
            .tensors
            .iter()
            .map(|t| TensorRef {
                name: &t.name,
                shape: &t.shape,
                data: &t.data,
            })
            .collect();
        let id: SnapshotId = store.append(meta, &refs).with_context(|| {
            format!(
                "writing {} into {}",
                sd.file.display(),
                opts.store.display()
            )
        })?;
        tracing::info!(id = %id, file = %sd.file.display(), "imported");
        snapshots.push(ImportedSnapshot {
            id: id.get(),
            epoch,
            file: sd.file.clone(),
            crc32: format!("{crc:08x}"),
            format: sd.format.as_str().to_owned(),
            layout: sd.layout.as_str().to_owned(),
            prefix: sd.prefix.clone(),
            converted: sd.converted.clone(),
            metrics: *m,
        });
    }
    drop(store);
    // run.json.
    let run_json_path = snapshot::run_json_path(&opts.store);
    let entries: Vec<serde_json::Value> = snapshots
        .iter()
        .map(|s| {
            serde_json::json!({
                "snapshot": s.id, "epoch": s.epoch, "run": opts.run, "file": s.file,
                "crc32": s.crc32, "format": s.format, "layout": s.layout,
            })
        })
        .collect();
    let action = match (&run_json_path, run_json_value) {
        (None, _) => "none",
        (Some(path), None) if created => {
            write_json(
                path,
                &serde_json::json!({
                    "experiment": IMPORT_EXPERIMENT,
                    "note": "models imported from PyTorch state_dicts by `landscape import`, not trained by landscape; `config` holds what the evaluating commands use",
                    "config": { "net": net_cfg, "eval": eval, "data": data_cfg },
                    "imported": entries,
                    "versions": Versions::default(),
                    "last_invocation": { "command": opts.command },
                }),
            )?;
            "written"
        }
        (Some(_), None) => "none",
        (Some(path), Some(mut v)) if made_by_import => {
            if let Some(list) = v.get_mut("imported").and_then(|l| l.as_array_mut()) {
                list.extend(entries);
            }
            if let Some(cfg) = v.get_mut("config").and_then(|c| c.as_object_mut()) {
                if cfg.get("data").is_none_or(|d| d.is_null()) {
                    cfg.insert("data".into(), serde_json::to_value(&data_cfg)?);
                }
            }
            v["last_invocation"] = serde_json::json!({ "command": opts.command });
            write_json(path, &v)?;
            "completed"
        }
        (Some(_), Some(_)) => "kept",
    };
    Ok(ImportReport {
        store: opts.store.clone(),
        run: opts.run.clone(),
        net: net_cfg,
        created,
        run_json: run_json_path.filter(|p| p.is_file()),
        run_json_action: action.to_owned(),
        eval,
        data: data_cfg,
        snapshots,
    })
}
