//! `cargo xtask bench train`: images per second for an SGD step at batch 100
//! and for a BGD epoch on 5,000 images of the paper network (widths 32, 64,
//! 152, 56; 188,810 parameters), landscape-net (`crates/net/examples/train_bench.rs`,
//! release) against PyTorch eager (`crates/net/benches/train_bench.py`) run
//! in the same torch 2.13 install that libtorch comes from, on the CPU with
//! the same thread count.
//!
//! Runs are interleaved (Rust, PyTorch, PyTorch channels-last, in an order
//! that alternates between repeats), every process does a warm-up epoch first,
//! and the table reports medians over all timed epochs. The headline ratio is
//! against the textbook eager loop (default NCHW layout); PyTorch with
//! `channels_last` (the layout landscape-net uses internally) is printed for
//! reference. The machine's single-precision GEMM throughput (`torch.mm` on
//! 2048 x 2048, same threads) tells how far both are from the limit.
//!
//! Environment: `LANDSCAPE_BENCH_THREADS` (default 2), `LANDSCAPE_BENCH_REPEATS`
//! (default 5).
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};

use crate::setup::TorchEnv;
use crate::util::{self, project_root, say, target_dir};

/// Forward multiply-adds per image of the paper network: per layer
/// `out_h * out_w * c_out * c_in * 9` for 32 -> 16 -> 8 -> 4 -> 2 -> 1.
const FORWARD_MACS: f64 =
    (16 * 16 * 32 * 27 + 8 * 8 * 64 * 288 + 4 * 4 * 152 * 576 + 2 * 2 * 56 * 1368 + 10 * 504)
        as f64;
/// Training FLOPs per image: forward, input gradient and weight gradient
/// (3 x the forward FLOPs, 2 per multiply-add).
const TRAIN_FLOPS: f64 = 3.0 * 2.0 * FORWARD_MACS;

pub(super) struct Runner {
    pub(super) name: &'static str,
    pub(super) cmd: Vec<String>,
}

/// One benchmark: the mode and its size flags.
struct Case {
    title: &'static str,
    mode: &'static str,
    images: usize,
    epochs: usize,
    note: &'static str,
}

pub(super) fn env_usize(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name}={v} is not a positive integer")),
        Err(_) => Ok(default),
    }
}

/// The `"seconds":[..]` list of a JSON line printed by either side.
pub(super) fn seconds(line: &str) -> Result<Vec<f64>> {
    numbers(line, "seconds")
}

/// The `"key":[..]` list of numbers of a JSON line printed by either side.
pub(super) fn numbers(line: &str, key: &str) -> Result<Vec<f64>> {
    let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    let open = format!("\"{key}\":[");
    let start = compact
        .find(&open)
        .with_context(|| format!("no \"{key}\" field"))?
        + open.len();
    let end = compact[start..]
        .find(']')
        .with_context(|| format!("unterminated \"{key}\" list"))?
        + start;
    compact[start..end]
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<f64>()
                .with_context(|| format!("bad number `{s}`"))
        })
        .collect()
}

fn run_once(runner: &Runner, args: &[String], site: &PathBuf) -> Result<Vec<f64>> {
    let (shown, line) = run_line(runner, args, site)?;
    seconds(&line).with_context(|| format!("reading the output of {shown}: {line}"))
}

/// Runs `runner` with `args` and returns its command line (for errors) and
/// the last line it printed with a `"seconds"` field.
pub(super) fn run_line(
    runner: &Runner,
    args: &[String],
    site: &PathBuf,
) -> Result<(String, String)> {
    let mut cmd = Command::new(&runner.cmd[0]);
    cmd.args(&runner.cmd[1..])
        .args(args)
        .env("PYTHONPATH", site);
    let shown = format!("{cmd:?}");
    let before = children_cpu();
    let out = cmd
        .output()
        .with_context(|| format!("could not start {shown}"))?;
    let after = children_cpu();
    let mode = args.first().filter(|a| !a.starts_with('-'));
    let key = match mode {
        Some(m) => format!("{} {m}", runner.name),
        None => runner.name.to_string(),
    };
    if let Ok(mut log) = CPU_LOG.lock() {
        let entry = match log.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e,
            None => {
                log.push((key, Vec::new()));
                let last = log.len() - 1;
                &mut log[last]
            }
        };
        entry.1.push(CpuTime {
            user: after.user - before.user,
            sys: after.sys - before.sys,
        });
    }
    if !out.status.success() {
        bail!(
            "{shown} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.contains("\"seconds\""))
        .with_context(|| format!("{shown} printed no result"))?;
    Ok((shown, line.to_owned()))
}

