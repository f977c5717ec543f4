//! The `landscape` tool as a library: the experiment runner and the figures.
//! The binary (`src/main.rs`) is a thin clap front end over this.
pub mod experiments;
pub mod plot;
