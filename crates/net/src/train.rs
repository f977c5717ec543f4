//! Training: mini-batch SGD, full-batch gradient descent and schedules.
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, Tensor};

use crate::model::{tensor_from, tensor_values};
use crate::{Activation, Data, Dcnn, NamedTensor, NetError};

/// Mini-batch SGD settings (PyTorch's `torch.optim.SGD` update rule:
/// `g += wd * p; buf = momentum * buf + g; p -= lr * buf`, no dampening).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SgdConfig {
    /// Examples per step (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f64,
    /// Momentum (0 = plain SGD).
    pub momentum: f64,
    /// L2 weight decay added to the gradient.
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            batch_size: 100,
            lr: 0.01,
            momentum: 0.0,
            weight_decay: 0.0,
        }
    }
}

/// Full-batch gradient descent settings, as the paper defines it: one step
/// per epoch on the gradient of the mean loss over all training images.
/// Batch normalisation sees the whole batch (exact statistics over all `N`
/// images, one forward pass) unless `ghost_batch` asks for per-chunk
/// statistics to bound memory: the gradient is then accumulated over chunks
/// of `ghost_batch` examples, each normalised with its own BN batch
/// statistics (see the crate docs).
///
/// This is also the `bgd` table of the experiments' TOML configurations (and
/// of their fingerprints), so its fields, their order and the default
/// learning rate (0.5, the experiments' tuned value) are part of the stored
/// format.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BgdConfig {
    /// Learning rate.
    pub lr: f64,
    /// Momentum (0: plain gradient descent, the paper's BGD).
    pub momentum: f64,
    /// L2 weight decay added to the gradient.
    pub weight_decay: f64,
    /// BN ghost-batch size (and forward chunk). Absent: one batch of all images.
    pub ghost_batch: Option<usize>,
}

impl Default for BgdConfig {
    fn default() -> Self {
        Self {
            lr: 0.5,
            momentum: 0.0,
            weight_decay: 0.0,
            ghost_batch: None,
        }
    }
}

impl BgdConfig {
    /// Examples per forward/backward chunk on a set of `n` examples: the
    /// ghost batch, or all `n` at once.
    pub fn chunk_size(&self, n: usize) -> usize {
        self.ghost_batch.unwrap_or(n).max(1)
    }
}

/// What one epoch did.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EpochStats {
    /// The epoch number as passed to the trainer ([`train`] numbers epochs 1, 2, ...).
    pub epoch: usize,
    /// Mean training loss over the epoch's examples, each at the weights
    /// before the step that used it (train-mode BN).
    pub mean_loss: f64,
    /// Optimiser steps taken (batches for SGD, 1 for BGD).
    pub steps: usize,
    /// Pre-activations outside `[-r, r]` of a polynomial activation, summed
    /// over the epoch's forward passes (always 0 for ReLU).
    pub activation_out_of_range: u64,
}

/// One training phase of a [`Schedule`] (and of the experiments' training
/// plans; its serde form is theirs: `{ kind = "sgd", epochs, sgd = {..} }` or
/// `{ kind = "bgd", epochs, bgd = {..} }`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Phase {
    /// Mini-batch SGD (PyTorch's update rule; momentum and weight decay allowed).
    Sgd {
        /// Epochs of this phase.
        epochs: u32,
        /// Settings.
        #[serde(default)]
        sgd: SgdConfig,
    },
    /// Full-batch gradient descent, one step per epoch.
    Bgd {
        /// Epochs (= steps) of this phase.
        epochs: u32,
        /// Settings.
        #[serde(default)]
        bgd: BgdConfig,
    },
}

impl Phase {
    /// Number of epochs of this phase.
    pub fn epochs(&self) -> u32 {
        match self {
            Phase::Sgd { epochs, .. } | Phase::Bgd { epochs, .. } => *epochs,
        }
    }
}

/// A list of phases run one after the other, e.g. 60 SGD epochs then 400 BGD
/// epochs. Serialised as a JSON array of phases.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(transparent)]
pub struct Schedule {
    /// The phases, in order.
    pub phases: Vec<Phase>,
}

impl Schedule {
    /// A schedule from phases.
    pub fn new(phases: Vec<Phase>) -> Self {
        Self { phases }
    }

