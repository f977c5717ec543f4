//! Resumable trajectories recorded in a snapshot store.
//!
//! A trajectory is a named run (`main`, `fig14/branch1`, ...) of snapshots,
//! one per epoch. Every snapshot is evaluated on the whole training and test
//! sets before it is written, so a snapshot in the store is always complete.
//! The store doubles as the checkpoint: running the same experiment again
//! skips every snapshot already there and continues from the last one, and
//! since BGD steps, perturbations and evaluations are deterministic functions
//! of (weights, seed), a resumed run ends with exactly the same result.
use std::cell::RefCell;
use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use landscape_net::{self as net, Dcnn, NamedTensor};
use landscape_trajectory::{
    SnapshotId, SnapshotInfo, SnapshotKind, SnapshotMeta, Store, TensorRef,
};
use serde::{Deserialize, Serialize};

use super::data::ExperimentData;

/// How batch-normalisation statistics are set before a model is evaluated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BnEval {
    /// Re-estimate the running mean and variance exactly on the whole training
    /// set before evaluating (and store the re-estimated statistics). Needed
    /// for BGD, whose one step per epoch barely moves running averages, and
    /// for perturbed and interpolated models, whose statistics are stale.
    #[default]
    Reestimate,
    /// Evaluate with the running statistics as they are.
    Running,
}

/// Evaluation settings shared by every experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    pub bn: BnEval,
    /// Images per forward pass when evaluating.
    pub chunk_size: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            bn: BnEval::Reestimate,
            chunk_size: 1000,
        }
    }
}

/// Training and test loss and error of one model.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub train_loss: f64,
    pub train_error: f64,
    pub test_loss: f64,
    pub test_error: f64,
}

impl Metrics {
    pub fn to_map(self) -> BTreeMap<String, f64> {
        BTreeMap::from([
            ("train_loss".to_owned(), self.train_loss),
            ("train_error".to_owned(), self.train_error),
            ("test_loss".to_owned(), self.test_loss),
            ("test_error".to_owned(), self.test_error),
        ])
    }

    pub fn from_map(m: &BTreeMap<String, f64>) -> Option<Self> {
        Some(Metrics {
            train_loss: *m.get("train_loss")?,
            train_error: *m.get("train_error")?,
            test_loss: *m.get("test_loss")?,
            test_error: *m.get("test_error")?,
        })
    }
}

/// Records trajectories of one experiment into its store.
pub struct Recorder<'a> {
    pub store: RefCell<Store>,
    pub data: &'a ExperimentData,
    pub eval: EvalConfig,
    pub net: net::NetConfig,
    pub device: tch::Device,
}

/// A bar with ETA on stderr (hidden when stderr is not a terminal).
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>28} [{bar:30}] {pos}/{len} epochs, {elapsed} elapsed, ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

