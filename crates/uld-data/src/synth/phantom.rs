//! The CT phantom: a torso built from 3D shapes in patient millimetres, so
//! every slice is a cross-section of one body and neighbouring slices agree.
//!
//! Frame: `x` to the image right (the patient's left), `y` down (posterior),
//! `z` craniocaudal in mm from the lung apices (0) to below the hips (~660).
//! Tissue values are portal-venous-phase HU, drawn per patient.

use rand::Rng;
use serde::Serialize;

use super::noise::ValueNoise;

/// The part of the torso a series covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    Chest,
    Abdomen,
    Pelvis,
}

impl Region {
    pub const ALL: [Self; 3] = [Self::Chest, Self::Abdomen, Self::Pelvis];

    /// The craniocaudal range (mm) a series of this region covers.
    pub fn z_range(self) -> (f64, f64) {
        match self {
            Self::Chest => (0.0, 330.0),
            Self::Abdomen => (170.0, 480.0),
            Self::Pelvis => (400.0, 660.0),
        }
    }
}

/// Places lesions are put in (DeepLesion's coarse types map onto them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Site {
    Liver,
    Spleen,
    KidneyRight,
    KidneyLeft,
    LungRight,
    LungLeft,
    /// The fat between the lungs (lymph nodes).
    Mediastinum,
    /// Mesentery and retroperitoneum.
    Abdomen,
    /// The pelvic cavity.
    Pelvis,
    /// Vertebral bodies.
    Spine,
    /// Subcutaneous fat and the muscle wall.
    Subcutaneous,
}

/// An ellipsoid rotated about z, optionally cut to a z range (cylinders are
/// ellipsoids with a huge z radius cut to their length).
#[derive(Debug, Clone, Copy)]
pub struct Ellipsoid {
    pub center: [f64; 3],
    pub radii: [f64; 3],
    pub angle: f64,
    pub z_limits: (f64, f64),
}

/// A cross-section: an ellipse rotated by `angle`.
#[derive(Debug, Clone, Copy)]
pub struct Ellipse {
    pub cx: f64,
    pub cy: f64,
    pub ra: f64,
    pub rb: f64,
    cos: f64,
    sin: f64,
}

impl Ellipse {
    pub fn new(cx: f64, cy: f64, ra: f64, rb: f64, angle: f64) -> Self {
        Self {
            cx,
            cy,
            ra,
            rb,
            cos: angle.cos(),
            sin: angle.sin(),
        }
    }

    /// Squared normalised radius: < 1 inside.
    #[inline]
    pub fn rho2(&self, x: f64, y: f64) -> f64 {
        let (dx, dy) = (x - self.cx, y - self.cy);
        let u = (dx * self.cos + dy * self.sin) / self.ra;
        let v = (-dx * self.sin + dy * self.cos) / self.rb;
        u * u + v * v
    }

    /// A uniform random point inside the ellipse shrunk by `shrink` (0..1).
    pub fn sample(&self, rng: &mut impl Rng, shrink: f64) -> (f64, f64) {
        let r = rng.random::<f64>().sqrt() * shrink;
        let t = rng.random_range(0.0..std::f64::consts::TAU);
        let (u, v) = (r * t.cos() * self.ra, r * t.sin() * self.rb);
        (
            self.cx + u * self.cos - v * self.sin,
            self.cy + u * self.sin + v * self.cos,
        )
    }

    fn extent(&self) -> f64 {
        self.ra.max(self.rb)
    }
}

impl Ellipsoid {
    fn new(center: [f64; 3], radii: [f64; 3], angle: f64) -> Self {
        Self {
            center,
            radii,
            angle,
            z_limits: (f64::NEG_INFINITY, f64::INFINITY),
        }
    }

    fn cylinder(cx: f64, cy: f64, r: [f64; 2], z: (f64, f64)) -> Self {
        Self {
            center: [cx, cy, 0.0],
            radii: [r[0], r[1], 1e9],
            angle: 0.0,
            z_limits: z,
        }
    }

