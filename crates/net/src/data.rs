//! A labelled image set held on a device.
use tch::{Device, Kind, Tensor};

use crate::config::{IN_CHANNELS, IN_SIZE};
use crate::model::{channels_last, tensor_from};
use crate::NetError;

/// Images (`f32`, NCHW `[N, 3, 32, 32]`, already normalised by the caller;
/// held in the channels-last layout for speed) and labels (`i64`, `[N]`) on
/// one device.
pub struct Data {
    pub(crate) images: Tensor,
    pub(crate) labels: Tensor,
    len: usize,
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Data")
            .field("len", &self.len)
            .field("device", &self.images.device())
            .finish()
    }
}

impl Data {
    /// The same examples with the images converted to `kind` (labels
    /// unchanged), for float64 Hessian-vector products.
    pub(crate) fn to_kind(&self, kind: Kind) -> Result<Data, NetError> {
        Ok(Data {
            images: self.images.f_to_kind(kind)?,
            labels: self.labels.shallow_clone(),
            len: self.len,
        })
    }
}

impl Data {
    /// Copies `images_nchw` (`N * 3 * 32 * 32` values, image after image, each
    /// channel-major) and `labels` (`N` class indices) to `device`.
    pub fn new(images_nchw: &[f32], labels: &[u8], device: Device) -> Result<Self, NetError> {
        let per_image = (IN_CHANNELS * IN_SIZE * IN_SIZE) as usize;
        let n = labels.len();
        if images_nchw.len() != n * per_image {
            return Err(NetError::Data(format!(
                "{} labels need {} image values ({} per 3x32x32 image), found {}",
                n,
                n * per_image,
                per_image,
                images_nchw.len()
            )));
        }
        if let Some(i) = images_nchw.iter().position(|v| !v.is_finite()) {
            return Err(NetError::Data(format!(
                "image value #{i} (image {}) is not finite: {}",
                i / per_image,
                images_nchw[i]
            )));
        }
        let n_i64 = n as i64;
        let images = channels_last(tensor_from(
            images_nchw,
            &[n_i64, IN_CHANNELS, IN_SIZE, IN_SIZE],
            device,
        )?)?;
        let labels: Vec<i64> = labels.iter().map(|&l| i64::from(l)).collect();
        let labels = crate::model::slice_on(&labels, device)?;
        Ok(Self {
            images,
            labels,
            len: n,
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first `n` examples (all of them if `n >= len`), sharing storage.
    pub fn head(&self, n: usize) -> Result<Data, NetError> {
        let n = n.min(self.len);
        Ok(Data {
            images: self.images.f_narrow(0, 0, n as i64)?,
            labels: self.labels.f_narrow(0, 0, n as i64)?,
            len: n,
        })
    }

    /// The device holding the data.
    pub fn device(&self) -> Device {
        self.images.device()
    }

    /// Images of the examples at `idx` (an `i64` index tensor on the data's
    /// device), `[len, 3, 32, 32]` in the channels-last layout: gathered as
    /// contiguous NHWC rows (a plain row copy) and viewed as NCHW.
    pub(crate) fn gather_images(&self, idx: &Tensor) -> Result<Tensor, NetError> {
        let nhwc = self.images.f_permute([0, 2, 3, 1])?;
        Ok(nhwc.f_index_select(0, idx)?.f_permute([0, 3, 1, 2])?)
    }

    /// The images tensor `[N, 3, 32, 32]` (shallow handle).
    pub fn images(&self) -> Tensor {
        self.images.shallow_clone()
    }

    /// The labels tensor `[N]` of `i64` (shallow handle).
    pub fn labels(&self) -> Tensor {
        self.labels.shallow_clone()
    }

    /// The largest label plus one (0 when empty).
    pub(crate) fn label_bound(&self) -> Result<i64, NetError> {
        if self.len == 0 {
            return Ok(0);
        }
        Ok(self
            .labels
            .f_max()?
            .f_to_kind(Kind::Int64)?
            .f_int64_value(&[])?
            + 1)
    }

    /// A subset by index (copied), e.g. a fixed sample for the BN re-estimation.
    pub fn select(&self, indices: &[i64]) -> Result<Data, NetError> {
        if let Some(&bad) = indices.iter().find(|&&i| i < 0 || i as usize >= self.len) {
            return Err(NetError::Data(format!(
                "index {bad} is out of range for {} examples",
                self.len
            )));
        }
        let idx = crate::model::slice_on(indices, self.device())?;
        Ok(Data {
            images: self.gather_images(&idx)?,
            labels: self.labels.f_index_select(0, &idx)?,
            len: indices.len(),
        })
    }
}
