//! The embedding principle (Zhang et al.): a network is embedded in a wider
//! one by splitting a hidden channel, and the wider network computes exactly
//! the same function.
//!
//! Splitting channel `c` of paper layer `L` (a hidden convolution, `2 <= L <
//! last`): the channel's incoming filter and bias are copied to a new last
//! channel of layer `L` (and so are its BN running statistics: BN has no
//! affine parameters here, so both copies are normalised identically in any
//! mode), and the channel's outgoing weights in layer `L + 1` are shared,
//! `alpha` of them staying with `c` and `1 - alpha` going to the copy. Every
//! output is unchanged; the gradient of the wide network is the narrow one's
//! mapped through the split (the copies' incoming gradients are `alpha` and
//! `1 - alpha` times the narrow channel's, their outgoing gradients both equal
//! the narrow one's), so a critical point stays critical.
use crate::model::{NamedTensor, FIRST_LAYER};
use crate::{Dcnn, NetConfig, NetError};

/// Where a channel split put things, for mapping vectors between the networks.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// The paper layer whose channel was split.
    pub layer: usize,
    /// The split channel.
    pub channel: usize,
    /// The index of the copy (the new last channel of `layer`).
    pub copy: usize,
    /// The share of the outgoing weights that stayed with `channel`.
    pub alpha: f64,
}

fn hidden_index(model: &Dcnn, layer: usize) -> Result<usize, NetError> {
    let hidden = model.config().widths.len();
    if layer < FIRST_LAYER || layer >= FIRST_LAYER + hidden {
        return Err(NetError::Config {
            field: "layer".into(),
            reason: format!(
                "{layer} is not a hidden convolution: the hidden layers are {FIRST_LAYER}..={}",
                FIRST_LAYER + hidden - 1
            ),
        });
    }
    Ok(layer - FIRST_LAYER)
}

/// `model` with channel `channel` of paper layer `layer` split in two, the
/// copy's share of the outgoing weights being `1 - alpha` (see the module docs).
pub fn split_channel(
    model: &Dcnn,
    layer: usize,
    channel: usize,
    alpha: f64,
) -> Result<(Dcnn, Split), NetError> {
    let i = hidden_index(model, layer)?;
    let width = usize::try_from(model.config().widths[i]).unwrap_or(0);
    if channel >= width {
        return Err(NetError::Config {
            field: "channel".into(),
            reason: format!("{channel} does not exist: layer {layer} has channels 0..{width}"),
        });
    }
    if !alpha.is_finite() {
        return Err(NetError::Config {
            field: "alpha".into(),
            reason: format!("must be finite, found {alpha}"),
        });
    }
    let mut cfg: NetConfig = model.config().clone();
    cfg.widths[i] += 1;
    let tensors = model.export()?;
    let mut out = Vec::with_capacity(tensors.len());
    let this = format!("layer{layer}.");
    let next = format!("layer{}.", layer + 1);
    for t in tensors {
        if t.name.starts_with(&this) {
            // weight [out, in, k, k], bias [out], bn.running_* [out]:
            // append a copy of slice `channel` along the first axis.
            let per = t.data.len() / t.shape[0].max(1);
            let mut data = t.data.clone();
            data.extend_from_slice(&t.data[channel * per..(channel + 1) * per]);
            let mut shape = t.shape.clone();
            shape[0] += 1;
            out.push(NamedTensor {
                name: t.name,
                shape,
                data,
            });
        } else if t.name.starts_with(&next) && t.name.ends_with(".weight") {
            // weight [out, in, k, k]: a new input slice, alpha / 1 - alpha.
            let (o, cin, kk) = (t.shape[0], t.shape[1], t.shape[2] * t.shape[3]);
            let mut data = Vec::with_capacity(o * (cin + 1) * kk);
            for a in 0..o {
                let row = &t.data[a * cin * kk..(a + 1) * cin * kk];
                for b in 0..cin {
                    let s = &row[b * kk..(b + 1) * kk];
                    if b == channel {
                        data.extend(s.iter().map(|&v| (f64::from(v) * alpha) as f32));
                    } else {
                        data.extend_from_slice(s);
                    }
                }
                let s = &row[channel * kk..(channel + 1) * kk];
                data.extend(s.iter().map(|&v| (f64::from(v) * (1.0 - alpha)) as f32));
            }
            let mut shape = t.shape.clone();
            shape[1] += 1;
            out.push(NamedTensor {
                name: t.name,
                shape,
                data,
            });
        } else {
            out.push(t);
        }
    }
    let mut wide = Dcnn::new(&cfg, model.device(), 0)?;
    wide.import(&out)?;
    Ok((
        wide,
        Split {
            layer,
            channel,
            copy: width,
            alpha,
        },
    ))
}
