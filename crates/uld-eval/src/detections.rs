//! Detection files: the one format the detector, `uld detect` and
//! `uld eval` exchange.
//!
//! CSV (any extension but `.json`), comment lines start with `#`:
//!
//! ```text
//! # uld detections v1
//! # key: DeepLesion key image (000089_01_01_037.png), sub-volume (000001_01_01_103-115) or scan name (uld detect SCAN)
//! # z1,z2: first and last slice covered, 0-based inside the sub-volume or scan named by key, inclusive; empty for key images
//! # x1,y1,x2,y2: pixels of the original image, 0-based, x right, y down, x2 >= x1, y2 >= y1
//! # score: confidence, higher is more certain
//! # track: rows with the same key and track form one 3D detection (tracklet); empty: the row alone
//! key,z1,z2,x1,y1,x2,y2,score,track
//! 000001_01_01_103-115,5,5,224.1,92.5,241.9,113.9,0.93,0
//! ```
//!
//! JSON (`.json`): `{"format": "uld-detections", "version": 1, "convention":
//! "...", "detections": [{"key", "z1", "z2", "box": [x1, y1, x2, y2],
//! "score", "track"}]}` with `z1`, `z2`, `track` optional.
//!
//! Sub-volume slice `s` is PNG slice `FFF + s` of the key's range `FFF-LLL`
//! (the Lesion-Harvester convention; LENS's whole-volume slice numbers are
//! converted by its reader). Slice numbers may be negative, as the
//! references allow (a tracklet may begin before its sub-volume); those
//! slices never hit a lesion. Readers reject non-finite numbers and inverted
//! boxes with an error naming the file, line and field; boxes partly or
//! wholly outside the image are kept (the references do not clip them).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use uld_core::{Box2, Error, Location, Result, write_atomically};

/// One detected box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// First and last slice covered (0-based in the sub-volume, inclusive);
    /// `None` for a key image. Negative slices are allowed, as the
    /// references allow them (a tracklet may begin before its sub-volume);
    /// they never hit a lesion.
    pub slices: Option<(i32, i32)>,
    pub bbox: Box2,
    pub score: f32,
    /// Tracklet id: rows with the same key and track are one 3D detection.
    pub track: Option<u32>,
}

/// A detection with the index of its key in [`DetectionSet::keys`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectionRow {
    pub key: u32,
    pub det: Detection,
}

/// Detections of many images or sub-volumes, keys interned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetectionSet {
    keys: Vec<String>,
    key_ids: HashMap<String, u32>,
    pub rows: Vec<DetectionRow>,
}

pub const HEADER: [&str; 9] = ["key", "z1", "z2", "x1", "y1", "x2", "y2", "score", "track"];

const CONVENTION: &str = "boxes x1,y1,x2,y2 in pixels of the original image, 0-based, x right, y down; \
z1,z2 first and last slice (0-based inside the sub-volume named by key, inclusive), empty for key images; \
rows sharing key and track form one 3D detection";