    /// The cross-section at `z`, if the shape reaches it.
    pub fn section(&self, z: f64) -> Option<Ellipse> {
        if z < self.z_limits.0 || z > self.z_limits.1 {
            return None;
        }
        let w = (z - self.center[2]) / self.radii[2];
        let k = 1.0 - w * w;
        (k > 0.0).then(|| {
            let k = k.sqrt();
            Ellipse::new(
                self.center[0],
                self.center[1],
                self.radii[0] * k,
                self.radii[1] * k,
                self.angle,
            )
        })
    }

    /// The z range the shape covers.
    pub fn z_span(&self) -> (f64, f64) {
        (
            (self.center[2] - self.radii[2]).max(self.z_limits.0),
            (self.center[2] + self.radii[2]).min(self.z_limits.1),
        )
    }
}

/// Tissue values of one patient, HU.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Tissues {
    pub fat: f32,
    pub muscle: f32,
    pub liver: f32,
    pub spleen: f32,
    pub kidney: f32,
    pub blood: f32,
    pub lung: f32,
    pub marrow: f32,
    pub cortical_bone: f32,
    pub bowel: f32,
    pub water: f32,
}

impl Tissues {
    fn draw(rng: &mut impl Rng) -> Self {
        let contrast = rng.random_range(0.0..1.0f32);
        Self {
            fat: rng.random_range(-110.0..-85.0),
            muscle: rng.random_range(40.0..60.0),
            liver: 50.0 + 60.0 * contrast + rng.random_range(-5.0..5.0),
            spleen: 45.0 + 70.0 * contrast + rng.random_range(-5.0..5.0),
            kidney: 40.0 + 140.0 * contrast + rng.random_range(-5.0..5.0),
            blood: 40.0 + 130.0 * contrast + rng.random_range(-5.0..5.0),
            lung: rng.random_range(-880.0..-820.0),
            marrow: rng.random_range(180.0..300.0),
            cortical_bone: rng.random_range(650.0..900.0),
            bowel: rng.random_range(20.0..45.0),
            water: rng.random_range(0.0..15.0),
        }
    }
}

/// Rendered structures, in paint priority (first hit wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    VertebralBody,
    SpinalCanal,
    SpinousProcess,
    Aorta,
    VenaCava,
    Trachea,
    Heart,
    KidneyRight,
    KidneyLeft,
    LungRight,
    LungLeft,
    Spleen,
    Liver,
    Stomach,
    Bladder,
    IliacRight,
    IliacLeft,
    FemurRight,
    FemurLeft,
    Psoas,
    PsoasLeft,
    Paraspinal,
    ParaspinalLeft,
    Sternum,
}

/// One patient's body.
#[derive(Debug, Clone)]
pub struct Anatomy {
    /// In-plane size factor against the reference adult (half width 165 mm).
    pub scale: f64,
    pub tissues: Tissues,
    fat_mm: f64,
    muscle_mm: f64,
    /// Body half width / half depth factors, and their craniocaudal wobble.
    width_factor: f64,
    depth_factor: f64,
    parts: Vec<(Part, Ellipsoid)>,
    disc_phase: f64,
    rib_phase: f64,
    texture: ValueNoise,
    texture2: ValueNoise,
    texture3: ValueNoise,
}

/// Reference body half width and half depth (mm) along z, before scaling.
const BODY_KEYS: [(f64, f64, f64); 6] = [
    (-50.0, 160.0, 105.0),
    (100.0, 165.0, 115.0),
    (250.0, 160.0, 118.0),
    (400.0, 160.0, 112.0),
    (550.0, 172.0, 108.0),
    (720.0, 175.0, 105.0),
];

