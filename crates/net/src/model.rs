//! The DCNN itself: parameters, forward pass, export and import.
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use crate::config::{IN_CHANNELS, IN_SIZE, KERNEL};
use crate::{Activation, NetConfig, NetError};

/// The paper's number of the first convolution (the input is layer 1).
pub const FIRST_LAYER: usize = 2;
/// The paper's number of the last convolution of the paper network (outputs the logits).
pub const LAST_LAYER: usize = 6;

/// BN epsilon (PyTorch's default).
pub(crate) const BN_EPS: f64 = 1e-5;
/// BN running-statistics momentum (PyTorch's default).
pub(crate) const BN_MOMENTUM: f64 = 0.1;

/// One exported tensor: its name (`layer3.weight`, `layer3.bn.running_var`, ...),
/// shape and data (row-major `f32`).
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    /// Paper-numbered name.
    pub name: String,
    /// Shape, outermost dimension first.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// How batch normalisation normalises its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BnMode {
    /// With the running statistics (eval mode).
    Running,
    /// With the batch statistics, updating the running statistics (train mode).
    Train,
    /// With the batch statistics, leaving the running statistics alone.
    BatchOnly,
}

/// Running statistics of one batch-normalisation layer.
pub(crate) struct BnStats {
    pub(crate) mean: Tensor,
    pub(crate) var: Tensor,
}

/// One convolution (and its BN statistics for hidden layers).
pub(crate) struct ConvLayer {
    pub(crate) weight: Tensor,
    pub(crate) bias: Tensor,
    pub(crate) bn: Option<BnStats>,
}

/// The DCNN: five (by default) 3x3 stride-2 convolutions, BN without affine
/// parameters and an activation after each hidden one. Parameters require
/// gradients; BN running statistics do not.
pub struct Dcnn {
    config: NetConfig,
    device: Device,
    pub(crate) layers: Vec<ConvLayer>,
}

impl std::fmt::Debug for Dcnn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dcnn")
            .field("config", &self.config)
            .field("device", &self.device)
            .field("num_params", &self.num_params())
            .finish()
    }
}

/// A CPU `f32` tensor of `shape` from `data`, moved to `device`.
#[allow(clippy::disallowed_methods)] // one of the two helpers allowed to make host tensors
pub(crate) fn tensor_from(data: &[f32], shape: &[i64], device: Device) -> Result<Tensor, NetError> {
    let t = Tensor::f_from_slice(data)?
        .f_view(shape)?
        .f_to_device(device)?;
    debug_assert_eq!(t.device(), device);
    Ok(t)
}

/// A 1-D tensor of `data` on `device`. With [`tensor_from`], the only way
/// this crate's library code makes a tensor from host data: clippy's
/// `disallowed-methods` (crates/net/clippy.toml) forbids `Tensor::from_slice`
/// elsewhere, which makes a CPU tensor that would meet the model's CUDA
/// tensors (an error no CPU-only test can see).
#[allow(clippy::disallowed_methods)]
pub(crate) fn slice_on<T: tch::kind::Element>(
    data: &[T],
    device: Device,
) -> Result<Tensor, NetError> {
    let t = Tensor::f_from_slice(data)?.f_to_device(device)?;
    debug_assert_eq!(t.device(), device);
    Ok(t)
}

/// The same values in the channels-last layout (NHWC in memory, NCHW shape)
/// for 4-D tensors; other tensors are returned unchanged. oneDNN's CPU
/// convolutions run markedly faster on channels-last weights and inputs than
/// on PyTorch's default contiguous NCHW layout; the layout is invisible to
/// users (shapes, export order and values are unchanged).
pub(crate) fn channels_last(t: Tensor) -> Result<Tensor, NetError> {
    if t.dim() != 4 {
        return Ok(t);
    }
    Ok(t.f_permute([0, 2, 3, 1])?
        .f_contiguous()?
        .f_permute([0, 3, 1, 2])?
        .f_detach()?)
}

