//! Benchmark of the trajectory store (run by `cargo xtask bench store`):
//! write throughput, and the time to read layer 2 of N snapshots of the
//! paper's network (page cache warm) against raw reads/copies of the same bytes.
//!
//! `cargo run --release -p landscape-trajectory --example store_bench -- [--snapshots N] [--dir PATH]`
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use landscape_trajectory::{Filter, SnapshotKind, SnapshotMeta, Store, Tensor};
use rayon::prelude::*;

/// The paper's network (Section 4.1): five 3x3 convolutions, widths below,
/// BN statistics after the four hidden ones; 188,810 parameters (the final NetConfig::paper() widths).
const WIDTHS: [usize; 5] = [32, 64, 152, 56, 10];

fn network(seed: u64) -> Vec<Tensor> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let mut out = Vec::new();
    let mut cin = 3;
    for (i, &w) in WIDTHS.iter().enumerate() {
        let layer = i + 2;
        let mut t = |name: String, shape: Vec<usize>| {
            let n = shape.iter().product();
            out.push(Tensor {
                name,
                shape,
                data: (0..n).map(|_| rnd()).collect(),
            });
        };
        t(format!("layer{layer}.weight"), vec![w, cin, 3, 3]);
        t(format!("layer{layer}.bias"), vec![w]);
        if layer < 6 {
            t(format!("layer{layer}.bn.running_mean"), vec![w]);
            t(format!("layer{layer}.bn.running_var"), vec![w]);
        }
        cin = w;
    }
    out
}

