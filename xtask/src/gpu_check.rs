//! `cargo xtask gpu-check`: the one command that checks the CUDA path on a
//! machine with an NVIDIA GPU, and checks what it can on one without.
//!
//! 1. Builds the release CLI and prints the libtorch libraries it NEEDs
//!    (`libtorch_cuda.so` must be among them when the libtorch is a CUDA
//!    build) and the GPUs `nvidia-smi` lists.
//! 2. Without a GPU: checks that `--device cuda` fails with an error naming
//!    the reason, says that no GPU was found and what was therefore not run,
//!    and stops (an error with `--require-gpu`).
//! 3. With a GPU: the tests of landscape-net with `LANDSCAPE_REQUIRE_CUDA=1`
//!    (the device-generic ones compare CUDA results with the CPU's); every
//!    `reproduce` experiment at smoke scale, then `surface line`, `hessian`
//!    and `pca` on fig14's store and `import` (+ `surface line`) of the
//!    PyTorch fixtures, once with `--device cpu` and once with `--device
//!    cuda`, comparing every number of their `summary.json`, `hessian.json`,
//!    `pca.json` and `points.csv` within `|a - b| <= atol + rtol max(|a|, |b|)`
//!    and every verdict exactly; and the peak GPU memory of one exact
//!    full-batch step at 50,000 images against the figure in
//!    docs/protocols.md.
//!
//! `--against cpu` runs step 3 with the CPU in place of CUDA on any machine:
//! every comparison is then exact (tolerance 0), which checks this harness
//! and the CPU's determinism.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::util::{self, project_root};
use crate::{reproduce, setup};

#[path = "../../crates/net/src/elf.rs"]
mod elf;

