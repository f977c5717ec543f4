//! The settings a probe's caller gives, and how messages and the recorded
//! settings name them.
//!
//! The probes name a setting by its field (`train_size`, `store`); a caller
//! with other names for them (a command line: its flags) passes a [`Names`]
//! in its [`crate::snapshot::Overrides`], and every message and recorded
//! source (`surface.json`'s `settings.*.from`) uses those instead.

/// A setting a probe's caller gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Input {
    /// The snapshot store read.
    Store,
    /// The snapshot a single-model probe loads.
    Id,
    /// The snapshot a line starts at.
    From,
    /// The snapshot a line ends at.
    To,
    /// The snapshot a direction or random plane is centred on.
    Centre,
    /// The snapshots of a trajectory (PCA).
    Trajectory,
    /// The three snapshots a plane passes through.
    Through,
    /// The output folder.
    Out,
    /// How many training images are evaluated.
    TrainSize,
    /// How many test images are evaluated.
    TestSize,
    /// The seed of another draw of the training images.
    SampleSeed,
    /// The BN evaluation policy.
    Bn,
    /// Images per forward pass when evaluating.
    ChunkSize,
    /// Grid points per axis of a fitted plane.
    Points,
    /// The margin around a fitted plane's snapshots.
    Margin,
    /// The files an import reads.
    Files,
    /// The run name of imported snapshots.
    Run,
}

impl Input {
    /// Its name in the probes' own terms: the field that sets it.
    pub fn name(self) -> &'static str {
        match self {
            Input::Store => "store",
            Input::Id => "id",
            Input::From => "from",
            Input::To => "to",
            Input::Centre => "centre",
            Input::Trajectory => "trajectory",
            Input::Through => "through",
            Input::Out => "out",
            Input::TrainSize => "train_size",
            Input::TestSize => "test_size",
            Input::SampleSeed => "sample_seed",
            Input::Bn => "bn",
            Input::ChunkSize => "chunk_size",
            Input::Points => "points",
            Input::Margin => "margin",
            Input::Files => "files",
            Input::Run => "run",
        }
    }
}

/// How a caller names the settings (default: [`Input::name`]).
pub type Names = fn(Input) -> &'static str;
