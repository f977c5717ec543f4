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

fn evaluate_mode(
    model: &Dcnn,
    data: &Data,
    chunk_size: usize,
    mode: BnMode,
) -> Result<Evaluation, NetError> {
    check(model, data, chunk_size)?;
    let _guard = tch::no_grad_guard();
    let n = data.len();
    let mut loss_sum = 0.0;
    let mut correct = Vec::with_capacity(n);
    for start in (0..n).step_by(chunk_size) {
        let len = chunk_size.min(n - start) as i64;
        let xs = data.images.f_narrow(0, start as i64, len)?;
        let ys = data.labels.f_narrow(0, start as i64, len)?;
        let logits = model.forward_mode(&xs, mode, None)?;
        let loss = logits.f_cross_entropy_loss(&ys, None::<&Tensor>, Reduction::Sum, -100, 0.0)?;
        loss_sum += loss.f_double_value(&[])?;
        let hit = logits
            .f_argmax(1, false)?
            .f_eq_tensor(&ys)?
            .f_to_kind(Kind::Uint8)?
            .f_to_device(tch::Device::Cpu)?;
        let mut buf = vec![0u8; len as usize];
        hit.f_copy_data_u8(&mut buf, len as usize)?;
        correct.extend(buf.iter().map(|&b| b != 0));
    }
    let wrong = correct.iter().filter(|&&c| !c).count();
    Ok(Evaluation {
        loss: loss_sum / n as f64,
        error_percent: 100.0 * wrong as f64 / n as f64,
        correct,
    })
}

/// Replaces every BN layer's running statistics with the exact statistics of
/// its input over the whole of `data`, as the eval-mode network sees them.
///
/// Layer by layer (2, 3, ...): the input of BN layer `l` is computed with
/// layers before `l` in eval mode, i.e. normalised with their freshly
/// re-estimated statistics, and its per-channel mean and unbiased variance
/// over all `N * H * W` positions are accumulated in `f64` (Chan's parallel
/// update over chunks of `chunk_size`). This costs about three forward passes
/// of the paper network and is independent of the chunk size up to rounding.
/// No gradients are recorded; weights are untouched.
pub fn reestimate_bn(model: &mut Dcnn, data: &Data, chunk_size: usize) -> Result<(), NetError> {
    check(model, data, chunk_size)?;
    let _guard = tch::no_grad_guard();
    let n = data.len();
    let hidden = model.layers.len() - 1;
    for layer in 0..hidden {
        let mut count = 0f64;
        let mut mean: Vec<f64> = Vec::new();
        let mut m2: Vec<f64> = Vec::new();
        for start in (0..n).step_by(chunk_size) {
            let len = chunk_size.min(n - start) as i64;
            let mut h = data.images.f_narrow(0, start as i64, len)?;
            for j in 0..layer {
                let z = model.conv(j, &h)?;
                let z = model.bn(j, &z, false)?;
                h = model.activate(&z, None)?;
            }
            let z = model.conv(layer, &h)?.f_to_kind(Kind::Double)?;
            let size = z.size();
            let m = (size[0] * size[2] * size[3]) as f64;
            let dims = [0i64, 2, 3];
            let cm: Vec<f64> =
                Vec::<f64>::try_from(&z.f_mean_dim(dims.as_slice(), false, None::<Kind>)?)?;
            let cv: Vec<f64> =
                Vec::<f64>::try_from(&z.f_var_dim(dims.as_slice(), false, false)?)?;
            if mean.is_empty() {
                mean = vec![0.0; cm.len()];
                m2 = vec![0.0; cm.len()];
            }
            let total = count + m;
            for c in 0..cm.len() {
                let delta = cm[c] - mean[c];
                mean[c] += delta * m / total;
                m2[c] += cv[c] * m + delta * delta * count * m / total;
            }
            count = total;
        }
        if count < 2.0 {
            return Err(NetError::Data(
                "BN re-estimation needs at least two values per channel".to_string(),
            ));
        }
        let var: Vec<f32> = m2.iter().map(|v| (v / (count - 1.0)) as f32).collect();
        let mean: Vec<f32> = mean.iter().map(|&v| v as f32).collect();
        let device = model.device();
        if let Some(bn) = model.layers[layer].bn.as_mut() {
            bn.mean
                .f_copy_(&Tensor::f_from_slice(&mean)?.f_to_device(device)?)?;
            bn.var
                .f_copy_(&Tensor::f_from_slice(&var)?.f_to_device(device)?)?;
        }
    }
    Ok(())
}
