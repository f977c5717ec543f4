//! A stored snapshot made ready to evaluate: the one place that turns "a
//! store and an id" into a network with its data and BN policy, for every
//! probe (lines and planes in [`crate::slices`], the Hessian, curvature,
//! imports).
//!
//! It opens a trajectory store and the `run.json` beside it (in the folder
//! above the store) and rebuilds exactly the data, network and evaluation the
//! stored metrics were computed with; [`Overrides`] may replace the
//! BN policy, the subset sizes and the chunk size, or stand in for a missing
//! `run.json`, and every [`Setting`] records where it came from. Without
//! `run.json` the network is inferred from the tensor shapes ([`infer_net`]).
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use landscape_engine::config::ensure;
use landscape_engine::data::{self, DataConfig, ExperimentData};
use landscape_engine::eval::{BnPolicy, EvalConfig};
use landscape_net::{self as net, Dcnn, DeviceChoice, NamedTensor, NetConfig};
use landscape_surface::Weights;
use landscape_trajectory::{SnapshotId, Store, Tensor};
use serde::{Deserialize, Serialize};

use crate::input::{Input, Names};

/// A subset size given on the command line: a number of images, or `all`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubsetSize(pub Option<usize>);

impl std::str::FromStr for SubsetSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "all" => Ok(SubsetSize(None)),
            n => n
                .parse()
                .map(|n| SubsetSize(Some(n)))
                .map_err(|_| format!("`{s}`: expected a number of images or `all`")),
        }
    }
}

/// Settings that replace those of `run.json` (or stand in for a missing one).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// The BN evaluation policy.
    pub bn: Option<BnPolicy>,
    /// Training images evaluated.
    pub train_size: Option<SubsetSize>,
    /// Test images evaluated.
    pub test_size: Option<SubsetSize>,
    /// Images per forward pass.
    pub chunk_size: Option<usize>,
    /// How messages and the recorded settings' sources name the settings
    /// (default [`Input::name`]: `train_size`, ...; a command line passes
    /// its flags).
    pub names: Option<Names>,
    /// The caller uses only the training set (`landscape hessian`, `embed`):
    /// without a data configuration only the training size is asked for, and
    /// a token test subset of [`UNUSED_TEST_SIZE`] images is loaded.
    pub train_only: bool,
    /// The training images are another stratified draw of
    /// `train_size` images (default: the run's number) with this seed, from
    /// the run's training subset when they fit in it, else from the whole
    /// training split (see [`data::Resample`]).
    pub sample_seed: Option<u64>,
}

impl Overrides {
    /// How `input` is named in messages and recorded sources.
    pub fn name(&self, input: Input) -> &'static str {
        self.names.map_or_else(|| input.name(), |f| f(input))
    }
}

/// The test images loaded for a caller that uses only the training set and
/// has no data configuration (the smallest subset [`DataConfig`] allows).
pub const UNUSED_TEST_SIZE: usize = 10;

/// One setting and where it came from (`run.json`, a flag, or the default).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    /// The value, as text.
    pub value: String,
    /// `run.json`, an override (named as [`Overrides::name`] says), `inferred
    /// from the tensor shapes` or `default`.
    pub from: String,
}

/// A snapshot a surface is built on, as `surface.json` records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRef {
    /// `from`, `to`, `centre`, `a`, `b` or `c`.
    pub role: String,
    /// Its id in the store (as `landscape store ls` prints it).
    pub id: u64,
    /// Its run.
    pub run: String,
    /// Its kind.
    pub kind: String,
    /// Its epoch, if any.
    pub epoch: Option<u32>,
    /// CRC-32 (hex) of the model tensors' names and stored checksums.
    pub crc32: String,
    /// Its stored metrics.
    pub metrics: BTreeMap<String, f64>,
    /// Its coordinates on the surface (`x = t`, `y = 0` on a line).
    pub x: f64,
    /// See `x`.
    pub y: f64,
}

