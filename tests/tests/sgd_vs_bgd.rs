//! End-to-end tests of `landscape reproduce sgd-vs-bgd` through the real
//! binary, on a synthetic CIFAR-10 folder, at the `smoke` scale: both
//! trajectories start from the same weights, the reported numbers are the
//! stored ones, the stopping rule works, and a changed config is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use landscape_engine::identity::{Origin, RunId};
use landscape_tests::{edited_config, json, smoke, smoke_ok, tree};
use landscape_trajectory::{SnapshotInfo, Store};

const BIN: &str = env!("CARGO_BIN_EXE_landscape-e2e");
const BUNDLED: &str = include_str!("../../experiments/sgd-vs-bgd.toml");

fn run(out: &Path, extra: &[&str]) -> Output {
    smoke(BIN, "sgd-vs-bgd", out, extra)
}

fn run_ok(out: &Path, extra: &[&str]) -> Output {
    smoke_ok(BIN, "sgd-vs-bgd", out, extra)
}

fn config(dir: &Path, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    edited_config(dir, name, BUNDLED, edits)
}

fn by_run(store: &Store, name: &str) -> BTreeMap<u32, SnapshotInfo> {
    let want = RunId::Named { name: name.into() };
    store
        .snapshots()
        .iter()
        .filter(|s| RunId::from_meta(s.meta()).as_ref() == Some(&want))
        .map(|s| (s.meta().epoch().unwrap(), s.clone()))
        .collect()
}

fn bits(store: &Store, s: &SnapshotInfo) -> Vec<(String, Vec<u32>)> {
    store
        .read_snapshot(s.id())
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.data.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

#[test]
fn smoke_run_is_wired_through() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = run_ok(&out, &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    for word in [
        "sgd_generalises_better",
        "both_fit",
        "test_errors",
        "~32%",
        "~40%",
    ] {
        assert!(stdout.contains(word), "{word} not printed:\n{stdout}");
    }
    for f in [
        "sgd-vs-bgd/sgd-vs-bgd.png",
        "sgd-vs-bgd/sgd-vs-bgd.svg",
        "sgd-vs-bgd/curves.csv",
        "run.json",
        "summary.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let cfg = json(&out.join("run.json"))["config"].clone();
    let store = Store::open(out.join("store")).unwrap();
    let sgd = by_run(&store, "sgd");
    let bgd = by_run(&store, "bgd");
    let sgd_epochs = cfg["sgd_epochs"].as_u64().unwrap() as u32;
    let bgd_epochs = cfg["bgd_epochs"].as_u64().unwrap() as u32;
    assert_eq!(
        sgd.keys().copied().collect::<Vec<_>>(),
        (0..=sgd_epochs).collect::<Vec<_>>()
    );
    assert_eq!(
        bgd.keys().copied().collect::<Vec<_>>(),
        (0..=bgd_epochs).collect::<Vec<_>>()
    );

    // Both start from the same initialisation, bit for bit (BN statistics
    // included: the same network evaluated on the same data).
    for r in [&sgd, &bgd] {
        assert_eq!(
            Origin::from_meta(r[&0].meta()).unwrap(),
            Origin::Init {
                seed: cfg["seed"].as_u64().unwrap()
            }
        );
    }
    assert!(bits(&store, &sgd[&0]) == bits(&store, &bgd[&0]));
    assert!(bits(&store, &sgd[&1]) != bits(&store, &bgd[&1]));

    // The reported errors are the stored ones, at the last stored epoch.
    let summary = json(&out.join("summary.json"));
    for (name, r, last) in [("sgd", &sgd, sgd_epochs), ("bgd", &bgd, bgd_epochs)] {
        let s = &summary[name];
        assert_eq!(s["final_epoch"], last);
        assert_eq!(s["stop"]["reason"], "max_epochs");
        let m = r[&last].meta();
        assert_eq!(
            s["last"]["test_error"].as_f64().unwrap(),
            m.metric("test_error").unwrap()
        );
        assert_eq!(
            s["last"]["train_error"].as_f64().unwrap(),
            m.metric("train_error").unwrap()
        );
    }
    let f = &summary["findings"][1];
    assert_eq!(f["id"], "test_errors");
    assert_eq!(f["numbers"]["sgd"], summary["sgd"]["last"]["test_error"]);
    assert_eq!(f["numbers"]["bgd"], summary["bgd"]["last"]["test_error"]);
    assert_eq!(f["numbers"]["paper_sgd"], 32.0);
    assert_eq!(f["numbers"]["paper_bgd"], 40.0);
    let gap = summary["bgd"]["last"]["test_error"].as_f64().unwrap()
        - summary["sgd"]["last"]["test_error"].as_f64().unwrap();
    assert_eq!(
        summary["findings"][2]["numbers"]["bgd_minus_sgd"]
            .as_f64()
            .unwrap(),
        gap
    );

    // Running again changes nothing.
    run_ok(&out, &[]);
    assert_eq!(
        json(&out.join("run.json"))["last_invocation"]["snapshots_written"],
        0
    );

    // A changed config into the same --out is refused, naming the key, and
    // leaves the folder as it was.
    let before = tree(&out);
    let changed = config(tmp.path(), "changed.toml", &[("lr = 0.5", "lr = 0.25")]);
    let o = run(&out, &["--config", changed.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a changed config was resumed");
    assert!(err.contains("config.bgd.lr"), "{err}");
    assert!(tree(&out) == before, "the refused run changed the folder");
}

#[test]
fn a_trajectory_stops_once_its_training_error_reaches_the_threshold() {
    // Every model has at most 100% training error: both stop at epoch 0.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(
        tmp.path(),
        "stop.toml",
        &[("stop_at_train_error = 1.0", "stop_at_train_error = 100.0")],
    );
    let out = tmp.path().join("out");
    run_ok(&out, &["--config", cfg.to_str().unwrap()]);
    let summary = json(&out.join("summary.json"));
    for name in ["sgd", "bgd"] {
        assert_eq!(summary[name]["stop"]["reason"], "reached_zero");
        assert_eq!(summary[name]["final_epoch"], 0);
    }
    assert_eq!(summary["findings"][0]["verdict"], "holds");
    let store = Store::open(out.join("store")).unwrap();
    assert_eq!(store.len(), 2, "no epoch trained after the stop");
}
