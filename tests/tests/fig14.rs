//! End-to-end tests of `landscape reproduce fig14` through the real binary, on
//! a synthetic CIFAR-10 folder (random images, balanced labels), at the
//! `smoke` scale. They check the wiring: the numbers that flow from one piece
//! to the next, not just that files exist.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use landscape_engine::identity::{Origin, RunId};
use landscape_tests::{
    assert_mds_of_layer, csv_rows, edited_config, json, smoke, smoke_command, smoke_ok, std_dev,
    tensors, tree,
};
use landscape_trajectory::{SnapshotInfo, Store};

const BIN: &str = env!("CARGO_BIN_EXE_landscape-e2e");
const BUNDLED: &str = include_str!("../../experiments/fig14.toml");

fn reproduce(out: &Path, extra: &[&str]) -> Command {
    smoke_command(BIN, "fig14", out, extra)
}

fn run(out: &Path, extra: &[&str]) -> Output {
    smoke(BIN, "fig14", out, extra)
}

fn run_ok(out: &Path, extra: &[&str]) -> Output {
    smoke_ok(BIN, "fig14", out, extra)
}

/// A copy of the bundled config with `edits` applied, written into `dir`.
fn config(dir: &Path, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    edited_config(dir, name, BUNDLED, edits)
}

#[test]
fn smoke_run_is_wired_through() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = run_ok(&out, &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("later_branches_closer"), "{stdout}");
    for f in [
        "fig14/fig14.png",
        "fig14/fig14.svg",
        "fig14/fig15.png",
        "fig14/fig15.svg",
        "fig14/curves.svg",
        "fig14/points.csv",
        "run.json",
        "summary.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let store = Store::open(out.join("store")).unwrap();
    let snaps = store.snapshots().to_vec();
    // main 0..=6, branches from 0,1,2,4 to 6 (7+6+5+3 models), and as many averages.
    assert_eq!(snaps.len(), 7 + 2 * (7 + 6 + 5 + 3));
    let by_run = |want: &RunId| -> BTreeMap<u32, SnapshotInfo> {
        snaps
            .iter()
            .filter(|s| RunId::from_meta(s.meta()).as_ref() == Some(want))
            .map(|s| (s.meta().epoch().unwrap(), s.clone()))
            .collect()
    };
    let main = by_run(&RunId::Main);
    assert_eq!(main.len(), 7);
    let run_json = json(&out.join("run.json"));
    let fp = run_json["fingerprint"]["hash"].as_str().unwrap().to_owned();
    for s in &snaps {
        assert_eq!(
            s.meta().extra()["fingerprint"],
            fp,
            "every snapshot carries the run's fingerprint"
        );
        assert_eq!(s.meta().extra()["bn_eval"], "reestimate");
    }

    for (i, from) in [0u32, 1, 2, 4].into_iter().enumerate() {
        let branch = by_run(&RunId::Branch {
            variant: "fig14".into(),
            index: i + 1,
            from_epoch: from,
        });
        let avg = by_run(&RunId::Averaged {
            variant: "fig14".into(),
            index: i + 1,
            from_epoch: from,
        });
        assert_eq!(
            branch.keys().copied().collect::<Vec<_>>(),
            (from..=6).collect::<Vec<_>>()
        );
        assert_eq!(
            avg.keys().copied().collect::<Vec<_>>(),
            (from..=6).collect::<Vec<_>>()
        );

        // A branch starts at the main model of its epoch plus noise of std
        // alpha * std(W) in every weight tensor; biases untouched.
        let first = &branch[&from];
        match Origin::from_meta(first.meta()).unwrap() {
            Origin::Perturbed {
                parent,
                alpha,
                biases,
                ..
            } => {
                assert_eq!(parent, main[&from].id());
                assert_eq!(alpha, 0.25);
                assert!(!biases);
            }
            o => panic!("branch origin {o:?}"),
        }
        let m = tensors(&store, &main[&from]);
        let b = tensors(&store, first);
        let mut weights = 0;
        for (name, w) in &m {
            if name.contains(".bn.") {
                continue;
            }
            let noise: Vec<f64> = w
                .iter()
                .zip(&b[name])
                .map(|(x, y)| f64::from(*y) - f64::from(*x))
                .collect();
            if name.ends_with(".bias") {
                assert!(noise.iter().all(|v| *v == 0.0), "{name} was perturbed");
                continue;
            }
            weights += 1;
            let wd: Vec<f64> = w.iter().map(|v| f64::from(*v)).collect();
            let ratio = std_dev(&noise) / (0.25 * std_dev(&wd));
            // The sample std of n normal draws has relative s.e. ~ 1/sqrt(2n).
            let tol = 5.0 / (2.0 * noise.len() as f64).sqrt();
            assert!(
                (ratio - 1.0).abs() < tol,
                "{name}: noise std / (alpha std W) = {ratio} (tolerance {tol})"
            );
        }
        assert_eq!(weights, 5, "every layer's weight tensor is perturbed");

        // Each averaged snapshot is exactly the mean of main and the branch at
        // its epoch (weights and biases; BN statistics are re-estimated).
        for (e, a) in &avg {
            let am = tensors(&store, a);
            let mm = tensors(&store, &main[e]);
            let bm = tensors(&store, &branch[e]);
            match Origin::from_meta(a.meta()).unwrap() {
                Origin::Interpolated { a: pa, b: pb, t } => {
                    assert_eq!((pa, pb, t), (main[e].id(), branch[e].id(), 0.5));
                }
                o => panic!("average origin {o:?}"),
            }
            for (name, v) in &am {
                if name.contains(".bn.") {
                    continue;
                }
                for (k, x) in v.iter().enumerate() {
                    let want = (mm[name][k] + bm[name][k]) * 0.5;
                    assert_eq!(
                        x.to_bits(),
                        want.to_bits(),
                        "{name}[{k}] of the average at epoch {e}"
                    );
                }
            }
        }
    }

    // The CSV holds every point with its stored metrics, and the MDS is of the
    // configured layer (2).
    let rows = csv_rows(&out.join("fig14/points.csv"));
    assert_eq!(rows.len(), snaps.len());
    for row in &rows {
        let s = snaps
            .iter()
            .find(|s| s.id().get().to_string() == row["id"])
            .unwrap();
        assert_eq!(row["run"], s.meta().run());
        let err: f64 = row["train_error"].parse().unwrap();
        assert_eq!(err, s.meta().metric("train_error").unwrap());
    }
    assert_mds_of_layer(&store, &rows, 2);
    // Every point is drawn as its training error, with a hover tooltip.
    let svg = std::fs::read_to_string(out.join("fig14/fig14.svg")).unwrap();
    assert_eq!(svg.matches("<title>").count(), rows.len());
    for s in &snaps {
        let err = s.meta().metric("train_error").unwrap();
        assert!(
            svg.contains(&format!("\n{err:.1}\n</text>")),
            "label {err:.1} not drawn"
        );
        assert!(
            svg.contains(&format!("snapshot {}, train error {err:.2}%", s.id())),
            "tooltip of {} missing",
            s.id()
        );
    }

    // The summary's numbers are the store's.
    let summary = json(&out.join("summary.json"));
    let last = main[&6].meta().metric("train_error").unwrap();
    assert_eq!(summary["main_final"]["train_error"].as_f64().unwrap(), last);
    let v = &summary["variants"][0];
    let ids: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "no_local_minimum",
            "test_error",
            "later_branches_closer",
            "walls",
            "basins",
            "same_with_euclidean",
            "same_on_other_layers"
        ]
    );
    for f in v["findings"].as_array().unwrap() {
        assert!(
            ["holds", "does not hold", "reported", "undecided"]
                .contains(&f["verdict"].as_str().unwrap()),
            "{f}"
        );
    }
    assert_eq!(v["findings"][3]["threshold"]["wall"], 10.0);
    // Barriers between main's last model and each branch's: the endpoints
    // are their stored evaluations, and the midpoint (t = 0.5) is the
    // averaged model the experiment stored at that epoch.
    let pairs = v["pair_barriers"].as_array().unwrap();
    let branches = v["branches"].as_array().unwrap();
    assert_eq!(pairs.len(), branches.len());
    let m = |x: &serde_json::Value| {
        [
            x["train_loss"].as_f64().unwrap(),
            x["train_error"].as_f64().unwrap(),
            x["test_loss"].as_f64().unwrap(),
            x["test_error"].as_f64().unwrap(),
        ]
    };
    let stored = |s: &SnapshotInfo| {
        ["train_loss", "train_error", "test_loss", "test_error"]
            .map(|k| s.meta().metric(k).unwrap())
    };
    for (i, (p, b)) in pairs.iter().zip(branches).enumerate() {
        let from = b["from_epoch"].as_u64().unwrap() as u32;
        assert_eq!(p["a"].as_u64().unwrap(), main[&6].id().get());
        let branch = by_run(&RunId::Branch {
            variant: "fig14".into(),
            index: i + 1,
            from_epoch: from,
        });
        assert_eq!(p["b"].as_u64().unwrap(), branch[&6].id().get());
        let ts: Vec<f64> = p["ts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_f64().unwrap())
            .collect();
        let pts = p["points"].as_array().unwrap();
        assert_eq!(m(&pts[0]), stored(&main[&6]));
        assert_eq!(m(&pts[ts.len() - 1]), stored(&branch[&6]));
        let mid = ts
            .iter()
            .position(|&t| t == 0.5)
            .expect("t = 0.5 on the line");
        let avg = by_run(&RunId::Averaged {
            variant: "fig14".into(),
            index: i + 1,
            from_epoch: from,
        });
        let (here, there) = (m(&pts[mid]), stored(&avg[&6]));
        for c in 0..4 {
            assert!(
                (here[c] - there[c]).abs() <= 1e-9 * there[c].abs().max(1.0),
                "branch {}: midpoint {here:?} vs the stored averaged model {there:?}",
                i + 1
            );
        }
    }
    assert_eq!(
        csv_rows(&out.join("fig14").join("barriers.csv")).len(),
        pairs.len()
    );
    // Distances are 1 - cos of the layer, at the same horizon (2 epochs) after branching.
    assert_eq!(v["horizon"], 2);
    let b2 = &v["branches"][1];
    let bt = tensors(
        &store,
        &by_run(&RunId::Branch {
            variant: "fig14".into(),
            index: 2,
            from_epoch: 1,
        })[&3],
    );
    let mt = tensors(&store, &main[&3]);
    let cat = |t: &BTreeMap<String, Vec<f32>>| -> Vec<f32> {
        [t["layer2.weight"].clone(), t["layer2.bias"].clone()].concat()
    };
    let d = landscape_engine::analysis::cosine_distance(&cat(&bt), &cat(&mt));
    assert!((b2["distance_at_horizon"].as_f64().unwrap() - d).abs() < 1e-12);
    assert_eq!(run_json["status"], "complete");
    assert!(
        run_json["last_invocation"]["snapshots_written"]
            .as_u64()
            .unwrap()
            == snaps.len() as u64
    );

    // A changed config into the same --out is refused before any work, naming
    // the keys, and leaves the folder exactly as it was.
    let before = tree(&out);
    let changed = config(
        tmp.path(),
        "changed.toml",
        &[
            (
                "[scale.smoke]\nepochs = 6",
                "[scale.smoke]\nseed = 7\nepochs = 6",
            ),
            ("alpha = 0.25, layer = 2", "alpha = 0.5, layer = 2"),
        ],
    );
    let o = run(&out, &["--config", changed.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a changed config was resumed");
    assert!(err.contains("config.seed: stored 0, now 7"), "{err}");
    assert!(
        err.contains("config.variants[0].alpha: stored 0.25, now 0.5"),
        "{err}"
    );
    assert!(err.contains("--out") && err.contains("--fresh"), "{err}");
    assert!(tree(&out) == before, "the refused run changed the folder");

    // A changed threshold and layer (analysis only) re-run only the analysis.
    let analysis = config(
        tmp.path(),
        "analysis.toml",
        &[
            ("wall = 10.0", "wall = 20.0"),
            ("alpha = 0.25, layer = 2", "alpha = 0.25, layer = 3"),
        ],
    );
    run_ok(&out, &["--config", analysis.to_str().unwrap()]);
    let store = Store::open(out.join("store")).unwrap();
    assert_eq!(store.len(), snaps.len(), "no model was added");
    let run_json = json(&out.join("run.json"));
    assert_eq!(run_json["last_invocation"]["snapshots_written"], 0);
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["variants"][0]["layer"], 3);
    assert_eq!(
        summary["variants"][0]["findings"][3]["threshold"]["wall"],
        20.0
    );
    assert_mds_of_layer(&store, &csv_rows(&out.join("fig14/points.csv")), 3);

    // --fresh starts over with the new config.
    run_ok(&out, &["--config", changed.to_str().unwrap(), "--fresh"]);
    let run_json = json(&out.join("run.json"));
    assert_eq!(run_json["seed"], 7);
    assert_ne!(run_json["fingerprint"]["hash"].as_str().unwrap(), fp);
    let store = Store::open(out.join("store")).unwrap();
    assert_eq!(store.len(), snaps.len());
    assert!(store
        .snapshots()
        .iter()
        .all(|s| s.meta().extra()["fingerprint"]
            == run_json["fingerprint"]["hash"].as_str().unwrap()));
}

#[test]
fn interrupted_run_resumes_to_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    run_ok(&reference, &[]);

    let out = tmp.path().join("interrupted");
    let mut child = reproduce(&out, &[])
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
            if store
                .snapshots()
                .iter()
                .any(|s| s.meta().run().starts_with("fig14/branch2"))
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
    run_ok(&out, &[]);
    let a = std::fs::read_to_string(reference.join("fig14/points.csv")).unwrap();
    let b = std::fs::read_to_string(out.join("fig14/points.csv")).unwrap();
    assert_eq!(
        a, b,
        "the resumed run's CSV differs from the uninterrupted one"
    );
    assert_eq!(json(&out.join("run.json"))["resumed"], true);
    let sa = json(&reference.join("summary.json"));
    let sb = json(&out.join("summary.json"));
    assert_eq!(sa["variants"][0]["branches"], sb["variants"][0]["branches"]);
}

