//! The Python (pickle) layout: serde-pickle fixtures, numpy pickles written by
//! Python (protocols 2 and 5, and a Python 2 style file), and every error.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::{image, label, pickle, python_batch_value, write_python, N};
use landscape_dataset::{DatasetError, Layout, LoadParams, CLASS_NAMES, IMAGE_BYTES};
use proptest::prelude::*;
use serde_pickle::{HashableValue, Value};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn params() -> LoadParams {
    LoadParams::new().records_per_batch(N)
}

#[test]
fn reads_serde_pickle_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_python(tmp.path());
    let c = params().load(&dir).unwrap();
    assert_eq!(c.layout(), Layout::Python);
    assert_eq!(c.class_names(), CLASS_NAMES);
    assert_eq!(c.train().len(), 5 * N);
    assert_eq!(c.test().len(), N);
    for b in 0..5 {
        for i in 0..N {
            assert_eq!(c.train().labels()[b * N + i], label(b, i));
            assert_eq!(c.train().image(b * N + i).unwrap(), image(b, i).as_slice());
        }
    }
    assert_eq!(c.test().image(N - 1).unwrap(), image(5, N - 1).as_slice());
}

/// A Python-layout folder whose six batches are copies of one numpy fixture
/// (4 images: pixel j of image i is (31 i + 7 j) mod 256, labels 3, 0, 9, 5).
fn numpy_layout(root: &Path, fixture: &str) -> PathBuf {
    let src = fs::read(Path::new(FIXTURES).join(fixture)).unwrap();
    let dir = write_python(root);
    for name in common::batch_names(Layout::Python) {
        fs::write(dir.join(name), &src).unwrap();
    }
    dir
}

fn check_numpy_fixture(fixture: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = numpy_layout(tmp.path(), fixture);
    let c = LoadParams::new().records_per_batch(4).load(&dir).unwrap();
    assert_eq!(c.train().len(), 20);
    assert_eq!(c.test().labels(), &[3, 0, 9, 5]);
    for i in 0..4 {
        let want: Vec<u8> = (0..IMAGE_BYTES)
            .map(|j| ((i * 31 + j * 7) % 256) as u8)
            .collect();
        assert_eq!(
            c.test().image(i).unwrap(),
            want.as_slice(),
            "{fixture} image {i}"
        );
        assert_eq!(c.train().image(8 + i).unwrap(), want.as_slice());
    }
}

#[test]
fn reads_numpy_pickle_protocol2_from_python3() {
    check_numpy_fixture("numpy_batch_protocol2.pickle");
}

#[test]
fn reads_numpy_pickle_protocol5() {
    check_numpy_fixture("numpy_batch_protocol5.pickle");
}

#[test]
fn reads_python2_style_numpy_pickle() {
    check_numpy_fixture("numpy_batch_python2.pickle");
}

#[test]
fn numpy_array_of_wrong_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = numpy_layout(tmp.path(), "numpy_batch_python2.pickle");
    // Reshape (4, 3072) to (2, 6144) in the pickle's state tuple.
    let mut bytes = fs::read(dir.join("data_batch_2")).unwrap();
    let from = b"K\x01K\x04M\x00\x0c\x86";
    let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
    bytes[at..at + from.len()].copy_from_slice(b"K\x01K\x02M\x00\x18\x86");
    fs::write(dir.join("data_batch_2"), &bytes).unwrap();
    let err = LoadParams::new()
        .records_per_batch(4)
        .load(&dir)
        .unwrap_err();
    match &err {
        DatasetError::PickleShape {
            path,
            field,
            expected,
            found,
        } => {
            assert!(path.ends_with("data_batch_2"));
            assert_eq!(field, "data");
            assert!(expected.contains("(4, 3072)"), "{expected}");
            assert!(found.contains("[2, 6144]"), "{found}");
        }
        e => panic!("unexpected {e}"),
    }
}

fn write_batch(dir: &Path, name: &str, v: &Value) {
    fs::write(dir.join(name), pickle(v)).unwrap();
}

fn with_entry(b: usize, key: &str, value: Option<Value>) -> Value {
    let Value::Dict(mut d) = python_batch_value(b, N) else {
        unreachable!()
    };
    let k = HashableValue::Bytes(key.as_bytes().to_vec());
    match value {
        Some(v) => d.insert(k, v),
        None => d.remove(&k),
    };
    Value::Dict(d)
}

