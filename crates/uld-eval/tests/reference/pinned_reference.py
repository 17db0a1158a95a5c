#!/usr/bin/env python3
"""Regenerates the numbers pinned in `../real_data.rs`
(`pinned_detections_score_exactly_as_the_reference_code`).

It rebuilds the test's deterministic detections (`pinned_detections`) on the
real ground truth in the shared data folder and scores them with the
reference protocols' arithmetic, written here from the published behaviour
of the reference evaluators (3DCE / MULAN key-slice FROC, Lesion-Harvester
part 3 with VOC AP, LENS FROC), independently of uld's Rust code:

* detections of all units are ranked by `np.argsort(scores)[::-1]` (the
  detections have no tied score, which is checked, so the order is unique);
* a detection whose best overlap with its unit's lesions is below the
  threshold (or whose unit has none) is a false positive; otherwise it
  finds every lesion it overlaps at or above the threshold that was not yet
  found; a detection that finds nothing new is a duplicate: not a false
  positive for FROC, one AP false positive per already-found lesion it
  overlaps (Lesion-Harvester's `nMissAP`, following Pascal VOC);
* overlaps use inclusive pixel extents (`x2 - x1 + 1`): 2D IoU for the key
  slice protocol, the Lesion-Harvester pseudo-3D IoU (the tracklet's first
  box on the ground-truth slice, union floored at 1e-6), and the LENS 3D
  intersection over the detected box (IoBB);
* sensitivity at an average false-positive count: 3DCE and Lesion-Harvester
  call `scipy.interpolate.interp1d(fp, sens, fill_value='extrapolate')`,
  whose linear kernel is re-implemented below (`interp1d_extrapolate`); MULAN
  and LENS call `interp1d` without extrapolation (which scipy hands to
  `numpy.interp`) inside the curve and take `sens[-1]` past its end (LENS
  also 0 before its start);
* AP is Pascal VOC's all-point `voc_ap` of recall `tps / lesions` and
  precision `tps / max(tps + fpsAP, eps)`. Lesion-Harvester defines it; uld
  reports it for every protocol, so for keyslice and LENS it is the same
  rule applied to that protocol's matching.

The inputs are the ground-truth files only; everything else is built from
integers. Coordinates are float32 where the test builds them in f32 (uld's
readers keep boxes as f32), and overlaps are computed in float64.

Usage: python3 pinned_reference.py [--shared DIR] [--test FILE] [--json]
Needs numpy (the numbers were pinned with numpy 2.4.6, scipy 1.17.1; scipy
is optional here and, when present, cross-checks the interpolation). Exits 1
when a number differs from the one pinned in the test.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

try:
    import numpy as np
except ImportError:
    sys.exit("pinned_reference.py needs numpy: see README.md beside it for a throw-away environment")

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parents[3]
TEST_FILE = HERE.parent / "real_data.rs"

F32 = np.float32


# --------------------------------------------------------------------------
# Ground truth, in the layout the test's readers give it (uld's units and
# lesion order decide which lesion `pinned_detections` numbers `i`).
# --------------------------------------------------------------------------


@dataclass
class Lesion:
    # float32 in-plane box, 0-based, and slice range inside the unit.
    x1: np.float32
    y1: np.float32
    x2: np.float32
    y2: np.float32
    z1: np.float32
    z2: np.float32


@dataclass
class Unit:
    key: str
    lesions: list[Lesion] = field(default_factory=list)


def normalize_key(key: str) -> str:
    key = key.strip()
    for suffix in (".annot", ".png"):
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def subvolume_range(key: str) -> tuple[int, int] | None:
    """First and last PNG number of `PPPPPP_SS_RR_FFF-LLL`, else None."""
    key = normalize_key(key)
    if "_" not in key:
        return None
    tail = key.rsplit("_", 1)[1]
    if "-" not in tail:
        return None
    first, last = tail.split("-", 1)
    if not (first.isdigit() and last.isdigit()):
        return None
    first, last = int(first), int(last)
    return (first, last) if first <= last else None


def read_keyslice(path: Path, drop_noisy: bool) -> list[Unit]:
    """DL_info rows: one unit per key image in first-appearance order; the
    1-based `Bounding_boxes` minus 1 (as 3DCE/MULAN), stored as float32.
    With `drop_noisy` `Possibly_noisy` lesions go (and so images whose every
    lesion is noisy), as MULAN's and 3DCE's test loaders do; the pinned 3DCE
    case keeps them (`uld eval --noisy keep`) so that the two variants are
    checked on different ground truth."""
    units: dict[str, Unit] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if drop_noisy and row["Possibly_noisy"].strip() == "1":
                continue
            key = normalize_key(row["File_name"])
            b = [F32(float(v) - 1.0) for v in row["Bounding_boxes"].split(",")]
            unit = units.setdefault(key, Unit(key))
            unit.lesions.append(Lesion(b[0], b[1], b[2], b[3], F32(0), F32(0)))
    return list(units.values())


def read_harvester(path: Path) -> list[Unit]:
    """`{key: {slice: [[x1, y1, x2, y2, z, z], ...]}}`: units sorted by key
    (without `.annot`), slices in numeric order, boxes minus 1 in-plane."""
    data = json.loads(path.read_text())
    units = []
    one = F32(1.0)
    for raw_key, slices in data.items():
        unit = Unit(normalize_key(raw_key))
        for z in sorted(slices, key=int):
            for b in slices[z]:
                assert b[4] == b[5] == int(z), (raw_key, z, b)
                unit.lesions.append(
                    Lesion(
                        F32(b[0]) - one,
                        F32(b[1]) - one,
                        F32(b[2]) - one,
                        F32(b[3]) - one,
                        F32(int(z)),
                        F32(int(z)),
                    )
                )
        units.append(unit)
    units.sort(key=lambda u: u.key)
    return units


def read_lens(path: Path, split: str) -> list[Unit]:
    """`{"val"|"test": {key: [[x1, y1, z1, x2, y2, z2], ...]}}` with z the
    whole-volume PNG number, made 0-based inside the sub-volume."""
    data = json.loads(path.read_text())[split]
    units = []
    for raw_key, boxes in data.items():
        key = normalize_key(raw_key)
        first, _ = subvolume_range(key)
        unit = Unit(key)
        for b in boxes:
            unit.lesions.append(
                Lesion(
                    F32(b[0]),
                    F32(b[1]),
                    F32(b[3]),
                    F32(b[4]),
                    F32(b[2]) - F32(first),
                    F32(b[5]) - F32(first),
                )
            )
        units.append(unit)
    units.sort(key=lambda u: u.key)
    return units


# --------------------------------------------------------------------------
# The detections: `pinned_detections` in ../real_data.rs, from integers.
# --------------------------------------------------------------------------

K1 = 2_654_435_761
K2 = 40_503
SCALE = F32(1 << 22)


@dataclass
class Det:
    unit: int
    x1: np.float32
    y1: np.float32
    x2: np.float32
    y2: np.float32
    z1: int
    z2: int
    score: np.float32


def pinned_detections(units: list[Unit]) -> list[Det]:
    """Lesion `i` (over all units in order) is found unless `i % 5 == 0`, by
    its box moved by -2..2 px per side, score `(2 ((i K1) mod 2^21) + 2) /
    2^22`; unit `u` gets `u % 4` false positives `j` (over all units) with
    odd numerators. Slices: the lesion's own; a false positive's from `j`."""
    dets: list[Det] = []
    i = j = 0
    for u, unit in enumerate(units):
        r = subvolume_range(unit.key)
        depth = r[1] - r[0] if r else 0
        for lesion in unit.lesions:
            keep = i % 5 != 0

            def off(m: int, rad: int, i: int = i) -> np.float32:
                return F32((i * m) % (2 * rad + 1)) - F32(rad)

            x1, x2 = lesion.x1 + off(7, 2), lesion.x2 + off(3, 2)
            y1, y2 = lesion.y1 + off(5, 2), lesion.y2 + off(11, 2)
            if x2 < x1:
                x1, x2 = x2, x1
            if y2 < y1:
                y1, y2 = y2, y1
            score = F32(2 * ((i * K1) % (1 << 21)) + 2) / SCALE
            i += 1
            if keep:
                # `as u32` of the lesion's (whole-number) slices.
                z1, z2 = int(lesion.z1), int(lesion.z2)
                dets.append(Det(u, x1, y1, x2, y2, z1, z2, score))
        for _ in range(u % 4):
            x = F32((u * 37 + j * 53) % 400)
            y = F32((u * 91 + j * 29) % 400)
            size = F32(12 + (j * 13) % 40)
            z1 = (j * 3) % (depth + 1)
            z2 = min(z1 + j % 4, depth)
            score = F32(2 * ((j * K2) % (1 << 21)) + 1) / SCALE
            dets.append(Det(u, x, y, x + size, y + size, z1, z2, score))
            j += 1
    for d in dets:
        assert d.x1.dtype == d.x2.dtype == d.score.dtype == np.float32
    return dets


# --------------------------------------------------------------------------
# Overlaps (inclusive extents), float64 arrays as numpy would hold them.
# --------------------------------------------------------------------------


def iou_inclusive(det: np.ndarray, gts: np.ndarray, union_floor: float | None) -> np.ndarray:
    """2D IoU of one box `[x1, y1, x2, y2]` with rows of `gts`."""
    iw = np.maximum(np.minimum(gts[:, 2], det[2]) - np.maximum(gts[:, 0], det[0]) + 1.0, 0.0)
    ih = np.maximum(np.minimum(gts[:, 3], det[3]) - np.maximum(gts[:, 1], det[1]) + 1.0, 0.0)
    inter = iw * ih
    union = (
        (det[2] - det[0] + 1.0) * (det[3] - det[1] + 1.0)
        + (gts[:, 2] - gts[:, 0] + 1.0) * (gts[:, 3] - gts[:, 1] + 1.0)
        - inter
    )
    if union_floor is not None:
        union = np.maximum(union_floor, union)
    return inter / union


def iobb3_inclusive(det: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """3D intersection over the detected box; boxes `[x1, y1, z1, x2, y2, z2]`."""
    iw = np.maximum(np.minimum(gts[:, 3], det[3]) - np.maximum(gts[:, 0], det[0]) + 1.0, 0.0)
    ih = np.maximum(np.minimum(gts[:, 4], det[4]) - np.maximum(gts[:, 1], det[1]) + 1.0, 0.0)
    idp = np.maximum(np.minimum(gts[:, 5], det[5]) - np.maximum(gts[:, 2], det[2]) + 1.0, 0.0)
    inter = iw * ih * idp
    volume = (det[3] - det[0] + 1.0) * (det[4] - det[1] + 1.0) * (det[5] - det[2] + 1.0)
    return inter / volume


# --------------------------------------------------------------------------
# Matching and curves.
# --------------------------------------------------------------------------


@dataclass
class Curve:
    tps: np.ndarray  # cumulative lesions found
    fps: np.ndarray  # cumulative FROC false positives
    fps_ap: np.ndarray  # cumulative AP false positives (duplicates count)
    lesions: int
    units: int


def ranked(scores: np.ndarray) -> np.ndarray:
    """The references' `np.argsort(scores)[::-1]`; unique without ties."""
    assert len(np.unique(scores)) == len(scores), "tied scores: the reference order is not unique"
    return np.argsort(scores)[::-1]


