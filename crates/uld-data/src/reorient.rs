//! Re-indexing a volume so that its voxel axes run towards chosen
//! anatomical directions (flips and axis swaps only, never resampling), with
//! the world transform updated so every voxel keeps its world position.

use uld_core::{Box2, Error, Frame, Location, Result, Volume, WorldTransform};

/// Target axis `a` of the re-indexed volume is source axis `source[a]`,
/// reversed when `flip[a]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisMap {
    pub source: [usize; 3],
    pub flip: [bool; 3],
}

impl AxisMap {
    pub const IDENTITY: Self = Self {
        source: [0, 1, 2],
        flip: [false; 3],
    };

    /// The map that makes x run towards the patient's left, y posterior and
    /// z superior (DICOM's LPS, the radiological view DeepLesion's PNGs
    /// show: anterior at the top, the patient's right on the image's left).
    /// A volume without a world transform keeps its order. `path` names the
    /// volume in the error for a transform whose axes are not distinct.
    pub fn to_lps(world: Option<&WorldTransform>, path: &std::path::Path) -> Result<Self> {
        let Some(world) = world else {
            return Ok(Self::IDENTITY);
        };
        let lps = world.in_frame(Frame::Lps);
        let mut source = [usize::MAX; 3];
        let mut flip = [false; 3];
        for axis in 0..3 {
            let (row, sign) = lps.axis_direction(axis).ok_or_else(|| {
                Error::data(
                    Location::file(path),
                    format!("voxel axis {axis} has no direction in the world transform"),
                )
            })?;
            if source[row] != usize::MAX {
                return Err(Error::data(
                    Location::file(path),
                    format!(
                        "voxel axes {} and {axis} both run mostly along world axis {row} (axis codes {}): too oblique to reorient",
                        source[row],
                        world.axis_codes()
                    ),
                ));
            }
            source[row] = axis;
            flip[row] = sign < 0.0;
        }
        Ok(Self { source, flip })
    }

    pub fn is_identity(&self) -> bool {
        *self == Self::IDENTITY
    }

    /// Whether slices stay slices (the source's slice axis is the target's),
    /// so that boxes on a target slice are boxes on a source slice.
    pub fn keeps_slices(&self) -> bool {
        self.source[2] == 2
    }

    /// The dimensions of the re-indexed volume of a source of `dims`.
    pub fn target_dims(&self, dims: [usize; 3]) -> [usize; 3] {
        std::array::from_fn(|a| dims[self.source[a]])
    }

    /// The source voxel of target voxel `p`, for a source of `dims`.
    fn source_voxel(&self, p: [usize; 3], dims: [usize; 3]) -> [usize; 3] {
        let mut old = [0; 3];
        for (a, &c) in p.iter().enumerate() {
            let s = self.source[a];
            old[s] = if self.flip[a] { dims[s] - 1 - c } else { c };
        }
        old
    }

    /// For a map that keeps slices: the slice index on the other side (the
    /// map of slice numbers is its own inverse), for a source of `dims`.
    pub fn other_slice(&self, z: usize, dims: [usize; 3]) -> usize {
        if self.flip[2] { dims[2] - 1 - z } else { z }
    }

    /// For a map that keeps slices: a box on a target slice as a box on the
    /// source slice (continuous coordinates, integer values at voxel
    /// centres), for a source of `dims`.
    pub fn box_to_source(&self, b: Box2, dims: [usize; 3]) -> Box2 {
        let mut ranges = [(0.0, 0.0); 2];
        for (a, (lo, hi)) in [(b.x1, b.x2), (b.y1, b.y2)].into_iter().enumerate() {
            let s = self.source[a];
            let last = (dims[s] - 1) as f32;
            ranges[s] = if self.flip[a] {
                (last - hi, last - lo)
            } else {
                (lo, hi)
            };
        }
        Box2::new(ranges[0].0, ranges[1].0, ranges[0].1, ranges[1].1)
    }

    /// For a map that keeps slices: a box on a source slice as a box on the
    /// target slice (the inverse of [`Self::box_to_source`]).
    pub fn box_to_target(&self, b: Box2, dims: [usize; 3]) -> Box2 {
        let source = [(b.x1, b.x2), (b.y1, b.y2)];
        let mut ranges = [(0.0, 0.0); 2];
        for (a, range) in ranges.iter_mut().enumerate() {
            let s = self.source[a];
            let (lo, hi) = source[s];
            let last = (dims[s] - 1) as f32;
            *range = if self.flip[a] {
                (last - hi, last - lo)
            } else {
                (lo, hi)
            };
        }
        Box2::new(ranges[0].0, ranges[1].0, ranges[0].1, ranges[1].1)
    }

    /// Slice `z` of the re-indexed volume, row-major, without re-indexing
    /// the rest (for pictures of single slices).
    pub fn target_slice<T: Copy>(&self, volume: &Volume<T>, z: usize) -> Vec<T> {
        let dims = volume.dims();
        let [nx, ny, _] = self.target_dims(dims);
        let mut out = Vec::with_capacity(nx * ny);
        for y in 0..ny {
            for x in 0..nx {
                let [i, j, k] = self.source_voxel([x, y, z], dims);
                out.push(volume.get(i, j, k));
            }
        }
        out
    }

