//! End-to-end tests of `landscape reproduce fig5` and `fig41` through the
//! real binary, on a synthetic CIFAR-10 folder, at the `smoke` scale: the
//! retrained runs start from the chosen model plus noise of the stated std,
//! the agreement matrices are conditional probabilities with a diagonal of 1,
//! the interpolation's endpoints reproduce the stored evaluations of the
//! models they interpolate, and a second run adds nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::BTreeMap;

use landscape_engine::identity::{Origin, RunId};
use landscape_tests::{assert_mds_of_layer, csv_rows, json, smoke_ok, std_dev, tensors};
use landscape_trajectory::{SnapshotId, SnapshotInfo, Store};

const BIN: &str = env!("CARGO_BIN_EXE_landscape-e2e");

fn by_run(store: &Store, want: &RunId) -> BTreeMap<u32, SnapshotInfo> {
    store
        .snapshots()
        .iter()
        .filter(|s| RunId::from_meta(s.meta()).as_ref() == Some(want))
        .map(|s| (s.meta().epoch().unwrap(), s.clone()))
        .collect()
}

fn retrained(model: &str, k: usize) -> RunId {
    RunId::Retrained {
        variant: model.into(),
        index: k,
    }
}

/// The noise between `parent` and `child`, per weight tensor, relative to
/// `scale(W)` of the parent's tensor, checked to be `alpha` (within the
/// sampling error of its std); biases and BN buffers untouched (BN buffers
/// are re-estimated, so skipped). Returns the noise vectors.
fn check_noise(
    store: &Store,
    parent: &SnapshotInfo,
    child: &SnapshotInfo,
    alpha: f64,
    scale: fn(&[f64]) -> f64,
) -> Vec<Vec<f64>> {
    let m = tensors(store, parent);
    let c = tensors(store, child);
    let mut out = Vec::new();
    for (name, w) in &m {
        if name.contains(".bn.") {
            continue;
        }
        let noise: Vec<f64> = w
            .iter()
            .zip(&c[name])
            .map(|(x, y)| f64::from(*y) - f64::from(*x))
            .collect();
        if name.ends_with(".bias") {
            assert!(noise.iter().all(|v| *v == 0.0), "{name} was perturbed");
            continue;
        }
        let wd: Vec<f64> = w.iter().map(|v| f64::from(*v)).collect();
        let ratio = std_dev(&noise) / (alpha * scale(&wd));
        let tol = 5.0 / (2.0 * noise.len() as f64).sqrt();
        assert!(
            (ratio - 1.0).abs() < tol,
            "{name}: noise std / (alpha scale W) = {ratio} (tolerance {tol})"
        );
        out.push(noise);
    }
    assert_eq!(out.len(), 5, "every layer's weight tensor is perturbed");
    out
}

fn mean_abs(x: &[f64]) -> f64 {
    x.iter().map(|v| v.abs()).sum::<f64>() / x.len() as f64
}

fn metrics_of(s: &SnapshotInfo) -> [f64; 4] {
    let m = s.meta();
    ["train_loss", "train_error", "test_loss", "test_error"].map(|k| m.metric(k).unwrap())
}

