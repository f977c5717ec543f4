//! `cargo xtask bench dataset`: time to load all 60,000 CIFAR-10 images from
//! the installed binary files (`landscape-dataset`'s `load_bench` example, in
//! release mode), beside numpy reading the same files.
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::setup::TorchEnv;
use crate::util::{self, say};

/// numpy baseline: read the six batch files and split labels from pixels
/// (copies, as the Rust loader does).
const NUMPY_BASELINE: &str = r#"
import os, sys, time
import numpy as np
d = sys.argv[1]
names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
times = []
for _ in range(5):
    t = time.perf_counter()
    parts = [np.fromfile(os.path.join(d, n), dtype=np.uint8).reshape(-1, 3073) for n in names]
    labels = [np.ascontiguousarray(p[:, 0]) for p in parts]
    images = [np.ascontiguousarray(p[:, 1:]) for p in parts]
    times.append(time.perf_counter() - t)
n = sum(len(l) for l in labels)
times.sort()
print(f"numpy baseline: load all {n} images: median {times[2]:.3f} s, min {times[0]:.3f} s over 5 runs")
"#;

pub fn run(env: &TorchEnv) -> Result<()> {
    say("building and running landscape-dataset's load_bench (release)");
    let out = util::release_example("landscape-dataset", "load_bench")
        .output()
        .context("could not start cargo")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print_out(&stdout);
    if !out.status.success() {
        bail!(
            "load_bench failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let Some(dir) = stdout.lines().find_map(|l| l.strip_prefix("dataset: ")) else {
        bail!("load_bench did not say which folder it read");
    };
    if !dir.ends_with("-bin") {
        say("the installed copy is not the binary layout: no numpy baseline");
        return Ok(());
    }
    let Some(site) = &env.python_site else {
        say("no Python site from setup: no numpy baseline");
        return Ok(());
    };
    let base = Command::new("python3")
        .env("PYTHONPATH", site)
        .args(["-c", NUMPY_BASELINE, dir])
        .output()
        .context("could not start python3")?;
    print_out(&String::from_utf8_lossy(&base.stdout));
    if !base.status.success() {
        say(format!(
            "numpy baseline failed: {}",
            String::from_utf8_lossy(&base.stderr)
        ));
    }
    Ok(())
}

/// Benchmarks print their numbers.
#[allow(clippy::print_stdout)]
fn print_out(text: &str) {
    print!("{text}");
}
