//! End-to-end tests of `landscape mds` through the real binary, on a
//! trajectory store written by the test: the CSV holds every selected
//! snapshot's metadata and the same coordinates that `landscape-mds` gives
//! for the same weights, and bad input gets an error that names it.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::Path;
use std::process::{Command, Output};

use landscape_mds::{dissimilarity_matrix, ClassicalMds, Dissimilarity};
use landscape_trajectory::{SnapshotKind, SnapshotMeta, Store, TensorRef};
use ndarray::Array2;

const BIN: &str = env!("CARGO_BIN_EXE_landscape");

/// Layer-2 and layer-3 weights of snapshot `i` of run `run`: a shared
/// direction plus a drift that grows with `i`, so that the picture is a curve.
fn weights(run: usize, i: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let w2: Vec<f32> = (0..3 * 3 * 3 * 4)
        .map(|j| {
            let base = ((j * 7 % 11) as f32 - 5.0) / 5.0;
            let drift = ((j + run * 5) as f32 * 0.37).sin() * (i as f32) * 0.05;
            base + drift + (run as f32) * 0.1 * ((j % 3) as f32)
        })
        .collect();
    let b2: Vec<f32> = (0..4).map(|j| 0.01 * (j + i) as f32).collect();
    let w3: Vec<f32> = (0..4 * 4 * 9).map(|j| ((j + i) % 5) as f32 + 1.0).collect();
    (w2, b2, w3)
}

/// A store with two runs ("main", 8 snapshots with epochs and metrics, and
/// "branch", 4 perturbed snapshots without them).
fn write_store(dir: &Path) -> Store {
    let mut store = Store::create(dir).unwrap();
    for (run, name, count) in [(0, "main", 8), (1, "branch", 4)] {
        for i in 0..count {
            let (w2, b2, w3) = weights(run, i);
            let meta = if run == 0 {
                SnapshotMeta::new(name, SnapshotKind::Trained)
                    .with_epoch(i as u32)
                    .with_metric("train_error", 1.0 / (1.0 + i as f64))
            } else {
                SnapshotMeta::new(name, SnapshotKind::Perturbed).with_stage(i as u32)
            };
            let tensors = [
                TensorRef {
                    name: "layer2.weight",
                    shape: &[4, 3, 3, 3],
                    data: &w2,
                },
                TensorRef {
                    name: "layer2.bias",
                    shape: &[4],
                    data: &b2,
                },
                TensorRef {
                    name: "layer3.weight",
                    shape: &[4, 4, 3, 3],
                    data: &w3,
                },
            ];
            store.append(meta, &tensors).unwrap();
        }
    }
    store
}

