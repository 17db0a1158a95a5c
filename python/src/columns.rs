//! Tables given as columns: a dict of equal-length lists, which the Python
//! layer makes from a DataFrame, a dict of arrays or per-unit arrays. Rows
//! are checked as the file readers check lines, and errors name the
//! argument, the row (0-based, as `DataFrame.iloc`) and the field.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use uld_core::{Box2, Box3, Error, Location};
use uld_eval::detections::{FieldError, check_box, slice_range};
use uld_eval::sources::no_rows_in_split;
use uld_eval::{
    Detection, DetectionSet, GroundTruth, GroundTruthBuilder, GroundTruthOptions, GtLesion,
    LesionAttrs, Protocol,
};

use crate::errors::to_py;

/// Named columns of one table, all of one length.
pub struct Columns<'py> {
    dict: Bound<'py, PyDict>,
    /// The argument the table came in, for messages.
    what: &'static str,
    rows: usize,
}

impl<'py> Columns<'py> {
    pub fn new(dict: Bound<'py, PyDict>, what: &'static str) -> PyResult<Self> {
        let mut rows: Option<(String, usize)> = None;
        for (name, column) in dict.iter() {
            let name: String = name.extract()?;
            let n = column.len()?;
            match &rows {
                None => rows = Some((name, n)),
                Some((first, m)) if *m != n => {
                    return Err(to_py(Error::data(
                        Location::file(what).field(&name),
                        format!("{n} rows, but column `{first}` has {m}"),
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(Self {
            dict,
            what,
            rows: rows.map_or(0, |(_, n)| n),
        })
    }

    fn at(&self, row: usize) -> Location {
        Location::file(self.what).row(row as u64)
    }

    fn missing(&self, name: &str, why: &str) -> PyErr {
        to_py(Error::data(
            Location::file(self.what).field(name),
            format!("missing column `{name}`{why}"),
        ))
    }

    fn optional<T>(&self, name: &str) -> PyResult<Option<Vec<T>>>
    where
        for<'a> Vec<T>: FromPyObject<'a, 'py>,
        for<'a> <Vec<T> as FromPyObject<'a, 'py>>::Error: Into<PyErr>,
    {
        let Some(column) = self.dict.get_item(name)? else {
            return Ok(None);
        };
        column.extract::<Vec<T>>().map(Some).map_err(|e| {
            let e: PyErr = e.into();
            to_py(Error::data(
                Location::file(self.what).field(name),
                e.to_string(),
            ))
        })
    }

    fn required<T>(&self, name: &str) -> PyResult<Vec<T>>
    where
        for<'a> Vec<T>: FromPyObject<'a, 'py>,
        for<'a> <Vec<T> as FromPyObject<'a, 'py>>::Error: Into<PyErr>,
    {
        self.optional(name)?.ok_or_else(|| self.missing(name, ""))
    }

    /// The four box columns `x1, y1, x2, y2`.
    fn boxes(&self) -> PyResult<[Vec<f64>; 4]> {
        Ok([
            self.required("x1")?,
            self.required("y1")?,
            self.required("x2")?,
            self.required("y2")?,
        ])
    }

    /// Optional whole numbers given as floats, NaN for an empty cell.
    fn whole(&self, name: &str) -> PyResult<Option<Vec<Option<i64>>>> {
        let Some(values) = self.optional::<f64>(name)? else {
            return Ok(None);
        };
        values
            .iter()
            .enumerate()
            .map(|(row, &v)| {
                if v.is_nan() {
                    Ok(None)
                } else if v.fract() == 0.0 && v.abs() < 2f64.powi(31) {
                    Ok(Some(v as i64))
                } else {
                    Err(to_py(Error::data(
                        self.at(row).field(name),
                        format!("{v} is not an integer"),
                    )))
                }
            })
            .collect::<PyResult<Vec<_>>>()
            .map(Some)
    }
}

fn nan_to_none(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

/// Ground truth from columns `key` (or `file_name`), `x1, y1, x2, y2` (0-based
/// pixels), `z1, z2` (harvester, lens: slices inside the sub-volume), and
/// optionally `long_diameter_mm`, `lesion_type`, `slice_interval_mm` for the
/// breakdowns and, for keyslice, `possibly_noisy` and `split`, filtered as
/// the `DL_info.csv` reader filters them. `units` lists units to evaluate
/// first, in order, lesions or not.
pub fn ground_truth(
    protocol: Protocol,
    cols: &Columns<'_>,
    units: Vec<String>,
    options: &GroundTruthOptions,
) -> PyResult<GroundTruth> {
    let key_column = if cols.dict.contains("key")? {
        "key"
    } else {
        "file_name"
    };
    let keys: Vec<String> = cols.optional(key_column)?.ok_or_else(|| {
        cols.missing(
            "key",
            " (or `file_name`): the image or sub-volume of each lesion",
        )
    })?;
    let [x1, y1, x2, y2] = cols.boxes()?;
    let keyslice = protocol == Protocol::KeySlice;
    let slices = if keyslice {
        None
    } else {
        let why = ": the harvester and lens protocols need each lesion's slices";
        let z1: Vec<f64> = cols
            .optional("z1")?
            .ok_or_else(|| cols.missing("z1", why))?;
        let z2: Vec<f64> = cols
            .optional("z2")?
            .ok_or_else(|| cols.missing("z2", why))?;
        Some((z1, z2))
    };
    let diameter = cols.optional::<f64>("long_diameter_mm")?;
    let lesion_type = cols.optional::<Option<String>>("lesion_type")?;
    let interval = cols.optional::<f64>("slice_interval_mm")?;
    let noisy = cols.optional::<bool>("possibly_noisy")?;
    let split = cols.optional::<String>("split")?;
    let mut gt = GroundTruthBuilder::new(format!("{} columns", cols.what));
    for unit in &units {
        gt.unit(unit);
    }
    let mut kept = 0;
    for row in 0..cols.rows {
        if keyslice {
            if options.drop_noisy && noisy.as_ref().is_some_and(|n| n[row]) {
                continue;
            }
            if let (Some(want), Some(split)) = (options.split, &split)
                && split[row] != want.name()
            {
                continue;
            }
        }
        let (z1, z2) = slices
            .as_ref()
            .map_or((0.0, 0.0), |(a, b)| (a[row], b[row]));
        let bbox = Box3::new(
            Box2::new(
                x1[row] as f32,
                y1[row] as f32,
                x2[row] as f32,
                y2[row] as f32,
            ),
            z1 as f32,
            z2 as f32,
        );
        check_lesion(&bbox)
            .map_err(|(field, m)| to_py(Error::data(cols.at(row).field(field), m)))?;
        gt.push(
            &keys[row],
            GtLesion {
                bbox,
                attrs: LesionAttrs {
                    long_diameter_mm: diameter.as_ref().and_then(|d| nan_to_none(d[row])),
                    lesion_type: lesion_type.as_ref().and_then(|t| t[row].clone()),
                    slice_interval_mm: interval.as_ref().and_then(|d| nan_to_none(d[row])),
                },
            },
        );
        kept += 1;
    }
    if keyslice && kept == 0 && units.is_empty() && cols.rows > 0 && split.is_some() {
        return Err(to_py(no_rows_in_split(
            Location::file(cols.what),
            cols.rows,
            options.split,
        )));
    }
    Ok(gt.build())
}

/// A lesion's box: the detection file's box rules, and finite, ordered slices.
fn check_lesion(b: &Box3) -> Result<(), FieldError> {
    check_box(&b.xy)?;
    for (name, v) in [("z1", b.z1), ("z2", b.z2)] {
        if !v.is_finite() {
            return Err((name, format!("{v} is not a finite number")));
        }
    }
    if b.z2 < b.z1 {
        return Err(("z2", format!("z2 {} is before z1 {}", b.z2, b.z1)));
    }
    Ok(())
}

/// Detections from the detection file's columns: `key, x1, y1, x2, y2,
/// score` and optionally `z1, z2, track` (NaN: empty, as in the CSV).
pub fn detections(cols: &Columns<'_>) -> PyResult<DetectionSet> {
    let keys: Vec<String> = cols.required("key")?;
    let [x1, y1, x2, y2] = cols.boxes()?;
    let score: Vec<f64> = cols.required("score")?;
    let z1 = cols.whole("z1")?;
    let z2 = cols.whole("z2")?;
    let track = cols.whole("track")?;
    let mut set = DetectionSet::new();
    for row in 0..cols.rows {
        let bad = |field: &str, m: String| to_py(Error::data(cols.at(row).field(field), m));
        let cell = |c: &Option<Vec<Option<i64>>>| c.as_ref().and_then(|c| c[row]);
        let slice = |c: &Option<Vec<Option<i64>>>| cell(c).map(|z| z as i32);
        let slices = slice_range(slice(&z1), slice(&z2)).map_err(|(f, m)| bad(f, m))?;
        let track = match cell(&track) {
            Some(t) if t < 0 => {
                return Err(bad("track", format!("{t} is not a non-negative integer")));
            }
            t => t.map(|t| t as u32),
        };
        let det = Detection {
            slices,
            bbox: Box2::new(
                x1[row] as f32,
                y1[row] as f32,
                x2[row] as f32,
                y2[row] as f32,
            ),
            score: score[row] as f32,
            track,
        };
        det.check().map_err(|(f, m)| bad(f, m))?;
        if keys[row].trim().is_empty() {
            return Err(bad("key", "empty key".into()));
        }
        set.push(&keys[row], det);
    }
    Ok(set)
}
