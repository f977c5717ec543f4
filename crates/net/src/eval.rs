//! Evaluation and BN re-estimation.
use tch::{Kind, Reduction, Tensor};

use crate::model::BnMode;
use crate::{Data, Dcnn, NetError};

/// Loss and error of a model on a whole set ([`evaluate`]: eval mode;
/// [`evaluate_batch_stats`]: BN with batch statistics).
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean softmax cross-entropy.
    pub loss: f64,
    /// Classification error in percent.
    pub error_percent: f64,
    /// Per example (in data order): whether the arg-max class is the label.
    pub correct: Vec<bool>,
}

fn check(model: &Dcnn, data: &Data, chunk_size: usize) -> Result<(), NetError> {
    if chunk_size == 0 {
        return Err(NetError::Config {
            field: "chunk_size".to_string(),
            reason: "must be positive".to_string(),
        });
    }
    if data.is_empty() {
        return Err(NetError::Data(
            "cannot evaluate on an empty set".to_string(),
        ));
    }
    if data.device() != model.device() {
        return Err(NetError::Data(format!(
            "data are on {:?} but the model is on {:?}",
            data.device(),
            model.device()
        )));
    }
    Ok(())
}

/// Evaluates `model` on `data` in chunks of `chunk_size`, in eval mode (BN
/// running statistics) without gradients.
pub fn evaluate(model: &Dcnn, data: &Data, chunk_size: usize) -> Result<Evaluation, NetError> {
    evaluate_mode(model, data, chunk_size, BnMode::Running)
}

/// Evaluates `model` on `data` with BN in training mode: chunk after chunk
/// of `chunk_size` examples (in data order), each normalised with its own
/// batch statistics (mean and biased variance, as a training step sees it),
/// without gradients. The model's BN running statistics are neither used
/// nor changed. Loss and error therefore depend on the chunk size (with
/// `chunk_size >= data.len()`, the whole set is one batch).
///
/// A hidden layer whose output is `1 x 1` needs chunks of at least two
/// examples (libtorch raises otherwise; the paper network's last BN layer
/// is `2 x 2`).
pub fn evaluate_batch_stats(
    model: &Dcnn,
    data: &Data,
    chunk_size: usize,
) -> Result<Evaluation, NetError> {
    evaluate_mode(model, data, chunk_size, BnMode::BatchOnly)
}

/// The loss sums and per-example verdicts of a set's chunks, kept on the
/// model's device until [`Scores::finish`] copies them to the host in one
/// transfer (on a GPU, one synchronisation per set instead of two per chunk).
/// The total is the same sum, in the same order and in `f64`, as adding each
/// chunk's `f32` sum on the host, so the result is bit-identical to that.
#[derive(Default)]
struct Scores {
    /// Per chunk: the summed cross-entropy (a scalar of the logits' kind).
    losses: Vec<Tensor>,
    /// Per chunk: whether each example's arg-max class is its label (`u8`).
    hits: Vec<Tensor>,
}

impl Scores {
    /// Adds one chunk: the cross-entropy of `logits` against `ys`, summed,
    /// and whether the arg-max class is the label, per example.
    fn add(&mut self, logits: &Tensor, ys: &Tensor) -> Result<(), NetError> {
        let loss = logits.f_cross_entropy_loss(ys, None::<&Tensor>, Reduction::Sum, -100, 0.0)?;
        let hit = logits
            .f_argmax(1, false)?
            .f_eq_tensor(ys)?
            .f_to_kind(Kind::Uint8)?;
        self.losses.push(loss.f_reshape([1])?);
        self.hits.push(hit);
        Ok(())
    }

    /// Mean loss and error over every chunk added, in data order.
    fn finish(self) -> Result<Evaluation, NetError> {
        if self.losses.is_empty() {
            return Ok(finish(0.0, Vec::new()));
        }
        let losses = Tensor::f_cat(&self.losses, 0)?
            .f_to_kind(Kind::Double)?
            .f_to_device(tch::Device::Cpu)?;
        let losses = Vec::<f64>::try_from(&losses)?;
        let hits = Tensor::f_cat(&self.hits, 0)?.f_to_device(tch::Device::Cpu)?;
        let len = usize::try_from(hits.size()[0]).unwrap_or(0);
        let mut buf = vec![0u8; len];
        hits.f_copy_data_u8(&mut buf, len)?;
        // Chunk by chunk, in order, as the per-chunk host sums were.
        let mut loss_sum = 0.0;
        for l in losses {
            loss_sum += l;
        }
        Ok(finish(loss_sum, buf.iter().map(|&b| b != 0).collect()))
    }
}

