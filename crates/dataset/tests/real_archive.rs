//! The real CIFAR-10: install the archive named by `LANDSCAPE_TEST_CIFAR_ARCHIVE`
//! (CI sets it) into a temporary folder, load it, check the counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::PathBuf;

use landscape_dataset::{
    Cifar10, InstallParams, Layout, NoProgress, Normalization, CLASS_NAMES, IMAGE_BYTES,
};

#[test]
fn installs_and_loads_the_real_archive() {
    let Some(archive) = std::env::var_os("LANDSCAPE_TEST_CIFAR_ARCHIVE").map(PathBuf::from) else {
        // Written to the stderr handle, not with `eprintln!`, so that the
        // test harness does not capture it: a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "\n**************************************************************\n\
             SKIPPED installs_and_loads_the_real_archive: set\n\
             LANDSCAPE_TEST_CIFAR_ARCHIVE=/path/to/cifar-10-binary.tar.gz\n\
             (.ci/run sets it to ../shared/data/cifar-10-binary.tar.gz)\n\
             **************************************************************\n"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let report = InstallParams::new(tmp.path())
        .archive(Some(archive))
        .install(&mut NoProgress)
        .unwrap();
    assert_eq!(report.verify.train_images(), 50_000);
    assert_eq!(report.verify.test_images(), 10_000);

    let c = Cifar10::load(&report.path).unwrap();
    assert_eq!(c.layout(), Layout::Binary);
    assert_eq!(c.class_names(), CLASS_NAMES);
    assert_eq!(c.train().len(), 50_000);
    assert_eq!(c.test().len(), 10_000);
    assert_eq!(c.train().images().len(), 50_000 * IMAGE_BYTES);
    assert_eq!(c.train().class_counts(), [5_000; 10]);
    assert_eq!(c.test().class_counts(), [1_000; 10]);
    for f in c.files() {
        assert_eq!(
            (f.records, f.bytes, f.label_min, f.label_max),
            (10_000, 30_730_000, 0, 9)
        );
    }
    // Per-channel statistics of real photographs (the official files give
    // mean 0.491, 0.482, 0.447 and std 0.247, 0.243, 0.262).
    let norm = Normalization::from_split(c.train()).unwrap();
    for (got, want) in norm.mean.iter().zip([0.491, 0.482, 0.447]) {
        assert!((got - want).abs() < 0.01, "mean {:?}", norm.mean);
    }
    for (got, want) in norm.std.iter().zip([0.247, 0.243, 0.262]) {
        assert!((got - want).abs() < 0.01, "std {:?}", norm.std);
    }
    let quick = c.train().stratified(5_000, 1).unwrap();
    assert_eq!(quick.class_counts(), [500; 10]);
}
