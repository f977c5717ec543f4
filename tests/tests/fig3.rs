//! End-to-end tests of `landscape reproduce fig3` and `landscape reproduce
//! random-labels` through the real binary, on a synthetic CIFAR-10 folder
//! (random images, balanced labels), at the `smoke` scale. They check the
//! wiring: which model each run starts from, the perturbation's size, that
//! every epoch is recorded, that the random labels are the recorded ones and
//! the test set is untouched, and that the summary's numbers are the store's.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use landscape_engine::analysis::cosine_distance;
use landscape_engine::identity::{Origin, RunId};
use landscape_tests::{
    assert_mds_of_layer, cifar_fixture, csv_rows, edited_config, json, smoke, smoke_ok, std_dev,
    tensors, tree,
};
use landscape_trajectory::{SnapshotInfo, Store};

const BIN: &str = env!("CARGO_BIN_EXE_landscape-e2e");
const FIG3: &str = include_str!("../../experiments/fig3.toml");

/// Smoke scale: 3 stages x 8 runs x 2 epochs, runs 1-4 copies, alpha 0.01.
const STAGES: u32 = 3;
const RUNS: u32 = 8;
const COPIES: u32 = 4;
const EPOCHS: u32 = 2;
const ALPHA: f64 = 0.01;

fn run(figure: &str, out: &Path, extra: &[&str]) -> Output {
    smoke(BIN, figure, out, extra)
}

fn run_ok(figure: &str, out: &Path, extra: &[&str]) -> Output {
    smoke_ok(BIN, figure, out, extra)
}

/// A copy of `text` with `edits` applied, written into `dir`.
fn config(dir: &Path, name: &str, text: &str, edits: &[(&str, &str)]) -> PathBuf {
    edited_config(dir, name, text, edits)
}

/// Every trajectory of a store, by run and epoch.
fn trajectories(store: &Store) -> BTreeMap<(u32, u32), BTreeMap<u32, SnapshotInfo>> {
    let mut out: BTreeMap<(u32, u32), BTreeMap<u32, SnapshotInfo>> = BTreeMap::new();
    for s in store.snapshots() {
        match RunId::from_meta(s.meta()).unwrap() {
            RunId::Stage { stage, run } => {
                out.entry((stage, run))
                    .or_default()
                    .insert(s.meta().epoch().unwrap(), s.clone());
            }
            other => panic!("unexpected run {other:?}"),
        }
    }
    out
}

/// Checks the plan's wiring in one store: every epoch of every run, runs 1-4
/// start bit-identically from the previous stage's run 1 (stage 1: from one
/// initialisation), runs 5-8 from it plus noise of std alpha * std(W) on the
/// weights only. Returns the trajectories.
fn assert_stage_wiring(store: &Store) -> BTreeMap<(u32, u32), BTreeMap<u32, SnapshotInfo>> {
    let t = trajectories(store);
    assert_eq!(t.len(), (STAGES * RUNS) as usize);
    assert_eq!(store.len(), (STAGES * RUNS * (EPOCHS + 1)) as usize);
    for stage in 1..=STAGES {
        let start = (stage - 1) * EPOCHS;
        // The model every run of the stage starts from.
        let parent = if stage == 1 {
            &t[&(1, 1)][&0]
        } else {
            &t[&(stage - 1, 1)][&start]
        };
        let pt = tensors(store, parent);
        for run in 1..=RUNS {
            let traj = &t[&(stage, run)];
            assert_eq!(
                traj.keys().copied().collect::<Vec<_>>(),
                (start..=start + EPOCHS).collect::<Vec<_>>(),
                "stage {stage} run {run}: every epoch recorded"
            );
            // Each epoch's snapshot was trained from the one before.
            for e in start + 1..=start + EPOCHS {
                match Origin::from_meta(traj[&e].meta()).unwrap() {
                    Origin::Trained { previous } => assert_eq!(previous, traj[&(e - 1)].id()),
                    o => panic!("stage {stage} run {run} epoch {e}: origin {o:?}"),
                }
            }
            let first = &traj[&start];
            let ft = tensors(store, first);
            let origin = Origin::from_meta(first.meta()).unwrap();
            if run <= COPIES {
                match (stage, origin) {
                    (1, Origin::Init { seed }) => assert_eq!(seed, 0),
                    (s, Origin::Copied { parent: p }) if s > 1 => assert_eq!(p, parent.id()),
                    (_, o) => panic!("stage {stage} run {run}: origin {o:?}"),
                }
                // Bit-identical to the start model: weights, biases and BN statistics.
                assert_eq!(ft.len(), pt.len());
                for (name, v) in &pt {
                    let same = v
                        .iter()
                        .zip(&ft[name])
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "stage {stage} run {run}: {name} is not a copy");
                }
                continue;
            }
            match origin {
                Origin::Perturbed {
                    parent: p,
                    alpha,
                    biases,
                    ..
                } => {
                    assert_eq!(p, parent.id(), "stage {stage} run {run}");
                    assert_eq!(alpha, ALPHA);
                    assert!(!biases);
                }
                o => panic!("stage {stage} run {run}: origin {o:?}"),
            }
            let mut weights = 0;
            for (name, w) in &pt {
                if name.contains(".bn.") {
                    continue;
                }
                let noise: Vec<f64> = w
                    .iter()
                    .zip(&ft[name])
                    .map(|(x, y)| f64::from(*y) - f64::from(*x))
                    .collect();
                if name.ends_with(".bias") {
                    assert!(
                        noise.iter().all(|v| *v == 0.0),
                        "stage {stage} run {run}: {name} was perturbed"
                    );
                    continue;
                }
                weights += 1;
                let wd: Vec<f64> = w.iter().map(|v| f64::from(*v)).collect();
                let ratio = std_dev(&noise) / (ALPHA * std_dev(&wd));
                // The sample std of n normal draws has relative s.e. ~ 1/sqrt(2n).
                let tol = 5.0 / (2.0 * noise.len() as f64).sqrt();
                assert!(
                    (ratio - 1.0).abs() < tol,
                    "stage {stage} run {run}: {name}: noise std / (alpha std W) = {ratio} (tolerance {tol})"
                );
            }
            assert_eq!(weights, 5, "every layer's weight tensor is perturbed");
        }
        // Runs from the same start shuffle differently: they end apart.
        let a = tensors(store, &t[&(stage, 1)][&(start + EPOCHS)]);
        let b = tensors(store, &t[&(stage, 2)][&(start + EPOCHS)]);
        assert_ne!(a["layer2.weight"], b["layer2.weight"], "stage {stage}");
    }
    t
}

