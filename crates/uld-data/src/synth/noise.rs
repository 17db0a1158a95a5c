//! Smooth 3D value noise: a deterministic function of position and seed, so
//! textures (bowel loops, lung vessels) continue from one slice to the next.

/// Value noise on a unit lattice: hashed lattice values in [-1, 1], blended
/// with a smoothstep. Scale positions by 1 / wavelength before calling.
#[derive(Debug, Clone, Copy)]
pub struct ValueNoise {
    seed: u64,
}

impl ValueNoise {
    pub fn new(seed: u64) -> Self {
        Self {
            seed: mix(seed ^ 0x9E37_79B9_7F4A_7C15),
        }
    }

    fn lattice(&self, x: i64, y: i64, z: i64) -> f32 {
        let h = mix(self.seed
            ^ (x as u64).wrapping_mul(0x8CB9_2BA7_2F3D_8DD7)
            ^ (y as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (z as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
        (h >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// Noise in [-1, 1] at a point (lattice units).
    pub fn at(&self, x: f64, y: f64, z: f64) -> f32 {
        let (fx, fy, fz) = (x.floor(), y.floor(), z.floor());
        let (ix, iy, iz) = (fx as i64, fy as i64, fz as i64);
        let s = |t: f64| {
            let t = t as f32;
            t * t * (3.0 - 2.0 * t)
        };
        let (tx, ty, tz) = (s(x - fx), s(y - fy), s(z - fz));
        let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
        let plane = |z: i64| {
            let a = lerp(self.lattice(ix, iy, z), self.lattice(ix + 1, iy, z), tx);
            let b = lerp(
                self.lattice(ix, iy + 1, z),
                self.lattice(ix + 1, iy + 1, z),
                tx,
            );
            lerp(a, b, ty)
        };
        lerp(plane(iz), plane(iz + 1), tz)
    }

    /// Two octaves, roughly in [-1, 1]: coarse shape plus finer detail.
    pub fn fbm2(&self, x: f64, y: f64, z: f64) -> f32 {
        (self.at(x, y, z) * 0.67 + self.at(x * 2.03 + 17.1, y * 2.03 + 5.3, z * 2.03 + 9.7) * 0.33)
            * 1.2
    }
}

/// SplitMix64's finaliser: a cheap, well-mixed 64-bit hash.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_deterministic_bounded_and_continuous() {
        let n = ValueNoise::new(3);
        let mut max = 0f32;
        for i in 0..2000 {
            let p = (i as f64 * 0.37, i as f64 * 0.11, i as f64 * 0.05);
            let v = n.at(p.0, p.1, p.2);
            assert_eq!(v, ValueNoise::new(3).at(p.0, p.1, p.2));
            assert!((-1.0..=1.0).contains(&v));
            let dv = (n.at(p.0 + 1e-3, p.1, p.2) - v).abs();
            max = max.max(dv);
        }
        assert!(max < 0.01, "a step of 0.001 moved the noise by {max}");
        assert_ne!(ValueNoise::new(4).at(0.5, 0.5, 0.5), n.at(0.5, 0.5, 0.5));
    }
}
