//! Gradients and Hessian-vector products of the training loss, through
//! libtorch's double backward, in bounded memory.
//!
//! The loss is the mean softmax cross-entropy over a set of examples; it is
//! accumulated over chunks of `chunk_size` examples, so memory grows with the
//! chunk, not the set. The parameters are the trainable tensors in the order
//! of [`Dcnn::param_names_shapes`]-style export (`layer2.weight`,
//! `layer2.bias`, ..., `layer6.bias`), flattened row-major into one vector.
//!
//! Batch normalisation makes "the" Hessian ambiguous; [`HessianBn`] says which:
//!
//! * [`HessianBn::Fixed`]: BN normalises with the model's running statistics
//!   (eval mode; re-estimate them first). The loss is then a sum over examples
//!   and the chunked Hessian is exact, independent of the chunk size.
//! * [`HessianBn::Batch`]: BN normalises each chunk with its own batch
//!   statistics (as training does; the running statistics are left alone).
//!   The statistics depend on the weights, so this Hessian has extra terms,
//!   and it depends on the chunk size (ghost batches of `chunk_size`).
//!
//! [`HessianPrecision`] says in which float type the products are formed:
//! `f32` (the model as trained) or `f64` (float64 copies of the weights, BN
//! statistics and images, so that eigenvalues far below the top one, e.g.
//! the near-zero ones that degeneracy counts look for, are not buried under
//! float32 round-off).
use std::cell::Cell;

use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, Tensor};

use crate::model::BnMode;
use crate::{Data, Dcnn, NetError};

/// Which batch-normalisation statistics the differentiated loss uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HessianBn {
    /// The model's running statistics, held fixed (eval mode).
    #[default]
    Fixed,
    /// Each chunk's own batch statistics (train mode, ghost batches).
    Batch,
}

impl HessianBn {
    /// `fixed` or `batch`.
    pub fn as_str(self) -> &'static str {
        match self {
            HessianBn::Fixed => "fixed",
            HessianBn::Batch => "batch",
        }
    }
}

/// The float type of the Hessian-vector products.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HessianPrecision {
    /// The model's own float32 (fast). On a freshly initialised paper
    /// network (1,000 images) a product is off by 4.9e-3 of its norm: the
    /// round-off of oneDNN's convolutions in the channels-last layout the
    /// model keeps its tensors in (PyTorch's default layout gives 7.3e-4);
    /// `crates/net/tests/precision.rs` measures both.
    #[default]
    F32,
    /// Float64 copies of the weights, BN statistics and images (1.6e-15 of
    /// the norm from an independent float64 product in that test).
    F64,
}

impl HessianPrecision {
    /// `f32` or `f64`.
    pub fn as_str(self) -> &'static str {
        match self {
            HessianPrecision::F32 => "f32",
            HessianPrecision::F64 => "f64",
        }
    }

    fn kind(self) -> Kind {
        match self {
            HessianPrecision::F32 => Kind::Float,
            HessianPrecision::F64 => Kind::Double,
        }
    }
}

impl std::str::FromStr for HessianPrecision {
    type Err = String;

    /// `f32` or `f64`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(HessianPrecision::F32),
            "f64" => Ok(HessianPrecision::F64),
            _ => Err(format!("`{s}`: expected f32 or f64")),
        }
    }
}

impl std::str::FromStr for HessianBn {
    type Err = String;

    /// `fixed` or `batch`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fixed" => Ok(HessianBn::Fixed),
            "batch" => Ok(HessianBn::Batch),
            _ => Err(format!("`{s}`: expected fixed or batch")),
        }
    }
}

/// The training loss of one model on one set, differentiable twice.
pub struct LossHessian<'a> {
    model: &'a Dcnn,
    data: &'a Data,
    chunk_size: usize,
    bn: HessianBn,
    shapes: Vec<Vec<i64>>,
    dim: usize,
    products: Cell<usize>,
    /// With a single chunk: its gradient, kept with its graph after the
    /// first product so that the next ones need only the second backward
    /// (PyHessian's single-batch mode). Several chunks are recomputed per
    /// product, which bounds the memory to one chunk's graph.
    kept: std::cell::RefCell<Option<Vec<Tensor>>>,
    precision: HessianPrecision,
    /// With [`HessianPrecision::F64`]: float64 copies of the model and data.
    double: Option<(Dcnn, Data)>,
}

