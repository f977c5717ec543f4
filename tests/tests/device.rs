//! The device path of the `landscape` binary, on any machine: it links
//! `libtorch_cuda` when the libtorch is a CUDA build, `--device cuda` without
//! a usable GPU is an error naming the reason (and writes nothing), and
//! `--device auto` logs the device it chose and records it in run.json.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::Path;
use std::process::Command;

use landscape_net::device::{cuda_unavailable_reason, libtorch_lib_dir};
use landscape_net::testing::elf_needed;
use landscape_tests::{cifar_fixture, json};

const BIN: &str = env!("CARGO_BIN_EXE_landscape-e2e");

#[test]
fn the_binary_links_libtorch_cuda_when_libtorch_is_a_cuda_build() {
    let lib = libtorch_lib_dir().expect("libtorch_cpu.so is not mapped into this test process");
    let needed = elf_needed(Path::new(BIN)).unwrap();
    assert!(needed.iter().any(|n| n == "libtorch_cpu.so"), "{needed:?}");
    let cuda_build = lib.join("libtorch_cuda.so").is_file();
    assert_eq!(
        needed.iter().any(|n| n == "libtorch_cuda.so"),
        cuda_build,
        "{} {} libtorch_cuda.so, but {BIN} NEEDs {needed:?}",
        lib.display(),
        if cuda_build { "has" } else { "has no" }
    );
}

fn smoke_on(device: &str, out: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(["reproduce", "fig2", "--scale", "smoke", "--device", device])
        .args(["--threads", "1", "--out"])
        .arg(out)
        .arg("--data")
        .arg(cifar_fixture())
        .env("RUST_LOG", "info")
        .output()
        .unwrap()
}

#[test]
fn device_cuda_without_a_gpu_names_the_reason_and_writes_nothing() {
    let Some(reason) = cuda_unavailable_reason() else {
        eprintln!("a CUDA device is usable here: the refusal cannot be checked");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = smoke_on("cuda", &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{stderr}");
    assert!(
        stderr.contains("device `cuda` is not available") && stderr.contains(&reason),
        "expected the reason {reason:?} in:\n{stderr}"
    );
    assert!(!out.exists(), "a refused run wrote {}", out.display());
}

#[test]
fn device_auto_logs_and_records_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = smoke_on("auto", &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let run = json(&out.join("run.json"));
    let info = &run["device_info"];
    match cuda_unavailable_reason() {
        Some(reason) => {
            assert!(
                stderr.contains("--device auto chose the CPU") && stderr.contains(&reason),
                "{stderr}"
            );
            assert_eq!(info["kind"], "cpu");
            assert_eq!(run["device"], "Cpu");
            assert!(info["gpu"].is_null());
            // No device.* keys on the CPU: fingerprints as before.
            let keys = run["fingerprint"]["keys"].as_object().unwrap();
            assert_eq!(keys["device"], "\"cpu\"");
            assert!(!keys.keys().any(|k| k.starts_with("device.")), "{keys:?}");
        }
        None => {
            assert!(stderr.contains("--device auto chose CUDA"), "{stderr}");
            assert_eq!(info["kind"], "cuda");
            assert!(info["gpu"].is_string(), "{info}");
            assert_eq!(info["tf32"], false, "TF32 is off by default");
            let keys = run["fingerprint"]["keys"].as_object().unwrap();
            assert_eq!(keys["device.tf32"], "false");
        }
    }
    // The libtorch build's CUDA version is recorded on both devices.
    assert_eq!(
        info["cuda"].as_str().unwrap_or(""),
        landscape_net::device::LIBTORCH_CUDA
    );
}
