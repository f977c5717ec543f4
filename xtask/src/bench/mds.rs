//! `cargo xtask bench mds`: 1 - cosine dissimilarities and classical MDS
//! (k = 2) of n = 1,000 and 4,000 random f32 points of dimension 30,000, by
//! `landscape-mds` (its `bench_mds` example, release, OpenBLAS) and by numpy +
//! scipy doing the same in the same run: a Gram product in f64 (numpy's `@`,
//! which uses `syrk` for `X @ X.T`) and `scipy.linalg.eigh` with
//! `subset_by_index` for the top two eigenpairs. scipy is installed with
//! `pip install --target` into `~/.cache/landscape/py-bench` when missing.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::setup::TorchEnv;
use crate::util::{self, say};

const DIM: usize = 30_000;
const SIZES: [usize; 2] = [1_000, 4_000];

/// numpy + scipy baseline: the same pipeline with f64 accumulation.
const NUMPY_BASELINE: &str = r#"
import sys, time
import numpy as np, scipy, scipy.linalg as sl
dim = int(sys.argv[1])
rng = np.random.default_rng(7)
for n in map(int, sys.argv[2:]):
    common = rng.random(dim, dtype=np.float32) - 0.5
    X = common + 0.5 * (rng.random((n, dim), dtype=np.float32) - 0.5)
    t0 = time.perf_counter()
    X64 = X.astype(np.float64)
    G = X64 @ X64.T
    inv = 1.0 / np.sqrt(np.diag(G))
    D = 1.0 - G * inv[:, None] * inv[None, :]
    np.fill_diagonal(D, 0.0)
    t1 = time.perf_counter()
    A = D * D
    r = A.mean(axis=1)
    B = -0.5 * (A - r[:, None] - r[None, :] + r.mean())
    w, V = sl.eigh(B, subset_by_index=[n - 2, n - 1])
    coords = V[:, ::-1] * np.sqrt(np.maximum(w[::-1], 0))
    t2 = time.perf_counter()
    print(f"numpy n={n} d={dim} dissimilarity_s={t1 - t0:.3f} mds_s={t2 - t1:.3f} total_s={t2 - t0:.3f} "
          f"lambda1={w[1]:.10e} lambda2={w[0]:.10e} numpy={np.__version__} scipy={scipy.__version__}", flush=True)
"#;

pub fn run(env: &TorchEnv) -> Result<()> {
    let sizes: Vec<String> = SIZES.iter().map(ToString::to_string).collect();
    say("building and running landscape-mds's bench_mds (release)");
    let out = util::release_example("landscape-mds", "bench_mds")
        .arg(DIM.to_string())
        .args(&sizes)
        .output()
        .context("could not start cargo")?;
    if !out.status.success() {
        bail!(
            "bench_mds failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rust = String::from_utf8_lossy(&out.stdout).into_owned();

    let Some(site) = &env.python_site else {
        say("no Python site folder (LIBTORCH came from the environment): no numpy baseline");
        print_table(&rust, "");
        return Ok(());
    };
    let scipy = scipy_site(site)?;
    say("running the numpy + scipy baseline");
    let mut py = Command::new("python3");
    py.arg("-c")
        .arg(NUMPY_BASELINE)
        .arg(DIM.to_string())
        .args(&sizes);
    py.env("PYTHONPATH", join_paths(&[site.clone(), scipy])?);
    let out = py.output().context("could not start python3")?;
    if !out.status.success() {
        bail!(
            "numpy baseline failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    print_table(&rust, &String::from_utf8_lossy(&out.stdout));
    Ok(())
}

/// Where scipy lives, installing it there when missing.
fn scipy_site(torch_site: &Path) -> Result<PathBuf> {
    let home = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .context("neither XDG_CACHE_HOME nor HOME is set")?;
    let dir = home.join("landscape").join("py-bench");
    if dir.join("scipy").is_dir() {
        return Ok(dir);
    }
    say(format!("installing scipy into {}", dir.display()));
    util::run_checked(
        Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--no-deps", "--target"])
            .arg(&dir)
            .arg("scipy")
            .env("PYTHONPATH", torch_site),
    )?;
    Ok(dir)
}

fn join_paths(paths: &[PathBuf]) -> Result<std::ffi::OsString> {
    std::env::join_paths(paths).context("a Python path holds the path separator")
}

/// One `key=value` field of a result line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

#[allow(clippy::print_stdout)]
fn print_table(rust: &str, numpy: &str) {
    println!("1 - cosine + classical MDS (k = 2), dimension {DIM}:");
    println!(
        "{:>6}  {:>12} {:>10} {:>10}  {:>12} {:>10} {:>10}  {:>9} {:>9} {:>8}",
        "n",
        "rust dissim",
        "rust mds",
        "rust all",
        "numpy dissim",
        "scipy mds",
        "numpy all",
        "dissim x",
        "mds x",
        "speedup"
    );
    for r in rust.lines().filter(|l| l.starts_with("rust ")) {
        let n = field(r, "n").unwrap_or("?");
        let p = numpy
            .lines()
            .find(|l| l.starts_with("numpy ") && field(l, "n") == Some(n));
        let get = |line: Option<&str>, key: &str| {
            line.and_then(|l| field(l, key)).unwrap_or("-").to_owned()
        };
        // numpy's time over ours for one stage: > 1 means we are faster.
        let ratio = |key: &str| match (get(Some(r), key).parse::<f64>(), get(p, key).parse::<f64>())
        {
            (Ok(a), Ok(b)) if a > 0.0 => format!("{:.2}x", b / a),
            _ => "-".to_owned(),
        };
        println!(
            "{n:>6}  {:>12} {:>10} {:>10}  {:>12} {:>10} {:>10}  {:>9} {:>9} {:>8}",
            get(Some(r), "dissimilarity_s"),
            get(Some(r), "mds_s"),
            get(Some(r), "total_s"),
            get(p, "dissimilarity_s"),
            get(p, "mds_s"),
            get(p, "total_s"),
            ratio("dissimilarity_s"),
            ratio("mds_s"),
            ratio("total_s"),
        );
    }
    println!(
        "(dissim x, mds x, speedup: numpy + scipy time over ours for the Gram product and \
         dissimilarities, the MDS step, and both)"
    );
    println!("\nraw lines:\n{}{}", rust, numpy);
}
