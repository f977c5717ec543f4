//! End-to-end test of `landscape pca` through the real binary, on a fig14
//! smoke run over the synthetic CIFAR-10 fixture: the trajectory's PCA is
//! the one `landscape_surface::PcaParams::fit` computes on the stored
//! weights, trajectory.csv pairs each snapshot's stored train loss with the
//! contour's value at its projection, a second run resumes without
//! evaluating anything, two shards merge to the same files, and another
//! centre in the same folder is refused unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::Path;
use std::process::{Command, Output};

use landscape_surface::{Centre, PcaParams, Weights};
use landscape_tests::{cifar_fixture, csv_rows, json, smoke_ok};
use landscape_trajectory::{Filter, Store};

const BIN: &str = env!("CARGO_BIN_EXE_landscape-e2e");

fn pca(store: &Path, out: &Path, extra: &[&str]) -> Output {
    let o = Command::new(BIN)
        .arg("pca")
        .arg("--store")
        .arg(store)
        .arg("--out")
        .arg(out)
        .args(["--device", "cpu", "--threads", "1", "--data"])
        .arg(cifar_fixture())
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "pca {extra:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn f(row: &std::collections::BTreeMap<String, String>, k: &str) -> f64 {
    row[k]
        .parse()
        .unwrap_or_else(|_| panic!("{k} = `{}`", row[k]))
}

/// The model tensors of a stored snapshot (optimiser state left out), in
/// stored order.
fn weights(store: &Store, id: landscape_trajectory::SnapshotId) -> Weights {
    let ts = store
        .read_snapshot(id)
        .unwrap()
        .into_iter()
        .filter(|t| !t.name.starts_with("optim."))
        .collect();
    Weights::new(ts).unwrap()
}