    /// The re-indexed volume; its world transform (when it has one) maps
    /// each voxel to the same world position as before.
    pub fn apply<T: Copy>(&self, volume: &Volume<T>) -> Volume<T> {
        if self.is_identity() {
            return volume.clone();
        }
        let dims = volume.dims();
        let new_dims = self.target_dims(dims);
        let spacing = volume.spacing();
        let new_spacing: [f64; 3] = std::array::from_fn(|a| spacing[self.source[a]]);
        let mut data = Vec::with_capacity(volume.data().len());
        for z in 0..new_dims[2] {
            data.extend(self.target_slice(volume, z));
        }
        let out = Volume::new(new_dims, new_spacing, data)
            .expect("a permutation of a valid volume is valid");
        match volume.world() {
            Some(w) => out.with_world(self.transform(w, dims)),
            None => out,
        }
    }

    /// The world transform of the re-indexed volume, from the source's
    /// transform and dimensions.
    pub fn transform(&self, w: &WorldTransform, dims: [usize; 3]) -> WorldTransform {
        let mut matrix = w.matrix;
        for row in &mut matrix {
            let original = *row;
            let mut offset = original[3];
            for (a, value) in row.iter_mut().take(3).enumerate() {
                let s = self.source[a];
                if self.flip[a] {
                    *value = -original[s];
                    offset += original[s] * (dims[s] - 1) as f64;
                } else {
                    *value = original[s];
                }
            }
            row[3] = offset;
        }
        WorldTransform {
            matrix,
            frame: w.frame,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_ras_ordered_volume_becomes_lps_and_keeps_world_positions() {
        // i towards R, j towards S, k towards A: a coronal RAS volume.
        let world = WorldTransform {
            matrix: [
                [0.5, 0.0, 0.0, -10.0],
                [0.0, 0.0, 2.0, 5.0],
                [0.0, 1.0, 0.0, 40.0],
            ],
            frame: Frame::Ras,
        };
        let dims = [4, 3, 2];
        let data: Vec<i16> = (0..24).collect();
        let v = Volume::new(dims, [0.5, 1.0, 2.0], data)
            .unwrap()
            .with_world(world);
        let map = AxisMap::to_lps(v.world(), Path::new("v.nii")).unwrap();
        // L = -R: axis 0 flipped; P = -A: axis 2 flipped; S: axis 1.
        assert_eq!(map.source, [0, 2, 1]);
        assert_eq!(map.flip, [true, true, false]);
        let r = map.apply(&v);
        assert_eq!(r.dims(), [4, 2, 3]);
        assert_eq!(r.spacing(), [0.5, 2.0, 1.0]);
        assert_eq!(r.world().unwrap().axis_codes(), "LPS");
        for (x, y, z) in [(0, 0, 0), (3, 1, 2), (1, 0, 2)] {
            let (i, j, k) = (3 - x, z, 1 - y);
            assert_eq!(r.get(x, y, z), v.get(i, j, k));
            let a = r.voxel_to_world([x as f64, y as f64, z as f64]).unwrap();
            let b = v.voxel_to_world([i as f64, j as f64, k as f64]).unwrap();
            assert!(
                a.iter().zip(b).all(|(p, q)| (p - q).abs() < 1e-9),
                "{a:?} {b:?}"
            );
        }
    }

    #[test]
    fn boxes_and_slices_map_between_the_grids_exactly() {
        // An axial volume stored with i towards A, j towards R (rows and
        // columns swapped) and k towards I (upside down).
        let world = WorldTransform {
            matrix: [
                [0.0, 0.7, 0.0, 0.0],
                [0.8, 0.0, 0.0, 0.0],
                [0.0, 0.0, -2.0, 0.0],
            ],
            frame: Frame::Ras,
        };
        let dims = [5, 4, 3];
        let v = Volume::new(dims, [0.8, 0.7, 2.0], (0..60).collect::<Vec<i16>>())
            .unwrap()
            .with_world(world);
        let map = AxisMap::to_lps(v.world(), Path::new("v")).unwrap();
        // L = -R: source axis 1 flipped; P = -A: axis 0 flipped; S = -k.
        assert_eq!((map.source, map.flip), ([1, 0, 2], [true, true, true]));
        assert!(map.keeps_slices());
        let r = map.apply(&v);
        let b = Box2::new(0.5, 1.0, 2.0, 3.5);
        let z = 0;
        let back = map.box_to_source(b, dims);
        let zs = map.other_slice(z, dims);
        assert_eq!(zs, 2);
        assert_eq!(map.box_to_target(back, dims), b);
        // The corners are the same world points in both grids.
        let w_target = r
            .voxel_to_world([b.x1.into(), b.y1.into(), z as f64])
            .unwrap();
        let corners_source = [
            [back.x1, back.y1],
            [back.x1, back.y2],
            [back.x2, back.y1],
            [back.x2, back.y2],
        ];
        assert!(corners_source.iter().any(|c| {
            let w = v
                .voxel_to_world([c[0].into(), c[1].into(), zs as f64])
                .unwrap();
            w.iter().zip(w_target).all(|(p, q)| (p - q).abs() < 1e-5)
        }));
        assert_eq!(map.target_slice(&v, 1), r.slice(1));
    }

    #[test]
    fn lps_volumes_and_volumes_without_world_stay_as_they_are() {
        assert!(AxisMap::to_lps(None, Path::new("x")).unwrap().is_identity());
        let lps = WorldTransform::from_origin_direction(
            [0.0; 3],
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            [1.0; 3],
            Frame::Lps,
        );
        assert!(
            AxisMap::to_lps(Some(&lps), Path::new("x"))
                .unwrap()
                .is_identity()
        );
    }
}
