//! Snapshot ids, metadata and tensor descriptions.
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The id of a snapshot: its position in the store's index (0, 1, 2, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SnapshotId(pub u64);

impl SnapshotId {
    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for SnapshotId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse().map(SnapshotId)
    }
}

/// How a snapshot's weights came to be.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SnapshotKind {
    /// A random initialisation, before any training.
    Initial,
    /// Weights reached by training (SGD or BGD).
    Trained,
    /// Weights after a random perturbation of a parent.
    Perturbed,
    /// A point on the segment between two models.
    Interpolated,
    /// The average of several models.
    Averaged,
    /// Anything else, named.
    Other(String),
}

impl SnapshotKind {
    /// The lower-case name used in tables and filters (`trained`, `other:NAME`).
    pub fn name(&self) -> String {
        match self {
            SnapshotKind::Initial => "initial".into(),
            SnapshotKind::Trained => "trained".into(),
            SnapshotKind::Perturbed => "perturbed".into(),
            SnapshotKind::Interpolated => "interpolated".into(),
            SnapshotKind::Averaged => "averaged".into(),
            SnapshotKind::Other(name) => format!("other:{name}"),
        }
    }
}

impl fmt::Display for SnapshotKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for SnapshotKind {
    type Err = String;
    /// Parses the names written by [`SnapshotKind::name`] (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        match t.to_ascii_lowercase().as_str() {
            "initial" => Ok(SnapshotKind::Initial),
            "trained" => Ok(SnapshotKind::Trained),
            "perturbed" => Ok(SnapshotKind::Perturbed),
            "interpolated" => Ok(SnapshotKind::Interpolated),
            "averaged" => Ok(SnapshotKind::Averaged),
            lower => match lower.strip_prefix("other:") {
                Some(_) => Ok(SnapshotKind::Other(t["other:".len()..].to_string())),
                None => Err(format!(
                    "unknown kind {t:?}: expected initial, trained, perturbed, interpolated, averaged or other:NAME"
                )),
            },
        }
    }
}

/// What is known about a snapshot besides its tensors.
///
/// Built with [`SnapshotMeta::new`] and the `with_*` methods:
///
/// ```
/// use landscape_trajectory::{SnapshotKind, SnapshotMeta};
/// let meta = SnapshotMeta::new("main", SnapshotKind::Trained)
///     .with_stage(1)
///     .with_epoch(30)
///     .with_metric("train_loss", 0.42)
///     .with_extra("optimizer", "sgd");
/// assert_eq!(meta.epoch(), Some(30));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    run: String,
    parent: Option<SnapshotId>,
    kind: SnapshotKind,
    stage: Option<u32>,
    epoch: Option<u32>,
    step: Option<u64>,
    metrics: BTreeMap<String, f64>,
    extra: BTreeMap<String, String>,
}

impl SnapshotMeta {
    /// Metadata for a snapshot of run (trajectory) `run`, e.g. `"main"`, `"branch1"`.
    pub fn new(run: impl Into<String>, kind: SnapshotKind) -> Self {
        SnapshotMeta {
            run: run.into(),
            parent: None,
            kind,
            stage: None,
            epoch: None,
            step: None,
            metrics: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }
    /// The snapshot this one was derived from (branch point, perturbed model, ...).
    pub fn with_parent(mut self, parent: SnapshotId) -> Self {
        self.parent = Some(parent);
        self
    }
    /// The training stage (the paper's multi-stage protocol counts from 1).
    pub fn with_stage(mut self, stage: u32) -> Self {
        self.stage = Some(stage);
        self
    }
    /// The epoch within the stage.
    pub fn with_epoch(mut self, epoch: u32) -> Self {
        self.epoch = Some(epoch);
        self
    }
    /// The optimizer step count.
    pub fn with_step(mut self, step: u64) -> Self {
        self.step = Some(step);
        self
    }
    /// A metric known at write time (`train_loss`, `test_error`, ...).
    pub fn with_metric(mut self, name: impl Into<String>, value: f64) -> Self {
        self.metrics.insert(name.into(), value);
        self
    }
    /// Several metrics at once.
    pub fn with_metrics(mut self, metrics: impl IntoIterator<Item = (String, f64)>) -> Self {
        self.metrics.extend(metrics);
        self
    }
    /// Free-form text metadata (`alpha`, `t`, `optimizer`, ...).
    pub fn with_extra(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }
    /// The run (trajectory) id.
    pub fn run(&self) -> &str {
        &self.run
    }
    /// The parent snapshot, if any.
    pub fn parent(&self) -> Option<SnapshotId> {
        self.parent
    }
    /// How the weights came to be.
    pub fn kind(&self) -> &SnapshotKind {
        &self.kind
    }
    /// The training stage.
    pub fn stage(&self) -> Option<u32> {
        self.stage
    }
    /// The epoch.
    pub fn epoch(&self) -> Option<u32> {
        self.epoch
    }
    /// The step.
    pub fn step(&self) -> Option<u64> {
        self.step
    }
    /// The metrics (for a stored snapshot: those written with it merged with
    /// those attached later, the latest value of each name winning).
    pub fn metrics(&self) -> &BTreeMap<String, f64> {
        &self.metrics
    }
    /// One metric.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).copied()
    }
    /// The free-form metadata.
    pub fn extra(&self) -> &BTreeMap<String, String> {
        &self.extra
    }
    pub(crate) fn merge_metrics(&mut self, metrics: &BTreeMap<String, f64>) {
        for (k, v) in metrics {
            self.metrics.insert(k.clone(), *v);
        }
    }
}

