//! Links libtorch so CUDA stays available and tests run without
//! `LD_LIBRARY_PATH` (see `build-support/link_torch.rs`), and reports the
//! torch library folder to dependents' build scripts as
//! `DEP_ULD_TORCH_LIB_DIR` (this package's `links = "uld_torch"`), since
//! link arguments from a library's build script reach only its own tests:
//! every package with binaries or tests that link uld-model needs a build
//! script calling `emit_torch_link_args(&torch_lib_dir_from_uld_model())`.

include!("../../build-support/link_torch.rs");

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../../build-support/link_torch.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let dir = torch_lib_dir();
    let dir = dir.to_str().expect("a UTF-8 torch library path");
    println!("cargo:lib_dir={dir}");
    emit_torch_link_args(dir);
    compile_autocast_shim(&torch_lib_dir());
}

/// Builds `csrc/autocast.cpp` (autocast with a dtype, which tch lacks)
/// against the headers beside the torch library folder `lib`.
fn compile_autocast_shim(lib: &std::path::Path) {
    println!("cargo:rerun-if-changed=csrc/autocast.cpp");
    let include = lib
        .parent()
        .expect("torch/lib has a parent")
        .join("include");
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={}", cxx11_abi()))
        .file("csrc/autocast.cpp")
        .compile("uld_autocast");
}

/// Whether the torch of `python` uses the C++11 ABI (every wheel since
/// torch 2.7 does, so 1 when python cannot tell).
fn cxx11_abi() -> &'static str {
    let out = Command::new("python")
        .args([
            "-c",
            "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0" => "0",
        _ => "1",
    }
}

/// The folder torch-sys linked against (it reports it as `libtorch_lib`),
/// else the `lib` folder of the `torch` package of the `python` on `PATH`.
fn torch_lib_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        return PathBuf::from(dir);
    }
    let out = Command::new("python")
        .args([
            "-c",
            "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
        ])
        .output()
        .expect("running python to find torch (source scripts/torch-env.sh first)");
    assert!(
        out.status.success(),
        "python could not import torch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}