/// Every `landscape reproduce` experiment, as the binary's registry lists
/// them (`landscape reproduce --list`): xtask keeps no list of its own.
fn experiments(bin: &Path) -> Result<Vec<String>> {
    let out = Command::new(bin)
        .args(["reproduce", "--list"])
        .output()
        .with_context(|| format!("starting {} reproduce --list", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} reproduce --list failed: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// docs/protocols.md ("Memory of an exact full-batch step"): about 9.3 GB at
/// the peak of the backward pass plus 0.6 GB of training images, measured on
/// the CPU; "count about 10 GB ... more on a GPU".
pub const DOCS_FULL_BATCH_GB: f64 = 9.9;
/// The docs advise `bgd.ghost_batch` below this much GPU memory: a measured
/// peak above it means the docs are wrong.
pub const DOCS_GHOST_BATCH_BELOW_GB: f64 = 16.0;

#[derive(clap::Args)]
pub struct GpuCheckArgs {
    /// Output folder of the runs (default: runs/gpu-check); emptied first.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// CIFAR-10 folder (default: the installed data, installed first if missing).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The official CIFAR-10 .tar.gz to install from when no data is installed.
    #[arg(long)]
    pub archive: Option<PathBuf>,
    /// Only these experiments (comma-separated; default: every one that
    /// `landscape reproduce --list` names). `surface`, `hessian` and `pca`
    /// run on fig14's store, so only when fig14 is listed.
    #[arg(long, value_delimiter = ',')]
    pub experiments: Vec<String>,
    /// Relative tolerance of CPU-vs-CUDA numbers.
    #[arg(long, default_value_t = 0.02)]
    pub rtol: f64,
    /// Absolute tolerance of CPU-vs-CUDA numbers (error rates are fractions:
    /// 0.02 is one image in 50).
    #[arg(long, default_value_t = 0.02)]
    pub atol: f64,
    /// The device compared with the CPU: `cuda`, or `cpu` to run the whole
    /// comparison on a machine without a GPU (then with tolerance 0).
    #[arg(long, default_value = "cuda")]
    pub against: String,
    /// Fail when no GPU is found (for GPU CI jobs).
    #[arg(long)]
    pub require_gpu: bool,
    /// Skip the device tests (`cargo test` with LANDSCAPE_REQUIRE_CUDA=1).
    #[arg(long)]
    pub skip_tests: bool,
    /// Skip the peak-memory measurement of the exact full-batch step.
    #[arg(long)]
    pub skip_memory: bool,
}

/// The outcome of comparing the files of one step on the two devices.
#[derive(Default, Debug)]
struct Comparison {
    /// Numbers compared.
    numbers: usize,
    /// Verdicts and flags compared exactly.
    exact: usize,
    /// The largest relative deviation: (where, cpu, other, |a-b|/max(|a|,|b|)).
    worst: Option<(String, f64, f64, f64)>,
    /// What differed beyond the tolerance.
    mismatches: Vec<String>,
}

#[derive(Clone, Copy, Debug)]
struct Tolerance {
    rtol: f64,
    atol: f64,
}

impl Tolerance {
    fn close(self, a: f64, b: f64) -> bool {
        if a.is_nan() && b.is_nan() {
            return true;
        }
        a == b || (a - b).abs() <= self.atol + self.rtol * a.abs().max(b.abs())
    }
}

/// Keys of run records that differ between devices by nature (timings, the
/// device itself, versions, paths): left out of the comparison.
fn skipped(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    p.ends_with("_s")
        || p.contains("_s.")
        || p.contains("_s[")
        || [
            "time", "seconds", "elapsed", "wall", "threads", "device", "bytes", "memory",
            "version", "revision", "command", "path", "source", "dir",
        ]
        .iter()
        .any(|w| p.contains(w))
}

impl Comparison {
    fn number(&mut self, tol: Tolerance, at: &str, a: f64, b: f64) {
        self.numbers += 1;
        let scale = a.abs().max(b.abs());
        let rel = if scale > 0.0 {
            (a - b).abs() / scale
        } else {
            0.0
        };
        if self.worst.as_ref().is_none_or(|w| rel > w.3) {
            self.worst = Some((at.to_owned(), a, b, rel));
        }
        if !tol.close(a, b) {
            self.mismatches.push(format!("{at}: cpu {a}, other {b}"));
        }
    }

    fn json(&mut self, tol: Tolerance, at: &str, a: &Value, b: &Value) {
        if skipped(at) {
            return;
        }
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => self.number(
                tol,
                at,
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            ),
            (Value::Bool(x), Value::Bool(y)) => {
                self.exact += 1;
                if x != y {
                    self.mismatches.push(format!("{at}: cpu {x}, other {y}"));
                }
            }
            (Value::String(x), Value::String(y)) => {
                if at.to_ascii_lowercase().contains("verdict") {
                    self.exact += 1;
                    if x != y {
                        self.mismatches
                            .push(format!("{at}: cpu {x:?}, other {y:?}"));
                    }
                }
            }
            (Value::Array(x), Value::Array(y)) => {
                if x.len() != y.len() {
                    self.mismatches.push(format!(
                        "{at}: cpu has {} entries, other {}",
                        x.len(),
                        y.len()
                    ));
                }
                for (i, (x, y)) in x.iter().zip(y).enumerate() {
                    self.json(tol, &format!("{at}[{i}]"), x, y);
                }
            }
            (Value::Object(x), Value::Object(y)) => {
                for (k, xv) in x {
                    let here = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    match y.get(k) {
                        Some(yv) => self.json(tol, &here, xv, yv),
                        None if !skipped(&here) => {
                            self.mismatches.push(format!("{here}: only on the cpu"))
                        }
                        None => {}
                    }
                }
                for k in y.keys().filter(|k| !x.contains_key(*k)) {
                    let here = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    if !skipped(&here) {
                        self.mismatches
                            .push(format!("{here}: only on the other device"));
                    }
                }
            }
            (Value::Null, Value::Null) => {}
            (x, y) => self
                .mismatches
                .push(format!("{at}: cpu {x}, other {y} (different kinds)")),
        }
    }

    fn csv(&mut self, tol: Tolerance, file: &str, a: &str, b: &str) {
        let (ra, rb): (Vec<Vec<String>>, Vec<Vec<String>>) = (
            a.lines().map(split_csv).collect(),
            b.lines().map(split_csv).collect(),
        );
        if ra.len() != rb.len() {
            self.mismatches.push(format!(
                "{file}: cpu has {} lines, other {}",
                ra.len(),
                rb.len()
            ));
        }
        let header = ra.first().cloned().unwrap_or_default();
        for (i, (x, y)) in ra.iter().zip(&rb).enumerate() {
            if x.len() != y.len() {
                self.mismatches
                    .push(format!("{file} line {}: different column counts", i + 1));
                continue;
            }
            for (j, (cx, cy)) in x.iter().zip(y).enumerate() {
                let col = header.get(j).map_or("?", String::as_str);
                if i > 0 && skipped(col) {
                    continue;
                }
                let at = format!("{file} line {} `{col}`", i + 1);
                match (cx.parse::<f64>(), cy.parse::<f64>()) {
                    (Ok(p), Ok(q)) => self.number(tol, &at, p, q),
                    _ => {
                        self.exact += 1;
                        if cx != cy {
                            self.mismatches
                                .push(format!("{at}: cpu {cx:?}, other {cy:?}"));
                        }
                    }
                }
            }
        }
    }
}

/// The fields of one CSV line (double quotes around a field, `""` inside).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    out.push(field);
    out
}

