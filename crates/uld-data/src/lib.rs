//! Readers for DeepLesion, NIfTI and DICOM, and the data pipeline of uld.
pub mod augment;
pub mod deeplesion;
pub mod dicom;
pub mod loader;
pub mod nifti;
pub mod sample;
pub mod synth;