/// A tensor's values as a flat row-major `Vec<f32>` (copied to the CPU).
pub(crate) fn tensor_values(t: &Tensor) -> Result<Vec<f32>, NetError> {
    let flat = t
        .f_detach()?
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Float)?
        .f_contiguous()?;
    let numel = flat.numel();
    let mut out = vec![0f32; numel];
    flat.f_copy_data(&mut out, numel)?;
    Ok(out)
}

/// A detached deep copy of `t`, with `requires_grad` set as asked.
pub(crate) fn deep_copy(t: &Tensor, requires_grad: bool) -> Result<Tensor, NetError> {
    let mut c = t.f_detach()?.f_empty_like()?;
    tch::no_grad(|| c.f_copy_(t))?;
    Ok(c.f_set_requires_grad(requires_grad)?)
}

fn shape_of(t: &Tensor) -> Vec<usize> {
    t.size()
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(0))
        .collect()
}

impl Dcnn {
    /// A freshly initialised network on `device`.
    ///
    /// Initialisation follows PyTorch's default for `Conv2d` (Kaiming-uniform
    /// with `a = sqrt(5)`, i.e. weights and biases uniform in
    /// `[-1/sqrt(fan_in), 1/sqrt(fan_in)]`), drawn from a ChaCha8 stream seeded
    /// with `seed`, layer by layer, weight then bias, row-major. BN running
    /// statistics start at mean 0, variance 1. libtorch's global RNG is not used.
    pub fn new(config: &NetConfig, device: Device, seed: u64) -> Result<Self, NetError> {
        config.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let shapes = config.layer_shapes();
        let hidden = config.widths.len();
        let mut layers = Vec::with_capacity(shapes.len());
        for (i, &(cin, cout)) in shapes.iter().enumerate() {
            let fan_in = cin * KERNEL * KERNEL;
            let bound = 1.0 / (fan_in as f64).sqrt();
            let n_w = usize::try_from(cout * fan_in).unwrap_or(0);
            let n_b = usize::try_from(cout).unwrap_or(0);
            let mut draw = |n: usize| -> Vec<f32> {
                (0..n)
                    .map(|_| rng.random_range(-bound..bound) as f32)
                    .collect()
            };
            let w = draw(n_w);
            let b = draw(n_b);
            let weight =
                tensor_from(&w, &[cout, cin, KERNEL, KERNEL], device)?.f_set_requires_grad(true)?;
            let bias = tensor_from(&b, &[cout], device)?.f_set_requires_grad(true)?;
            let bn = if i < hidden {
                Some(BnStats {
                    mean: Tensor::f_zeros([cout], (Kind::Float, device))?,
                    var: Tensor::f_ones([cout], (Kind::Float, device))?,
                })
            } else {
                None
            };
            layers.push(ConvLayer { weight, bias, bn });
        }
        Ok(Self {
            config: config.clone(),
            device,
            layers,
        })
    }