#[test]
fn pca_view_of_the_main_trajectory() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    smoke_ok(BIN, "fig14", &run, &[]);
    let store_dir = run.join("store");
    let out = dir.path().join("pca");
    let args = ["--filter", "run=main", "--points", "5", "--centre", "final"];
    let o = pca(&store_dir, &out, &args);
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(stdout.contains("projection error"), "{stdout}");
    assert!(stdout.contains("explained variance"), "{stdout}");
    for file in [
        "grid.json",
        "points.csv",
        "surface.json",
        "pca.json",
        "trajectory.csv",
        "grid.csv",
        "summary.json",
        "plane.png",
        "plane.svg",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }

    // The selected trajectory, in store order.
    let store = Store::open(&store_dir).unwrap();
    let selected: Vec<_> = store.find(&"run=main".parse::<Filter>().unwrap());
    assert!(selected.len() >= 3, "{} snapshots", selected.len());
    let rows = csv_rows(&out.join("trajectory.csv"));
    assert_eq!(rows.len(), selected.len());
    let points = csv_rows(&out.join("points.csv"));
    assert_eq!(points.len(), 25, "a 5 x 5 grid");
    for (i, (row, s)) in rows.iter().zip(&selected).enumerate() {
        assert_eq!(row["index"], i.to_string());
        assert_eq!(row["id"], s.id().get().to_string());
        // The true loss is the stored one, exactly.
        assert_eq!(
            f(row, "true_train_loss"),
            s.meta().metrics()["train_loss"],
            "snapshot {}",
            s.id()
        );
        let (t, c) = (f(row, "true_train_loss"), f(row, "contour_train_loss"));
        assert!(c.is_finite());
        assert!((f(row, "abs_difference") - (c - t).abs()).abs() <= 1e-12 * (1.0 + t.abs()));
    }

    // pca.json: shares in (0, 1], descending; the centre recorded.
    let p = json(&out.join("pca.json"));
    assert_eq!(p["centre"], "final");
    let share: Vec<f64> = p["explained_share"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(share.len(), 2);
    assert!(share.iter().all(|&s| s > 0.0 && s <= 1.0), "{share:?}");
    assert!(share[0] >= share[1], "{share:?}");
    assert!(share.iter().sum::<f64>() <= 1.0 + 1e-12);

    // The coordinates are the PCA of the stored weights, recomputed here.
    let ws: Vec<Weights> = selected.iter().map(|s| weights(&store, s.id())).collect();
    let fit = PcaParams::new(2).centre(Centre::Final).fit(&ws).unwrap();
    let scale = fit
        .coordinates()
        .iter()
        .flatten()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.0);
    for (i, (row, w)) in rows.iter().zip(&ws).enumerate() {
        let pr = fit.project(w).unwrap();
        for (k, col) in ["x", "y"].iter().enumerate() {
            let got = f(row, col);
            assert!(
                (got - pr.coordinates[k]).abs() <= 1e-4 * scale,
                "point {i} {col}: {got} vs {}",
                pr.coordinates[k]
            );
        }
        assert!((f(row, "residual") - pr.residual).abs() <= 1e-4 * (1.0 + pr.residual));
    }
    for (a, b) in share.iter().zip(fit.explained_share()) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    // With --centre final the last point is the origin.
    let last = rows.last().unwrap();
    assert_eq!((f(last, "x"), f(last, "y")), (0.0, 0.0));

    // summary.json: the projection error's summary numbers.
    let summary = json(&out.join("summary.json"));
    let e = &summary["projection_error"];
    assert_eq!(e["compared"].as_u64().unwrap() as usize, rows.len());
    let abs: Vec<f64> = rows.iter().map(|r| f(r, "abs_difference")).collect();
    let max_abs = abs.iter().copied().fold(0.0f64, f64::max);
    assert_eq!(e["max_abs"].as_f64().unwrap(), max_abs);
    for k in ["median_abs", "max_rel", "median_rel"] {
        let v = e[k].as_f64().unwrap();
        assert!(v.is_finite() && v >= 0.0, "{k} = {v}");
    }
    assert!(e["median_abs"].as_f64().unwrap() <= max_abs);
    let svg = std::fs::read_to_string(out.join("plane.svg")).unwrap();
    assert!(svg.contains("principal component 1"), "axis labels");

    // A second run resumes: nothing evaluated, the same points.
    let before = std::fs::read(out.join("points.csv")).unwrap();
    let o = pca(&store_dir, &out, &args);
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(stdout.contains("(0 evaluated now)"), "{stdout}");
    assert_eq!(std::fs::read(out.join("points.csv")).unwrap(), before);

    // Two shards merged by `surface merge` give the same grid and trajectory.
    let sharded = dir.path().join("sharded");
    for k in ["1/2", "2/2"] {
        let o = pca(
            &store_dir,
            &sharded.join(&k[..1]),
            &[&args[..], &["--shard", k]].concat(),
        );
        assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("shard {k}")));
    }
    let merged = sharded.join("all");
    let o = Command::new(BIN)
        .args(["surface", "merge", "--out"])
        .arg(&merged)
        .arg(sharded.join("1"))
        .arg(sharded.join("2"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for file in ["points.csv", "trajectory.csv", "pca.json", "grid.csv"] {
        assert_eq!(
            std::fs::read(merged.join(file)).unwrap(),
            std::fs::read(out.join(file)).unwrap(),
            "{file}"
        );
    }
    assert_eq!(
        json(&merged.join("summary.json"))["projection_error"],
        summary["projection_error"]
    );

    // Another centre is another surface: refused unchanged.
    let o = Command::new(BIN)
        .arg("pca")
        .arg("--store")
        .arg(&store_dir)
        .arg("--out")
        .arg(&out)
        .args(["--device", "cpu", "--threads", "1", "--data"])
        .arg(cifar_fixture())
        .args(["--filter", "run=main", "--points", "5", "--centre", "mean"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(std::fs::read(out.join("points.csv")).unwrap(), before);
}