fn best<T>(reps: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..reps {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed());
        last = Some(v);
    }
    (best, last.unwrap())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let mut n = 1000usize;
    let mut dir: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--snapshots" => {
                n = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--snapshots N")
            }
            "--dir" => dir = args.next().map(PathBuf::from),
            other => panic!("unknown argument {other:?} (expected --snapshots N, --dir PATH)"),
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = dir.unwrap_or_else(|| tmp.path().to_path_buf());
    let store_dir = root.join("store");
    let _ = std::fs::remove_dir_all(&store_dir);

    // Write.
    let base = network(1);
    let params: usize = base
        .iter()
        .filter(|t| !t.name.contains(".bn."))
        .map(|t| t.data.len())
        .sum();
    let total: usize = base.iter().map(|t| t.data.len()).sum();
    println!(
        "network: widths {WIDTHS:?}, {params} parameters + {} BN statistics, {} KiB per snapshot",
        total - params,
        total * 4 / 1024
    );
    let mut store = Store::create(&store_dir).unwrap();
    let mut write_time = Duration::ZERO;
    let mut bytes_written = 0u64;
    for k in 0..n {
        let mut t = base.clone();
        for x in t.iter_mut().flat_map(|t| t.data.iter_mut()) {
            *x += k as f32 * 1e-3;
        }
        let refs: Vec<_> = t.iter().map(Tensor::as_ref).collect();
        let meta = SnapshotMeta::new("main", SnapshotKind::Trained)
            .with_epoch(k as u32)
            .with_metric("train_loss", 1.0);
        let start = Instant::now();
        let id = store.append(meta, &refs).unwrap();
        write_time += start.elapsed();
        bytes_written += store.get(id).unwrap().file_len();
    }
    let mb = bytes_written as f64 / 1e6;
    println!(
        "write: {n} snapshots, {mb:.1} MB in {:.2} s: {:.1} MB/s, {:.0} snapshots/s ({:.2} ms each; 2 fdatasyncs per append, no rename)",
        write_time.as_secs_f64(),
        mb / write_time.as_secs_f64(),
        n as f64 / write_time.as_secs_f64(),
        ms(write_time) / n as f64
    );
    // Raw baselines: the same bytes appended to one plain file with one
    // fdatasync each (the least a durable append costs), and written as one
    // plain file each with an fsync (no rename, no index).
    let raw_dir = root.join("raw-write");
    std::fs::create_dir_all(&raw_dir).unwrap();
    let payload = vec![0u8; (bytes_written / n as u64) as usize];
    let m = n.min(200);
    let f = File::create(raw_dir.join("append.bin")).unwrap();
    let start = Instant::now();
    for k in 0..m {
        f.write_all_at(&payload, (k * payload.len()) as u64)
            .unwrap();
        f.sync_data().unwrap();
    }
    let raw_append = start.elapsed();
    drop(f);
    let start = Instant::now();
    for k in 0..m {
        let p = raw_dir.join(format!("{k}.bin"));
        let mut f = File::create(&p).unwrap();
        std::io::Write::write_all(&mut f, &payload).unwrap();
        f.sync_all().unwrap();
    }
    let raw_w = start.elapsed();
    println!(
        "  baseline: {m} appends of the same size to one plain file, fdatasync each: {:.1} MB/s ({:.2} ms each)",
        (m * payload.len()) as f64 / 1e6 / raw_append.as_secs_f64(),
        ms(raw_append) / m as f64
    );
    println!(
        "  baseline: write+fsync of {m} plain files of the same size: {:.1} MB/s ({:.2} ms each)",
        (m * payload.len()) as f64 / 1e6 / raw_w.as_secs_f64(),
        ms(raw_w) / m as f64
    );
    let _ = std::fs::remove_dir_all(&raw_dir);

    // Read layer 2 of every snapshot, page cache warm.
    let store = Store::open(&store_dir).unwrap();
    let filter = Filter::all();
    let warm = store.read_layer(&filter, 2).unwrap();
    let (d, cols) = warm.matrix().dim();
    let layer_bytes = (d * cols * 4) as f64;
    let (t_store, _) = best(15, || store.read_layer(&filter, 2).unwrap());
    let (t_open, _) = best(3, || Store::open(&store_dir).unwrap());
    println!(
        "read layer 2 ({cols} values) of {d} snapshots: {:.2} ms ({:.0} MB/s); Store::open of the index: {:.2} ms",
        ms(t_store),
        layer_bytes / 1e6 / t_store.as_secs_f64(),
        ms(t_open)
    );

    // Baselines on the same bytes: positional reads of the same ranges
    // from the segment files (each opened once), no checksum, no decoding.
    let mut segments: BTreeMap<PathBuf, File> = BTreeMap::new();
    let ranges: Vec<(PathBuf, u64, usize)> = store
        .snapshots()
        .iter()
        .map(|i| {
            let t = i.tensor("layer2.weight").unwrap();
            let path = store_dir.join(i.file());
            segments
                .entry(path.clone())
                .or_insert_with(|| File::open(&path).unwrap());
            (path, t.byte_offset(), cols * 4)
        })
        .collect();
    let open_segments = || -> BTreeMap<&PathBuf, File> {
        segments
            .keys()
            .map(|p| (p, File::open(p).unwrap()))
            .collect()
    };
    let pread = |files: &BTreeMap<&PathBuf, File>, r: &(PathBuf, u64, usize), buf: &mut Vec<u8>| {
        buf.resize(r.2, 0);
        files[&r.0].read_exact_at(buf, r.1).unwrap();
    };
    let (t_pread_seq, _) = best(15, || {
        let files = open_segments();
        let mut buf = Vec::new();
        ranges.iter().for_each(|r| pread(&files, r, &mut buf));
    });
    let (t_pread_par, _) = best(15, || {
        let files = open_segments();
        ranges
            .par_iter()
            .for_each_init(Vec::new, |buf, r| pread(&files, r, buf))
    });
    let flat = root.join("layer2.bin");
    let mut all = Vec::with_capacity(layer_bytes as usize);
    let files = open_segments();
    for r in &ranges {
        let mut buf = Vec::new();
        pread(&files, r, &mut buf);
        all.extend_from_slice(&buf);
    }
    std::fs::write(&flat, &all).unwrap();
    let copy = root.join("layer2.copy");
    let (t_copy, _) = best(15, || std::fs::copy(&flat, &copy).unwrap());
    let (t_flat_read, _) = best(15, || std::fs::read(&flat).unwrap());
    // Whole segments, in 1 MiB positional reads into one reused buffer.
    let (t_full, _) = best(3, || {
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0usize;
        for f in segments.values() {
            let len = f.metadata().unwrap().len();
            let mut at = 0u64;
            while at < len {
                let n = f.read_at(&mut buf, at).unwrap();
                assert!(n > 0);
                at += n as u64;
                total += n;
            }
        }
        total
    });
    println!(
        "  baseline: same byte ranges, pread from the {} segment file(s), 1 thread: {:.2} ms",
        segments.len(),
        ms(t_pread_seq)
    );
    println!(
        "  baseline: same byte ranges, pread from the segment file(s), {} threads: {:.2} ms",
        rayon::current_num_threads(),
        ms(t_pread_par)
    );
    println!(
        "  baseline: the same {:.2} MB as one file: std::fs::copy {:.2} ms ({:.0} MB/s), std::fs::read {:.2} ms",
        layer_bytes / 1e6,
        ms(t_copy),
        layer_bytes / 1e6 / t_copy.as_secs_f64(),
        ms(t_flat_read)
    );
    println!(
        "  for scale: reading all {mb:.0} MB of the {} segment file(s): {:.1} ms ({:.0} MB/s)",
        segments.len(),
        ms(t_full),
        mb / t_full.as_secs_f64()
    );
    println!(
        "ratio store / file copy of the same bytes: {:.2}x; store / raw pread of the same ranges ({} threads): {:.2}x",
        t_store.as_secs_f64() / t_copy.as_secs_f64(),
        rayon::current_num_threads(),
        t_store.as_secs_f64() / t_pread_par.as_secs_f64()
    );
}
