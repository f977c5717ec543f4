//! Which device runs the network, why another one cannot, the TF32 policy on
//! CUDA, and what is recorded about the device with every result.
//!
//! # Why a CUDA device may be unusable
//!
//! [`cuda_unavailable_reason`] names the first of: a CPU-only libtorch; a
//! CUDA libtorch that this binary did not load (`libtorch_cuda.so` not linked:
//! a build problem, see `crates/net/build.rs`); no NVIDIA driver
//! (`/proc/driver/nvidia/version` missing); a driver but no visible device
//! (`CUDA_VISIBLE_DEVICES`). [`DeviceChoice::resolve`](crate::DeviceChoice::resolve)
//! turns it into [`NetError::Device`] for `cuda`, and logs it when `auto` falls
//! back to the CPU.
//!
//! # TF32
//!
//! cuDNN runs float32 convolutions in TF32 on Ampere and later GPUs unless
//! told not to (PyTorch's `torch.backends.cudnn.allow_tf32` defaults to true):
//! about 1e-3 relative error in losses, BN statistics and Hessian-vector
//! products, the size of the thresholds the Hessian analysis uses. tch exposes
//! no switch for it, so [`configure_tf32`] sets `NVIDIA_TF32_OVERRIDE=0` in the
//! process (read by cuDNN and cuBLAS when they initialise, which is after the
//! first CUDA operation), unless TF32 is explicitly allowed. The CLI calls it
//! first thing in `main` (`--allow-tf32` allows it); [`DeviceChoice::resolve`]
//! applies the default (off) for library users who never called it.
//! [`DeviceInfo::tf32`] records the setting.
use std::path::Path;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The environment variable through which NVIDIA's libraries allow (unset)
/// or forbid (`0`) TF32.
pub const TF32_OVERRIDE_ENV: &str = "NVIDIA_TF32_OVERRIDE";

/// The CUDA version the linked libtorch was built for (`cuda` in the wheel's
/// `version.py`, e.g. `13.0`); empty for a CPU build or a libtorch archive.
pub const LIBTORCH_CUDA: &str = env!("LANDSCAPE_LIBTORCH_CUDA");

static TF32: OnceLock<bool> = OnceLock::new();

/// Sets the process's TF32 policy: `allow = false` (the default) sets
/// `NVIDIA_TF32_OVERRIDE=0`, so that float32 convolutions and matrix products
/// on CUDA round as on the CPU; `allow = true` removes the variable (the
/// libraries' own default: TF32 in cuDNN convolutions). Only the first call
/// has an effect (the libraries read the variable once); it returns the
/// policy in force.
///
/// Call it before any CUDA work and before starting threads that may read the
/// environment (first thing in `main`).
pub fn configure_tf32(allow: bool) -> bool {
    *TF32.get_or_init(|| {
        if allow {
            std::env::remove_var(TF32_OVERRIDE_ENV);
        } else {
            std::env::set_var(TF32_OVERRIDE_ENV, "0");
        }
        allow
    })
}

/// Whether TF32 is allowed in this process: the policy set by
/// [`configure_tf32`], or, when it was never called, what the environment
/// says (`NVIDIA_TF32_OVERRIDE=0` forbids it).
pub fn tf32_allowed() -> bool {
    match TF32.get() {
        Some(&allow) => allow,
        None => std::env::var(TF32_OVERRIDE_ENV).map_or(true, |v| v.trim() != "0"),
    }
}

/// Whether the `libtorch_cuda` library is loaded in this process (read from
/// `/proc/self/maps`; `None` where that file does not exist). Reads the maps
/// after touching libtorch, so the answer is about the linked libtorch.
pub fn libtorch_cuda_loaded() -> Option<bool> {
    // Touch libtorch so that its libraries are certainly mapped.
    let _ = tch::utils::has_cuda();
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    Some(maps.lines().any(|l| l.ends_with("/libtorch_cuda.so")))
}

/// The folder of the libtorch libraries loaded in this process (that of
/// `libtorch_cpu.so` in `/proc/self/maps`), if it can be found.
pub fn libtorch_lib_dir() -> Option<std::path::PathBuf> {
    let _ = tch::utils::has_cuda();
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|l| {
        let path = l.split_whitespace().nth(5)?;
        path.ends_with("/libtorch_cpu.so")
            .then(|| Path::new(path).parent().map(Path::to_path_buf))
            .flatten()
    })
}

/// The version of the loaded NVIDIA kernel driver, from
/// `/proc/driver/nvidia/version` (`None` without a driver).
pub fn nvidia_driver_version() -> Option<String> {
    let text = std::fs::read_to_string("/proc/driver/nvidia/version").ok()?;
    let line = text.lines().next()?;
    // "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar ..."
    let after = line
        .split("Kernel Module")
        .nth(1)
        .unwrap_or(line.trim_start_matches("NVRM version:"));
    after
        .split_whitespace()
        .find(|t| t.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_owned)
}

