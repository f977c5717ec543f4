//! The Rust side of `cargo xtask bench train`: times SGD epochs (batch 100)
//! or BGD epochs of the paper network on synthetic data and prints one JSON
//! line, `{"impl":"landscape-net","mode":..,"images":..,"seconds":[..]}`,
//! where every entry of `seconds` is the wall time of one timed epoch of
//! `images` images. `benches/train_bench.py` is its PyTorch twin.
//!
//! ```text
//! cargo run --release -p landscape-net --example train_bench -- sgd --threads 2 --images 2000 --epochs 3
//! cargo run --release -p landscape-net --example train_bench -- bgd --threads 2 --images 5000 --epochs 2
//! ```
use std::time::Instant;

use landscape_net::{
    set_threads, Bgd, BgdConfig, Data, Dcnn, DeviceChoice, NetConfig, Sgd, SgdConfig,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Args {
    mode: String,
    threads: usize,
    images: usize,
    epochs: usize,
    warmup: usize,
    batch: usize,
    chunk: usize,
    device: DeviceChoice,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it.next().ok_or("usage: train_bench sgd|bgd [--threads N] [--images N] [--epochs N] [--warmup N] [--batch N] [--chunk N] [--device D]")?;
    if mode != "sgd" && mode != "bgd" {
        return Err(format!("mode must be sgd or bgd, found `{mode}`"));
    }
    let mut a = Args {
        mode,
        threads: 2,
        images: 2000,
        epochs: 3,
        warmup: 1,
        batch: 100,
        chunk: 500,
        device: DeviceChoice::Cpu,
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = || {
            value
                .parse::<usize>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--threads" => a.threads = num()?,
            "--images" => a.images = num()?,
            "--epochs" => a.epochs = num()?,
            "--warmup" => a.warmup = num()?,
            "--batch" => a.batch = num()?,
            "--chunk" => a.chunk = num()?,
            "--device" => a.device = value.parse().map_err(|e| format!("{e}"))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

#[allow(clippy::print_stdout)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // As the CLI: keep freed tensors' memory (LANDSCAPE_MALLOC=system: off).
    landscape_net::configure_malloc()?;
    let args = parse()?;
    set_threads(args.threads);
    let device = args.device.resolve()?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let images: Vec<f32> = (0..args.images * 3 * 32 * 32)
        .map(|_| rng.random_range(-1.7f32..1.7))
        .collect();
    let labels: Vec<u8> = (0..args.images)
        .map(|_| rng.random_range(0..10u8))
        .collect();
    let data = Data::new(&images, &labels, device)?;
    let mut net = Dcnn::new(&NetConfig::paper(), device, 0)?;
    let mut seconds = Vec::new();
    if args.mode == "sgd" {
        let mut opt = Sgd::new(
            &net,
            SgdConfig {
                batch_size: args.batch,
                ..SgdConfig::default()
            },
        )?;
        for epoch in 0..args.warmup + args.epochs {
            let t = Instant::now();
            opt.epoch(&mut net, &data, epoch, 1)?;
            if device.is_cuda() {
                tch::Cuda::synchronize(0);
            }
            if epoch >= args.warmup {
                seconds.push(t.elapsed().as_secs_f64());
            }
        }
    } else {
        let mut opt = Bgd::new(
            &net,
            BgdConfig {
                lr: 0.01,
                ghost_batch: Some(args.chunk),
                ..BgdConfig::default()
            },
        )?;
        for epoch in 0..args.warmup + args.epochs {
            let t = Instant::now();
            opt.epoch(&mut net, &data, epoch)?;
            if device.is_cuda() {
                tch::Cuda::synchronize(0);
            }
            if epoch >= args.warmup {
                seconds.push(t.elapsed().as_secs_f64());
            }
        }
    }
    let secs: Vec<String> = seconds.iter().map(|s| format!("{s:.6}")).collect();
    println!(
        "{{\"impl\":\"landscape-net\",\"mode\":\"{}\",\"threads\":{},\"images\":{},\"params\":{},\"seconds\":[{}]}}",
        args.mode,
        args.threads,
        args.images,
        net.num_params(),
        secs.join(",")
    );
    Ok(())
}
