//! CIFAR-10 for an experiment: which images, normalised how, on which device,
//! and an identity of the subset (indices and labels) for provenance.
use std::path::PathBuf;

use anyhow::{Context, Result};
use landscape_dataset as dataset;
use landscape_net::Data;
use serde::{Deserialize, Serialize};

use crate::config::ensure;
use crate::ExperimentError;

/// How the training and test subsets are chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubsetKind {
    /// A class-stratified random subset (seeded: the same on every machine).
    #[default]
    Stratified,
    /// The first n images.
    First,
}

/// The data an experiment trains and evaluates on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Training images (absent: all 50,000).
    pub train_size: Option<usize>,
    /// Test images (absent: all 10,000).
    pub test_size: Option<usize>,
    /// How subsets are drawn.
    pub subset: SubsetKind,
    /// Seed of the stratified subsets (the test subset uses `subset_seed + 1`).
    pub subset_seed: u64,
    /// Replace the training labels at random (the paper's Section 7 control);
    /// the test set keeps its true labels. Absent: true labels.
    pub random_labels: Option<RandomLabelsConfig>,
}

/// How training labels are randomised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomLabelsConfig {
    /// `permutation` (a seeded shuffle of the labels: class counts kept) or
    /// `uniform` (each label drawn uniformly from 0-9).
    pub mode: dataset::LabelNoise,
    /// The seed of the draw.
    pub seed: u64,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            train_size: None,
            test_size: None,
            subset: SubsetKind::Stratified,
            subset_seed: 0,
            random_labels: None,
        }
    }
}

impl DataConfig {
    /// Checks the sizes; `prefix` is the scale.
    pub fn validate(&self, prefix: &str) -> Result<(), ExperimentError> {
        if let Some(n) = self.train_size {
            ensure(
                (10..=50_000).contains(&n),
                &format!("{prefix}.data.train_size"),
                format!("{n} must be between 10 and 50000"),
            )?;
        }
        if let Some(n) = self.test_size {
            ensure(
                (10..=10_000).contains(&n),
                &format!("{prefix}.data.test_size"),
                format!("{n} must be between 10 and 10000"),
            )?;
        }
        Ok(())
    }

    /// Number of training images this config selects.
    pub fn train_len(&self) -> usize {
        self.train_size.unwrap_or(50_000)
    }
}

/// What a subset is, for provenance: its size and CRC32s of its original
/// indices and of its labels (in order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubsetIdentity {
    /// Number of images.
    pub len: usize,
    /// CRC32 of the original indices, as little-endian u64s.
    pub indices_crc32: u32,
    /// CRC32 of the labels, one byte each (after randomisation, if any).
    pub labels_crc32: u32,
}

impl SubsetIdentity {
    fn of(split: &dataset::Split) -> Self {
        let mut h = crc32fast::Hasher::new();
        for &i in split.indices() {
            h.update(&(i as u64).to_le_bytes());
        }
        SubsetIdentity {
            len: split.len(),
            indices_crc32: h.finalize(),
            labels_crc32: crc32fast::hash(split.labels()),
        }
    }
}

/// The loaded training and test sets, on the device, and what they are.
pub struct ExperimentData {
    /// Training images and labels.
    pub train: Data,
    /// Test images and labels.
    pub test: Data,
    /// Where the images came from.
    pub source: PathBuf,
    /// Identity of the training subset.
    pub train_id: SubsetIdentity,
    /// Identity of the test subset.
    pub test_id: SubsetIdentity,
    /// Per-channel normalisation (mean, std) of the whole training split.
    pub normalization: ([f64; 3], [f64; 3]),
    /// What was done to the training labels, if they were randomised (which
    /// seed, how many changed, CRC32 of the new labels).
    pub random_labels: Option<dataset::RandomLabels>,
}

impl ExperimentData {
    /// Number of training images.
    pub fn train_len(&self) -> usize {
        self.train_id.len
    }
    /// Number of test images.
    pub fn test_len(&self) -> usize {
        self.test_id.len
    }
}

