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
//!
//! # The Hessian at a split point: degeneracy or a saddle
//!
//! Write the wide parameters as `(r, w1, w2, a, b)`: `w1`, `w2` the incoming
//! filter and bias of the channel and of its copy (`m = in_channels x 3 x 3 +
//! 1` values each), `a`, `b` their outgoing weights in layer `L + 1` (`p =
//! out_channels(L + 1) x 3 x 3` values each), `r` everything else. The split
//! is the linear map [`Split::embed_vector`] `T: (r, w, c) -> (r, w, w, alpha
//! c, (1 - alpha) c)`, and `f_wide(T theta) = f_narrow(theta)` for every
//! narrow `theta`. Change the wide coordinates (linearly, invertibly for any
//! `alpha`) to `(r, w, c, delta, d)` with
//!
//! ```text
//! w1 = w + (1 - alpha) delta,   w2 = w - alpha delta,   a = alpha c + d,   b = (1 - alpha) c - d.
//! ```
//!
//! `d` moves along the *outgoing difference* subspace `S` (`+d` on the
//! channel's outgoing weights, `-d` on the copy's: [`Split::outgoing_difference`],
//! `dim S = p`) and `delta` along the *incoming difference*
//! ([`Split::incoming_difference`], dimension `m`). While `delta = 0` the two
//! copies output the same activations `h`, so layer `L + 1` receives
//! `a h + b h = c h` whatever `d` is: **the function, hence the loss, is
//! exactly constant on `T theta + S`**. At a split point (`delta = 0`, `d = 0`)
//! this gives, with `H` the wide Hessian in the new coordinates:
//!
//! * `H_SS = 0` (the quadratic form vanishes on `S`: `s^T H s = 0`) and
//!   `H_{S,T} = 0` (the loss is constant in `d` on the whole subspace `delta
//!   = 0`);
//! * `H_{delta,T} = 0`: the next layer's input moves with `delta` at rate `d
//!   h'`, which is zero on `d = 0` for every `(r, w, c)`;
//! * the `T` block is the narrow Hessian `H_n` (the function restricted to
//!   `delta = d = 0` is the narrow one);
//! * what is left is `H_{delta,delta} = A` and `H_{delta,S} = G`, where `G` is
//!   the incoming-outgoing mixed second derivative with the output gradient
//!   frozen: `G = sum over examples of dloss/dz . h'`, the non-Gauss-Newton
//!   part of the narrow Hessian's incoming/outgoing block (it vanishes where
//!   the loss's gradient in the outputs vanishes, e.g. at a zero-residual
//!   minimum of the square loss).
//!
//! So the wide Hessian is congruent to `H_n (+) K` with `K = [[A, G], [G^T,
//! 0]]` (`K` is `(m + p) x (m + p)` with a `p x p` zero block), and by
//! Sylvester's law of inertia its counts of negative, zero and positive
//! eigenvalues are the narrow ones plus those of `K`. Consequences, at every
//! split point (critical or not):
//!
//! * no count decreases: `n_-, n_0, n_+` of the wide Hessian are at least the
//!   narrow ones (Zhang et al.'s irreversibility, here for one split);
//! * `n_- + n_0 >= (n_- + n_0)_narrow + p` and `n_+ + n_0 >= (n_+ +
//!   n_0)_narrow + p` (a `p`-dimensional subspace on which the form is zero);
//! * if `rank G = k` then `n_- >= (n_-)_narrow + k`, `n_+ >= (n_+)_narrow + k`
//!   and `n_0 >= (n_0)_narrow + p - k`. In the original coordinates, `H s = 0`
//!   for `s` in `S` exactly when `G` annihilates its `d`. Hence if the narrow
//!   point is a minimum with a positive semi-definite Hessian, the wide point
//!   is either **degenerate** (`G = 0`: `S` lies in the kernel, `p` more zero
//!   eigenvalues) or a **strict saddle** (`G != 0`: for `s` in `S` with `H s !=
//!   0`, the form on `span{s, H s}` is `[[0, |Hs|], [|Hs|, .]]` in an
//!   orthonormal basis, with a negative eigenvalue).
//!
//! The gradient in the new coordinates is `(g_n, 0, 0)`, so the wide point is
//! critical exactly when the narrow one is. Numerically (tolerances), the
//! counts move by the scale of the coordinates: for `alpha = 1/2`, `T` and
//! `S` are orthogonal and `|T u + s|^2 >= |u|^2 / 2`, so the number of wide
//! eigenvalues `<= 2 tau` is at least the number of narrow ones `<= tau`
//! plus `p` (`tau >= 0`), which `crates/net/tests/embed.rs` checks on a full
//! Hessian.
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

/// A trainable tensor's name, shape and offset in the flattened parameters.
type Slot = (String, Vec<usize>, usize);

/// Where each trainable tensor starts in the flattened parameter vector (the
/// order of [`crate::LossHessian`]), with its name and shape; and the total.
fn layout(model: &Dcnn) -> (Vec<Slot>, usize) {
    let mut at = 0usize;
    let mut out = Vec::new();
    for (name, shape) in model.param_names_shapes() {
        let n: usize = shape.iter().product();
        out.push((name, shape, at));
        at += n;
    }
    (out, at)
}

fn find<'a>(lay: &'a [Slot], name: &str) -> Result<&'a Slot, NetError> {
    lay.iter()
        .find(|(n, _, _)| n == name)
        .ok_or_else(|| NetError::Data(format!("the network has no tensor `{name}`")))
}

