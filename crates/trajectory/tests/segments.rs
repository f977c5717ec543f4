//! Segment files: rolling, reads across segments, what an interrupted
//! append leaves at a segment's end, the two head slots, and writers that
//! refuse to touch damaged stores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use landscape_trajectory::{
    segment_file_name, verify, Filter, Problem, Severity, SnapshotId, SnapshotKind, SnapshotMeta,
    Store, StoreError, Tensor,
};

fn tensors(k: u32) -> Vec<Tensor> {
    let v = |n: usize, salt: u32| -> Vec<f32> {
        (0..n as u32)
            .map(|i| {
                f32::from_bits(k.wrapping_mul(0x9E37_79B9) ^ i.wrapping_mul(2_654_435_761) ^ salt)
            })
            .collect()
    };
    vec![
        Tensor {
            name: "layer2.weight".into(),
            shape: vec![8, 3, 3, 3],
            data: v(216, 1),
        },
        Tensor {
            name: "layer2.bias".into(),
            shape: vec![8],
            data: v(8, 2),
        },
        Tensor {
            name: "layer3.weight".into(),
            shape: vec![4, 8, 3, 3],
            data: v(288, 3),
        },
    ]
}

fn append(store: &mut Store, k: u32) -> SnapshotId {
    let t = tensors(k);
    let refs: Vec<_> = t.iter().map(Tensor::as_ref).collect();
    store
        .append(
            SnapshotMeta::new("main", SnapshotKind::Trained).with_step(u64::from(k)),
            &refs,
        )
        .unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn check_layer2(store: &Store) {
    let m = store.read_layer(&Filter::all(), 2).unwrap();
    assert_eq!(m.ids().len(), store.len());
    for (row, id) in m.ids().iter().enumerate() {
        let want = tensors(id.get() as u32);
        let got = m.matrix().row(row).to_vec();
        assert_eq!(bits(&got[..216]), bits(&want[0].data), "row {row}");
        assert_eq!(bits(&got[216..]), bits(&want[1].data), "row {row}");
    }
}

fn warnings(dir: &Path) -> Vec<(String, Problem)> {
    let report = verify(dir).unwrap();
    assert!(report.is_intact(), "{:?}", report.findings());
    report
        .findings()
        .iter()
        .map(|f| (f.file.to_string_lossy().into_owned(), f.problem.clone()))
        .collect()
}

#[test]
fn segments_roll_at_the_limit_and_reads_span_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(dir.path()).unwrap();
    append(&mut store, 0);
    let len = store.get(SnapshotId(0)).unwrap().file_len();
    // Three snapshots per segment.
    store.set_segment_limit(16 + 3 * len);
    for k in 1..8 {
        append(&mut store, k);
    }
    let segments: Vec<u32> = store.snapshots().iter().map(|i| i.segment()).collect();
    assert_eq!(segments, vec![0, 0, 0, 1, 1, 1, 2, 2]);
    for i in store.snapshots() {
        assert_eq!(i.file(), Path::new(&segment_file_name(i.segment())));
    }
    // Regions lie back to back after each segment's 16-byte header.
    let second = store.get(SnapshotId(1)).unwrap();
    assert_eq!(second.offset(), 16 + len);
    assert_eq!(store.get(SnapshotId(3)).unwrap().offset(), 16);
    check_layer2(&store);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    check_layer2(&store);
    for k in 0..8u32 {
        let read = store.read_snapshot(SnapshotId(u64::from(k))).unwrap();
        for (a, b) in read.iter().zip(&tensors(k)) {
            assert_eq!(bits(&a.data), bits(&b.data));
        }
    }
    assert!(store.verify().unwrap().is_clean());
    // A snapshot larger than the limit gets a segment of its own.
    let mut store = store;
    store.set_segment_limit(10);
    append(&mut store, 8);
    append(&mut store, 9);
    assert_eq!(store.get(SnapshotId(8)).unwrap().segment(), 3);
    assert_eq!(store.get(SnapshotId(9)).unwrap().segment(), 4);
    check_layer2(&store);
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn an_interrupted_append_is_ignored_then_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(dir.path()).unwrap();
    append(&mut store, 0);
    append(&mut store, 1);
    let end = {
        let last = store.get(SnapshotId(1)).unwrap();
        last.offset() + last.file_len()
    };
    drop(store);
    // What a writer killed mid-append leaves: part of a snapshot at the end
    // of the segment, and a new segment it had just started.
    let seg0 = dir.path().join(segment_file_name(0));
    let bytes = std::fs::read(&seg0).unwrap();
    let mut f = OpenOptions::new().append(true).open(&seg0).unwrap();
    f.write_all(&bytes[16..400]).unwrap();
    drop(f);
    std::fs::write(dir.path().join(segment_file_name(1)), &bytes[..16]).unwrap();

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.len(), 2);
    check_layer2(&store);
    let found = warnings(dir.path());
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.contains(&(
        segment_file_name(0),
        Problem::UnindexedTail {
            start: end,
            len: 384
        }
    )));
    assert!(found.contains(&(segment_file_name(1), Problem::Unindexed)));

    // The next writer truncates the tail and removes the stale segment.
    let mut store = store;
    append(&mut store, 2);
    let third = store.get(SnapshotId(2)).unwrap();
    assert_eq!((third.segment(), third.offset()), (0, end));
    assert!(!dir.path().join(segment_file_name(1)).exists());
    assert_eq!(
        std::fs::metadata(&seg0).unwrap().len(),
        end + third.file_len()
    );
    check_layer2(&store);
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn one_damaged_head_slot_is_reported_and_survived() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(dir.path()).unwrap();
    append(&mut store, 0);
    append(&mut store, 1);
    drop(store);
    let head = dir.path().join("index.head");
    let good = std::fs::read(&head).unwrap();
    assert_eq!(good.len(), 64);
    for slot in 0..2 {
        let mut bytes = good.clone();
        bytes[slot * 32 + 14] ^= 0x40;
        std::fs::write(&head, &bytes).unwrap();
        // Readers use the other slot...
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.len(), 2);
        // ...and verify reports the damage, at the slot.
        let report = store.verify().unwrap();
        let errors: Vec<_> = report.errors().collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].file, Path::new("index.head"));
        assert_eq!(errors[0].offset, Some(slot as u64 * 32));
    }
    // Both slots damaged: a typed error.
    let mut bytes = good.clone();
    bytes[14] ^= 0x40;
    bytes[46] ^= 0x40;
    std::fs::write(&head, &bytes).unwrap();
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::Checksum { .. })
    ));
}