/// What breaks a format: the field, and why.
pub type FieldError = (&'static str, String);

/// Checks a box `x1, y1, x2, y2`: finite numbers, x2 >= x1, y2 >= y1.
pub fn check_box(b: &Box2) -> std::result::Result<(), FieldError> {
    for (name, v) in ["x1", "y1", "x2", "y2"].into_iter().zip(b.to_array()) {
        if !v.is_finite() {
            return Err((name, format!("{v} is not a finite number")));
        }
    }
    if b.x2 < b.x1 {
        return Err(("x2", format!("x2 {} is left of x1 {}", b.x2, b.x1)));
    }
    if b.y2 < b.y1 {
        return Err(("y2", format!("y2 {} is above y1 {}", b.y2, b.y1)));
    }
    Ok(())
}

/// The slices of `z1, z2` cells (either may be empty): none, one slice
/// (`z2` empty), or a range; `z2` without `z1` breaks the format.
pub fn slice_range<T: Copy>(
    z1: Option<T>,
    z2: Option<T>,
) -> std::result::Result<Option<(T, T)>, FieldError> {
    match (z1, z2) {
        (Some(a), Some(b)) => Ok(Some((a, b))),
        (Some(a), None) => Ok(Some((a, a))),
        (None, None) => Ok(None),
        (None, Some(_)) => Err(("z1", "z2 given without z1".into())),
    }
}

impl Detection {
    /// Checks the numbers against the format: finite box and score, x2 >= x1,
    /// y2 >= y1, z2 >= z1; `Err(field, message)` names what breaks it.
    pub fn check(&self) -> std::result::Result<(), FieldError> {
        check_box(&self.bbox)?;
        if !self.score.is_finite() {
            return Err(("score", format!("{} is not a finite number", self.score)));
        }
        if let Some((z1, z2)) = self.slices
            && z2 < z1
        {
            return Err(("z2", format!("last slice {z2} is before first slice {z1}")));
        }
        Ok(())
    }
}

impl DetectionSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `key` (as written, trimmed), adding it when new.
    pub fn intern(&mut self, key: &str) -> u32 {
        let key = key.trim();
        if let Some(last) = self.keys.last()
            && last == key
        {
            return self.keys.len() as u32 - 1;
        }
        if let Some(&id) = self.key_ids.get(key) {
            return id;
        }
        let id = self.keys.len() as u32;
        self.keys.push(key.to_string());
        self.key_ids.insert(key.to_string(), id);
        id
    }

    pub fn push(&mut self, key: &str, det: Detection) {
        let key = self.intern(key);
        self.rows.push(DetectionRow { key, det });
    }

    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    pub fn key(&self, id: u32) -> &str {
        &self.keys[id as usize]
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Detection)> {
        self.rows.iter().map(|r| (self.key(r.key), &r.det))
    }

    /// Reads a CSV or (`.json`) JSON detection file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let reader = std::io::BufReader::new(file);
        if is_json {
            parse_json(reader, path)
        } else {
            parse_csv(reader, path)
        }
    }

    /// Writes CSV, or JSON when `path` ends in `.json`, atomically.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            write_atomically(path, |w| {
                serde_json::to_writer(&mut *w, &self.to_json()).map_err(std::io::Error::other)?;
                writeln!(w)
            })
        } else {
            write_atomically(path, |w| self.write_csv(w))
        }
    }

    /// The CSV text, header comments included.
    pub fn write_csv(&self, w: &mut impl Write) -> std::io::Result<()> {
        writeln!(w, "# uld detections v1")?;
        writeln!(
            w,
            "# key: DeepLesion key image (PPPPPP_SS_RR_KKK.png), sub-volume (PPPPPP_SS_RR_FFF-LLL) or scan name (uld detect SCAN)"
        )?;
        writeln!(
            w,
            "# z1,z2: first and last slice covered, 0-based inside the sub-volume (PNG FFF + z) or scan, inclusive; empty for key images"
        )?;
        writeln!(
            w,
            "# x1,y1,x2,y2: pixels of the original image, 0-based, x right, y down"
        )?;
        writeln!(w, "# score: confidence, higher is more certain")?;
        writeln!(
            w,
            "# track: rows with the same key and track form one 3D detection; empty: the row alone"
        )?;
        writeln!(w, "{}", HEADER.join(","))?;
        for (key, d) in self.iter() {
            let (z1, z2) = match d.slices {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => (String::new(), String::new()),
            };
            let track = d.track.map(|t| t.to_string()).unwrap_or_default();
            let b = d.bbox;
            writeln!(
                w,
                "{},{z1},{z2},{},{},{},{},{},{track}",
                csv_field(key),
                b.x1,
                b.y1,
                b.x2,
                b.y2,
                d.score
            )?;
        }
        Ok(())
    }

    fn to_json(&self) -> JsonFile {
        JsonFile {
            format: "uld-detections".into(),
            version: 1,
            convention: CONVENTION.into(),
            detections: self
                .iter()
                .map(|(key, d)| JsonDetection {
                    key: key.to_string(),
                    z1: d.slices.map(|s| s.0),
                    z2: d.slices.map(|s| s.1),
                    bbox: d.bbox.to_array(),
                    score: d.score,
                    track: d.track,
                })
                .collect(),
        }
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[derive(Serialize, Deserialize)]
struct JsonFile {
    format: String,
    version: u32,
    #[serde(default)]
    convention: String,
    detections: Vec<JsonDetection>,
}

#[derive(Serialize, Deserialize)]
struct JsonDetection {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    z1: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    z2: Option<i32>,
    #[serde(rename = "box")]
    bbox: [f32; 4],
    score: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    track: Option<u32>,
}

/// An optional integer field, `None` when empty; `expected` says what it
/// must be.
fn optional_int<T: std::str::FromStr>(
    s: &str,
    expected: &str,
) -> std::result::Result<Option<T>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| format!("`{s}` is not {expected}"))
}

