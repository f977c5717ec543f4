//! End-to-end tests of `landscape reproduce fig2` through the real binary, on
//! a synthetic CIFAR-10 folder, at the `smoke` scale. They check the wiring:
//! the polynomial nets really run the fitted polynomial, every net starts
//! from the same weights, and the table and curves are the stored numbers.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use landscape_engine::data::{self, DataConfig};
use landscape_engine::eval::{EvalConfig, Evaluator, Metrics};
use landscape_engine::identity::{Origin, RunId};
use landscape_net::{Activation, Dcnn, NamedTensor, NetConfig};
use landscape_tests::{cifar_fixture, csv_rows, edited_config, json, smoke, smoke_ok, tree};
use landscape_trajectory::{SnapshotInfo, Store};

const BIN: &str = env!("CARGO_BIN_EXE_landscape-e2e");
const BUNDLED: &str = include_str!("../../experiments/fig2.toml");

fn run(out: &Path, extra: &[&str]) -> Output {
    smoke(BIN, "fig2", out, extra)
}

fn run_ok(out: &Path, extra: &[&str]) -> Output {
    smoke_ok(BIN, "fig2", out, extra)
}

/// A copy of the bundled config with `edits` applied, written into `dir`.
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

fn named(store: &Store, s: &SnapshotInfo) -> Vec<NamedTensor> {
    store
        .read_snapshot(s.id())
        .unwrap()
        .into_iter()
        .map(|t| NamedTensor {
            name: t.name,
            shape: t.shape,
            data: t.data,
        })
        .collect()
}

fn stored_metrics(s: &SnapshotInfo) -> Metrics {
    Metrics::from_map(s.meta().metrics()).unwrap()
}

/// Horner's rule in f64, written out here independently of the library.
fn horner(coefficients: &[f64], x: f64) -> f64 {
    let mut acc = 0.0;
    for c in coefficients.iter().rev() {
        acc = acc * x + c;
    }
    acc
}

