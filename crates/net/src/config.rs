//! Network configuration and device choice.
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Activation, NetError};

/// Input channels (RGB).
pub(crate) const IN_CHANNELS: i64 = 3;
/// Input height and width.
pub(crate) const IN_SIZE: i64 = 32;
/// Convolution kernel size.
pub(crate) const KERNEL: i64 = 3;

/// The DCNN's shape: hidden widths, number of classes and activation.
///
/// The number of convolutions is `widths.len() + 1`; with stride 2 the
/// spatial size halves each time, so at most five convolutions fit a 32x32
/// input (the paper's five, `widths.len() == 4`). With fewer, the last
/// convolution's output is averaged over the remaining positions.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NetConfig {
    /// Output channels of paper layers 2..=5 (the hidden convolutions).
    pub widths: Vec<i64>,
    /// Number of classes (output channels of the last convolution).
    pub classes: i64,
    /// Activation after every hidden layer.
    pub activation: Activation,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self::paper()
    }
}

impl NetConfig {
    /// The paper's network with ReLU: widths `[32, 64, 152, 56]`, 10 classes,
    /// exactly the paper's 188,810 parameters (the paper reports the count but
    /// not the widths; these double, double, then widen and narrow, and are
    /// the `paper-cifar` preset of `landscape-bezout` too).
    pub fn paper() -> Self {
        Self {
            widths: vec![32, 64, 152, 56],
            classes: 10,
            activation: Activation::Relu,
        }
    }

    /// Same widths and classes with another activation.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Number of trainable parameters (conv weights and biases; BN has none).
    pub fn param_count(&self) -> usize {
        self.layer_shapes()
            .iter()
            .map(|(cin, cout)| {
                let w = cout * cin * KERNEL * KERNEL + cout;
                usize::try_from(w).unwrap_or(0)
            })
            .sum()
    }

    /// `(in_channels, out_channels)` of every convolution, paper layers 2..
    pub(crate) fn layer_shapes(&self) -> Vec<(i64, i64)> {
        let mut shapes = Vec::with_capacity(self.widths.len() + 1);
        let mut cin = IN_CHANNELS;
        for &w in &self.widths {
            shapes.push((cin, w));
            cin = w;
        }
        shapes.push((cin, self.classes));
        shapes
    }

    /// Checks widths, classes and activation.
    pub fn validate(&self) -> Result<(), NetError> {
        let max_hidden = 4;
        if self.widths.is_empty() || self.widths.len() > max_hidden {
            return Err(NetError::Config {
                field: "widths".to_string(),
                reason: format!(
                    "must list 1..={max_hidden} hidden widths (a 32x32 input allows five stride-2 convolutions), found {}",
                    self.widths.len()
                ),
            });
        }
        if let Some((i, w)) = self
            .widths
            .iter()
            .enumerate()
            .find(|(_, &w)| !(1..=65_536).contains(&w))
        {
            return Err(NetError::Config {
                field: format!("widths[{i}]"),
                reason: format!("must be in 1..=65536, found {w}"),
            });
        }
        if !(2..=65_536).contains(&self.classes) {
            return Err(NetError::Config {
                field: "classes".to_string(),
                reason: format!("must be in 2..=65536, found {}", self.classes),
            });
        }
        self.activation.validate()
    }

    /// Spatial size after all convolutions (1 for the paper's five).
    pub(crate) fn final_size(&self) -> i64 {
        let mut s = IN_SIZE;
        for _ in 0..=self.widths.len() {
            s = (s + 1) / 2;
        }
        s
    }
}

/// Where to run: `auto` (CUDA when available, else CPU), `cpu` or `cuda`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChoice {
    /// CUDA device 0 when present, the CPU otherwise.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA device 0 (an error when no GPU is usable).
    Cuda,
}

impl DeviceChoice {
    /// The `tch` device for this choice. `cuda` without a usable GPU is
    /// [`NetError::Device`] naming the reason (CPU-only libtorch, libtorch_cuda
    /// not linked, no driver, no visible device: see
    /// [`cuda_unavailable_reason`](crate::device::cuda_unavailable_reason));
    /// `auto` logs the device it chose and, when it falls back to the CPU,
    /// why. Applies the default TF32 policy (off, see
    /// [`configure_tf32`](crate::device::configure_tf32)) if none was set.
    pub fn resolve(self) -> Result<tch::Device, NetError> {
        if self != DeviceChoice::Cpu {
            crate::device::configure_tf32(false);
        }
        match self {
            DeviceChoice::Cpu => Ok(tch::Device::Cpu),
            DeviceChoice::Auto => match crate::device::cuda_unavailable_reason() {
                None => {
                    let device = tch::Device::Cuda(0);
                    let info = crate::device::DeviceInfo::of(device);
                    tracing::info!(device = %info.summary(), "--device auto chose CUDA");
                    Ok(device)
                }
                Some(reason) => {
                    tracing::info!(device = "cpu", %reason, "--device auto chose the CPU");
                    Ok(tch::Device::Cpu)
                }
            },
            DeviceChoice::Cuda => match crate::device::cuda_unavailable_reason() {
                None => {
                    let device = tch::Device::Cuda(0);
                    let info = crate::device::DeviceInfo::of(device);
                    tracing::info!(device = %info.summary(), "using CUDA");
                    Ok(device)
                }
                Some(reason) => Err(NetError::Device {
                    requested: "cuda".to_string(),
                    reason,
                }),
            },
        }
    }
}

impl FromStr for DeviceChoice {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda),
            other => Err(NetError::Config {
                field: "device".to_string(),
                reason: format!("must be auto, cpu or cuda, found `{other}`"),
            }),
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeviceChoice::Auto => "auto",
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Cuda => "cuda",
        })
    }
}
