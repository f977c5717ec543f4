//! Gives this crate's tests and examples an rpath to libtorch (passed on by
//! landscape-net's build script), so they run without `LD_LIBRARY_PATH`.
fn main() {
    if let Ok(lib) = std::env::var("DEP_LANDSCAPE_TORCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    println!("cargo:rerun-if-env-changed=DEP_LANDSCAPE_TORCH_LIBTORCH_LIB");
}
