//! End-to-end test of `landscape import`: two PyTorch state_dicts (the
//! fixtures of crates/net/tests/fixtures/pytorch, made by make_fixture.py)
//! into a new store, then `landscape surface line` between them and
//! `landscape hessian` at one: the endpoints' training loss is the loss of
//! the imported model evaluated directly (BN running statistics, the same
//! data), and a store of another network is refused unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use landscape_engine::data::{self, DataConfig};
use landscape_engine::identity::{Origin, RunId};
use landscape_net::{evaluate, Dcnn, NetConfig, StateDict};
use landscape_tests::{cifar_fixture, csv_rows, json, tree};
use landscape_trajectory::Store;
use tch::{Device, Tensor};

const BIN: &str = env!("CARGO_BIN_EXE_landscape-e2e");

/// `landscape hessian` settings small enough for a test (one seed).
const SMALL_SPECTRUM: [&str; 16] = [
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
    "2",
    "--count-max-degree",
    "200",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/net/tests/fixtures/pytorch")
        .join(name)
}

fn landscape(args: &[&str], paths: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (flag, p) in paths {
        cmd.arg(flag).arg(p);
    }
    cmd.args(["--device", "cpu", "--threads", "1", "--data"])
        .arg(cifar_fixture())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The training loss of `file` evaluated directly: eval mode (the file's BN
/// running statistics) on the first 100 images of the stratified subset.
fn direct_train_loss(file: &Path) -> f64 {
    let sd = StateDict::read(file, None).unwrap();
    let model = sd.to_model(Device::Cpu).unwrap();
    let cfg = DataConfig {
        train_size: Some(100),
        test_size: Some(50),
        ..DataConfig::default()
    };
    let d = data::load(&cfg, Some(&cifar_fixture()), Device::Cpu).unwrap();
    evaluate(&model, &d.train, 1000).unwrap().loss
}

#[test]
fn import_then_surface_line_and_hessian() {
    tch::set_num_threads(1);
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("torch/store");
    let (a, b) = (fixture("small.pt"), fixture("other.pt"));
    let out = ok(
        landscape(
            &["import", "--train-size", "100", "--test-size", "50"],
            &[("--from", &a), ("--from", &b), ("--store", &store)],
        ),
        "import",
    );
    assert!(out.contains("snapshot   0 (epoch 0)"), "{out}");
    // The store: two snapshots with identity, origin (name and CRC) and metrics.
    let s = Store::open(&store).unwrap();
    assert_eq!(s.len(), 2);
    let direct = [direct_train_loss(&a), direct_train_loss(&b)];
    for (info, (file, loss)) in s.snapshots().iter().zip([(&a, direct[0]), (&b, direct[1])]) {
        let meta = info.meta();
        assert_eq!(meta.run(), "imported");
        assert_eq!(
            RunId::from_meta(meta),
            Some(RunId::Named {
                name: "imported".into()
            })
        );
        match Origin::from_meta(meta).unwrap() {
            Origin::Imported {
                file: name,
                crc32,
                format,
                layout,
            } => {
                assert_eq!(name, file.file_name().unwrap().to_string_lossy());
                let bytes = std::fs::read(file).unwrap();
                assert_eq!(crc32, format!("{:08x}", crc32fast::hash(&bytes)));
                assert_eq!(
                    (format.as_str(), layout.as_str()),
                    ("torch.save", "sequential")
                );
            }
            other => panic!("origin {other:?}"),
        }
        let stored = meta.metric("train_loss").unwrap();
        assert!((stored - loss).abs() <= 1e-6 * loss, "{stored} vs {loss}");
    }
    let rj = json(&tmp.path().join("torch/run.json"));
    assert_eq!(rj["experiment"], "import");
    assert_eq!(rj["config"]["eval"]["bn"], "running");
    assert_eq!(
        rj["config"]["net"]["widths"],
        serde_json::json!([4, 6, 8, 6])
    );
    assert_eq!(rj["imported"].as_array().unwrap().len(), 2);
    // The line between them: the endpoints are the imported models.
    let line = tmp.path().join("line");
    ok(
        landscape(
            &[
                "surface", "line", "--from", "0", "--to", "1", "--points", "5", "--t-min", "-0.5",
                "--t-max", "1.5",
            ],
            &[("--store", &store), ("--out", &line)],
        ),
        "surface line",
    );
    let rows = csv_rows(&line.join("points.csv"));
    assert_eq!(rows.len(), 5);
    for (t, loss) in [(0.0, direct[0]), (1.0, direct[1])] {
        let row = rows
            .iter()
            .find(|r| r["x"].parse::<f64>().unwrap() == t)
            .unwrap();
        let got: f64 = row["train_loss"].parse().unwrap();
        assert!(
            (got - loss).abs() <= 1e-6 * loss,
            "t = {t}: surface {got} vs direct {loss}"
        );
    }
    let summary = json(&line.join("summary.json"));
    assert_eq!(summary["settings"]["bn"]["value"], "running");
    assert_eq!(summary["settings"]["bn"]["from"], "run.json");
    assert_eq!(summary["settings"]["train_size"]["value"], "100");
    // The Hessian at the first: its loss is the same.
    let h = tmp.path().join("h");
    ok(
        landscape(
            &[&["hessian", "--id", "0"][..], &SMALL_SPECTRUM].concat(),
            &[("--store", &store), ("--out", &h)],
        ),
        "hessian",
    );
    let report = json(&h.join("hessian.json"));
    let loss = report["report"]["loss"].as_f64().unwrap();
    assert!(
        (loss - direct[0]).abs() <= 1e-5 * direct[0],
        "{loss} vs {}",
        direct[0]
    );
    // Another network is refused, store and run.json unchanged; the error
    // names the file and a mis-shaped tensor.
    let before = tree(&tmp.path().join("torch"));
    let paper = Dcnn::new(&NetConfig::paper(), Device::Cpu, 0).unwrap();
    let tensors: Vec<(String, Tensor)> = paper
        .export()
        .unwrap()
        .into_iter()
        .map(|t| {
            let shape: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
            (t.name, Tensor::from_slice(&t.data).view(shape.as_slice()))
        })
        .collect();
    let wide = tmp.path().join("paper.safetensors");
    Tensor::write_safetensors(&tensors, &wide).unwrap();
    let o = landscape(&["import"], &[("--from", &wide), ("--store", &store)]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("paper.safetensors"), "{err}");
    assert!(
        err.contains("`layer2.weight` has shape [32, 3, 3, 3], expected [4, 3, 3, 3]"),
        "{err}"
    );
    assert_eq!(tree(&tmp.path().join("torch")), before);
    // A second import appends to the run (epoch 2) and to run.json.
    let out = ok(
        landscape(
            &["import"],
            &[
                ("--from", &fixture("small.safetensors")),
                ("--store", &store),
            ],
        ),
        "second import",
    );
    assert!(out.contains("snapshot   2 (epoch 2)"), "{out}");
    let s = Store::open(&store).unwrap();
    assert_eq!(s.len(), 3);
    let m0 = s.snapshots()[0].meta().metric("train_loss").unwrap();
    let m2 = s.snapshots()[2].meta().metric("train_loss").unwrap();
    assert_eq!(m0, m2, "the same model under landscape's names");
    let rj = json(&tmp.path().join("torch/run.json"));
    assert_eq!(rj["imported"].as_array().unwrap().len(), 3);
    // Without data settings: no metrics, and hessian takes --sample alone.
    let bare = tmp.path().join("bare/store");
    ok(
        landscape(&["import"], &[("--from", &a), ("--store", &bare)]),
        "import without data settings",
    );
    let s = Store::open(&bare).unwrap();
    assert!(s.snapshots()[0].meta().metrics().is_empty());
    let rj = json(&tmp.path().join("bare/run.json"));
    assert!(rj["config"]["data"].is_null(), "{rj}");
    let h = tmp.path().join("h-bare");
    ok(
        landscape(
            &[
                &["hessian", "--id", "0", "--sample", "100"][..],
                &SMALL_SPECTRUM,
            ]
            .concat(),
            &[("--store", &bare), ("--out", &h)],
        ),
        "hessian --sample without data settings",
    );
    let report = json(&h.join("hessian.json"));
    let loss = report["report"]["loss"].as_f64().unwrap();
    assert!((loss - direct[0]).abs() <= 1e-5 * direct[0]);
    assert_eq!(report["settings"]["train_size"]["from"], "--sample");
}
