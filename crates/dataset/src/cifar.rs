//! Loading a CIFAR-10 folder and checking it.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DatasetError, Result};
use crate::layout::Layout;
use crate::split::{Split, SplitKind};
use crate::{IMAGE_BYTES, NUM_CLASSES, RECORDS_PER_BATCH};

/// Parameters of a load: how many records each batch file must hold.
///
/// The official files hold 10,000 records each; anything else is reported as
/// a truncated or oversized batch. Tests on small fixtures set fewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadParams {
    records_per_batch: usize,
}

impl Default for LoadParams {
    fn default() -> Self {
        Self {
            records_per_batch: RECORDS_PER_BATCH,
        }
    }
}

impl LoadParams {
    /// The official sizes: 10,000 records per batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Expect `n` records in every batch file (e.g. for small fixtures).
    pub fn records_per_batch(mut self, n: usize) -> Self {
        self.records_per_batch = n;
        self
    }

    /// Reads the CIFAR-10 folder `dir` (either layout, detected from its
    /// files; see [`crate::locate`] to find it).
    pub fn load(&self, dir: &Path) -> Result<Cifar10> {
        if self.records_per_batch == 0 {
            return Err(DatasetError::InvalidArgument {
                name: "records_per_batch",
                reason: "must be at least 1".into(),
            });
        }
        let layout = Layout::detect(dir).ok_or_else(|| DatasetError::MissingFile {
            path: dir.join(Layout::Binary.train_files()[0].as_str()),
            layout: "binary or python",
            expected: format!(
                "{} (binary) or {} (python)",
                Layout::Binary.expected_files(),
                Layout::Python.expected_files()
            ),
        })?;
        let started = std::time::Instant::now();
        let n = self.records_per_batch;
        let (class_names, meta_bytes) = layout.read_meta(&dir.join(layout.meta_file()))?;

        let mut files = Vec::with_capacity(6);
        let mut scratch = Vec::new();
        let mut read = |names: &[String], kind: SplitKind| -> Result<Split> {
            let mut images = Vec::with_capacity(names.len() * n * IMAGE_BYTES);
            let mut labels = Vec::with_capacity(names.len() * n);
            for name in names {
                let path = dir.join(name);
                let before = labels.len();
                let bytes = layout.read_batch(&path, n, &mut images, &mut labels, &mut scratch)?;
                files.push(FileReport::new(
                    name.clone(),
                    kind,
                    bytes,
                    &labels[before..],
                ));
            }
            Split::from_parts(kind, images, labels)
        };
        let train = read(&layout.train_files(), SplitKind::Train)?;
        let test = read(&[layout.test_file()], SplitKind::Test)?;
        tracing::debug!(
            dir = %dir.display(),
            %layout,
            train = train.len(),
            test = test.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded CIFAR-10"
        );
        Ok(Cifar10 {
            dir: dir.to_path_buf(),
            layout,
            class_names,
            meta_bytes,
            train,
            test,
            files,
        })
    }
}

/// CIFAR-10 in memory: the training and test splits, the class names, and
/// what was read from which file.
#[derive(Debug, Clone)]
pub struct Cifar10 {
    dir: PathBuf,
    layout: Layout,
    class_names: Vec<String>,
    meta_bytes: u64,
    train: Split,
    test: Split,
    files: Vec<FileReport>,
}

impl Cifar10 {
    /// Reads the folder `dir` with the official sizes ([`LoadParams::default`]).
    pub fn load(dir: &Path) -> Result<Self> {
        LoadParams::default().load(dir)
    }

    /// Load parameters, to change the expected batch size.
    pub fn params() -> LoadParams {
        LoadParams::default()
    }

    /// The folder read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The 10 class names from the meta file, in label order.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The training split (50,000 images).
    pub fn train(&self) -> &Split {
        &self.train
    }

    /// The test split (10,000 images).
    pub fn test(&self) -> &Split {
        &self.test
    }

    /// Both splits, by value.
    pub fn into_splits(self) -> (Split, Split) {
        (self.train, self.test)
    }

    /// The batch files read, in order.
    pub fn files(&self) -> &[FileReport] {
        &self.files
    }

    /// A summary for `landscape data verify`.
    pub fn report(&self) -> VerifyReport {
        VerifyReport {
            dir: self.dir.clone(),
            layout: self.layout,
            class_names: self.class_names.clone(),
            meta_file: self.layout.meta_file().to_string(),
            meta_bytes: self.meta_bytes,
            files: self.files.clone(),
            train_class_counts: self.train.class_counts(),
            test_class_counts: self.test.class_counts(),
        }
    }
}

/// What one batch file held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReport {
    /// File name within the folder.
    pub name: String,
    /// The split it belongs to.
    pub split: SplitKind,
    /// Its size in bytes.
    pub bytes: u64,
    /// Images it held.
    pub records: usize,
    /// Smallest label.
    pub label_min: u8,
    /// Largest label.
    pub label_max: u8,
    /// Images per class.
    pub class_counts: [usize; NUM_CLASSES],
}

impl FileReport {
    fn new(name: String, split: SplitKind, bytes: u64, labels: &[u8]) -> Self {
        let mut class_counts = [0; NUM_CLASSES];
        for &l in labels {
            class_counts[usize::from(l)] += 1;
        }
        Self {
            name,
            split,
            bytes,
            records: labels.len(),
            label_min: labels.iter().copied().min().unwrap_or(0),
            label_max: labels.iter().copied().max().unwrap_or(0),
            class_counts,
        }
    }
}

/// The result of checking a CIFAR-10 folder: every file was read in full,
/// sizes and labels are as expected (otherwise [`verify`] returns the error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// The folder.
    pub dir: PathBuf,
    /// Its layout.
    pub layout: Layout,
    /// The class names, in label order.
    pub class_names: Vec<String>,
    /// Name of the meta file.
    pub meta_file: String,
    /// Its size in bytes.
    pub meta_bytes: u64,
    /// The batch files.
    pub files: Vec<FileReport>,
    /// Training images per class.
    pub train_class_counts: [usize; NUM_CLASSES],
    /// Test images per class.
    pub test_class_counts: [usize; NUM_CLASSES],
}

impl VerifyReport {
    /// Number of training images.
    pub fn train_images(&self) -> usize {
        self.train_class_counts.iter().sum()
    }

    /// Number of test images.
    pub fn test_images(&self) -> usize {
        self.test_class_counts.iter().sum()
    }
}

/// Reads every file of the folder `dir` with the official sizes and reports
/// what it holds (see [`LoadParams::load`] for the errors).
pub fn verify(dir: &Path) -> Result<VerifyReport> {
    Ok(Cifar10::load(dir)?.report())
}