fn finish(loss_sum: f64, correct: Vec<bool>) -> Evaluation {
    let n = correct.len().max(1);
    let wrong = correct.iter().filter(|&&c| !c).count();
    Evaluation {
        loss: loss_sum / n as f64,
        error_percent: 100.0 * wrong as f64 / n as f64,
        correct,
    }
}

fn evaluate_mode(
    model: &Dcnn,
    data: &Data,
    chunk_size: usize,
    mode: BnMode,
) -> Result<Evaluation, NetError> {
    check(model, data, chunk_size)?;
    let _guard = tch::no_grad_guard();
    let n = data.len();
    let mut scores = Scores::default();
    for start in (0..n).step_by(chunk_size) {
        let len = chunk_size.min(n - start) as i64;
        let xs = data.images.f_narrow(0, start as i64, len)?;
        let ys = data.labels.f_narrow(0, start as i64, len)?;
        let logits = model.forward_mode(&xs, mode, None)?;
        scores.add(&logits, &ys)?;
    }
    scores.finish()
}

/// Rows (positions) per block of [`ChannelStats::add`].
const STATS_BLOCK: i64 = 64;

/// Per-channel mean and variance accumulated over chunks in `f64` (Chan's
/// parallel update); [`reestimate_bn`] and [`reestimate_and_evaluate`]
/// share it, so their statistics are bit-identical.
///
/// The blocks' partial results stay on the model's device until
/// [`ChannelStats::merge`] copies them all to the host in one transfer per
/// layer (on a GPU, one synchronisation per layer instead of one or two per
/// chunk); the host then combines them in the order they were added, so the
/// statistics are the same numbers as when each chunk was combined at once.
#[derive(Default)]
struct ChannelStats {
    /// Per part (in order): its number of values per channel, and its
    /// per-channel mean and sum of squared deviations (`f64`, `[C]`, on the
    /// device).
    parts: Vec<(f64, Tensor, Tensor)>,
}