/// Compares `files` (relative paths) of the two output folders.
fn compare(tol: Tolerance, cpu: &Path, other: &Path, files: &[&str]) -> Result<Comparison> {
    let mut c = Comparison::default();
    for f in files {
        let (pa, pb) = (cpu.join(f), other.join(f));
        let a =
            std::fs::read_to_string(&pa).with_context(|| format!("reading {}", pa.display()))?;
        let b =
            std::fs::read_to_string(&pb).with_context(|| format!("reading {}", pb.display()))?;
        if f.ends_with(".json") {
            let va: Value =
                serde_json::from_str(&a).with_context(|| format!("{}", pa.display()))?;
            let vb: Value =
                serde_json::from_str(&b).with_context(|| format!("{}", pb.display()))?;
            c.json(tol, f, &va, &vb);
        } else {
            c.csv(tol, f, &a, &b);
        }
    }
    Ok(c)
}

/// `nvidia-smi`'s GPUs (name, driver, memory), or why there are none.
fn nvidia_smi() -> std::result::Result<Vec<String>, String> {
    let out = Command::new("nvidia-smi")
        .args([
            "--query-gpu=index,name,driver_version,memory.total",
            "--format=csv,noheader",
        ])
        .output()
        .map_err(|e| format!("nvidia-smi could not be run ({e}): no NVIDIA driver installed"))?;
    if !out.status.success() {
        return Err(format!(
            "nvidia-smi failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let gpus: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    if gpus.is_empty() {
        return Err("nvidia-smi lists no GPU".to_owned());
    }
    Ok(gpus)
}

/// GPU 0's used memory in MiB, per `nvidia-smi`.
fn gpu_used_mib() -> Option<f64> {
    let out = Command::new("nvidia-smi")
        .args([
            "--query-gpu=memory.used",
            "--format=csv,noheader,nounits",
            "-i",
            "0",
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// The libtorch library folder the build links (`$LIBTORCH/lib`, else the
/// workspace's `.libtorch/lib`).
fn libtorch_lib() -> PathBuf {
    let root = std::env::var_os("LIBTORCH")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                project_root().join(p)
            }
        })
        .unwrap_or_else(|| project_root().join(".libtorch"));
    root.join("lib")
}

/// Prints the libtorch/CUDA libraries `bin` NEEDs; an error when the
/// libtorch is a CUDA build and `libtorch_cuda.so` is not among them.
fn check_links(bin: &Path) -> Result<()> {
    let needed = elf::elf_needed(bin).map_err(anyhow::Error::msg)?;
    let shown: Vec<&str> = needed
        .iter()
        .map(String::as_str)
        .filter(|n| {
            ["torch", "c10", "cuda", "cudnn", "cublas", "blas"]
                .iter()
                .any(|w| n.contains(w))
        })
        .collect();
    util::say(format!("{} NEEDs {}", bin.display(), shown.join(", ")));
    let lib = libtorch_lib();
    if lib.join("libtorch_cuda.so").is_file() {
        if !needed.iter().any(|n| n == "libtorch_cuda.so") {
            bail!(
                "{} is a CUDA libtorch but {} does not NEED libtorch_cuda.so: libtorch would \
                 never see a GPU (see crates/net/build.rs)",
                lib.display(),
                bin.display()
            );
        }
        util::say(format!(
            "libtorch at {} is a CUDA build: libtorch_cuda.so is linked",
            lib.display()
        ));
    } else {
        util::say(format!(
            "libtorch at {} has no libtorch_cuda.so (a CPU-only build): it cannot use a GPU",
            lib.display()
        ));
    }
    Ok(())
}

/// Runs `bin args` to completion (output to `log`), failing with the log's tail.
fn landscape(bin: &Path, args: &[String], log: &Path) -> Result<f64> {
    let t = Instant::now();
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let status = Command::new(bin)
        .current_dir(project_root())
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .with_context(|| format!("starting {}", bin.display()))?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "`landscape {}` failed ({status}); log {}:\n{}",
            args.join(" "),
            log.display(),
            tail.join("\n")
        );
    }
    Ok(t.elapsed().as_secs_f64())
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// One step run on both devices: its name, the command per output folder,
/// and the files compared.
struct Step {
    name: String,
    files: Vec<&'static str>,
}

pub fn run(args: &GpuCheckArgs) -> Result<()> {
    let t0 = Instant::now();
    let against = args.against.to_ascii_lowercase();
    if against != "cuda" && against != "cpu" {
        bail!("--against must be cuda or cpu, found `{}`", args.against);
    }
    let env = setup::run(&setup::SetupArgs::default())?;
    util::say("building the landscape CLI (release)");
    let mut build = util::cargo();
    build.args(["build", "--release", "--quiet", "-p", "landscape-cli"]);
    env.apply(&mut build);
    util::run_checked(&mut build)?;
    let bin = util::target_dir().join("release").join("landscape");

    // 1. Linked libraries and GPUs.
    check_links(&bin)?;
    let gpus = nvidia_smi();
    match &gpus {
        Ok(list) => {
            for g in list {
                util::say(format!("GPU: {g}"));
            }
        }
        Err(reason) => util::say(format!("no GPU found: {reason}")),
    }

    let out = args
        .out
        .clone()
        .unwrap_or_else(|| project_root().join("runs").join("gpu-check"));
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("emptying {}", out.display()))?;
    }
    std::fs::create_dir_all(&out)?;
    let data_args: Vec<String> = match &args.data {
        Some(d) => vec!["--data".to_owned(), path(d)],
        None => Vec::new(),
    };

    // 2. Without a GPU: the clear error, then stop.
    if gpus.is_err() || against == "cpu" {
        let refused = out.join("refused");
        let log = out.join("refused.log");
        let mut a = strings(&[
            "reproduce",
            "fig14",
            "--scale",
            "smoke",
            "--device",
            "cuda",
            "--out",
        ]);
        a.push(path(&refused));
        a.extend(data_args.iter().cloned());
        match landscape(&bin, &a, &log) {
            Ok(_) if gpus.is_ok() => {}
            Ok(_) => bail!(
                "`--device cuda` succeeded although nvidia-smi found no GPU ({})",
                log.display()
            ),
            Err(e) => {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let line = text
                    .lines()
                    .find(|l| l.contains("device `cuda` is not available"))
                    .map(str::to_owned);
                match line {
                    Some(l) if gpus.is_err() => util::say(format!(
                        "`--device cuda` is refused with a reason: {}",
                        l.trim()
                    )),
                    _ => return Err(e.context("`--device cuda` failed without naming the reason")),
                }
            }
        }
    }
    let all_experiments = experiments(&bin)?;
    if gpus.is_err() && against == "cuda" {
        let reason = gpus.as_ref().err().cloned().unwrap_or_default();
        let msg = format!(
            "no GPU found ({reason}). Checked here: the linked libraries and the \
             `--device cuda` error. NOT run: the device tests with LANDSCAPE_REQUIRE_CUDA=1, \
             the CPU-vs-CUDA comparison of the {} experiments and of surface, hessian, pca \
             and import, and the peak GPU memory of an exact full-batch step. Run \
             `cargo xtask gpu-check` on a machine with an NVIDIA GPU (or `--against cpu` \
             to exercise the comparison here)",
            all_experiments.len()
        );
        if args.require_gpu {
            bail!("{msg}");
        }
        util::say(msg);
        return Ok(());
    }

    if args.data.is_none() {
        reproduce::install_data_if_missing(&bin, args.archive.clone(), "gpu-check")?;
    }

    // 3a. Device tests.
    if !args.skip_tests {
        util::say("device tests (landscape-net, debug build: its device assertions are on)");
        let mut t = util::cargo();
        t.args(["test", "-p", "landscape-net", "--lib", "--tests"]);
        if against == "cuda" {
            t.env("LANDSCAPE_REQUIRE_CUDA", "1");
        }
        env.apply(&mut t);
        util::run_checked(&mut t)?;
    }

    // 3b. The same commands on both devices.
    let tol = if against == "cpu" {
        Tolerance {
            rtol: 0.0,
            atol: 0.0,
        }
    } else {
        Tolerance {
            rtol: args.rtol,
            atol: args.atol,
        }
    };
    let selected: Vec<String> = if args.experiments.is_empty() {
        all_experiments.clone()
    } else {
        args.experiments.clone()
    };
    for e in &selected {
        if !all_experiments.contains(e) {
            bail!(
                "--experiments: unknown experiment `{e}` (one of {})",
                all_experiments.join(", ")
            );
        }
    }
    let devices = ["cpu", against.as_str()];
    let dirs = [out.join("cpu"), out.join(format!("{against}-run"))];
    let fixtures = project_root().join("crates/net/tests/fixtures/pytorch");
    let mut steps: Vec<(Step, Vec<Vec<Vec<String>>>)> = Vec::new();
    for e in &selected {
        let cmds = dirs
            .iter()
            .zip(devices)
            .map(|(d, dev)| {
                let mut a =
                    strings(&["reproduce", e, "--scale", "smoke", "--device", dev, "--out"]);
                a.push(path(&d.join(e)));
                a.extend(data_args.iter().cloned());
                vec![a]
            })
            .collect();
        steps.push((
            Step {
                name: e.clone(),
                files: vec!["summary.json"],
            },
            cmds,
        ));
    }
    if selected.iter().any(|e| e == "fig14") {
        let per = |f: &dyn Fn(&Path, &str) -> Vec<Vec<String>>| -> Vec<Vec<Vec<String>>> {
            dirs.iter().zip(devices).map(|(d, dev)| f(d, dev)).collect()
        };
        let with = |mut a: Vec<String>, dev: &str| {
            a.extend(strings(&["--device", dev]));
            a.extend(data_args.iter().cloned());
            a
        };
        steps.push((
            Step {
                name: "surface".into(),
                files: vec!["points.csv", "summary.json"],
            },
            per(&|d, dev| {
                let mut a = strings(&[
                    "surface", "line", "--from", "0", "--to", "1", "--points", "5", "--store",
                ]);
                a.extend([
                    path(&d.join("fig14/store")),
                    "--out".into(),
                    path(&d.join("surface")),
                ]);
                vec![with(a, dev)]
            }),
        ));
        steps.push((
            Step {
                name: "hessian".into(),
                files: vec!["hessian.json"],
            },
            per(&|d, dev| {
                let mut a = strings(&[
                    "hessian",
                    "--id",
                    "1",
                    "--top-k",
                    "2",
                    "--lanczos-steps",
                    "12",
                    "--probes",
                    "4",
                    "--slq-runs",
                    "2",
                    "--slq-steps",
                    "8",
                    "--seeds",
                    "0,1",
                    // A small degeneracy count (the default at one snapshot,
                    // 30 float64 probes up to degree 4,000, takes many minutes
                    // on a CPU), compared like every other number.
                    "--count-probes",
                    "4",
                    "--count-max-degree",
                    "200",
                    "--store",
                ]);
                a.extend([
                    path(&d.join("fig14/store")),
                    "--out".into(),
                    path(&d.join("hessian")),
                ]);
                vec![with(a, dev)]
            }),
        ));
        steps.push((
            Step {
                name: "pca".into(),
                files: vec!["pca.json", "summary.json"],
            },
            per(&|d, dev| {
                let mut a = strings(&["pca", "--filter", "run=main", "--points", "5", "--store"]);
                a.extend([
                    path(&d.join("fig14/store")),
                    "--out".into(),
                    path(&d.join("pca")),
                ]);
                vec![with(a, dev)]
            }),
        ));
    }
    steps.push((
        Step {
            name: "import".into(),
            files: vec!["points.csv", "summary.json"],
        },
        dirs.iter()
            .zip(devices)
            .map(|(d, dev)| {
                let store = path(&d.join("import/store"));
                let mut import = strings(&[
                    "import",
                    "--train-size",
                    "100",
                    "--test-size",
                    "50",
                    "--from",
                ]);
                import.extend([
                    path(&fixtures.join("small.safetensors")),
                    "--from".into(),
                    path(&fixtures.join("other.pt")),
                    "--store".into(),
                    store.clone(),
                    "--device".into(),
                    dev.to_owned(),
                ]);
                import.extend(data_args.iter().cloned());
                let mut line = strings(&[
                    "surface", "line", "--from", "0", "--to", "1", "--points", "5", "--store",
                ]);
                line.extend([
                    store,
                    "--out".into(),
                    path(&d.join("import-line")),
                    "--device".into(),
                    dev.to_owned(),
                ]);
                line.extend(data_args.iter().cloned());
                vec![import, line]
            })
            .collect(),
    ));

    let mut failures = Vec::new();
    let mut report = Vec::new();
    for (step, cmds) in &steps {
        let mut secs = [0.0f64; 2];
        let mut failed = false;
        for (k, list) in cmds.iter().enumerate() {
            for (j, a) in list.iter().enumerate() {
                let log = out.join(format!("{}-{}-{j}.log", step.name, devices[k]));
                match landscape(&bin, a, &log) {
                    Ok(s) => secs[k] += s,
                    Err(e) => {
                        failures.push(format!("{} on {}: {e:#}", step.name, devices[k]));
                        failed = true;
                    }
                }
            }
        }
        if failed {
            continue;
        }
        let (ca, cb) = match step.name.as_str() {
            "surface" | "hessian" | "pca" => (dirs[0].join(&step.name), dirs[1].join(&step.name)),
            "import" => (dirs[0].join("import-line"), dirs[1].join("import-line")),
            e => (dirs[0].join(e), dirs[1].join(e)),
        };
        let c = compare(tol, &ca, &cb, &step.files)?;
        let worst = c.worst.as_ref().map_or_else(
            || "-".to_owned(),
            |(at, a, b, r)| format!("{r:.2e} at {at} ({a} vs {b})"),
        );
        let line = format!(
            "{:<14} cpu {:>6.1} s  {against} {:>6.1} s  {} numbers, {} exact, worst {}  {}",
            step.name,
            secs[0],
            secs[1],
            c.numbers,
            c.exact,
            worst,
            if c.mismatches.is_empty() {
                "ok"
            } else {
                "MISMATCH"
            }
        );
        util::say(&line);
        report.push(line);
        for m in c.mismatches.iter().take(10) {
            failures.push(format!("{}: {m}", step.name));
        }
        if c.numbers == 0 {
            failures.push(format!(
                "{}: nothing was compared in {:?}",
                step.name, step.files
            ));
        }
    }

    // 3c. Peak GPU memory of one exact full-batch step.
    if against == "cuda" && !args.skip_memory {
        match peak_memory(&env) {
            Ok(gb) => {
                let line = format!(
                    "exact full-batch step, 50,000 images: peak {gb:.1} GB on the GPU (docs: \
                     about {DOCS_FULL_BATCH_GB} GB on the CPU, \"more on a GPU\"; ratio {:.2})",
                    gb / DOCS_FULL_BATCH_GB
                );
                util::say(&line);
                report.push(line);
                if gb > DOCS_GHOST_BATCH_BELOW_GB {
                    failures.push(format!(
                        "the exact full-batch step needs {gb:.1} GB, more than the \
                         {DOCS_GHOST_BATCH_BELOW_GB} GB below which docs/protocols.md advises \
                         ghost batches: update the docs"
                    ));
                }
            }
            Err(e) => failures.push(format!("peak memory: {e:#}")),
        }
    }

    std::fs::write(out.join("report.txt"), report.join("\n") + "\n")?;
    util::say(format!(
        "tolerance |a - b| <= {} + {} max(|a|, |b|); verdicts exact; {:.0} s in all; report in {}",
        tol.atol,
        tol.rtol,
        t0.elapsed().as_secs_f64(),
        out.join("report.txt").display()
    ));
    if !failures.is_empty() {
        for f in &failures {
            util::say(format!("FAILED {f}"));
        }
        bail!("gpu-check: {} failure(s)", failures.len());
    }
    util::say("gpu-check: all checks passed");
    Ok(())
}