fn landscape(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// Runs `landscape` expecting success; returns its standard output.
fn landscape_ok(args: &[&str]) -> String {
    let run = landscape(args);
    assert!(
        run.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8_lossy(&run.stdout).into_owned()
}

#[test]
fn mds_writes_every_snapshot_with_its_metadata_and_the_library_coordinates() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let store = write_store(&store_dir);
    let out = tmp.path().join("points.csv");
    let stdout = landscape_ok(&[
        "mds",
        "--store",
        store_dir.to_str().unwrap(),
        "--layer",
        "2",
        "--filter",
        "run=main",
        "--metric",
        "cosine",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        stdout.contains("8"),
        "summary names the point count: {stdout}"
    );

    let mut reader = csv::Reader::from_path(&out).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "id",
            "run",
            "kind",
            "stage",
            "epoch",
            "step",
            "x",
            "y",
            "train_error"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 8, "only run=main is selected");

    // The same weights through the library: layer 2 = weight then bias.
    let main: Vec<_> = store
        .snapshots()
        .iter()
        .filter(|s| s.meta().run() == "main")
        .collect();
    let mut x = Array2::<f32>::zeros((8, 3 * 3 * 3 * 4 + 4));
    for (i, mut row) in x.rows_mut().into_iter().enumerate() {
        let (w2, b2, _) = weights(0, i);
        let all: Vec<f32> = w2.into_iter().chain(b2).collect();
        row.assign(&ndarray::ArrayView1::from(&all));
    }
    let d = dissimilarity_matrix(&x, Dissimilarity::Cosine).unwrap();
    let expected = ClassicalMds::params(2).fit(&d).unwrap();

    for (i, row) in rows.iter().enumerate() {
        assert_eq!(&row[0], main[i].id().to_string());
        assert_eq!(&row[1], "main");
        assert_eq!(&row[2], "trained");
        assert_eq!(&row[3], "", "no stage recorded");
        assert_eq!(row[4].parse::<u32>().unwrap(), i as u32);
        assert_eq!(&row[5], "", "no step recorded");
        for c in 0..2 {
            let got: f64 = row[6 + c].parse().unwrap();
            let want = expected.coordinates()[[i, c]];
            assert!(
                (got - want).abs() <= 1e-12 * (1.0 + want.abs()),
                "point {i} axis {c}: {got} vs {want}"
            );
        }
        let err: f64 = row[8].parse().unwrap();
        assert!((err - 1.0 / (1.0 + i as f64)).abs() < 1e-15);
    }
    // The picture is not degenerate: both axes spread.
    for c in 0..2 {
        let col = expected.coordinates().column(c);
        assert!(col.iter().fold(0.0_f64, |m, v| m.max(v.abs())) > 1e-6);
    }
}

#[test]
fn mds_over_all_runs_leaves_missing_fields_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    write_store(&store_dir);
    let out = tmp.path().join("all.csv");
    let stdout = landscape_ok(&[
        "mds",
        "--store",
        store_dir.to_str().unwrap(),
        "--layer",
        "3",
        "--dims",
        "3",
        "--solver",
        "partial",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        stdout.contains("not computed by the partial solver"),
        "{stdout}"
    );
    let mut reader = csv::Reader::from_path(&out).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(&header[6..9], ["x", "y", "z"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 12);
    let branch: Vec<_> = rows.iter().filter(|r| &r[1] == "branch").collect();
    assert_eq!(branch.len(), 4);
    for (i, r) in branch.iter().enumerate() {
        assert_eq!(&r[2], "perturbed");
        assert_eq!(r[3].parse::<u32>().unwrap(), i as u32);
        assert_eq!(&r[4], "", "no epoch recorded");
        assert_eq!(&r[9], "", "no train_error recorded");
    }
    // Coordinates are centred (classical MDS).
    for c in 6..9 {
        let mean: f64 = rows
            .iter()
            .map(|r| r[c].parse::<f64>().unwrap())
            .sum::<f64>()
            / 12.0;
        assert!(mean.abs() < 1e-9, "column {c} mean {mean}");
    }
}

#[test]
fn mds_spectrum_reports_the_explained_share_with_the_partial_solver() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    write_store(&store_dir);
    let summary = |solver: &str, spectrum: bool| {
        let out = tmp.path().join(format!("{solver}-{spectrum}.csv"));
        let mut args = vec![
            "mds",
            "--store",
            store_dir.to_str().unwrap(),
            "--solver",
            solver,
            "--out",
            out.to_str().unwrap(),
        ];
        if spectrum {
            args.push("--spectrum");
        }
        let text = landscape_ok(&args);
        let share = text
            .lines()
            .find(|l| l.contains("explained share of the positive spectrum"))
            .unwrap_or_else(|| panic!("no explained share in: {text}"))
            .to_owned();
        let mass = text
            .lines()
            .find(|l| l.contains("negative eigenvalue mass"))
            .unwrap_or_else(|| panic!("no negative mass in: {text}"))
            .to_owned();
        (share, mass)
    };
    // The same percentages as the full solver (printed to 2 decimals).
    assert_eq!(summary("partial", true), summary("full", false));
}

#[test]
fn mds_errors_name_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    write_store(&store_dir);
    let store_arg = store_dir.to_str().unwrap();
    let out = tmp.path().join("p.csv");
    let out_arg = out.to_str().unwrap();

    let missing = tmp.path().join("no-such-store");
    let missing_arg = missing.to_str().unwrap();
    // (extra arguments, a text the error must contain)
    let cases: [(&[&str], &[&str]); 5] = [
        (&["--store", missing_arg], &["no-such-store"]),
        (
            &["--store", store_arg, "--filter", "epoch=banana"],
            &["epoch=banana"],
        ),
        (&["--store", store_arg, "--layer", "6"], &["layer 6"]),
        (
            &["--store", store_arg, "--filter", "run=nobody"],
            &["0 snapshots", "no snapshot"],
        ),
        (
            &["--store", store_arg, "--metric", "manhattan"],
            &["manhattan"],
        ),
    ];
    for (extra, needles) in cases {
        let mut args = vec!["mds"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", out_arg]);
        let run = landscape(&args);
        assert!(!run.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(
            needles.iter().any(|n| err.contains(n)),
            "{args:?}: the error should name {needles:?}: {err}"
        );
    }
    assert!(!out.exists(), "no CSV is written when the command fails");
}
