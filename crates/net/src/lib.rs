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
//! the offending update is applied. The momentum buffers are an
//! [`OptimizerState`] ([`Sgd::state`], [`Sgd::set_state`], the same on
//! [`Bgd`]); [`train_from_state`] shows it to its callback after every epoch
//! ([`OptimizerView::state`]) and takes it back when resuming, so a run with
//! momentum and weight decay that is killed and resumed from its last
//! (weights, state) snapshot ends bit-identical to an uninterrupted one on the
//! CPU (on CUDA only close: see docs/reproducibility.md). Initialisation draws from our own seeded
//! RNG, never from libtorch's global one, so the same seed and thread count
//! give bit-identical weights on the CPU.
//!
//! ## Batch normalisation in BGD
//!
//! BGD runs in train mode over chunks of [`BgdConfig::ghost_batch`] examples
//! (all `N` at once when it is absent). Each chunk is
//! normalised with its own batch statistics ("ghost batches"), exactly as if
//! the chunk were an SGD mini-batch; the loss is the mean over *all* examples
//! (each chunk's summed loss is scaled by `1/N`) and its gradient is
//! accumulated across chunks before the single update. The BN running
//! statistics are updated once per chunk with momentum 0.1, as PyTorch would.
//! The chunk size is therefore part of the definition of the BGD gradient
//! (it equals the true full-batch gradient only when the chunk holds all `N`).
//!
//! ## BN statistics of derived models
//!
//! Interpolated, averaged or perturbed models carry interpolated / copied
//! running statistics; [`reestimate_bn`] replaces them with the exact
//! whole-set statistics the eval-mode network sees (layer by layer, see its
//! docs). Whether to call it is the caller's flag. [`evaluate_batch_stats`]
//! instead evaluates with BN in training mode (each chunk normalised with its
//! own batch statistics), leaving the running statistics untouched.
//!
//! # Perturbation
//!
//! [`perturb_with`] adds Gaussian noise of std `alpha * s(W)` to each weight
//! tensor `W` (and to the biases only if its [`PerturbSpec`] asks), and
//! returns a [`PerturbReport`] with every tensor's `sigma`; [`perturb`]
//! perturbs weights and biases.
//!
//! # Networks from PyTorch
//!
//! [`StateDict::read`] reads a `state_dict` of the paper's architecture from
//! a `.safetensors` file or a `torch.save` zip (`.pt`/`.pth`), under
//! landscape's names or those of the `nn.Sequential` of `paper_net()`, infers
//! the widths from the shapes (or checks them against a [`NetConfig`]) and
//! names every missing, extra and mis-shaped tensor; see the `import` module.
//!
//! # Devices
//!
//! [`DeviceChoice::resolve`] picks the CPU or CUDA device 0; `cuda` without a
//! usable GPU is an error naming the reason ([`device::cuda_unavailable_reason`]:
//! CPU-only libtorch, libtorch_cuda not linked, no driver, no visible device),
//! and `auto` logs what it chose. TF32 is off on CUDA unless allowed
//! ([`device::configure_tf32`]). [`DeviceInfo`] is what results record about
//! the device (GPU, driver, CUDA and cuDNN versions, TF32). The build script
//! links `libtorch_cuda` whenever the libtorch is a CUDA build. [`testing`]
//! holds the device-generic test helpers (CPU, plus CUDA when available).
//!
//! # Versions
//!
//! [`LIBTORCH_VERSION`] is the version of the libtorch install the crate was
//! built against, found at build time.
//!
//! # Performance
//!
//! Convolution weights and the images of a [`Data`] live in the channels-last
//! layout (NHWC in memory, NCHW shapes), which oneDNN's CPU convolutions run
//! much faster than PyTorch's default NCHW; SGD batches are gathered as
//! contiguous NHWC rows; plain (momentum-free) updates run in place on the
//! gradients under `no_grad`, with no temporary tensors. `cargo xtask bench train` compares against PyTorch eager on
//! the same libtorch, with the same thread count.
//!
//! Binaries call [`configure_malloc`] first thing in `main`: glibc then keeps
//! the memory of freed tensors in its heap instead of unmapping it, so that
//! the kernel does not zero and fault in the activations of every step again
//! (`LANDSCAPE_MALLOC=system` turns it off; see the `alloc` module).
mod activation;
mod alloc;
mod config;
mod data;
pub mod device;
mod elf;
mod embed;
mod error;
mod eval;
mod hessian;
mod import;
mod model;
pub mod testing;
mod torch_zip;
mod train;
mod weights;

pub use activation::{Activation, PolyFit};
pub use alloc::{
    configure_malloc, malloc_setup, MallocMode, MallocSetting, MallocSetup, MALLOC_ENV,
};
pub use config::{DeviceChoice, NetConfig};
pub use data::Data;
pub use device::DeviceInfo;
pub use embed::{split_channel, Split};
pub use error::NetError;
pub use eval::{
    eval_cache_budget, eval_cache_bytes, evaluate, evaluate_batch_stats, reestimate_and_evaluate,
    reestimate_bn, Evaluation, DEFAULT_EVAL_CACHE_BYTES,
};
pub use hessian::{HessianBn, HessianPrecision, LossHessian};
pub use import::{
    read_tensors, RawTensor, StateDict, StateDictFormat, StateDictLayout, ACCEPTED_LAYOUTS,
};
pub use model::{Dcnn, NamedTensor, FIRST_LAYER, LAST_LAYER};
pub use train::{
    train, train_from, train_from_state, Bgd, BgdConfig, EpochStats, OptimizerState, OptimizerView,
    Phase, Schedule, Sgd, SgdConfig,
};
pub use weights::{
    average, interpolate, interpolate_in, perturb, perturb_with, Lerp, PerturbReport, PerturbScale,
    PerturbSpec, PerturbedTensor,
};

/// The version of the libtorch this crate was built against, read at build
/// time from the install `tch` links (`__version__` in `torch/version.py` of
/// PyPI's torch wheel, e.g. `2.13.0+cpu`, or `build-version` of a libtorch
/// archive); `"unknown"` when neither file was found. Worth recording with
/// results, next to [`threads`].
pub const LIBTORCH_VERSION: &str = env!("LANDSCAPE_LIBTORCH_VERSION");

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

#[cfg(test)]
mod tests {
    #[test]
    fn libtorch_version_is_recorded() {
        let v = super::LIBTORCH_VERSION;
        assert!(!v.is_empty());
        assert_eq!(v, v.trim());
        if v != "unknown" {
            assert!(
                v.starts_with(|c: char| c.is_ascii_digit()),
                "LIBTORCH_VERSION {v:?} does not start with a digit"
            );
        }
    }
}