/// The model names of the GPUs the driver knows (`Model:` in
/// `/proc/driver/nvidia/gpus/*/information`, in PCI order).
pub fn nvidia_gpu_names() -> Vec<String> {
    let mut dirs: Vec<_> = std::fs::read_dir("/proc/driver/nvidia/gpus")
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs.iter()
        .filter_map(|d| {
            let text = std::fs::read_to_string(d.join("information")).ok()?;
            text.lines().find_map(|l| {
                l.strip_prefix("Model:")
                    .map(|m| m.trim().to_owned())
                    .filter(|m| !m.is_empty())
            })
        })
        .collect()
}

/// Free memory of CUDA device `index` in bytes, per `nvidia-smi` (tch exposes
/// no `cudaMemGetInfo`); `None` when it cannot be read. The index is
/// nvidia-smi's (PCI order), the same as CUDA's on a one-GPU machine.
pub fn cuda_free_bytes(index: usize) -> Option<usize> {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=memory.free",
            "--format=csv,noheader,nounits",
            "-i",
            &index.to_string(),
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mib: usize = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    mib.checked_mul(1 << 20)
}

/// Why CUDA device 0 cannot be used, or `None` when it can.
pub fn cuda_unavailable_reason() -> Option<String> {
    if tch::Cuda::is_available() {
        return None;
    }
    let version = crate::LIBTORCH_VERSION;
    let no_cuda_library =
        libtorch_lib_dir().is_some_and(|dir| !dir.join("libtorch_cuda.so").is_file());
    if version.ends_with("+cpu") || no_cuda_library {
        return Some(format!(
            "the linked libtorch {version} is a CPU-only build (install a CUDA build: \
             `cargo xtask setup` with a CUDA wheel, see the README's \"Using a GPU\")"
        ));
    }
    if libtorch_cuda_loaded() == Some(false) {
        return Some(format!(
            "libtorch {version} is a CUDA build but this binary did not load \
             libtorch_cuda.so (it was linked without it; rebuild with this \
             workspace's crates/net/build.rs)"
        ));
    }
    let Some(driver) = nvidia_driver_version() else {
        return Some(
            "no NVIDIA driver is loaded (/proc/driver/nvidia/version does not exist)".to_owned(),
        );
    };
    let visible = std::env::var("CUDA_VISIBLE_DEVICES")
        .map(|v| format!(" (CUDA_VISIBLE_DEVICES={v:?})"))
        .unwrap_or_default();
    Some(format!(
        "NVIDIA driver {driver} is loaded and sees {} GPU(s), but libtorch finds no \
         usable CUDA device{visible}; check that the driver supports CUDA {}",
        nvidia_gpu_names().len(),
        if LIBTORCH_CUDA.is_empty() {
            "(unknown)"
        } else {
            LIBTORCH_CUDA
        }
    ))
}

/// What is recorded about the device a result was computed on (`run.json`;
/// on CUDA, its GPU, CUDA, cuDNN and TF32 keys also enter the fingerprint).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `cpu` or `cuda`.
    pub kind: String,
    /// The CUDA device index (`None` on the CPU).
    pub index: Option<usize>,
    /// The GPU's model name(s) as the driver reports them (several joined by
    /// ` | ` on a machine with more than one GPU); `None` on the CPU.
    pub gpu: Option<String>,
    /// The NVIDIA driver version (`None` on the CPU or without a driver).
    pub driver: Option<String>,
    /// The CUDA version the libtorch was built for (`13.0`); `None` for a
    /// CPU build.
    pub cuda: Option<String>,
    /// The CUDA runtime version libtorch reports (`13000`); `None` on the CPU.
    pub cuda_runtime: Option<i64>,
    /// The cuDNN version libtorch reports (`92000`); `None` on the CPU or
    /// without cuDNN.
    pub cudnn: Option<i64>,
    /// Whether TF32 was allowed in float32 convolutions and matrix products
    /// (meaningful on CUDA only; the CPU never uses TF32).
    pub tf32: bool,
}

