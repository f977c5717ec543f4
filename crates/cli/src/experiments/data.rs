//! CIFAR-10 for an experiment: which images, normalised how, on which device.
use std::path::PathBuf;

use anyhow::{Context, Result};
use landscape_dataset as dataset;
use landscape_net::Data;
use serde::{Deserialize, Serialize};

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
    /// Training images (None: all 50,000).
    pub train_size: Option<usize>,
    /// Test images (None: all 10,000).
    pub test_size: Option<usize>,
    pub subset: SubsetKind,
    pub subset_seed: u64,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            train_size: None,
            test_size: None,
            subset: SubsetKind::Stratified,
            subset_seed: 0,
        }
    }
}

impl DataConfig {
    pub fn validate(&self, prefix: &str) -> Result<()> {
        use super::config::ensure;
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
}

/// The loaded training and test sets, on the device, and what they are.
pub struct ExperimentData {
    pub train: Data,
    pub test: Data,
    /// Where the images came from.
    pub source: PathBuf,
    pub train_len: usize,
    pub test_len: usize,
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

/// Loads CIFAR-10 (from `--data`, `LANDSCAPE_CIFAR10` or the workspace's
/// `data/`), takes the configured subsets, normalises with the per-channel
/// mean and standard deviation of the whole training split, and moves both
/// sets to `device`.
pub fn load(
    cfg: &DataConfig,
    data_dir: Option<&std::path::Path>,
    device: tch::Device,
) -> Result<ExperimentData> {
    let dir = dataset::locate(data_dir)?;
    let cifar = dataset::Cifar10::load(&dir)
        .with_context(|| format!("loading CIFAR-10 from {}", dir.display()))?;
    let norm = dataset::Normalization::from_split(cifar.train())?;
    let train = pick(cifar.train(), cfg.train_size, cfg.subset, cfg.subset_seed)?;
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
        train_len: train.len(),
        test_len: test.len(),
        train: to_data(&train)?,
        test: to_data(&test)?,
        source: dir,
    })
}
