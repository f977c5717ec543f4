//! Subsets, random labels and normalisation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use landscape_dataset::{
    DatasetError, LabelNoise, Normalization, RandomLabels, Split, SplitKind, IMAGE_BYTES,
};
use proptest::prelude::*;

/// A split of `n` images with labels cycling through `0..classes` and pixels
/// derived from the index.
fn synthetic(n: usize, classes: usize) -> Split {
    let labels: Vec<u8> = (0..n).map(|i| ((i * 7) % classes) as u8).collect();
    let images: Vec<u8> = (0..n * IMAGE_BYTES)
        .map(|k| ((k / IMAGE_BYTES) * 13 + (k % IMAGE_BYTES) * 3 + k / 1024 % 3 * 40) as u8)
        .collect();
    Split::from_parts(SplitKind::Train, images, labels).unwrap()
}

#[test]
fn from_parts_checks_lengths_and_labels() {
    let err = Split::from_parts(SplitKind::Test, vec![0; 3071], vec![1]).unwrap_err();
    assert!(
        matches!(err, DatasetError::InvalidArgument { name: "images", .. }),
        "{err}"
    );
    let err = Split::from_parts(SplitKind::Test, vec![0; 2 * 3072], vec![1, 11]).unwrap_err();
    assert!(err.to_string().contains("label 11 at index 1"), "{err}");
}

#[test]
fn first_n_keeps_prefix_and_indices() {
    let s = synthetic(50, 10);
    let f = s.first(12).unwrap();
    assert_eq!(f.len(), 12);
    assert_eq!(f.images(), &s.images()[..12 * IMAGE_BYTES]);
    assert_eq!(f.labels(), &s.labels()[..12]);
    assert_eq!(f.indices(), (0..12).collect::<Vec<_>>().as_slice());
    assert!(matches!(
        s.first(51).unwrap_err(),
        DatasetError::SubsetTooLarge {
            requested: 51,
            available: 50,
            ..
        }
    ));
    // Indices refer to the original split, also for subsets of subsets.
    let sub = s.stratified(20, 3).unwrap();
    let subsub = sub.first(5).unwrap();
    assert_eq!(subsub.indices(), &sub.indices()[..5]);
}

#[test]
fn stratified_is_balanced_ordered_and_consistent() {
    let s = synthetic(1000, 10);
    let sub = s.stratified(250, 42).unwrap();
    assert_eq!(sub.len(), 250);
    assert_eq!(sub.class_counts(), [25; 10]);
    assert!(sub.indices().windows(2).all(|w| w[0] < w[1]));
    for (k, &i) in sub.indices().iter().enumerate() {
        assert_eq!(sub.labels()[k], s.labels()[i]);
        assert_eq!(sub.image(k).unwrap(), s.image(i).unwrap());
    }
    assert_eq!(sub, s.stratified(250, 42).unwrap());
    assert_ne!(sub.indices(), s.stratified(250, 43).unwrap().indices());
}

/// The subset a seed selects is pinned: it must not change across machines,
/// platforms or `rand` versions (results record and reuse these indices).
#[test]
fn stratified_subset_is_pinned_for_a_seed() {
    let s = synthetic(100, 10);
    let sub = s.stratified(10, 2024).unwrap();
    assert_eq!(sub.class_counts(), [1; 10]);
    assert_eq!(sub.indices(), PINNED_INDICES);
}
// Recorded from this implementation (ChaCha8 stream 1, own Fisher-Yates);
// a change here means old results can no longer be reproduced.
const PINNED_INDICES: &[usize] = &[1, 10, 28, 32, 33, 36, 39, 55, 74, 97];

#[test]
fn stratified_rounds_remainders_to_largest_shares() {
    // 3 classes of 4, 4, 2 images (labels 0,1,0,1,0,1,0,1,2,2): 5 of 10 gives
    // shares 2, 2, 1 exactly; 4 of 10 gives 1.6, 1.6, 0.8 -> 1, 1, 0 plus 2
    // left over, to the largest remainders (class 2: 0.8, then class 0: 0.6).
    let labels = vec![0, 1, 0, 1, 0, 1, 0, 1, 2, 2];
    let s = Split::from_parts(SplitKind::Test, vec![0; 10 * IMAGE_BYTES], labels).unwrap();
    let c5 = s.stratified(5, 1).unwrap().class_counts();
    assert_eq!(&c5[..3], &[2, 2, 1]);
    let c4 = s.stratified(4, 1).unwrap().class_counts();
    assert_eq!(&c4[..3], &[2, 1, 1]);
    assert_eq!(
        s.stratified(10, 9).unwrap().indices(),
        (0..10).collect::<Vec<_>>()
    );
    assert!(matches!(
        s.stratified(11, 1),
        Err(DatasetError::SubsetTooLarge { .. })
    ));
}

#[test]
fn permutation_labels_keep_counts_and_images() {
    let s = synthetic(500, 10);
    let (noisy, record) = s.with_random_labels(LabelNoise::Permutation, 5);
    assert_eq!(noisy.images(), s.images());
    assert_eq!(noisy.indices(), s.indices());
    assert_eq!(noisy.class_counts(), s.class_counts());
    assert_ne!(noisy.labels(), s.labels());
    assert_eq!(record.mode, LabelNoise::Permutation);
    assert_eq!(record.seed, 5);
    assert_eq!(record.images, 500);
    let changed = noisy
        .labels()
        .iter()
        .zip(s.labels())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(record.changed, changed);
    // About 90% of labels change under a random permutation of 10 classes.
    assert!((400..=490).contains(&changed), "{changed}");
    assert_eq!(record.labels_crc32, crc32(noisy.labels()));
    assert_eq!(s.with_random_labels(LabelNoise::Permutation, 5).0, noisy);
}

