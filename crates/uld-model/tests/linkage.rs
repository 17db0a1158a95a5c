//! The CUDA library must be linked even though no symbol of it is used
//! directly: without it a GPU machine silently runs on the CPU. CI has no
//! GPU to notice, so this reads the test binary's dynamic section.

use std::process::Command;

#[test]
fn libtorch_cuda_is_a_needed_library_and_torch_lib_is_on_the_rpath() {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("readelf")
        .arg("-d")
        .arg(&exe)
        .output()
        .expect("readelf (binutils) is installed");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let needed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    assert!(
        needed.contains(&"libtorch_cuda.so"),
        "libtorch_cuda.so is not among the needed libraries: {needed:?}"
    );
    assert!(needed.contains(&"libtorch.so"), "{needed:?}");
    let rpath = text
        .lines()
        .find(|l| l.contains("(RUNPATH)") || l.contains("(RPATH)"))
        .expect("an rpath is set");
    assert!(rpath.contains("torch/lib"), "{rpath}");
}

#[test]
fn asking_for_cuda_reaches_the_cuda_backend() {
    // Without libtorch_cuda, libtorch answers that it was not built with
    // CUDA; with it, a machine without a GPU gets a driver error instead.
    let result = tch::Tensor::f_zeros([1], (tch::Kind::Float, tch::Device::Cuda(0)));
    if tch::Cuda::is_available() {
        assert!(result.is_ok(), "{result:?}");
    } else {
        let err = result.expect_err("no GPU here").to_string();
        let first = err.lines().next().unwrap_or("");
        assert!(
            ["NVIDIA driver", "CUDA driver", "CUDA-capable device"]
                .iter()
                .any(|m| first.contains(m)),
            "not a CUDA driver error, so the CUDA backend is not linked: {first}"
        );
    }
    if std::env::var_os("ULD_EXPECT_CUDA").is_some() {
        assert!(
            tch::Cuda::is_available(),
            "ULD_EXPECT_CUDA is set but CUDA is not available"
        );
    }
}
