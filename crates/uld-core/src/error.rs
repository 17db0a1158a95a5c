//! Typed errors shared by every uld crate.
//!
//! Every error that comes from user data names where it came from: the file,
//! and where it applies the row, slice and field, so a user can find the bad
//! value without a debugger.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where in the user's data something went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    pub path: PathBuf,
    /// 1-based line of a text file (the header is line 1), as editors show it.
    pub line: Option<u64>,
    /// 0-based row of a table given in memory (a DataFrame's `iloc`
    /// position), where there is no file line.
    pub row: Option<u64>,
    /// 0-based slice index inside a volume.
    pub slice: Option<usize>,
    /// Column or header field name.
    pub field: Option<String>,
}

impl Location {
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            ..Self::default()
        }
    }

    pub fn line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }

    pub fn row(mut self, row: u64) -> Self {
        self.row = Some(row);
        self
    }

    pub fn slice(mut self, slice: usize) -> Self {
        self.slice = Some(slice);
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(row) = self.row {
            write!(f, ", row {row}")?;
        }
        if let Some(slice) = self.slice {
            write!(f, ", slice {slice}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field `{field}`")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but its content is not what the format requires.
    #[error("{location}: {message}")]
    Data { location: Location, message: String },
    /// A value given by the caller (an option, a parameter) is out of range.
    #[error("invalid {what}: {message}")]
    Invalid { what: String, message: String },
}

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub fn data(location: Location, message: impl Into<String>) -> Self {
        Self::Data {
            location,
            message: message.into(),
        }
    }

    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            what: what.into(),
            message: message.into(),
        }
    }

    /// The location the error names, when it comes from user data.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Self::Data { location, .. } => Some(location),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_error_names_file_line_and_field() {
        let err = Error::data(
            Location::file("DL_info.csv")
                .line(12)
                .field("Spacing_mm_px_"),
            "expected 3 numbers, found 2",
        );
        assert_eq!(
            err.to_string(),
            "DL_info.csv, line 12, field `Spacing_mm_px_`: expected 3 numbers, found 2"
        );
    }

    #[test]
    fn io_error_names_file() {
        let err = Error::io(
            "missing.png",
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        );
        assert_eq!(err.to_string(), "missing.png: no such file");
    }
}