    /// The configuration this network was built from.
    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// The device holding the tensors.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Number of trainable parameters (equals `config().param_count()`).
    pub fn num_params(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.weight.numel() + l.bias.numel())
            .sum()
    }

    /// Hidden pre-activations (inputs of the activation function) per input
    /// image: the sum over hidden layers of channels x spatial positions
    /// (32 x 16 x 16 + 64 x 8 x 8 + 152 x 4 x 4 + 56 x 2 x 2 for the paper's
    /// widths). The denominator of the share of pre-activations that leave a
    /// polynomial activation's interval.
    pub fn preactivations_per_example(&self) -> u64 {
        let mut size = crate::config::IN_SIZE;
        let mut total = 0u64;
        for &w in &self.config.widths {
            size = (size + 1) / 2;
            total += (w * size * size) as u64;
        }
        total
    }

    /// The paper number of the last layer of this network (6 for the paper's).
    pub fn last_layer(&self) -> usize {
        FIRST_LAYER + self.layers.len() - 1
    }

    /// Logits `[N, classes]` for images `[N, 3, 32, 32]`.
    ///
    /// `train = true` normalises with batch statistics and updates the BN
    /// running statistics (momentum 0.1); `false` uses the running statistics.
    /// Panics only if libtorch raises (wrong input shape); see
    /// [`Dcnn::f_forward_t`] for the fallible version.
    #[allow(clippy::expect_used)]
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.f_forward_t(xs, train).expect(
            "DCNN forward pass failed (input must be [N, 3, 32, 32] f32 on the model's device)",
        )
    }

    /// Fallible [`Dcnn::forward_t`]: checks the input shape.
    pub fn f_forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, NetError> {
        self.check_input(xs)?;
        self.forward_impl(xs, train, None)
    }

    /// Fallible forward pass that also adds, to `out_of_range` (a scalar
    /// `i64` tensor on the model's device), the number of pre-activations
    /// outside `[-r, r]` of a polynomial activation (nothing for ReLU).
    pub fn f_forward_counting(
        &self,
        xs: &Tensor,
        train: bool,
        out_of_range: &mut Tensor,
    ) -> Result<Tensor, NetError> {
        self.check_input(xs)?;
        self.forward_impl(xs, train, Some(out_of_range))
    }

    fn check_input(&self, xs: &Tensor) -> Result<(), NetError> {
        // A CPU tensor meeting CUDA weights fails inside libtorch with a
        // message that names neither; say it in debug builds (tests).
        debug_assert_eq!(
            xs.device(),
            self.device,
            "input on {:?} but the model is on {:?}",
            xs.device(),
            self.device
        );
        let size = xs.size();
        if size.len() != 4 || size[1] != IN_CHANNELS || size[2] != IN_SIZE || size[3] != IN_SIZE {
            return Err(NetError::Tensor {
                name: "input".to_string(),
                expected: format!("shape [N, {IN_CHANNELS}, {IN_SIZE}, {IN_SIZE}]"),
                found: format!("{size:?}"),
            });
        }
        Ok(())
    }

    /// Runs hidden layer `i` (0-based) up to its pre-BN output.
    pub(crate) fn conv(&self, i: usize, xs: &Tensor) -> Result<Tensor, NetError> {
        let l = &self.layers[i];
        Ok(xs.f_conv2d(&l.weight, Some(&l.bias), [2, 2], [1, 1], [1, 1], 1)?)
    }

    /// BN (batch statistics in train mode, running statistics otherwise).
    pub(crate) fn bn(&self, i: usize, xs: &Tensor, train: bool) -> Result<Tensor, NetError> {
        let mode = if train {
            BnMode::Train
        } else {
            BnMode::Running
        };
        self.bn_mode(i, xs, mode)
    }

    /// BN of hidden layer `i` (0-based) in `mode`.
    pub(crate) fn bn_mode(&self, i: usize, xs: &Tensor, mode: BnMode) -> Result<Tensor, NetError> {
        let Some(bn) = &self.layers[i].bn else {
            return Ok(xs.shallow_clone());
        };
        let (mean, var) = match mode {
            BnMode::Running | BnMode::Train => (Some(&bn.mean), Some(&bn.var)),
            BnMode::BatchOnly => (None, None),
        };
        Ok(xs.f_batch_norm(
            None::<&Tensor>,
            None::<&Tensor>,
            mean,
            var,
            mode != BnMode::Running,
            BN_MOMENTUM,
            BN_EPS,
            true,
        )?)
    }

    /// The activation, counting inputs outside the fitting radius if asked.
    pub(crate) fn activate(
        &self,
        xs: &Tensor,
        count: Option<&mut Tensor>,
    ) -> Result<Tensor, NetError> {
        if let (Some(counter), Activation::Poly { radius, .. }) = (count, &self.config.activation) {
            let outside = tch::no_grad(|| xs.f_abs()?.f_gt(*radius)?.f_sum(Kind::Int64))?;
            let _ = counter.f_add_(&outside)?;
        }
        self.config.activation.apply(xs)
    }

    pub(crate) fn forward_impl(
        &self,
        xs: &Tensor,
        train: bool,
        count: Option<&mut Tensor>,
    ) -> Result<Tensor, NetError> {
        let mode = if train {
            BnMode::Train
        } else {
            BnMode::Running
        };
        self.forward_mode(xs, mode, count)
    }

    /// The forward pass with BN in `mode`.
    pub(crate) fn forward_mode(
        &self,
        xs: &Tensor,
        mode: BnMode,
        mut count: Option<&mut Tensor>,
    ) -> Result<Tensor, NetError> {
        let hidden = self.layers.len() - 1;
        let mut h = xs.shallow_clone();
        for i in 0..hidden {
            let z = self.conv(i, &h)?;
            let z = self.bn_mode(i, &z, mode)?;
            h = self.activate(&z, count.as_deref_mut())?;
        }
        self.head(&h)
    }

    /// The last layer: logits `[N, classes]` from the last hidden layer's
    /// activations (the final convolution, then flattened or averaged over
    /// the remaining positions).
    pub(crate) fn head(&self, h: &Tensor) -> Result<Tensor, NetError> {
        let out = self.conv(self.layers.len() - 1, h)?;
        if self.config.final_size() == 1 {
            Ok(out.f_flatten(1, -1)?)
        } else {
            Ok(out.f_mean_dim([2i64, 3].as_slice(), false, None::<Kind>)?)
        }
    }

    /// Names of the exported tensors, in export order.
    pub fn tensor_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let n = FIRST_LAYER + i;
            names.push(format!("layer{n}.weight"));
            names.push(format!("layer{n}.bias"));
            if l.bn.is_some() {
                names.push(format!("layer{n}.bn.running_mean"));
                names.push(format!("layer{n}.bn.running_var"));
            }
        }
        names
    }

    /// The trainable tensors of paper layer `layer` (`layerN.weight`,
    /// `layerN.bias`; no BN statistics). Empty for a layer that does not exist.
    pub fn layer_tensor_names(&self, layer: usize) -> Vec<String> {
        if layer < FIRST_LAYER || layer > self.last_layer() {
            return Vec::new();
        }
        vec![format!("layer{layer}.weight"), format!("layer{layer}.bias")]
    }

    /// `(name, tensor)` for every exported tensor, in export order.
    pub(crate) fn named(&self) -> Vec<(String, &Tensor)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let n = FIRST_LAYER + i;
            out.push((format!("layer{n}.weight"), &l.weight));
            out.push((format!("layer{n}.bias"), &l.bias));
            if let Some(bn) = &l.bn {
                out.push((format!("layer{n}.bn.running_mean"), &bn.mean));
                out.push((format!("layer{n}.bn.running_var"), &bn.var));
            }
        }
        out
    }

    /// Names and shapes of the trainable parameters, in the order of
    /// [`Dcnn::params`] (`layer2.weight`, `layer2.bias`, ...).
    pub(crate) fn param_names_shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                let n = FIRST_LAYER + i;
                [
                    (format!("layer{n}.weight"), shape_of(&l.weight)),
                    (format!("layer{n}.bias"), shape_of(&l.bias)),
                ]
            })
            .collect()
    }

    /// The trainable parameters (weight, bias per layer, in layer order).
    pub(crate) fn params(&self) -> Vec<&Tensor> {
        self.layers
            .iter()
            .flat_map(|l| [&l.weight, &l.bias])
            .collect()
    }

    /// All exported tensors, mutable, in export order.
    pub(crate) fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        let mut out = Vec::new();
        for l in &mut self.layers {
            out.push(&mut l.weight);
            out.push(&mut l.bias);
            if let Some(bn) = &mut l.bn {
                out.push(&mut bn.mean);
                out.push(&mut bn.var);
            }
        }
        out
    }

    /// Every parameter and BN statistic as a named `f32` tensor, in a stable
    /// order: `layer2.weight`, `layer2.bias`, `layer2.bn.running_mean`,
    /// `layer2.bn.running_var`, ..., `layer6.weight`, `layer6.bias`.
    pub fn export(&self) -> Result<Vec<NamedTensor>, NetError> {
        self.named()
            .into_iter()
            .map(|(name, t)| {
                Ok(NamedTensor {
                    shape: shape_of(t),
                    data: tensor_values(t)?,
                    name,
                })
            })
            .collect()
    }

    /// Overwrites every parameter and BN statistic from `tensors`, which must
    /// hold exactly the names of [`Dcnn::export`], in the same order, with the
    /// same shapes. Nothing is changed when any check fails.
    pub fn import(&mut self, tensors: &[NamedTensor]) -> Result<(), NetError> {
        let device = self.device;
        let expected: Vec<(String, Vec<usize>)> = self
            .named()
            .into_iter()
            .map(|(n, t)| (n, shape_of(t)))
            .collect();
        if tensors.len() != expected.len() {
            return Err(NetError::Tensor {
                name: "(all)".to_string(),
                expected: format!("{} tensors", expected.len()),
                found: format!("{}", tensors.len()),
            });
        }
        let mut fresh = Vec::with_capacity(tensors.len());
        for (i, ((name, shape), t)) in expected.iter().zip(tensors).enumerate() {
            if &t.name != name {
                return Err(NetError::Tensor {
                    name: format!("#{i}"),
                    expected: format!("name `{name}`"),
                    found: format!("`{}`", t.name),
                });
            }
            if &t.shape != shape {
                return Err(NetError::Tensor {
                    name: name.clone(),
                    expected: format!("shape {shape:?}"),
                    found: format!("{:?}", t.shape),
                });
            }
            let numel: usize = shape.iter().product();
            if t.data.len() != numel {
                return Err(NetError::Tensor {
                    name: name.clone(),
                    expected: format!("{numel} values for shape {shape:?}"),
                    found: format!("{}", t.data.len()),
                });
            }
            let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            fresh.push(tensor_from(&t.data, &dims, device)?);
        }
        let _guard = tch::no_grad_guard();
        for (dst, src) in self.tensors_mut().into_iter().zip(&fresh) {
            dst.f_copy_(src)?;
        }
        Ok(())
    }

    /// A deep copy (parameters and BN statistics) on the same device.
    pub fn try_clone(&self) -> Result<Dcnn, NetError> {
        let layers = self
            .layers
            .iter()
            .map(|l| {
                Ok(ConvLayer {
                    weight: deep_copy(&l.weight, true)?,
                    bias: deep_copy(&l.bias, true)?,
                    bn: match &l.bn {
                        Some(bn) => Some(BnStats {
                            mean: deep_copy(&bn.mean, false)?,
                            var: deep_copy(&bn.var, false)?,
                        }),
                        None => None,
                    },
                })
            })
            .collect::<Result<Vec<_>, NetError>>()?;
        Ok(Dcnn {
            config: self.config.clone(),
            device: self.device,
            layers,
        })
    }

    /// A deep copy whose parameters and BN statistics are converted to
    /// `kind` (e.g. `Kind::Double` for float64 Hessian-vector products;
    /// parameters require gradients as usual). Only the differentiation code
    /// uses it: training and export assume `f32`.
    pub(crate) fn to_kind(&self, kind: Kind) -> Result<Dcnn, NetError> {
        let convert = |t: &Tensor, grad: bool| -> Result<Tensor, NetError> {
            Ok(t.f_detach()?.f_to_kind(kind)?.f_set_requires_grad(grad)?)
        };
        let layers = self
            .layers
            .iter()
            .map(|l| {
                Ok(ConvLayer {
                    weight: convert(&l.weight, true)?,
                    bias: convert(&l.bias, true)?,
                    bn: match &l.bn {
                        Some(bn) => Some(BnStats {
                            mean: convert(&bn.mean, false)?,
                            var: convert(&bn.var, false)?,
                        }),
                        None => None,
                    },
                })
            })
            .collect::<Result<Vec<_>, NetError>>()?;
        Ok(Dcnn {
            config: self.config.clone(),
            device: self.device,
            layers,
        })
    }

    /// A deep copy on another device.
    pub fn to_device(&self, device: Device) -> Result<Dcnn, NetError> {
        let mut out = Dcnn::new(&self.config, device, 0)?;
        out.import(&self.export()?)?;
        Ok(out)
    }

    /// Sets the activation (e.g. to swap ReLU for a polynomial with the same weights).
    pub fn set_activation(&mut self, activation: Activation) -> Result<(), NetError> {
        activation.validate()?;
        self.config.activation = activation;
        Ok(())
    }
}
