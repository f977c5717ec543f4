//! End-to-end tests of `landscape surface line|plane|merge` through the real
//! binary, on a fig14 smoke run over the synthetic CIFAR-10 fixture: the
//! points at the snapshots reproduce their stored metrics, shards merge to
//! the unsharded grid byte for byte, an interrupted grid resumes to the same
//! bytes, and a folder made with other inputs is refused unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use landscape_tests::{cifar_fixture, csv_rows, json, smoke_ok, tree};
use landscape_trajectory::{SnapshotId, Store};

const BIN: &str = env!("CARGO_BIN_EXE_landscape-e2e");

/// One fig14 smoke run shared by every test of this file: its folder.
fn run_dir() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        smoke_ok(BIN, "fig14", &dir.path().join("run"), &[]);
        dir
    })
    .path()
    .join("run")
}

fn store_dir() -> PathBuf {
    run_dir().join("store")
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|x| (*x).to_owned()).collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `landscape surface <args> --device cpu --threads 1 --data <fixture>`
/// (`merge` takes none of those).
fn surface_command(args: &[String]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("surface").args(args).env("RUST_LOG", "warn");
    if args.first().map(String::as_str) != Some("merge") {
        cmd.args(["--device", "cpu", "--threads", "1", "--data"])
            .arg(cifar_fixture());
    }
    cmd
}

fn surface(args: &[String]) -> Output {
    surface_command(args).output().unwrap()
}

fn surface_ok(args: &[String]) -> Output {
    let o = surface(args);
    assert!(
        o.status.success(),
        "surface {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// `args` on the shared store.
fn on_store(args: &[&str]) -> Vec<String> {
    let mut v = strings(args);
    v.extend(["--store".to_owned(), s(&store_dir()).to_owned()]);
    v
}

/// The line from snapshot 0 (initial) to 6 (main, last epoch), 9 points in
/// [-0.5, 1.5], into `out`, with `extra` arguments.
fn line_args(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = on_store(&[
        "line",
        "--from",
        "0",
        "--to",
        "6",
        "--points",
        "9",
        "--out",
        s(out),
    ]);
    v.extend(strings(extra));
    v
}

/// [`line_args`] computed once, unsharded: its folder.
fn whole_line() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        surface_ok(&line_args(&dir.path().join("line"), &[]));
        dir
    })
    .path()
    .join("line")
}

fn stored_metrics(id: u64) -> BTreeMap<String, f64> {
    let store = Store::open(store_dir()).unwrap();
    store.get(SnapshotId(id)).unwrap().meta().metrics().clone()
}

const COLUMNS: [&str; 4] = ["train_loss", "train_error", "test_loss", "test_error"];

/// The values of a points.csv / grid.csv row reproduce stored metrics
/// (relative 1e-9).
fn assert_reproduces(row: &BTreeMap<String, String>, stored: &BTreeMap<String, f64>, what: &str) {
    for c in COLUMNS {
        let v: f64 = row[c].parse().unwrap();
        let want = stored[c];
        assert!(
            (v - want).abs() <= 1e-9 * want.abs().max(1e-300),
            "{what}: {c} = {v}, stored {want}"
        );
    }
}

