//! Readers for DeepLesion, NIfTI and DICOM, and the data pipeline of uld.
mod affine;
pub mod augment;
pub mod components;
pub mod deeplesion;
pub mod dicom;
mod image;
pub mod loader;
pub mod nifti;
pub mod nifti_writer;
mod recist;
pub mod render;
pub mod reorient;
pub mod sample;
pub mod scan;
pub mod summary;
pub mod synth;
mod voxel_limit;
