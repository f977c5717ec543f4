//! Write/read round-trips, filters, metrics attached later, bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use landscape_trajectory::{
    Filter, SnapshotId, SnapshotKind, SnapshotMeta, Store, StoreError, Tensor,
};
use proptest::prelude::*;

fn kind_strategy() -> impl Strategy<Value = SnapshotKind> {
    prop_oneof![
        Just(SnapshotKind::Initial),
        Just(SnapshotKind::Trained),
        Just(SnapshotKind::Perturbed),
        Just(SnapshotKind::Interpolated),
        Just(SnapshotKind::Averaged),
        "[a-z]{0,6}".prop_map(SnapshotKind::Other),
    ]
}

fn meta_strategy() -> impl Strategy<Value = SnapshotMeta> {
    (
        "[a-z0-9]{1,8}",
        kind_strategy(),
        proptest::option::of(0u32..5),
        proptest::option::of(0u32..100),
        proptest::option::of(any::<u64>()),
        proptest::collection::btree_map(
            "[a-z_]{1,10}",
            any::<f64>().prop_filter("not NaN", |x| !x.is_nan()),
            0..4,
        ),
        proptest::collection::btree_map("[a-z]{1,5}", ".{0,10}", 0..3),
    )
        .prop_map(|(run, kind, stage, epoch, step, metrics, extra)| {
            let mut m = SnapshotMeta::new(run, kind).with_metrics(metrics);
            if let Some(s) = stage {
                m = m.with_stage(s);
            }
            if let Some(e) = epoch {
                m = m.with_epoch(e);
            }
            if let Some(s) = step {
                m = m.with_step(s);
            }
            for (k, v) in extra {
                m = m.with_extra(k, v);
            }
            m
        })
}

fn tensor_strategy(i: usize) -> impl Strategy<Value = Tensor> {
    proptest::collection::vec(0usize..5, 0..4).prop_flat_map(move |shape| {
        let n: usize = shape.iter().product();
        // Any bit pattern, NaNs included: the store must be bit-exact.
        proptest::collection::vec(any::<u32>().prop_map(f32::from_bits), n).prop_map(move |data| {
            Tensor {
                name: format!("layer{i}.t"),
                shape: shape.clone(),
                data,
            }
        })
    })
}

fn snapshot_strategy() -> impl Strategy<Value = (SnapshotMeta, Vec<Tensor>)> {
    (
        meta_strategy(),
        (0usize..5).prop_flat_map(|n| (0..n).map(tensor_strategy).collect::<Vec<_>>()),
    )
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn write_read_round_trip(snaps in proptest::collection::vec(snapshot_strategy(), 1..5)) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::create(dir.path()).unwrap();
        for (meta, tensors) in &snaps {
            let refs: Vec<_> = tensors.iter().map(Tensor::as_ref).collect();
            store.append(meta.clone(), &refs).unwrap();
        }
        // Reopen from disk: everything comes back bit-exact.
        let store = Store::open(dir.path()).unwrap();
        prop_assert_eq!(store.len(), snaps.len());
        for (i, (meta, tensors)) in snaps.iter().enumerate() {
            let id = SnapshotId(i as u64);
            let info = store.get(id).unwrap();
            prop_assert_eq!(info.meta(), meta);
            let read = store.read_snapshot(id).unwrap();
            prop_assert_eq!(read.len(), tensors.len());
            for (a, b) in read.iter().zip(tensors) {
                prop_assert_eq!(&a.name, &b.name);
                prop_assert_eq!(&a.shape, &b.shape);
                prop_assert_eq!(bits(&a.data), bits(&b.data));
                let one = store.read_tensor(id, &b.name).unwrap();
                prop_assert_eq!(bits(&one.data), bits(&b.data));
            }
        }
        prop_assert!(store.verify().unwrap().is_clean());
    }
}

fn layer_tensors(seed: f32, w2: usize) -> Vec<Tensor> {
    let mk = |name: &str, shape: Vec<usize>, off: f32| {
        let n: usize = shape.iter().product();
        Tensor {
            name: name.into(),
            shape,
            data: (0..n).map(|i| seed * 1000.0 + off + i as f32).collect(),
        }
    };
    vec![
        mk("layer2.weight", vec![w2, 3, 3, 3], 0.0),
        mk("layer2.bias", vec![w2], 500.0),
        mk("layer2.bn.running_mean", vec![w2], 600.0),
        mk("layer2.bn.running_var", vec![w2], 700.0),
        mk("layer3.weight", vec![2, w2, 3, 3], 800.0),
    ]
}

fn append(store: &mut Store, meta: SnapshotMeta, tensors: &[Tensor]) -> SnapshotId {
    let refs: Vec<_> = tensors.iter().map(Tensor::as_ref).collect();
    store.append(meta, &refs).unwrap()
}

