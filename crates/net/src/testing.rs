//! Helpers for tests that must run on every device, here and in the crates
//! built on this one.
//!
//! [`devices`] is the CPU, plus CUDA device 0 when it is usable. With
//! `LANDSCAPE_REQUIRE_CUDA=1` (set by `cargo xtask gpu-check`) a missing CUDA
//! device is an error, so that a GPU job cannot skip the CUDA half silently.
//! CUDA results are compared with the CPU's within a tolerance
//! ([`assert_close`]); bit-identity is a CPU claim only.
//!
//! [`elf_needed`] reads the `DT_NEEDED` entries of an ELF file, for the tests
//! that check that a binary links `libtorch_cuda`.
use tch::Device;

use crate::device;
use crate::NetError;

pub use crate::elf::elf_needed;

/// The environment variable that makes CUDA required in [`devices`].
pub const REQUIRE_CUDA_ENV: &str = "LANDSCAPE_REQUIRE_CUDA";

/// Whether `LANDSCAPE_REQUIRE_CUDA` asks for CUDA (`1`, `true` or `yes`).
pub fn cuda_required() -> bool {
    std::env::var(REQUIRE_CUDA_ENV)
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// The devices to run a test on: the CPU first, then CUDA device 0 when it is
/// usable (with TF32 off, see [`device::configure_tf32`]). Without CUDA it
/// says on stderr why CUDA is not tested, or, with `LANDSCAPE_REQUIRE_CUDA=1`,
/// fails with [`NetError::Device`].
pub fn devices() -> Result<Vec<Device>, NetError> {
    device::configure_tf32(false);
    let mut out = vec![Device::Cpu];
    match device::cuda_unavailable_reason() {
        None => out.push(Device::Cuda(0)),
        Some(reason) if cuda_required() => {
            return Err(NetError::Device {
                requested: format!("cuda ({REQUIRE_CUDA_ENV}=1)"),
                reason,
            })
        }
        Some(reason) => eprintln!("CUDA not tested here: {reason}"),
    }
    Ok(out)
}

/// The first element of `other` that differs from `cpu` by more than
/// `rel * max(1, |cpu|)`, as `(index, cpu value, other value)`; also a length
/// mismatch (index = the shorter length, values NaN) or a non-finite value.
pub fn first_mismatch(cpu: &[f64], other: &[f64], rel: f64) -> Option<(usize, f64, f64)> {
    if cpu.len() != other.len() {
        return Some((cpu.len().min(other.len()), f64::NAN, f64::NAN));
    }
    cpu.iter()
        .zip(other)
        .enumerate()
        .find(|(_, (a, b))| {
            !a.is_finite() || !b.is_finite() || (*a - *b).abs() > rel * a.abs().max(1.0)
        })
        .map(|(i, (a, b))| (i, *a, *b))
}

/// Checks that `other` (a result computed on `device`) equals the CPU's `cpu`
/// within `rel * max(1, |cpu|)` per element; names `what`, the device and the
/// first mismatch in the error.
pub fn assert_close(
    what: &str,
    device: Device,
    cpu: &[f64],
    other: &[f64],
    rel: f64,
) -> Result<(), String> {
    match first_mismatch(cpu, other, rel) {
        None => Ok(()),
        Some((i, a, b)) => Err(format!(
            "{what} on {device:?} differs from the CPU's at element {i} of {}: cpu {a}, \
             {device:?} {b} (tolerance {rel} relative)",
            cpu.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn mismatch_is_relative_and_catches_lengths_and_nans() {
        assert_eq!(
            first_mismatch(&[1.0, 100.0], &[1.0 + 1e-7, 100.0 + 1e-5], 1e-6),
            None
        );
        assert_eq!(
            first_mismatch(&[1.0, 100.0], &[1.0, 100.01], 1e-6),
            Some((1, 100.0, 100.01))
        );
        assert!(first_mismatch(&[1.0], &[1.0, 2.0], 1e-6).is_some());
        assert!(first_mismatch(&[f64::NAN], &[f64::NAN], 1e-6).is_some());
        let err = assert_close("loss", Device::Cuda(0), &[1.0], &[2.0], 1e-6).unwrap_err();
        assert!(
            err.contains("loss on Cuda(0)") && err.contains("element 0"),
            "{err}"
        );
    }

    #[test]
    fn elf_needed_reads_this_test_binary() {
        let exe = std::env::current_exe().unwrap();
        let needed = elf_needed(&exe).unwrap();
        // Every binary that links libtorch needs libc and libtorch_cpu.
        assert!(
            needed.iter().any(|n| n.starts_with("libc.so")),
            "{needed:?}"
        );
        assert!(needed.iter().any(|n| n == "libtorch_cpu.so"), "{needed:?}");
        let err = elf_needed(Path::new("Cargo.toml")).unwrap_err();
        assert!(err.contains("not a 64-bit ELF file"), "{err}");
    }
}