fn row_at(rows: &[BTreeMap<String, String>], x: f64, y: f64) -> &BTreeMap<String, String> {
    rows.iter()
        .find(|r| r["x"].parse::<f64>().unwrap() == x && r["y"].parse::<f64>().unwrap() == y)
        .unwrap_or_else(|| panic!("no row at ({x}, {y})"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn line_between_snapshots_reproduces_the_endpoints() {
    let out = whole_line();
    for f in [
        "grid.json",
        "points.csv",
        "surface.json",
        "summary.json",
        "line.png",
        "line.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let rows = csv_rows(&out.join("points.csv"));
    assert_eq!(rows.len(), 9);
    let ts: Vec<f64> = rows.iter().map(|r| r["x"].parse().unwrap()).collect();
    assert_eq!(ts.first(), Some(&-0.5));
    assert_eq!(ts.last(), Some(&1.5));
    assert_reproduces(
        row_at(&rows, 0.0, 0.0),
        &stored_metrics(0),
        "t = 0 (snapshot 0)",
    );
    assert_reproduces(
        row_at(&rows, 1.0, 0.0),
        &stored_metrics(6),
        "t = 1 (snapshot 6)",
    );
    let summary = json(&out.join("summary.json"));
    for c in COLUMNS {
        let b = &summary["barrier"][c];
        assert!(b["height"].as_f64().unwrap() >= 0.0, "{c}: {b}");
        assert_eq!(
            b["v0"].as_f64().unwrap(),
            row_at(&rows, 0.0, 0.0)[c].parse::<f64>().unwrap()
        );
    }
    // Which settings were used, and from where.
    assert_eq!(summary["settings"]["bn"]["value"], "reestimate");
    assert_eq!(summary["settings"]["bn"]["from"], "run.json");
    assert_eq!(summary["settings"]["train_size"]["value"], "100");
    assert_eq!(summary["data_matches_run"], true);
    assert_eq!(summary["key"]["bn_policy"], "reestimate");
    for snap in summary["snapshots"].as_array().unwrap() {
        assert!(
            snap["max_relative_difference"].as_f64().unwrap() <= 1e-9,
            "{snap}"
        );
    }
    let grid = json(&out.join("grid.json"));
    assert_eq!(grid["spec"]["line"]["points"], 9);
    assert_eq!(grid["key"]["extra"]["surface"], "line-between");
    let svg = std::fs::read_to_string(out.join("line.svg")).unwrap();
    assert!(svg.contains("from (0 main e0)") && svg.contains("to (6 main e6)"));
}

#[test]
fn three_shards_merge_to_the_unsharded_line() {
    let whole = whole_line();
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (1..=3).map(|k| tmp.path().join(format!("s{k}"))).collect();
    // Three processes at once.
    let children: Vec<_> = (1..=3)
        .map(|k| {
            let shard = format!("{k}/3");
            let args = line_args(&dirs[k - 1], &["--shard", &shard]);
            surface_command(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for d in &dirs {
        // A shard draws nothing.
        assert!(!d.join("summary.json").exists());
    }
    assert_eq!(csv_rows(&dirs[0].join("points.csv")).len(), 3);
    let merged = tmp.path().join("merged");
    let mut args = strings(&["merge", "--out", s(&merged)]);
    args.extend(dirs.iter().map(|d| s(d).to_owned()));
    surface_ok(&args);
    assert_eq!(
        std::fs::read(whole.join("points.csv")).unwrap(),
        std::fs::read(merged.join("points.csv")).unwrap(),
        "merged points.csv differs from the unsharded one"
    );
    assert_eq!(
        json(&whole.join("summary.json")),
        json(&merged.join("summary.json"))
    );
    assert!(merged.join("line.svg").is_file());
    // `landscape store merge` is the same merge.
    let via_store = tmp.path().join("via-store");
    let o = Command::new(BIN)
        .args(["store", "merge", "--out", s(&via_store)])
        .args(dirs.iter().map(|d| s(d).to_owned()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(whole.join("points.csv")).unwrap(),
        std::fs::read(via_store.join("points.csv")).unwrap()
    );
    // Merging an incomplete set is refused, naming what is missing.
    let again = tmp.path().join("again");
    let o = surface(&strings(&[
        "merge",
        "--out",
        s(&again),
        s(&dirs[0]),
        s(&dirs[2]),
    ]));
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("incomplete"), "{e}");
}

#[test]
fn interrupted_line_resumes_to_the_same_bytes() {
    let whole = whole_line();
    let tmp = tempfile::tempdir().unwrap();
    let cut = tmp.path().join("cut");
    copy_dir(&whole, &cut);
    // Killed while writing point 6: rows 0-5 complete, row 6 cut mid-line.
    let text = std::fs::read_to_string(cut.join("points.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = lines[..7].join("\n");
    kept.push('\n');
    kept.push_str(&lines[7][..lines[7].len() / 2]);
    std::fs::write(cut.join("points.csv"), kept).unwrap();
    std::fs::remove_file(cut.join("summary.json")).unwrap();
    let o = surface_ok(&line_args(&cut, &[]));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("9 of 9 points done (3 evaluated now)"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(whole.join("points.csv")).unwrap(),
        std::fs::read(cut.join("points.csv")).unwrap()
    );
    assert_eq!(
        json(&whole.join("summary.json")),
        json(&cut.join("summary.json"))
    );

    // A real kill: a longer line stopped after a few points, then resumed.
    let long = |out: &Path| {
        on_store(&[
            "line",
            "--from",
            "0",
            "--to",
            "6",
            "--points",
            "41",
            "--out",
            s(out),
        ])
    };
    let killed = tmp.path().join("killed");
    let mut child = surface_command(&long(&killed))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        let n = std::fs::read_to_string(killed.join("points.csv"))
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if n >= 4 || t0.elapsed() > Duration::from_secs(120) {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    child.wait().unwrap();
    let done_before = csv_rows(&killed.join("points.csv")).len();
    assert!(
        done_before < 41,
        "the run finished before it could be killed"
    );
    let o = surface_ok(&long(&killed));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains(&format!("({} evaluated now)", 41 - done_before)),
        "{stdout}"
    );
    let fresh = tmp.path().join("fresh");
    surface_ok(&long(&fresh));
    assert_eq!(
        std::fs::read(fresh.join("points.csv")).unwrap(),
        std::fs::read(killed.join("points.csv")).unwrap()
    );
}

#[test]
fn planes_reproduce_their_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    // A random filter-normalised plane around snapshot 6, 5 x 5.
    let out = tmp.path().join("plane");
    surface_ok(&on_store(&[
        "plane",
        "--at",
        "6",
        "--seed",
        "3",
        "--points",
        "5",
        "--range",
        "0.5",
        "--out",
        s(&out),
    ]));
    for f in [
        "grid.csv",
        "plane.png",
        "plane.svg",
        "summary.json",
        "points.csv",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let rows = csv_rows(&out.join("grid.csv"));
    assert_eq!(rows.len(), 25);
    assert_reproduces(
        row_at(&rows, 0.0, 0.0),
        &stored_metrics(6),
        "centre (snapshot 6)",
    );
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["directions"]["seed"], 3);
    assert_eq!(summary["directions"]["normalisation"], "filter");
    assert!(
        summary["direction_stats"]["cos_after"]
            .as_f64()
            .unwrap()
            .abs()
            < 1e-6
    );
    assert!(summary["contour_levels"]
        .as_array()
        .is_some_and(|l| !l.is_empty()));
    let svg = std::fs::read_to_string(out.join("plane.svg")).unwrap();
    assert!(svg.contains("train loss") && svg.contains("train error"));
    // Other directions give other values off the centre.
    let rows2 = csv_rows(&out.join("points.csv"));
    assert_eq!(rows2.len(), 25);

    // The plane through snapshots 0, 3 and 6: a at (0, 0), b at (1, 0).
    let through = tmp.path().join("through");
    surface_ok(&on_store(&[
        "plane",
        "--through",
        "0,3,6",
        "--points",
        "5",
        "--margin",
        "0.1",
        "--out",
        s(&through),
    ]));
    let meta = json(&through.join("surface.json"));
    let snaps = meta["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 3);
    assert_eq!(
        (snaps[0]["x"].as_f64(), snaps[0]["y"].as_f64()),
        (Some(0.0), Some(0.0))
    );
    assert!((snaps[1]["x"].as_f64().unwrap() - 1.0).abs() < 1e-5);
    assert!(snaps[2]["y"].as_f64().unwrap() > 0.0);
    assert_eq!(csv_rows(&through.join("grid.csv")).len(), 25);
    assert!(through.join("plane.svg").is_file());
}

#[test]
fn changed_inputs_are_refused_and_nothing_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("line");
    copy_dir(&whole_line(), &out);
    let before = tree(&out);
    for (extra, names) in [
        (vec!["--bn", "running"], "bn_policy"),
        (vec!["--test-size", "50"], "dataset"),
    ] {
        let o = surface(&line_args(&out, &extra));
        assert!(!o.status.success(), "{extra:?} was accepted");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains(names) && e.contains("nothing was changed"),
            "{extra:?}: {e}"
        );
        assert_eq!(tree(&out), before, "{extra:?} changed the folder");
    }
    // Another grid, and other snapshots.
    let o = surface(&on_store(&[
        "line",
        "--from",
        "0",
        "--to",
        "6",
        "--points",
        "5",
        "--out",
        s(&out),
    ]));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("spec"), "{e}");
    let o = surface(&on_store(&[
        "line",
        "--from",
        "1",
        "--to",
        "6",
        "--points",
        "9",
        "--out",
        s(&out),
    ]));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("snapshots"), "{e}");
    assert_eq!(tree(&out), before);

    // Another direction seed along a random direction.
    let dir = tmp.path().join("direction");
    let args = |seed: &str| {
        on_store(&[
            "line",
            "--at",
            "6",
            "--direction-seed",
            seed,
            "--points",
            "5",
            "--out",
            s(&dir),
        ])
    };
    surface_ok(&args("1"));
    let rows = csv_rows(&dir.join("points.csv"));
    assert_reproduces(
        row_at(&rows, 0.0, 0.0),
        &stored_metrics(6),
        "t = 0 along a direction",
    );
    let before = tree(&dir);
    let o = surface(&args("2"));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("directions"), "{e}");
    assert_eq!(tree(&dir), before);
    // The same command again changes nothing but the log of the command.
    surface_ok(&args("1"));
    assert_eq!(
        std::fs::read(dir.join("points.csv")).unwrap(),
        before
            .iter()
            .find(|(p, _)| p.ends_with("points.csv"))
            .unwrap()
            .1
    );
}

#[test]
fn without_run_json_the_flags_are_required_and_the_net_is_inferred() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("bare").join("store");
    copy_dir(&store_dir(), &store);
    let out = tmp.path().join("line");
    let mut args = strings(&[
        "line",
        "--from",
        "0",
        "--to",
        "6",
        "--points",
        "9",
        "--out",
        s(&out),
        "--store",
        s(&store),
    ]);
    let o = surface(&args);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("--train-size") && e.contains("run.json"),
        "{e}"
    );
    assert!(!out.join("grid.json").exists());
    args.extend(strings(&["--train-size", "100", "--test-size", "100"]));
    surface_ok(&args);
    let summary = json(&out.join("summary.json"));
    assert_eq!(
        summary["settings"]["net"]["from"],
        "inferred from the tensor shapes"
    );
    assert_eq!(summary["settings"]["train_size"]["from"], "--train-size");
    assert_eq!(summary["settings"]["bn"]["from"], "default");
    // Same images, network and BN policy as the run: the same values.
    assert_eq!(
        std::fs::read(whole_line().join("points.csv")).unwrap(),
        std::fs::read(out.join("points.csv")).unwrap()
    );
}

/// `surface barrier` on three snapshots: one line t in [0, 1] per pair, whose
/// points are those of the longer line through the same two snapshots (same
/// t, same evaluation), and a table whose barriers are the largest excess of
/// each pair's points over their chord.
#[test]
fn barrier_runs_every_pair_and_tabulates_their_barriers() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("b");
    let o = surface_ok(&on_store(&[
        "barrier",
        "--ids",
        "0,3,6",
        "--points",
        "5",
        "--out",
        s(&out),
    ]));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("train_loss"), "{stdout}");
    let table = csv_rows(&out.join("barriers.csv"));
    assert_eq!(table.len(), 3 * 4, "3 pairs x 4 metrics");
    for (a, b) in [(0u64, 3u64), (0, 6), (3, 6)] {
        let dir = out.join(format!("pair-{a}-{b}"));
        let rows = csv_rows(&dir.join("points.csv"));
        assert_eq!(rows.len(), 5);
        assert_reproduces(row_at(&rows, 0.0, 0.0), &stored_metrics(a), "t = 0");
        assert_reproduces(row_at(&rows, 1.0, 0.0), &stored_metrics(b), "t = 1");
        for c in COLUMNS {
            let v: Vec<(f64, f64)> = rows
                .iter()
                .map(|r| (r["x"].parse().unwrap(), r[c].parse().unwrap()))
                .collect();
            let (v0, v1) = (v[0].1, v[4].1);
            let excess = v
                .iter()
                .map(|(t, y)| y - ((1.0 - t) * v0 + t * v1))
                .fold(0.0f64, f64::max);
            let row = table
                .iter()
                .find(|r| r["a"] == a.to_string() && r["b"] == b.to_string() && r["metric"] == c)
                .unwrap();
            let reported: f64 = row["barrier"].parse().unwrap();
            assert!(
                (reported - excess).abs() < 1e-12,
                "{a}-{b} {c}: {reported} vs {excess}"
            );
        }
    }
    // The pair (0, 6) sees the points of the 9-point line over [-0.5, 1.5].
    let long = csv_rows(&whole_line().join("points.csv"));
    let short = csv_rows(&out.join("pair-0-6").join("points.csv"));
    for t in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let (x, y) = (row_at(&short, t, 0.0), row_at(&long, t, 0.0));
        for c in COLUMNS {
            let (p, q): (f64, f64) = (x[c].parse().unwrap(), y[c].parse().unwrap());
            assert!(
                (p - q).abs() <= 1e-12 * q.abs().max(1.0),
                "t = {t} {c}: {p} vs {q}"
            );
        }
    }
    // Running it again evaluates nothing new and refuses a shard.
    surface_ok(&on_store(&[
        "barrier",
        "--ids",
        "0,3,6",
        "--points",
        "5",
        "--out",
        s(&out),
    ]));
    let o = surface(&on_store(&[
        "barrier",
        "--ids",
        "0,3",
        "--shard",
        "1/2",
        "--out",
        s(&out),
    ]));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--shard"));
}