/// The network of a snapshot without `run.json`: widths and classes from
/// the shapes of `layer{L}.weight`, `L = 2, 3, ...` (`[out, in, 3, 3]`),
/// ReLU.
pub fn infer_net(tensors: &[Tensor]) -> Result<NetConfig> {
    let mut outs = Vec::new();
    for layer in net::FIRST_LAYER.. {
        let name = format!("layer{layer}.weight");
        let Some(t) = tensors.iter().find(|t| t.name == name) else {
            break;
        };
        if t.shape.len() != 4 {
            bail!(
                "tensor `{name}` has shape {:?}: expected [out, in, 3, 3] to infer the network",
                t.shape
            );
        }
        outs.push(t.shape[0] as i64);
    }
    let Some((&classes, widths)) = outs.split_last() else {
        bail!("no tensor `layer2.weight`: cannot infer the network's widths from the snapshot");
    };
    let cfg = NetConfig {
        widths: widths.to_vec(),
        classes,
        ..NetConfig::paper()
    };
    cfg.validate()
        .map_err(|e| anyhow!("the network inferred from the tensor shapes ({cfg:?}): {e}"))?;
    Ok(cfg)
}

/// What `run.json` (beside the store) says, if it exists.
pub(crate) struct RunJson {
    pub(crate) path: PathBuf,
    pub(crate) data: Option<DataConfig>,
    pub(crate) eval: Option<EvalConfig>,
    pub(crate) net: Option<NetConfig>,
    pub(crate) fingerprint: BTreeMap<String, String>,
}

/// Where the settings of the store at `store` are looked for: `run.json` in
/// the folder above it (`None` for a store at a root).
pub fn run_json_path(store: &Path) -> Option<PathBuf> {
    let abs = std::fs::canonicalize(store).unwrap_or_else(|_| store.to_path_buf());
    Some(abs.parent()?.join("run.json"))
}

pub(crate) fn read_run_json(store: &Path) -> Result<Option<RunJson>> {
    let Some(path) = run_json_path(store) else {
        return Ok(None);
    };
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    fn field<T: for<'de> Deserialize<'de>>(
        v: &serde_json::Value,
        key: &str,
        path: &Path,
        what: &str,
    ) -> Result<Option<T>> {
        match v.get("config").and_then(|c| c.get(key)) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(x) => serde_json::from_value(x.clone())
                .map(Some)
                .with_context(|| format!("{}: `config.{key}` is not {what} ({x})", path.display())),
        }
    }
    let fingerprint = v
        .get("fingerprint")
        .and_then(|f| f.get("keys"))
        .and_then(|k| serde_json::from_value(k.clone()).ok())
        .unwrap_or_default();
    Ok(Some(RunJson {
        data: field(&v, "data", &path, "a data configuration")?,
        eval: field(&v, "eval", &path, "an evaluation configuration")?,
        net: field(&v, "net", &path, "a network configuration")?,
        path,
        fingerprint,
    }))
}

/// The settings of a store resolved from `run.json` and the overrides.
pub(crate) struct Resolved {
    pub(crate) data: DataConfig,
    pub(crate) eval: EvalConfig,
    pub(crate) net: NetConfig,
    pub(crate) settings: BTreeMap<String, Setting>,
    pub(crate) run_json: Option<RunJson>,
    pub(crate) resample: Option<data::Resample>,
}

fn setting(value: impl ToString, from: &str) -> Setting {
    Setting {
        value: value.to_string(),
        from: from.to_owned(),
    }
}

fn size_text(n: Option<usize>) -> String {
    n.map_or_else(|| "all".to_owned(), |n| n.to_string())
}

