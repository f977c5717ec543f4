//! Bakes libtorch's library folder into the run-time search path (rpath) of
//! this crate's tests and binaries, and passes it on to dependents (the CLI)
//! through the `links` metadata, so that nobody has to set `LD_LIBRARY_PATH`.
//!
//! Also records the version of the libtorch install being linked in
//! `LANDSCAPE_LIBTORCH_VERSION` (read by `landscape_net::LIBTORCH_VERSION`):
//! `__version__` of `<lib>/../version.py` for PyPI's torch wheel, else the
//! first line of `<lib>/../build-version` for a plain libtorch zip, else
//! `unknown`; and the CUDA version a PyPI wheel was built for (`cuda` in
//! `version.py`) in `LANDSCAPE_LIBTORCH_CUDA` (empty for a CPU build).
//!
//! When the libtorch is a CUDA build (`<lib>/libtorch_cuda.so` exists), links
//! `torch_cuda` with `-Wl,--no-as-needed`. torch-sys emits a plain
//! `-ltorch_cuda`, but rustc links with `--as-needed` and nothing calls into
//! libtorch_cuda directly (its CUDA hooks register themselves when it is
//! loaded), so the linker drops it and `tch::Cuda::is_available()` is false on
//! a GPU machine. The `as-needed` link modifier that would carry this to every
//! dependent is unstable (rustc 1.95), and a `rustc-link-arg` only reaches
//! this package's own binaries, tests and examples; so this script also says
//! `cargo:libtorch_cuda=1` (`DEP_LANDSCAPE_TORCH_LIBTORCH_CUDA` in direct
//! dependents), and every package that links libtorch (experiments, cli,
//! tests) adds the same argument in its build script. The link tests
//! (crates/net/tests/link.rs, tests/tests/device.rs) fail if one does not.
use std::path::Path;

/// The version of the libtorch install whose library folder is `lib`.
fn libtorch_version(lib: &Path) -> Option<String> {
    let root = lib.parent()?;
    let from_py = std::fs::read_to_string(root.join("version.py"))
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.trim().strip_prefix("__version__").and_then(|rest| {
                    // `__version__ = '2.13.0+cpu'` or `__version__: str = "..."`:
                    // the text between the first pair of matching quotes.
                    let open = rest.find(['\'', '"'])?;
                    let quote = rest[open..].chars().next()?;
                    let inner = &rest[open + 1..];
                    let v = inner[..inner.find(quote)?].trim();
                    (!v.is_empty()).then(|| v.to_owned())
                })
            })
        });
    from_py.or_else(|| {
        std::fs::read_to_string(root.join("build-version"))
            .ok()
            .and_then(|s| s.lines().next().map(|l| l.trim().to_owned()))
            .filter(|v| !v.is_empty())
    })
}

/// The linker argument that keeps `libtorch_cuda.so` NEEDED (the same text
/// is in the build scripts of the packages built on this one).
const NO_AS_NEEDED_TORCH_CUDA: &str = "-Wl,--no-as-needed,-ltorch_cuda,--as-needed";

/// The CUDA version in `version.py` of PyPI's torch wheel (`cuda = '13.0'`
/// or `cuda: Optional[str] = '13.0'`); `None` for a CPU build (`cuda = None`).
fn libtorch_cuda_version(lib: &Path) -> Option<String> {
    let text = std::fs::read_to_string(lib.parent()?.join("version.py")).ok()?;
    text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("cuda")?;
        if !rest.trim_start().starts_with([':', '=']) {
            return None;
        }
        let open = rest.find(['\'', '"'])?;
        let quote = rest[open..].chars().next()?;
        let inner = &rest[open + 1..];
        let v = inner[..inner.find(quote)?].trim();
        (!v.is_empty()).then(|| v.to_owned())
    })
}

fn main() {
    // Set by torch-sys (links = "tch") from LIBTORCH.
    let mut version = None;
    let mut cuda = None;
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        println!("cargo:libtorch_lib={lib}");
        let lib = Path::new(&lib);
        if let Some(root) = lib.parent() {
            // Only files that exist: cargo reruns on every build for a missing one.
            for file in ["version.py", "build-version"] {
                let path = root.join(file);
                if path.is_file() {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
        }
        version = libtorch_version(lib);
        cuda = libtorch_cuda_version(lib);
        let torch_cuda = lib.join("libtorch_cuda.so");
        if torch_cuda.is_file() {
            println!("cargo:rustc-link-arg={NO_AS_NEEDED_TORCH_CUDA}");
            println!("cargo:libtorch_cuda=1");
        }
    }
    // Only characters that are safe in an env value on one line.
    let version = version
        .filter(|v| v.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=LANDSCAPE_LIBTORCH_VERSION={version}");
    let cuda = cuda
        .filter(|v| v.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or_default();
    println!("cargo:rustc-env=LANDSCAPE_LIBTORCH_CUDA={cuda}");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
