//! Resumable trajectories recorded in a snapshot store.
//!
//! A trajectory is one [`RunId`] with one snapshot per epoch. Every snapshot
//! is evaluated (training and test sets) before it is written, and carries its
//! identity, origin, the run's fingerprint, the BN policy and, when the
//! optimiser has state (momentum), that state as extra tensors
//! (`optim.momentum.<tensor>`), all in one atomic append. So the store doubles
//! as the checkpoint: running the same plan again skips every snapshot already
//! there and continues from the last one with the same weights *and* optimiser
//! state, and since steps, perturbations and evaluations are deterministic
//! functions of (weights, state, seed, epoch), a resumed run ends bit-identical
//! to an uninterrupted one on the same machine's CPU and thread count (on a
//! GPU only close: cuDNN's algorithm choice and atomic adds vary between runs).
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use landscape_net::{self as net, Dcnn, NamedTensor, OptimizerState, Phase};
use landscape_trajectory::{SnapshotId, SnapshotKind, SnapshotMeta, Store, TensorRef};
use serde::{Deserialize, Serialize};

use crate::config::{ensure, Validate};
use crate::data::ExperimentData;
use crate::eval::{Evaluator, Metrics};
use crate::identity::{
    Origin, RunId, BN_EVAL_KEY, FINGERPRINT_KEY, IDENTITY_KEY, IMPORTED_KIND, ORIGIN_KEY,
};
use crate::ExperimentError;

/// Metric: the epoch's mean training loss, measured while training.
pub const EPOCH_LOSS: &str = "epoch_loss";
/// Metric: share of hidden pre-activations outside a polynomial activation's
/// fitted interval during the epoch (0 for ReLU).
pub const OUT_OF_INTERVAL: &str = "out_of_interval_share";

/// Prefix of the optimiser-state tensors stored beside a model's tensors.
pub const OPTIM_PREFIX: &str = "optim.momentum.";

/// A phase's settings are checked with the experiment's messages (keys as
/// written in the experiment file: `quick.bgd.lr`); `key` names the phase.
impl Validate for Phase {
    fn validate(&self, key: &str) -> Result<(), ExperimentError> {
        let hyper = |lr: f64, m: f64, wd: f64, k: &str| -> Result<(), ExperimentError> {
            ensure(
                lr.is_finite() && lr > 0.0,
                &format!("{key}.{k}.lr"),
                format!("{lr} must be a positive number"),
            )?;
            ensure(
                (0.0..1.0).contains(&m),
                &format!("{key}.{k}.momentum"),
                format!("{m} must be in [0, 1)"),
            )?;
            ensure(
                wd.is_finite() && wd >= 0.0,
                &format!("{key}.{k}.weight_decay"),
                format!("{wd} must be >= 0"),
            )
        };
        match self {
            Phase::Sgd { sgd, .. } => {
                ensure(
                    sgd.batch_size >= 1,
                    &format!("{key}.sgd.batch_size"),
                    "must be at least 1",
                )?;
                hyper(sgd.lr, sgd.momentum, sgd.weight_decay, "sgd")
            }
            Phase::Bgd { bgd, .. } => {
                if let Some(g) = bgd.ghost_batch {
                    ensure(
                        g >= 1,
                        &format!("{key}.bgd.ghost_batch"),
                        "must be at least 1 (or absent: one batch of all images)",
                    )?;
                }
                hyper(bgd.lr, bgd.momentum, bgd.weight_decay, "bgd")
            }
        }
    }
}

enum Optimizer {
    Sgd(net::Sgd),
    Bgd(net::Bgd),
}

impl Optimizer {
    fn new(phase: &Phase, model: &Dcnn) -> Result<Self> {
        Ok(match phase {
            Phase::Sgd { sgd, .. } => Optimizer::Sgd(net::Sgd::new(model, sgd.clone())?),
            Phase::Bgd { bgd, .. } => Optimizer::Bgd(net::Bgd::new(model, bgd.clone())?),
        })
    }

    fn epoch(
        &mut self,
        model: &mut Dcnn,
        data: &net::Data,
        epoch: u32,
        seed: u64,
    ) -> Result<net::EpochStats> {
        Ok(match self {
            Optimizer::Sgd(o) => o.epoch(model, data, epoch as usize, seed)?,
            Optimizer::Bgd(o) => o.epoch(model, data, epoch as usize)?,
        })
    }