/// A borrowed tensor to append: name, shape and row-major data.
#[derive(Clone, Copy, Debug)]
pub struct TensorRef<'a> {
    /// The tensor's name, e.g. `"layer2.weight"`.
    pub name: &'a str,
    /// Its shape; the product must equal `data.len()` (`[]` is a scalar).
    pub shape: &'a [usize],
    /// Its values, row-major.
    pub data: &'a [f32],
}

/// An owned tensor read from (or to be written to) a store.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// The tensor's name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub data: Vec<f32>,
}

impl Tensor {
    /// A borrowed view, for [`crate::Store::append`].
    pub fn as_ref(&self) -> TensorRef<'_> {
        TensorRef {
            name: &self.name,
            shape: &self.shape,
            data: &self.data,
        }
    }
}

/// Where one tensor lies in its snapshot's segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub(crate) name: String,
    pub(crate) shape: Vec<usize>,
    pub(crate) numel: usize,
    pub(crate) offset: u64,
    pub(crate) crc32: u32,
}

impl TensorInfo {
    /// The tensor's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Its number of values.
    pub fn numel(&self) -> usize {
        self.numel
    }
    /// Byte offset of its data in the segment file ([`SnapshotInfo::file`]).
    pub fn byte_offset(&self) -> u64 {
        self.offset
    }
    /// Length of its data in bytes (`4 * numel`).
    pub fn byte_len(&self) -> u64 {
        4 * self.numel as u64
    }
    /// CRC32 (IEEE) of its data bytes.
    pub fn crc32(&self) -> u32 {
        self.crc32
    }
}

/// A stored snapshot as the index describes it: id, metadata (metrics merged)
/// and where each tensor lies.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotInfo {
    pub(crate) id: SnapshotId,
    pub(crate) meta: SnapshotMeta,
    /// Segment number.
    pub(crate) segment: u32,
    /// The segment file, relative to the store folder.
    pub(crate) file: PathBuf,
    /// Start of the snapshot's region in the segment file.
    pub(crate) offset: u64,
    /// Length of the region.
    pub(crate) file_len: u64,
    /// Start of the data section in the segment file.
    pub(crate) data_offset: u64,
    pub(crate) tensors: Vec<TensorInfo>,
}

impl SnapshotInfo {
    /// The snapshot's id.
    pub fn id(&self) -> SnapshotId {
        self.id
    }
    /// Its metadata, with every metric attached so far.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }
    /// The segment file holding it, relative to the store folder.
    pub fn file(&self) -> &Path {
        &self.file
    }
    /// The length in bytes of its region in the segment file (prefix,
    /// header and data).
    pub fn file_len(&self) -> u64 {
        self.file_len
    }
    /// The byte offset of its region in the segment file.
    pub fn offset(&self) -> u64 {
        self.offset
    }
    /// The number of its segment file.
    pub fn segment(&self) -> u32 {
        self.segment
    }
    /// Its tensors, in the order they were written.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }
    /// One tensor by name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
    /// Total number of values over all tensors.
    pub fn numel(&self) -> usize {
        self.tensors.iter().map(|t| t.numel).sum()
    }
    /// The names of the weight tensors of layer `layer` in the paper's
    /// numbering: every tensor whose name starts with `layer{layer}.`, except
    /// batch-normalisation statistics (names with a `bn` part, or ending in
    /// `running_mean`, `running_var` or `num_batches_tracked`). In file order.
    pub fn layer_tensor_names(&self, layer: u32) -> Vec<&str> {
        let prefix = format!("layer{layer}.");
        self.tensors
            .iter()
            .map(|t| t.name.as_str())
            .filter(|n| n.starts_with(&prefix) && !is_bn_stat(n))
            .collect()
    }
}

fn is_bn_stat(name: &str) -> bool {
    name.split('.').any(|part| part == "bn")
        || name.ends_with("running_mean")
        || name.ends_with("running_var")
        || name.ends_with("num_batches_tracked")
}
