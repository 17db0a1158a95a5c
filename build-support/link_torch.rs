// Included by the build scripts of the crates whose binaries link libtorch
// (`include!("../../build-support/link_torch.rs")`).
//
// The linker's default `--as-needed` drops `libtorch_cuda.so`, because no
// symbol of it is referenced directly (tch-rs issues 907, 980); CUDA then
// reports unavailable on a GPU machine with no other sign. Link arguments
// apply only to the targets of the package whose build script prints them,
// so each such package prints them. The rpath lets binaries and tests run
// without LD_LIBRARY_PATH.

/// Prints the link arguments for libtorch in `dir`.
#[allow(dead_code)]
fn emit_torch_link_args(dir: &str) {
    println!("cargo:rustc-link-search=native={dir}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    if std::path::Path::new(dir).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    } else {
        println!("cargo:warning=no libtorch_cuda.so in {dir}: this build is CPU-only");
    }
}

/// The torch library folder uld-model found (its `links` metadata).
#[allow(dead_code)]
fn torch_lib_dir_from_uld_model() -> String {
    std::env::var("DEP_ULD_TORCH_LIB_DIR")
        .expect("uld-model, a dependency, reports the torch library folder")
}