def match(overlap_of, units: list[Unit], det_unit: np.ndarray, scores: np.ndarray, th: float) -> Curve:
    """One pass in score order. `overlap_of(d)` gives detection `d`'s
    overlaps with the lesions of its unit (a float64 array)."""
    hits = [np.zeros(len(u.lesions), dtype=bool) for u in units]
    n_hits = n_miss = n_miss_ap = 0
    tps, fps, fps_ap = [], [], []
    for d in ranked(scores):
        u = det_unit[d]
        overlaps = overlap_of(d)
        assert not np.isnan(overlaps).any(), "a NaN overlap (zero-area box)"
        if len(overlaps) == 0 or overlaps.max() < th:
            n_miss += 1
            n_miss_ap += 1
        else:
            for k in range(len(overlaps)):
                if overlaps[k] >= th:
                    if not hits[u][k]:
                        hits[u][k] = True
                        n_hits += 1
                    else:
                        n_miss_ap += 1
        tps.append(n_hits)
        fps.append(n_miss)
        fps_ap.append(n_miss_ap)
    return Curve(
        np.array(tps),
        np.array(fps),
        np.array(fps_ap),
        sum(len(u.lesions) for u in units),
        len(units),
    )


def interp1d_extrapolate(x: np.ndarray, y: np.ndarray, q: np.ndarray) -> np.ndarray:
    """`scipy.interpolate.interp1d(x, y, fill_value='extrapolate')(q)` for
    a non-decreasing float64 `x`: the linear kernel's `searchsorted` (first
    `x >= q`) clipped to `1..len-1`, then `slope * (q - x_lo) + y_lo`."""
    hi = np.clip(np.searchsorted(x, q), 1, len(x) - 1)
    lo = hi - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (y[hi] - y[lo]) / (x[hi] - x[lo])
        return slope * (q - x[lo]) + y[lo]


