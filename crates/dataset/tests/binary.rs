//! The binary layout: exact reading and every error on bad files.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::fs;

use common::{binary_batch, image, label, write_binary, N};
use landscape_dataset::{
    verify, Cifar10, DatasetError, Layout, LoadParams, SplitKind, CLASS_NAMES, IMAGE_BYTES,
    RECORD_BYTES,
};

fn params() -> LoadParams {
    LoadParams::new().records_per_batch(N)
}

#[test]
fn reads_every_byte_and_label_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_binary(tmp.path());
    let c = params().load(&dir).unwrap();
    assert_eq!(c.layout(), Layout::Binary);
    assert_eq!(c.class_names(), CLASS_NAMES);
    let train = c.train();
    assert_eq!(train.kind(), SplitKind::Train);
    assert_eq!(train.len(), 5 * N);
    assert_eq!(train.images().len(), 5 * N * IMAGE_BYTES);
    for b in 0..5 {
        for i in 0..N {
            let k = b * N + i;
            assert_eq!(train.labels()[k], label(b, i), "label {k}");
            assert_eq!(train.image(k).unwrap(), image(b, i).as_slice(), "image {k}");
        }
    }
    assert_eq!(train.indices(), (0..5 * N).collect::<Vec<_>>().as_slice());
    let test = c.test();
    assert_eq!(test.kind(), SplitKind::Test);
    assert_eq!(test.len(), N);
    assert_eq!(test.image(3).unwrap(), image(5, 3).as_slice());
    assert_eq!(test.labels()[7], label(5, 7));
    assert!(test.image(N).is_none());
    assert_eq!(c.files().len(), 6);
    assert_eq!(c.files()[5].bytes, (N * RECORD_BYTES) as u64);
}

#[test]
fn official_sizes_are_the_default() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_binary(tmp.path());
    // The fixture has N records per batch: the default expects 10,000.
    match Cifar10::load(&dir).unwrap_err() {
        DatasetError::TruncatedBatch {
            path,
            expected_records,
            record,
            offset,
            ..
        } => {
            assert!(path.ends_with("data_batch_1.bin"));
            assert_eq!(expected_records, 10_000);
            assert_eq!(record, N);
            assert_eq!(offset, (N * RECORD_BYTES) as u64);
        }
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn missing_batch_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_binary(tmp.path());
    fs::remove_file(dir.join("data_batch_4.bin")).unwrap();
    let err = params().load(&dir).unwrap_err();
    let msg = err.to_string();
    match err {
        DatasetError::MissingFile { path, .. } => assert!(path.ends_with("data_batch_4.bin")),
        e => panic!("unexpected {e}"),
    }
    assert!(msg.contains("test_batch.bin"), "{msg}");
}

#[test]
fn missing_meta_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_binary(tmp.path());
    fs::remove_file(dir.join("batches.meta.txt")).unwrap();
    match params().load(&dir).unwrap_err() {
        DatasetError::MissingFile { path, .. } => assert!(path.ends_with("batches.meta.txt")),
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn meta_with_wrong_class_count() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_binary(tmp.path());
    fs::write(dir.join("batches.meta.txt"), "airplane\nautomobile\n").unwrap();
    let err = params().load(&dir).unwrap_err();
    assert!(matches!(err, DatasetError::BadMeta { .. }), "{err}");
    assert!(err.to_string().contains("lists 2 names"), "{err}");
}

#[test]
fn empty_folder_is_not_a_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let err = params().load(tmp.path()).unwrap_err();
    assert!(matches!(err, DatasetError::MissingFile { .. }), "{err}");
}

#[test]
fn truncated_mid_record_names_record_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_binary(tmp.path());
    let mut bytes = binary_batch(2, N);
    bytes.truncate(7 * RECORD_BYTES + 100);
    fs::write(dir.join("data_batch_3.bin"), &bytes).unwrap();
    let err = params().load(&dir).unwrap_err();
    let msg = err.to_string();
    match err {
        DatasetError::TruncatedBatch {
            path,
            len,
            record,
            offset,
            ..
        } => {
            assert!(path.ends_with("data_batch_3.bin"));
            assert_eq!(len, bytes.len() as u64);
            assert_eq!(record, 7);
            assert_eq!(offset, (7 * RECORD_BYTES) as u64);
        }
        e => panic!("unexpected {e}"),
    }
    assert!(
        msg.contains("cut short") && msg.contains("byte offset 21511"),
        "{msg}"
    );
}

#[test]
fn oversized_batch_names_the_extra_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_binary(tmp.path());
    let mut bytes = binary_batch(5, N);
    bytes.extend_from_slice(&[1, 2, 3]);
    fs::write(dir.join("test_batch.bin"), &bytes).unwrap();
    let err = params().load(&dir).unwrap_err();
    match &err {
        DatasetError::OversizedBatch {
            path,
            len,
            expected_len,
            ..
        } => {
            assert!(path.ends_with("test_batch.bin"));
            assert_eq!(*len, (N * RECORD_BYTES + 3) as u64);
            assert_eq!(*expected_len, (N * RECORD_BYTES) as u64);
        }
        e => panic!("unexpected {e}"),
    }
    assert!(err.to_string().contains("from byte offset 61460"), "{err}");
}

#[test]
fn label_out_of_range_names_record_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_binary(tmp.path());
    let mut bytes = binary_batch(4, N);
    bytes[11 * RECORD_BYTES] = 10;
    fs::write(dir.join("data_batch_5.bin"), &bytes).unwrap();
    let err = params().load(&dir).unwrap_err();
    match &err {
        DatasetError::LabelOutOfRange {
            path,
            record,
            offset,
            label,
        } => {
            assert!(path.ends_with("data_batch_5.bin"));
            assert_eq!(*record, 11);
            assert_eq!(*offset, Some((11 * RECORD_BYTES) as u64));
            assert_eq!(*label, 10);
        }
        e => panic!("unexpected {e}"),
    }
    assert!(err.to_string().contains("label 10 is outside 0-9"), "{err}");
}

#[test]
fn verify_reports_counts_ranges_and_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_binary(tmp.path());
    let report = params().load(&dir).unwrap().report();
    assert_eq!(report.train_images(), 5 * N);
    assert_eq!(report.test_images(), N);
    assert_eq!(report.files.len(), 6);
    for (b, f) in report.files.iter().enumerate() {
        assert_eq!(f.records, N);
        assert_eq!(f.bytes, (N * RECORD_BYTES) as u64);
        let labels: Vec<u8> = (0..N).map(|i| label(b, i)).collect();
        assert_eq!(f.label_min, *labels.iter().min().unwrap());
        assert_eq!(f.label_max, *labels.iter().max().unwrap());
        assert_eq!(f.class_counts.iter().sum::<usize>(), N);
    }
    // N = 20 records cycle through 10 classes: 2 per class per batch.
    assert_eq!(report.test_class_counts, [2; 10]);
    assert_eq!(report.train_class_counts, [10; 10]);
    // `verify` uses the official sizes, so the small fixture fails it.
    assert!(matches!(
        verify(&dir).unwrap_err(),
        DatasetError::TruncatedBatch { .. }
    ));
}