#[test]
fn smoke_run_is_wired_through() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = run_ok(&out, &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    for word in ["trains_like_relu", "from_degree", "in_interval", "poly-d4"] {
        assert!(stdout.contains(word), "{word} not printed:\n{stdout}");
    }
    for f in [
        "fig2/fig2.png",
        "fig2/fig2.svg",
        "fig2/sweep.png",
        "fig2/sweep.svg",
        "fig2/curves.csv",
        "fig2/sweep.csv",
        "run.json",
        "summary.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let run_json = json(&out.join("run.json"));
    let cfg = &run_json["config"];
    let radius = cfg["radius"].as_f64().unwrap();
    let degrees: Vec<usize> = cfg["degrees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(degrees, [2, 4]);
    assert_eq!(cfg["sgd"]["batch_size"], 100);
    assert_eq!(cfg["sgd"]["lr"], 0.01);
    let epochs = cfg["epochs"].as_u64().unwrap() as u32;

    let store = Store::open(out.join("store")).unwrap();
    let names = ["relu", "poly-d2", "poly-d4"];
    let runs: BTreeMap<&str, BTreeMap<u32, SnapshotInfo>> =
        names.iter().map(|n| (*n, by_run(&store, n))).collect();
    for (n, r) in &runs {
        assert_eq!(
            r.keys().copied().collect::<Vec<_>>(),
            (0..=epochs).collect::<Vec<_>>(),
            "{n}"
        );
        match Origin::from_meta(r[&0].meta()).unwrap() {
            Origin::Init { seed } => assert_eq!(seed, cfg["seed"].as_u64().unwrap()),
            o => panic!("{n} starts from {o:?}"),
        }
    }
    assert_eq!(store.len(), names.len() * (epochs as usize + 1));

    // Every net starts from bit-identical weights (BN statistics are
    // re-estimated with each net's own activation, so they may differ).
    let trainable = |t: &[NamedTensor]| -> Vec<(String, Vec<u32>)> {
        t.iter()
            .filter(|t| !t.name.contains(".bn."))
            .map(|t| (t.name.clone(), t.data.iter().map(|v| v.to_bits()).collect()))
            .collect()
    };
    let init = trainable(&named(&store, &runs["relu"][&0]));
    assert_eq!(init.len(), 10, "5 layers, weight and bias");
    for n in ["poly-d2", "poly-d4"] {
        assert!(
            trainable(&named(&store, &runs[n][&0])) == init,
            "{n} does not start from the ReLU net's initial weights"
        );
    }

    // The polynomial is the fit of ReLU on [-r, r] recorded in the summary,
    // and its tensor evaluation is Horner's rule.
    let summary = json(&out.join("summary.json"));
    let sweep = summary["sweep"].as_array().unwrap();
    let fit = Activation::fit_relu(4, radius).unwrap();
    let Activation::Poly { coefficients, .. } = &fit.activation else {
        panic!("not a polynomial")
    };
    // (JSON keeps 17 significant digits; its parser may be off by one ulp.)
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-14 * b.abs().max(1e-300);
    let recorded = &sweep[2]["activation"];
    assert_eq!(recorded["kind"], "poly");
    assert_eq!(recorded["radius"].as_f64().unwrap(), radius);
    let rc = recorded["coefficients"].as_array().unwrap();
    assert_eq!(rc.len(), coefficients.len());
    for (r, c) in rc.iter().zip(coefficients) {
        assert!(close(r.as_f64().unwrap(), *c), "{r} vs {c}");
    }
    assert!(close(
        sweep[2]["sup_error"].as_f64().unwrap(),
        fit.sup_error
    ));
    assert_eq!(coefficients.len(), 5);
    let xs = [-9.0f32, -3.5, -0.25, 0.0, 0.7, 2.0, 7.9];
    let ys = fit.activation.apply(&tch::Tensor::from_slice(&xs)).unwrap();
    let ys: Vec<f32> = Vec::<f32>::try_from(&ys).unwrap();
    for (x, y) in xs.iter().zip(&ys) {
        let want = horner(coefficients, f64::from(*x));
        assert!(
            (f64::from(*y) - want).abs() <= 1e-5 * want.abs().max(1.0),
            "p({x}) = {y}, Horner's rule gives {want}"
        );
    }

    // The stored polynomial net was evaluated with that polynomial: its
    // stored weights, re-evaluated with it, give its stored metrics (and with
    // ReLU they do not).
    landscape_net::set_threads(1);
    let device = landscape_net::tch::Device::Cpu;
    let data_cfg: DataConfig = serde_json::from_value(cfg["data"].clone()).unwrap();
    let data = data::load(&data_cfg, Some(&cifar_fixture()), device).unwrap();
    let eval_cfg: EvalConfig = serde_json::from_value(cfg["eval"].clone()).unwrap();
    let evaluator = Evaluator::new(&data, eval_cfg);
    let relu_net: NetConfig = serde_json::from_value(cfg["net"].clone()).unwrap();
    let last = &runs["poly-d4"][&epochs];
    let evaluate = |net: &NetConfig| -> Metrics {
        let mut m = Dcnn::new(net, device, 0).unwrap();
        m.import(&named(&store, last)).unwrap();
        evaluator.evaluate(&mut m).unwrap()
    };
    let poly = evaluate(&relu_net.clone().with_activation(fit.activation.clone()));
    let stored = stored_metrics(last);
    assert_eq!(poly.train_error, stored.train_error);
    assert_eq!(poly.test_error, stored.test_error);
    assert!(
        (poly.train_loss - stored.train_loss).abs() < 1e-6,
        "{poly:?} vs {stored:?}"
    );
    assert!(
        (poly.test_loss - stored.test_loss).abs() < 1e-6,
        "{poly:?} vs {stored:?}"
    );
    let as_relu = evaluate(&relu_net);
    assert!(
        (as_relu.train_loss - stored.train_loss).abs() > 1e-6,
        "the poly-d4 snapshot evaluates the same with ReLU"
    );

    // The sweep table (CSV and summary) holds the stored final metrics.
    let rows = csv_rows(&out.join("fig2/sweep.csv"));
    assert_eq!(
        rows.iter().map(|r| r["net"].as_str()).collect::<Vec<_>>(),
        names
    );
    for (row, s) in rows.iter().zip(sweep) {
        let fin = stored_metrics(&runs[row["net"].as_str()][&epochs]);
        let num = |k: &str| row[k].parse::<f64>().unwrap();
        assert_eq!(num("final_train_error"), fin.train_error);
        assert_eq!(num("final_test_error"), fin.test_error);
        assert_eq!(num("final_train_loss"), fin.train_loss);
        assert_eq!(num("final_test_loss"), fin.test_loss);
        assert_eq!(row["status"], "complete");
        assert_eq!(s["last"]["train_error"].as_f64().unwrap(), fin.train_error);
        assert_eq!(s["last"]["test_error"].as_f64().unwrap(), fin.test_error);
        assert_eq!(s["last_epoch"], epochs);
    }
    let relu_fin = stored_metrics(&runs["relu"][&epochs]);
    let d4_fin = stored_metrics(&runs["poly-d4"][&epochs]);
    assert_eq!(
        rows[2]["train_error_vs_relu"].parse::<f64>().unwrap(),
        d4_fin.train_error - relu_fin.train_error
    );

    // The out-of-interval curve is the stored per-epoch metric (0 for ReLU,
    // absent at epoch 0), and the table's maximum is the curve's.
    let curves = csv_rows(&out.join("fig2/curves.csv"));
    assert_eq!(curves.len(), store.len());
    let mut max_share: BTreeMap<String, f64> = BTreeMap::new();
    for c in &curves {
        let e: u32 = c["epoch"].parse().unwrap();
        let s = &runs[c["net"].as_str()][&e];
        assert_eq!(c["snapshot"], s.id().to_string());
        assert_eq!(
            c["test_error"].parse::<f64>().unwrap(),
            stored_metrics(s).test_error
        );
        let share = s.meta().metric("out_of_interval_share");
        if e == 0 {
            assert!(share.is_none() && c["out_of_interval_share"].is_empty());
            continue;
        }
        let v: f64 = c["out_of_interval_share"].parse().unwrap();
        assert_eq!(Some(v), share, "{} epoch {e}", c["net"]);
        let m = max_share.entry(c["net"].clone()).or_insert(0.0);
        *m = m.max(v);
        if c["net"] == "relu" {
            assert_eq!(v, 0.0);
        }
    }
    assert!(
        max_share["poly-d2"] > 0.0 && max_share["poly-d4"] > 0.0,
        "the smoke interval is narrow enough for some pre-activations to leave it: {max_share:?}"
    );
    for (row, s) in rows.iter().zip(sweep) {
        let want = max_share[&row["net"]];
        assert_eq!(
            row["max_out_of_interval_share"].parse::<f64>().unwrap(),
            want
        );
        assert_eq!(s["max_out_of_interval_share"].as_f64().unwrap(), want);
    }

    // A changed config into the same --out is refused before any work,
    // naming the key, and leaves the folder as it was.
    let before = tree(&out);
    let changed = config(
        tmp.path(),
        "changed.toml",
        &[("radius = 3.0", "radius = 2.5")],
    );
    let o = run(&out, &["--config", changed.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a changed config was resumed");
    assert!(err.contains("config.radius"), "{err}");
    assert!(tree(&out) == before, "the refused run changed the folder");

    // Analysis-only keys (the main degree, the margins) re-run the analysis only.
    let analysis = config(
        tmp.path(),
        "analysis.toml",
        &[
            ("main_degree = 4", "main_degree = 2"),
            ("train_margin = 5.0", "train_margin = 0.0"),
        ],
    );
    run_ok(&out, &["--config", analysis.to_str().unwrap()]);
    assert_eq!(Store::open(out.join("store")).unwrap().len(), store.len());
    let run_json = json(&out.join("run.json"));
    assert_eq!(run_json["last_invocation"]["snapshots_written"], 0);
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["main_degree"], 2);
    assert_eq!(summary["findings"][0]["threshold"]["train_margin"], 0.0);
}

#[test]
fn a_diverging_degree_is_recorded_and_diverges_again_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    // A narrow interval: the degree-16 polynomial is evaluated far outside it
    // and blows up within a few epochs.
    let cfg = config(
        tmp.path(),
        "diverge.toml",
        &[
            ("[scale.smoke]\nepochs = 2", "[scale.smoke]\nepochs = 4"),
            ("radius = 3.0", "radius = 0.5"),
            (
                "degrees = [2, 4]\nmain_degree = 4",
                "degrees = [2, 16]\nmain_degree = 16",
            ),
        ],
    );
    let out = tmp.path().join("out");
    let o = run_ok(&out, &["--config", cfg.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let summary = json(&out.join("summary.json"));
    let d16 = summary["sweep"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "poly-d16")
        .unwrap()
        .clone();
    assert_eq!(d16["status"], "diverged", "{stdout}");
    let epoch = d16["diverged"]["epoch"].as_u64().unwrap();
    assert!((1..=4).contains(&epoch));
    assert_eq!(d16["last_epoch"].as_u64().unwrap(), epoch - 1);
    assert!(
        stdout.contains(&format!("diverged at epoch {epoch}")),
        "{stdout}"
    );
    let store = Store::open(out.join("store")).unwrap();
    let stored = by_run(&store, "poly-d16");
    assert_eq!(
        stored.keys().copied().collect::<Vec<_>>(),
        (0..epoch as u32).collect::<Vec<_>>(),
        "the epochs before the divergence are stored, none after"
    );
    let rows = csv_rows(&out.join("fig2/sweep.csv"));
    let row = rows.iter().find(|r| r["net"] == "poly-d16").unwrap();
    assert_eq!(row["status"], "diverged");
    assert_eq!(row["diverged_epoch"], epoch.to_string());
    let findings = summary["findings"].as_array().unwrap();
    let div = findings.iter().find(|f| f["id"] == "divergence").unwrap();
    assert_eq!(div["numbers"]["diverged"][0]["degree"], 16);
    let main = findings
        .iter()
        .find(|f| f["id"] == "trains_like_relu")
        .unwrap();
    assert_eq!(main["verdict"], "does not hold");

    // Running again resumes from the stored epochs and diverges at the same
    // epoch and step: nothing new is stored, the table is the same.
    run_ok(&out, &["--config", cfg.to_str().unwrap()]);
    let again = json(&out.join("summary.json"));
    assert_eq!(again["sweep"], summary["sweep"]);
    let run_json = json(&out.join("run.json"));
    assert_eq!(run_json["last_invocation"]["snapshots_written"], 0);
}