def sens_extrapolate(fp: np.ndarray, sens: np.ndarray, points: list[float]) -> np.ndarray:
    """3DCE `sens_at_FP` and Lesion-Harvester."""
    return interp1d_extrapolate(fp, sens, np.array(points, dtype=np.float64))


def sens_clamp(fp: np.ndarray, sens: np.ndarray, points: list[float], left_zero: bool) -> np.ndarray:
    """MULAN `sens_at_FP` (left_zero False: a point before the curve would
    raise in its `interp1d`) and LENS `sens_at_FP` (0 before the curve)."""
    out = []
    for q in points:
        if q < fp[0]:
            assert left_zero, "MULAN's interp1d would raise below the curve's start"
            out.append(0.0)
        elif q > fp[-1]:
            out.append(sens[-1])
        else:
            out.append(np.interp(np.array([q]), fp, sens)[0])
    return np.array(out, dtype=np.float64)


def voc_ap(rec: np.ndarray, prec: np.ndarray) -> float:
    """Pascal VOC all-point AP (not the 2007 11-point rule)."""
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def curve_points(c: Curve) -> tuple[np.ndarray, np.ndarray, float]:
    sens = np.array(c.tps, dtype=float) / c.lesions
    fp_per_unit = np.array(c.fps, dtype=float) / c.units
    rec = np.array(c.tps) / float(c.lesions)
    prec = np.array(c.tps) / np.maximum(np.array(c.tps) + np.array(c.fps_ap), np.finfo(np.float64).eps)
    return fp_per_unit, sens, voc_ap(rec, prec)


