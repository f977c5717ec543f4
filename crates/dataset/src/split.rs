//! One split (train or test) in memory, its subsets and random relabellings.
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{DatasetError, Result};
use crate::normalize::Normalization;
use crate::{IMAGE_BYTES, NUM_CLASSES};

/// Which half of CIFAR-10 a [`Split`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitKind {
    /// The 50,000 training images (`data_batch_1` ... `data_batch_5`).
    Train,
    /// The 10,000 test images (`test_batch`).
    Test,
}

impl std::fmt::Display for SplitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SplitKind::Train => "train",
            SplitKind::Test => "test",
        })
    }
}

/// Images and labels of one split, or of a subset of one.
///
/// Pixels are one contiguous `u8` buffer of `len() * 3 * 32 * 32` bytes in
/// NCHW order (per image: 1,024 red, 1,024 green, 1,024 blue bytes, rows
/// top to bottom), exactly as in the files. [`Split::indices`] gives, for each
/// image, its index in the full split it was taken from, so results can
/// record which images a subset used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    kind: SplitKind,
    images: Vec<u8>,
    labels: Vec<u8>,
    indices: Vec<usize>,
}

/// How [`Split::with_random_labels`] replaces the labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelNoise {
    /// A seeded random permutation of the existing labels: class counts are kept.
    Permutation,
    /// Each label drawn independently and uniformly from 0-9.
    Uniform,
}

/// What [`Split::with_random_labels`] did, to store in a result's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RandomLabels {
    /// How the labels were replaced.
    pub mode: LabelNoise,
    /// The seed of the `ChaCha8Rng` that drew them.
    pub seed: u64,
    /// The number of images relabelled.
    pub images: usize,
    /// How many of them got a label different from their true one.
    pub changed: usize,
    /// CRC-32 of the new label vector (one byte per image), to check a rerun.
    pub labels_crc32: u32,
    /// Per-class counts of the new labels.
    pub class_counts: [usize; NUM_CLASSES],
}

/// RNG stream for class-stratified subsets.
const STREAM_SUBSET: u64 = 1;
/// RNG stream for random labels (independent of subsets drawn with the same seed).
const STREAM_LABELS: u64 = 2;

fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// A uniform integer in `0..n` (`n > 0`) by rejection sampling on `next_u64`:
/// depends only on the ChaCha8 stream, so it is the same on every machine and
/// does not change with `rand`'s sampling algorithms.
fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    let zone = (u64::MAX / n) * n;
    loop {
        let x = rng.next_u64();
        if x < zone {
            return x % n;
        }
    }
}

