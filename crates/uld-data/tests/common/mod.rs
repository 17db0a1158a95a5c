//! Helpers shared by the integration tests of uld-data (each test binary
//! uses some of them).
#![allow(dead_code)]

use uld_core::Box2;

/// Whether every coordinate of the two boxes differs by at most `tol`.
pub fn close(a: Box2, b: Box2, tol: f32) -> bool {
    a.to_array()
        .iter()
        .zip(b.to_array())
        .all(|(x, y)| (x - y).abs() <= tol)
}

/// Asserts each of the three axes is within `tol`, naming the axis.
pub fn assert_close(actual: [f64; 3], expected: [f64; 3], tol: f64) {
    for a in 0..3 {
        assert!(
            (actual[a] - expected[a]).abs() <= tol,
            "axis {a}: {actual:?} vs {expected:?}"
        );
    }
}