    /// Total number of epochs.
    pub fn total_epochs(&self) -> usize {
        self.phases.iter().map(|p| p.epochs() as usize).sum()
    }
}

/// The resumable state of an [`Sgd`] or [`Bgd`] optimiser: the momentum
/// buffer of every parameter that has one, under the parameter's export name
/// (`layer2.weight`, `layer2.bias`, ...), in parameter order, with its
/// values copied exactly (`f32` bit patterns).
///
/// A buffer is created by a parameter's first update with momentum, so the
/// state is empty when momentum is 0 or before the first step; a parameter
/// whose buffer does not exist yet is simply absent. Saving it next to the
/// model's [`Dcnn::export`] after an epoch and restoring both (with
/// [`Dcnn::import`] and [`Sgd::set_state`] / [`Bgd::set_state`], or
/// [`train_from_state`]) continues a run bit-identically on the CPU (closely
/// on CUDA, whose kernels are not deterministic run to run).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptimizerState {
    /// Momentum buffers (same names and shapes as the parameters).
    pub momentum: Vec<NamedTensor>,
}

impl OptimizerState {
    /// Whether no buffer is held (momentum 0, or no step taken yet).
    pub fn is_empty(&self) -> bool {
        self.momentum.is_empty()
    }
}

/// The shared update rule and its momentum buffers.
struct Update {
    lr: f64,
    momentum: f64,
    weight_decay: f64,
    /// Names and shapes of the parameters this update was prepared for.
    params: Vec<(String, Vec<usize>)>,
    buffers: Vec<Option<Tensor>>,
}

fn check_hyper(prefix: &str, lr: f64, momentum: f64, weight_decay: f64) -> Result<(), NetError> {
    let bad = |name: &str, v: f64, what: &str| NetError::Config {
        field: format!("{prefix}.{name}"),
        reason: format!("{what}, found {v}"),
    };
    if !(lr.is_finite() && lr > 0.0) {
        return Err(bad("lr", lr, "must be finite and positive"));
    }
    if !(momentum.is_finite() && (0.0..1.0).contains(&momentum)) {
        return Err(bad("momentum", momentum, "must be in [0, 1)"));
    }
    if !(weight_decay.is_finite() && weight_decay >= 0.0) {
        return Err(bad(
            "weight_decay",
            weight_decay,
            "must be finite and non-negative",
        ));
    }
    Ok(())
}

/// Checks a batch or chunk size and the hyper-parameters of section
/// `prefix` (`sgd`/`bgd`), then prepares the update for `model`.
fn checked_update(
    model: &Dcnn,
    prefix: &str,
    size: (&str, usize),
    lr: f64,
    momentum: f64,
    weight_decay: f64,
) -> Result<Update, NetError> {
    if size.1 == 0 {
        return Err(NetError::Config {
            field: format!("{prefix}.{}", size.0),
            reason: "must be positive".to_string(),
        });
    }
    check_hyper(prefix, lr, momentum, weight_decay)?;
    Ok(Update::new(model, lr, momentum, weight_decay))
}

/// Forward pass in training mode and the cross-entropy of `xs` against
/// `ys`, with its value; [`NetError::Diverged`] at (`epoch`, `step`) when the
/// value is not finite (reported per example: divided by `per`).
#[allow(clippy::too_many_arguments)]
fn training_loss(
    model: &Dcnn,
    xs: &Tensor,
    ys: &Tensor,
    count: Option<&mut Tensor>,
    reduction: Reduction,
    epoch: usize,
    step: usize,
    per: f64,
) -> Result<(Tensor, f64), NetError> {
    let logits = model.forward_impl(xs, true, count)?;
    let loss = logits.f_cross_entropy_loss(ys, None::<&Tensor>, reduction, -100, 0.0)?;
    let value = loss.f_double_value(&[])?;
    if !value.is_finite() {
        return Err(NetError::Diverged {
            epoch,
            step,
            loss: value / per,
        });
    }
    Ok((loss, value))
}

impl Update {
    fn new(model: &Dcnn, lr: f64, momentum: f64, weight_decay: f64) -> Self {
        Self {
            lr,
            momentum,
            weight_decay,
            params: model.param_names_shapes(),
            buffers: model.params().iter().map(|_| None).collect(),
        }
    }