impl<'a> LossHessian<'a> {
    /// The loss of `model` on `data` in chunks of `chunk_size`, BN as `bn` says.
    pub fn new(
        model: &'a Dcnn,
        data: &'a Data,
        chunk_size: usize,
        bn: HessianBn,
    ) -> Result<Self, NetError> {
        if chunk_size == 0 {
            return Err(NetError::Config {
                field: "chunk_size".into(),
                reason: "must be positive".into(),
            });
        }
        if data.is_empty() {
            return Err(NetError::Data(
                "the Hessian needs at least one example".into(),
            ));
        }
        if bn == HessianBn::Batch && chunk_size < 2 {
            return Err(NetError::Config {
                field: "chunk_size".into(),
                reason: "must be at least 2 with batch statistics".into(),
            });
        }
        let shapes: Vec<Vec<i64>> = model.params().iter().map(|t| t.size()).collect();
        let dim = shapes
            .iter()
            .map(|s| s.iter().product::<i64>())
            .sum::<i64>();
        Ok(LossHessian {
            model,
            data,
            chunk_size,
            bn,
            shapes,
            dim: usize::try_from(dim).unwrap_or(0),
            products: Cell::new(0),
            kept: std::cell::RefCell::new(None),
            precision: HessianPrecision::F32,
            double: None,
        })
    }

    /// The same loss with products in `precision` (default
    /// [`HessianPrecision::F32`]); `F64` copies the model and the data to
    /// float64 once, here.
    pub fn with_precision(mut self, precision: HessianPrecision) -> Result<Self, NetError> {
        self.double = match precision {
            HessianPrecision::F32 => None,
            HessianPrecision::F64 => Some((
                self.model.to_kind(Kind::Double)?,
                self.data.to_kind(Kind::Double)?,
            )),
        };
        self.precision = precision;
        *self.kept.borrow_mut() = None;
        Ok(self)
    }

    /// The float type of the products.
    pub fn precision(&self) -> HessianPrecision {
        self.precision
    }

    /// The model and data the products differentiate (float64 copies in `F64`).
    fn net(&self) -> (&Dcnn, &Data) {
        match &self.double {
            Some((model, data)) => (model, data),
            None => (self.model, self.data),
        }
    }

    /// Number of parameters (the Hessian is `dim x dim`).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Examples the loss is averaged over.
    pub fn examples(&self) -> usize {
        self.data.len()
    }

    /// The BN statistics used.
    pub fn bn(&self) -> HessianBn {
        self.bn
    }

    /// Hessian-vector products computed so far.
    pub fn products(&self) -> usize {
        self.products.get()
    }

    fn mode(&self) -> BnMode {
        match self.bn {
            HessianBn::Fixed => BnMode::Running,
            HessianBn::Batch => BnMode::BatchOnly,
        }
    }

    /// The mean loss of one chunk's examples, scaled by `len / N` so that the
    /// chunks sum to the mean over all `N`.
    fn chunk_loss(&self, start: usize, len: usize) -> Result<Tensor, NetError> {
        let (model, data) = self.net();
        let xs = data.images.f_narrow(0, start as i64, len as i64)?;
        let ys = data.labels.f_narrow(0, start as i64, len as i64)?;
        let logits = model.forward_mode(&xs, self.mode(), None)?;
        let sum = logits.f_cross_entropy_loss(&ys, None::<&Tensor>, Reduction::Sum, -100, 0.0)?;
        Ok(sum.f_div_scalar(self.data.len() as f64)?)
    }

    fn chunks(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let n = self.data.len();
        (0..n)
            .step_by(self.chunk_size)
            .map(move |s| (s, self.chunk_size.min(n - s)))
    }

    fn check(&self, v: &[f64]) -> Result<(), NetError> {
        if v.len() != self.dim {
            return Err(NetError::Data(format!(
                "a vector of {} entries for a Hessian of dimension {}",
                v.len(),
                self.dim
            )));
        }
        Ok(())
    }

    /// `v` split into tensors shaped like the parameters (in the products'
    /// float type, on the model's device).
    fn split(&self, v: &[f64]) -> Result<Vec<Tensor>, NetError> {
        let mut out = Vec::with_capacity(self.shapes.len());
        let mut at = 0usize;
        for s in &self.shapes {
            let n = usize::try_from(s.iter().product::<i64>()).unwrap_or(0);
            out.push(
                crate::model::slice_on(&v[at..at + n], self.model.device())?
                    .f_to_kind(self.precision.kind())?
                    .f_reshape(s.as_slice())?,
            );
            at += n;
        }
        Ok(out)
    }