#[test]
fn matrix_filters_and_later_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(dir.path()).unwrap();
    for e in 0..6u32 {
        append(
            &mut store,
            SnapshotMeta::new("main", SnapshotKind::Trained)
                .with_stage(1)
                .with_epoch(e),
            &layer_tensors(e as f32, 4),
        );
    }
    let p = append(
        &mut store,
        SnapshotMeta::new("branch1", SnapshotKind::Perturbed).with_parent(SnapshotId(3)),
        &layer_tensors(9.0, 4),
    );
    store
        .set_metrics(
            SnapshotId(2),
            BTreeMap::from([("test_error".to_string(), 40.0)]),
        )
        .unwrap();
    store
        .set_metrics(
            SnapshotId(2),
            BTreeMap::from([("test_error".to_string(), 30.0)]),
        )
        .unwrap();

    let filter: Filter = "run=main,epoch=1..4,kind=trained".parse().unwrap();
    let m = store.read_layer(&filter, 2).unwrap();
    assert_eq!(m.ids(), &[SnapshotId(1), SnapshotId(2), SnapshotId(3)]);
    assert_eq!(
        m.names(),
        &["layer2.weight".to_string(), "layer2.bias".to_string()]
    );
    assert_eq!(m.matrix().dim(), (3, 4 * 27 + 4));
    for (r, e) in [1.0f32, 2.0, 3.0].iter().enumerate() {
        assert_eq!(m.matrix()[[r, 0]], e * 1000.0);
        assert_eq!(m.matrix()[[r, 4 * 27]], e * 1000.0 + 500.0);
    }
    // Non-adjacent tensors, in the caller's order.
    let (ids, x) = store
        .read_matrix_ids(&[p, SnapshotId(0)], &["layer3.weight", "layer2.bias"])
        .unwrap()
        .into_parts();
    assert_eq!(ids, vec![p, SnapshotId(0)]);
    assert_eq!(x.dim(), (2, 2 * 4 * 9 + 4));
    assert_eq!(x[[0, 0]], 9800.0);
    assert_eq!(x[[1, 72]], 500.0);

    // Metrics attached later, the last one winning, also after reopening.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store
            .get(SnapshotId(2))
            .unwrap()
            .meta()
            .metric("test_error"),
        Some(30.0)
    );
    let with: Vec<_> = store
        .find(&Filter::all().has_metric("test_error"))
        .iter()
        .map(|i| i.id())
        .collect();
    assert_eq!(with, vec![SnapshotId(2)]);
    let children: Vec<_> = store
        .find(&"parent=3".parse().unwrap())
        .iter()
        .map(|i| i.id())
        .collect();
    assert_eq!(children, vec![p]);
    assert_eq!(store.find(&"epoch=..=2,stage=1".parse().unwrap()).len(), 3);
    assert_eq!(store.find(&"run=main|branch1".parse().unwrap()).len(), 7);
}

#[test]
fn bad_input_gives_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(dir.path()).unwrap();
    assert!(matches!(
        Store::create(dir.path()),
        Err(StoreError::AlreadyExists { .. })
    ));
    let t = layer_tensors(0.0, 2);
    let a = append(
        &mut store,
        SnapshotMeta::new("a", SnapshotKind::Initial),
        &t,
    );
    let b = append(
        &mut store,
        SnapshotMeta::new("a", SnapshotKind::Initial),
        &layer_tensors(1.0, 3),
    );
    let bad = [landscape_trajectory::TensorRef {
        name: "x",
        shape: &[2, 2],
        data: &[1.0; 3],
    }];
    assert!(matches!(
        store.append(SnapshotMeta::new("a", SnapshotKind::Initial), &bad),
        Err(StoreError::InvalidTensor { .. })
    ));
    assert!(matches!(
        store.read_tensor(a, "nope"),
        Err(StoreError::UnknownTensor { .. })
    ));
    assert!(matches!(
        store.read_tensor(SnapshotId(99), "layer2.bias"),
        Err(StoreError::UnknownSnapshot { .. })
    ));
    assert!(matches!(
        store.read_matrix_ids(&[a, b], &["layer2.bias"]),
        Err(StoreError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        "epoch=x".parse::<Filter>(),
        Err(StoreError::Filter { .. })
    ));
    assert!(matches!(
        "colour=red".parse::<Filter>(),
        Err(StoreError::Filter { .. })
    ));
    // A second writer is refused while the first holds the lock.
    let mut other = Store::open(dir.path()).unwrap();
    assert!(matches!(
        other.append(SnapshotMeta::new("a", SnapshotKind::Initial), &[]),
        Err(StoreError::Locked { .. })
    ));
    drop(store);
    // A foreign folder, a foreign index, a newer version.
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Store::open(empty.path()),
        Err(StoreError::NotAStore { .. })
    ));
    let idx = dir.path().join("index.log");
    let mut bytes = std::fs::read(&idx).unwrap();
    // A newer format, and format 1 (one file per snapshot): typed errors.
    for version in [landscape_trajectory::FORMAT_VERSION + 1, 1] {
        bytes[8..12].copy_from_slice(&version.to_le_bytes());
        std::fs::write(&idx, &bytes).unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::UnsupportedVersion { found, .. }) if found == version
        ));
    }
    bytes[..8].copy_from_slice(b"PK\x03\x04zip!");
    std::fs::write(&idx, &bytes).unwrap();
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::BadMagic { .. })
    ));
}