    fn state(&self) -> Result<OptimizerState> {
        Ok(match self {
            Optimizer::Sgd(o) => o.state()?,
            Optimizer::Bgd(o) => o.state()?,
        })
    }

    fn set_state(&mut self, model: &Dcnn, state: &OptimizerState) -> Result<()> {
        match self {
            Optimizer::Sgd(o) => o.set_state(model, state)?,
            Optimizer::Bgd(o) => o.set_state(model, state)?,
        }
        Ok(())
    }
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

/// Where a trajectory's training stopped on a non-finite loss
/// ([`net::NetError::Diverged`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// The epoch that diverged (absolute, as the trajectory numbers them); the
    /// epochs before it are stored.
    pub epoch: u32,
    /// The step within that epoch (SGD batch, or BGD chunk).
    pub step: usize,
    /// The non-finite loss.
    pub loss: f64,
}

/// The divergence behind `err`, if training diverged (anywhere in its chain
/// of causes). Since steps are deterministic functions of (weights, state,
/// seed, epoch), running the same trajectory again resumes from the last
/// stored epoch and diverges again at the same epoch and step.
pub fn divergence(err: &anyhow::Error) -> Option<Divergence> {
    err.chain()
        .find_map(|e| match e.downcast_ref::<net::NetError>() {
            Some(net::NetError::Diverged { epoch, step, loss }) => Some(Divergence {
                epoch: u32::try_from(*epoch).unwrap_or(u32::MAX),
                step: *step,
                loss: *loss,
            }),
            _ => None,
        })
}

/// Records the trajectories of one experiment into its store.
pub struct Recorder<'a> {
    store: RefCell<Store>,
    data: &'a ExperimentData,
    evaluator: Evaluator<'a>,
    net: net::NetConfig,
    device: net::tch::Device,
    fingerprint: String,
    written: Cell<usize>,
}

impl<'a> Recorder<'a> {
    /// A recorder writing into `store`; every snapshot carries `fingerprint`.
    pub fn new(
        store: Store,
        data: &'a ExperimentData,
        evaluator: Evaluator<'a>,
        net: net::NetConfig,
        device: net::tch::Device,
        fingerprint: &str,
    ) -> Self {
        Recorder {
            store: RefCell::new(store),
            data,
            evaluator,
            net,
            device,
            fingerprint: fingerprint.to_owned(),
            written: Cell::new(0),
        }
    }

    /// Switches the network that [`Recorder::init`] builds and
    /// [`Recorder::load`] rebuilds snapshots into (e.g. the ReLU net, then its
    /// polynomial twin: the same tensors, another activation). Snapshots do
    /// not record the activation; keep one run identity per network.
    pub fn set_net(&mut self, net: net::NetConfig) {
        self.net = net;
    }

    /// The network snapshots are built into.
    pub fn net(&self) -> &net::NetConfig {
        &self.net
    }

