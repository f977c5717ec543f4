//! Fixtures the tests write themselves: small CIFAR-10 folders of both
//! layouts and `.tar.gz` archives of them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use landscape_dataset::{Layout, CLASS_NAMES, IMAGE_BYTES};
use serde_pickle::{HashableValue, SerOptions, Value};

/// Records per batch in the fixtures.
pub const N: usize = 20;

/// Label of record `i` of batch `b` (0-4 train, 5 test): cycles through the
/// classes with a batch-dependent offset.
pub fn label(b: usize, i: usize) -> u8 {
    ((i * 3 + b) % 10) as u8
}

/// Pixel `j` of record `i` of batch `b`.
pub fn pixel(b: usize, i: usize, j: usize) -> u8 {
    ((b * 131 + i * 31 + j * 7 + j / 1024 * 50) % 256) as u8
}

pub fn image(b: usize, i: usize) -> Vec<u8> {
    (0..IMAGE_BYTES).map(|j| pixel(b, i, j)).collect()
}

/// One binary batch file's bytes.
pub fn binary_batch(b: usize, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 3073);
    for i in 0..n {
        out.push(label(b, i));
        out.extend(image(b, i));
    }
    out
}

pub fn batch_names(layout: Layout) -> Vec<String> {
    let mut names = layout.train_files().to_vec();
    names.push(layout.test_file());
    names
}

/// Writes `<root>/cifar-10-batches-bin` with `N` records per batch.
pub fn write_binary(root: &Path) -> PathBuf {
    let dir = root.join(Layout::Binary.folder_name());
    fs::create_dir_all(&dir).unwrap();
    for (b, name) in batch_names(Layout::Binary).iter().enumerate() {
        fs::write(dir.join(name), binary_batch(b, N)).unwrap();
    }
    let mut meta = CLASS_NAMES.join("\n");
    meta.push_str("\n\n");
    fs::write(dir.join("batches.meta.txt"), meta).unwrap();
    dir
}

fn key(k: &str) -> HashableValue {
    HashableValue::Bytes(k.as_bytes().to_vec())
}

/// A Python-layout batch dict as serde-pickle writes it (`data` as raw bytes).
pub fn python_batch_value(b: usize, n: usize) -> Value {
    let mut data = Vec::with_capacity(n * IMAGE_BYTES);
    for i in 0..n {
        data.extend(image(b, i));
    }
    let labels = (0..n).map(|i| Value::I64(i64::from(label(b, i)))).collect();
    let mut d = BTreeMap::new();
    d.insert(key("batch_label"), Value::Bytes(b"fixture".to_vec()));
    d.insert(key("labels"), Value::List(labels));
    d.insert(key("data"), Value::Bytes(data));
    Value::Dict(d)
}

pub fn pickle(v: &Value) -> Vec<u8> {
    serde_pickle::value_to_vec(v, SerOptions::new()).unwrap()
}

/// Writes `<root>/cifar-10-batches-py` with `N` records per batch.
pub fn write_python(root: &Path) -> PathBuf {
    let dir = root.join(Layout::Python.folder_name());
    fs::create_dir_all(&dir).unwrap();
    for (b, name) in batch_names(Layout::Python).iter().enumerate() {
        fs::write(dir.join(name), pickle(&python_batch_value(b, N))).unwrap();
    }
    let names = CLASS_NAMES
        .iter()
        .map(|n| Value::String((*n).to_string()))
        .collect();
    let mut meta = BTreeMap::new();
    meta.insert(
        HashableValue::String("label_names".into()),
        Value::List(names),
    );
    meta.insert(HashableValue::String("num_vis".into()), Value::I64(3072));
    fs::write(dir.join("batches.meta"), pickle(&Value::Dict(meta))).unwrap();
    dir
}

/// Packs the folder `dir` (as its own name at the top level) into `archive`.
pub fn tar_gz(dir: &Path, archive: &Path) {
    let file = fs::File::create(archive).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all(dir.file_name().unwrap(), dir).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
}
