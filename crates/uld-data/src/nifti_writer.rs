//! Writing volumes as NIfTI-1 (`.nii`, or gzipped `.nii.gz`): label maps
//! for viewers such as 3D Slicer or ITK-SNAP, and CT in HU.
//!
//! The file is little-endian, unsigned 16-bit with `intent_code` =
//! NIFTI_INTENT_LABEL for label maps, signed 16-bit for HU; spatial unit mm;
//! the volume's world transform is the sform (code 1, scanner), converted
//! to RAS as NIfTI requires; without a transform the sform is the voxel
//! size alone.

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use uld_core::{Frame, Result, Volume, WorldTransform, write_atomically};

const HEADER_SIZE: usize = 348;
/// Where the voxels start: the header plus 4 bytes saying "no extensions".
const VOX_OFFSET: usize = 352;
const DT_INT16: i16 = 4;
const DT_UINT16: i16 = 512;
const INTENT_NONE: i16 = 0;
const INTENT_LABEL: i16 = 1002;
/// `xyzt_units`: millimetres.
const UNITS_MM: u8 = 2;

/// Writes `labels` to `path` (gzipped when the name ends in `.gz`),
/// atomically; `description` (at most 79 bytes are kept) goes in `descrip`.
pub fn write_nifti_labels(path: &Path, labels: &Volume<u16>, description: &str) -> Result<()> {
    let bytes = labels.data().iter().flat_map(|v| v.to_le_bytes());
    write(path, labels, (DT_UINT16, INTENT_LABEL), description, bytes)
}

/// Writes a CT volume in HU as signed 16-bit, like [`write_nifti_labels`].
pub fn write_nifti_ct(path: &Path, volume: &Volume<i16>, description: &str) -> Result<()> {
    let bytes = volume.data().iter().flat_map(|v| v.to_le_bytes());
    write(path, volume, (DT_INT16, INTENT_NONE), description, bytes)
}

fn write<T: Copy>(
    path: &Path,
    volume: &Volume<T>,
    (datatype, intent): (i16, i16),
    description: &str,
    voxels: impl Iterator<Item = u8>,
) -> Result<()> {
    let mut bytes = header(volume, datatype, intent, description);
    bytes.extend(voxels);
    let gzip = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().to_ascii_lowercase().ends_with(".gz"));
    write_atomically(path, |out| {
        if gzip {
            let mut encoder = GzEncoder::new(out, Compression::default());
            encoder.write_all(&bytes)?;
            encoder.finish()?;
            Ok(())
        } else {
            out.write_all(&bytes)
        }
    })
}

/// The 348-byte header and the empty extension flag.
fn header<T: Copy>(volume: &Volume<T>, datatype: i16, intent: i16, description: &str) -> Vec<u8> {
    let mut h = vec![0u8; VOX_OFFSET];
    let put =
        |h: &mut Vec<u8>, at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
    put(&mut h, 0, &(HEADER_SIZE as i32).to_le_bytes());
    h[38] = b'r';
    let dims = volume.dims();
    let mut dim = [1i16; 8];
    dim[0] = 3;
    for a in 0..3 {
        dim[a + 1] = i16::try_from(dims[a]).unwrap_or(i16::MAX);
    }
    for (k, d) in dim.iter().enumerate() {
        put(&mut h, 40 + 2 * k, &d.to_le_bytes());
    }
    put(&mut h, 68, &intent.to_le_bytes());
    put(&mut h, 70, &datatype.to_le_bytes());
    put(&mut h, 72, &16i16.to_le_bytes());
    let spacing = volume.spacing();
    let mut pixdim = [1f32; 8];
    for a in 0..3 {
        pixdim[a + 1] = spacing[a] as f32;
    }
    for (k, p) in pixdim.iter().enumerate() {
        put(&mut h, 76 + 4 * k, &p.to_le_bytes());
    }
    put(&mut h, 108, &(VOX_OFFSET as f32).to_le_bytes());
    put(&mut h, 112, &1f32.to_le_bytes());
    h[123] = UNITS_MM;
    let text = description.as_bytes();
    put(&mut h, 148, &text[..text.len().min(79)]);
    put(&mut h, 254, &1i16.to_le_bytes());
    let world = volume.world().map_or_else(
        || WorldTransform {
            matrix: std::array::from_fn(|r| {
                let mut row = [0.0; 4];
                row[r] = spacing[r];
                row
            }),
            frame: Frame::Ras,
        },
        |w| w.in_frame(Frame::Ras),
    );
    for (r, row) in world.matrix.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            put(&mut h, 280 + 16 * r + 4 * c, &(*v as f32).to_le_bytes());
        }
    }
    put(&mut h, 344, b"n+1\0");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nifti::read_nifti_labels;

    #[test]
    fn a_written_label_map_reads_back_with_its_geometry() {
        let dir = std::env::temp_dir().join(format!("uld-nifti-writer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let world = WorldTransform::from_origin_direction(
            [10.0, -20.0, 30.0],
            [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]],
            [0.5, 0.75, 2.0],
            Frame::Lps,
        );
        let data: Vec<u16> = (0..4 * 3 * 2).map(|v| (v % 5) as u16).collect();
        let volume = Volume::new([4, 3, 2], [0.5, 0.75, 2.0], data)
            .unwrap()
            .with_world(world);
        for name in ["boxes.nii", "boxes.nii.gz"] {
            let path = dir.join(name);
            write_nifti_labels(&path, &volume, "uld test").unwrap();
            let back = read_nifti_labels(&path).unwrap();
            assert_eq!(back.data(), volume.data());
            assert_eq!(back.spacing(), volume.spacing());
            let w = back.world().unwrap();
            assert_eq!(w.frame, Frame::Ras);
            let p = [1.0, 2.0, 1.0];
            let (a, b) = (w.apply(p), world.in_frame(Frame::Ras).apply(p));
            assert!(
                a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4),
                "{a:?} {b:?}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
