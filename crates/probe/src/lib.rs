//! The probes of `landscape`: what one asks of stored snapshots after (or
//! without) an experiment. Built on `landscape-engine` (data, evaluation,
//! provenance), independent of the paper's experiments (`landscape-figures`).
//!
//! * [`snapshot`]: a store and a snapshot id turned into a ready network
//!   with its data and BN policy (from `run.json`, with overrides): the one
//!   place every probe loads snapshots;
//! * [`slices`]: the loss along lines and planes through stored snapshots
//!   (resumable, shardable grids of evaluated points, plots), PCA planes of
//!   trajectories;
//! * [`barriers`]: the loss barrier on the straight line between two models;
//! * [`hessian`]: the Hessian's top eigenvalues, trace and spectral density
//!   of a stored model;
//! * [`curvature`]: the Hessian's top eigenvalue and trace along a
//!   trajectory (resumable, one row per snapshot);
//! * [`import`]: PyTorch state_dicts of the paper's network into a store
//!   (`landscape import`), with the `run.json` the evaluating commands read;
//! * [`input`]: the settings a caller gives, named in messages by their
//!   fields or by the caller's own names (a command line's flags).
pub mod barriers;
pub mod curvature;
pub mod hessian;
pub mod import;
pub mod input;
pub mod slices;
pub mod snapshot;
