//! `cargo xtask bench surface`: seconds per loss-surface point of the paper
//! network (weights `w0 + a d1 + b d2` loaded, BN statistics re-estimated on
//! the training set, training and test sets evaluated), in one run:
//!
//! - landscape's evaluator (`reestimate_and_evaluate`: re-estimation and the
//!   training-set evaluation in one pass over the data),
//! - the same numbers one step at a time (layer-by-layer re-estimation, then
//!   a separate evaluation pass: landscape before the one-pass evaluator),
//! - PyTorch in Python, one point at a time as Li et al.'s loss-landscape
//!   does, computing the same numbers (exact re-estimation, then evaluation),
//! - PyTorch as loss-landscape computes it (`net.eval()` with the centre's BN
//!   statistics for every point: less work and another, stale-statistics, loss),
//! - PyTorch with K points side by side in grouped convolutions (the batching
//!   a GPU rewards), for reference.
//!
//! Rust: `crates/net/examples/surface_bench.rs` (release), which also writes
//! the weights, directions, grid and synthetic data both sides read; Python:
//! `crates/net/benches/surface_bench.py` with the torch 2.13 that libtorch
//! comes from. Runs are interleaved, medians over repeats; the training
//! losses of every implementation are compared with landscape's at each point.
//!
//! Environment: `LANDSCAPE_BENCH_THREADS` (default 2), `LANDSCAPE_BENCH_REPEATS`
//! (default 3), `LANDSCAPE_BENCH_IMAGES` (training images, default 2,000),
//! `LANDSCAPE_BENCH_POINTS` (default 8).
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::train::{env_usize, median, numbers, run_line, Runner};
use crate::setup::TorchEnv;
use crate::util::{self, project_root, say, target_dir};

/// Seconds per point and training losses of one run.
fn run_once(runner: &Runner, args: &[String], site: &PathBuf) -> Result<(Vec<f64>, Vec<f64>)> {
    let (shown, line) = run_line(runner, args, site)?;
    let read = |key: &str| {
        numbers(&line, key).with_context(|| format!("reading the output of {shown}: {line}"))
    };
    Ok((read("seconds")?, read("train_loss")?))
}

pub fn run(env: &TorchEnv) -> Result<()> {
    let Some(site) = env.python_site.clone() else {
        bail!("the PyTorch baseline needs the torch Python package from `cargo xtask setup` (a LIBTORCH set by hand has none)");
    };
    let threads = env_usize("LANDSCAPE_BENCH_THREADS", 2)?.max(1);
    let repeats = env_usize("LANDSCAPE_BENCH_REPEATS", 3)?.max(1);
    let images = env_usize("LANDSCAPE_BENCH_IMAGES", 2000)?.max(2);
    let points = env_usize("LANDSCAPE_BENCH_POINTS", 8)?.max(1);
    let test = 1000;
    let group = 4;

    say("building landscape-net's surface_bench example (release)");
    util::run_checked(util::cargo().args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "landscape-net",
        "--example",
        "surface_bench",
    ]))?;
    let exe = target_dir()
        .join("release")
        .join("examples")
        .join("surface_bench");
    if !exe.exists() {
        bail!("{} was not built", exe.display());
    }
    let dir = target_dir().join("bench-surface");
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating {} for the bench data", dir.display()))?;
    let dir_s = dir.display().to_string();
    say(format!(
        "writing {images} training and {test} test images (synthetic), the centre and two directions to {dir_s}"
    ));
    util::run_checked(Command::new(&exe).args([
        "write",
        "--dir",
        &dir_s,
        "--images",
        &images.to_string(),
        "--test",
        &test.to_string(),
        "--points",
        &points.to_string(),
    ]))?;
    let script = project_root().join("crates/net/benches/surface_bench.py");
    let py = |mode: &str| {
        vec![
            "python3".to_string(),
            script.display().to_string(),
            mode.to_string(),
            "--group".to_string(),
            group.to_string(),
        ]
    };
    let rust = |mode: &str| vec![exe.display().to_string(), mode.to_string()];
    let runners = [
        Runner {
            name: "landscape (one pass)",
            cmd: rust("onepass"),
        },
        Runner {
            name: "landscape (layer by layer)",
            cmd: rust("layered"),
        },
        Runner {
            name: "pytorch, one at a time, exact BN",
            cmd: py("exact"),
        },
        Runner {
            name: "pytorch, as loss-landscape",
            cmd: py("loss-landscape"),
        },
        Runner {
            name: "pytorch, grouped convs (K=4)",
            cmd: py("grouped"),
        },
    ];
    let args: Vec<String> = vec![
        "--dir".into(),
        dir_s.clone(),
        "--threads".into(),
        threads.to_string(),
    ];
    let mut secs: Vec<Vec<f64>> = vec![Vec::new(); runners.len()];
    let mut losses: Vec<Vec<f64>> = vec![Vec::new(); runners.len()];
    for rep in 0..repeats {
        let mut order: Vec<usize> = (0..runners.len()).collect();
        if rep % 2 == 1 {
            order.reverse();
        }
        for ri in order {
            say(format!(
                "repeat {}/{repeats}: {}",
                rep + 1,
                runners[ri].name
            ));
            let (s, l) = run_once(&runners[ri], &args, &site)?;
            secs[ri].extend(s);
            losses[ri] = l;
        }
    }
    report(
        threads, repeats, images, test, points, &runners, &secs, &losses,
    );
    Ok(())
}

/// Benchmarks print their numbers.
#[allow(clippy::print_stdout, clippy::too_many_arguments)]
fn report(
    threads: usize,
    repeats: usize,
    images: usize,
    test: usize,
    points: usize,
    runners: &[Runner],
    secs: &[Vec<f64>],
    losses: &[Vec<f64>],
) {
    println!();
    println!(
        "bench surface: paper network (188,810 parameters), {points} points on a line of a plane, \
         {images} training + {test} test images (synthetic), chunks of 1,000, CPU, {threads} threads, \
         {repeats} interleaved repeats"
    );
    println!("per point: load the weights, re-estimate BN on the training set, evaluate both sets");
    println!(
        "  {:<36} {:>12} {:>12} {:>16} {:>22}",
        "implementation", "s / point", "points / min", "one pass is x", "max |train loss diff|"
    );
    let base = median(&secs[0]);
    for (ri, r) in runners.iter().enumerate() {
        let m = median(&secs[ri]);
        let diff = losses[ri]
            .iter()
            .zip(&losses[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f64, f64::max);
        println!(
            "  {:<36} {:>12.3} {:>12.1} {:>16.2} {:>22.2e}",
            r.name,
            m,
            60.0 / m,
            m / base,
            diff
        );
    }
    println!(
        "  (\"one pass is x\": this implementation's time per point / landscape's; \
         loss-landscape keeps the centre's BN statistics, so its losses differ by design)"
    );
    super::train::print_cpu_times();
}