/// Parses the CSV format from `reader`; `path` names it in errors.
pub fn parse_csv(reader: impl std::io::Read, path: &Path) -> Result<DetectionSet> {
    let mut csv = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(reader);
    let loc = |line: u64| Location::file(path).line(line);
    let headers = csv
        .headers()
        .map_err(|e| Error::data(Location::file(path), format!("cannot read the header: {e}")))?
        .clone();
    let mut cols = [usize::MAX; 9];
    for (slot, name) in cols.iter_mut().zip(HEADER) {
        *slot = headers.iter().position(|h| h == name).ok_or_else(|| {
            Error::data(
                Location::file(path).field(name),
                format!("missing column `{name}`; expected {}", HEADER.join(",")),
            )
        })?;
    }
    let mut set = DetectionSet::new();
    let mut record = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                return Err(Error::data(loc(line), e.to_string()));
            }
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        // Files concatenated (`cat shard*/detections.csv`) repeat the header.
        if record.iter().eq(headers.iter()) {
            continue;
        }
        let field = |i: usize| record.get(cols[i]).unwrap_or("");
        let num = |i: usize| -> Result<f32> {
            field(i).parse::<f32>().map_err(|_| {
                Error::data(
                    loc(line).field(HEADER[i]),
                    format!("`{}` is not a number", field(i)),
                )
            })
        };
        let bad = |i: usize| move |m: String| Error::data(loc(line).field(HEADER[i]), m);
        let slice = |i: usize| optional_int::<i32>(field(i), "an integer").map_err(bad(i));
        let key = field(0);
        if key.is_empty() {
            return Err(Error::data(loc(line).field("key"), "empty key"));
        }
        let slices = slice_range(slice(1)?, slice(2)?)
            .map_err(|(f, m)| Error::data(loc(line).field(f), m))?;
        let det = Detection {
            slices,
            bbox: Box2::new(num(3)?, num(4)?, num(5)?, num(6)?),
            score: num(7)?,
            track: optional_int(field(8), "a non-negative integer").map_err(bad(8))?,
        };
        det.check()
            .map_err(|(f, m)| Error::data(loc(line).field(f), m))?;
        set.push(key, det);
    }
    Ok(set)
}