impl Recorder<'_> {
    /// Sets the BN statistics as configured, then evaluates on both sets.
    pub fn evaluate(&self, model: &mut Dcnn) -> Result<Metrics> {
        if self.eval.bn == BnEval::Reestimate {
            net::reestimate_bn(model, &self.data.train, self.eval.chunk_size)?;
        }
        let tr = net::evaluate(model, &self.data.train, self.eval.chunk_size)?;
        let te = net::evaluate(model, &self.data.test, self.eval.chunk_size)?;
        Ok(Metrics {
            train_loss: tr.loss,
            train_error: tr.error_percent,
            test_loss: te.loss,
            test_error: te.error_percent,
        })
    }

    /// Evaluates `model` and appends it as `(run, epoch)`.
    pub fn record(
        &self,
        model: &mut Dcnn,
        run: &str,
        epoch: u32,
        kind: SnapshotKind,
        parent: Option<SnapshotId>,
        extra: &[(&str, String)],
    ) -> Result<SnapshotId> {
        let metrics = self.evaluate(model)?;
        let mut meta = SnapshotMeta::new(run, kind)
            .with_epoch(epoch)
            .with_metrics(metrics.to_map());
        if let Some(p) = parent {
            meta = meta.with_parent(p);
        }
        for (k, v) in extra {
            meta = meta.with_extra(*k, v.clone());
        }
        let tensors = model.export()?;
        let refs: Vec<TensorRef<'_>> = tensors
            .iter()
            .map(|t| TensorRef {
                name: &t.name,
                shape: &t.shape,
                data: &t.data,
            })
            .collect();
        let id = self
            .store
            .borrow_mut()
            .append(meta, &refs)
            .with_context(|| format!("recording {run} epoch {epoch}"))?;
        tracing::debug!(
            run,
            epoch,
            train_error = metrics.train_error,
            test_error = metrics.test_error,
            "recorded"
        );
        Ok(id)
    }

    /// The snapshots of `run` already in the store, by epoch.
    pub fn existing(&self, run: &str) -> Result<BTreeMap<u32, SnapshotId>> {
        let mut out = BTreeMap::new();
        for info in self.store.borrow().snapshots() {
            if info.meta().run() == run {
                if let Some(e) = info.meta().epoch() {
                    out.insert(e, info.id());
                }
            }
        }
        Ok(out)
    }

    /// Every snapshot's index entry (metadata, metrics, tensor list).
    pub fn infos(&self) -> Vec<SnapshotInfo> {
        self.store.borrow().snapshots().to_vec()
    }

    /// Rebuilds the model stored as snapshot `id`.
    pub fn load(&self, id: SnapshotId) -> Result<Dcnn> {
        let snap = self.store.borrow().read_snapshot(id)?;
        let tensors: Vec<NamedTensor> = snap
            .into_iter()
            .map(|t| NamedTensor {
                name: t.name,
                shape: t.shape,
                data: t.data,
            })
            .collect();
        let mut model = Dcnn::new(&self.net, self.device, 0)?;
        model.import(&tensors)?;
        Ok(model)
    }

    /// A BGD trajectory `run` from `start_epoch` to `end_epoch` (inclusive).
    /// Its first snapshot (at `start_epoch`) comes from `start`, called only if
    /// it is not in the store yet; later epochs are one BGD step each. Resumes
    /// from the last recorded epoch. Returns the snapshot ids by epoch.
    pub fn bgd_trajectory(
        &self,
        run: &str,
        start_epoch: u32,
        end_epoch: u32,
        bgd: &net::BgdConfig,
        start: impl FnOnce() -> Result<(Dcnn, SnapshotKind, Option<SnapshotId>)>,
        bar_label: &str,
    ) -> Result<BTreeMap<u32, SnapshotId>> {
        let mut ids = self.existing(run)?;
        let bar = progress(u64::from(end_epoch - start_epoch + 1), bar_label);
        let (mut model, mut epoch) = match ids.iter().next_back().map(|(e, id)| (*e, *id)) {
            Some((e, id)) => {
                if e < start_epoch || e > end_epoch {
                    bail!("the store holds `{run}` epoch {e}, outside {start_epoch}..={end_epoch}: it belongs to another configuration; use a fresh --out folder");
                }
                tracing::info!(run, epoch = e, "resuming");
                (self.load(id)?, e)
            }
            None => {
                let (mut model, kind, parent) = start()?;
                let id = self.record(&mut model, run, start_epoch, kind, parent, &[])?;
                ids.insert(start_epoch, id);
                (model, start_epoch)
            }
        };
        bar.set_position(u64::from(epoch - start_epoch + 1));
        let mut opt = net::Bgd::new(&model, bgd.clone())?;
        while epoch < end_epoch {
            epoch += 1;
            opt.epoch(&mut model, &self.data.train, epoch as usize)
                .with_context(|| format!("training `{run}`"))?;
            let parent = ids.get(&(epoch - 1)).copied();
            let id = self.record(&mut model, run, epoch, SnapshotKind::Trained, parent, &[])?;
            ids.insert(epoch, id);
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(ids)
    }
}
