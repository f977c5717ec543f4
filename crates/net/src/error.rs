//! The crate's error type.

/// Everything that can go wrong in this crate.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum NetError {
    /// A configuration field holds an unusable value.
    #[error("invalid configuration: `{field}` {reason}")]
    Config {
        /// The offending field, e.g. `widths[2]` or `sgd.batch_size`.
        field: String,
        /// What was expected.
        reason: String,
    },
    /// A polynomial fit could not be computed.
    #[error("polynomial fit of ReLU (degree {degree}, radius {radius}): {reason}")]
    Fit {
        /// Requested degree.
        degree: usize,
        /// Requested radius.
        radius: f64,
        /// What was wrong.
        reason: String,
    },
    /// The requested device is not available.
    #[error("device `{requested}` is not available: {reason}")]
    Device {
        /// What was asked for.
        requested: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Input data have inconsistent sizes.
    #[error("data: {0}")]
    Data(String),
    /// A named tensor is missing, unexpected, out of order or of the wrong shape.
    #[error("tensor `{name}`: expected {expected}, found {found}")]
    Tensor {
        /// The tensor's name (e.g. `layer3.weight`) or its position.
        name: String,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
    /// Two models that must share an architecture do not.
    #[error("models are incompatible: model {index} has {found:?}, expected {expected:?}")]
    Incompatible {
        /// Position of the offending model in the argument list.
        index: usize,
        /// The first model's configuration (as debug text).
        expected: String,
        /// The offending model's configuration (as debug text).
        found: String,
    },
    /// A layer number outside the paper's 2..=6.
    #[error(
        "layer {layer} does not exist: the network has layers {first}..={last} (paper numbering)"
    )]
    NoSuchLayer {
        /// The requested layer.
        layer: usize,
        /// First layer (2).
        first: usize,
        /// Last layer.
        last: usize,
    },
    /// The loss became NaN or infinite; training stopped before applying the step.
    #[error("training diverged at epoch {epoch}, step {step}: loss = {loss}")]
    Diverged {
        /// Epoch (as passed by the caller).
        epoch: usize,
        /// Step within the epoch (0-based; for BGD the chunk index).
        step: usize,
        /// The non-finite loss value.
        loss: f64,
    },
    /// The callback passed to [`crate::train`] failed.
    #[error("epoch callback failed at epoch {epoch}: {message}")]
    Callback {
        /// Epoch after which the callback ran.
        epoch: usize,
        /// The callback's message.
        message: String,
    },
    /// A state_dict file could not be read, or does not hold the network.
    #[error("{}: {reason}", file.display())]
    Import {
        /// The file.
        file: std::path::PathBuf,
        /// What is wrong, naming every offending tensor.
        reason: String,
    },
    /// An error raised by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