    /// Copies of the existing momentum buffers.
    fn state(&self) -> Result<OptimizerState, NetError> {
        let mut momentum = Vec::new();
        for ((name, shape), buf) in self.params.iter().zip(&self.buffers) {
            if let Some(b) = buf {
                momentum.push(NamedTensor {
                    name: name.clone(),
                    shape: shape.clone(),
                    data: tensor_values(b)?,
                });
            }
        }
        Ok(OptimizerState { momentum })
    }

    /// Replaces every momentum buffer with `state` (parameters absent from
    /// it get none) after checking it against `model` and this update.
    /// Nothing changes when a check fails.
    fn set_state(&mut self, model: &Dcnn, state: &OptimizerState) -> Result<(), NetError> {
        let params = model.param_names_shapes();
        if params != self.params {
            let (name, expected, found) = params
                .iter()
                .zip(&self.params)
                .find(|(a, b)| a != b)
                .map(|((n, found), (_, expected))| {
                    (
                        n.clone(),
                        format!("shape {expected:?}"),
                        format!("{found:?}"),
                    )
                })
                .unwrap_or_else(|| {
                    (
                        "(all)".to_string(),
                        format!("{} parameters", self.params.len()),
                        format!("{}", params.len()),
                    )
                });
            return Err(NetError::Tensor {
                name,
                expected: format!("{expected} (the model the optimiser was built for)"),
                found,
            });
        }
        if self.momentum == 0.0 {
            if let Some(t) = state.momentum.first() {
                return Err(NetError::Tensor {
                    name: t.name.clone(),
                    expected: "no momentum buffer (momentum is 0)".to_string(),
                    found: "a momentum buffer".to_string(),
                });
            }
        }
        let device = model.device();
        let live = model.params();
        let mut fresh: Vec<Option<Tensor>> = self.params.iter().map(|_| None).collect();
        for t in &state.momentum {
            let Some(k) = self.params.iter().position(|(n, _)| n == &t.name) else {
                let names: Vec<&str> = self.params.iter().map(|(n, _)| n.as_str()).collect();
                return Err(NetError::Tensor {
                    name: t.name.clone(),
                    expected: format!("a parameter name, one of {names:?}"),
                    found: "no such parameter".to_string(),
                });
            };
            let shape = &self.params[k].1;
            if &t.shape != shape {
                return Err(NetError::Tensor {
                    name: t.name.clone(),
                    expected: format!("momentum buffer of shape {shape:?}"),
                    found: format!("{:?}", t.shape),
                });
            }
            let numel: usize = shape.iter().product();
            if t.data.len() != numel {
                return Err(NetError::Tensor {
                    name: t.name.clone(),
                    expected: format!("{numel} values for shape {shape:?}"),
                    found: format!("{}", t.data.len()),
                });
            }
            if fresh[k].is_some() {
                return Err(NetError::Tensor {
                    name: t.name.clone(),
                    expected: "one momentum buffer".to_string(),
                    found: "two".to_string(),
                });
            }
            let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            let src = tensor_from(&t.data, &dims, device)?;
            // Same memory layout as the parameter (and so as its gradient).
            let mut b = live[k].f_detach()?.f_empty_like()?;
            tch::no_grad(|| b.f_copy_(&src))?;
            fresh[k] = Some(b);
        }
        self.buffers = fresh;
        Ok(())
    }

    /// Applies one step from the accumulated gradients, then zeroes them.
    fn step(&mut self, model: &Dcnn) -> Result<(), NetError> {
        let _guard = tch::no_grad_guard();
        for (p, buf) in model.params().into_iter().zip(self.buffers.iter_mut()) {
            let mut g = p.f_grad()?;
            if !g.defined() {
                continue;
            }
            if self.weight_decay != 0.0 {
                let _ = g.f_add_(&p.f_mul_scalar(self.weight_decay)?)?;
            }
            let mut p = p.shallow_clone();
            if self.momentum != 0.0 {
                let b = match buf {
                    Some(b) => {
                        let _ = b.f_mul_scalar_(self.momentum)?.f_add_(&g)?;
                        b
                    }
                    None => buf.insert(crate::model::deep_copy(&g, false)?),
                };
                let _ = p.f_sub_(&b.f_mul_scalar(self.lr)?)?;
            } else {
                // In place on the gradient: it is zeroed right after.
                let _ = g.f_mul_scalar_(self.lr)?;
                let _ = p.f_sub_(&g)?;
            }
            let _ = g.f_zero_()?;
        }
        Ok(())
    }
}

