//! Shared pieces of the end-to-end tests: a synthetic CIFAR-10 folder and
//! helpers to run the `landscape` binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A CIFAR-10 folder in the official binary layout with deterministic
/// pseudo-random images and balanced labels, written once per test process.
pub fn cifar_fixture() -> PathBuf {
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
    .join("cifar-10-batches-bin")
}

/// Every file under `dir` with its bytes (for "left as it was" checks).
pub fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

/// Parses a JSON file.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The rows of a CSV file, by header name.
pub fn csv_rows(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|x| {
            let x = x.unwrap();
            headers
                .iter()
                .map(String::from)
                .zip(x.iter().map(String::from))
                .collect()
        })
        .collect()
}

/// `landscape reproduce <figure> --scale smoke` on the CPU with one thread,
/// on the synthetic CIFAR-10 fixture, into `out`, with `extra` arguments.
/// `bin` is the test's `env!("CARGO_BIN_EXE_landscape-e2e")`.
pub fn smoke_command(bin: &str, figure: &str, out: &Path, extra: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(bin);
    cmd.args([
        "reproduce",
        figure,
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
    .arg(cifar_fixture())
    .args(extra)
    .env("RUST_LOG", "warn");
    cmd
}

/// Runs [`smoke_command`] to completion.
pub fn smoke(bin: &str, figure: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    smoke_command(bin, figure, out, extra).output().unwrap()
}

/// [`smoke`], asserting success (the failure shows stderr).
pub fn smoke_ok(bin: &str, figure: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let o = smoke(bin, figure, out, extra);
    assert!(
        o.status.success(),
        "reproduce {figure} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A copy of the config `text` with `edits` (from, to; first occurrence)
/// applied, written as `dir/name`. Panics if an edit does not apply.
pub fn edited_config(dir: &Path, name: &str, text: &str, edits: &[(&str, &str)]) -> PathBuf {
    let mut text = text.to_owned();
    for (from, to) in edits {
        let next = text.replacen(from, to, 1);
        assert_ne!(next, text, "edit `{from}` did not apply");
        text = next;
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The model tensors of a stored snapshot by name (optimiser state left out).
pub fn tensors(
    store: &landscape_trajectory::Store,
    s: &landscape_trajectory::SnapshotInfo,
) -> std::collections::BTreeMap<String, Vec<f32>> {
    store
        .read_snapshot(s.id())
        .unwrap()
        .into_iter()
        .filter(|t| !t.name.starts_with("optim."))
        .map(|t| (t.name, t.data))
        .collect()
}

/// Sample standard deviation (n - 1).
pub fn std_dev(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

/// MDS coordinates from a points CSV equal MDS (1 - cos) of `layer`
/// recomputed from the store (each axis up to sign, relative 1e-9).
pub fn assert_mds_of_layer(
    store: &landscape_trajectory::Store,
    rows: &[std::collections::BTreeMap<String, String>],
    layer: usize,
) {
    let ids: Vec<_> = rows
        .iter()
        .map(|r| landscape_trajectory::SnapshotId(r["id"].parse().unwrap()))
        .collect();
    let names = [format!("layer{layer}.weight"), format!("layer{layer}.bias")];
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let m = store.read_matrix_ids(&ids, &refs).unwrap().into_parts().1;
    let d = landscape_mds::dissimilarity_matrix(&m, landscape_mds::Dissimilarity::Cosine).unwrap();
    let e = landscape_mds::ClassicalMds::params(2).fit_owned(d).unwrap();
    let c = e.coordinates();
    for (axis, col) in ["x", "y"].iter().enumerate() {
        let csv: Vec<f64> = rows.iter().map(|r| r[*col].parse().unwrap()).collect();
        let scale = csv.iter().fold(0.0f64, |a, v| a.max(v.abs())).max(1e-300);
        let same = csv
            .iter()
            .enumerate()
            .all(|(k, v)| (v - c[[k, axis]]).abs() <= 1e-9 * scale);
        let flipped = csv
            .iter()
            .enumerate()
            .all(|(k, v)| (v + c[[k, axis]]).abs() <= 1e-9 * scale);
        assert!(
            same || flipped,
            "CSV axis {col} is not MDS of layer {layer}"
        );
    }
}
