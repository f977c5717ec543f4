//! The paper's experiments, each a config under `experiments/` and a module
//! here: its plan (which trajectories), its findings and its panels.
pub mod fig14;