/// User and system CPU seconds.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct CpuTime {
    user: f64,
    sys: f64,
}

/// User and system CPU seconds of every process run through [`run_line`],
/// by runner (and mode), in the order first seen.
static CPU_LOG: Mutex<Vec<(String, Vec<CpuTime>)>> = Mutex::new(Vec::new());

/// CPU time of this process's waited-for children so far (`getrusage`,
/// `RUSAGE_CHILDREN`); the difference around one child's run is its own.
fn children_cpu() -> CpuTime {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one rusage into the valid, zeroed buffer; on
    // failure the buffer stays zeroed, which is still a valid rusage.
    #[allow(unsafe_code)]
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    CpuTime {
        user: secs(usage.ru_utime),
        sys: secs(usage.ru_stime),
    }
}

/// Prints the median user and system time per process of every runner (and
/// mode) run so far, so that time spent in the kernel (page faults of large
/// tensors, see `LANDSCAPE_MALLOC`) shows beside the ratios.
#[allow(clippy::print_stdout)]
pub(super) fn print_cpu_times() {
    let Ok(log) = CPU_LOG.lock() else {
        return;
    };
    println!();
    println!("CPU time per process (medians; whole process: start-up, warm-up and timed part):");
    println!(
        "  {:<44} {:>5} {:>10} {:>10} {:>10}",
        "process", "runs", "user s", "system s", "system %"
    );
    for (key, runs) in log.iter() {
        let user: Vec<f64> = runs.iter().map(|r| r.user).collect();
        let sys: Vec<f64> = runs.iter().map(|r| r.sys).collect();
        let share: Vec<f64> = runs
            .iter()
            .map(|r| 100.0 * r.sys / (r.user + r.sys).max(1e-9))
            .collect();
        println!(
            "  {:<44} {:>5} {:>10.2} {:>10.2} {:>9.1}%",
            key,
            runs.len(),
            median(&user),
            median(&sys),
            median(&share)
        );
    }
}

pub(super) fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

