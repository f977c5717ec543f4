//! The landscape side of `cargo xtask bench hessian`; its PyHessian-style
//! twin is `crates/net/benches/hessian_bench.py`. Three modes:
//!
//! * `export --dir D --images N [--store S --id I]`: the model and the images
//!   both sides differentiate, written to `D` as raw little-endian arrays
//!   with `meta.json` (names, shapes, dtypes) so that numpy reads them: the
//!   paper network's weights and BN running statistics, `N` images and
//!   labels, and a unit probe vector `v` (Gaussian, seed 0). Without
//!   `--store`: a network initialised with seed 0 on synthetic images
//!   (uniform in [-1.7, 1.7], random labels, like `train_bench`), BN
//!   statistics re-estimated on them. With `--store S --id I`: snapshot `I`
//!   and a stratified subset of `N` CIFAR-10 training images (as
//!   `landscape hessian --sample N` would take).
//! * `hvp --dir D`: times Hessian-vector products of the mean cross-entropy
//!   over the images ([`landscape_net::LossHessian`], BN fixed, chunked);
//!   the first product of `v` goes to `D/hv_landscape.f64`.
//! * `eig --dir D --tol T`: the top eigenvalue by Lanczos
//!   ([`landscape_spectrum::top_k`], relative residual `T`), timed.
//!
//! Every mode prints one JSON line with a `seconds` list.
//!
//! ```text
//! cargo run --release -p landscape-probe --example hessian_bench -- export --dir /tmp/hb --images 1000
//! cargo run --release -p landscape-probe --example hessian_bench -- hvp --dir /tmp/hb --threads 2
//! cargo run --release -p landscape-probe --example hessian_bench -- eig --dir /tmp/hb --threads 2
//! ```
#![allow(clippy::print_stdout)]
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use landscape_net::tch::{Device, Kind};
use landscape_net::{
    reestimate_bn, set_threads, Data, Dcnn, DeviceChoice, HessianBn, LossHessian, NamedTensor,
    NetConfig,
};
use landscape_probe::hessian::HessianOperator;
use landscape_probe::input::Input;
use landscape_probe::snapshot::{self, Overrides, SubsetSize};
use landscape_spectrum::{top_k, LanczosParams};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde_json::{json, Value};

struct Args {
    mode: String,
    dir: PathBuf,
    threads: usize,
    images: usize,
    store: Option<PathBuf>,
    id: Option<String>,
    products: usize,
    warmup: usize,
    chunk: usize,
    tol: f64,
    steps: usize,
    max_products: usize,
    seed: u64,
}

const USAGE: &str = "usage: hessian_bench export|hvp|eig --dir D [--threads N] [--images N] \
    [--store S --id I] [--products N] [--warmup N] [--chunk N] [--tol T] [--steps N] \
    [--max-products N] [--seed N]";

fn parse() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let mode = it.next().context(USAGE)?;
    if !["export", "hvp", "eig"].contains(&mode.as_str()) {
        bail!("mode must be export, hvp or eig, found `{mode}`\n{USAGE}");
    }
    let mut a = Args {
        mode,
        dir: PathBuf::new(),
        threads: 2,
        images: 1000,
        store: None,
        id: None,
        products: 3,
        warmup: 1,
        chunk: 1000,
        tol: 1e-3,
        steps: 30,
        max_products: 300,
        seed: 0,
    };
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let num = || -> Result<usize> {
            value
                .parse::<usize>()
                .with_context(|| format!("{flag} {value}: expected a whole number"))
        };
        match flag.as_str() {
            "--dir" => a.dir = PathBuf::from(&value),
            "--threads" => a.threads = num()?,
            "--images" => a.images = num()?,
            "--store" => a.store = Some(PathBuf::from(&value)),
            "--id" => a.id = Some(value.clone()),
            "--products" => a.products = num()?,
            "--warmup" => a.warmup = num()?,
            "--chunk" => a.chunk = num()?,
            "--tol" => {
                a.tol = value
                    .parse()
                    .with_context(|| format!("--tol {value}: expected a number"))?
            }
            "--steps" => a.steps = num()?,
            "--max-products" => a.max_products = num()?,
            "--seed" => a.seed = num()? as u64,
            other => bail!("unknown flag {other}\n{USAGE}"),
        }
    }
    if a.dir.as_os_str().is_empty() {
        bail!("--dir is required\n{USAGE}");
    }
    Ok(a)
}

