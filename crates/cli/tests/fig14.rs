//! End-to-end tests of `landscape reproduce fig14` through the real binary, on
//! a synthetic CIFAR-10 folder in the official binary layout (random images
//! and labels, written once per test process), at the `smoke` scale.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use landscape_trajectory::Store;

const BIN: &str = env!("CARGO_BIN_EXE_landscape");

/// A CIFAR-10 binary-layout folder with deterministic pseudo-random content.
fn fixture() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("cifar-10-batches-bin");
        std::fs::create_dir_all(&bin).unwrap();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let names = [
            "data_batch_1.bin",
            "data_batch_2.bin",
            "data_batch_3.bin",
            "data_batch_4.bin",
            "data_batch_5.bin",
            "test_batch.bin",
        ];
        for name in names {
            let mut buf = Vec::with_capacity(10_000 * 3073);
            for i in 0..10_000u32 {
                buf.push((i % 10) as u8);
                for _ in 0..(3072 / 8) {
                    buf.extend_from_slice(&next().to_le_bytes());
                }
            }
            std::fs::File::create(bin.join(name))
                .unwrap()
                .write_all(&buf)
                .unwrap();
        }
        let classes = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
        std::fs::write(bin.join("batches.meta.txt"), classes).unwrap();
        dir
    })
    .path()
}

fn reproduce(out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "reproduce",
        "fig14",
        "--scale",
        "smoke",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--out",
    ])
    .arg(out)
    .arg("--data")
    .arg(fixture().join("cifar-10-batches-bin"))
    .args(extra)
    .env("RUST_LOG", "warn");
    cmd
}

fn run_ok(out: &Path) {
    let o = reproduce(out, &[]).output().unwrap();
    assert!(
        o.status.success(),
        "reproduce failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn csv_rows(path: &Path) -> Vec<csv::StringRecord> {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.records().map(|x| x.unwrap()).collect()
}

#[test]
fn smoke_outputs_exist_and_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    run_ok(&out);
    for f in [
        "fig14/fig14.png",
        "fig14/fig14.svg",
        "fig14/fig15.png",
        "fig14/fig15.svg",
        "fig14/curves.png",
        "fig14/curves.svg",
        "fig14/points.csv",
        "run.json",
        "summary.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // One CSV row per snapshot in the store (smoke has a single variant).
    let store = Store::open(out.join("store")).unwrap();
    let snaps = store.snapshots();
    let rows = csv_rows(&out.join("fig14/points.csv"));
    assert_eq!(rows.len(), snaps.len());
    // main 0..=6, branches from 0,1,2,4 to 6 (7+6+5+3 models), and as many averages.
    assert_eq!(snaps.len(), 7 + 2 * (7 + 6 + 5 + 3));
    // Every point's error is its snapshot's evaluated error, and is drawn as its label.
    let svg = std::fs::read_to_string(out.join("fig14/fig14.svg")).unwrap();
    for row in &rows {
        let id: u64 = row[0].parse().unwrap();
        let info = snaps
            .iter()
            .find(|s| s.id().get() == id)
            .expect("CSV id is in the store");
        let err = info.meta().metric("train_error").unwrap();
        let csv_err: f64 = row[6].parse().unwrap();
        assert!(
            (err - csv_err).abs() < 1e-3,
            "row {id}: CSV {csv_err} vs store {err}"
        );
        assert_eq!(row[1], *info.meta().run());
        // plotters writes each text element as `<text ...>\nLABEL\n</text>`.
        assert!(
            svg.contains(&format!("\n{:.1}\n</text>", err)),
            "label {:.1} of snapshot {id} not drawn",
            err
        );
        assert!(
            row[4].parse::<f64>().unwrap().is_finite()
                && row[5].parse::<f64>().unwrap().is_finite()
        );
    }
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["status"], "complete");
    assert_eq!(run["seed"], 0);
    assert!(run["timings_s"]["train_main"].as_f64().unwrap() > 0.0);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let findings = summary["variants"][0]["findings"].as_array().unwrap();
    let ids: Vec<&str> = findings.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "no_local_minimum",
            "test_error",
            "later_branches_closer",
            "averaging_basin",
            "wall"
        ]
    );
    for f in findings {
        assert!(["holds", "does not hold", "reported"].contains(&f["verdict"].as_str().unwrap()));
    }
    // The main trajectory's final error in the summary is the CSV's.
    let last_main = rows
        .iter()
        .filter(|r| &r[1] == "main")
        .max_by_key(|r| r[3].parse::<u32>().unwrap())
        .unwrap();
    let main_err: f64 = last_main[6].parse().unwrap();
    assert!((summary["main_final_train_error"].as_f64().unwrap() - main_err).abs() < 1e-3);
}