fn check_len(what: &str, v: &[f64], want: usize) -> Result<(), NetError> {
    if v.len() == want {
        Ok(())
    } else {
        Err(NetError::Data(format!(
            "{what}: a vector of {} entries where {want} were expected",
            v.len()
        )))
    }
}

impl Split {
    /// Checks that `wide` is this split's wide network (its layer has the copy).
    fn check_wide(&self, wide: &Dcnn) -> Result<(), NetError> {
        let i = hidden_index(wide, self.layer)?;
        let width = usize::try_from(wide.config().widths[i]).unwrap_or(0);
        if width != self.copy + 1 {
            return Err(NetError::Config {
                field: "wide".into(),
                reason: format!(
                    "layer {} has {width} channels; the split's wide network has {}",
                    self.layer,
                    self.copy + 1
                ),
            });
        }
        Ok(())
    }

    /// `m`: the incoming parameters of the split channel (filter and bias).
    pub fn incoming_len(&self, model: &Dcnn) -> Result<usize, NetError> {
        let (lay, _) = layout(model);
        let (_, shape, _) = find(&lay, &format!("layer{}.weight", self.layer))?;
        Ok(shape[1] * shape[2] * shape[3] + 1)
    }

    /// `p = dim S`: the outgoing weights of the split channel (layer `L + 1`'s
    /// out-channels x 3 x 3), the dimension of the flat subspace.
    pub fn outgoing_len(&self, model: &Dcnn) -> Result<usize, NetError> {
        let (lay, _) = layout(model);
        let (_, shape, _) = find(&lay, &format!("layer{}.weight", self.layer + 1))?;
        Ok(shape[0] * shape[2] * shape[3])
    }

    /// `T v`: a flattened narrow parameter vector (the order of
    /// [`crate::LossHessian`]) mapped into the wide network the way
    /// [`split_channel`] maps the parameters (incoming entries copied,
    /// outgoing ones shared `alpha` / `1 - alpha`). Linear; the wide
    /// parameters are `T` of the narrow ones.
    pub fn embed_vector(&self, narrow: &Dcnn, v: &[f64]) -> Result<Vec<f64>, NetError> {
        let (lay, dim) = layout(narrow);
        check_len("embed_vector", v, dim)?;
        let this = format!("layer{}.", self.layer);
        let next = format!("layer{}.weight", self.layer + 1);
        let c = self.channel;
        let mut out = Vec::with_capacity(dim);
        for (name, shape, at) in &lay {
            let n: usize = shape.iter().product();
            let t = &v[*at..at + n];
            if name.starts_with(&this) {
                let per = n / shape[0].max(1);
                out.extend_from_slice(t);
                out.extend_from_slice(&t[c * per..(c + 1) * per]);
            } else if name == &next {
                let (o, cin, kk) = (shape[0], shape[1], shape[2] * shape[3]);
                for a in 0..o {
                    let row = &t[a * cin * kk..(a + 1) * cin * kk];
                    for b in 0..cin {
                        let s = &row[b * kk..(b + 1) * kk];
                        if b == c {
                            out.extend(s.iter().map(|x| x * self.alpha));
                        } else {
                            out.extend_from_slice(s);
                        }
                    }
                    let s = &row[c * kk..(c + 1) * kk];
                    out.extend(s.iter().map(|x| x * (1.0 - self.alpha)));
                }
            } else {
                out.extend_from_slice(t);
            }
        }
        Ok(out)
    }

    /// A vector of the outgoing-difference subspace `S` of the wide network:
    /// `d` (length [`Split::outgoing_len`], out-channel-major then 3 x 3) on
    /// the split channel's outgoing weights and `-d` on the copy's, zero
    /// elsewhere. The wide network's function is constant along it.
    pub fn outgoing_difference(&self, wide: &Dcnn, d: &[f64]) -> Result<Vec<f64>, NetError> {
        self.check_wide(wide)?;
        let (lay, dim) = layout(wide);
        let (_, shape, at) = find(&lay, &format!("layer{}.weight", self.layer + 1))?;
        let (o, cin, kk) = (shape[0], shape[1], shape[2] * shape[3]);
        check_len("outgoing_difference", d, o * kk)?;
        let mut out = vec![0f64; dim];
        for a in 0..o {
            for k in 0..kk {
                out[at + (a * cin + self.channel) * kk + k] = d[a * kk + k];
                out[at + (a * cin + self.copy) * kk + k] = -d[a * kk + k];
            }
        }
        Ok(out)
    }

    /// A vector of the incoming-difference directions of the wide network:
    /// `(1 - alpha) e` on the split channel's incoming filter and bias, `-alpha
    /// e` on the copy's (`e` of length [`Split::incoming_len`], the filter
    /// row-major then the bias), zero elsewhere. With `T` and `S` it completes
    /// the coordinates of the module docs.
    pub fn incoming_difference(&self, wide: &Dcnn, e: &[f64]) -> Result<Vec<f64>, NetError> {
        self.check_wide(wide)?;
        let (lay, dim) = layout(wide);
        let (_, shape, wat) = find(&lay, &format!("layer{}.weight", self.layer))?;
        let (_, _, bat) = find(&lay, &format!("layer{}.bias", self.layer))?;
        let per = shape[1] * shape[2] * shape[3];
        check_len("incoming_difference", e, per + 1)?;
        let mut out = vec![0f64; dim];
        for (k, &x) in e[..per].iter().enumerate() {
            out[wat + self.channel * per + k] = (1.0 - self.alpha) * x;
            out[wat + self.copy * per + k] = -self.alpha * x;
        }
        out[bat + self.channel] = (1.0 - self.alpha) * e[per];
        out[bat + self.copy] = -self.alpha * e[per];
        Ok(out)
    }
}
