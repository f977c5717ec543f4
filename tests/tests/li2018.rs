//! End-to-end tests of `landscape reproduce li2018` through the real binary,
//! on a synthetic CIFAR-10 folder, at the `smoke` scale: the two solutions
//! are stored with their configuration, the line's endpoints and each
//! plane's centre reproduce the stored metrics, the verdicts follow the
//! stored numbers, and a second run adds nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::BTreeMap;
use std::path::Path;

use landscape_engine::identity::{Origin, RunId, BN_EVAL_KEY, FINGERPRINT_KEY};
use landscape_surface::Barrier;
use landscape_tests::{csv_rows, json, smoke, smoke_ok, tensors, tree};
use landscape_trajectory::{SnapshotInfo, Store};

const BIN: &str = env!("CARGO_BIN_EXE_landscape-e2e");

fn by_run(store: &Store, name: &str) -> BTreeMap<u32, SnapshotInfo> {
    let want = RunId::Named { name: name.into() };
    store
        .snapshots()
        .iter()
        .filter(|s| RunId::from_meta(s.meta()).as_ref() == Some(&want))
        .map(|s| (s.meta().epoch().unwrap(), s.clone()))
        .collect()
}

const COLUMNS: [&str; 4] = ["train_loss", "train_error", "test_loss", "test_error"];

/// The grid row at `(x, y)` of a surface folder's `points.csv`, by column.
fn point(dir: &Path, x: f64, y: f64) -> BTreeMap<String, f64> {
    let rows = csv_rows(&dir.join("points.csv"));
    let row = rows
        .iter()
        .find(|r| r["x"].parse::<f64>().unwrap() == x && r["y"].parse::<f64>().unwrap() == y)
        .unwrap_or_else(|| panic!("no point ({x}, {y}) in {}", dir.display()));
    COLUMNS
        .iter()
        .map(|c| ((*c).to_owned(), row[*c].parse().unwrap()))
        .collect()
}

/// Evaluated values equal the snapshot's stored metrics (relative 1e-6).
fn assert_reproduces(evaluated: &BTreeMap<String, f64>, s: &SnapshotInfo, what: &str) {
    for c in COLUMNS {
        let stored = s.meta().metric(c).unwrap();
        let e = evaluated[c];
        let scale = stored.abs().max(e.abs()).max(1e-12);
        assert!(
            (e - stored).abs() <= 1e-6 * scale,
            "{what}: {c} evaluated {e}, stored {stored}"
        );
    }
}

