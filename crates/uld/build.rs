include!("../../build-support/link_torch.rs");

fn main() {
    println!("cargo:rerun-if-changed=../../build-support/link_torch.rs");
    emit_torch_link_args(&torch_lib_dir_from_uld_model());
}
