//! Compiles `csrc/c10d.cpp` against the torch headers beside the library
//! torch-sys links, with uld's declarations of the Gloo interface
//! (`csrc/gloo_api`, see its README) for the headers the wheel lacks.

include!("../../build-support/link_torch.rs");
include!("../../build-support/torch_shim.rs");

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../../build-support/link_torch.rs");
    println!("cargo:rerun-if-changed=../../build-support/torch_shim.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib = torch_lib_dir();
    emit_torch_link_args(lib.to_str().expect("a UTF-8 torch library path"));
    compile_torch_shim(
        &lib,
        "csrc/c10d.cpp",
        "uld_c10d",
        Some("csrc/gloo_api"),
        &["USE_C10D_GLOO", "USE_DISTRIBUTED"],
    );
}