    fn add_into(acc: &mut [f64], grads: &[Tensor]) -> Result<(), NetError> {
        let mut at = 0usize;
        for g in grads {
            let flat = g
                .f_to_kind(Kind::Double)?
                .f_to_device(tch::Device::Cpu)?
                .f_flatten(0, -1)?;
            let n = usize::try_from(flat.size().first().copied().unwrap_or(0)).unwrap_or(0);
            let mut buf = vec![0f64; n];
            flat.f_copy_data(&mut buf, n)?;
            for (a, b) in acc[at..at + n].iter_mut().zip(&buf) {
                *a += b;
            }
            at += n;
        }
        Ok(())
    }

    /// The mean loss and its gradient (flattened, f64 accumulation over chunks).
    pub fn loss_and_gradient(&self) -> Result<(f64, Vec<f64>), NetError> {
        let params = self.net().0.params();
        let mut grad = vec![0f64; self.dim];
        let mut loss = 0f64;
        for (s, len) in self.chunks() {
            let l = self.chunk_loss(s, len)?;
            loss += l.f_double_value(&[])?;
            let g = Tensor::f_run_backward(&[&l], &params, false, false)?;
            Self::add_into(&mut grad, &g)?;
        }
        Ok((loss, grad))
    }

    /// `H v`, the Hessian of the mean loss times `v` (flattened; products in
    /// the [`HessianPrecision`], accumulated in f64 over chunks). When the data fit in one chunk the
    /// first product keeps the gradient's graph and later products reuse it
    /// (the same numbers, one backward instead of a forward and two).
    pub fn hvp(&self, v: &[f64]) -> Result<Vec<f64>, NetError> {
        self.check(v)?;
        let params = self.net().0.params();
        let vs = self.split(v)?;
        let mut out = vec![0f64; self.dim];
        let single = self.data.len() <= self.chunk_size;
        for (s, len) in self.chunks() {
            let kept = if single {
                self.kept
                    .borrow()
                    .as_ref()
                    .map(|g| g.iter().map(Tensor::shallow_clone).collect::<Vec<_>>())
            } else {
                None
            };
            let g = match kept {
                Some(g) => g,
                None => {
                    let l = self.chunk_loss(s, len)?;
                    let g = Tensor::f_run_backward(&[&l], &params, true, true)?;
                    if single {
                        *self.kept.borrow_mut() =
                            Some(g.iter().map(Tensor::shallow_clone).collect());
                    }
                    g
                }
            };
            let kind = self.precision.kind();
            let mut dot = Tensor::f_zeros([], (kind, self.model.device()))?;
            for (gi, vi) in g.iter().zip(&vs) {
                dot = dot.f_add(&gi.f_mul(vi)?.f_sum(kind)?)?;
            }
            // The graph of a kept gradient must survive this backward.
            let hv = Tensor::f_run_backward(&[&dot], &params, single, false)?;
            Self::add_into(&mut out, &hv)?;
        }
        self.products.set(self.products.get() + 1);
        Ok(out)
    }

    /// `J`: the Jacobian of the model's outputs (logits, `N x classes` rows, in
    /// example order then class order) with respect to the parameters, one row
    /// per output, with BN as configured. For small sets only (`N * classes`
    /// backward passes).
    pub fn output_jacobian(&self) -> Result<Vec<Vec<f64>>, NetError> {
        let params = self.model.params();
        let mut rows = Vec::new();
        for (s, len) in self.chunks() {
            let xs = self.data.images.f_narrow(0, s as i64, len as i64)?;
            let logits = self.model.forward_mode(&xs, self.mode(), None)?;
            let classes = logits.size().get(1).copied().unwrap_or(0);
            for i in 0..len as i64 {
                for c in 0..classes {
                    let out = logits.f_get(i)?.f_get(c)?;
                    let g = Tensor::f_run_backward(&[&out], &params, true, false)?;
                    let mut row = vec![0f64; self.dim];
                    Self::add_into(&mut row, &g)?;
                    rows.push(row);
                }
            }
        }
        Ok(rows)
    }
}