impl Anatomy {
    /// A patient whose body half width is `half_width_mm`.
    pub fn draw(rng: &mut impl Rng, half_width_mm: f64) -> Self {
        let s = half_width_mm / 165.0;
        let mut j = |v: f64, spread: f64| v * (1.0 + rng.random_range(-spread..spread));
        let spine_y = 62.0 * s;
        let e = |c: [f64; 3], r: [f64; 3], a: f64, j: &mut dyn FnMut(f64, f64) -> f64| {
            Ellipsoid::new(
                [c[0] * s, c[1] * s, c[2]],
                [j(r[0] * s, 0.08), j(r[1] * s, 0.08), j(r[2], 0.08)],
                a,
            )
        };
        let mut parts = vec![
            (
                Part::VertebralBody,
                Ellipsoid::cylinder(0.0, spine_y, [17.0 * s, 15.0 * s], (-100.0, 540.0)),
            ),
            (
                Part::SpinalCanal,
                Ellipsoid::cylinder(0.0, spine_y + 25.0 * s, [8.0 * s, 8.0 * s], (-100.0, 560.0)),
            ),
            (
                Part::SpinousProcess,
                Ellipsoid::cylinder(
                    0.0,
                    spine_y + 45.0 * s,
                    [5.0 * s, 13.0 * s],
                    (-100.0, 560.0),
                ),
            ),
            (
                Part::Aorta,
                Ellipsoid::cylinder(
                    18.0 * s,
                    spine_y - 25.0 * s,
                    [12.0 * s, 12.0 * s],
                    (40.0, 470.0),
                ),
            ),
            (
                Part::VenaCava,
                Ellipsoid::cylinder(
                    -25.0 * s,
                    spine_y - 30.0 * s,
                    [11.0 * s, 9.0 * s],
                    (260.0, 470.0),
                ),
            ),
            (
                Part::Trachea,
                Ellipsoid::cylinder(0.0, -5.0 * s, [9.0 * s, 8.0 * s], (-100.0, 110.0)),
            ),
        ];
        let mut push =
            |p: Part, c: [f64; 3], r: [f64; 3], a: f64| parts.push((p, e(c, r, a, &mut j)));
        push(Part::Heart, [15.0, -30.0, 175.0], [62.0, 50.0, 55.0], 0.5);
        push(
            Part::KidneyRight,
            [-65.0, 50.0, 370.0],
            [30.0, 22.0, 55.0],
            0.5,
        );
        push(
            Part::KidneyLeft,
            [65.0, 50.0, 360.0],
            [30.0, 22.0, 55.0],
            -0.5,
        );
        push(
            Part::LungRight,
            [-80.0, 8.0, 130.0],
            [65.0, 88.0, 135.0],
            0.0,
        );
        push(Part::LungLeft, [82.0, 8.0, 135.0], [62.0, 88.0, 128.0], 0.0);
        push(Part::Spleen, [88.0, 40.0, 285.0], [32.0, 55.0, 55.0], -0.6);
        push(Part::Liver, [-50.0, 0.0, 290.0], [95.0, 88.0, 88.0], 0.25);
        push(Part::Stomach, [45.0, -30.0, 275.0], [45.0, 38.0, 50.0], 0.3);
        push(Part::Bladder, [0.0, -35.0, 610.0], [50.0, 40.0, 42.0], 0.0);
        push(
            Part::IliacRight,
            [-100.0, 35.0, 525.0],
            [22.0, 58.0, 80.0],
            0.6,
        );
        push(
            Part::IliacLeft,
            [100.0, 35.0, 525.0],
            [22.0, 58.0, 80.0],
            -0.6,
        );
        push(
            Part::FemurRight,
            [-95.0, 5.0, 650.0],
            [24.0, 24.0, 40.0],
            0.0,
        );
        push(Part::FemurLeft, [95.0, 5.0, 650.0], [24.0, 24.0, 40.0], 0.0);
        push(Part::Psoas, [-42.0, 55.0, 520.0], [20.0, 18.0, 150.0], 0.0);
        push(
            Part::PsoasLeft,
            [42.0, 55.0, 520.0],
            [20.0, 18.0, 150.0],
            0.0,
        );
        push(
            Part::Paraspinal,
            [-38.0, 100.0, 300.0],
            [30.0, 22.0, 500.0],
            0.0,
        );
        push(
            Part::ParaspinalLeft,
            [38.0, 100.0, 300.0],
            [30.0, 22.0, 500.0],
            0.0,
        );
        push(Part::Sternum, [0.0, -100.0, 120.0], [16.0, 6.0, 90.0], 0.0);
        Self {
            scale: s,
            tissues: Tissues::draw(rng),
            fat_mm: rng.random_range(8.0..30.0) * s,
            muscle_mm: rng.random_range(8.0..14.0) * s,
            width_factor: rng.random_range(0.95..1.05),
            depth_factor: rng.random_range(0.9..1.1),
            parts,
            disc_phase: rng.random_range(0.0..30.0),
            rib_phase: rng.random_range(0.0..25.0),
            texture: ValueNoise::new(rng.random()),
            texture2: ValueNoise::new(rng.random()),
            texture3: ValueNoise::new(rng.random()),
        }
    }

