//! The experiment runner: experiments as data (TOML configs per scale), run
//! from a library so that the CLI, xtask and tests share one pipeline.
//!
//! Pieces every experiment reuses:
//! * [`config`]: scaled TOML files, `deny_unknown_fields`, validation before training;
//! * [`data`]: CIFAR-10 subsets as device tensors;
//! * [`run`]: the output folder, `run.json` provenance and phase timings;
//! * [`trajectory`]: resumable BGD/SGD trajectories recorded in a snapshot store,
//!   every snapshot evaluated on the training and test sets;
//! * [`crate::plot`]: the paper-style figures.
//!
//! A new figure is one more config file and one module that says which
//! trajectories to run and what to draw (see [`fig14`]).
pub mod config;
pub mod data;
pub mod fig14;
pub mod run;
pub mod trajectory;
