//! The Rust side of `cargo xtask bench surface`: times the evaluation of
//! loss-surface points `w0 + a d1 + b d2` of the paper network on synthetic
//! data, with BN statistics re-estimated on the training set at every point
//! (landscape's default policy), and prints one JSON line,
//! `{"impl":..,"points":..,"seconds":[..],"train_loss":[..],"test_loss":[..]}`,
//! where every entry of `seconds` is the wall time of one point (weights
//! loaded, statistics re-estimated, training and test sets evaluated).
//!
//! Modes:
//! - `write --dir D`: writes the weights, directions, grid and data (raw
//!   little-endian `f32`/`u8` plus `manifest.json`) that
//!   `benches/surface_bench.py` reads, so that both sides evaluate the same
//!   points.
//! - `onepass --dir D`: landscape's evaluator (re-estimation and training-set
//!   evaluation in one pass over the data, `reestimate_and_evaluate`).
//! - `layered --dir D`: the same numbers computed one step at a time:
//!   `reestimate_bn` (one pass per hidden layer), then `evaluate` on the
//!   training set (the evaluator before the one-pass version).
//!
//! ```text
//! cargo run --release -p landscape-net --example surface_bench -- write --dir /tmp/sb --images 2000 --test 1000 --points 6
//! cargo run --release -p landscape-net --example surface_bench -- onepass --dir /tmp/sb --threads 2
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)] // host tensors on purpose (CPU tests)
use std::path::{Path, PathBuf};
use std::time::Instant;

