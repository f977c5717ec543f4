//! End-to-end test of `landscape hessian` on a stored snapshot of a smoke
//! run: the loss it differentiates is the snapshot's stored training loss
//! (same model, data and BN statistics), the estimates are ordered and
//! repeated per seed, and the files are written.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::{Path, PathBuf};
use std::process::Command;

use landscape_engine::identity::RunId;
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
            "--count-probes",
            "2",
            "--count-max-degree",
            "60",
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
    // The degeneracy count (kernel polynomial method, capped at degree 60:
    // a window of 1e-3 x top is not resolved there, and says so).
    let c = &r["near_zero_count"];
    let dim = r["dim"].as_f64().unwrap();
    let estimate = c["estimate"].as_f64().unwrap();
    assert!((0.0..=dim).contains(&estimate), "{estimate} of {dim}");
    assert!(c["low"].as_f64().unwrap() <= estimate && estimate <= c["high"].as_f64().unwrap());
    assert_eq!(
        (c["degree"].as_u64(), c["probes"].as_u64()),
        (Some(60), Some(2))
    );
    assert_eq!(c["precision"], "f64");
    assert_eq!(c["resolved"], false);
    assert!(stdout.contains("NOT RESOLVED"), "{stdout}");
    assert!((r["near_zero_share"].as_f64().unwrap() - estimate / dim).abs() < 1e-12);
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
            "--count-probes",
            "2",
            "--count-max-degree",
            "40",
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
        let c = sp[net]["near_zero_count"]["estimate"].as_f64().unwrap();
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

/// `landscape hessian --store S <selection> --out OUT` with small settings,
/// `--probes` and `--sample` as given.
fn curvature_command(
    store: &Path,
    selection: &[&str],
    out: &Path,
    (probes, sample): (&str, &str),
) -> Command {
    let mut c = Command::new(BIN);
    c.args(["hessian", "--store"])
        .arg(store)
        .args(selection)
        .arg("--out")
        .arg(out)
        .args([
            "--sample",
            sample,
            "--top-k",
            "1",
            "--lanczos-steps",
            "8",
            "--probes",
            probes,
            "--slq-runs",
            "0",
            "--no-smallest",
            "--seeds",
            "0,1",
            // No degeneracy count: it is the default at a single snapshot
            // (30 float64 probes, degree up to 4,000: many minutes), and these
            // tests compare the top eigenvalue, the trace and the gradient.
            "--count-probes",
            "0",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--data",
        ])
        .arg(cifar_fixture())
        .env("RUST_LOG", "warn");
    c
}

const SMALL: (&str, &str) = ("4", "50");

