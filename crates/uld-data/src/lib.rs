//! Readers for DeepLesion, NIfTI and DICOM, and the data pipeline of uld.
pub mod deeplesion;
