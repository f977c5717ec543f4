//! Bakes libtorch's library folder into the run-time search path (rpath) of
//! this crate's tests and binaries, and passes it on to dependents (the CLI)
//! through the `links` metadata, so that nobody has to set `LD_LIBRARY_PATH`.
fn main() {
    // Set by torch-sys (links = "tch") from LIBTORCH.
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        println!("cargo:libtorch_lib={lib}");
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