fn write_raw(path: &Path, bytes: Vec<u8>) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn entry(name: &str, file: &str, shape: &[usize], dtype: &str) -> Value {
    json!({"name": name, "file": file, "shape": shape, "dtype": dtype})
}

/// The model and data to export: a stored snapshot on CIFAR-10, or a seeded
/// network on synthetic images.
fn source(a: &Args) -> Result<(Dcnn, Data, String)> {
    match (&a.store, &a.id) {
        (Some(store), Some(id)) => {
            let overrides = Overrides {
                train_size: Some(SubsetSize(Some(a.images))),
                names: Some(|input| match input {
                    Input::TrainSize => "--images",
                    other => other.name(),
                }),
                ..Overrides::default()
            };
            let id = id.parse().map_err(|e| anyhow::anyhow!("--id {id}: {e}"))?;
            let snap = snapshot::load_snapshot(
                store,
                id,
                &overrides,
                DeviceChoice::Cpu,
                None,
                Some(a.threads),
            )?;
            let what = format!(
                "snapshot {id} of {} ({} epoch {}), {} CIFAR-10 training images (stratified)",
                store.display(),
                snap.run,
                snap.epoch.map_or("-".to_owned(), |e| e.to_string()),
                snap.data.train_len()
            );
            Ok((snap.model, snap.data.train, what))
        }
        (None, None) => {
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let images: Vec<f32> = (0..a.images * 3 * 32 * 32)
                .map(|_| rng.random_range(-1.7f32..1.7))
                .collect();
            let labels: Vec<u8> = (0..a.images).map(|_| rng.random_range(0..10u8)).collect();
            let data = Data::new(&images, &labels, Device::Cpu)?;
            let mut model = Dcnn::new(&NetConfig::paper(), Device::Cpu, 0)?;
            reestimate_bn(&mut model, &data, a.chunk.max(2))?;
            Ok((
                model,
                data,
                format!(
                    "paper network initialised with seed 0, BN re-estimated; {} synthetic images",
                    a.images
                ),
            ))
        }
        _ => bail!("--store and --id go together"),
    }
}

fn export(a: &Args) -> Result<()> {
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let (model, data, what) = source(a)?;
    let mut tensors = Vec::new();
    for t in model.export()? {
        let file = format!("{}.f32", t.name);
        write_raw(&a.dir.join(&file), f32_bytes(&t.data))?;
        tensors.push(entry(&t.name, &file, &t.shape, "<f4"));
    }
    let n = data.len();
    let images = data.images().f_contiguous()?.f_to_kind(Kind::Float)?;
    let numel = images.numel();
    let mut xs = vec![0f32; numel];
    images.f_copy_data(&mut xs, numel)?;
    write_raw(&a.dir.join("images.f32"), f32_bytes(&xs))?;
    let labels = data.labels().f_to_kind(Kind::Int64)?;
    let mut ys = vec![0i64; n];
    labels.f_copy_data(&mut ys, n)?;
    write_raw(
        &a.dir.join("labels.i64"),
        ys.iter().flat_map(|y| y.to_le_bytes()).collect(),
    )?;
    let dim = model.num_params();
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
    let mut v: Vec<f64> = (0..dim).map(|_| rng.sample(StandardNormal)).collect();
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let v32: Vec<f32> = v.iter_mut().map(|x| (*x / norm) as f32).collect();
    write_raw(&a.dir.join("v.f32"), f32_bytes(&v32))?;
    let h = LossHessian::new(&model, &data, a.chunk, HessianBn::Fixed)?;
    let (loss, _) = h.loss_and_gradient()?;
    let meta = json!({
        "what": what,
        "net": model.config(),
        "widths": model.config().widths,
        "params": dim,
        "tensors": tensors,
        "images": entry("images", "images.f32", &[n, 3, 32, 32], "<f4"),
        "labels": entry("labels", "labels.i64", &[n], "<i8"),
        "vector": entry("v", "v.f32", &[dim], "<f4"),
        "loss": loss,
    });
    std::fs::write(a.dir.join("meta.json"), serde_json::to_vec_pretty(&meta)?)
        .context("writing meta.json")?;
    println!(
        "{}",
        json!({"impl": "landscape", "mode": "export", "images": n, "params": dim,
               "loss": loss, "what": what, "seconds": []})
    );
    Ok(())
}