/// Peak GPU memory (GB, 1e9 bytes) of one exact full-batch BGD step at
/// 50,000 images (crates/net/examples/train_bench.rs, chunk 50,000), sampled
/// with `nvidia-smi` every ~20 ms above the memory used before it started.
fn peak_memory(env: &setup::TorchEnv) -> Result<f64> {
    let mut build = util::cargo();
    build.args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "landscape-net",
        "--example",
        "train_bench",
    ]);
    env.apply(&mut build);
    util::run_checked(&mut build)?;
    let exe = project_root().join("target/release/examples/train_bench");
    let base = gpu_used_mib().context("nvidia-smi reports no memory use of GPU 0")?;
    let mut child = Command::new(&exe)
        .args([
            "bgd", "--images", "50000", "--chunk", "50000", "--epochs", "1", "--warmup", "0",
            "--device", "cuda",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let mut peak = base;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Some(used) = gpu_used_mib() {
            peak = peak.max(used);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !status.success() {
        bail!("{} failed with {status}", exe.display());
    }
    Ok((peak - base) * 1024.0 * 1024.0 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: Tolerance = Tolerance {
        rtol: 0.01,
        atol: 0.001,
    };

    #[test]
    fn json_numbers_within_tolerance_and_verdicts_exact() {
        let a: Value = serde_json::from_str(
            r#"{"loss": 1.0, "verdicts": [{"verdict": "holds"}], "timings_s": {"train": 3.0},
                "device": "Cpu", "errors": [0.1, 0.2]}"#,
        )
        .unwrap();
        let b: Value = serde_json::from_str(
            r#"{"loss": 1.005, "verdicts": [{"verdict": "holds"}], "timings_s": {"train": 1.0},
                "device": "Cuda(0)", "errors": [0.1, 0.2005]}"#,
        )
        .unwrap();
        let mut c = Comparison::default();
        c.json(TOL, "", &a, &b);
        assert!(c.mismatches.is_empty(), "{:?}", c.mismatches);
        assert_eq!((c.numbers, c.exact), (3, 1));
        assert_eq!(c.worst.as_ref().unwrap().0, "loss");

        let b2: Value = serde_json::from_str(
            r#"{"loss": 1.2, "verdicts": [{"verdict": "fails"}], "errors": [0.1]}"#,
        )
        .unwrap();
        let mut c = Comparison::default();
        c.json(TOL, "", &a, &b2);
        let all = c.mismatches.join("\n");
        assert!(all.contains("loss: cpu 1, other 1.2"), "{all}");
        assert!(all.contains("verdicts[0].verdict"), "{all}");
        assert!(all.contains("errors: cpu has 2 entries, other 1"), "{all}");
    }

    #[test]
    fn csv_cells_compared_by_header() {
        let mut c = Comparison::default();
        c.csv(
            TOL,
            "points.csv",
            "t,loss,run\n0,2.0,\"a,b\"\n",
            "t,loss,run\n0,2.01,\"a,b\"\n",
        );
        assert!(c.mismatches.is_empty(), "{:?}", c.mismatches);
        assert_eq!(c.numbers, 2);
        c.csv(TOL, "points.csv", "t,loss\n0,2.0\n", "t,loss\n0,2.5\n");
        assert_eq!(c.mismatches.len(), 1);
        assert!(
            c.mismatches[0].contains("line 2 `loss`"),
            "{:?}",
            c.mismatches
        );
        assert_eq!(split_csv(r#"a,"b,""c""",d"#), vec!["a", "b,\"c\"", "d"]);
    }

    #[test]
    fn exact_tolerance_is_exact() {
        let t = Tolerance {
            rtol: 0.0,
            atol: 0.0,
        };
        assert!(t.close(1.0, 1.0));
        assert!(!t.close(1.0, 1.0 + f64::EPSILON));
        assert!(t.close(f64::NAN, f64::NAN));
    }
}
