//! A shallow walk over a DICOM file's elements that checks each declared
//! value length against the bytes left in the file.
//!
//! dicom-rs reserves and zero-fills a value's declared length before reading
//! it, so a corrupt 2 KB file declaring a 4 GB element costs gigabytes and
//! seconds before failing. Checking the lengths first turns that into a
//! prompt error naming the element. The walk is conservative: whatever it
//! does not understand (big-endian or deflated data sets) is left to
//! dicom-rs. Lengths are read as dicom-rs reads them.

use std::path::Path;

use uld_core::{Error, Location, Result};

const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
/// Transfer syntaxes the walk leaves alone: explicit VR big endian, deflated.
const NOT_WALKED: [&str; 2] = ["1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"];
const UNDEFINED_LENGTH: u32 = u32::MAX;

/// Checks the file `bytes` (a Part-10 file: preamble, `DICM`, file meta group,
/// data set).
pub(crate) fn check_declared_lengths(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut walker = Walker {
        bytes,
        at: 132,
        explicit: true,
    };
    let mut transfer_syntax = None;
    // The file meta group (0002,xxxx) is always explicit VR little endian.
    while walker.peek_group() == Some(0x0002) {
        let Some(element) = walker.next(path)? else {
            return Ok(());
        };
        if element.tag == (0x0002, 0x0010) && element.length != UNDEFINED_LENGTH {
            let value = &bytes[element.value_at..element.value_at + element.length as usize];
            transfer_syntax = Some(
                String::from_utf8_lossy(value)
                    .trim_end_matches(['\0', ' '])
                    .to_string(),
            );
        }
        walker.skip(&element);
    }
    let Some(ts) = transfer_syntax else {
        return Ok(());
    };
    if NOT_WALKED.contains(&ts.as_str()) {
        return Ok(());
    }
    walker.explicit = ts != IMPLICIT_VR_LITTLE_ENDIAN;
    while let Some(element) = walker.next(path)? {
        walker.skip(&element);
    }
    Ok(())
}

struct Element {
    tag: (u16, u16),
    length: u32,
    value_at: usize,
}

struct Walker<'a> {
    bytes: &'a [u8],
    at: usize,
    explicit: bool,
}

impl Walker<'_> {
    fn u16_at(&self, at: usize) -> Option<u16> {
        self.bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        self.bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn peek_group(&self) -> Option<u16> {
        self.u16_at(self.at)
    }

    /// The next element header, its length checked; `None` at the end or
    /// where the walk stops understanding the bytes.
    fn next(&mut self, path: &Path) -> Result<Option<Element>> {
        let (Some(group), Some(elem)) = (self.u16_at(self.at), self.u16_at(self.at + 2)) else {
            return Ok(None);
        };
        let (length, header) = if group == 0xFFFE {
            // Items and delimiters: no VR, 4-byte length, in every encoding.
            (self.u32_at(self.at + 4), 8)
        } else if self.explicit {
            let Some(vr) = self.bytes.get(self.at + 4..self.at + 6) else {
                return Ok(None);
            };
            if SHORT_VRS.contains(&[vr[0], vr[1]]) {
                (self.u16_at(self.at + 6).map(u32::from), 8)
            } else {
                (self.u32_at(self.at + 8), 12)
            }
        } else {
            (self.u32_at(self.at + 4), 8)
        };
        let Some(length) = length else {
            return Ok(None);
        };
        let value_at = self.at + header;
        let left = self.bytes.len().saturating_sub(value_at);
        if length != UNDEFINED_LENGTH && length as usize > left {
            return Err(Error::data(
                Location::file(path).field(format!("({group:04X},{elem:04X})")),
                format!(
                    "the element declares {length} bytes at byte {value_at}, the file has {left} left: truncated or corrupt"
                ),
            ));
        }
        Ok(Some(Element {
            tag: (group, elem),
            length,
            value_at,
        }))
    }

    /// Moves past the element: over its value when its length is defined,
    /// into it (its items or nested elements come next) when not.
    fn skip(&mut self, element: &Element) {
        self.at = element.value_at;
        if element.length != UNDEFINED_LENGTH {
            self.at += element.length as usize;
        }
    }
}

/// Explicit VRs with a 2-byte length (PS3.5 7.1.2); every other VR, an
/// unknown one included (dicom-rs reads it as UN), has a 4-byte length.
const SHORT_VRS: [[u8; 2]; 21] = [
    *b"AE", *b"AS", *b"AT", *b"CS", *b"DA", *b"DS", *b"DT", *b"FL", *b"FD", *b"IS", *b"LO", *b"LT",
    *b"PN", *b"SH", *b"SL", *b"SS", *b"ST", *b"TM", *b"UI", *b"UL", *b"US",
];