fn layer2(store: &Store, s: &SnapshotInfo) -> Vec<f32> {
    let t = tensors(store, s);
    [t["layer2.weight"].clone(), t["layer2.bias"].clone()].concat()
}

/// The summary's per-stage numbers are the store's.
fn assert_numbers_are_the_stores(
    store: &Store,
    t: &BTreeMap<(u32, u32), BTreeMap<u32, SnapshotInfo>>,
    labels: &serde_json::Value,
) {
    for (i, st) in labels["stages"].as_array().unwrap().iter().enumerate() {
        let stage = i as u32 + 1;
        let (start, end) = ((stage - 1) * EPOCHS, stage * EPOCHS);
        let run1 = &t[&(stage, 1)];
        let d = cosine_distance(&layer2(store, &run1[&start]), &layer2(store, &run1[&end]));
        assert!((st["displacement"].as_f64().unwrap() - d).abs() < 1e-12);
        let train: Vec<f64> = (1..=RUNS)
            .map(|r| t[&(stage, r)][&end].meta().metric("train_error").unwrap())
            .collect();
        let json_train: Vec<f64> = st["final_train_error"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(json_train, train, "stage {stage}");
        let step: f64 = (1..=RUNS)
            .map(|r| {
                let tr = &t[&(stage, r)];
                cosine_distance(&layer2(store, &tr[&(end - 1)]), &layer2(store, &tr[&end]))
            })
            .sum::<f64>()
            / f64::from(RUNS);
        assert!((st["epoch_step"].as_f64().unwrap() - step).abs() < 1e-12);
    }
}

#[test]
fn fig3_smoke_run_is_wired_through() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = run_ok("fig3", &out, &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    for id in [
        "runs_end_apart",
        "errors_agree",
        "later_stages_move_less",
        "training_error_falls",
    ] {
        assert!(stdout.contains(id), "{id} not reported:\n{stdout}");
    }
    for f in [
        "fig3/fig8.png",
        "fig3/fig8.svg",
        "fig3/fig9.png",
        "fig3/fig10.svg",
        "fig3/fig11.svg",
        "fig3/fig12.svg",
        "fig3/curves.svg",
        "fig3/fig8-points.csv",
        "fig3/fig10-points.csv",
        "fig3/fig12-points.csv",
        "run.json",
        "summary.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(!out.join("store-random").exists());
    let store = Store::open(out.join("store")).unwrap();
    let t = assert_stage_wiring(&store);
    let run_json = json(&out.join("run.json"));
    let fp = run_json["fingerprint"]["hash"].as_str().unwrap().to_owned();
    assert!(store
        .snapshots()
        .iter()
        .all(|s| s.meta().extra()["fingerprint"] == fp));
    assert_eq!(run_json["status"], "complete");
    assert_eq!(
        run_json["last_invocation"]["snapshots_written"],
        store.len()
    );
    assert!(run_json["random_labels"].is_null());

    // The pictures: fig8 embeds stages 1-3 (layer 2), fig10 stages 2-3, fig12 layer 5.
    let rows = csv_rows(&out.join("fig3/fig8-points.csv"));
    assert_eq!(rows.len(), store.len());
    assert_mds_of_layer(&store, &rows, 2);
    let rows10 = csv_rows(&out.join("fig3/fig10-points.csv"));
    assert_eq!(rows10.len(), (2 * RUNS * (EPOCHS + 1)) as usize);
    assert!(rows10.iter().all(|r| !r["run"].starts_with("stage1/")));
    assert_mds_of_layer(&store, &rows10, 2);
    assert_mds_of_layer(&store, &csv_rows(&out.join("fig3/fig12-points.csv")), 5);
    // Overview points are drawn as their stage number, with a tooltip each;
    // the legend lists the 8 runs once.
    let svg = std::fs::read_to_string(out.join("fig3/fig8.svg")).unwrap();
    assert_eq!(svg.matches("<title>").count(), rows.len());
    for stage in 1..=STAGES {
        let n = svg.matches(&format!("\n{stage}\n</text>")).count();
        assert!(
            n >= (RUNS * (EPOCHS + 1)) as usize,
            "stage {stage}: {n} labels"
        );
    }
    for run in 1..=RUNS {
        assert_eq!(
            svg.matches(&format!("\nrun {run}\n</text>")).count(),
            1,
            "legend of run {run}"
        );
    }
    // Per-stage panels: each point drawn as its epoch within the stage.
    let svg9 = std::fs::read_to_string(out.join("fig3/fig9.svg")).unwrap();
    assert!(svg9.contains("stage 2, runs 5-8"), "panel titles");
    let s = &t[&(2, 5)][&3];
    let err = s.meta().metric("train_error").unwrap();
    assert!(
        svg9.contains(&format!(
            "run 5: stage 2, epoch 3, snapshot {}, train error {err:.2}%",
            s.id()
        )),
        "tooltip of stage 2 run 5 epoch 3"
    );

    // The summary's numbers are the store's.
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["experiment"], "fig3");
    assert_eq!(summary["plan"], serde_json::json!([STAGES, RUNS, EPOCHS]));
    let labels = &summary["labels"][0];
    assert_eq!(labels["labels"], "true");
    assert_numbers_are_the_stores(&store, &t, labels);
    let last = t[&(STAGES, 1)][&(STAGES * EPOCHS)]
        .meta()
        .metric("test_error")
        .unwrap();
    assert_eq!(labels["final_run1"]["test_error"].as_f64().unwrap(), last);
    // Barriers between every pair of a stage's runs at the stage's end: the
    // endpoints are the runs' stored evaluations.
    assert!(
        stdout.contains("between every pair of a stage's runs"),
        "{stdout}"
    );
    let rows: Vec<serde_json::Value> =
        std::fs::read_to_string(out.join("fig3").join("barriers.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let pairs_per_stage = (RUNS * (RUNS - 1) / 2) as usize;
    assert_eq!(rows.len(), STAGES as usize * pairs_per_stage);
    assert_eq!(
        csv_rows(&out.join("fig3").join("barriers.csv")).len(),
        rows.len()
    );
    let mut k = 0;
    for stage in 1..=STAGES {
        for i in 1..=RUNS {
            for j in i + 1..=RUNS {
                let r = &rows[k];
                k += 1;
                let end = stage * EPOCHS;
                let (a, b) = (&t[&(stage, i)][&end], &t[&(stage, j)][&end]);
                assert_eq!(r["a"].as_u64().unwrap(), a.id().get());
                assert_eq!(r["b"].as_u64().unwrap(), b.id().get());
                let pts = r["points"].as_array().unwrap();
                let last = pts.len() - 1;
                for (p, s) in [(&pts[0], a), (&pts[last], b)] {
                    for m in ["train_loss", "train_error", "test_loss", "test_error"] {
                        assert_eq!(p[m].as_f64().unwrap(), s.meta().metric(m).unwrap());
                    }
                }
            }
        }
    }
    assert_eq!(
        summary["pair_barriers"][0]["all"]["pairs"]
            .as_u64()
            .unwrap() as usize,
        rows.len()
    );
    let ids: Vec<&str> = labels["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "runs_end_apart",
            "errors_agree",
            "later_stages_move_less",
            "training_error_falls",
            "test_error",
            "same_with_euclidean",
            "same_on_other_layers"
        ]
    );
    assert_eq!(labels["findings"][1]["threshold"]["error_spread"], 3.0);

    // A changed config into the same --out is refused before any work,
    // naming the keys, and leaves the folder as it was.
    let before = tree(&out);
    let changed = config(
        tmp.path(),
        "changed.toml",
        FIG3,
        &[
            (
                "[scale.smoke]\nstages = 3",
                "[scale.smoke]\nseed = 7\nstages = 3",
            ),
            ("alpha = 0.01", "alpha = 0.02"),
        ],
    );
    let o = run("fig3", &out, &["--config", changed.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a changed config was resumed");
    assert!(err.contains("config.seed: stored 0, now 7"), "{err}");
    assert!(
        err.contains("config.perturb.alpha: stored 0.01, now 0.02"),
        "{err}"
    );
    assert!(tree(&out) == before, "the refused run changed the folder");

    // A changed threshold (analysis only) re-runs only the analysis.
    let analysis = config(
        tmp.path(),
        "analysis.toml",
        FIG3,
        &[("error_spread = 3.0", "error_spread = 7.5")],
    );
    run_ok("fig3", &out, &["--config", analysis.to_str().unwrap()]);
    assert_eq!(Store::open(out.join("store")).unwrap().len(), store.len());
    assert_eq!(
        json(&out.join("run.json"))["last_invocation"]["snapshots_written"],
        0
    );
    let summary = json(&out.join("summary.json"));
    assert_eq!(
        summary["labels"][0]["findings"][1]["threshold"]["error_spread"],
        7.5
    );
}

#[test]
fn random_labels_smoke_run_is_wired_through() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = run_ok("random-labels", &out, &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("true vs random labels"), "{stdout}");
    assert!(stdout.contains("same_shape"), "{stdout}");
    for f in [
        "true-labels/fig8.svg",
        "true-labels/fig9.svg",
        "random-labels/fig8.svg",
        "random-labels/fig11.svg",
        "random-labels/curves.svg",
        "summary.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let truth = Store::open(out.join("store")).unwrap();
    let random = Store::open(out.join("store-random")).unwrap();
    let tt = assert_stage_wiring(&truth);
    let tr = assert_stage_wiring(&random);

    // The labels: the same images, labels changed in exactly the recorded
    // count, and the random store trained on those labels (CRC).
    let run_json = json(&out.join("run.json"));
    let summary = json(&out.join("summary.json"));
    let rec = &run_json["random_labels"];
    assert_eq!(rec, &summary["random_labels"]);
    assert_eq!(rec["mode"], "permutation");
    assert_eq!(rec["seed"], 1);
    let cifar = landscape_dataset::Cifar10::load(&cifar_fixture()).unwrap();
    let subset = cifar.train().stratified(200, 0).unwrap();
    let (randomised, _) = subset.with_random_labels(landscape_dataset::LabelNoise::Permutation, 1);
    let changed = subset
        .labels()
        .iter()
        .zip(randomised.labels())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(rec["images"], 200);
    assert_eq!(rec["changed"].as_u64().unwrap() as usize, changed);
    assert!(
        changed > 100,
        "a permutation of 10 balanced classes changes most labels"
    );
    let (t_data, r_data) = (&summary["labels"][0], &summary["labels"][1]);
    assert_eq!(
        (t_data["labels"].as_str(), r_data["labels"].as_str()),
        (Some("true"), Some("random"))
    );
    let crc = |v: &serde_json::Value| v["labels_crc32"].as_u64().unwrap() as u32;
    assert_eq!(crc(&t_data["train_data"]), crc32fast::hash(subset.labels()));
    assert_eq!(
        crc(&r_data["train_data"]),
        crc32fast::hash(randomised.labels())
    );
    assert_eq!(crc(rec), crc(&r_data["train_data"]));
    assert_eq!(
        t_data["train_data"]["indices_crc32"], r_data["train_data"]["indices_crc32"],
        "the same images"
    );
    // The test set is untouched: the same identity, in run.json too, and the
    // same (bit-identical) initial model gets the same test metrics in both
    // stores but a different training loss.
    assert_eq!(t_data["test_data"], r_data["test_data"]);
    let fp_test: serde_json::Value = serde_json::from_str(
        run_json["fingerprint"]["keys"]["data.test"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(fp_test, t_data["test_data"]);
    let (a, b) = (&tt[&(1, 1)][&0], &tr[&(1, 1)][&0]);
    assert_eq!(
        tensors(&truth, a),
        tensors(&random, b),
        "one initialisation"
    );
    for m in ["test_error", "test_loss"] {
        assert_eq!(a.meta().metric(m), b.meta().metric(m), "{m}");
    }
    assert_ne!(a.meta().metric("train_loss"), b.meta().metric("train_loss"));
    // Same initialisation and shuffles: only the labels make them differ.
    assert_ne!(
        layer2(&truth, &tt[&(1, 1)][&1]),
        layer2(&random, &tr[&(1, 1)][&1])
    );

    // The same statistics side by side, each the store's.
    assert_numbers_are_the_stores(&truth, &tt, t_data);
    assert_numbers_are_the_stores(&random, &tr, r_data);
    let table = summary["table"].as_array().unwrap();
    assert!(table.len() >= 10);
    let row = |name: &str| {
        table
            .iter()
            .find(|r| r["statistic"] == name)
            .unwrap_or_else(|| panic!("row {name}"))
    };
    let end = row("run 1 training error at the end (%)");
    assert_eq!(end["true_labels"], t_data["final_run1"]["train_error"]);
    assert_eq!(end["random_labels"], r_data["final_run1"]["train_error"]);
    let ids: Vec<&str> = summary["comparison"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["same_shape", "random_labels_fall"]);
    assert_eq!(summary["comparison"][0]["threshold"]["shape_factor"], 2.0);

    // The random-label seed is part of the fingerprint: another seed into the
    // same --out is refused; --fresh starts over (both stores).
    let changed = config(
        tmp.path(),
        "changed.toml",
        include_str!("../../experiments/random-labels.toml"),
        &[(
            "mode = \"permutation\", seed = 1",
            "mode = \"permutation\", seed = 2",
        )],
    );
    let o = run(
        "random-labels",
        &out,
        &["--config", changed.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "a changed random-label seed was resumed"
    );
    assert!(err.contains("config.random_labels"), "{err}");
    run_ok(
        "random-labels",
        &out,
        &["--config", changed.to_str().unwrap(), "--fresh"],
    );
    let run_json = json(&out.join("run.json"));
    assert_eq!(run_json["random_labels"]["seed"], 2);
    let fp = run_json["fingerprint"]["hash"].as_str().unwrap();
    let random = Store::open(out.join("store-random")).unwrap();
    assert_eq!(random.len(), truth.len());
    assert!(random
        .snapshots()
        .iter()
        .all(|s| s.meta().extra()["fingerprint"] == fp));
}

#[test]
fn each_experiment_refuses_the_others_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = config(
        tmp.path(),
        "bad.toml",
        FIG3,
        &[(
            "measure_layer = 2\n",
            "measure_layer = 2\nrandom_labels = { mode = \"uniform\", seed = 3 }\n",
        )],
    );
    let out = tmp.path().join("out");
    let o = run("fig3", &out, &["--config", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("random_labels") && err.contains("random-labels"),
        "{err}"
    );
    assert!(!out.exists(), "the output folder was created");
    let o = run("random-labels", &out, &["--config", FIG3_PATH]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("random_labels"), "{err}");
    assert!(!out.exists(), "the output folder was created");
}

const FIG3_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../experiments/fig3.toml");

#[test]
fn interrupted_run_resumes_to_the_same_result() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    run_ok("fig3", &reference, &[]);

    let out = tmp.path().join("interrupted");
    let mut child = Command::new(BIN)
        .args([
            "reproduce",
            "fig3",
            "--scale",
            "smoke",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--out",
        ])
        .arg(&out)
        .arg("--data")
        .arg(cifar_fixture())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut killed = false;
    while start.elapsed() < Duration::from_secs(120) {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if let Ok(store) = Store::open(out.join("store")) {
            // Mid-stage 2, after a perturbed run has started.
            if store
                .snapshots()
                .iter()
                .any(|s| s.meta().run() == "stage2/run6")
            {
                child.kill().unwrap();
                killed = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.wait();
    assert!(killed, "the run finished before it could be interrupted");
    assert!(!out.join("summary.json").exists());
    run_ok("fig3", &out, &[]);
    for f in ["fig3/fig8-points.csv", "fig3/fig12-points.csv"] {
        let a = std::fs::read_to_string(reference.join(f)).unwrap();
        let b = std::fs::read_to_string(out.join(f)).unwrap();
        assert_eq!(
            a, b,
            "{f}: the resumed run differs from the uninterrupted one"
        );
    }
    assert_eq!(json(&out.join("run.json"))["resumed"], true);
    let sa = json(&reference.join("summary.json"));
    let sb = json(&out.join("summary.json"));
    assert_eq!(sa["labels"][0]["stages"], sb["labels"][0]["stages"]);
}
