//! The evaluation protocols of uld.
