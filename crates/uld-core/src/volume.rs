//! A CT volume: voxels in the source file's array order with their spacing
//! and, where the source has it, the voxel-to-world transform.
//!
//! Index order is `(x, y, z)` = the file's `(i, j, k)`; storage is slice after
//! slice, row after row inside a slice (`index = (z * ny + y) * nx + x`), so a
//! slice is one contiguous image with x to the right and y down.

use crate::{Error, Result};

/// The world frame a transform maps into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Frame {
    /// +x right, +y anterior, +z superior (NIfTI).
    Ras,
    /// +x left, +y posterior, +z superior (DICOM patient coordinates).
    Lps,
}

impl Frame {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ras => "RAS",
            Self::Lps => "LPS",
        }
    }
}

/// Maps voxel indices `(x, y, z)` to world millimetres: `w = M [x y z 1]^T`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorldTransform {
    pub matrix: [[f64; 4]; 3],
    pub frame: Frame,
}

impl WorldTransform {
    /// From an origin (world position of voxel 0), unit direction cosines
    /// (`direction[c]` is the world direction of voxel axis `c`) and spacing.
    pub fn from_origin_direction(
        origin: [f64; 3],
        direction: [[f64; 3]; 3],
        spacing: [f64; 3],
        frame: Frame,
    ) -> Self {
        let mut matrix = [[0.0; 4]; 3];
        for (row, m) in matrix.iter_mut().enumerate() {
            for axis in 0..3 {
                m[axis] = direction[axis][row] * spacing[axis];
            }
            m[3] = origin[row];
        }
        Self { matrix, frame }
    }

    pub fn apply(&self, voxel: [f64; 3]) -> [f64; 3] {
        let m = &self.matrix;
        std::array::from_fn(|r| {
            m[r][0] * voxel[0] + m[r][1] * voxel[1] + m[r][2] * voxel[2] + m[r][3]
        })
    }

    /// The world position of voxel 0.
    pub fn origin(&self) -> [f64; 3] {
        std::array::from_fn(|r| self.matrix[r][3])
    }

    /// For each voxel axis (i, j, k), the anatomical direction it runs
    /// towards most (the largest component of its matrix column), as in
    /// nibabel's `aff2axcodes`: e.g. `"LPS"` = i to the left, j posterior,
    /// k superior. `?` for an axis with a zero column.
    pub fn axis_codes(&self) -> String {
        (0..3)
            .map(|axis| match self.axis_direction(axis) {
                Some((row, sign)) => {
                    let (positive, negative) = match self.frame {
                        Frame::Ras => (['R', 'A', 'S'], ['L', 'P', 'I']),
                        Frame::Lps => (['L', 'P', 'S'], ['R', 'A', 'I']),
                    };
                    if sign > 0.0 {
                        positive[row]
                    } else {
                        negative[row]
                    }
                }
                None => '?',
            })
            .collect()
    }

    /// The world axis (0, 1, 2 of this frame) voxel axis `axis` runs along
    /// most, and the sign of that component; `None` for a zero column.
    pub fn axis_direction(&self, axis: usize) -> Option<(usize, f64)> {
        let column = [
            self.matrix[0][axis],
            self.matrix[1][axis],
            self.matrix[2][axis],
        ];
        let (row, value) = column
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .map(|(r, v)| (r, *v))?;
        (value != 0.0).then(|| (row, value.signum()))
    }

    /// The same points expressed in the other frame (RAS <-> LPS flips x and y).
    pub fn in_frame(&self, frame: Frame) -> Self {
        if frame == self.frame {
            return *self;
        }
        let mut matrix = self.matrix;
        for row in &mut matrix[..2] {
            row.iter_mut().for_each(|v| *v = -*v);
        }
        Self { matrix, frame }
    }
}

/// Voxels with geometry. `T` is `i16` for HU, an integer type for label maps.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume<T = i16> {
    dims: [usize; 3],
    spacing: [f64; 3],
    world: Option<WorldTransform>,
    data: Vec<T>,
}