pub(crate) fn resolve(store: &Path, first: &[Tensor], o: &Overrides) -> Result<Resolved> {
    let run = read_run_json(store)?;
    let mut settings = BTreeMap::new();
    let (mut data, data_from) = match run.as_ref().and_then(|r| r.data.clone()) {
        Some(d) => (d, "run.json"),
        None => {
            if o.train_size.is_none() || (o.test_size.is_none() && !o.train_only) {
                let why = match &run {
                    Some(r) => format!("{} has no `config.data`", r.path.display()),
                    None => format!(
                        "there is no run.json beside the store {} (looked in its parent folder)",
                        store.display()
                    ),
                };
                if o.train_only {
                    bail!(
                        "{why}: give {} (a number of training images or `all`) to say which \
                         images to evaluate on",
                        o.name(Input::TrainSize)
                    );
                }
                bail!(
                    "{why}: give {} and {} (a number of images or `all`) \
                     to say which images to evaluate on",
                    o.name(Input::TrainSize),
                    o.name(Input::TestSize)
                );
            }
            (DataConfig::default(), "default")
        }
    };
    for key in ["subset", "subset_seed", "random_labels"] {
        let v = match key {
            "subset" => format!("{:?}", data.subset).to_lowercase(),
            "subset_seed" => data.subset_seed.to_string(),
            _ => serde_json::to_string(&data.random_labels)?,
        };
        settings.insert(key.to_owned(), setting(v, data_from));
    }
    let train_flag = o.name(Input::TrainSize);
    let resample = match (o.sample_seed, o.train_size) {
        (None, _) => None,
        (Some(seed), size) => {
            let size = match size {
                Some(SubsetSize(n)) => n.unwrap_or(50_000),
                None => data.train_len(),
            };
            ensure(
                (10..=50_000).contains(&size),
                train_flag,
                format!("{size} must be between 10 and 50000"),
            )?;
            let r = data::Resample { size, seed };
            let seed_from = o.name(Input::SampleSeed);
            settings.insert("sample_seed".into(), setting(seed, seed_from));
            settings.insert("sample_from".into(), setting(r.source(&data), seed_from));
            Some(r)
        }
    };
    match o.train_size {
        // With a sample seed the run's subset stays what it was (the sample
        // is drawn from it); the size is the sample's.
        Some(SubsetSize(n)) if resample.is_some() => {
            settings.insert("train_size".into(), setting(size_text(n), train_flag));
        }
        Some(SubsetSize(n)) => {
            data.train_size = n;
            settings.insert("train_size".into(), setting(size_text(n), train_flag));
        }
        None => {
            settings.insert(
                "train_size".into(),
                setting(size_text(data.train_size), data_from),
            );
        }
    }
    match o.test_size {
        Some(SubsetSize(n)) => {
            data.test_size = n;
            settings.insert(
                "test_size".into(),
                setting(size_text(n), o.name(Input::TestSize)),
            );
        }
        None if o.train_only && data_from == "default" => {
            data.test_size = Some(UNUSED_TEST_SIZE);
            settings.insert(
                "test_size".into(),
                setting(UNUSED_TEST_SIZE, "default (the test set is not used)"),
            );
        }
        None => {
            settings.insert(
                "test_size".into(),
                setting(size_text(data.test_size), data_from),
            );
        }
    }
    data.validate("surface").map_err(|e| {
        anyhow!(
            "{}/{}: {e}",
            o.name(Input::TrainSize),
            o.name(Input::TestSize)
        )
    })?;
    let (mut eval, eval_from) = match run.as_ref().and_then(|r| r.eval.clone()) {
        Some(e) => (e, "run.json"),
        None => (EvalConfig::default(), "default"),
    };
    let bn_from = match o.bn {
        Some(bn) => {
            eval.bn = bn;
            o.name(Input::Bn)
        }
        None => eval_from,
    };
    settings.insert("bn".into(), setting(eval.bn.as_str(), bn_from));
    let chunk_from = match o.chunk_size {
        Some(c) => {
            eval.chunk_size = c;
            o.name(Input::ChunkSize)
        }
        None => eval_from,
    };
    eval.validate("surface")
        .map_err(|e| anyhow!("{}: {e}", o.name(Input::ChunkSize)))?;
    settings.insert("chunk_size".into(), setting(eval.chunk_size, chunk_from));
    let (net, net_from) = match run.as_ref().and_then(|r| r.net.clone()) {
        Some(n) => (n, "run.json"),
        None => (infer_net(first)?, "inferred from the tensor shapes"),
    };
    settings.insert(
        "net".into(),
        setting(serde_json::to_string(&net)?, net_from),
    );
    Ok(Resolved {
        data,
        eval,
        net,
        settings,
        run_json: run,
        resample,
    })
}

/// The data's identity as it goes into the grid key.
pub(crate) fn data_identity(d: &ExperimentData) -> String {
    format!(
        "cifar10 train n={} indices={:08x} labels={:08x}; test n={} indices={:08x} labels={:08x}; normalisation {:?}",
        d.train_id.len,
        d.train_id.indices_crc32,
        d.train_id.labels_crc32,
        d.test_id.len,
        d.test_id.indices_crc32,
        d.test_id.labels_crc32,
        d.normalization
    )
}

