//! Times loading all 60,000 CIFAR-10 images from the installed files
//! (`cargo xtask bench dataset` runs this in release mode).
//!
//! `cargo run --release -p landscape-dataset --example load_bench [-- --data DIR] [--repeat N]`
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use landscape_dataset::{locate, Cifar10, Normalization};

fn main() -> ExitCode {
    let mut data: Option<PathBuf> = None;
    let mut repeat = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--data", Some(v)) => data = Some(v.into()),
            ("--repeat", Some(v)) => repeat = v.parse().unwrap_or(5).max(1),
            _ => {
                eprintln!("usage: load_bench [--data DIR] [--repeat N]");
                return ExitCode::FAILURE;
            }
        }
    }
    match run(data, repeat) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(data: Option<PathBuf>, repeat: usize) -> Result<(), landscape_dataset::DatasetError> {
    let dir = locate(data.as_deref())?;
    println!("dataset: {}", dir.display());
    let mut times = Vec::with_capacity(repeat);
    let mut last = None;
    for _ in 0..repeat {
        let t = Instant::now();
        let c = Cifar10::load(&dir)?;
        times.push(t.elapsed().as_secs_f64());
        last = Some(c);
    }
    let Some(c) = last else { return Ok(()) };
    let images = c.train().len() + c.test().len();
    let first = times[0];
    times.sort_by(f64::total_cmp);
    println!(
        "load all {images} images ({} layout, {} MB of pixels): first {:.3} s, median {:.3} s, \
         min {:.3} s over {repeat} runs",
        c.layout(),
        (c.train().images().len() + c.test().images().len()) / 1_000_000,
        first,
        times[times.len() / 2],
        times[0],
    );
    let t = Instant::now();
    let norm = Normalization::from_split(c.train())?;
    let stats = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let x = c.train().to_f32(&norm);
    let conv = t.elapsed().as_secs_f64();
    println!(
        "train mean/std: {stats:.3} s; to_f32 of 50,000 images ({} floats): {conv:.3} s",
        x.len()
    );
    Ok(())
}