impl<T: Copy> Volume<T> {
    /// A volume of `dims = [nx, ny, nz]` voxels of `spacing = [sx, sy, sz]` mm.
    pub fn new(dims: [usize; 3], spacing: [f64; 3], data: Vec<T>) -> Result<Self> {
        let expected = dims.iter().product::<usize>();
        if dims.contains(&0) {
            return Err(Error::invalid(
                "volume",
                format!("empty dimensions {dims:?}"),
            ));
        }
        if data.len() != expected {
            return Err(Error::invalid(
                "volume",
                format!("{dims:?} needs {expected} voxels, got {}", data.len()),
            ));
        }
        if !spacing.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err(Error::invalid(
                "volume",
                format!("spacing must be positive, got {spacing:?}"),
            ));
        }
        Ok(Self {
            dims,
            spacing,
            world: None,
            data,
        })
    }

    pub fn with_world(mut self, world: WorldTransform) -> Self {
        self.world = Some(world);
        self
    }

    pub fn dims(&self) -> [usize; 3] {
        self.dims
    }

    pub fn width(&self) -> usize {
        self.dims[0]
    }

    pub fn height(&self) -> usize {
        self.dims[1]
    }

    pub fn depth(&self) -> usize {
        self.dims[2]
    }

    /// Voxel size in mm, `[x, y, z]`; z is the slice interval.
    pub fn spacing(&self) -> [f64; 3] {
        self.spacing
    }

    pub fn world(&self) -> Option<&WorldTransform> {
        self.world.as_ref()
    }

    pub fn data(&self) -> &[T] {
        &self.data
    }

    pub fn into_data(self) -> Vec<T> {
        self.data
    }

    /// Slice `z` as a row-major `width x height` image.
    pub fn slice(&self, z: usize) -> &[T] {
        let n = self.dims[0] * self.dims[1];
        &self.data[z * n..(z + 1) * n]
    }

    pub fn get(&self, x: usize, y: usize, z: usize) -> T {
        self.data[(z * self.dims[1] + y) * self.dims[0] + x]
    }

    /// World millimetres of a voxel position, when the source gave a transform.
    pub fn voxel_to_world(&self, voxel: [f64; 3]) -> Option<[f64; 3]> {
        self.world.map(|w| w.apply(voxel))
    }

    /// The smallest index box holding every voxel where `keep` is true, with
    /// the number of such voxels: `([x0, y0, z0], [x1, y1, z1], count)`, inclusive.
    pub fn bounds_where(
        &self,
        keep: impl Fn(T) -> bool,
    ) -> Option<([usize; 3], [usize; 3], usize)> {
        let [nx, ny, _] = self.dims;
        let mut lo = [usize::MAX; 3];
        let mut hi = [0usize; 3];
        let mut count = 0;
        for (i, &v) in self.data.iter().enumerate() {
            if keep(v) {
                let p = [i % nx, (i / nx) % ny, i / (nx * ny)];
                for a in 0..3 {
                    lo[a] = lo[a].min(p[a]);
                    hi[a] = hi[a].max(p[a]);
                }
                count += 1;
            }
        }
        (count > 0).then_some((lo, hi, count))
    }
}

impl<T: Copy + PartialOrd> Volume<T> {
    /// The smallest and largest voxel values.
    pub fn value_range(&self) -> (T, T) {
        let first = self.data[0];
        self.data.iter().fold((first, first), |(lo, hi), &v| {
            (if v < lo { v } else { lo }, if v > hi { v } else { hi })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> Volume<i16> {
        Volume::new([4, 3, 2], [0.5, 0.5, 2.0], (0..24).collect()).unwrap()
    }

    #[test]
    fn indexing_is_slice_then_row_then_column() {
        let v = ramp();
        assert_eq!(v.get(1, 2, 1), 12 + 2 * 4 + 1);
        assert_eq!(v.slice(1)[0], 12);
        assert_eq!(v.value_range(), (0, 23));
    }

    #[test]
    fn rejects_wrong_voxel_count_and_bad_spacing() {
        assert!(Volume::new([4, 3, 2], [1.0; 3], vec![0i16; 23]).is_err());
        assert!(Volume::new([4, 3, 2], [1.0, 0.0, 1.0], vec![0i16; 24]).is_err());
        assert!(Volume::<i16>::new([0, 3, 2], [1.0; 3], vec![]).is_err());
    }

    #[test]
    fn bounds_of_marked_voxels() {
        let mut data = vec![0u8; 24];
        let index = |x: usize, y: usize, z: usize| (z * 3 + y) * 4 + x;
        data[index(2, 1, 0)] = 1;
        data[index(3, 2, 1)] = 1;
        let v = Volume::new([4, 3, 2], [1.0; 3], data).unwrap();
        assert_eq!(v.bounds_where(|x| x > 0), Some(([2, 1, 0], [3, 2, 1], 2)));
        assert_eq!(v.bounds_where(|x| x > 1), None);
    }

    #[test]
    fn world_transform_from_origin_direction_spacing() {
        let lps_axial = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let w = WorldTransform::from_origin_direction(
            [-100.0, -50.0, 20.0],
            lps_axial,
            [0.7, 0.7, 5.0],
            Frame::Lps,
        );
        let p = w.apply([10.0, 20.0, 3.0]);
        assert!((p[0] - -93.0).abs() < 1e-9);
        assert!((p[1] - -36.0).abs() < 1e-9);
        assert!((p[2] - 35.0).abs() < 1e-9);
        let ras = w.in_frame(Frame::Ras).apply([10.0, 20.0, 3.0]);
        assert_eq!(ras, [-p[0], -p[1], p[2]]);
    }
}
