//! Random truncations and byte flips of any stored file: always reported by
//! `verify` as damage, never a panic or a silently wrong value when reading.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use landscape_trajectory::{verify, Filter, SnapshotId, SnapshotKind, SnapshotMeta, Store, Tensor};
use proptest::prelude::*;

fn tensors(seed: u32) -> Vec<Tensor> {
    let v = |n: usize, off: u32| {
        (0..n as u32)
            .map(|i| f32::from_bits(seed.wrapping_mul(7919) ^ (i + off)))
            .collect()
    };
    vec![
        Tensor {
            name: "layer2.weight".into(),
            shape: vec![4, 3, 3, 3],
            data: v(108, 0),
        },
        Tensor {
            name: "layer2.bias".into(),
            shape: vec![4],
            data: v(4, 1000),
        },
        Tensor {
            name: "layer3.weight".into(),
            shape: vec![2, 4],
            data: v(8, 2000),
        },
    ]
}

/// A store of 3 snapshots in 2 segment files (2 + 1) and a metrics record;
/// returns its files (relative).
fn build(dir: &Path) -> Vec<String> {
    let mut store = Store::create(dir).unwrap();
    for s in 0..3 {
        if s == 1 {
            // Room for exactly two snapshots in the first segment.
            let first = store.get(SnapshotId(0)).unwrap();
            store.set_segment_limit(first.offset() + 2 * first.file_len() + 8);
        }
        let t = tensors(s);
        let refs: Vec<_> = t.iter().map(Tensor::as_ref).collect();
        store
            .append(
                SnapshotMeta::new("main", SnapshotKind::Trained).with_epoch(s),
                &refs,
            )
            .unwrap();
    }
    store
        .set_metrics(
            SnapshotId(1),
            BTreeMap::from([("test_loss".to_string(), 1.5)]),
        )
        .unwrap();
    assert!(store.verify().unwrap().is_clean());
    let mut files = vec!["index.log".to_string(), "index.head".to_string()];
    let segments: std::collections::BTreeSet<_> = store
        .snapshots()
        .iter()
        .map(|i| i.file().to_string_lossy().into_owned())
        .collect();
    assert_eq!(segments.len(), 2, "{segments:?}");
    assert_eq!(store.get(SnapshotId(1)).unwrap().segment(), 0);
    assert_eq!(store.get(SnapshotId(2)).unwrap().segment(), 1);
    files.extend(segments);
    files
}

/// Opens and reads everything; any value that comes back must be the one written.
fn read_all_checked(dir: &Path) {
    let Ok(store) = Store::open(dir) else { return };
    for info in store.snapshots() {
        let s = info.id().get() as u32;
        let want = tensors(s);
        if let Ok(read) = store.read_snapshot(info.id()) {
            for (a, b) in read.iter().zip(&want) {
                assert_eq!(
                    a.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    b.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                );
            }
        }
        for t in &want {
            if let Ok(r) = store.read_tensor(info.id(), &t.name) {
                assert_eq!(
                    r.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    t.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                );
            }
        }
    }
    if let Ok(m) = store.read_layer(&Filter::all(), 2) {
        for (row, id) in m.ids().iter().enumerate() {
            let want = tensors(id.get() as u32);
            assert_eq!(m.matrix()[[row, 0]].to_bits(), want[0].data[0].to_bits());
            assert_eq!(m.matrix()[[row, 108]].to_bits(), want[1].data[0].to_bits());
        }
    }
}

fn target(dir: &Path, files: &[String], pick: usize) -> PathBuf {
    dir.join(&files[pick % files.len()])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn byte_flips_are_detected(pick in 0usize..16, pos in any::<prop::sample::Index>(), mask in 1u8..=255) {
        let dir = tempfile::tempdir().unwrap();
        let files = build(dir.path());
        let path = target(dir.path(), &files, pick);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = pos.index(bytes.len());
        bytes[at] ^= mask;
        std::fs::write(&path, &bytes).unwrap();
        let report = verify(dir.path()).unwrap();
        prop_assert!(!report.is_intact(), "flip at byte {} of {} not reported: {:?}", at, path.display(), report.findings());
        prop_assert!(report.errors().any(|f| dir.path().join(&f.file) == path),
            "flip in {} blamed on another file: {:?}", path.display(), report.findings());
        read_all_checked(dir.path());
    }

    #[test]
    fn truncations_are_detected(pick in 0usize..16, len in any::<prop::sample::Index>()) {
        let dir = tempfile::tempdir().unwrap();
        let files = build(dir.path());
        let path = target(dir.path(), &files, pick);
        let full = std::fs::metadata(&path).unwrap().len() as usize;
        let keep = len.index(full); // 0..full: always shorter
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(keep as u64).unwrap();
        drop(f);
        let report = verify(dir.path()).unwrap();
        prop_assert!(!report.is_intact(), "truncation of {} to {} bytes not reported: {:?}", path.display(), keep, report.findings());
        read_all_checked(dir.path());
    }
}

#[test]
fn damage_is_located_precisely() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let store = Store::open(dir.path()).unwrap();
    let info = store.get(SnapshotId(2)).unwrap();
    let t = info.tensor("layer2.bias").unwrap();
    let path = dir.path().join(info.file());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[t.byte_offset() as usize + 5] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let report = store.verify().unwrap();
    let errors: Vec<_> = report.errors().collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].snapshot, Some(SnapshotId(2)));
    assert_eq!(errors[0].tensor.as_deref(), Some("layer2.bias"));
    assert_eq!(errors[0].offset, Some(t.byte_offset()));
    assert!(
        matches!(errors[0].problem, landscape_trajectory::Problem::Checksum { expected, found, .. } if expected == t.crc32() && found != expected)
    );
    // Readers get a typed checksum error for that tensor only.
    assert!(matches!(
        store.read_tensor(SnapshotId(2), "layer2.bias"),
        Err(landscape_trajectory::StoreError::Checksum { .. })
    ));
    assert!(store.read_tensor(SnapshotId(2), "layer2.weight").is_ok());
    assert!(store.read_layer(&Filter::all(), 2).is_err());
    assert!(store.read_layer(&"id=0..2".parse().unwrap(), 2).is_ok());
}