#[test]
fn fig5_smoke_run_is_wired_through() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = smoke_ok(BIN, "fig5", &out, &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("barriers along the straight line, between the retrained runs of final"),
        "pair barriers not printed:\n{stdout}"
    );
    for word in [
        "zero_error_survives",
        "different_models",
        "agree_on_test",
        "no_barrier",
        "training_error",
        "earlier_more_different",
    ] {
        assert!(stdout.contains(word), "{word} not printed:\n{stdout}");
    }
    let cfg = json(&out.join("run.json"))["config"].clone();
    let summary = json(&out.join("summary.json"));
    let store = Store::open(out.join("store")).unwrap();
    let main = by_run(&store, &RunId::Main);
    let reference = by_run(
        &store,
        &RunId::Named {
            name: "reference".into(),
        },
    );
    let sgd = cfg["sgd_epochs"].as_u64().unwrap() as u32;
    let last = sgd + cfg["bgd_epochs"].as_u64().unwrap() as u32;
    assert_eq!(
        main.keys().copied().collect::<Vec<_>>(),
        (0..=last).collect::<Vec<_>>()
    );
    assert_eq!(reference.len(), main.len());
    assert_ne!(
        tensors(&store, &main[&0]),
        tensors(&store, &reference[&0]),
        "the reference model starts from another initialisation"
    );
    let alpha = cfg["perturb"]["alpha"].as_f64().unwrap();
    let runs = cfg["retrain_runs"].as_u64().unwrap() as usize;
    let epochs = cfg["retrain_epochs"].as_u64().unwrap() as u32;
    let models = summary["models"].as_array().unwrap();
    assert_eq!(models.len(), 2, "sgd_models = [1] and the final model");
    for (mi, ms) in models.iter().enumerate() {
        let name = ms["model"]["name"].as_str().unwrap();
        let epoch = ms["model"]["epoch"].as_u64().unwrap() as u32;
        assert_eq!(name, if mi == 0 { "sgd1" } else { "final" });
        assert_eq!(epoch, if mi == 0 { 1 } else { last });
        let parent = &main[&epoch];
        // Each retrained run starts at the chosen model plus its own noise of
        // std alpha * std(W), then trains `retrain_epochs` BGD epochs.
        let mut noises = Vec::new();
        let mut starts = Vec::new();
        for k in 1..=runs {
            let r = by_run(&store, &retrained(name, k));
            assert_eq!(
                r.keys().copied().collect::<Vec<_>>(),
                (0..=epochs).collect::<Vec<_>>()
            );
            match Origin::from_meta(r[&0].meta()).unwrap() {
                Origin::Perturbed {
                    parent: p,
                    alpha: a,
                    ..
                } => {
                    assert_eq!((p, a), (parent.id(), alpha));
                }
                o => panic!("retrained start origin {o:?}"),
            }
            noises.push(check_noise(&store, parent, &r[&0], alpha, std_dev));
            starts.push(r);
        }
        assert_ne!(noises[0], noises[1], "runs 1 and 2 got the same noise");
        // The stored numbers are the summary's.
        for (k, r) in starts.iter().enumerate() {
            let after = &ms["retrained"][k];
            assert_eq!(
                after["train_error"].as_f64().unwrap(),
                metrics_of(&r[&epochs])[1]
            );
            let before = &ms["perturbed"][k];
            assert_eq!(
                before["test_error"].as_f64().unwrap(),
                metrics_of(&r[&0])[3]
            );
        }
        // Agreement matrices: 5 x 5 (4 runs and the reference), diagonal 1
        // wherever a model is right (wrong) on some image, entries in [0, 1].
        for key in ["right", "wrong"] {
            let m = ms["agreement"][key].as_array().unwrap();
            assert_eq!(m.len(), runs + 1);
            for (r, row) in m.iter().enumerate() {
                let row = row.as_array().unwrap();
                assert_eq!(row.len(), runs + 1);
                for (c, v) in row.iter().enumerate() {
                    if let Some(v) = v.as_f64() {
                        assert!((0.0..=1.0).contains(&v), "{key}[{r}][{c}] = {v}");
                        if r == c {
                            assert_eq!(v, 1.0, "{key} diagonal");
                        }
                    }
                }
            }
        }
        let agree = csv_rows(&out.join(name).join("agreement.csv"));
        assert_eq!(agree.len(), 2 * (runs + 1) * (runs + 1));
        // The lines: t = 0..1, endpoint t = 0 (1) is run 1's (2's) model at
        // epoch 0 before and at the last epoch after retraining: the same
        // weights and, with BN re-estimated, the same evaluation.
        let n_pts = cfg["interpolation_points"].as_u64().unwrap() as usize;
        for (after, e) in [(false, 0u32), (true, epochs)] {
            let line = by_run(
                &store,
                &RunId::Named {
                    name: format!("{name}/line-{}", if after { "after" } else { "before" }),
                },
            );
            assert_eq!(line.len(), n_pts);
            let (a, b) = (&starts[0][&e], &starts[1][&e]);
            for (i, p) in &line {
                match Origin::from_meta(p.meta()).unwrap() {
                    Origin::Interpolated { a: pa, b: pb, t } => {
                        assert_eq!((pa, pb), (a.id(), b.id()));
                        assert!((t - f64::from(*i) / (n_pts - 1) as f64).abs() < 1e-15);
                    }
                    o => panic!("line origin {o:?}"),
                }
            }
            for (end, model) in [(0u32, a), ((n_pts - 1) as u32, b)] {
                let p = &line[&end];
                let (pm, mm) = (metrics_of(p), metrics_of(model));
                for j in 0..4 {
                    assert!(
                        (pm[j] - mm[j]).abs() <= 1e-9 * mm[j].abs().max(1.0),
                        "{name} line {after} point {end}: {pm:?} vs the endpoint's stored {mm:?}"
                    );
                }
                let (pt, mt) = (tensors(&store, p), tensors(&store, model));
                for (tn, v) in &mt {
                    if !tn.contains(".bn.") {
                        assert_eq!(&pt[tn], v, "{tn} of the line's endpoint");
                    }
                }
            }
        }
        let lines = csv_rows(&out.join(name).join("lines.csv"));
        assert_eq!(lines.len(), 2 * n_pts);
        // Barriers between every pair of retrained runs (last epoch): the
        // endpoints are the runs' stored evaluations, the pair (1, 2) sees
        // the same points as the stored line after retraining (same t, same
        // interpolation, same evaluator), and each barrier is the largest
        // excess over the chord of those points.
        let bp = cfg["barrier_points"].as_u64().unwrap() as usize;
        assert_eq!(bp, n_pts, "the smoke config lines the two up");
        let pairs = ms["pair_barriers"].as_array().unwrap();
        assert_eq!(pairs.len(), runs * (runs - 1) / 2);
        let csv = csv_rows(&out.join(name).join("barriers.csv"));
        assert_eq!(csv.len(), pairs.len());
        let line_after = by_run(
            &store,
            &RunId::Named {
                name: format!("{name}/line-after"),
            },
        );
        let mut k = 0;
        for i in 0..runs {
            for j in i + 1..runs {
                let p = &pairs[k];
                k += 1;
                assert_eq!(p["a"].as_u64().unwrap(), starts[i][&epochs].id().get());
                assert_eq!(p["b"].as_u64().unwrap(), starts[j][&epochs].id().get());
                let pts = p["points"].as_array().unwrap();
                assert_eq!(pts.len(), bp);
                let get = |m: &serde_json::Value| {
                    [
                        m["train_loss"].as_f64().unwrap(),
                        m["train_error"].as_f64().unwrap(),
                        m["test_loss"].as_f64().unwrap(),
                        m["test_error"].as_f64().unwrap(),
                    ]
                };
                assert_eq!(get(&pts[0]), metrics_of(&starts[i][&epochs]));
                assert_eq!(get(&pts[bp - 1]), metrics_of(&starts[j][&epochs]));
                if (i, j) == (0, 1) {
                    for (q, pt) in pts.iter().enumerate() {
                        let stored = metrics_of(&line_after[&(q as u32)]);
                        let here = get(pt);
                        for c in 0..4 {
                            assert!(
                                (here[c] - stored[c]).abs() <= 1e-9 * stored[c].abs().max(1.0),
                                "{name} pair (1, 2) point {q}: {here:?} vs the stored line's {stored:?}"
                            );
                        }
                    }
                }
                let ts: Vec<f64> = p["ts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_f64().unwrap())
                    .collect();
                let loss: Vec<f64> = pts.iter().map(|m| get(m)[0]).collect();
                let excess = ts
                    .iter()
                    .zip(&loss)
                    .map(|(t, v)| v - ((1.0 - t) * loss[0] + t * loss[bp - 1]))
                    .fold(0.0f64, f64::max);
                assert!((p["train_loss"]["height"].as_f64().unwrap() - excess).abs() < 1e-12);
                assert_eq!(
                    csv[k - 1]["train_loss_barrier"].parse::<f64>().unwrap(),
                    p["train_loss"]["height"].as_f64().unwrap()
                );
            }
        }
        // The MDS picture of layer 2 is MDS of layer 2 of the retrained runs.
        let rows = csv_rows(&out.join(name).join("mds-layer2.csv"));
        assert_eq!(rows.len(), runs * (epochs as usize + 1));
        assert_mds_of_layer(&store, &rows, 2);
        for f in [
            "mds.png",
            "mds.svg",
            "curves.png",
            "agreement.png",
            "interpolation.png",
            "interpolation.svg",
        ] {
            assert!(out.join(name).join(f).is_file(), "{name}/{f} missing");
        }
    }
    // Running again resumes everything: no model is added.
    let n = store.len();
    smoke_ok(BIN, "fig5", &out, &[]);
    assert_eq!(Store::open(out.join("store")).unwrap().len(), n);
    assert_eq!(
        json(&out.join("run.json"))["last_invocation"]["snapshots_written"],
        0
    );
    let _ = SnapshotId(0);
}