fn crc32(bytes: &[u8]) -> u32 {
    // Bitwise CRC-32 (IEEE), independent of the crate's implementation.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn uniform_labels_cover_all_classes_and_serialize() {
    let s = synthetic(2000, 2); // only classes 0 and 1
    let (noisy, record) = s.with_random_labels(LabelNoise::Uniform, 11);
    let counts = noisy.class_counts();
    assert!(
        counts.iter().all(|&c| (120..=280).contains(&c)),
        "{counts:?}"
    );
    assert_eq!(record.class_counts, counts);
    let json = serde_json::to_string(&record).unwrap();
    assert!(json.contains("\"mode\":\"uniform\""), "{json}");
    let back: RandomLabels = serde_json::from_str(&json).unwrap();
    assert_eq!(back, record);
    let (other, _) = s.with_random_labels(LabelNoise::Uniform, 12);
    assert_ne!(other.labels(), noisy.labels());
}

#[test]
fn normalization_matches_direct_computation() {
    let s = synthetic(37, 10);
    let norm = Normalization::from_split(&s).unwrap();
    for c in 0..3 {
        let xs: Vec<f64> = s
            .images()
            .chunks(IMAGE_BYTES)
            .flat_map(|im| {
                im[c * 1024..(c + 1) * 1024]
                    .iter()
                    .map(|&x| f64::from(x) / 255.0)
            })
            .collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!((norm.mean[c] - mean).abs() < 1e-12);
        assert!((norm.std[c] - var.sqrt()).abs() < 1e-12);
    }
    let x = s.to_f32(&norm);
    assert_eq!(x.len(), s.images().len());
    let mut y = vec![0f32; x.len()];
    s.to_f32_into(&norm, &mut y).unwrap();
    assert_eq!(x, y);
    // Normalised channels have mean 0 and std 1.
    for c in 0..3 {
        let v: Vec<f64> = x
            .chunks(IMAGE_BYTES)
            .flat_map(|im| im[c * 1024..(c + 1) * 1024].iter().map(|&v| f64::from(v)))
            .collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|t| (t - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        assert!(
            m.abs() < 1e-5 && (sd - 1.0).abs() < 1e-5,
            "channel {c}: {m} {sd}"
        );
    }
    let k = 5 * IMAGE_BYTES + 2 * 1024 + 17;
    let want = (f64::from(s.images()[k]) / 255.0 - norm.mean[2]) / norm.std[2];
    assert!((f64::from(x[k]) - want).abs() < 1e-6);
    assert!(s.to_f32_into(&norm, &mut y[1..]).is_err());
}

#[test]
fn normalization_rejects_degenerate_input() {
    let empty = Split::from_parts(SplitKind::Train, vec![], vec![]).unwrap();
    assert!(Normalization::from_split(&empty).is_err());
    let flat = Split::from_parts(SplitKind::Train, vec![9; IMAGE_BYTES], vec![0]).unwrap();
    assert!(Normalization::from_split(&flat).is_err());
    assert!(Normalization::new([0.5; 3], [0.2, 0.0, 0.2]).is_err());
    assert!(Normalization::new([0.5; 3], [0.2; 3]).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any stratified subset has the requested size, distinct in-range
    /// indices in increasing order, the right labels, and per-class counts
    /// within one of the exact proportional share.
    #[test]
    fn stratified_properties(labels in prop::collection::vec(0u8..10, 1..200), frac in 0.0f64..=1.0, seed: u64) {
        let total = labels.len();
        let n = ((total as f64) * frac).round() as usize;
        let s = Split::from_parts(SplitKind::Train, vec![0; total * IMAGE_BYTES], labels.clone()).unwrap();
        let sub = s.stratified(n, seed).unwrap();
        prop_assert_eq!(sub.len(), n);
        prop_assert!(sub.indices().windows(2).all(|w| w[0] < w[1]));
        for (k, &i) in sub.indices().iter().enumerate() {
            prop_assert_eq!(sub.labels()[k], labels[i]);
        }
        let full = s.class_counts();
        for (c, &got) in sub.class_counts().iter().enumerate() {
            let share = n as f64 * full[c] as f64 / total as f64;
            prop_assert!((got as f64 - share).abs() < 1.0 + 1e-9, "class {} got {} share {}", c, got, share);
        }
    }

    /// A permutation relabelling is a permutation of the labels.
    #[test]
    fn permutation_is_a_permutation(labels in prop::collection::vec(0u8..10, 0..300), seed: u64) {
        let s = Split::from_parts(SplitKind::Train, vec![0; labels.len() * IMAGE_BYTES], labels).unwrap();
        let (noisy, record) = s.with_random_labels(LabelNoise::Permutation, seed);
        let mut a = noisy.labels().to_vec();
        let mut b = s.labels().to_vec();
        a.sort_unstable();
        b.sort_unstable();
        prop_assert_eq!(a, b);
        prop_assert_eq!(record.class_counts, s.class_counts());
    }
}