    /// Body half width and half depth (mm) at `z`.
    pub fn body_radii(&self, z: f64) -> (f64, f64) {
        let i = BODY_KEYS
            .windows(2)
            .position(|w| z <= w[1].0)
            .unwrap_or(BODY_KEYS.len() - 2);
        let (a, b) = (BODY_KEYS[i], BODY_KEYS[i + 1]);
        let t = ((z - a.0) / (b.0 - a.0)).clamp(0.0, 1.0);
        let w = a.1 + (b.1 - a.1) * t + 3.0 * (z / 37.0).sin();
        let d = a.2 + (b.2 - a.2) * t + 2.0 * (z / 53.0).cos();
        (
            w * self.scale * self.width_factor,
            d * self.scale * self.depth_factor,
        )
    }

    /// Depth below the skin-equivalent surface where the body cavity starts.
    pub fn wall_mm(&self) -> f64 {
        self.fat_mm + self.muscle_mm
    }

    fn part(&self, which: Part) -> &Ellipsoid {
        &self
            .parts
            .iter()
            .find(|(p, _)| *p == which)
            .expect("every part is built")
            .1
    }

    /// The shape a lesion site is drawn in; `None` for sites defined by the
    /// body wall ([`Site::Subcutaneous`]).
    pub fn site_shape(&self, site: Site) -> Option<Ellipsoid> {
        let s = self.scale;
        Some(match site {
            Site::Liver => *self.part(Part::Liver),
            Site::Spleen => *self.part(Part::Spleen),
            Site::KidneyRight => *self.part(Part::KidneyRight),
            Site::KidneyLeft => *self.part(Part::KidneyLeft),
            Site::LungRight => *self.part(Part::LungRight),
            Site::LungLeft => *self.part(Part::LungLeft),
            Site::Spine => *self.part(Part::VertebralBody),
            Site::Mediastinum => {
                let mut e =
                    Ellipsoid::new([0.0, -15.0 * s, 140.0], [24.0 * s, 45.0 * s, 95.0], 0.0);
                e.z_limits = (40.0, 240.0);
                e
            }
            Site::Abdomen => {
                Ellipsoid::new([0.0, -10.0 * s, 430.0], [95.0 * s, 55.0 * s, 130.0], 0.0)
            }
            Site::Pelvis => Ellipsoid::new([0.0, -5.0 * s, 585.0], [75.0 * s, 50.0 * s, 70.0], 0.0),
            Site::Subcutaneous => return None,
        })
    }

    /// The nominal HU of the tissue a site holds (what a lesion's contrast is
    /// measured against).
    pub fn site_hu(&self, site: Site) -> f32 {
        let t = &self.tissues;
        match site {
            Site::Liver => t.liver,
            Site::Spleen => t.spleen,
            Site::KidneyRight | Site::KidneyLeft => t.kidney,
            Site::LungRight | Site::LungLeft => t.lung,
            Site::Spine => t.marrow,
            Site::Mediastinum | Site::Abdomen | Site::Pelvis | Site::Subcutaneous => t.fat,
        }
    }