pub fn run(env: &TorchEnv) -> Result<()> {
    let Some(site) = env.python_site.clone() else {
        bail!("the PyTorch baseline needs the torch Python package from `cargo xtask setup` (a LIBTORCH set by hand has none)");
    };
    let threads = env_usize("LANDSCAPE_BENCH_THREADS", 2)?.max(1);
    let repeats = env_usize("LANDSCAPE_BENCH_REPEATS", 5)?.max(1);

    say("building landscape-net's train_bench example (release)");
    util::run_checked(util::cargo().args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "landscape-net",
        "--example",
        "train_bench",
    ]))?;
    let exe = target_dir()
        .join("release")
        .join("examples")
        .join("train_bench");
    if !exe.exists() {
        bail!("{} was not built", exe.display());
    }
    let script = project_root().join("crates/net/benches/train_bench.py");
    let py = |extra: Option<&str>| {
        let mut cmd = vec!["python3".to_string(), script.display().to_string()];
        cmd.extend(extra.map(str::to_string));
        cmd
    };
    let runners = [
        Runner {
            name: "landscape-net",
            cmd: vec![exe.display().to_string()],
        },
        Runner {
            name: "pytorch eager",
            cmd: py(None),
        },
        Runner {
            name: "pytorch eager, channels_last",
            cmd: py(Some("--channels-last")),
        },
    ];
    // The Python script takes its flags after the mode; keep the mode first for both.
    let cases = [
        Case {
            title: "SGD step, batch 100",
            mode: "sgd",
            images: 2000,
            epochs: 2,
            note: "20 steps/epoch",
        },
        Case {
            title: "BGD epoch, 5,000 images (chunks of 500)",
            mode: "bgd",
            images: 5000,
            epochs: 1,
            note: "1 step/epoch",
        },
    ];

    say("GEMM peak: torch.mm 2048 x 2048 (f32)");
    let gemm_flops = 2.0 * 2048f64.powi(3);
    let gemm_args: Vec<String> = [
        "gemm",
        "--threads",
        &threads.to_string(),
        "--epochs",
        "7",
        "--size",
        "2048",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut gemm = Vec::new();
    let mut gemm_all = Vec::new();
    gemm.extend(run_once(&runners[1], &gemm_args, &site)?);
    let all_cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(threads);
    let mut gemm_all_args = gemm_args.clone();
    gemm_all_args[2] = all_cores.to_string();
    gemm_all.extend(run_once(&runners[1], &gemm_all_args, &site)?);

    let mut results: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); runners.len()]; cases.len()];
    for rep in 0..repeats {
        for (ci, case) in cases.iter().enumerate() {
            let mut order: Vec<usize> = (0..runners.len()).collect();
            if (rep + ci) % 2 == 1 {
                order.reverse();
            }
            for ri in order {
                let args: Vec<String> = vec![
                    case.mode.to_string(),
                    "--threads".into(),
                    threads.to_string(),
                    "--images".into(),
                    case.images.to_string(),
                    "--epochs".into(),
                    case.epochs.to_string(),
                    "--warmup".into(),
                    "1".into(),
                ];
                say(format!(
                    "repeat {}/{repeats}: {} {}",
                    rep + 1,
                    runners[ri].name,
                    case.mode
                ));
                let secs = run_once(&runners[ri], &args, &site)?;
                results[ci][ri].extend(secs);
            }
        }
    }
    report(
        threads, repeats, &runners, &cases, &results, gemm_flops, &gemm, all_cores, &gemm_all,
    );
    Ok(())
}

/// Benchmarks print their numbers.
#[allow(clippy::print_stdout, clippy::too_many_arguments)]
fn report(
    threads: usize,
    repeats: usize,
    runners: &[Runner],
    cases: &[Case],
    results: &[Vec<Vec<f64>>],
    gemm_flops: f64,
    gemm: &[f64],
    all_cores: usize,
    gemm_all: &[f64],
) {
    println!();
    println!("bench train: paper network (widths 32,64,152,56; 188,810 parameters), CPU, {threads} threads, {repeats} interleaved repeats");
    println!(
        "training cost ~ {:.1} MFLOP per image (3 x forward)",
        TRAIN_FLOPS / 1e6
    );
    let best = |xs: &[f64]| xs.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "SGEMM (torch.mm 2048^2): {:.1} GFLOP/s median, {:.1} best with {threads} threads; {:.1} best with {all_cores} threads",
        gemm_flops / median(gemm) / 1e9,
        gemm_flops / best(gemm) / 1e9,
        gemm_flops / best(gemm_all) / 1e9,
    );
    for (ci, case) in cases.iter().enumerate() {
        println!();
        println!(
            "{} ({}, {} images per timed epoch):",
            case.title, case.note, case.images
        );
        println!(
            "  {:<32} {:>12} {:>12} {:>10} {:>10} {:>8}",
            "implementation", "images/s", "best img/s", "GFLOP/s", "% SGEMM", "epochs"
        );
        for (ri, r) in runners.iter().enumerate() {
            let xs = &results[ci][ri];
            let ips = case.images as f64 / median(xs);
            let gflops = ips * TRAIN_FLOPS / 1e9;
            println!(
                "  {:<32} {:>12.1} {:>12.1} {:>10.1} {:>9.0}% {:>8}",
                r.name,
                ips,
                case.images as f64 / best(xs),
                gflops,
                100.0 * gflops * 1e9 / (gemm_flops / best(gemm)),
                xs.len()
            );
        }
        let rust = case.images as f64 / median(&results[ci][0]);
        let eager = case.images as f64 / median(&results[ci][1]);
        let cl = case.images as f64 / median(&results[ci][2]);
        println!(
            "  ratio landscape-net / pytorch eager: {:.2}   (vs pytorch channels_last: {:.2})",
            rust / eager,
            rust / cl
        );
    }
    print_cpu_times();
}