/// Another draw of the training images an analysis averages over (e.g. the
/// Hessian's sample of `size` images with its own seed): `size` images,
/// class-stratified, drawn with `seed` from the run's training subset when
/// they fit in it (the labels the run trained on, random ones included), and
/// otherwise from the whole training split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resample {
    /// Images.
    pub size: usize,
    /// Seed of the stratified draw.
    pub seed: u64,
}

impl Resample {
    /// Whether the draw is from the run's training subset (of `cfg`) rather
    /// than from the whole training split.
    pub fn within_run(&self, cfg: &DataConfig) -> bool {
        self.size <= cfg.train_len()
    }

    /// Where the draw comes from, in words, for the recorded settings.
    pub fn source(&self, cfg: &DataConfig) -> String {
        if self.within_run(cfg) {
            format!("the run's training subset ({} images)", cfg.train_len())
        } else {
            "the whole training split (50000 images)".to_owned()
        }
    }
}

fn pick(
    split: &dataset::Split,
    n: Option<usize>,
    kind: SubsetKind,
    seed: u64,
) -> Result<dataset::Split> {
    match n {
        None => Ok(split.clone()),
        Some(n) => match kind {
            SubsetKind::First => split.first(n).context("choosing the first images"),
            SubsetKind::Stratified => split
                .stratified(n, seed)
                .context("choosing a stratified subset"),
        },
    }
}

/// Loads CIFAR-10 (from `data_dir`, `LANDSCAPE_CIFAR10` or the workspace's
/// `data/`), takes the configured subsets, normalises with the per-channel
/// mean and standard deviation of the whole training split, and moves both
/// sets to `device`.
pub fn load(
    cfg: &DataConfig,
    data_dir: Option<&std::path::Path>,
    device: landscape_net::tch::Device,
) -> Result<ExperimentData> {
    load_resampled(cfg, None, data_dir, device)
}

/// As [`load`], with the training set replaced by `resample`'s draw when
/// given (the test set is the configured one either way).
pub fn load_resampled(
    cfg: &DataConfig,
    resample: Option<Resample>,
    data_dir: Option<&std::path::Path>,
    device: landscape_net::tch::Device,
) -> Result<ExperimentData> {
    let dir = dataset::locate(data_dir)?;
    let cifar = dataset::Cifar10::load(&dir)
        .with_context(|| format!("loading CIFAR-10 from {}", dir.display()))?;
    let norm = dataset::Normalization::from_split(cifar.train())?;
    let train = pick(cifar.train(), cfg.train_size, cfg.subset, cfg.subset_seed)?;
    let (train, random_labels) = match cfg.random_labels {
        None => (train, None),
        Some(r) => {
            let (split, record) = train.with_random_labels(r.mode, r.seed);
            tracing::info!(
                changed = record.changed,
                images = record.images,
                "training labels randomised"
            );
            (split, Some(record))
        }
    };
    let train = match resample {
        None => train,
        Some(r) if r.within_run(cfg) => train
            .stratified(r.size, r.seed)
            .context("drawing a stratified sample of the run's training subset")?,
        Some(r) => {
            if cfg.random_labels.is_some() {
                anyhow::bail!(
                    "a sample of {} images is larger than the run's training subset ({}), \
                     whose labels were randomised: images outside it have no labels of the run",
                    r.size,
                    cfg.train_len()
                );
            }
            cifar
                .train()
                .stratified(r.size, r.seed)
                .context("drawing a stratified sample of the training split")?
        }
    };
    let test = pick(
        cifar.test(),
        cfg.test_size,
        cfg.subset,
        cfg.subset_seed.wrapping_add(1),
    )?;
    let to_data = |s: &dataset::Split| -> Result<Data> {
        let x = s.to_f32(&norm);
        Ok(Data::new(&x, s.labels(), device)?)
    };
    Ok(ExperimentData {
        train_id: SubsetIdentity::of(&train),
        test_id: SubsetIdentity::of(&test),
        normalization: (norm.mean, norm.std),
        random_labels,
        train: to_data(&train)?,
        test: to_data(&test)?,
        source: dir,
    })
}
