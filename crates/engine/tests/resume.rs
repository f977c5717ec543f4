//! A trajectory of SGD with momentum and weight decay, then BGD with
//! momentum, killed mid-run (SIGKILL of a child process) and resumed, ends
//! bit-identical to an uninterrupted run: weights, BN statistics, optimiser
//! state and metrics of every snapshot.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use landscape_engine::data::{ExperimentData, SubsetIdentity};
use landscape_engine::eval::{EvalConfig, Evaluator};
use landscape_engine::identity::RunId;
use landscape_engine::recorder::Recorder;
use landscape_net::{tch::Device, BgdConfig, Data, NetConfig, Phase, SgdConfig};
use landscape_trajectory::Store;

const CHILD_ENV: &str = "LANDSCAPE_RESUME_TEST_CHILD";

fn data() -> ExperimentData {
    let n = 120;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let x: Vec<f32> = (0..n * 3 * 32 * 32).map(|_| next()).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let id = SubsetIdentity {
        len: n,
        indices_crc32: 0,
        labels_crc32: 0,
    };
    ExperimentData {
        train: Data::new(&x, &labels, Device::Cpu).unwrap(),
        test: Data::new(&x[..40 * 3072], &labels[..40], Device::Cpu).unwrap(),
        source: "synthetic".into(),
        train_id: id.clone(),
        test_id: SubsetIdentity { len: 40, ..id },
        normalization: ([0.0; 3], [1.0; 3]),
        random_labels: None,
    }
}

fn net() -> NetConfig {
    NetConfig {
        widths: vec![8, 8, 8, 8],
        ..NetConfig::paper()
    }
}

fn phases() -> Vec<Phase> {
    vec![
        Phase::Sgd {
            epochs: 12,
            sgd: SgdConfig {
                batch_size: 20,
                lr: 0.02,
                momentum: 0.9,
                weight_decay: 5e-4,
            },
        },
        Phase::Bgd {
            epochs: 12,
            bgd: BgdConfig {
                lr: 0.1,
                momentum: 0.5,
                weight_decay: 1e-4,
                ghost_batch: None,
            },
        },
    ]
}

/// Runs (or resumes) the whole plan into `dir`.
fn run(dir: &Path) {
    landscape_net::set_threads(1);
    let data = data();
    let eval = EvalConfig {
        chunk_size: 60,
        ..EvalConfig::default()
    };
    let rec = Recorder::new(
        Store::open_or_create(dir).unwrap(),
        &data,
        Evaluator::new(&data, eval),
        net(),
        Device::Cpu,
        "test",
    );
    rec.trajectory(&RunId::Main, 0, &phases(), 7, || rec.init(3))
        .unwrap();
}

#[test]
fn child_process_entry() {
    // Only does something when started by the test below.
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        run(Path::new(&dir));
    }
}

#[test]
fn killed_sgd_momentum_run_resumes_bit_identically() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    run(&reference);

    // Kill a child mid-SGD (where momentum buffers matter) and resume here.
    let killed = tmp.path().join("killed");
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "child_process_entry",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, &killed)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut at = 0;
    while start.elapsed() < Duration::from_secs(120) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if let Ok(s) = Store::open(&killed) {
            if s.len() >= 5 {
                child.kill().unwrap();
                at = s.len();
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.wait();
    let before = Store::open(&killed).unwrap().len();
    assert!(
        at >= 5 && before < 25,
        "the child was not killed mid-run ({before} snapshots)"
    );
    run(&killed);

    let a = Store::open(&reference).unwrap();
    let b = Store::open(&killed).unwrap();
    assert_eq!(a.len(), 25);
    assert_eq!(b.len(), 25);
    let mut saw_momentum = false;
    for (sa, sb) in a.snapshots().iter().zip(b.snapshots()) {
        assert_eq!(sa.meta().epoch(), sb.meta().epoch());
        assert_eq!(
            sa.meta().metrics(),
            sb.meta().metrics(),
            "epoch {:?}",
            sa.meta().epoch()
        );
        let ta = a.read_snapshot(sa.id()).unwrap();
        let tb = b.read_snapshot(sb.id()).unwrap();
        assert_eq!(ta.len(), tb.len());
        for (x, y) in ta.iter().zip(&tb) {
            assert_eq!(x.name, y.name);
            saw_momentum |= x.name.starts_with("optim.momentum.");
            let bx: Vec<u32> = x.data.iter().map(|v| v.to_bits()).collect();
            let by: Vec<u32> = y.data.iter().map(|v| v.to_bits()).collect();
            assert!(
                bx == by,
                "{} differs at epoch {:?}",
                x.name,
                sa.meta().epoch()
            );
        }
    }
    assert!(
        saw_momentum,
        "the optimiser state is stored with the snapshots"
    );
}
