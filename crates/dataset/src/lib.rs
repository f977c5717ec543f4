//! CIFAR-10 for the loss-landscape experiments: read exactly, installed from
//! the official URL or a local archive, with subsets and random labels.
//!
//! # Design
//!
//! * **Two layouts.** The official binary layout (`cifar-10-batches-bin/`,
//!   3,073-byte records: a label byte, then 1,024 red, green and blue bytes,
//!   rows top to bottom) and the Python layout (`cifar-10-batches-py/`,
//!   pickled dicts as shipped to torchvision users) are both read; see
//!   [`Layout`]. The pickles hold numpy arrays, which generic pickle crates
//!   cannot decode, so the crate has its own small, non-executing pickle
//!   machine that understands exactly the shapes numpy writes (protocols 2-5,
//!   Python 2 and 3 writers).
//! * **Exact and strict.** Every batch must hold exactly the expected number
//!   of records and every label must be 0-9; anything else is a typed
//!   [`DatasetError`] naming the file, the record or byte offset, and what was
//!   expected. Nothing panics on bad input.
//! * **Flat memory.** A [`Split`] is one contiguous `u8` buffer (NCHW, as in
//!   the files) plus a label vector and the original index of each image.
//!   [`Normalization::from_split`] computes per-channel mean and std with
//!   exact integer sums; [`Split::to_f32`] / [`Split::to_f32_into`] convert in
//!   one pass through a 3 x 256 lookup table.
//! * **Reproducible subsets and label noise.** [`Split::stratified`] and
//!   [`Split::with_random_labels`] draw from `ChaCha8Rng::seed_from_u64(seed)`
//!   through the crate's own Fisher-Yates and rejection sampling, so a seed
//!   selects the same images and labels on every machine and with any `rand`
//!   version. Random labels come with a serialisable [`RandomLabels`] record
//!   for the result's metadata.
//! * **Atomic installs.** [`InstallParams::install`] downloads (MD5-checked)
//!   or takes a local archive, extracts and fully checks it in a temporary
//!   folder beside the destination, then moves it in with one `rename`.
//!   Progress goes to a [`Progress`] implementation; the library never prints.
//!
//! # Example
//!
//! ```no_run
//! use landscape_dataset::{locate, Cifar10, LabelNoise, Normalization};
//!
//! # fn main() -> Result<(), landscape_dataset::DatasetError> {
//! let dir = locate(None)?; // --data DIR, $LANDSCAPE_CIFAR10, <workspace>/data
//! let cifar = Cifar10::load(&dir)?;
//! let norm = Normalization::from_split(cifar.train())?;
//! let quick = cifar.train().stratified(5_000, 42)?;
//! let (noisy, record) = quick.with_random_labels(LabelNoise::Permutation, 7);
//! let x: Vec<f32> = noisy.to_f32(&norm);
//! assert_eq!(x.len(), 5_000 * 3 * 32 * 32);
//! # let _ = record;
//! # Ok(())
//! # }
//! ```
mod cifar;
mod error;
mod install;
mod layout;
mod locate;
mod normalize;
mod pickle;
mod split;

pub use cifar::{verify, Cifar10, FileReport, LoadParams, VerifyReport};
pub use error::{DatasetError, Result};
pub use install::{
    install, InstallParams, InstallReport, NoProgress, Progress, Source, Stage, OFFICIAL_MD5,
    OFFICIAL_URL,
};
pub use layout::Layout;
pub use locate::{default_data_dir, locate, locate_in, workspace_root, ENV_VAR};
pub use normalize::Normalization;
pub use split::{LabelNoise, RandomLabels, Split, SplitKind};

/// Number of classes.
pub const NUM_CLASSES: usize = 10;
/// Image side in pixels.
pub const IMAGE_SIDE: usize = 32;
/// Colour channels.
pub const CHANNELS: usize = 3;
/// Pixels per channel of one image.
pub const CHANNEL_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;
/// Bytes per image (3 x 32 x 32).
pub const IMAGE_BYTES: usize = CHANNELS * CHANNEL_PIXELS;
/// Bytes per record of the binary layout (label + image).
pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES;
/// Records per batch file in the official data.
pub const RECORDS_PER_BATCH: usize = 10_000;
/// Training images.
pub const TRAIN_IMAGES: usize = 5 * RECORDS_PER_BATCH;
/// Test images.
pub const TEST_IMAGES: usize = RECORDS_PER_BATCH;
/// The class names of the official `batches.meta.txt`, in label order.
pub const CLASS_NAMES: [&str; NUM_CLASSES] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