impl DeviceInfo {
    /// What to record about `device` in this process.
    pub fn of(device: tch::Device) -> DeviceInfo {
        let cuda = (!LIBTORCH_CUDA.is_empty()).then(|| LIBTORCH_CUDA.to_owned());
        match device {
            tch::Device::Cuda(index) => {
                let names = nvidia_gpu_names();
                DeviceInfo {
                    kind: "cuda".to_owned(),
                    index: Some(index),
                    gpu: (!names.is_empty()).then(|| names.join(" | ")),
                    driver: nvidia_driver_version(),
                    cuda,
                    // Both throw (tch panics) without the CUDA hooks: only
                    // asked when libtorch sees a device.
                    cuda_runtime: tch::Cuda::is_available().then(tch::utils::version_cudart),
                    cudnn: tch::Cuda::cudnn_is_available().then(tch::utils::version_cudnn),
                    tf32: tf32_allowed(),
                }
            }
            _ => DeviceInfo {
                kind: "cpu".to_owned(),
                index: None,
                gpu: None,
                driver: None,
                cuda,
                cuda_runtime: None,
                cudnn: None,
                tf32: false,
            },
        }
    }

    /// The keys this device adds to an experiment's fingerprint: none on the
    /// CPU (so CPU fingerprints are those of earlier versions); on CUDA the
    /// GPU model, the CUDA and cuDNN versions and the TF32 setting, all of
    /// which change the numbers (the driver version does not enter).
    pub fn fingerprint_keys(&self) -> Vec<(String, String)> {
        if self.kind != "cuda" {
            return Vec::new();
        }
        let json = |v: &Option<String>| match v {
            Some(s) => format!("{s:?}"),
            None => "null".to_owned(),
        };
        let num = |v: Option<i64>| v.map_or_else(|| "null".to_owned(), |n| n.to_string());
        vec![
            ("device.gpu".to_owned(), json(&self.gpu)),
            ("device.cuda_runtime".to_owned(), num(self.cuda_runtime)),
            ("device.cudnn".to_owned(), num(self.cudnn)),
            ("device.tf32".to_owned(), self.tf32.to_string()),
        ]
    }

    /// One line for logs: `cpu`, or `cuda:0 (NVIDIA H200, driver 550.54, CUDA
    /// 13.0, cuDNN 92000, TF32 off)`.
    pub fn summary(&self) -> String {
        if self.kind != "cuda" {
            return "cpu".to_owned();
        }
        format!(
            "cuda:{} ({}, driver {}, CUDA {}, cuDNN {}, TF32 {})",
            self.index.unwrap_or(0),
            self.gpu.as_deref().unwrap_or("unknown GPU"),
            self.driver.as_deref().unwrap_or("unknown"),
            self.cuda.as_deref().unwrap_or("unknown"),
            self.cudnn
                .map_or_else(|| "none".to_owned(), |v| v.to_string()),
            if self.tf32 { "allowed" } else { "off" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_info_adds_no_fingerprint_keys() {
        let info = DeviceInfo::of(tch::Device::Cpu);
        assert_eq!(info.kind, "cpu");
        assert!(info.fingerprint_keys().is_empty());
        assert_eq!(info.summary(), "cpu");
        assert_eq!(info.gpu, None);
    }

    #[test]
    fn cuda_info_names_its_keys() {
        let info = DeviceInfo {
            kind: "cuda".into(),
            index: Some(0),
            gpu: Some("NVIDIA H200".into()),
            driver: Some("550.54.15".into()),
            cuda: Some("13.0".into()),
            cuda_runtime: Some(13000),
            cudnn: Some(92000),
            tf32: false,
        };
        let keys = info.fingerprint_keys();
        assert_eq!(
            keys,
            vec![
                ("device.gpu".to_owned(), "\"NVIDIA H200\"".to_owned()),
                ("device.cuda_runtime".to_owned(), "13000".to_owned()),
                ("device.cudnn".to_owned(), "92000".to_owned()),
                ("device.tf32".to_owned(), "false".to_owned()),
            ]
        );
        assert_eq!(
            info.summary(),
            "cuda:0 (NVIDIA H200, driver 550.54.15, CUDA 13.0, cuDNN 92000, TF32 off)"
        );
        let back: DeviceInfo =
            serde_json::from_str(&serde_json::to_string(&info).unwrap_or_default())
                .unwrap_or_else(|_| DeviceInfo::of(tch::Device::Cpu));
        assert_eq!(back, info);
    }

    #[test]
    fn cuda_out_of_memory_is_recognised() {
        let oom = tch::TchError::Torch(
            "CUDA out of memory. Tried to allocate 1.56 GiB (GPU 0; 79.1 GiB total)".into(),
        );
        assert!(crate::eval::is_out_of_memory(&oom));
        let other = tch::TchError::Torch("shape mismatch".into());
        assert!(!crate::eval::is_out_of_memory(&other));
    }

    #[test]
    fn no_gpu_here_has_a_reason_or_a_device() {
        // On a machine without a usable GPU the reason is named; with one, none.
        match cuda_unavailable_reason() {
            Some(reason) => {
                assert!(!tch::Cuda::is_available());
                assert!(reason.len() > 20, "{reason}");
            }
            None => assert!(tch::Cuda::is_available()),
        }
    }
}