#[test]
fn interrupted_run_resumes_to_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    run_ok(&reference);

    let out = tmp.path().join("interrupted");
    let mut child = reproduce(&out, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once a branch is being recorded (mid-branch).
    let start = Instant::now();
    let mut killed_mid_branch = false;
    while start.elapsed() < Duration::from_secs(120) {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if let Ok(store) = Store::open(out.join("store")) {
            let n = store
                .snapshots()
                .iter()
                .filter(|s| s.meta().run().starts_with("fig14/branch2"))
                .count();
            if n >= 1 {
                child.kill().unwrap();
                killed_mid_branch = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.wait();
    assert!(
        killed_mid_branch,
        "the run finished before it could be interrupted"
    );
    assert!(!out.join("summary.json").exists());
    run_ok(&out);
    let a = std::fs::read_to_string(reference.join("fig14/points.csv")).unwrap();
    let b = std::fs::read_to_string(out.join("fig14/points.csv")).unwrap();
    assert_eq!(
        a, b,
        "the resumed run's CSV differs from the uninterrupted one"
    );
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["resumed"], true);
}

fn bad_config(edit: impl Fn(&str) -> String) -> (bool, String, PathBuf) {
    let tmp = tempfile::tempdir().unwrap().keep();
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/fig14.toml"),
    )
    .unwrap();
    let path = tmp.join("bad.toml");
    let edited = edit(&base);
    assert_ne!(
        edited, base,
        "the test's edit did not apply to experiments/fig14.toml"
    );
    std::fs::write(&path, edited).unwrap();
    let out = tmp.join("out");
    let o = reproduce(&out, &["--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        out,
    )
}

#[test]
fn bad_configs_fail_before_training_naming_the_key() {
    let cases: Vec<(&str, Box<dyn Fn(&str) -> String>, &str)> = vec![
        (
            "unknown key",
            Box::new(|s: &str| {
                s.replace(
                    "[smoke.bgd]\nlr = 0.5",
                    "[smoke.bgd]\nlr = 0.5\nlearning_rate = 0.1",
                )
            }),
            "learning_rate",
        ),
        (
            "branch epoch beyond the last",
            Box::new(|s: &str| {
                s.replace(
                    "branch_epochs = [0, 1, 2, 4]",
                    "branch_epochs = [0, 1, 2, 9]",
                )
            }),
            "smoke.branch_epochs[3]",
        ),
        (
            "layer 7",
            Box::new(|s: &str| {
                s.replace(
                    "alpha = 0.25\nlayer = 2\n[smoke.eval]",
                    "alpha = 0.25\nlayer = 7\n[smoke.eval]",
                )
            }),
            "smoke.variants[0].layer",
        ),
        (
            "negative alpha",
            Box::new(|s: &str| {
                s.replace(
                    "alpha = 0.25\nlayer = 2\n[smoke.eval]",
                    "alpha = -0.5\nlayer = 2\n[smoke.eval]",
                )
            }),
            "smoke.variants[0].alpha",
        ),
    ];
    for (what, edit, key) in cases {
        let (ok, stderr, out) = bad_config(edit);
        assert!(!ok, "{what}: accepted");
        assert!(
            stderr.contains(key),
            "{what}: message does not name `{key}`:\n{stderr}"
        );
        assert!(!out.join("store").exists(), "{what}: training started");
    }
}