fn ok(mut c: Command) -> String {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn f(row: &std::collections::BTreeMap<String, String>, k: &str) -> f64 {
    row[k].parse().unwrap()
}

#[test]
fn hessian_along_a_trajectory() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, last) = fig14_smoke_last_main(tmp.path());
    let store = run.join("store");
    let main: Vec<u64> = Store::open(&store)
        .unwrap()
        .find(&"run=main".parse().unwrap())
        .iter()
        .map(|s| s.id().get())
        .collect();
    assert!(main.len() >= 3, "{main:?}");
    let out = tmp.path().join("curv");
    let sel = ["--filter", "run=main", "--every", "2"];
    let stdout = ok(curvature_command(&store, &sel, &out, SMALL));
    // Every second snapshot of the run, and always the last.
    let mut expected: Vec<u64> = main.iter().copied().step_by(2).collect();
    if expected.last() != main.last() {
        expected.push(*main.last().unwrap());
    }
    let rows = csv_rows(&out.join("curvature.csv"));
    let ids: Vec<u64> = rows.iter().map(|r| r["id"].parse().unwrap()).collect();
    assert_eq!(ids, expected, "{stdout}");
    assert!(stdout.contains(&format!("{} snapshot(s) evaluated", expected.len())));
    for r in &rows {
        assert_eq!(r["run"], "main");
        assert_eq!(r["examples"], "50");
        assert!(f(r, "top_eigenvalue_mean").is_finite() && f(r, "trace_mean").is_finite());
        assert!(f(r, "top_eigenvalue_std") >= 0.0 && f(r, "gradient_norm") > 0.0);
        assert_eq!(r["smallest_mean"], "", "--no-smallest");
        assert_eq!(
            r["epoch"], r["plot_epoch"],
            "the main run starts nowhere else"
        );
    }
    assert!(out.join("curvature.png").is_file() && out.join("curvature.svg").is_file());

    // The same snapshot, the same settings, one at a time: the same numbers.
    let single = tmp.path().join("single");
    ok(curvature_command(
        &store,
        &["--id", &last.id().to_string()],
        &single,
        SMALL,
    ));
    let h = json(&single.join("hessian.json"));
    let row = rows.last().unwrap();
    assert_eq!(row["id"], last.id().to_string());
    let top = h["report"]["top"][0]["mean"].as_f64().unwrap();
    let trace = h["report"]["trace"]["mean"].as_f64().unwrap();
    assert_eq!(f(row, "top_eigenvalue_mean"), top);
    assert_eq!(f(row, "trace_mean"), trace);
    assert_eq!(
        f(row, "top_eigenvalue_std"),
        h["report"]["top"][0]["std"].as_f64().unwrap()
    );
    assert_eq!(
        f(row, "gradient_norm"),
        h["report"]["gradient_norm"].as_f64().unwrap()
    );
    assert_eq!(f(row, "loss"), h["report"]["loss"].as_f64().unwrap());

    // Resuming a finished folder evaluates nothing and changes no row.
    let before = std::fs::read(out.join("rows.jsonl")).unwrap();
    let stdout = ok(curvature_command(&store, &sel, &out, SMALL));
    assert!(
        stdout.contains(&format!(
            "0 snapshot(s) evaluated, {} already done",
            expected.len()
        )),
        "{stdout}"
    );
    assert_eq!(std::fs::read(out.join("rows.jsonl")).unwrap(), before);

    // A run killed while writing its last row: that row is dropped and
    // computed again, to the same numbers.
    let text = String::from_utf8(before.clone()).unwrap();
    let cut = text.trim_end().rfind('\n').unwrap() + 1;
    let partial = &text[..cut + (text.len() - cut) / 2];
    std::fs::write(out.join("rows.jsonl"), partial).unwrap();
    let stdout = ok(curvature_command(&store, &sel, &out, SMALL));
    assert!(
        stdout.contains(&format!(
            "1 snapshot(s) evaluated, {} already done",
            expected.len() - 1
        )),
        "{stdout}"
    );
    let again = csv_rows(&out.join("curvature.csv"));
    for (a, b) in rows.iter().zip(&again) {
        for k in ["id", "top_eigenvalue_mean", "trace_mean", "gradient_norm"] {
            assert_eq!(a[k], b[k], "{k}");
        }
    }

    // Other settings are refused, and the folder is left as it was.
    let files = landscape_tests::tree(&out);
    let o = curvature_command(&store, &sel, &out, ("5", "50"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("other settings") && err.contains("spectrum.probes"),
        "{err}"
    );
    assert_eq!(landscape_tests::tree(&out), files);
    let o = curvature_command(&store, &sel, &out, ("4", "40"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("dataset"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(landscape_tests::tree(&out), files);

    // --ids adds snapshots to the folder; the rows already there are kept.
    let stdout = ok(curvature_command(
        &store,
        &["--ids", &format!("{},{}", main[1], main[0])],
        &out,
        SMALL,
    ));
    assert!(
        stdout.contains("1 snapshot(s) evaluated, 1 already done"),
        "{stdout}"
    );
    assert_eq!(
        csv_rows(&out.join("curvature.csv")).len(),
        expected.len() + 1
    );
}

/// `landscape hessian` on a smoke snapshot with `extra` flags (small
/// settings, one seed): its hessian.json.
fn hessian_json(run: &Path, id: &str, out: &Path, extra: &[&str]) -> serde_json::Value {
    let o = Command::new(BIN)
        .args(["hessian", "--store"])
        .arg(run.join("store"))
        .args(["--id", id, "--out"])
        .arg(out)
        .args([
            "--top-k",
            "1",
            "--lanczos-steps",
            "6",
            "--probes",
            "2",
            "--slq-runs",
            "1",
            "--slq-steps",
            "4",
            "--seeds",
            "0",
            "--count-probes",
            "0",
            "--device",
            "cpu",
            "--threads",
            "1",
        ])
        .args(extra)
        .arg("--data")
        .arg(cifar_fixture())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    json(&out.join("hessian.json"))
}

#[test]
fn hessian_sample_seed_draws_independent_subsets() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, last) = fig14_smoke_last_main(tmp.path());
    let id = last.id().to_string();
    let h = |name: &str, extra: &[&str]| hessian_json(&run, &id, &tmp.path().join(name), extra);
    let a = h("a", &["--sample", "50", "--sample-seed", "1"]);
    let again = h("again", &["--sample", "50", "--sample-seed", "1"]);
    let b = h("b", &["--sample", "50", "--sample-seed", "2"]);
    for x in [&a, &b] {
        assert_eq!(x["report"]["examples"], 50);
        assert_eq!(x["sample"]["len"], 50);
        assert_eq!(x["settings"]["train_size"]["value"], "50");
        assert_eq!(x["settings"]["train_size"]["from"], "--sample");
        assert_eq!(x["settings"]["sample_seed"]["from"], "--sample-seed");
        assert_eq!(
            x["settings"]["sample_from"]["value"],
            "the run's training subset (100 images)"
        );
    }
    assert_eq!(a["settings"]["sample_seed"]["value"], "1");
    assert_eq!(b["settings"]["sample_seed"]["value"], "2");
    // The same seed: the same images and the same numbers.
    assert_eq!(a["sample"], again["sample"]);
    assert_eq!(a["report"]["loss"], again["report"]["loss"]);
    assert_eq!(
        a["report"]["seeds"][0]["top"],
        again["report"]["seeds"][0]["top"]
    );
    // Another seed: other images, another loss.
    assert_ne!(a["sample"]["indices_crc32"], b["sample"]["indices_crc32"]);
    let (la, lb) = (
        a["report"]["loss"].as_f64().unwrap(),
        b["report"]["loss"].as_f64().unwrap(),
    );
    assert!((la - lb).abs() > 1e-6 * la.abs(), "{la} vs {lb}");
    // Larger than the run's 100 images: drawn from the whole training split.
    let c = h("c", &["--sample", "150", "--sample-seed", "1"]);
    assert_eq!(c["report"]["examples"], 150);
    assert_eq!(
        c["settings"]["sample_from"]["value"],
        "the whole training split (50000 images)"
    );
    // Without --sample-seed nothing about a draw is recorded.
    let d = h("d", &["--sample", "50"]);
    assert!(d["settings"].get("sample_seed").is_none());
    assert_ne!(d["sample"]["indices_crc32"], a["sample"]["indices_crc32"]);
}
