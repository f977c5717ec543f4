//! The test binaries of this crate link `libtorch_cuda` when the linked
//! libtorch is a CUDA build (crates/net/build.rs), so that libtorch sees a GPU
//! where there is one. Checked on any machine, GPU or not: by the ELF dynamic
//! section of this test binary and by the libraries mapped into this process.
use landscape_net::device::{libtorch_cuda_loaded, libtorch_lib_dir};
use landscape_net::testing::elf_needed;

#[test]
fn test_binary_links_libtorch_cuda_when_libtorch_is_a_cuda_build() {
    let Some(lib) = libtorch_lib_dir() else {
        panic!("libtorch_cpu.so is not in /proc/self/maps: cannot find the linked libtorch");
    };
    let exe = std::env::current_exe().unwrap();
    let needed = elf_needed(&exe).unwrap();
    assert!(needed.iter().any(|n| n == "libtorch_cpu.so"), "{needed:?}");
    if !lib.join("libtorch_cuda.so").is_file() {
        eprintln!(
            "{} has no libtorch_cuda.so (a CPU-only libtorch): nothing to link",
            lib.display()
        );
        assert!(
            !needed.iter().any(|n| n == "libtorch_cuda.so"),
            "{needed:?}"
        );
        return;
    }
    assert!(
        needed.iter().any(|n| n == "libtorch_cuda.so"),
        "{} is a CUDA libtorch but {} does not NEED libtorch_cuda.so (only {needed:?}): \
         the linker dropped it and libtorch would never see a GPU",
        lib.display(),
        exe.display()
    );
    assert_eq!(
        libtorch_cuda_loaded(),
        Some(true),
        "libtorch_cuda.so is NEEDED but not mapped into the process"
    );
}