/// Zeroes every parameter's gradient (where defined).
fn zero_grads(model: &Dcnn) -> Result<(), NetError> {
    let _guard = tch::no_grad_guard();
    for p in model.params() {
        let mut g = p.f_grad()?;
        if g.defined() {
            let _ = g.f_zero_()?;
        }
    }
    Ok(())
}

fn counter(model: &Dcnn) -> Result<Option<Tensor>, NetError> {
    match model.config().activation {
        Activation::Relu => Ok(None),
        Activation::Poly { .. } => Ok(Some(Tensor::f_zeros([], (Kind::Int64, model.device()))?)),
    }
}

fn read_counter(c: &Option<Tensor>) -> Result<u64, NetError> {
    match c {
        None => Ok(0),
        Some(t) => Ok(u64::try_from(t.f_int64_value(&[])?).unwrap_or(0)),
    }
}

fn check_data(model: &Dcnn, data: &Data) -> Result<(), NetError> {
    if data.is_empty() {
        return Err(NetError::Data("cannot train on an empty set".to_string()));
    }
    if data.device() != model.device() {
        return Err(NetError::Data(format!(
            "data are on {:?} but the model is on {:?}",
            data.device(),
            model.device()
        )));
    }
    let bound = data.label_bound()?;
    if bound > model.config().classes {
        return Err(NetError::Data(format!(
            "label {} is out of range for {} classes",
            bound - 1,
            model.config().classes
        )));
    }
    Ok(())
}

/// Mini-batch SGD.
pub struct Sgd {
    cfg: SgdConfig,
    update: Update,
}

impl Sgd {
    /// Validates `cfg` and prepares momentum buffers for `model`.
    pub fn new(model: &Dcnn, cfg: SgdConfig) -> Result<Self, NetError> {
        let update = checked_update(
            model,
            "sgd",
            ("batch_size", cfg.batch_size),
            cfg.lr,
            cfg.momentum,
            cfg.weight_decay,
        )?;
        Ok(Self { cfg, update })
    }

    /// The settings.
    pub fn config(&self) -> &SgdConfig {
        &self.cfg
    }

    /// A copy of the momentum buffers (see [`OptimizerState`]).
    pub fn state(&self) -> Result<OptimizerState, NetError> {
        self.update.state()
    }

    /// Replaces the momentum buffers with `state`, e.g. one saved by
    /// [`Sgd::state`] after an epoch, so that training continues exactly as
    /// it would have. Parameters absent from `state` start without a buffer.
    /// Fails with [`NetError::Tensor`] naming the tensor when a name is not a
    /// parameter of `model`, appears twice, or has the wrong shape or number
    /// of values, when `state` is not empty but momentum is 0, or when
    /// `model` is not shaped like the model this optimiser was built for;
    /// nothing changes then.
    pub fn set_state(&mut self, model: &Dcnn, state: &OptimizerState) -> Result<(), NetError> {
        self.update.set_state(model, state)
    }

    /// One pass over `data` in an order drawn from ChaCha8 seeded with `seed`
    /// on stream `epoch` (so any epoch can be replayed on its own, e.g. when
    /// resuming). Stops with [`NetError::Diverged`] (before updating) when a
    /// batch loss is not finite.
    pub fn epoch(
        &mut self,
        model: &mut Dcnn,
        data: &Data,
        epoch: usize,
        seed: u64,
    ) -> Result<EpochStats, NetError> {
        check_data(model, data)?;
        let n = data.len();
        let mut order: Vec<i64> = (0..n as i64).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(epoch as u64);
        order.shuffle(&mut rng);
        let order = crate::model::slice_on(&order, model.device())?;
        let mut count = counter(model)?;
        let bs = self.cfg.batch_size;
        let mut loss_sum = 0.0;
        let mut steps = 0;
        zero_grads(model)?;
        for (step, start) in (0..n).step_by(bs).enumerate() {
            let len = bs.min(n - start);
            let idx = order.f_narrow(0, start as i64, len as i64)?;
            let xs = data.gather_images(&idx)?;
            let ys = data.labels.f_index_select(0, &idx)?;
            let (loss, value) = training_loss(
                model,
                &xs,
                &ys,
                count.as_mut(),
                Reduction::Mean,
                epoch,
                step,
                1.0,
            )?;
            loss.f_backward()?;
            self.update.step(model)?;
            loss_sum += value * len as f64;
            steps += 1;
        }
        let stats = EpochStats {
            epoch,
            mean_loss: loss_sum / n as f64,
            steps,
            activation_out_of_range: read_counter(&count)?,
        };
        tracing::debug!(epoch, loss = stats.mean_loss, steps, "sgd epoch");
        Ok(stats)
    }
}