use landscape_net::{
    eval_cache_budget, evaluate, reestimate_and_evaluate, reestimate_bn, set_threads, Data, Dcnn,
    NamedTensor, NetConfig,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

struct Args {
    mode: String,
    dir: PathBuf,
    threads: usize,
    images: usize,
    test: usize,
    points: usize,
    chunk: usize,
}

const USAGE: &str = "usage: surface_bench write|onepass|layered --dir D [--threads N] [--images N] [--test N] [--points N] [--chunk N]";

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it.next().ok_or(USAGE)?;
    if !["write", "onepass", "layered"].contains(&mode.as_str()) {
        return Err(format!(
            "mode must be write, onepass or layered, found `{mode}`"
        ));
    }
    let mut a = Args {
        mode,
        dir: PathBuf::new(),
        threads: 2,
        images: 2000,
        test: 1000,
        points: 6,
        chunk: 1000,
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = || {
            value
                .parse::<usize>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--dir" => a.dir = PathBuf::from(&value),
            "--threads" => a.threads = num()?,
            "--images" => a.images = num()?,
            "--test" => a.test = num()?,
            "--points" => a.points = num()?,
            "--chunk" => a.chunk = num()?,
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    if a.dir.as_os_str().is_empty() {
        return Err(format!("--dir is required\n{USAGE}"));
    }
    Ok(a)
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn read_f32(path: &Path) -> Result<Vec<f32>, String> {
    let b = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Synthetic data, the network at the centre (BN statistics re-estimated on
/// the training images), two random directions and the grid coordinates.
fn write(a: &Args) -> Result<(), String> {
    std::fs::create_dir_all(&a.dir).map_err(|e| format!("{}: {e}", a.dir.display()))?;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut images = |n: usize| -> Vec<f32> {
        (0..n * 3 * 32 * 32)
            .map(|_| rng.random_range(-2.0f32..2.0))
            .collect()
    };
    let train_x = images(a.images);
    let test_x = images(a.test);
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let train_y: Vec<u8> = (0..a.images).map(|_| rng.random_range(0..10u8)).collect();
    let test_y: Vec<u8> = (0..a.test).map(|_| rng.random_range(0..10u8)).collect();
    let mut model = Dcnn::new(&NetConfig::paper(), landscape_net::tch::Device::Cpu, 0)
        .map_err(|e| e.to_string())?;
    let train = Data::new(&train_x, &train_y, landscape_net::tch::Device::Cpu)
        .map_err(|e| e.to_string())?;
    reestimate_bn(&mut model, &train, a.chunk).map_err(|e| e.to_string())?;
    let w0 = model.export().map_err(|e| e.to_string())?;
    // Directions of the size of the weights (std of each tensor), zero on BN statistics.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut direction = || -> Vec<NamedTensor> {
        w0.iter()
            .map(|t| {
                let trainable = !t.name.contains(".bn.");
                let n = t.data.len() as f64;
                let mean = t.data.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
                let std = (t
                    .data
                    .iter()
                    .map(|&x| (f64::from(x) - mean).powi(2))
                    .sum::<f64>()
                    / n)
                    .sqrt();
                let data = t
                    .data
                    .iter()
                    .map(|_| {
                        let g: f64 = StandardNormal.sample(&mut rng);
                        if trainable {
                            (g * std) as f32
                        } else {
                            0.0
                        }
                    })
                    .collect();
                NamedTensor {
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                    data,
                }
            })
            .collect()
    };
    let d1 = direction();
    let d2 = direction();
    let grid: Vec<(f64, f64)> = (0..a.points)
        .map(|i| {
            let t = if a.points == 1 {
                0.0
            } else {
                -1.0 + 2.0 * i as f64 / (a.points - 1) as f64
            };
            (t, 0.5 * t)
        })
        .collect();
    let put = |name: &str, bytes: &[u8]| -> Result<(), String> {
        std::fs::write(a.dir.join(name), bytes).map_err(|e| format!("{name}: {e}"))
    };
    put("train_x.f32", &f32_bytes(&train_x))?;
    put("test_x.f32", &f32_bytes(&test_x))?;
    put("train_y.u8", &train_y)?;
    put("test_y.u8", &test_y)?;
    for (file, ts) in [("w0.f32", &w0), ("d1.f32", &d1), ("d2.f32", &d2)] {
        let flat: Vec<f32> = ts.iter().flat_map(|t| t.data.iter().copied()).collect();
        put(file, &f32_bytes(&flat))?;
    }
    let manifest = serde_json::json!({
        "tensors": w0.iter().map(|t| serde_json::json!({"name": t.name, "shape": t.shape})).collect::<Vec<_>>(),
        "grid": grid,
        "images": a.images,
        "test": a.test,
        "chunk": a.chunk,
    });
    put("manifest.json", manifest.to_string().as_bytes())?;
    Ok(())
}

fn run(a: &Args) -> Result<(), String> {
    set_threads(a.threads);
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(a.dir.join("manifest.json")).map_err(|e| format!("manifest.json: {e}"))?,
    )
    .map_err(|e| format!("manifest.json: {e}"))?;
    let n_train = manifest["images"].as_u64().unwrap_or(0) as usize;
    let n_test = manifest["test"].as_u64().unwrap_or(0) as usize;
    let chunk = manifest["chunk"].as_u64().unwrap_or(1000) as usize;
    let shapes: Vec<(String, Vec<usize>)> = manifest["tensors"]
        .as_array()
        .ok_or("manifest.json: no tensors")?
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or_default().to_owned(),
                t["shape"]
                    .as_array()
                    .map(|s| s.iter().map(|d| d.as_u64().unwrap_or(0) as usize).collect())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let grid: Vec<(f64, f64)> = serde_json::from_value(manifest["grid"].clone())
        .map_err(|e| format!("manifest.json grid: {e}"))?;
    let read_u8 = |name: &str| std::fs::read(a.dir.join(name)).map_err(|e| format!("{name}: {e}"));
    let cpu = landscape_net::tch::Device::Cpu;
    let train = Data::new(
        &read_f32(&a.dir.join("train_x.f32"))?,
        &read_u8("train_y.u8")?,
        cpu,
    )
    .map_err(|e| e.to_string())?;
    let test = Data::new(
        &read_f32(&a.dir.join("test_x.f32"))?,
        &read_u8("test_y.u8")?,
        cpu,
    )
    .map_err(|e| e.to_string())?;
    if train.len() != n_train || test.len() != n_test {
        return Err("data sizes differ from manifest.json".into());
    }
    let [w0, d1, d2] = ["w0.f32", "d1.f32", "d2.f32"].map(|f| read_f32(&a.dir.join(f)));
    let (w0, d1, d2) = (w0?, d1?, d2?);
    let mut model = Dcnn::new(&NetConfig::paper(), cpu, 0).map_err(|e| e.to_string())?;
    let budget = eval_cache_budget();
    let mut secs = Vec::new();
    let mut train_loss = Vec::new();
    let mut test_loss = Vec::new();
    for &(x, y) in &grid {
        let t = Instant::now();
        let mut offset = 0;
        let point: Vec<NamedTensor> = shapes
            .iter()
            .map(|(name, shape)| {
                let n: usize = shape.iter().product();
                let data = (offset..offset + n)
                    .map(|i| {
                        (f64::from(w0[i]) + x * f64::from(d1[i]) + y * f64::from(d2[i])) as f32
                    })
                    .collect();
                offset += n;
                NamedTensor {
                    name: name.clone(),
                    shape: shape.clone(),
                    data,
                }
            })
            .collect();
        model.import(&point).map_err(|e| e.to_string())?;
        let tr = if a.mode == "onepass" {
            reestimate_and_evaluate(&mut model, &train, chunk, budget)
        } else {
            reestimate_bn(&mut model, &train, chunk).and_then(|()| evaluate(&model, &train, chunk))
        }
        .map_err(|e| e.to_string())?;
        let te = evaluate(&model, &test, chunk).map_err(|e| e.to_string())?;
        secs.push(t.elapsed().as_secs_f64());
        train_loss.push(tr.loss);
        test_loss.push(te.loss);
    }
    println!(
        "{}",
        serde_json::json!({
            "impl": format!("landscape-{}", a.mode),
            "threads": a.threads,
            "points": grid.len(),
            "seconds": secs,
            "train_loss": train_loss,
            "test_loss": test_loss,
        })
    );
    Ok(())
}

fn main() {
    // As the CLI: keep freed tensors' memory (LANDSCAPE_MALLOC=system: off).
    if let Err(e) = landscape_net::configure_malloc() {
        eprintln!("surface_bench: {e}");
        std::process::exit(2);
    }
    let result = parse().and_then(|a| {
        if a.mode == "write" {
            write(&a)
        } else {
            run(&a)
        }
    });
    if let Err(e) = result {
        eprintln!("surface_bench: {e}");
        std::process::exit(2);
    }
}