fn read_f32(path: &Path) -> Result<Vec<f32>> {
    let b = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// The exported model, data and probe vector.
fn load(dir: &Path) -> Result<(Dcnn, Data, Vec<f64>)> {
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).with_context(|| {
            format!("reading {}/meta.json (run `export` first)", dir.display())
        })?)?;
    let net: NetConfig = serde_json::from_value(meta["net"].clone()).context("meta.json: `net`")?;
    let mut model = Dcnn::new(&net, Device::Cpu, 0)?;
    let mut named = Vec::new();
    for t in meta["tensors"].as_array().context("meta.json: `tensors`")? {
        let shape: Vec<usize> = serde_json::from_value(t["shape"].clone())?;
        named.push(NamedTensor {
            name: t["name"].as_str().context("tensor name")?.to_owned(),
            shape,
            data: read_f32(&dir.join(t["file"].as_str().context("tensor file")?))?,
        });
    }
    model.import(&named)?;
    let images = read_f32(&dir.join("images.f32"))?;
    let b = std::fs::read(dir.join("labels.i64")).context("reading labels.i64")?;
    let labels: Vec<u8> = b
        .chunks_exact(8)
        .map(|c| c[0]) // labels are 0-9
        .collect();
    let data = Data::new(&images, &labels, Device::Cpu)?;
    let v = read_f32(&dir.join("v.f32"))?
        .into_iter()
        .map(f64::from)
        .collect();
    Ok((model, data, v))
}

fn hvp(a: &Args) -> Result<()> {
    let (model, data, v) = load(&a.dir)?;
    let h = LossHessian::new(&model, &data, a.chunk, HessianBn::Fixed)?;
    let mut seconds = Vec::new();
    for i in 0..a.warmup + a.products {
        let t = Instant::now();
        let hv = h.hvp(&v)?;
        let dt = t.elapsed().as_secs_f64();
        if i == 0 {
            write_raw(
                &a.dir.join("hv_landscape.f64"),
                hv.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )?;
        }
        if i >= a.warmup {
            seconds.push(dt);
        }
    }
    println!(
        "{}",
        json!({"impl": "landscape", "mode": "hvp", "threads": a.threads, "images": data.len(),
               "chunk": a.chunk, "seconds": seconds})
    );
    Ok(())
}

fn eig(a: &Args) -> Result<()> {
    let (model, data, _) = load(&a.dir)?;
    let t = Instant::now();
    let op = HessianOperator(LossHessian::new(&model, &data, a.chunk, HessianBn::Fixed)?);
    let lp = LanczosParams::new()
        .steps(a.steps)
        .tol(a.tol)
        .seed(a.seed)
        .max_applications(a.max_products.max(a.steps));
    let top = top_k(&op, 1, &lp).context("Lanczos")?;
    let dt = t.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"impl": "landscape-lanczos", "mode": "eig", "threads": a.threads,
               "images": data.len(), "eigenvalue": top.values()[0],
               "residual": top.residuals()[0], "converged": top.converged(),
               "products": op.0.products(), "seconds": [dt]})
    );
    Ok(())
}

fn main() -> Result<()> {
    // As the CLI: keep freed tensors' memory (LANDSCAPE_MALLOC=system: off).
    landscape_net::configure_malloc()?;
    let a = parse()?;
    set_threads(a.threads.max(1));
    match a.mode.as_str() {
        "export" => export(&a),
        "hvp" => hvp(&a),
        _ => eig(&a),
    }
}
