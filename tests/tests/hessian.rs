//! End-to-end test of `landscape hessian` on a stored snapshot of a smoke
//! run: the loss it differentiates is the snapshot's stored training loss
//! (same model, data and BN statistics), the estimates are ordered and
//! repeated per seed, and the files are written.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::{Path, PathBuf};
use std::process::Command;

use landscape_experiments::identity::RunId;
use landscape_tests::{cifar_fixture, csv_rows, json, smoke_ok};
use landscape_trajectory::{SnapshotInfo, Store};

const BIN: &str = env!("CARGO_BIN_EXE_landscape-e2e");

/// A fig14 smoke run under `dir` and its last main-trajectory snapshot.
fn fig14_smoke_last_main(dir: &Path) -> (PathBuf, SnapshotInfo) {
    let run = dir.join("fig14");
    smoke_ok(BIN, "fig14", &run, &[]);
    let store = Store::open(run.join("store")).unwrap();
    let last = store
        .snapshots()
        .iter()
        .filter(|s| RunId::from_meta(s.meta()) == Some(RunId::Main))
        .max_by_key(|s| s.meta().epoch())
        .unwrap()
        .clone();
    (run, last)
}

#[test]
fn hessian_of_a_stored_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, last) = fig14_smoke_last_main(tmp.path());
    let out = tmp.path().join("h");
    let o = Command::new(BIN)
        .args(["hessian", "--store"])
        .arg(run.join("store"))
        .args(["--id", &last.id().to_string(), "--out"])
        .arg(&out)
        .args([
            "--top-k",
            "2",
            "--lanczos-steps",
            "12",
            "--probes",
            "4",
            "--slq-runs",
            "2",
            "--slq-steps",
            "8",
            "--seeds",
            "0,1",
            "--jacobian-images",
            "3",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--data",
        ])
        .arg(cifar_fixture())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("eigenvalue  1") && stdout.contains("trace"),
        "{stdout}"
    );
    let h = json(&out.join("hessian.json"));
    let r = &h["report"];
    // The differentiated loss is the stored training loss of the snapshot.
    let stored = last.meta().metric("train_loss").unwrap();
    let loss = r["loss"].as_f64().unwrap();
    assert!(
        (loss - stored).abs() <= 1e-4 * stored,
        "{loss} vs stored {stored}"
    );
    assert_eq!(r["examples"], 100, "the run's training subset");
    assert_eq!(h["settings"]["train_size"]["from"], "run.json");
    assert_eq!(r["bn"], "fixed");
    assert_eq!(r["seeds"].as_array().unwrap().len(), 2);
    for s in r["seeds"].as_array().unwrap() {
        let top: Vec<f64> = s["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(top.len(), 2);
        assert!(top[0] >= top[1], "{top:?}");
        assert!(s["min_eigenvalue"].as_f64().unwrap() <= top[1] + 1e-6);
    }
    let j = &h["jacobian"];
    assert_eq!(
        (j["examples"].as_u64(), j["rows"].as_u64()),
        (Some(3), Some(30))
    );
    let rank = j["rank"].as_u64().unwrap();
    assert!(rank <= 30 && rank > 0);
    assert_eq!(
        j["null_directions"].as_u64().unwrap() + rank,
        r["dim"].as_u64().unwrap()
    );
    let rows = csv_rows(&out.join("eigenvalues.csv"));
    assert_eq!(rows.len(), 2 * 3);
    assert!(out.join("density.svg").is_file() && out.join("density.csv").is_file());
    // A snapshot that is not there is named.
    let o = Command::new(BIN)
        .args(["hessian", "--store"])
        .arg(run.join("store"))
        .args(["--id", "99999", "--out"])
        .arg(tmp.path().join("h2"))
        .args(["--device", "cpu", "--data"])
        .arg(cifar_fixture())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--id"));
}

#[test]
fn embed_a_stored_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, last) = fig14_smoke_last_main(tmp.path());
    let out = tmp.path().join("e");
    let o = Command::new(BIN)
        .args(["embed", "--store"])
        .arg(run.join("store"))
        .args([
            "--id",
            &last.id().to_string(),
            "--layer",
            "3",
            "--channel",
            "2",
            "--sample",
            "50",
            "--spectrum",
            "--seeds",
            "0,1",
            "--slq-runs",
            "1",
            "--flat-probes",
            "2",
        ])
        .args(["--out"])
        .arg(&out)
        .args(["--device", "cpu", "--threads", "1", "--data"])
        .arg(cifar_fixture())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e = json(&out.join("embed.json"));
    // Smoke widths are 8: one more channel in layer 3 adds 8 x 9 + 1 incoming
    // and 8 x 9 outgoing parameters.
    let (n, w) = (
        e["params"]["narrow"].as_u64().unwrap(),
        e["params"]["wide"].as_u64().unwrap(),
    );
    assert_eq!(w - n, 8 * 9 + 1 + 8 * 9);
    assert_eq!(e["same_correctness"], e["examples"], "the same function");
    assert_eq!(e["examples"], 50);
    assert_eq!(e["settings"]["train_size"]["from"], "--sample");
    let d = e["eval_loss"]["abs_difference"].as_f64().unwrap();
    assert!(
        d <= 1e-5 * e["eval_loss"]["narrow"].as_f64().unwrap(),
        "{d}"
    );
    // --spectrum: both reports with a degeneracy count, and the form on S.
    let sp = &e["spectra"];
    assert_eq!(sp["flat_subspace"]["dim"], 8 * 9, "S: the outgoing weights");
    assert_eq!(sp["flat_subspace"]["incoming"], 8 * 9 + 1);
    for net in ["narrow", "wide"] {
        let c = sp[net]["near_zero_count"]["mean"].as_f64().unwrap();
        let dim = sp[net]["dim"].as_f64().unwrap();
        assert!((0.0..=dim).contains(&c), "{net}: {c} of {dim}");
    }
    let forms = sp["flat_form_over_top"].as_array().unwrap();
    assert_eq!(forms.len(), 2);
    for f in forms {
        assert!(f.as_f64().unwrap().abs() <= 1e-4, "s'Hs / top = {f}");
    }
    let o = Command::new(BIN)
        .args(["embed", "--store"])
        .arg(run.join("store"))
        .args([
            "--id",
            &last.id().to_string(),
            "--layer",
            "6",
            "--channel",
            "0",
            "--out",
        ])
        .arg(tmp.path().join("e2"))
        .args(["--device", "cpu", "--data"])
        .arg(cifar_fixture())
        .output()
        .unwrap();
    assert!(!o.status.success(), "the last layer has no hidden channel");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--layer"));
}