# --------------------------------------------------------------------------
# The three protocols.
# --------------------------------------------------------------------------

# (sensitivities at the operating points, AP, (fp per unit, sensitivity) curve)
Scored = tuple[np.ndarray, float, tuple[np.ndarray, np.ndarray]]

KEYSLICE_FP = [0.5, 1, 2, 4, 8, 16]
HARVESTER_FP = [0.125, 0.25, 0.5, 1, 2, 4, 8, 16]
LENS_FP = [2.0**p for p in range(-3, 11)]


def gt_arrays(units: list[Unit], three_d: bool) -> list[np.ndarray]:
    out = []
    for u in units:
        if three_d:
            rows = [[le.x1, le.y1, le.z1, le.x2, le.y2, le.z2] for le in u.lesions]
            out.append(np.array(rows, dtype=np.float64).reshape(-1, 6))
        else:
            rows = [[le.x1, le.y1, le.x2, le.y2] for le in u.lesions]
            out.append(np.array(rows, dtype=np.float64).reshape(-1, 4))
    return out


def keyslice(units: list[Unit], dets: list[Det], variant: str) -> Scored:
    gts = gt_arrays(units, False)
    boxes = np.array([[d.x1, d.y1, d.x2, d.y2] for d in dets], dtype=np.float64)
    det_unit = np.array([d.unit for d in dets])
    scores = np.array([d.score for d in dets], dtype=np.float64)
    c = match(lambda d: iou_inclusive(boxes[d], gts[det_unit[d]], None), units, det_unit, scores, 0.5)
    fp, sens, ap = curve_points(c)
    if variant == "3dce":
        res = sens_extrapolate(fp, sens, KEYSLICE_FP)
    else:
        res = sens_clamp(fp, sens, KEYSLICE_FP, left_zero=False)
    return res, ap, (fp, sens)


def harvester(units: list[Unit], dets: list[Det]) -> Scored:
    # Lesion-Harvester's `volume_recs`: (z, box) per lesion; a tracklet is
    # one (z, box) per slice it covers, scored by its highest box.
    recs = [[(int(le.z1), np.array([le.x1, le.y1, le.x2, le.y2], dtype=np.float64)) for le in u.lesions] for u in units]
    tracklets = []
    for d in dets:
        box = np.array([d.x1, d.y1, d.x2, d.y2], dtype=np.float64)
        tracklets.append([(z, box) for z in range(d.z1, d.z2 + 1)])
    det_unit = np.array([d.unit for d in dets])
    scores = np.array([d.score for d in dets], dtype=np.float64)

    def p3d_iou(rec, tracklet) -> float:
        z, xy = rec
        zs = [tz for tz, _ in tracklet]
        if z not in zs:
            return 0.0
        boxes = np.array([b for _, b in tracklet])
        return iou_inclusive(xy, boxes, 1e-6)[zs.index(z)]

    def p3d_overlaps(d: int) -> np.ndarray:
        return np.array([p3d_iou(r, tracklets[d]) for r in recs[det_unit[d]]], dtype=np.float64)

    c = match(p3d_overlaps, units, det_unit, scores, 0.5)
    fp, sens, ap = curve_points(c)
    return sens_extrapolate(fp, sens, HARVESTER_FP), ap, (fp, sens)


