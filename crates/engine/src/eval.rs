//! One evaluator for every model, stored or not: the surface and Hessian
//! tools evaluate points that are never written to a store.
use std::collections::BTreeMap;

use anyhow::Result;
use landscape_net::{self as net, Dcnn};
use serde::{Deserialize, Serialize};

use crate::config::ensure;
use crate::data::ExperimentData;
use crate::ExperimentError;

/// How batch-normalisation statistics are set when a model is evaluated.
/// Recorded in `run.json` and in every snapshot (`bn_eval`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BnPolicy {
    /// Re-estimate the running mean and variance exactly on the whole training
    /// set before evaluating (and keep the re-estimated statistics in the
    /// model, hence in the stored snapshot). Needed for BGD, whose one step per
    /// epoch barely moves running averages, and for perturbed and interpolated
    /// models, whose statistics are stale.
    #[default]
    Reestimate,
    /// Evaluate with the model's running statistics as they are.
    Running,
    /// Normalise each evaluation chunk with its own batch statistics (train-mode
    /// BN, running statistics untouched).
    Batch,
}

impl BnPolicy {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            BnPolicy::Reestimate => "reestimate",
            BnPolicy::Running => "running",
            BnPolicy::Batch => "batch",
        }
    }
}

/// Evaluation settings shared by every experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// The BN policy.
    pub bn: BnPolicy,
    /// Images per forward pass when evaluating (and the BN batch with `bn = "batch"`).
    pub chunk_size: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            bn: BnPolicy::Reestimate,
            chunk_size: 1000,
        }
    }
}

impl EvalConfig {
    /// Checks the chunk size; `prefix` is the scale.
    pub fn validate(&self, prefix: &str) -> Result<(), ExperimentError> {
        ensure(
            self.chunk_size >= 1,
            &format!("{prefix}.eval.chunk_size"),
            "must be at least 1",
        )
    }
}

/// Training and test loss and error (percent) of one model.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Mean cross-entropy on the training set.
    pub train_loss: f64,
    /// Classification error on the training set, percent.
    pub train_error: f64,
    /// Mean cross-entropy on the test set.
    pub test_loss: f64,
    /// Classification error on the test set, percent.
    pub test_error: f64,
}

impl Metrics {
    /// As the store's metric map.
    pub fn to_map(self) -> BTreeMap<String, f64> {
        BTreeMap::from([
            ("train_loss".to_owned(), self.train_loss),
            ("train_error".to_owned(), self.train_error),
            ("test_loss".to_owned(), self.test_loss),
            ("test_error".to_owned(), self.test_error),
        ])
    }

    /// From the store's metric map (`None` if one is missing).
    pub fn from_map(m: &BTreeMap<String, f64>) -> Option<Self> {
        Some(Metrics {
            train_loss: *m.get("train_loss")?,
            train_error: *m.get("train_error")?,
            test_loss: *m.get("test_loss")?,
            test_error: *m.get("test_error")?,
        })
    }
}

/// Evaluates any model on an experiment's training and test sets.
#[derive(Clone)]
pub struct Evaluator<'a> {
    data: &'a ExperimentData,
    cfg: EvalConfig,
}

impl<'a> Evaluator<'a> {
    /// An evaluator on `data` with the settings `cfg`.
    pub fn new(data: &'a ExperimentData, cfg: EvalConfig) -> Self {
        Evaluator { data, cfg }
    }

    /// The settings.
    pub fn config(&self) -> &EvalConfig {
        &self.cfg
    }

    /// Sets the BN statistics as the policy says, then evaluates on both sets.
    /// With [`BnPolicy::Reestimate`] the model keeps the re-estimated statistics.
    pub fn evaluate(&self, model: &mut Dcnn) -> Result<Metrics> {
        let cs = self.cfg.chunk_size;
        let (tr, te) = match self.cfg.bn {
            BnPolicy::Reestimate => (
                // One pass over the training set re-estimates and evaluates
                // (bit-identical to `reestimate_bn` then `evaluate`).
                net::reestimate_and_evaluate(
                    model,
                    &self.data.train,
                    cs,
                    net::eval_cache_budget(),
                )?,
                net::evaluate(model, &self.data.test, cs)?,
            ),
            BnPolicy::Running => (
                net::evaluate(model, &self.data.train, cs)?,
                net::evaluate(model, &self.data.test, cs)?,
            ),
            BnPolicy::Batch => (
                net::evaluate_batch_stats(model, &self.data.train, cs)?,
                net::evaluate_batch_stats(model, &self.data.test, cs)?,
            ),
        };
        Ok(Metrics {
            train_loss: tr.loss,
            train_error: tr.error_percent,
            test_loss: te.loss,
            test_error: te.error_percent,
        })
    }

    /// The model at `t` on the segment from `a` to `b`, `(1 - t) a + t b`
    /// (every parameter and BN statistic, computed as `lerp` says; exact
    /// copies at `t = 0` and `t = 1`), evaluated as [`Evaluator::evaluate`]
    /// does: the model (with the statistics the BN policy left in it) and
    /// its metrics. The one way the loss between two models is measured:
    /// recorded lines, pair barriers and surface lines all call it.
    pub fn between(&self, a: &Dcnn, b: &Dcnn, t: f64, lerp: net::Lerp) -> Result<(Dcnn, Metrics)> {
        let mut model = net::interpolate_in(a, b, t, lerp)?;
        let metrics = self.evaluate(&mut model)?;
        Ok((model, metrics))
    }

    /// Per test image (in data order): whether `model`'s arg-max class is the
    /// label, with the BN statistics set as the policy says (as
    /// [`Evaluator::evaluate`] does). For agreement matrices between models.
    pub fn test_correct(&self, model: &mut Dcnn) -> Result<Vec<bool>> {
        let cs = self.cfg.chunk_size;
        let te = match self.cfg.bn {
            BnPolicy::Reestimate => {
                net::reestimate_bn(model, &self.data.train, cs)?;
                net::evaluate(model, &self.data.test, cs)?
            }
            BnPolicy::Running => net::evaluate(model, &self.data.test, cs)?,
            BnPolicy::Batch => net::evaluate_batch_stats(model, &self.data.test, cs)?,
        };
        Ok(te.correct)
    }
}