/// Fisher-Yates shuffle driven by [`below`].
fn shuffle<T>(rng: &mut ChaCha8Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

impl Split {
    /// Builds a split from a pixel buffer (`n * 3072` bytes, NCHW) and `n`
    /// labels (0-9). Indices are `0..n`.
    pub fn from_parts(kind: SplitKind, images: Vec<u8>, labels: Vec<u8>) -> Result<Self> {
        if images.len() != labels.len() * IMAGE_BYTES {
            return Err(DatasetError::InvalidArgument {
                name: "images",
                reason: format!(
                    "{} bytes for {} labels; expected {} (3 x 32 x 32 per image)",
                    images.len(),
                    labels.len(),
                    labels.len() * IMAGE_BYTES
                ),
            });
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| usize::from(l) >= NUM_CLASSES)
        {
            return Err(DatasetError::InvalidArgument {
                name: "labels",
                reason: format!("label {l} at index {i} is outside 0-9"),
            });
        }
        let indices = (0..labels.len()).collect();
        Ok(Self {
            kind,
            images,
            labels,
            indices,
        })
    }

    /// Whether this is (a subset of) the training or the test split.
    pub fn kind(&self) -> SplitKind {
        self.kind
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// All pixels, `len() * 3 * 32 * 32` bytes, NCHW.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// The labels, one per image, each 0-9.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// For each image, its index in the full split (`0..50,000` or `0..10,000`).
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// The 3,072 bytes (CHW) of image `i`, or `None` past the end.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        self.images.get(i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES)
    }

    /// Number of images of each class.
    pub fn class_counts(&self) -> [usize; NUM_CLASSES] {
        let mut counts = [0; NUM_CLASSES];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// The images normalised with `norm`, in one pass, as a new buffer
    /// (`len() * 3072` floats, NCHW).
    pub fn to_f32(&self, norm: &Normalization) -> Vec<f32> {
        norm.normalize(&self.images)
    }

    /// The images normalised with `norm` into `out`, which must hold exactly
    /// `len() * 3072` floats.
    pub fn to_f32_into(&self, norm: &Normalization, out: &mut [f32]) -> Result<()> {
        norm.normalize_into(&self.images, out)
    }

    /// The images at positions `positions` (in this split) as a new split,
    /// in the given order.
    pub fn select(&self, positions: &[usize]) -> Result<Split> {
        let mut images = Vec::with_capacity(positions.len() * IMAGE_BYTES);
        let mut labels = Vec::with_capacity(positions.len());
        let mut indices = Vec::with_capacity(positions.len());
        for &p in positions {
            let Some(img) = self.image(p) else {
                return Err(DatasetError::InvalidArgument {
                    name: "positions",
                    reason: format!("position {p} is past the end of a split of {}", self.len()),
                });
            };
            images.extend_from_slice(img);
            labels.push(self.labels[p]);
            indices.push(self.indices[p]);
        }
        Ok(Split {
            kind: self.kind,
            images,
            labels,
            indices,
        })
    }

    /// The first `n` images.
    pub fn first(&self, n: usize) -> Result<Split> {
        if n > self.len() {
            return Err(DatasetError::SubsetTooLarge {
                what: format!("first n of the {} split", self.kind),
                requested: n,
                available: self.len(),
            });
        }
        Ok(Split {
            kind: self.kind,
            images: self.images[..n * IMAGE_BYTES].to_vec(),
            labels: self.labels[..n].to_vec(),
            indices: self.indices[..n].to_vec(),
        })
    }

    /// A class-stratified random subset of `n` images, in their original
    /// order.
    ///
    /// Each class gets `n` times its share of this split, rounded down; the
    /// images left over go to the classes with the largest remainders (ties:
    /// lower class first). Within a class the images are a prefix of a
    /// Fisher-Yates shuffle driven by `ChaCha8Rng::seed_from_u64(seed)`
    /// (stream 1), so the same seed gives the same subset on every machine.
    pub fn stratified(&self, n: usize, seed: u64) -> Result<Split> {
        let total = self.len();
        if n > total {
            return Err(DatasetError::SubsetTooLarge {
                what: format!("stratified subset of the {} split", self.kind),
                requested: n,
                available: total,
            });
        }
        let counts = self.class_counts();
        let mut quota = [0usize; NUM_CLASSES];
        let mut remainders = Vec::with_capacity(NUM_CLASSES);
        for c in 0..NUM_CLASSES {
            // n * count <= 50,000^2: no overflow in u128 nor in practice in usize.
            let scaled = (n as u128) * (counts[c] as u128);
            quota[c] = (scaled / total.max(1) as u128) as usize;
            remainders.push((scaled % total.max(1) as u128, c));
        }
        let mut left = n - quota.iter().sum::<usize>();
        remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, c) in &remainders {
            if left == 0 {
                break;
            }
            if quota[c] < counts[c] {
                quota[c] += 1;
                left -= 1;
            }
        }
        if left > 0 {
            return Err(DatasetError::SubsetTooLarge {
                what: "stratified subset (classes too small)".into(),
                requested: n,
                available: n - left,
            });
        }

        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); NUM_CLASSES];
        for (p, &l) in self.labels.iter().enumerate() {
            by_class[usize::from(l)].push(p);
        }
        let mut rng = rng(seed, STREAM_SUBSET);
        let mut chosen = Vec::with_capacity(n);
        for (c, members) in by_class.iter_mut().enumerate() {
            shuffle(&mut rng, members);
            chosen.extend_from_slice(&members[..quota[c]]);
        }
        chosen.sort_unstable();
        self.select(&chosen)
    }

    /// A copy with random labels (the control of the paper's Section 7),
    /// drawn from `ChaCha8Rng::seed_from_u64(seed)` (stream 2), and a record
    /// of what was done for the result's metadata.
    pub fn with_random_labels(&self, mode: LabelNoise, seed: u64) -> (Split, RandomLabels) {
        let mut rng = rng(seed, STREAM_LABELS);
        let mut labels = self.labels.clone();
        match mode {
            LabelNoise::Permutation => shuffle(&mut rng, &mut labels),
            LabelNoise::Uniform => {
                for l in &mut labels {
                    *l = below(&mut rng, NUM_CLASSES as u64) as u8;
                }
            }
        }
        let changed = labels
            .iter()
            .zip(&self.labels)
            .filter(|(a, b)| a != b)
            .count();
        let split = Split {
            kind: self.kind,
            images: self.images.clone(),
            labels,
            indices: self.indices.clone(),
        };
        let record = RandomLabels {
            mode,
            seed,
            images: split.len(),
            changed,
            labels_crc32: crc32fast::hash(&split.labels),
            class_counts: split.class_counts(),
        };
        (split, record)
    }
}
