//! `cargo xtask bench hessian`: Hessian-vector products and the top Hessian
//! eigenvalue of the paper network's mean cross-entropy (widths 32, 64, 152,
//! 56; 188,810 parameters; BN with its running statistics, eval mode),
//! landscape (`crates/probe/examples/hessian_bench.rs`, release:
//! `LossHessian`, chunked double backward, and Lanczos from
//! `landscape-spectrum`) against what PyHessian does in PyTorch
//! (`crates/net/benches/hessian_bench.py`), in the same torch 2.13 install
//! that libtorch comes from, on the CPU with the same thread count.
//!
//! The Rust side exports the model (weights and BN statistics), the images,
//! labels and a unit probe vector once; both sides read those files, so they
//! differentiate the same function. Runs are interleaved (in an order that
//! alternates between repeats), every product process does a warm-up product
//! first, and the table reports medians. Measured:
//!
//! * seconds per Hessian-vector product on all images (one chunk by
//!   default): landscape; PyTorch in PyHessian's single-batch mode (gradient
//!   graph built once with `create_graph=True` and kept: each product is the
//!   double backward alone; the one-off graph build is printed as setup); and
//!   in PyHessian's dataloader mode (forward and backward again per product,
//!   as landscape does to keep memory bounded). The products of the same
//!   vector must agree: the largest entry-wise difference relative to the
//!   largest entry, and the relative 2-norm difference, are printed.
//! * the top eigenvalue: PyHessian's power iteration (stop when the Rayleigh
//!   quotient changes by less than tol = 1e-3 relative, at most 100
//!   iterations, single-batch mode, graph build included) against landscape's
//!   thick-restart Lanczos (stop when the relative residual
//!   `|H v - lambda v| / |lambda|` is below the same 1e-3, a stricter test),
//!   time and number of products, each from its own random start per repeat.
//!
//! Environment: `LANDSCAPE_BENCH_THREADS` (default 2), `LANDSCAPE_BENCH_REPEATS`
//! (default 3), `LANDSCAPE_BENCH_IMAGES` (default 1,000; also the chunk),
//! `LANDSCAPE_BENCH_STORE` and `LANDSCAPE_BENCH_ID` (a stored snapshot and
//! CIFAR-10 training images instead of a network initialised with seed 0 on
//! synthetic images).
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::train::{env_usize, median, run_line, seconds, Runner};

use crate::setup::TorchEnv;
use crate::util::{self, project_root, say, target_dir};

/// The number after `"key":` in a JSON line.
fn number(line: &str, key: &str) -> Result<f64> {
    let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    let tag = format!("\"{key}\":");
    let start = compact
        .find(&tag)
        .with_context(|| format!("no \"{key}\" field in {line}"))?
        + tag.len();
    let end = compact[start..]
        .find([',', '}'])
        .map_or(compact.len(), |e| e + start);
    compact[start..end]
        .parse()
        .with_context(|| format!("\"{key}\": bad number `{}`", &compact[start..end]))
}

fn read_f64s(path: &Path) -> Result<Vec<f64>> {
    let b = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(b.chunks_exact(8)
        .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect())
}

/// (max |a - b| / max |b|, |a - b| / |b|).
fn difference(a: &[f64], b: &[f64]) -> (f64, f64) {
    let max_b = b.iter().fold(0f64, |m, x| m.max(x.abs()));
    let max_d = a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs()));
    let nd = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    (max_d / max_b, nd / nb)
}

fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

/// One eigenvalue run: time, eigenvalue, products.
struct Eig {
    seconds: f64,
    eigenvalue: f64,
    products: f64,
}

fn eig_of(line: &str) -> Result<Eig> {
    Ok(Eig {
        seconds: seconds(line)?
            .first()
            .copied()
            .context("empty \"seconds\"")?,
        eigenvalue: number(line, "eigenvalue")?,
        products: number(line, "products")?,
    })
}