impl std::fmt::Debug for Sgd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sgd")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Full-batch gradient descent with chunked gradient accumulation.
pub struct Bgd {
    cfg: BgdConfig,
    update: Update,
}

impl Bgd {
    /// Validates `cfg` and prepares momentum buffers for `model`.
    pub fn new(model: &Dcnn, cfg: BgdConfig) -> Result<Self, NetError> {
        let update = checked_update(
            model,
            "bgd",
            ("ghost_batch", cfg.ghost_batch.unwrap_or(1)),
            cfg.lr,
            cfg.momentum,
            cfg.weight_decay,
        )?;
        Ok(Self { cfg, update })
    }

    /// The settings.
    pub fn config(&self) -> &BgdConfig {
        &self.cfg
    }

    /// A copy of the momentum buffers (see [`OptimizerState`]).
    pub fn state(&self) -> Result<OptimizerState, NetError> {
        self.update.state()
    }

    /// Replaces the momentum buffers with `state`; the same checks as
    /// [`Sgd::set_state`].
    pub fn set_state(&mut self, model: &Dcnn, state: &OptimizerState) -> Result<(), NetError> {
        self.update.set_state(model, state)
    }

    /// One full-batch step: the gradient of `(1/N) sum_i loss_i` accumulated
    /// over chunks taken in data order, then one update. Stops with
    /// [`NetError::Diverged`] (before updating; `step` is the chunk index)
    /// when a chunk's loss is not finite.
    pub fn epoch(
        &mut self,
        model: &mut Dcnn,
        data: &Data,
        epoch: usize,
    ) -> Result<EpochStats, NetError> {
        check_data(model, data)?;
        let n = data.len();
        let mut count = counter(model)?;
        let cs = self.cfg.chunk_size(n);
        let mut loss_sum = 0.0;
        zero_grads(model)?;
        for (chunk, start) in (0..n).step_by(cs).enumerate() {
            let len = cs.min(n - start);
            let xs = data.images.f_narrow(0, start as i64, len as i64)?;
            let ys = data.labels.f_narrow(0, start as i64, len as i64)?;
            let (loss, value) = training_loss(
                model,
                &xs,
                &ys,
                count.as_mut(),
                Reduction::Sum,
                epoch,
                chunk,
                len as f64,
            )?;
            loss.f_div_scalar(n as f64)?.f_backward()?;
            loss_sum += value;
        }
        self.update.step(model)?;
        let stats = EpochStats {
            epoch,
            mean_loss: loss_sum / n as f64,
            steps: 1,
            activation_out_of_range: read_counter(&count)?,
        };
        tracing::debug!(epoch, loss = stats.mean_loss, "bgd epoch");
        Ok(stats)
    }
}

impl std::fmt::Debug for Bgd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bgd")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Runs `schedule` on `model`, numbering epochs 1, 2, ... across phases, and
/// calls `on_epoch(stats, model)` after each (e.g. to snapshot or evaluate;
/// its error stops training). SGD epoch `e` shuffles with `(seed, e)`.
/// Optimiser state (momentum buffers) starts fresh in every phase.
pub fn train<F>(
    model: &mut Dcnn,
    data: &Data,
    schedule: &Schedule,
    seed: u64,
    on_epoch: F,
) -> Result<(), NetError>
where
    F: FnMut(&EpochStats, &Dcnn) -> Result<(), NetError>,
{
    train_from(model, data, schedule, seed, 0, on_epoch)
}