fn shape_error(dir: &Path) -> (PathBuf, String, String, String) {
    match params().load(dir).unwrap_err() {
        DatasetError::PickleShape {
            path,
            field,
            expected,
            found,
        } => (path, field, expected, found),
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn data_of_wrong_length() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_python(tmp.path());
    let data = Value::Bytes(vec![0; N * IMAGE_BYTES - 1]);
    write_batch(&dir, "data_batch_3", &with_entry(2, "data", Some(data)));
    let (path, field, _, found) = shape_error(&dir);
    assert!(path.ends_with("data_batch_3"));
    assert_eq!(field, "data");
    assert!(found.contains("61439"), "{found}");
}

#[test]
fn data_of_wrong_type() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_python(tmp.path());
    write_batch(
        &dir,
        "test_batch",
        &with_entry(5, "data", Some(Value::I64(7))),
    );
    let (path, field, expected, found) = shape_error(&dir);
    assert!(path.ends_with("test_batch"));
    assert_eq!(field, "data");
    assert!(expected.contains("uint8 array"), "{expected}");
    assert!(found.contains("integer 7"), "{found}");
}

#[test]
fn missing_labels_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_python(tmp.path());
    write_batch(&dir, "data_batch_1", &with_entry(0, "labels", None));
    let (path, field, _, found) = shape_error(&dir);
    assert!(path.ends_with("data_batch_1"));
    assert_eq!(field, "labels");
    assert!(
        found.contains("batch_label") && found.contains("data"),
        "{found}"
    );
}

#[test]
fn wrong_number_of_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_python(tmp.path());
    let labels = Value::List(vec![Value::I64(1); N + 1]);
    write_batch(&dir, "data_batch_2", &with_entry(1, "labels", Some(labels)));
    let (_, field, expected, found) = shape_error(&dir);
    assert_eq!(field, "labels");
    assert_eq!(expected, format!("{N} labels"));
    assert_eq!(found, format!("{} labels", N + 1));
}

#[test]
fn label_out_of_range_names_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_python(tmp.path());
    let mut labels = vec![Value::I64(0); N];
    labels[13] = Value::I64(-1);
    write_batch(
        &dir,
        "data_batch_4",
        &with_entry(3, "labels", Some(Value::List(labels))),
    );
    match params().load(&dir).unwrap_err() {
        DatasetError::LabelOutOfRange {
            path,
            record,
            offset,
            label,
        } => {
            assert!(path.ends_with("data_batch_4"));
            assert_eq!((record, offset, label), (13, None, -1));
        }
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn top_level_not_a_dict() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_python(tmp.path());
    write_batch(&dir, "data_batch_5", &Value::List(vec![Value::I64(1)]));
    let (path, field, _, found) = shape_error(&dir);
    assert!(path.ends_with("data_batch_5"));
    assert_eq!(field, "<top>");
    assert!(found.contains("list of 1"), "{found}");
}

#[test]
fn meta_without_label_names() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_python(tmp.path());
    let mut d = BTreeMap::new();
    d.insert(HashableValue::String("num_vis".into()), Value::I64(3072));
    write_batch(&dir, "batches.meta", &Value::Dict(d));
    let (path, field, _, _) = shape_error(&dir);
    assert!(path.ends_with("batches.meta"));
    assert_eq!(field, "label_names");
}

#[test]
fn truncated_pickle_names_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_python(tmp.path());
    let bytes = pickle(&python_batch_value(0, N));
    fs::write(dir.join("data_batch_1"), &bytes[..bytes.len() / 2]).unwrap();
    match params().load(&dir).unwrap_err() {
        DatasetError::Pickle {
            path,
            offset,
            reason,
        } => {
            assert!(path.ends_with("data_batch_1"));
            assert!(offset < bytes.len() as u64 / 2);
            assert!(reason.contains("file ends"), "{reason}");
        }
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn unknown_opcode_names_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_python(tmp.path());
    fs::write(dir.join("test_batch"), b"\x80\x02}\xff.").unwrap();
    match params().load(&dir).unwrap_err() {
        DatasetError::Pickle { offset, reason, .. } => {
            assert_eq!(offset, 3);
            assert!(reason.contains("0xff"), "{reason}");
        }
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn missing_pickle_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_python(tmp.path());
    fs::remove_file(dir.join("test_batch")).unwrap();
    match params().load(&dir).unwrap_err() {
        DatasetError::MissingFile { path, layout, .. } => {
            assert!(path.ends_with("test_batch"));
            assert_eq!(layout, "python");
        }
        e => panic!("unexpected {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Damaged pickles (cut anywhere, or with a byte changed) give an error
    /// or a valid batch, never a panic.
    #[test]
    fn damaged_pickles_never_panic(cut in 0usize..12_546, at in 0usize..12_546, byte: u8) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = numpy_layout(tmp.path(), "numpy_batch_python2.pickle");
        let mut bytes = fs::read(dir.join("test_batch")).unwrap();
        let at = at % bytes.len();
        bytes[at] = byte;
        bytes.truncate(cut.max(1));
        fs::write(dir.join("test_batch"), &bytes).unwrap();
        let result = LoadParams::new().records_per_batch(4).load(&dir);
        if let Ok(c) = result {
            prop_assert_eq!(c.test().len(), 4);
        }
    }
}
