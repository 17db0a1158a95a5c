//! uld's errors as Python exceptions, with the CLI's messages.

use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyValueError};
use pyo3::{PyErr, create_exception};
use uld_core::Error;

create_exception!(
    uld,
    DataError,
    PyValueError,
    "A file or table that breaks its format. The message names the file (or \
     the argument), and where it applies the line or row and the field, as \
     the uld command line does."
);

/// The Python exception of a uld error: `FileNotFoundError` or `OSError` for
/// files that cannot be read, `DataError` for content that breaks its format,
/// `ValueError` for a bad argument.
pub fn to_py(err: Error) -> PyErr {
    let message = err.to_string();
    match &err {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(message)
        }
        Error::Io { .. } => PyOSError::new_err(message),
        Error::Data { .. } => DataError::new_err(message),
        Error::Invalid { .. } => PyValueError::new_err(message),
    }
}

/// A `ValueError` for an argument outside its choices.
pub fn bad_choice(argument: &str, choices: &[&str], got: &str) -> PyErr {
    let choices: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
    PyValueError::new_err(format!(
        "{argument} must be one of {}, got \"{got}\"",
        choices.join(", ")
    ))
}
