//! Gives the test binaries an rpath to libtorch (passed on by landscape-net).
fn main() {
    if let Ok(lib) = std::env::var("DEP_LANDSCAPE_TORCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    println!("cargo:rerun-if-env-changed=DEP_LANDSCAPE_TORCH_LIBTORCH_LIB");
    // Keep libtorch_cuda NEEDED when the libtorch is a CUDA build (rustc's
    // --as-needed would drop it and libtorch would never see a GPU); see
    // crates/net/build.rs.
    if std::env::var("DEP_LANDSCAPE_TORCH_LIBTORCH_CUDA").is_ok_and(|v| v == "1") {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
    println!("cargo:rerun-if-env-changed=DEP_LANDSCAPE_TORCH_LIBTORCH_CUDA");
}