/// [`train`] resuming after `completed` epochs: the first `completed` epochs of
/// the schedule are skipped (the model is assumed to hold their result), so a
/// run stopped after epoch `k` and resumed with `completed = k` (and momentum 0)
/// reproduces the uninterrupted run. With momentum, use [`train_from_state`].
pub fn train_from<F>(
    model: &mut Dcnn,
    data: &Data,
    schedule: &Schedule,
    seed: u64,
    completed: usize,
    mut on_epoch: F,
) -> Result<(), NetError>
where
    F: FnMut(&EpochStats, &Dcnn) -> Result<(), NetError>,
{
    train_from_state(model, data, schedule, seed, completed, None, |s, m, _| {
        on_epoch(s, m)
    })
}

/// The optimiser of the running phase, as [`train_from_state`] shows it to
/// its callback.
pub struct OptimizerView<'a> {
    update: &'a Update,
    phase: usize,
}

impl OptimizerView<'_> {
    /// A copy of the optimiser's momentum buffers after the epoch just run
    /// (what [`train_from_state`] needs to resume after this epoch).
    pub fn state(&self) -> Result<OptimizerState, NetError> {
        self.update.state()
    }

    /// The index of the running phase in the schedule (0-based).
    pub fn phase(&self) -> usize {
        self.phase
    }
}

impl std::fmt::Debug for OptimizerView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OptimizerView")
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

/// [`train_from`] that also restores and exposes the optimiser state, so that
/// runs with momentum resume bit-identically on the CPU (closely on CUDA).
///
/// `state` is the optimiser state saved after epoch `completed` (e.g. with
/// [`OptimizerView::state`] in the callback of the interrupted run): it is
/// loaded into the optimiser of the phase being resumed when epoch
/// `completed + 1` belongs to the same phase as epoch `completed`. When
/// `completed` ends a phase (or is 0) the next phase starts with fresh
/// buffers, as in an uninterrupted run, and `state` is not used. A state that
/// does not fit the model fails with [`NetError::Tensor`] (see
/// [`Sgd::set_state`]) before any epoch runs.
///
/// `on_epoch(stats, model, optimizer)` runs after every epoch; snapshotting
/// `model.export()` and `optimizer.state()` there and passing them back
/// (with `completed` = the snapshot's epoch) continues the run exactly.
pub fn train_from_state<F>(
    model: &mut Dcnn,
    data: &Data,
    schedule: &Schedule,
    seed: u64,
    completed: usize,
    state: Option<&OptimizerState>,
    mut on_epoch: F,
) -> Result<(), NetError>
where
    F: FnMut(&EpochStats, &Dcnn, &OptimizerView<'_>) -> Result<(), NetError>,
{
    let mut epoch = 0usize;
    for (index, phase) in schedule.phases.iter().enumerate() {
        let phase_start = epoch;
        let phase_end = epoch + phase.epochs() as usize;
        if phase_end <= completed {
            epoch = phase_end;
            continue;
        }
        // Resuming inside this phase: its optimiser carries the saved state.
        let resume = if completed > phase_start { state } else { None };
        match phase {
            Phase::Sgd { sgd, .. } => {
                let mut opt = Sgd::new(model, sgd.clone())?;
                if let Some(st) = resume {
                    opt.set_state(model, st)?;
                }
                while epoch < phase_end {
                    epoch += 1;
                    if epoch <= completed {
                        continue;
                    }
                    let stats = opt.epoch(model, data, epoch, seed)?;
                    let view = OptimizerView {
                        update: &opt.update,
                        phase: index,
                    };
                    on_epoch(&stats, model, &view)?;
                }
            }
            Phase::Bgd { bgd, .. } => {
                let mut opt = Bgd::new(model, bgd.clone())?;
                if let Some(st) = resume {
                    opt.set_state(model, st)?;
                }
                while epoch < phase_end {
                    epoch += 1;
                    if epoch <= completed {
                        continue;
                    }
                    let stats = opt.epoch(model, data, epoch)?;
                    let view = OptimizerView {
                        update: &opt.update,
                        phase: index,
                    };
                    on_epoch(&stats, model, &view)?;
                }
            }
        }
    }
    Ok(())
}
