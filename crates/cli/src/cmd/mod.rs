//! One module per subcommand: clap arguments and the code that runs them.
pub mod bezout;
pub mod data;
pub mod embed;
pub mod hessian;
pub mod import;
pub mod index;
pub mod mds;
pub mod pca;
pub mod reproduce;
pub mod store;
pub mod surface;