#[test]
fn fig41_smoke_run_is_wired_through() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = smoke_ok(BIN, "fig41", &out, &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    for word in ["zero_error_model", "stays_zero", "drift_apart"] {
        assert!(stdout.contains(word), "{word} not printed:\n{stdout}");
    }
    let cfg = json(&out.join("run.json"))["config"].clone();
    let summary = json(&out.join("summary.json"));
    let store = Store::open(out.join("store")).unwrap();
    let main = by_run(&store, &RunId::Main);
    let model_epoch = summary["model_epoch"].as_u64().unwrap() as u32;
    assert_eq!(
        *main.keys().next_back().unwrap(),
        model_epoch,
        "the last main model is perturbed"
    );
    let parent = &main[&model_epoch];
    let alpha = cfg["perturb"]["alpha"].as_f64().unwrap();
    assert_eq!(cfg["perturb"]["scale"], "mean_abs");
    let runs = cfg["retrain_runs"].as_u64().unwrap() as usize;
    let mut largest = Vec::new();
    for k in 1..=runs {
        let r = by_run(&store, &retrained("zero", k));
        assert_eq!(r.len() as u64, cfg["retrain_epochs"].as_u64().unwrap() + 1);
        // Noise of std alpha * mean |W| per weight tensor.
        check_noise(&store, parent, &r[&0], alpha, mean_abs);
        largest.push(
            r.values()
                .map(|s| metrics_of(s)[1])
                .fold(f64::NEG_INFINITY, f64::max),
        );
    }
    let reported: Vec<f64> = summary["largest_train_error"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(
        reported, largest,
        "the verdict's numbers are the stored evaluations"
    );
    let stays = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "stays_zero")
        .unwrap();
    let zero = cfg["thresholds"]["zero_error"].as_f64().unwrap();
    let holds = largest.iter().all(|&v| v <= zero) && metrics_of(parent)[1] <= zero;
    assert_eq!(
        stays["verdict"],
        if holds { "holds" } else { "does not hold" }
    );
    let rows = csv_rows(&out.join("fig41").join("mds-layer4.csv"));
    assert_mds_of_layer(&store, &rows, 4);
    assert!(out.join("fig41").join("mds.svg").is_file());
}