pub fn run(env: &TorchEnv) -> Result<()> {
    let Some(site) = env.python_site.clone() else {
        bail!("the PyTorch baseline needs the torch Python package from `cargo xtask setup` (a LIBTORCH set by hand has none)");
    };
    let threads = env_usize("LANDSCAPE_BENCH_THREADS", 2)?.max(1);
    let repeats = env_usize("LANDSCAPE_BENCH_REPEATS", 3)?.max(1);
    let images = env_usize("LANDSCAPE_BENCH_IMAGES", 1000)?.max(1);
    let store = std::env::var("LANDSCAPE_BENCH_STORE").ok();
    let id = std::env::var("LANDSCAPE_BENCH_ID").ok();
    if store.is_some() != id.is_some() {
        bail!("LANDSCAPE_BENCH_STORE and LANDSCAPE_BENCH_ID go together");
    }

    say("building landscape's hessian_bench example (release)");
    util::run_checked(util::cargo().args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "landscape-probe",
        "--example",
        "hessian_bench",
    ]))?;
    let exe = target_dir()
        .join("release")
        .join("examples")
        .join("hessian_bench");
    if !exe.exists() {
        bail!("{} was not built", exe.display());
    }
    let dir: PathBuf = target_dir().join("hessian-bench");
    let script = project_root().join("crates/net/benches/hessian_bench.py");
    let rust = Runner {
        name: "landscape",
        cmd: vec![exe.display().to_string()],
    };
    let py = Runner {
        name: "pytorch",
        cmd: vec!["python3".to_string(), script.display().to_string()],
    };
    let common = |mode: &str| {
        let mut a = strings(&[mode, "--dir"]);
        a.push(dir.display().to_string());
        a.extend(strings(&["--threads", &threads.to_string()]));
        a
    };

    say(format!(
        "exporting the model and {images} images to {}",
        dir.display()
    ));
    let mut export = common("export");
    export.extend(strings(&[
        "--images",
        &images.to_string(),
        "--chunk",
        &images.to_string(),
    ]));
    if let (Some(s), Some(i)) = (&store, &id) {
        export.extend(strings(&["--store", s, "--id", i]));
    }
    let (_, exported) = run_line(&rust, &export, &site)?;
    let loss = number(&exported, "loss")?;
    let params = number(&exported, "params")?;
    let what = exported
        .split("\"what\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or("?")
        .to_owned();

    // Products: landscape, pytorch single-batch (graph kept), pytorch dataloader (rebuilt).
    let products = 3usize;
    let hvp_args = |graph: Option<&str>| {
        let mut a = common("hvp");
        a.extend(strings(&[
            "--products",
            &products.to_string(),
            "--warmup",
            "1",
            "--chunk",
            &images.to_string(),
        ]));
        if let Some(g) = graph {
            a.extend(strings(&["--graph", g]));
        }
        a
    };
    let names = [
        "landscape (LossHessian::hvp; one chunk: graph kept)",
        "pytorch, PyHessian single batch (graph kept)",
        "pytorch, PyHessian dataloader (graph rebuilt)",
    ];
    let mut hvp: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut setup = Vec::new();
    let mut rust_eig = Vec::new();
    let mut py_eig = Vec::new();
    for rep in 0..repeats {
        let mut order: Vec<usize> = (0..3).collect();
        if rep % 2 == 1 {
            order.reverse();
        }
        for i in order {
            say(format!("repeat {}/{repeats}: {}", rep + 1, names[i]));
            let (runner, args) = match i {
                0 => (&rust, hvp_args(None)),
                1 => (&py, hvp_args(Some("keep"))),
                _ => (&py, hvp_args(Some("rebuild"))),
            };
            let (shown, line) = run_line(runner, &args, &site)?;
            hvp[i]
                .extend(seconds(&line).with_context(|| format!("reading the output of {shown}"))?);
            if i == 1 {
                setup.push(number(&line, "setup")?);
            }
        }
        let seed = rep.to_string();
        let mut eig_order = [0usize, 1];
        if rep % 2 == 1 {
            eig_order.reverse();
        }
        for i in eig_order {
            if i == 0 {
                say(format!("repeat {}/{repeats}: landscape Lanczos", rep + 1));
                let mut a = common("eig");
                a.extend(strings(&[
                    "--tol",
                    "1e-3",
                    "--seed",
                    &seed,
                    "--chunk",
                    &images.to_string(),
                ]));
                rust_eig.push(eig_of(&run_line(&rust, &a, &site)?.1)?);
            } else {
                say(format!(
                    "repeat {}/{repeats}: pytorch power iteration",
                    rep + 1
                ));
                let mut a = common("eig");
                a.extend(strings(&[
                    "--tol",
                    "1e-3",
                    "--max-iter",
                    "100",
                    "--seed",
                    &seed,
                ]));
                py_eig.push(eig_of(&run_line(&py, &a, &site)?.1)?);
            }
        }
    }
    let hv_rust = read_f64s(&dir.join("hv_landscape.f64"))?;
    let hv_keep = read_f64s(&dir.join("hv_pytorch_keep.f64"))?;
    let hv_rebuild = read_f64s(&dir.join("hv_pytorch_rebuild.f64"))?;
    if hv_rust.len() != hv_keep.len() || hv_rust.len() != hv_rebuild.len() {
        bail!(
            "the products have {} (landscape), {} and {} (pytorch) entries",
            hv_rust.len(),
            hv_keep.len(),
            hv_rebuild.len()
        );
    }
    report(&Report {
        threads,
        repeats,
        images,
        params,
        loss,
        what: &what,
        names: &names,
        hvp: &hvp,
        setup: &setup,
        agree_keep: difference(&hv_rust, &hv_keep),
        agree_rebuild: difference(&hv_rust, &hv_rebuild),
        agree_pytorch: difference(&hv_keep, &hv_rebuild),
        rust_eig: &rust_eig,
        py_eig: &py_eig,
    });
    Ok(())
}