#[test]
fn bad_configs_fail_before_training_naming_the_key() {
    let cases: [(&str, (&str, &str), &str); 5] = [
        (
            "unknown key",
            (
                "[scale.smoke.eval]",
                "[scale.smoke.eval]\nlearning_rate = 0.1",
            ),
            "learning_rate",
        ),
        (
            "branch epoch beyond the last",
            (
                "branch_epochs = [0, 1, 2, 4]",
                "branch_epochs = [0, 1, 2, 9]",
            ),
            "smoke.branch_epochs[3]",
        ),
        (
            "layer 7",
            ("alpha = 0.25, layer = 2", "alpha = 0.25, layer = 7"),
            "smoke.variants[0].layer",
        ),
        (
            "negative alpha",
            ("alpha = 0.25, layer = 2", "alpha = -0.5, layer = 2"),
            "smoke.variants[0].alpha",
        ),
        (
            "nan threshold",
            ("zero_error = 1.0", "zero_error = nan"),
            "smoke.thresholds.zero_error",
        ),
    ];
    for (what, edit, key) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let path = config(tmp.path(), "bad.toml", &[edit]);
        let out = tmp.path().join("out");
        let o = run(&out, &["--config", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{what}: accepted");
        assert!(
            stderr.contains(key),
            "{what}: message does not name `{key}`:\n{stderr}"
        );
        assert!(!out.exists(), "{what}: the output folder was created");
    }
}