def lens(units: list[Unit], dets: list[Det]) -> Scored:
    gts = gt_arrays(units, True)
    boxes = np.array([[d.x1, d.y1, d.z1, d.x2, d.y2, d.z2] for d in dets], dtype=np.float64)
    det_unit = np.array([d.unit for d in dets])
    scores = np.array([d.score for d in dets], dtype=np.float64)
    c = match(lambda d: iobb3_inclusive(boxes[d], gts[det_unit[d]]), units, det_unit, scores, 0.3)
    fp, sens, ap = curve_points(c)
    return sens_clamp(fp, sens, LENS_FP, left_zero=True), ap, (fp, sens)


# --------------------------------------------------------------------------
# Comparison with the test.
# --------------------------------------------------------------------------


def pinned_in_test(path: Path) -> list[float]:
    """The float literals of the pinned test, in order, `[x; n]` expanded."""
    text = path.read_text()
    start = text.index("fn pinned_detections_score_exactly_as_the_reference_code")
    body = text[start:]
    body = re.sub(
        r"\[\s*([0-9.eE+-]+)\s*;\s*(\d+)\s*\]",
        lambda m: "[" + ", ".join([m.group(1)] * int(m.group(2))) + "]",
        body,
    )
    return [float(v) for v in re.findall(r"(?<![\w.])\d+\.\d+(?:[eE][+-]?\d+)?", body)]


def scipy_check(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
    try:
        from scipy import interpolate
    except ImportError:
        return "scipy not installed: interpolation not cross-checked"
    for name, (fp, sens) in curves.items():
        for pts in (KEYSLICE_FP, HARVESTER_FP, LENS_FP):
            q = np.array(pts, dtype=np.float64)
            want = interpolate.interp1d(fp, sens, fill_value="extrapolate")(q)
            got = interp1d_extrapolate(fp, sens, q)
            assert np.array_equal(want, got, equal_nan=True), (name, want, got)
            inside = q[(q >= fp[0]) & (q <= fp[-1])]
            assert np.array_equal(interpolate.interp1d(fp, sens)(inside), np.interp(inside, fp, sens)), name
    return "scipy interp1d agrees with the re-implementation on every curve"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--shared",
        type=Path,
        default=Path(os.environ.get("ULD_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data")),
        help="the shared real-data folder (default: ULD_SHARED_DATA or ../shared/data beside the checkout)",
    )
    ap.add_argument("--test", type=Path, default=TEST_FILE, help="the Rust test whose pinned numbers to compare")
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = ap.parse_args()
    data = args.shared
    if not (data / "fully_annotated").is_dir():
        print(f"the shared data folder {data} is missing (set ULD_SHARED_DATA)", file=sys.stderr)
        return 2

    results: dict[str, dict] = {}
    curves = {}
    csv_path = data / "deeplesion" / "DL_info_test.csv"
    for variant, drop in (("3dce", False), ("mulan", True)):
        units = read_keyslice(csv_path, drop)
        sens, ap_, curves[variant] = keyslice(units, pinned_detections(units), variant)
        results[variant] = {"sens": sens.tolist(), "ap": ap_}
    units = read_harvester(data / "fully_annotated" / "lesion_harvester" / "Revised-Test1071.json")
    sens, ap_, curves["harvester"] = harvester(units, pinned_detections(units))
    results["harvester"] = {"sens": sens.tolist(), "ap": ap_}
    units = read_lens(data / "fully_annotated" / "lens" / "DeepLesion_manual_1K_test_release.json", "test")
    sens, ap_, curves["lens"] = lens(units, pinned_detections(units))
    results["lens"] = {"sens": sens.tolist(), "ap": ap_}

    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print(f"numpy {np.__version__}; {scipy_check(curves)}")
        for name, r in results.items():
            print(f"{name}:")
            print("  sens = [" + ", ".join(repr(float(s)) for s in r["sens"]) + "]")
            print(f"  ap   = {r['ap']!r}")

    got = [v for r in results.values() for v in [*r["sens"], r["ap"]]]
    want = pinned_in_test(args.test)
    if len(want) != len(got):
        print(f"{args.test} pins {len(want)} numbers, this script makes {len(got)}", file=sys.stderr)
        return 1
    bad = [
        (k, g, w)
        for k, (g, w) in enumerate(zip(got, want, strict=True))
        if not (g == w or (math.isnan(g) and math.isnan(w)))
    ]
    for k, g, w in bad:
        print(f"number {k + 1}: computed {g!r}, pinned {w!r}", file=sys.stderr)
    if bad:
        return 1
    print(f"all {len(got)} numbers pinned in {args.test.name} reproduced to the last bit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