/// Parses the JSON format from `reader`; `path` names it in errors.
pub fn parse_json(reader: impl std::io::Read, path: &Path) -> Result<DetectionSet> {
    let file: JsonFile = serde_json::from_reader(reader)
        .map_err(|e| Error::data(Location::file(path).line(e.line() as u64), e.to_string()))?;
    if file.format != "uld-detections" || file.version != 1 {
        return Err(Error::data(
            Location::file(path).field("format"),
            format!(
                "expected format `uld-detections` version 1, found `{}` version {}",
                file.format, file.version
            ),
        ));
    }
    let mut set = DetectionSet::new();
    for (i, d) in file.detections.into_iter().enumerate() {
        let at = |f: &str| Location::file(path).field(format!("detections[{i}].{f}"));
        let slices = slice_range(d.z1, d.z2).map_err(|(f, m)| Error::data(at(f), m))?;
        let det = Detection {
            slices,
            bbox: Box2::from(d.bbox),
            score: d.score,
            track: d.track,
        };
        det.check().map_err(|(f, m)| Error::data(at(f), m))?;
        if d.key.trim().is_empty() {
            return Err(Error::data(at("key"), "empty key"));
        }
        set.push(&d.key, det);
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DetectionSet {
        let mut s = DetectionSet::new();
        s.push(
            "000001_01_01_103-115",
            Detection {
                slices: Some((5, 6)),
                bbox: Box2::new(224.112_8, 92.503_98, 241.873_35, 113.861_62),
                score: 0.931_234_5,
                track: Some(3),
            },
        );
        s.push(
            "000089_01_01_037.png",
            Detection {
                slices: None,
                bbox: Box2::new(-4.0, 0.0, 600.5, 1e-7),
                score: -2.5,
                track: None,
            },
        );
        s.push(
            "000001_01_01_103-115",
            Detection {
                slices: Some((0, 0)),
                bbox: Box2::new(1.0, 2.0, 3.0, 4.0),
                score: 0.1,
                track: None,
            },
        );
        s
    }

    #[test]
    fn csv_and_json_round_trip_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let s = sample();
        for name in ["d.csv", "d.json"] {
            let p = dir.path().join(name);
            s.write(&p).unwrap();
            let back = DetectionSet::read(&p).unwrap();
            assert_eq!(back.rows, s.rows, "{name}");
            assert_eq!(back.keys(), s.keys(), "{name}");
        }
        let text = std::fs::read_to_string(dir.path().join("d.csv")).unwrap();
        assert!(text.starts_with("# uld detections v1\n"));
        assert!(text.contains("0-based"));
        assert_eq!(s.keys().len(), 2, "keys are interned");
    }

    #[test]
    fn csv_errors_name_file_line_and_field() {
        let text =
            "# c\nkey,z1,z2,x1,y1,x2,y2,score,track\na,1,1,0,0,5,5,0.5,\nb,1,1,0,0,5,x,0.5,\n";
        let err = parse_csv(text.as_bytes(), Path::new("dets.csv")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dets.csv, line 4, field `y2`: `x` is not a number"
        );
        let text = "key,z1,z2,x1,y1,x2,y2,score,track\na,,,9,0,5,5,0.5,\n";
        let err = parse_csv(text.as_bytes(), Path::new("d.csv")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "d.csv, line 2, field `x2`: x2 5 is left of x1 9"
        );
        let text = "key,z1,z2,x1,y1,x2,y2,score,track\na,3,2,0,0,5,5,0.5,\n";
        let err = parse_csv(text.as_bytes(), Path::new("d.csv")).unwrap_err();
        assert!(
            err.to_string().starts_with("d.csv, line 2, field `z2`"),
            "{err}"
        );
        let text = "key,z1,z2,x1,y1,x2,y2,score,track\na,,,0,0,5,5,NaN,\n";
        let err = parse_csv(text.as_bytes(), Path::new("d.csv")).unwrap_err();
        assert!(
            err.to_string().starts_with("d.csv, line 2, field `score`"),
            "{err}"
        );
        let text = "key,z1,x1,y1,x2,y2,score,track\n";
        let err = parse_csv(text.as_bytes(), Path::new("d.csv")).unwrap_err();
        assert!(err.to_string().contains("missing column `z2`"), "{err}");
        let text = "key,z1,z2,x1,y1,x2,y2,score,track\na,1,1,0,0,5,5,0.5\n";
        let err = parse_csv(text.as_bytes(), Path::new("d.csv")).unwrap_err();
        assert!(err.to_string().starts_with("d.csv, line 2"), "{err}");
    }

    #[test]
    fn json_errors_name_file_and_entry() {
        let text = r#"{"format":"uld-detections","version":1,"detections":[
            {"key":"a","box":[0,0,5,5],"score":0.5},
            {"key":"b","box":[0,9,5,5],"score":0.5}]}"#;
        let err = parse_json(text.as_bytes(), Path::new("d.json")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("d.json, field `detections[1].y2`"),
            "{err}"
        );
        let err = parse_json("{\n\"format\": 3}".as_bytes(), Path::new("d.json")).unwrap_err();
        assert!(err.to_string().starts_with("d.json, line 2"), "{err}");
    }

    #[test]
    fn negative_slices_are_accepted_in_csv_and_json() {
        let text = "key,z1,z2,x1,y1,x2,y2,score,track\nv,-2,1,0,0,5,5,0.5,0\n";
        let s = parse_csv(text.as_bytes(), Path::new("d.csv")).unwrap();
        assert_eq!(s.rows[0].det.slices, Some((-2, 1)));
        let text = r#"{"format":"uld-detections","version":1,"detections":[
            {"key":"v","z1":-3,"box":[0,0,5,5],"score":0.5}]}"#;
        let s = parse_json(text.as_bytes(), Path::new("d.json")).unwrap();
        assert_eq!(s.rows[0].det.slices, Some((-3, -3)));
        let text = "key,z1,z2,x1,y1,x2,y2,score,track\nv,0,0,0,0,5,5,0.5,-1\n";
        let err = parse_csv(text.as_bytes(), Path::new("d.csv")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "d.csv, line 2, field `track`: `-1` is not a non-negative integer"
        );
    }

    #[test]
    fn concatenated_files_read_as_one() {
        let s = sample();
        let mut text = Vec::new();
        s.write_csv(&mut text).unwrap();
        s.write_csv(&mut text).unwrap();
        let both = parse_csv(&text[..], Path::new("all.csv")).unwrap();
        assert_eq!(both.len(), 2 * s.len());
        assert_eq!(&both.rows[..s.len()], &s.rows[..]);
    }

    #[test]
    fn columns_may_come_in_any_order_and_z2_defaults_to_z1() {
        let text = "score,key,track,x1,y1,x2,y2,z1,z2\n0.5,v,7,0,0,5,5,4,\n";
        let s = parse_csv(text.as_bytes(), Path::new("d.csv")).unwrap();
        assert_eq!(s.rows[0].det.slices, Some((4, 4)));
        assert_eq!(s.rows[0].det.track, Some(7));
        assert_eq!(s.key(0), "v");
    }
}
