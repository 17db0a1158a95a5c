//! Links libtorch so CUDA stays available and tests run without
//! `LD_LIBRARY_PATH` (see `build-support/link_torch.rs`), and reports the
//! torch library folder to dependents' build scripts as
//! `DEP_ULD_TORCH_LIB_DIR` (this package's `links = "uld_torch"`), since
//! link arguments from a library's build script reach only its own tests:
//! every package with binaries or tests that link uld-model needs a build
//! script calling `emit_torch_link_args(&torch_lib_dir_from_uld_model())`.

include!("../../build-support/link_torch.rs");
include!("../../build-support/torch_shim.rs");

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../../build-support/link_torch.rs");
    println!("cargo:rerun-if-changed=../../build-support/torch_shim.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let dir = torch_lib_dir();
    let dir = dir.to_str().expect("a UTF-8 torch library path");
    println!("cargo:lib_dir={dir}");
    emit_torch_link_args(dir);
    // Autocast with a dtype, which tch lacks.
    compile_torch_shim(
        &torch_lib_dir(),
        "csrc/autocast.cpp",
        "uld_autocast",
        None,
        &[],
    );
}
