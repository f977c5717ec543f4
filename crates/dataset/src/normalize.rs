//! Per-channel normalisation to `f32`.
use serde::{Deserialize, Serialize};

use crate::error::{DatasetError, Result};
use crate::split::Split;
use crate::{CHANNEL_PIXELS, IMAGE_BYTES};

/// Per-channel mean and standard deviation of pixel values scaled to
/// `[0, 1]`; maps a byte `x` of channel `c` to `(x / 255 - mean[c]) / std[c]`.
///
/// [`Normalization::from_split`] computes them (from the training split, as
/// the experiments do) with exact integer sums, so they do not depend on
/// summation order or thread count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Mean of each channel (R, G, B), pixel values in `[0, 1]`.
    pub mean: [f64; 3],
    /// Population standard deviation of each channel, pixel values in `[0, 1]`.
    pub std: [f64; 3],
}

impl Normalization {
    /// Mean and standard deviation of each channel over every pixel of `split`.
    ///
    /// An empty split, or a channel with zero variance, gives an error rather
    /// than a division by zero later.
    pub fn from_split(split: &Split) -> Result<Self> {
        if split.is_empty() {
            return Err(DatasetError::InvalidArgument {
                name: "split",
                reason: "cannot compute a normalisation from an empty split".into(),
            });
        }
        let mut sum = [0u64; 3];
        let mut sum_sq = [0u64; 3];
        for image in split.images().chunks_exact(IMAGE_BYTES) {
            for (c, plane) in image.chunks_exact(CHANNEL_PIXELS).enumerate() {
                let (mut s, mut q) = (0u64, 0u64);
                for &x in plane {
                    let x = u64::from(x);
                    s += x;
                    q += x * x;
                }
                sum[c] += s;
                sum_sq[c] += q;
            }
        }
        let n = (split.len() * CHANNEL_PIXELS) as f64;
        let mut mean = [0.0; 3];
        let mut std = [0.0; 3];
        for c in 0..3 {
            let m = sum[c] as f64 / n;
            let var = (sum_sq[c] as f64 / n - m * m).max(0.0);
            if var == 0.0 {
                return Err(DatasetError::InvalidArgument {
                    name: "split",
                    reason: format!("channel {c} is constant: its standard deviation is 0"),
                });
            }
            mean[c] = m / 255.0;
            std[c] = var.sqrt() / 255.0;
        }
        Ok(Self { mean, std })
    }

    /// Given mean and standard deviation (pixel values in `[0, 1]`).
    pub fn new(mean: [f64; 3], std: [f64; 3]) -> Result<Self> {
        if let Some(c) = (0..3).find(|&c| !(std[c] > 0.0 && std[c].is_finite())) {
            return Err(DatasetError::InvalidArgument {
                name: "std",
                reason: format!("channel {c}: {} is not a positive number", std[c]),
            });
        }
        if let Some(c) = (0..3).find(|&c| !mean[c].is_finite()) {
            return Err(DatasetError::InvalidArgument {
                name: "mean",
                reason: format!("channel {c}: {} is not finite", mean[c]),
            });
        }
        Ok(Self { mean, std })
    }

    /// The normalised value of every byte value, per channel.
    fn table(&self) -> [[f32; 256]; 3] {
        let mut lut = [[0f32; 256]; 3];
        for (c, row) in lut.iter_mut().enumerate() {
            for (x, v) in row.iter_mut().enumerate() {
                *v = ((x as f64 / 255.0 - self.mean[c]) / self.std[c]) as f32;
            }
        }
        lut
    }

    /// Normalises NCHW images (`k * 3072` bytes) into a new buffer.
    pub fn normalize(&self, images: &[u8]) -> Vec<f32> {
        let lut = self.table();
        let mut out = Vec::with_capacity(images.len());
        for image in images.chunks(IMAGE_BYTES) {
            for (c, plane) in image.chunks(CHANNEL_PIXELS).enumerate() {
                let row = &lut[c % 3];
                out.extend(plane.iter().map(|&x| row[usize::from(x)]));
            }
        }
        out
    }

    /// Normalises NCHW images (`k * 3072` bytes) into `out` (`k * 3072` floats).
    pub fn normalize_into(&self, images: &[u8], out: &mut [f32]) -> Result<()> {
        if images.len() % IMAGE_BYTES != 0 {
            return Err(DatasetError::InvalidArgument {
                name: "images",
                reason: format!(
                    "{} bytes is not a whole number of 3,072-byte images",
                    images.len()
                ),
            });
        }
        if out.len() != images.len() {
            return Err(DatasetError::InvalidArgument {
                name: "out",
                reason: format!(
                    "holds {} floats, the images need {}",
                    out.len(),
                    images.len()
                ),
            });
        }
        let lut = self.table();
        for (image, dst) in images
            .chunks_exact(IMAGE_BYTES)
            .zip(out.chunks_exact_mut(IMAGE_BYTES))
        {
            for (c, (plane, dst)) in image
                .chunks_exact(CHANNEL_PIXELS)
                .zip(dst.chunks_exact_mut(CHANNEL_PIXELS))
                .enumerate()
            {
                let row = &lut[c];
                for (d, &x) in dst.iter_mut().zip(plane) {
                    *d = row[usize::from(x)];
                }
            }
        }
        Ok(())
    }
}