    /// Normalised superellipse radius of the body outline: < 1 inside.
    #[inline]
    fn body_rho(x: f64, y: f64, w: f64, d: f64) -> f64 {
        let (u, v) = (x / w, y / d);
        let (u2, v2) = (u * u, v * v);
        // between an ellipse and a rounded rectangle: flatter back and flanks;
        // homogeneous of degree 1, so 1 - rho scales like a depth
        (0.6 * (u2 + v2) + 0.4 * (u2 * u2 + v2 * v2).sqrt()).sqrt()
    }

    /// The body's in-plane bounding box (mm) at `z`: x1, y1, x2, y2.
    pub fn body_bounds(&self, z: f64) -> [f64; 4] {
        let (w, d) = self.body_radii(z);
        [-w, -d, w, d]
    }

    /// Renders the anatomy (no lesions, no noise) of the slice at `z` into
    /// `out`, pixel `(i, j)` at `geometry.mm(i, j)`.
    pub fn render(&self, z: f64, geometry: &SliceGeometry, out: &mut [f32]) {
        let sections: Vec<(Part, Ellipse)> = self
            .parts
            .iter()
            .filter_map(|(p, e)| e.section(z).map(|s| (*p, s)))
            .collect();
        let (w, d) = self.body_radii(z);
        let t = &self.tissues;
        let table_y = d + 22.0 * self.scale;
        let wall = self.wall_mm();
        let minor = w.min(d);
        let ribs = z < 330.0;
        let fov_radius = geometry.fov_radius_mm();
        for j in 0..geometry.size {
            let y = geometry.y_mm(j);
            let row = &mut out[j * geometry.size..(j + 1) * geometry.size];
            // rows above/below the body: air or table
            for (i, px) in row.iter_mut().enumerate() {
                let x = geometry.x_mm(i);
                if geometry.padded_fov {
                    let (dx, dy) = (x - geometry.center_mm[0], y - geometry.center_mm[1]);
                    if dx * dx + dy * dy > fov_radius * fov_radius {
                        *px = -2048.0;
                        continue;
                    }
                }
                let rho = Self::body_rho(x, y, w, d);
                if rho >= 1.0 {
                    *px = if (table_y..table_y + 6.0).contains(&y) && x.abs() < w * 1.3 {
                        120.0
                    } else {
                        -1000.0
                    };
                    continue;
                }
                let depth = (1.0 - rho) * minor;
                *px = self.inside_value(x, y, z, depth, wall, ribs, &sections, t);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn inside_value(
        &self,
        x: f64,
        y: f64,
        z: f64,
        depth: f64,
        wall: f64,
        ribs: bool,
        sections: &[(Part, Ellipse)],
        t: &Tissues,
    ) -> f32 {
        if depth < 1.5 {
            return t.muscle - 10.0;
        }
        if ribs && depth > wall - 1.0 && depth < wall + 8.0 * self.scale && self.rib_at(x, y, z) {
            return t.cortical_bone * 0.8;
        }
        for (part, e) in sections {
            if (x - e.cx).abs() > e.extent() || (y - e.cy).abs() > e.extent() {
                continue;
            }
            let r2 = e.rho2(x, y);
            if r2 < 1.0 {
                return self.part_value(*part, r2, x, y, z, t);
            }
        }
        if depth < self.fat_mm {
            return t.fat + 6.0 * self.texture.at(x / 9.0, y / 9.0, z / 9.0);
        }
        if depth < wall {
            return t.muscle;
        }
        if z < 240.0 {
            // mediastinal and chest-wall fat
            t.fat + 8.0 + 6.0 * self.texture.at(x / 9.0, y / 9.0, z / 9.0)
        } else {
            self.bowel(x, y, z)
        }
    }

    /// Ribs: arcs around the chest wall sloping down towards the front,
    /// one every ~25 mm, with the costal cartilage gap at the sternum.
    fn rib_at(&self, x: f64, y: f64, z: f64) -> bool {
        let theta = x.atan2(y); // 0 at the back, +-pi at the front
        if theta.abs() > 2.6 {
            return false;
        }
        let slope = 55.0 * (1.0 - theta.cos()) / 2.0;
        let phase = (z - slope + self.rib_phase).rem_euclid(25.0);
        phase < 7.0
    }

    /// Bowel loops: fluid-filled walls, gas pockets and mesenteric fat.
    fn bowel(&self, x: f64, y: f64, z: f64) -> f32 {
        let n = self.texture.fbm2(x / 28.0, y / 28.0, z / 28.0);
        let t = &self.tissues;
        if n > 0.42 {
            -950.0 + 60.0 * (0.6 - n).max(0.0)
        } else if n < -0.25 {
            t.fat + 5.0 * n
        } else {
            t.bowel + 18.0 * self.texture2.at(x / 6.0, y / 6.0, z / 6.0)
        }
    }

    /// Tubular structures: where two independent noise fields are both near
    /// zero, a 1D set in 3D, so a slice cuts them as dots and short segments.
    fn vessel(&self, x: f64, y: f64, z: f64, wavelength: f64, width: f32) -> bool {
        let a = self
            .texture2
            .at(x / wavelength, y / wavelength, z / wavelength);
        if a.abs() >= width {
            return false;
        }
        self.texture3
            .at(x / wavelength, y / wavelength, z / wavelength)
            .abs()
            < width
    }

    fn part_value(&self, part: Part, r2: f64, x: f64, y: f64, z: f64, t: &Tissues) -> f32 {
        match part {
            Part::VertebralBody => {
                let disc = (z + self.disc_phase).rem_euclid(30.0) < 5.0;
                if disc {
                    90.0
                } else if r2 > 0.72 {
                    t.cortical_bone
                } else {
                    t.marrow + 25.0 * self.texture2.at(x / 3.0, y / 3.0, z / 3.0)
                }
            }
            Part::SpinalCanal => t.water + 5.0,
            Part::SpinousProcess | Part::Sternum => {
                if r2 > 0.5 {
                    t.cortical_bone
                } else {
                    t.marrow
                }
            }
            Part::IliacRight | Part::IliacLeft | Part::FemurRight | Part::FemurLeft => {
                if r2 > 0.7 {
                    t.cortical_bone
                } else {
                    t.marrow - 40.0
                }
            }
            Part::Aorta | Part::VenaCava => t.blood,
            Part::Trachea => -990.0,
            Part::Heart => {
                if r2 > 0.75 {
                    t.muscle + 15.0
                } else {
                    t.blood
                }
            }
            Part::KidneyRight | Part::KidneyLeft => {
                if r2 > 0.45 {
                    t.kidney
                } else if r2 > 0.2 {
                    t.kidney - 0.4 * (t.kidney - t.water)
                } else {
                    t.fat + 30.0
                }
            }
            Part::LungRight | Part::LungLeft => {
                // vessels thicken towards the hilum
                let hilum =
                    1.0 - ((x.abs() - 40.0 * self.scale) / (120.0 * self.scale)).clamp(0.0, 1.0);
                if self.vessel(x, y, z, 22.0, 0.05 + 0.07 * hilum as f32) {
                    t.blood
                } else {
                    t.lung + 15.0 * self.texture.at(x / 5.0, y / 5.0, z / 5.0)
                }
            }
            Part::Liver => {
                if self.vessel(x, y, z, 35.0, 0.045) {
                    t.blood
                } else {
                    t.liver + 6.0 * self.texture.at(x / 15.0, y / 15.0, z / 15.0)
                }
            }
            Part::Spleen => t.spleen + 4.0 * self.texture.at(x / 15.0, y / 15.0, z / 15.0),
            Part::Stomach => {
                let e = self.part(Part::Stomach);
                // gas rises to the front: an air-fluid level
                if y < e.center[1] - 0.35 * e.radii[1] {
                    -980.0
                } else if r2 > 0.8 {
                    t.bowel + 10.0
                } else {
                    t.water + 10.0
                }
            }
            Part::Bladder => t.water,
            Part::Psoas | Part::PsoasLeft | Part::Paraspinal | Part::ParaspinalLeft => t.muscle,
        }
    }
}

/// Where a slice's pixels lie in the patient frame.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SliceGeometry {
    pub size: usize,
    /// mm per pixel, x and y.
    pub spacing: f64,
    /// Patient-frame position (mm) of the image centre.
    pub center_mm: [f64; 2],
    /// Whether pixels outside the reconstruction circle hold -2048 HU.
    pub padded_fov: bool,
}

impl SliceGeometry {
    /// The mm position of pixel column `i` (pixel centres at whole indices).
    #[inline]
    pub fn x_mm(&self, i: usize) -> f64 {
        (i as f64 - (self.size as f64 - 1.0) / 2.0) * self.spacing + self.center_mm[0]
    }

    #[inline]
    pub fn y_mm(&self, j: usize) -> f64 {
        (j as f64 - (self.size as f64 - 1.0) / 2.0) * self.spacing + self.center_mm[1]
    }

    /// The (fractional) pixel column of a patient-frame x.
    pub fn col(&self, x: f64) -> f64 {
        (x - self.center_mm[0]) / self.spacing + (self.size as f64 - 1.0) / 2.0
    }

    pub fn row(&self, y: f64) -> f64 {
        (y - self.center_mm[1]) / self.spacing + (self.size as f64 - 1.0) / 2.0
    }

    pub fn fov_radius_mm(&self) -> f64 {
        self.size as f64 * self.spacing / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn render(anatomy: &Anatomy, z: f64) -> (SliceGeometry, Vec<f32>) {
        let g = SliceGeometry {
            size: 200,
            spacing: 2.0,
            center_mm: [0.0, 0.0],
            padded_fov: false,
        };
        let mut out = vec![0.0; 200 * 200];
        anatomy.render(z, &g, &mut out);
        (g, out)
    }

    fn value_at(anatomy: &Anatomy, z: f64, x: f64, y: f64) -> f32 {
        let (g, out) = render(anatomy, z);
        out[g.row(y).round() as usize * g.size + g.col(x).round() as usize]
    }

    #[test]
    fn organs_hold_their_tissue_values() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let a = Anatomy::draw(&mut rng, 165.0);
        let t = a.tissues;
        // outside the body: air
        assert_eq!(value_at(&a, 300.0, 0.0, -190.0), -1000.0);
        // lung centre in the chest
        let lung = a.site_shape(Site::LungRight).unwrap();
        let v = value_at(&a, 120.0, lung.center[0], lung.center[1] - 30.0);
        assert!(v < -500.0 || (v - t.blood).abs() < 1.0, "lung pixel {v}");
        // liver centre: liver tissue or a vessel
        let liver = a.site_shape(Site::Liver).unwrap();
        let v = value_at(&a, 300.0, liver.center[0] - 20.0, liver.center[1]);
        assert!(
            (v - t.liver).abs() <= 6.5 || (v - t.blood).abs() < 1.0,
            "liver pixel {v} vs {}",
            t.liver
        );
        // vertebral body: bone (marrow, cortex or a disc)
        let v = value_at(&a, 300.0, 0.0, 62.0);
        assert!(v >= 90.0, "spine pixel {v}");
    }

    #[test]
    fn neighbouring_slices_agree_and_distant_ones_differ() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let a = Anatomy::draw(&mut rng, 160.0);
        let (_, s0) = render(&a, 350.0);
        let (_, s1) = render(&a, 351.0);
        let (_, s2) = render(&a, 420.0);
        let diff = |p: &[f32], q: &[f32]| {
            p.iter()
                .zip(q)
                .filter(|(a, b)| (*a - *b).abs() > 50.0)
                .count()
        };
        assert!(
            diff(&s0, &s1) < diff(&s0, &s2) / 3,
            "{} vs {}",
            diff(&s0, &s1),
            diff(&s0, &s2)
        );
    }
}