/// [`ChannelStats`] merged on the host.
struct Merged {
    count: f64,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl ChannelStats {
    /// Adds one chunk of pre-BN outputs `[n, C, H, W]`.
    ///
    /// The chunk's `n * H * W` values per channel are cut into blocks of
    /// [`STATS_BLOCK`] rows; each block's mean and sum of squared deviations
    /// are computed in `f32` (vectorised over channels, on the channels-last
    /// memory the convolutions produce) and the blocks are combined in `f64`
    /// (Chan et al.'s pairwise formula), then the chunks likewise. Converting
    /// whole activations to `f64` first was the slowest part of an
    /// evaluation; this keeps the statistics within a few `f32` ulps of the
    /// exact `f64` ones (each block sums at most 64 values in `f32`).
    fn add(&mut self, z: &Tensor) -> Result<(), NetError> {
        let size = z.size();
        let channels = size[1];
        let x = z.f_permute([0, 2, 3, 1])?.f_reshape([-1, channels])?;
        let rows = x.size()[0];
        let full = rows / STATS_BLOCK;
        let parts = &mut self.parts;
        let mut block = |xs: &Tensor, blocks: i64, len: i64| -> Result<(), NetError> {
            let xb = xs.f_view([blocks, len, channels])?;
            let mb = xb.f_mean_dim([1i64].as_slice(), true, None::<Kind>)?;
            let m2b = xb
                .f_sub(&mb)?
                .f_square()?
                .f_sum_dim_intlist([1i64].as_slice(), false, None::<Kind>)?
                .f_to_kind(Kind::Double)?;
            let mb = mb.f_squeeze_dim(1)?.f_to_kind(Kind::Double)?;
            let mean = mb.f_mean_dim([0i64].as_slice(), false, None::<Kind>)?;
            let m2 = m2b
                .f_sum_dim_intlist([0i64].as_slice(), false, None::<Kind>)?
                .f_add(
                    &mb.f_sub(&mean)?
                        .f_square()?
                        .f_sum_dim_intlist([0i64].as_slice(), false, None::<Kind>)?
                        .f_mul_scalar(len as f64)?,
                )?;
            parts.push(((blocks * len) as f64, mean, m2));
            Ok(())
        };
        if full > 0 {
            block(&x.f_narrow(0, 0, full * STATS_BLOCK)?, full, STATS_BLOCK)?;
        }
        let rest = rows - full * STATS_BLOCK;
        if rest > 0 {
            block(&x.f_narrow(0, full * STATS_BLOCK, rest)?, 1, rest)?;
        }
        Ok(())
    }

    /// Copies every part to the host (one transfer) and combines them in
    /// order with Chan et al.'s pairwise formula.
    fn merge(&self) -> Result<Merged, NetError> {
        let mut merged = Merged {
            count: 0.0,
            mean: Vec::new(),
            m2: Vec::new(),
        };
        if self.parts.is_empty() {
            return Ok(merged);
        }
        let channels = usize::try_from(self.parts[0].1.size()[0]).unwrap_or(0);
        let stacked: Vec<Tensor> = self
            .parts
            .iter()
            .flat_map(|(_, mean, m2)| [mean.shallow_clone(), m2.shallow_clone()])
            .collect();
        let host = Tensor::f_cat(&stacked, 0)?.f_to_device(tch::Device::Cpu)?;
        let host = Vec::<f64>::try_from(&host)?;
        merged.mean = vec![0.0; channels];
        merged.m2 = vec![0.0; channels];
        for (i, (m, _, _)) in self.parts.iter().enumerate() {
            let m = *m;
            let cm = &host[2 * i * channels..(2 * i + 1) * channels];
            let cm2 = &host[(2 * i + 1) * channels..(2 * i + 2) * channels];
            let total = merged.count + m;
            for c in 0..channels {
                let delta = cm[c] - merged.mean[c];
                merged.mean[c] += delta * m / total;
                merged.m2[c] += cm2[c] + delta * delta * merged.count * m / total;
            }
            merged.count = total;
        }
        Ok(merged)
    }

    /// Writes the mean and unbiased variance into hidden layer `layer`'s BN.
    fn store(&self, model: &mut Dcnn, layer: usize) -> Result<(), NetError> {
        let merged = self.merge()?;
        if merged.count < 2.0 {
            return Err(NetError::Data(
                "BN re-estimation needs at least two values per channel".to_string(),
            ));
        }
        let var: Vec<f32> = merged
            .m2
            .iter()
            .map(|v| (v / (merged.count - 1.0)) as f32)
            .collect();
        let mean: Vec<f32> = merged.mean.iter().map(|&v| v as f32).collect();
        let device = model.device();
        if let Some(bn) = model.layers[layer].bn.as_mut() {
            bn.mean.f_copy_(&crate::model::slice_on(&mean, device)?)?;
            bn.var.f_copy_(&crate::model::slice_on(&var, device)?)?;
        }
        Ok(())
    }
}

/// Default memory budget of [`reestimate_and_evaluate`]'s activation cache
/// (bytes); `LANDSCAPE_EVAL_CACHE_MB` overrides it.
pub const DEFAULT_EVAL_CACHE_BYTES: usize = 3 << 30;

/// The activation-cache budget: `LANDSCAPE_EVAL_CACHE_MB` (MiB) if set and
/// valid, else [`DEFAULT_EVAL_CACHE_BYTES`].
pub fn eval_cache_budget() -> usize {
    std::env::var("LANDSCAPE_EVAL_CACHE_MB")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map_or(DEFAULT_EVAL_CACHE_BYTES, |mb| mb.saturating_mul(1 << 20))
}

/// Bytes the activation cache of [`reestimate_and_evaluate`] needs on `data`:
/// the largest hidden layer's output over the whole set, in `f32`.
pub fn eval_cache_bytes(model: &Dcnn, data: &Data) -> usize {
    let mut size = crate::config::IN_SIZE as usize;
    let mut largest = 0usize;
    for &w in &model.config().widths {
        size = size.div_ceil(2);
        largest = largest.max(w as usize * size * size);
    }
    largest * data.len() * std::mem::size_of::<f32>()
}

/// [`reestimate_bn`] followed by [`evaluate`] on the same set, in one pass
/// over the data instead of `hidden layers + 1`.
///
/// [`reestimate_bn`] recomputes the layers below each BN layer from the
/// images (layer 2 four times for the paper network, then once more to
/// evaluate). Here every chunk's activations are kept between layers: layer
/// `l`'s pre-BN outputs of all chunks are computed from the cached inputs,
/// their statistics accumulated, and normalised with the fresh statistics to
/// become layer `l + 1`'s cached inputs; the last layer's outputs give the
/// loss and error. The operations, chunks and accumulation order are those of
/// the two functions it replaces, so the statistics and the evaluation are
/// bit-identical to theirs (same machine and threads). It needs memory for
/// one layer's activations over the whole set ([`eval_cache_bytes`]); above
/// `cache_budget` bytes it runs the two functions instead (same result).
///
/// On a CUDA device the budget is also at most half the GPU's free memory
/// ([`crate::device::cuda_free_bytes`], when it can be read), and a CUDA
/// out-of-memory error in the one-pass path falls back to the two functions
/// (which recompute every layer's statistics, so the result is theirs)
/// instead of ending the run.
pub fn reestimate_and_evaluate(
    model: &mut Dcnn,
    data: &Data,
    chunk_size: usize,
    cache_budget: usize,
) -> Result<Evaluation, NetError> {
    check(model, data, chunk_size)?;
    let device = data.device();
    let budget = match device {
        tch::Device::Cuda(i) => crate::device::cuda_free_bytes(i)
            .map_or(cache_budget, |free| cache_budget.min(free / 2)),
        _ => cache_budget,
    };
    if eval_cache_bytes(model, data) > budget {
        tracing::debug!(
            needed = eval_cache_bytes(model, data),
            budget,
            "activation cache over budget: re-estimating layer by layer"
        );
        reestimate_bn(model, data, chunk_size)?;
        return evaluate(model, data, chunk_size);
    }
    match one_pass(model, data, chunk_size) {
        Err(NetError::Torch(e)) if device.is_cuda() && is_out_of_memory(&e) => {
            tracing::warn!(
                needed = eval_cache_bytes(model, data),
                "CUDA out of memory in the one-pass evaluation: re-estimating layer by layer"
            );
            reestimate_bn(model, data, chunk_size)?;
            evaluate(model, data, chunk_size)
        }
        other => other,
    }
}

/// Whether a libtorch error is CUDA's out-of-memory error.
pub(crate) fn is_out_of_memory(e: &tch::TchError) -> bool {
    let text = e.to_string();
    text.contains("CUDA out of memory") || text.contains("OutOfMemoryError")
}

/// The one-pass body of [`reestimate_and_evaluate`] (cache within budget).
fn one_pass(model: &mut Dcnn, data: &Data, chunk_size: usize) -> Result<Evaluation, NetError> {
    let _guard = tch::no_grad_guard();
    let n = data.len();
    let hidden = model.layers.len() - 1;
    let mut cache: Vec<Tensor> = (0..n)
        .step_by(chunk_size)
        .map(|start| {
            let len = chunk_size.min(n - start) as i64;
            data.images.f_narrow(0, start as i64, len)
        })
        .collect::<Result<_, _>>()?;
    for layer in 0..hidden {
        let mut stats = ChannelStats::default();
        for h in cache.iter_mut() {
            let z = model.conv(layer, h)?;
            stats.add(&z)?;
            *h = z;
        }
        stats.store(model, layer)?;
        for h in cache.iter_mut() {
            let z = model.bn_mode(layer, h, BnMode::Running)?;
            *h = model.activate(&z, None)?;
        }
    }
    let mut scores = Scores::default();
    for (i, h) in cache.iter().enumerate() {
        let start = (i * chunk_size) as i64;
        let len = h.size()[0];
        let ys = data.labels.f_narrow(0, start, len)?;
        let logits = model.head(h)?;
        scores.add(&logits, &ys)?;
    }
    scores.finish()
}

/// Replaces every BN layer's running statistics with the exact statistics of
/// its input over the whole of `data`, as the eval-mode network sees them.
///
/// Layer by layer (2, 3, ...): the input of BN layer `l` is computed with
/// layers before `l` in eval mode, i.e. normalised with their freshly
/// re-estimated statistics, and its per-channel mean and unbiased variance
/// over all `N * H * W` positions are accumulated in `f64` (Chan's parallel
/// update over blocks of 64 positions, each computed in `f32`, and over
/// chunks of `chunk_size`; see `ChannelStats::add`). This costs about three forward passes
/// of the paper network and is independent of the chunk size up to rounding.
/// No gradients are recorded; weights are untouched.
pub fn reestimate_bn(model: &mut Dcnn, data: &Data, chunk_size: usize) -> Result<(), NetError> {
    check(model, data, chunk_size)?;
    let _guard = tch::no_grad_guard();
    let n = data.len();
    let hidden = model.layers.len() - 1;
    for layer in 0..hidden {
        let mut stats = ChannelStats::default();
        for start in (0..n).step_by(chunk_size) {
            let len = chunk_size.min(n - start) as i64;
            let mut h = data.images.f_narrow(0, start as i64, len)?;
            for j in 0..layer {
                let z = model.conv(j, &h)?;
                let z = model.bn(j, &z, false)?;
                h = model.activate(&z, None)?;
            }
            stats.add(&model.conv(layer, &h)?)?;
        }
        stats.store(model, layer)?;
    }
    Ok(())
}
