// Included by the build scripts of the crates that compile a C++ shim
// against the torch headers (`include!("../../build-support/torch_shim.rs")`),
// which build-depend on `cc`.

/// Compiles the C++ file `file` into the static library `name` against the
/// headers beside the torch library folder `lib`, with `extra_include`
/// searched first and the preprocessor `defines`.
fn compile_torch_shim(
    lib: &std::path::Path,
    file: &str,
    name: &str,
    extra_include: Option<&str>,
    defines: &[&str],
) {
    println!("cargo:rerun-if-changed={file}");
    let include = lib
        .parent()
        .expect("torch/lib has a parent")
        .join("include");
    let mut build = cc::Build::new();
    build.cpp(true).pic(true).warnings(false);
    if let Some(dir) = extra_include {
        println!("cargo:rerun-if-changed={dir}");
        build.include(dir);
    }
    build
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={}", cxx11_abi()));
    for define in defines {
        build.define(define, None);
    }
    build.file(file).compile(name);
}

/// Whether the torch of `python` uses the C++11 ABI (every wheel since
/// torch 2.7 does, so 1 when python cannot tell).
fn cxx11_abi() -> &'static str {
    let out = std::process::Command::new("python")
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

/// The folder torch-sys linked against (it reports it as `libtorch_lib` to
/// packages that depend on it directly), else the `lib` folder of the
/// `torch` package of the `python` on `PATH`.
#[allow(dead_code)]
fn torch_lib_dir() -> std::path::PathBuf {
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        return std::path::PathBuf::from(dir);
    }
    let out = std::process::Command::new("python")
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
    std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}
