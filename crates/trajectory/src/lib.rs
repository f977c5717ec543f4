//! Crash-safe snapshot store for weight trajectories, read layer by layer.