#[test]
fn lost_index_records_keep_their_snapshots_from_being_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(dir.path()).unwrap();
    append(&mut store, 0);
    let index_len = std::fs::metadata(dir.path().join("index.log"))
        .unwrap()
        .len();
    append(&mut store, 1);
    drop(store);
    let seg0 = dir.path().join(segment_file_name(0));
    let seg_len = std::fs::metadata(&seg0).unwrap().len();
    // Cut the index at a record boundary: the head knows better.
    let f = OpenOptions::new()
        .write(true)
        .open(dir.path().join("index.log"))
        .unwrap();
    f.set_len(index_len).unwrap();
    drop(f);
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::IndexTruncated { .. })
    ));
    let report = verify(dir.path()).unwrap();
    assert!(report
        .errors()
        .any(|f| matches!(f.problem, Problem::IndexTruncated { .. })));
    // Nothing was cut from the segment: snapshot 1 is still there.
    assert_eq!(std::fs::metadata(&seg0).unwrap().len(), seg_len);
}

#[test]
fn a_writer_refuses_a_segment_shorter_than_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(dir.path()).unwrap();
    append(&mut store, 0);
    append(&mut store, 1);
    drop(store);
    let seg0 = dir.path().join(segment_file_name(0));
    let short = std::fs::metadata(&seg0).unwrap().len() - 10;
    let f = OpenOptions::new().write(true).open(&seg0).unwrap();
    f.set_len(short).unwrap();
    drop(f);
    let mut store = Store::open(dir.path()).unwrap();
    let t = tensors(2);
    let refs: Vec<_> = t.iter().map(Tensor::as_ref).collect();
    assert!(matches!(
        store.append(SnapshotMeta::new("main", SnapshotKind::Trained), &refs),
        Err(StoreError::Truncated { .. })
    ));
    assert_eq!(std::fs::metadata(&seg0).unwrap().len(), short);
    // Snapshot 0 still reads; snapshot 1 is reported, not returned wrong.
    assert!(store.read_snapshot(SnapshotId(0)).is_ok());
    assert!(matches!(
        store.read_snapshot(SnapshotId(1)),
        Err(StoreError::Truncated { .. })
    ));
    let report = verify(dir.path()).unwrap();
    assert!(report
        .errors()
        .any(|f| f.snapshot == Some(SnapshotId(1)) && f.severity == Severity::Error));
}
