//! The `landscape` tool as a library: a thin clap front end (`src/main.rs`)
//! over the experiment engine, re-exported here for convenience.
pub use landscape_experiments as experiments;
pub use landscape_experiments::plot;