struct Report<'a> {
    threads: usize,
    repeats: usize,
    images: usize,
    params: f64,
    loss: f64,
    what: &'a str,
    names: &'a [&'a str],
    hvp: &'a [Vec<f64>],
    setup: &'a [f64],
    agree_keep: (f64, f64),
    agree_rebuild: (f64, f64),
    agree_pytorch: (f64, f64),
    rust_eig: &'a [Eig],
    py_eig: &'a [Eig],
}

/// Benchmarks print their numbers.
#[allow(clippy::print_stdout)]
fn report(r: &Report<'_>) {
    println!();
    println!(
        "bench hessian: {}; {} parameters, mean cross-entropy {:.6} over {} images, BN fixed (running statistics); CPU, {} threads, {} interleaved repeats",
        r.what, r.params, r.loss, r.images, r.threads, r.repeats
    );
    println!();
    println!(
        "Hessian-vector product on {} images (one chunk of {}):",
        r.images, r.images
    );
    println!(
        "  {:<52} {:>10} {:>10} {:>9}",
        "implementation", "s/product", "best s", "products"
    );
    let best = |xs: &[f64]| xs.iter().copied().fold(f64::INFINITY, f64::min);
    for (name, xs) in r.names.iter().zip(r.hvp) {
        println!(
            "  {:<52} {:>10.3} {:>10.3} {:>9}",
            name,
            median(xs),
            best(xs),
            xs.len()
        );
    }
    println!(
        "  (pytorch single batch: building the graph once took {:.3} s median)",
        median(r.setup)
    );
    let lm = median(&r.hvp[0]);
    println!(
        "  ratio pytorch / landscape seconds per product: {:.2} (single batch, graph kept), {:.2} (dataloader, graph rebuilt)",
        median(&r.hvp[1]) / lm,
        median(&r.hvp[2]) / lm
    );
    println!(
        "  agreement of H v (same v): max |diff| / max |entry| = {:.2e} (graph kept), {:.2e} (rebuilt); |diff| / |Hv| = {:.2e}, {:.2e}",
        r.agree_keep.0, r.agree_rebuild.0, r.agree_keep.1, r.agree_rebuild.1
    );
    println!(
        "  (f32 floor: pytorch graph kept vs rebuilt, max |diff| / max |entry| = {:.2e}, |diff| / |Hv| = {:.2e})",
        r.agree_pytorch.0, r.agree_pytorch.1
    );
    println!();
    println!("Top eigenvalue, tol 1e-3 (one random start per repeat):");
    println!(
        "  {:<52} {:>10} {:>9} {:>26}",
        "method", "seconds", "products", "eigenvalue (median, range)"
    );
    let row = |name: &str, e: &[Eig]| {
        let secs: Vec<f64> = e.iter().map(|x| x.seconds).collect();
        let prods: Vec<f64> = e.iter().map(|x| x.products).collect();
        let vals: Vec<f64> = e.iter().map(|x| x.eigenvalue).collect();
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        println!(
            "  {:<52} {:>10.2} {:>9.0} {:>10.5} [{:.5}, {:.5}]",
            name,
            median(&secs),
            median(&prods),
            median(&vals),
            lo,
            hi
        );
        median(&secs)
    };
    let ts = row("landscape Lanczos (relative residual <= tol)", r.rust_eig);
    let tp = row(
        "pytorch PyHessian power iteration (change <= tol)",
        r.py_eig,
    );
    println!(
        "  ratio pytorch / landscape time to the top eigenvalue: {:.2}",
        tp / ts
    );
    super::train::print_cpu_times();
}
