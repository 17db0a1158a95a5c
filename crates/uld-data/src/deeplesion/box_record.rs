//! A `DL_info.csv` row made from a box alone: what a mined or reviewed
//! lesion is written as.

use uld_core::Box2;

use crate::deeplesion::{LesionRecord, LesionType};
use crate::recist::BOX_PADDING_PX;

/// A `DL_info.csv` row for a new box (a mined lesion, or one a reviewer
/// drew) on the key image of `row`: the box
/// as `Bounding_boxes`, and as "RECIST" the box's axes unpadded by 5 px
/// (long axis along the longer side). The lesion type is unknown (-1); the
/// normalised location is the box centre over the image size for x and y,
/// and the annotated lesion's z.
pub fn record_for_box(row: &LesionRecord, b: &Box2) -> LesionRecord {
    let shrink = BOX_PADDING_PX.min((b.width().min(b.height()) / 2.0 - 0.5).max(0.0));
    let inner = b.pad(-shrink);
    let (cx, cy) = ((inner.x1 + inner.x2) / 2.0, (inner.y1 + inner.y2) / 2.0);
    let horizontal = [inner.x1, cy, inner.x2, cy];
    let vertical = [cx, inner.y1, cx, inner.y2];
    let (long, short) = if inner.width() >= inner.height() {
        (horizontal, vertical)
    } else {
        (vertical, horizontal)
    };
    let mut recist = [0.0; 8];
    recist[..4].copy_from_slice(&long);
    recist[4..].copy_from_slice(&short);
    let [w, h] = row.image_size;
    LesionRecord {
        recist,
        bbox: *b,
        diameters_px: [
            inner.width().max(inner.height()),
            inner.width().min(inner.height()),
        ],
        normalized_location: [
            cx / w.max(1) as f32,
            cy / h.max(1) as f32,
            row.normalized_location[2],
        ],
        lesion_type: LesionType::Unknown,
        possibly_noisy: false,
        ..row.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::deeplesion::{Gender, Split};

    #[test]
    fn a_box_becomes_a_row_with_its_axes_inside_the_box() {
        let row = LesionRecord {
            file_name: "000001_01_01_012.png".into(),
            patient: 1,
            study: 1,
            series: 1,
            key_slice_png: 12,
            recist: [10.0, 10.0, 30.0, 10.0, 20.0, 5.0, 20.0, 15.0],
            bbox: Box2::new(5.0, 0.0, 35.0, 20.0),
            diameters_px: [20.0, 10.0],
            normalized_location: [0.1, 0.2, 0.7],
            lesion_type: LesionType::Liver,
            possibly_noisy: true,
            slice_range: [1, 24],
            spacing: [0.8, 0.8, 2.0],
            image_size: [512, 400],
            dicom_windows: vec![[-160.0, 240.0]],
            gender: Gender::Female,
            age: Some(60.0),
            split: Split::Train,
        };
        let b = Box2::new(100.0, 200.0, 140.0, 220.0);
        let r = record_for_box(&row, &b);
        assert_eq!(r.bbox, b);
        assert_eq!(r.diameters_px, [30.0, 10.0], "unpadded by 5 px each side");
        assert_eq!(
            &r.recist[..4],
            &[105.0, 210.0, 135.0, 210.0],
            "long axis along x"
        );
        assert_eq!(&r.recist[4..], &[120.0, 205.0, 120.0, 215.0]);
        assert_eq!(r.normalized_location, [120.0 / 512.0, 0.525, 0.7]);
        assert_eq!(r.lesion_type, LesionType::Unknown);
        assert!(!r.possibly_noisy);
        assert_eq!(r.file_name, row.file_name, "on the same key image");
    }
}
