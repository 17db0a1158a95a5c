//! Writing files so that they appear complete or not at all.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::{Error, Result};

/// Writes `path` through `fill` into a temporary file beside it, syncs it and
/// renames it into place: an interrupted run never leaves a half-written file.
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    replace_with(path, |tmp| {
        let mut out = BufWriter::new(File::create(tmp)?);
        fill(&mut out)?;
        out.flush()?;
        out.get_ref().sync_all()
    })
}

/// [`write_atomically`] for writers that create the file themselves (a
/// library that takes a path, such as a tensor serialiser): `write` fills
/// the temporary path it is given, which is then synced and renamed into
/// place.
pub fn write_atomically_via(
    path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<()> {
    replace_with(path, |tmp| {
        write(tmp)?;
        OpenOptions::new().write(true).open(tmp)?.sync_all()
    })
}

/// Writes and syncs a temporary file beside `path` with `write`, renames it
/// into place and syncs the folder, so the rename survives a crash too; on
/// failure the temporary file is removed.
fn replace_with(path: &Path, write: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| {
        Error::invalid("output path", format!("{} names no file", path.display()))
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        write(&tmp)?;
        std::fs::rename(&tmp, path)?;
        // A folder opened read-only can be synced on Unix; elsewhere the
        // rename is as durable as the platform makes it.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_no_file_and_keeps_the_old_one() {
        let dir = std::env::temp_dir().join(format!("uld-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.txt");
        write_atomically(&path, |w| w.write_all(b"first")).unwrap();
        let err = write_atomically(&path, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("out.txt"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first");
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 1, "the temporary file is removed");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_writer_that_fails_through_its_own_path_leaves_the_old_file() {
        let dir = std::env::temp_dir().join(format!("uld-atomic-via-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("weights.bin");
        write_atomically_via(&path, |tmp| std::fs::write(tmp, b"old")).unwrap();
        let err = write_atomically_via(&path, |tmp| {
            std::fs::write(tmp, b"half")?;
            Err(std::io::Error::other("out of memory"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("weights.bin"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
