//! Connected components of a label map: each becomes one lesion.
//!
//! Voxels belong together when they carry the same label above 0 and share
//! a face (6-connectivity in 3D, as `scipy.ndimage.label` by default), so
//! two touching lesions with different labels stay two lesions.

use uld_core::Volume;

/// One connected component.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub label: u16,
    /// Its voxels `[x, y, z]`, in scan order (z, then y, then x).
    pub voxels: Vec<[usize; 3]>,
}

impl Component {
    /// The inclusive voxel-index box: `([x0, y0, z0], [x1, y1, z1])`.
    pub fn bounds(&self) -> ([usize; 3], [usize; 3]) {
        let mut lo = [usize::MAX; 3];
        let mut hi = [0; 3];
        for v in &self.voxels {
            for a in 0..3 {
                lo[a] = lo[a].min(v[a]);
                hi[a] = hi[a].max(v[a]);
            }
        }
        (lo, hi)
    }

    /// The slice holding most of its voxels (the lowest of equals) and the
    /// `(x, y)` pixels it has there.
    pub fn largest_slice(&self) -> (usize, Vec<(usize, usize)>) {
        let mut counts = std::collections::BTreeMap::new();
        for v in &self.voxels {
            *counts.entry(v[2]).or_insert(0usize) += 1;
        }
        let z = counts
            .iter()
            .fold(
                (0, 0),
                |best, (&z, &n)| if n > best.1 { (z, n) } else { best },
            )
            .0;
        let pixels = self
            .voxels
            .iter()
            .filter(|v| v[2] == z)
            .map(|v| (v[0], v[1]))
            .collect();
        (z, pixels)
    }
}

/// The components of every label above 0, ordered by their first voxel.
pub fn components(labels: &Volume<u16>) -> Vec<Component> {
    let [nx, ny, nz] = labels.dims();
    let data = labels.data();
    let mut seen = vec![false; data.len()];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..data.len() {
        if data[start] == 0 || seen[start] {
            continue;
        }
        let label = data[start];
        seen[start] = true;
        stack.push(start);
        let mut voxels = Vec::new();
        while let Some(i) = stack.pop() {
            let (x, y, z) = (i % nx, (i / nx) % ny, i / (nx * ny));
            voxels.push([x, y, z]);
            let mut visit = |j: usize| {
                if !seen[j] && data[j] == label {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < nx {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - nx);
            }
            if y + 1 < ny {
                visit(i + nx);
            }
            if z > 0 {
                visit(i - nx * ny);
            }
            if z + 1 < nz {
                visit(i + nx * ny);
            }
        }
        voxels.sort_by_key(|v| (v[2], v[1], v[0]));
        out.push(Component { label, voxels });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faces_connect_labels_separate_and_corners_do_not_connect() {
        let (nx, ny, nz) = (5, 4, 3);
        let mut data = vec![0u16; nx * ny * nz];
        let at = |x: usize, y: usize, z: usize| (z * ny + y) * nx + x;
        // A 2-voxel lesion across slices 0 and 1, label 1.
        data[at(1, 1, 0)] = 1;
        data[at(1, 1, 1)] = 1;
        // Touching it by a face but labelled 2: a lesion of its own.
        data[at(2, 1, 1)] = 2;
        // Diagonal to the first: not connected.
        data[at(2, 2, 2)] = 1;
        let v = Volume::new([nx, ny, nz], [1.0; 3], data).unwrap();
        let c = components(&v);
        assert_eq!(c.len(), 3);
        assert_eq!((c[0].label, c[0].voxels.len()), (1, 2));
        assert_eq!(c[0].bounds(), ([1, 1, 0], [1, 1, 1]));
        assert_eq!(c[0].largest_slice(), (0, vec![(1, 1)]));
        assert_eq!((c[1].label, c[1].voxels.clone()), (2, vec![[2, 1, 1]]));
        assert_eq!(c[2].voxels, vec![[2, 2, 2]]);
    }
}
