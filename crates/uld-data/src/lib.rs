//! Readers for DeepLesion, NIfTI and DICOM, and the data pipeline of uld.
pub mod augment;
pub mod components;
pub mod deeplesion;
pub mod dicom;
pub mod loader;
pub mod nifti;
pub mod nifti_writer;
pub mod reorient;
pub mod sample;
pub mod scan;
pub mod synth;