#[test]
fn smoke_run_is_wired_through() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = smoke_ok(BIN, "li2018", &out, &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    for word in [
        "both_fit",
        "test_errors",
        "small_batch_generalises_better",
        "small_batch_wider",
        "wider_generalises_better",
        "weight_norms",
        "interpolation_width",
        "barrier",
    ] {
        assert!(stdout.contains(word), "{word} not printed:\n{stdout}");
    }
    for f in [
        "li2018/li2018.png",
        "li2018/li2018.svg",
        "li2018/contours.png",
        "li2018/contours.svg",
        "li2018/curves.csv",
        "li2018/interpolation/line.svg",
        "li2018/interpolation/summary.json",
        "li2018/interpolation/surface.json",
        "li2018/plane-small/plane.svg",
        "li2018/plane-small/grid.csv",
        "li2018/plane-large/plane.svg",
        "li2018/plane-large/summary.json",
        "run.json",
        "summary.json",
        "report.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }

    // The two solutions are stored, every epoch, with their configuration:
    // run.json holds it, each snapshot carries the run's fingerprint and BN
    // policy, and both runs start from the same initial weights.
    let run = json(&out.join("run.json"));
    let cfg = &run["config"];
    let epochs = cfg["epochs"].as_u64().unwrap() as u32;
    assert_eq!(cfg["small"]["batch_size"], 10);
    assert_eq!(cfg["large"]["batch_size"], 50);
    let fingerprint = run["fingerprint"]["hash"].as_str().unwrap();
    let store = Store::open(out.join("store")).unwrap();
    let small = by_run(&store, "small-batch");
    let large = by_run(&store, "large-batch");
    for r in [&small, &large] {
        assert_eq!(
            r.keys().copied().collect::<Vec<_>>(),
            (0..=epochs).collect::<Vec<_>>()
        );
        assert_eq!(
            Origin::from_meta(r[&0].meta()).unwrap(),
            Origin::Init {
                seed: cfg["seed"].as_u64().unwrap()
            }
        );
        for s in r.values() {
            assert_eq!(s.meta().extra()[FINGERPRINT_KEY], fingerprint);
            assert_eq!(s.meta().extra()[BN_EVAL_KEY], "reestimate");
        }
    }
    assert_eq!(store.len(), 2 * (epochs as usize + 1), "only the two runs");
    assert!(tensors(&store, &small[&0]) == tensors(&store, &large[&0]));
    assert!(tensors(&store, &small[&epochs]) != tensors(&store, &large[&epochs]));
    let (s_end, l_end) = (&small[&epochs], &large[&epochs]);
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["small"]["snapshot"], s_end.id().get());
    assert_eq!(summary["large"]["snapshot"], l_end.id().get());
    for (name, s) in [("small", s_end), ("large", l_end)] {
        for c in COLUMNS {
            assert_eq!(
                summary[name]["last"][c].as_f64().unwrap(),
                s.meta().metric(c).unwrap(),
                "{name} {c}"
            );
        }
    }

    // The line's endpoints reproduce the two solutions' stored metrics.
    let line = out.join("li2018/interpolation");
    assert_reproduces(&point(&line, 0.0, 0.0), s_end, "line t = 0");
    assert_reproduces(&point(&line, 1.0, 0.0), l_end, "line t = 1");
    let line_json = json(&line.join("surface.json"));
    assert_eq!(line_json["snapshots"][0]["id"], s_end.id().get());
    assert_eq!(line_json["snapshots"][1]["id"], l_end.id().get());
    // Each plane's centre reproduces its solution's stored metrics.
    for (plane, s) in [("plane-small", s_end), ("plane-large", l_end)] {
        let dir = out.join("li2018").join(plane);
        assert_reproduces(&point(&dir, 0.0, 0.0), s, plane);
        let meta = json(&dir.join("surface.json"));
        assert_eq!(meta["surface"], "plane-random");
        assert_eq!(meta["snapshots"][0]["id"], s.id().get());
        assert_eq!(meta["directions"]["normalisation"], "filter");
        assert_eq!(
            csv_rows(&dir.join("points.csv")).len(),
            25,
            "the smoke grid is 5 x 5"
        );
    }
    for s in summary["surfaces"].as_array().unwrap() {
        for (role, d) in s["stored_vs_evaluated"].as_object().unwrap() {
            assert!(d.as_f64().unwrap() <= 1e-6, "{role}: {d}");
        }
    }

    // The verdicts follow the stored numbers.
    let findings: BTreeMap<String, serde_json::Value> = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["id"].as_str().unwrap().to_owned(), f.clone()))
        .collect();
    let verdict = |ok: bool| if ok { "holds" } else { "does not hold" };
    let t = &cfg["thresholds"];
    let metric = |s: &SnapshotInfo, c: &str| s.meta().metric(c).unwrap();
    let fit = t["fit_train_error"].as_f64().unwrap();
    assert_eq!(
        findings["both_fit"]["verdict"],
        verdict(metric(s_end, "train_error") <= fit && metric(l_end, "train_error") <= fit)
    );
    let gap = metric(l_end, "test_error") - metric(s_end, "test_error");
    let f = &findings["small_batch_generalises_better"];
    assert_eq!(f["numbers"]["large_minus_small"].as_f64().unwrap(), gap);
    // Judged on the 95% interval of the per-image difference, which holds
    // the stored gap (recomputed from the stored models, image by image).
    let iv = [
        f["numbers"]["interval_95"][0].as_f64().unwrap(),
        f["numbers"]["interval_95"][1].as_f64().unwrap(),
    ];
    let margin = t["test_margin"].as_f64().unwrap();
    assert!((f["numbers"]["difference"].as_f64().unwrap() - gap).abs() < 1e-9);
    assert!(iv[0] <= gap && gap <= iv[1], "{iv:?} {gap}");
    assert_eq!(
        f["verdict"],
        if iv[0] >= margin {
            "holds"
        } else if iv[1] < margin {
            "does not hold"
        } else {
            "undecided"
        }
    );
    let f = &findings["small_batch_wider"];
    let (ws, wl) = (
        f["numbers"]["small"]["width"].as_f64().unwrap(),
        f["numbers"]["large"]["width"].as_f64().unwrap(),
    );
    assert_eq!(
        f["verdict"],
        verdict(ws / wl >= t["min_width_ratio"].as_f64().unwrap())
    );
    // Widths are measured from the plane's own centre value.
    assert_eq!(
        f["numbers"]["small"]["centre_loss"].as_f64().unwrap(),
        point(&out.join("li2018/plane-small"), 0.0, 0.0)["train_loss"]
    );
    let wider_is_small = ws > wl;
    let f = &findings["wider_generalises_better"];
    // The narrower's test error minus the wider's: its interval above 0 holds.
    let [lo, hi] = if wider_is_small { iv } else { [-iv[1], -iv[0]] };
    assert_eq!(
        f["verdict"],
        if ws == wl || hi <= 0.0 {
            "does not hold"
        } else if lo > 0.0 {
            "holds"
        } else {
            "undecided"
        }
    );
    let f = &findings["weight_norms"];
    let (ns, nl) = (
        f["numbers"]["small"].as_f64().unwrap(),
        f["numbers"]["large"].as_f64().unwrap(),
    );
    let norm = |s: &SnapshotInfo| {
        store
            .read_snapshot(s.id())
            .unwrap()
            .into_iter()
            .filter(|t| {
                !t.name.starts_with("optim.")
                    && !t.name.ends_with("running_mean")
                    && !t.name.ends_with("running_var")
                    && !t.name.ends_with("num_batches_tracked")
            })
            .flat_map(|t| t.data)
            .map(|v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt()
    };
    assert!((ns - norm(s_end)).abs() <= 1e-9 * ns);
    assert!((nl - norm(l_end)).abs() <= 1e-9 * nl);
    assert_eq!(f["verdict"], verdict(ns > nl), "weight decay is 0");
    // The barrier is the line's, recomputed from its points.
    let rows = csv_rows(&line.join("points.csv"));
    let ts: Vec<f64> = rows.iter().map(|r| r["x"].parse().unwrap()).collect();
    let loss: Vec<f64> = rows
        .iter()
        .map(|r| r["train_loss"].parse().unwrap())
        .collect();
    let b = Barrier::of(&ts, &loss).unwrap();
    let f = &findings["barrier"];
    assert_eq!(f["verdict"], "reported");
    assert_eq!(
        f["numbers"]["train_loss"]["height"].as_f64().unwrap(),
        b.height()
    );
    assert_eq!(
        f["numbers"]["train_loss"]["v0"].as_f64().unwrap(),
        metric(s_end, "train_loss")
    );

    // A second run adds no model and evaluates no point, and leaves the
    // stored surfaces as they were.
    let grids = |dir: &Path| -> Vec<(std::path::PathBuf, Vec<u8>)> {
        tree(dir)
            .into_iter()
            .filter(|(p, _)| p.file_name().is_some_and(|n| n == "points.csv"))
            .collect()
    };
    let before = grids(&out.join("li2018"));
    let o = smoke_ok(BIN, "li2018", &out, &[]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 evaluated now"));
    assert_eq!(
        json(&out.join("run.json"))["last_invocation"]["snapshots_written"],
        0
    );
    assert_eq!(Store::open(out.join("store")).unwrap().len(), store.len());
    let again = json(&out.join("summary.json"));
    for s in again["surfaces"].as_array().unwrap() {
        assert_eq!(s["evaluated_now"], 0, "{}", s["dir"]);
    }
    assert!(grids(&out.join("li2018")) == before);
    assert_eq!(again["findings"], summary["findings"]);
}

#[test]
fn a_plane_without_its_centre_on_the_grid_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = landscape_tests::edited_config(
        tmp.path(),
        "even.toml",
        include_str!("../../experiments/li2018.toml"),
        &[(
            "[scale.smoke.plane.x]\npoints = 5",
            "[scale.smoke.plane.x]\npoints = 4",
        )],
    );
    let out = tmp.path().join("out");
    let o = smoke(BIN, "li2018", &out, &["--config", cfg.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("smoke.plane.x"), "{err}");
    assert!(!out.join("store").exists(), "nothing was trained");
}