    /// The store (read access).
    pub fn store(&self) -> std::cell::Ref<'_, Store> {
        self.store.borrow()
    }

    /// Snapshots written through this recorder.
    pub fn written(&self) -> usize {
        self.written.get()
    }

    /// The evaluator.
    pub fn evaluator(&self) -> &Evaluator<'a> {
        &self.evaluator
    }

    /// A fresh model of the configured network, seeded.
    pub fn init(&self, seed: u64) -> Result<(Dcnn, Origin)> {
        Ok((
            Dcnn::new(&self.net, self.device, seed)?,
            Origin::Init { seed },
        ))
    }

    /// Evaluates `model` and appends it (with `state`, if any) as `run` at `epoch`.
    pub fn record(
        &self,
        model: &mut Dcnn,
        run: &RunId,
        epoch: u32,
        kind: SnapshotKind,
        origin: &Origin,
        state: Option<&OptimizerState>,
    ) -> Result<SnapshotId> {
        self.record_with(model, run, epoch, kind, origin, state, &[])
    }

    /// [`Recorder::record`] with more metrics stored beside the evaluated ones
    /// (e.g. what the training epoch itself measured).
    #[allow(clippy::too_many_arguments)]
    pub fn record_with(
        &self,
        model: &mut Dcnn,
        run: &RunId,
        epoch: u32,
        kind: SnapshotKind,
        origin: &Origin,
        state: Option<&OptimizerState>,
        more: &[(&str, f64)],
    ) -> Result<SnapshotId> {
        let metrics = self.evaluator.evaluate(model)?;
        self.append(model, &metrics, run, epoch, kind, origin, state, more)
    }

    /// Appends `model`, already evaluated as `metrics`, as `run` at `epoch`.
    #[allow(clippy::too_many_arguments)]
    fn append(
        &self,
        model: &Dcnn,
        metrics: &Metrics,
        run: &RunId,
        epoch: u32,
        kind: SnapshotKind,
        origin: &Origin,
        state: Option<&OptimizerState>,
        more: &[(&str, f64)],
    ) -> Result<SnapshotId> {
        let mut map = metrics.to_map();
        map.extend(more.iter().map(|(k, v)| ((*k).to_owned(), *v)));
        let mut meta = SnapshotMeta::new(run.run_name(), kind)
            .with_epoch(epoch)
            .with_metrics(map)
            .with_extra(IDENTITY_KEY, serde_json::to_string(run)?)
            .with_extra(ORIGIN_KEY, serde_json::to_string(origin)?)
            .with_extra(FINGERPRINT_KEY, self.fingerprint.clone())
            .with_extra(BN_EVAL_KEY, self.evaluator.config().bn.as_str());
        if let Some(p) = origin.parent() {
            meta = meta.with_parent(p);
        }
        let mut tensors = model.export()?;
        if let Some(s) = state {
            tensors.extend(s.momentum.iter().map(|t| NamedTensor {
                name: format!("{OPTIM_PREFIX}{}", t.name),
                shape: t.shape.clone(),
                data: t.data.clone(),
            }));
        }
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
            .with_context(|| format!("recording {} epoch {epoch}", run.run_name()))?;
        self.written.set(self.written.get() + 1);
        tracing::debug!(
            run = %run.run_name(),
            epoch,
            train_error = metrics.train_error,
            test_error = metrics.test_error,
            "recorded"
        );
        Ok(id)
    }

    /// The snapshots of `run` already in the store, by epoch.
    pub fn existing(&self, run: &RunId) -> BTreeMap<u32, SnapshotId> {
        self.store
            .borrow()
            .snapshots()
            .iter()
            .filter(|s| RunId::from_meta(s.meta()).as_ref() == Some(run))
            .filter_map(|s| Some((s.meta().epoch()?, s.id())))
            .collect()
    }

    /// The stored metrics of snapshot `id`.
    pub fn metrics(&self, id: SnapshotId) -> Result<Metrics> {
        let store = self.store.borrow();
        let info = store.get(id)?;
        Metrics::from_map(info.meta().metrics())
            .with_context(|| format!("snapshot {id} has no train/test metrics"))
    }

    /// Rebuilds the model stored as snapshot `id`, and its optimiser state.
    pub fn load_with_state(&self, id: SnapshotId) -> Result<(Dcnn, OptimizerState)> {
        let snap = self.store.borrow().read_snapshot(id)?;
        let mut model_tensors = Vec::new();
        let mut state = OptimizerState::default();
        for t in snap {
            let nt = NamedTensor {
                name: t.name,
                shape: t.shape,
                data: t.data,
            };
            match nt.name.strip_prefix(OPTIM_PREFIX) {
                Some(rest) => state.momentum.push(NamedTensor {
                    name: rest.to_owned(),
                    ..nt
                }),
                None => model_tensors.push(nt),
            }
        }
        let mut model = Dcnn::new(&self.net, self.device, 0)?;
        model
            .import(&model_tensors)
            .with_context(|| format!("snapshot {id} does not fit the configured network"))?;
        Ok((model, state))
    }

    /// Rebuilds the model stored as snapshot `id`.
    pub fn load(&self, id: SnapshotId) -> Result<Dcnn> {
        Ok(self.load_with_state(id)?.0)
    }

    /// The model of snapshot `parent` with Gaussian noise added (see
    /// [`net::perturb_with`]), and its origin.
    pub fn perturbed(
        &self,
        parent: SnapshotId,
        spec: &net::PerturbSpec,
        seed: u64,
    ) -> Result<(Dcnn, Origin)> {
        let mut model = self.load(parent)?;
        net::perturb_with(&mut model, spec, seed)?;
        Ok((
            model,
            Origin::Perturbed {
                parent,
                alpha: spec.alpha,
                seed,
                biases: spec.biases,
            },
        ))
    }

    /// The trajectory `run`: its first snapshot (at `start_epoch`) comes from
    /// `start` (called only if the store has none yet), then one snapshot per
    /// epoch of `phases`, run one after the other (each phase starts with
    /// fresh optimiser state). Resumes from the last stored epoch with its
    /// optimiser state. SGD epoch `e` shuffles with `(seed, e)`. Returns the
    /// snapshot ids by epoch.
    pub fn trajectory(
        &self,
        run: &RunId,
        start_epoch: u32,
        phases: &[Phase],
        seed: u64,
        start: impl FnOnce() -> Result<(Dcnn, Origin)>,
    ) -> Result<BTreeMap<u32, SnapshotId>> {
        self.trajectory_until(run, start_epoch, phases, seed, start, |_| false)
    }

    /// [`Recorder::trajectory`] that ends early, at the first recorded epoch
    /// (the start included) whose evaluated metrics satisfy `stop` (e.g.
    /// training error at most 1%). The rule is checked on the stored metrics,
    /// so a resumed run stops at the same epoch.
    pub fn trajectory_until(
        &self,
        run: &RunId,
        start_epoch: u32,
        phases: &[Phase],
        seed: u64,
        start: impl FnOnce() -> Result<(Dcnn, Origin)>,
        stop: impl Fn(&Metrics) -> bool,
    ) -> Result<BTreeMap<u32, SnapshotId>> {
        let total: u32 = phases.iter().map(Phase::epochs).sum();
        let end_epoch = start_epoch + total;
        let name = run.run_name();
        let mut ids = self.existing(run);
        let store_dir = self.store.borrow().dir().to_path_buf();
        let bad = |reason: String| ExperimentError::Store {
            store: store_dir.clone(),
            reason,
        };
        if let Some((&first, _)) = ids.iter().next() {
            let last = *ids.keys().next_back().unwrap_or(&first);
            if first != start_epoch || last > end_epoch || ids.len() as u32 != last - first + 1 {
                return Err(bad(format!(
                    "`{name}` holds epochs {first}..={last} ({} snapshots), which is not a prefix of the planned {start_epoch}..={end_epoch}",
                    ids.len()
                ))
                .into());
            }
        }
        let bar = progress(u64::from(total + 1), &name);
        // Phase boundaries, as absolute epochs: phase i covers (b[i], b[i + 1]].
        let mut bounds = vec![start_epoch];
        for p in phases {
            bounds.push(bounds[bounds.len() - 1] + p.epochs());
        }
        let phase_of = |e: u32| -> usize {
            (0..phases.len())
                .find(|&i| e > bounds[i] && e <= bounds[i + 1])
                .unwrap_or(0)
        };
        let mut done = match ids.iter().next_back() {
            Some((_, &id)) => stop(&self.metrics(id)?),
            None => false,
        };
        let (mut model, mut epoch, mut state) = match ids.iter().next_back() {
            Some((&e, &id)) => {
                if e < end_epoch && !done {
                    tracing::info!(run = %name, epoch = e, "resuming");
                }
                let (m, s) = self.load_with_state(id)?;
                (m, e, Some(s))
            }
            None => {
                let (mut model, origin) = start()?;
                let kind = match origin {
                    Origin::Init { .. } => SnapshotKind::Initial,
                    Origin::Perturbed { .. } => SnapshotKind::Perturbed,
                    Origin::Interpolated { .. } => SnapshotKind::Interpolated,
                    // A copy holds weights reached by training.
                    Origin::Trained { .. } | Origin::Copied { .. } => SnapshotKind::Trained,
                    Origin::Imported { .. } => SnapshotKind::Other(IMPORTED_KIND.to_owned()),
                };
                let id = self.record(&mut model, run, start_epoch, kind, &origin, None)?;
                ids.insert(start_epoch, id);
                done = stop(&self.metrics(id)?);
                (model, start_epoch, None)
            }
        };
        bar.set_position(u64::from(epoch - start_epoch + 1));
        let mut opt: Option<(usize, Optimizer)> = None;
        while epoch < end_epoch && !done {
            epoch += 1;
            let p = phase_of(epoch);
            if opt.as_ref().map(|(i, _)| *i) != Some(p) {
                let mut o = Optimizer::new(&phases[p], &model)?;
                // Continuing inside a phase: restore the stored optimiser state.
                if epoch - 1 > bounds[p] {
                    if let Some(s) = state.take() {
                        o.set_state(&model, &s).with_context(|| {
                            format!(
                                "restoring the optimiser state of `{name}` at epoch {}",
                                epoch - 1
                            )
                        })?;
                    }
                }
                opt = Some((p, o));
            }
            let Some((_, o)) = opt.as_mut() else {
                continue;
            };
            let stats = o
                .epoch(&mut model, &self.data.train, epoch, seed)
                .with_context(|| format!("training `{name}` epoch {epoch}"))?;
            let st = o.state()?;
            let prev = ids.get(&(epoch - 1)).copied().unwrap_or(SnapshotId(0));
            // What the epoch itself measured: its mean training loss (train-mode
            // BN, weights before each step) and, for a polynomial activation, the
            // share of pre-activations outside the fitted interval.
            let pre = (self.data.train_len() as u64) * model.preactivations_per_example();
            let out_share = if pre > 0 {
                stats.activation_out_of_range as f64 / pre as f64
            } else {
                0.0
            };
            let id = self.record_with(
                &mut model,
                run,
                epoch,
                SnapshotKind::Trained,
                &Origin::Trained { previous: prev },
                (!st.momentum.is_empty()).then_some(&st),
                &[(EPOCH_LOSS, stats.mean_loss), (OUT_OF_INTERVAL, out_share)],
            )?;
            ids.insert(epoch, id);
            done = stop(&self.metrics(id)?);
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(ids)
    }

    /// The models `(1 - t) a + t b` for each `t` in `ts`, evaluated and
    /// stored as run `run`, point `i` as epoch `i` (its origin records `a`,
    /// `b` and `t`). Points already stored are checked to be the same
    /// interpolation and not recomputed. Returns `(t, snapshot)` by point.
    pub fn line(
        &self,
        run: &RunId,
        a: SnapshotId,
        b: SnapshotId,
        ts: &[f64],
    ) -> Result<Vec<(f64, SnapshotId)>> {
        let ids = self.existing(run);
        let name = run.run_name();
        let todo = ts.len().saturating_sub(ids.len()) as u64;
        let bar = progress(todo, &name);
        let (mut ma, mut mb) = (None, None);
        let mut out = Vec::with_capacity(ts.len());
        for (i, &t) in ts.iter().enumerate() {
            let epoch = u32::try_from(i)?;
            let want = Origin::Interpolated { a, b, t };
            if let Some(&id) = ids.get(&epoch) {
                let store = self.store.borrow();
                let have = Origin::from_meta(store.get(id)?.meta());
                // t went through JSON: compare it within rounding.
                let same = matches!(have, Some(Origin::Interpolated { a: ha, b: hb, t: ht })
                    if ha == a && hb == b && (ht - t).abs() <= 1e-12);
                if !same {
                    let dir = store.dir().to_path_buf();
                    return Err(ExperimentError::Store {
                        store: dir,
                        reason: format!("`{name}` point {i} is {have:?}, not the planned {want:?}"),
                    }
                    .into());
                }
                out.push((t, id));
                continue;
            }
            if ma.is_none() {
                ma = Some(self.load(a)?);
                mb = Some(self.load(b)?);
            }
            let (Some(x), Some(y)) = (ma.as_ref(), mb.as_ref()) else {
                continue;
            };
            let (m, metrics) = self.evaluator.between(x, y, t, net::Lerp::F32)?;
            let id = self.append(
                &m,
                &metrics,
                run,
                epoch,
                SnapshotKind::Interpolated,
                &want,
                None,
                &[],
            )?;
            out.push((t, id));
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(out)
    }

    /// `(1 - t) a + t b` at every epoch both trajectories have, as run `run`
    /// (skipping epochs already stored).
    pub fn interpolated_trajectory(
        &self,
        run: &RunId,
        a: &BTreeMap<u32, SnapshotId>,
        b: &BTreeMap<u32, SnapshotId>,
        t: f64,
    ) -> Result<BTreeMap<u32, SnapshotId>> {
        let mut ids = self.existing(run);
        let todo: Vec<(u32, SnapshotId, SnapshotId)> = b
            .iter()
            .filter(|(e, _)| !ids.contains_key(e))
            .filter_map(|(e, bid)| Some((*e, *a.get(e)?, *bid)))
            .collect();
        let name = run.run_name();
        let bar = progress(todo.len() as u64, &name);
        for (epoch, aid, bid) in todo {
            let ma = self.load(aid)?;
            let mb = self.load(bid)?;
            let (m, metrics) = self.evaluator.between(&ma, &mb, t, net::Lerp::F32)?;
            let origin = Origin::Interpolated { a: aid, b: bid, t };
            let id = self.append(
                &m,
                &metrics,
                run,
                epoch,
                SnapshotKind::Interpolated,
                &origin,
                None,
                &[],
            )?;
            ids.insert(epoch, id);
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(ids)
    }
}
