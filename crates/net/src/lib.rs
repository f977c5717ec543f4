//! The paper's deep convolutional network (DCNN) and its polynomial twin on
//! libtorch (through `tch`): training loops, evaluation and the weight-space
//! operations (export/import, perturbation, interpolation, averaging, BN
//! re-estimation) that every experiment is built from.
//!
//! # The network
//!
//! Input `3 x 32 x 32`. The paper counts the input as layer 1, so its layers
//! 2..=6 are five 3x3 convolutions with stride 2 and padding 1
//! (32 -> 16 -> 8 -> 4 -> 2 -> 1). Each hidden convolution (layers 2..=5) is
//! followed by batch normalisation without affine parameters (eps `1e-5`,
//! momentum `0.1`, as PyTorch's `BatchNorm2d(affine=False)`) and the
//! activation; layer 6 outputs the class logits at `1 x 1`. The loss is softmax
//! cross-entropy. Every user-facing name keeps the paper's numbering
//! (`layer2.weight`, ..., `layer6.bias`).
//!
//! paper-widths: `[32, 64, 152, 56]` (out channels of layers 2..=5), which
//! gives exactly the paper's 188,810 parameters (see [`NetConfig::paper`]).
//!
//! # Activations
//!
//! [`Activation::Relu`], or [`Activation::Poly`]: a polynomial fitted to ReLU on
//! `[-r, r]` by least squares on Chebyshev nodes ([`Activation::fit_relu`]),
//! evaluated with Horner's rule inside the autograd graph. Nothing is clamped:
//! during training the number of pre-activations outside `[-r, r]` is counted
//! and reported in [`EpochStats::activation_out_of_range`].
//!
//! # Training
//!
//! [`Sgd`] (mini-batches, shuffled by a ChaCha8 stream derived from
//! `(seed, epoch)`) and [`Bgd`] (one full-batch step per epoch, the gradient
//! accumulated over chunks so memory is bounded by the chunk size). [`train`]
//! runs a [`Schedule`] of phases and calls back after every epoch with the
//! model. Non-finite losses stop training with [`NetError::Diverged`] before
//! the offending update is applied. Initialisation draws from our own seeded
//! RNG, never from libtorch's global one, so the same seed and thread count
//! give bit-identical weights on the CPU.
//!
//! ## Batch normalisation in BGD
//!
//! BGD runs in train mode over chunks of `chunk_size` examples. Each chunk is
//! normalised with its own batch statistics ("ghost batches"), exactly as if
//! the chunk were an SGD mini-batch; the loss is the mean over *all* examples
//! (each chunk's summed loss is scaled by `1/N`) and its gradient is
//! accumulated across chunks before the single update. The BN running
//! statistics are updated once per chunk with momentum 0.1, as PyTorch would.
//! The chunk size is therefore part of the definition of the BGD gradient
//! (it equals the true full-batch gradient only when `chunk_size >= N`).
//!
//! ## BN statistics of derived models
//!
//! Interpolated, averaged or perturbed models carry interpolated / copied
//! running statistics; [`reestimate_bn`] replaces them with the exact
//! whole-set statistics the eval-mode network sees (layer by layer, see its
//! docs). Whether to call it is the caller's flag.
//!
//! # Performance
//!
//! Convolution weights and the images of a [`Data`] live in the channels-last
//! layout (NHWC in memory, NCHW shapes), which oneDNN's CPU convolutions run
//! much faster than PyTorch's default NCHW; SGD batches are gathered as
//! contiguous NHWC rows; plain (momentum-free) updates run in place on the
//! gradients under `no_grad`, with no temporary tensors. `cargo xtask bench train` compares against PyTorch eager on
//! the same libtorch, with the same thread count.
mod activation;
mod config;
mod data;
mod error;
mod eval;
mod model;
mod train;
mod weights;

pub use activation::{Activation, PolyFit};
pub use config::{DeviceChoice, NetConfig};
pub use data::Data;
pub use error::NetError;
pub use eval::{evaluate, reestimate_bn, Evaluation};
pub use model::{Dcnn, NamedTensor, FIRST_LAYER, LAST_LAYER};
pub use train::{train, train_from, Bgd, BgdConfig, EpochStats, Phase, Schedule, Sgd, SgdConfig};
pub use weights::{average, interpolate, perturb, PerturbScale};

/// Re-exported so that callers can name devices and tensors without adding
/// `tch` themselves.
pub use tch;

/// Sets the number of intra-op threads libtorch uses on the CPU (`n >= 1`;
/// 0 is treated as 1).
pub fn set_threads(n: usize) {
    let n = i32::try_from(n.max(1)).unwrap_or(i32::MAX);
    tch::set_num_threads(n);
}

/// The number of intra-op threads libtorch currently uses on the CPU.
pub fn threads() -> usize {
    usize::try_from(tch::get_num_threads()).unwrap_or(1)
}