/// Reads a snapshot's model tensors, in the network's export order.
pub(crate) fn read_weights(
    store: &Store,
    id: SnapshotId,
    names: &[String],
    net: &NetConfig,
) -> Result<Weights> {
    let all = store
        .read_snapshot(id)
        .with_context(|| format!("reading snapshot {id} of {}", store.dir().display()))?;
    let mut by_name: HashMap<String, Tensor> =
        all.into_iter().map(|t| (t.name.clone(), t)).collect();
    let tensors = names
        .iter()
        .map(|n| {
            by_name.remove(n).ok_or_else(|| {
                anyhow!(
                    "snapshot {id} of {} has no tensor `{n}`: expected the tensors of the network {net:?}",
                    store.dir().display()
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Weights::new(tensors)?)
}

/// CRC-32 over the model tensors' names and stored checksums.
pub(crate) fn content_crc(store: &Store, id: SnapshotId, names: &[String]) -> Result<u32> {
    let info = store.get(id)?;
    let mut h = crc32fast::Hasher::new();
    for n in names {
        let t = info
            .tensor(n)
            .ok_or_else(|| anyhow!("snapshot {id} has no tensor `{n}`"))?;
        h.update(n.as_bytes());
        h.update(&t.crc32().to_le_bytes());
    }
    Ok(h.finalize())
}

pub(crate) fn to_named(w: Weights) -> Vec<NamedTensor> {
    w.into_tensors()
        .into_iter()
        .map(|t| NamedTensor {
            name: t.name,
            shape: t.shape,
            data: t.data,
        })
        .collect()
}

/// One stored snapshot rebuilt as a model, with the data, evaluation and
/// network of the run that made it (from `run.json` beside the store, or
/// the overrides), for analyses of a single model (e.g. `landscape hessian`).
pub struct LoadedSnapshot {
    /// The model, with the snapshot's weights and BN statistics.
    pub model: Dcnn,
    /// The data (the run's subset, or as overridden).
    pub data: ExperimentData,
    /// The evaluation settings.
    pub eval: EvalConfig,
    /// The network.
    pub net: NetConfig,
    /// Every setting and where it came from.
    pub settings: BTreeMap<String, Setting>,
    /// The snapshot's stored metrics.
    pub metrics: BTreeMap<String, f64>,
    /// The snapshot's run name and epoch.
    pub run: String,
    /// Its epoch, if any.
    pub epoch: Option<u32>,
}

/// Loads snapshot `id` of the store at `store_path` as a [`LoadedSnapshot`]
/// (threads and device as given; errors name the setting to fix, as the
/// overrides name it): a
/// [`SnapshotSeries`] opened at `id` and loaded there.
pub fn load_snapshot(
    store_path: &Path,
    id: SnapshotId,
    overrides: &Overrides,
    device: DeviceChoice,
    data_dir: Option<&Path>,
    threads: Option<usize>,
) -> Result<LoadedSnapshot> {
    let mut series = SnapshotSeries::open(store_path, id, overrides, device, data_dir, threads)?;
    let info = series.load(id)?;
    Ok(LoadedSnapshot {
        model: series.model,
        data: series.data,
        eval: series.eval,
        net: series.net,
        settings: series.settings,
        metrics: info.metrics,
        run: info.run,
        epoch: info.epoch,
    })
}

/// Several snapshots of one store, loaded one after the other into one
/// model, with the data, evaluation and network resolved once (from
/// `run.json` and the overrides, as [`load_snapshot`]): the same model and
/// data as [`load_snapshot`] gives for each of them.
pub struct SnapshotSeries {
    store: Store,
    store_path: PathBuf,
    names: Vec<String>,
    /// How errors name the snapshot id ([`Overrides::name`]).
    id_name: &'static str,
    device: net::tch::Device,
    /// The model, holding the weights and BN statistics of the snapshot
    /// loaded last.
    pub model: Dcnn,
    /// The data (the run's subset, or as overridden).
    pub data: ExperimentData,
    /// The evaluation settings.
    pub eval: EvalConfig,
    /// The network.
    pub net: NetConfig,
    /// Every setting and where it came from.
    pub settings: BTreeMap<String, Setting>,
}

impl SnapshotSeries {
    /// Opens the store at `store_path` and resolves the settings with snapshot
    /// `first` (whose tensor shapes give the network when there is no
    /// `run.json`); loads the data; sets libtorch's threads.
    pub fn open(
        store_path: &Path,
        first: SnapshotId,
        overrides: &Overrides,
        device: DeviceChoice,
        data_dir: Option<&Path>,
        threads: Option<usize>,
    ) -> Result<SnapshotSeries> {
        let store = Store::open(store_path).with_context(|| {
            format!(
                "opening the store {} ({})",
                store_path.display(),
                overrides.name(Input::Store)
            )
        })?;
        store.get(first).map_err(|e| {
            anyhow!(
                "{}: snapshot {first}: {e} (see `landscape store ls {}`)",
                overrides.name(Input::Id),
                store_path.display()
            )
        })?;
        let tensors = store.read_snapshot(first)?;
        let r = resolve(store_path, &tensors, overrides)?;
        drop(tensors);
        let threads = threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        net::set_threads(threads);
        let device = device.resolve()?;
        let model = Dcnn::new(&r.net, device, 0)?;
        let names = model.tensor_names();
        let data = data::load_resampled(&r.data, r.resample, data_dir, device)?;
        Ok(SnapshotSeries {
            store,
            store_path: store_path.to_path_buf(),
            names,
            id_name: overrides.name(Input::Id),
            device,
            model,
            data,
            eval: r.eval,
            net: r.net,
            settings: r.settings,
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Loads snapshot `id`'s weights and BN statistics into [`Self::model`].
    pub fn load(&mut self, id: SnapshotId) -> Result<SnapshotRef> {
        let info = self
            .store
            .get(id)
            .map_err(|e| {
                anyhow!(
                    "{}: snapshot {id}: {e} (see `landscape store ls {}`)",
                    self.id_name,
                    self.store_path.display()
                )
            })?
            .clone();
        let w = read_weights(&self.store, id, &self.names, &self.net)?;
        self.model
            .import(&to_named(w))
            .with_context(|| format!("snapshot {id} does not fit the network {:?}", self.net))?;
        let m = info.meta();
        Ok(SnapshotRef {
            role: "snapshot".to_owned(),
            id: id.get(),
            run: m.run().to_owned(),
            kind: m.kind().name(),
            epoch: m.epoch(),
            crc32: format!("{:08x}", content_crc(&self.store, id, &self.names)?),
            metrics: m.metrics().clone(),
            x: 0.0,
            y: 0.0,
        })
    }

    /// CRC-32 (hex) of snapshot `id`'s model tensors' names and stored
    /// checksums (what [`SnapshotRef::crc32`] holds), without loading it.
    pub fn content_crc(&self, id: SnapshotId) -> Result<String> {
        Ok(format!(
            "{:08x}",
            content_crc(&self.store, id, &self.names)?
        ))
    }

    /// The data's identity (sizes, CRCs of indices and labels, normalisation).
    pub fn data_identity(&self) -> String {
        data_identity(&self.data)
    }

    /// `cuda` or `cpu`.
    pub fn device_kind(&self) -> &'static str {
        if self.device.is_cuda() {
            "cuda"
        } else {
            "cpu"
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(name: &str, shape: &[usize]) -> Tensor {
        Tensor {
            name: name.into(),
            shape: shape.to_vec(),
            data: vec![0.0; shape.iter().product()],
        }
    }

    #[test]
    fn net_is_inferred_from_the_shapes() {
        let ts = vec![
            t("layer2.weight", &[8, 3, 3, 3]),
            t("layer2.bias", &[8]),
            t("layer3.weight", &[16, 8, 3, 3]),
            t("layer4.weight", &[10, 16, 3, 3]),
            t("optim.momentum.layer2.weight", &[8, 3, 3, 3]),
        ];
        let n = infer_net(&ts).unwrap();
        assert_eq!(n.widths, vec![8, 16]);
        assert_eq!(n.classes, 10);
        assert!(infer_net(&ts[1..2])
            .unwrap_err()
            .to_string()
            .contains("layer2.weight"));
    }

    #[test]
    fn subset_sizes_parse() {
        assert_eq!("all".parse::<SubsetSize>().unwrap(), SubsetSize(None));
        assert_eq!("500".parse::<SubsetSize>().unwrap(), SubsetSize(Some(500)));
        assert!("x".parse::<SubsetSize>().unwrap_err().contains("`all`"));
    }
}
