"""Every protocol through Python equals `uld eval` on the real shared data,
whatever form the inputs take."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import uld
from conftest import run_uld

CASES = {
    # name: (protocol, ground truth under the shared folder, variant)
    "keyslice-mulan": ("keyslice", "deeplesion/DL_info_test.csv", "mulan"),
    "keyslice-3dce": ("keyslice", "deeplesion/DL_info_test.csv", "3dce"),
    "harvester": ("harvester", "fully_annotated/lesion_harvester/Revised-Test1071.json", "mulan"),
    "lens": ("lens", "fully_annotated/lens/DeepLesion_manual_1K_test_release.json", "mulan"),
}


def same(a, b) -> bool:
    """Equal to the last bit, NaN equal to NaN."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def jittered(gt: uld.GroundTruth, protocol: str) -> pd.DataFrame:
    """Deterministic detections: most lesions found by their box moved a few
    pixels, some missed, a few false positives per unit, no tied scores;
    sub-volume tracklets span the lesion's slices, some beginning before the
    sub-volume (negative slices)."""
    c = gt.to_columns()
    i = np.arange(len(c["key"]))
    found = i % 5 != 0
    shift = ((i * 7) % 5 - 2).astype(float)
    score = (2 * ((i * 2654435761) % (1 << 21)) + 2) / float(1 << 22)
    rows = {
        "key": c["key"][found],
        "x1": (c["x1"] + shift)[found],
        "y1": (c["y1"] - shift)[found],
        "x2": (c["x2"] + shift)[found],
        "y2": c["y2"][found],
        "score": score[found],
    }
    if protocol != "keyslice":
        rows["z1"] = np.floor(c["z1"])[found] - (i[found] % 3)
        rows["z2"] = np.ceil(c["z2"])[found] + (i[found] % 2)
        rows["track"] = i[found].astype(float)
    lesions = pd.DataFrame(rows)
    fps = []
    j = 0
    for u, key in enumerate(gt.units):
        for _ in range(u % 4):
            x, y, size = (u * 37 + j * 53) % 400, (u * 91 + j * 29) % 400, 12 + (j * 13) % 40
            row = {"key": key, "x1": x, "y1": y, "x2": x + size, "y2": y + size,
                   "score": (2 * ((j * 40503) % (1 << 21)) + 1) / float(1 << 22)}
            if protocol != "keyslice":
                row.update(z1=(j * 3) % 9, z2=(j * 3) % 9 + j % 4, track=np.nan)
            fps.append(row)
            j += 1
    return pd.concat([lesions, pd.DataFrame(fps)], ignore_index=True)


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, shared, uld_bin, tmp_path_factory):
    """One protocol's inputs, its detection file and `uld eval`'s report.json."""
    protocol, gt_file, variant = CASES[request.param]
    gt_path = shared / gt_file
    gt = uld.read_ground_truth(protocol, gt_path, variant=variant)
    dets = jittered(gt, protocol)
    out = tmp_path_factory.mktemp(request.param)
    det_path = out / "detections.csv"
    uld.detections(dets).write(det_path)
    done = run_uld(uld_bin, "eval", "--protocol", protocol, "--gt", gt_path, "--detections",
                   det_path, "--variant", variant, "--bootstrap", "200", "--seed", "7",
                   "--threshold", "0.5", "--out", out / "eval", "--no-plots")
    assert done.returncode == 0, done.stderr
    report = uld._non_finite(json.loads((out / "eval" / "report.json").read_text()))
    return dict(protocol=protocol, variant=variant, gt_path=gt_path, gt=gt, dets=dets,
                det_path=det_path, report=report, out=out)


def py_eval(case, gt, dets, **kw) -> uld.Evaluation:
    return uld.evaluate(case["protocol"], gt, dets, variant=case["variant"], bootstrap=200, seed=7,
                        threshold=0.5, **kw)


def test_paths_give_the_numbers_of_uld_eval(case):
    e = py_eval(case, case["gt_path"], case["det_path"])
    assert same(e.report, case["report"])
    assert e.summary == case["report"]["metrics"]["summary"]
    assert np.array_equal(e.sensitivity_clamped, case["report"]["metrics"]["sens_clamped"])
    assert e.intervals is not None and e.intervals.sensitivity.shape == (len(e.fp_points), 2)
    # DL_info records sizes, types and slice intervals; the JSON sets do not.
    assert bool(e.breakdowns) == (case["protocol"] == "keyslice"), e.notes
    # The whole curve: one point per detection, the last reaching the
    # sensitivity the report's largest FP rate reads when clamping.
    assert len(e.curve.score) == e.detections
    assert np.all(np.diff(e.curve.score) <= 0)
    assert e.curve.sensitivity[-1] == e.sensitivity_clamped[-1]


def test_dataframes_give_the_numbers_of_paths(case):
    from_frame = py_eval(case, case["gt_path"], case["dets"])
    assert same(from_frame.report, case["report"])
    # Ground truth as a table: DL_info's own rows for keyslice, the
    # set's columns and units for the others.
    if case["protocol"] == "keyslice":
        table = uld.read_dl_info(case["gt_path"], as_frame=True)
        gt = uld.ground_truth("keyslice", table, variant=case["variant"])
    else:
        gt = uld.ground_truth(case["protocol"], case["gt"].to_frame(), units=case["gt"].units)
    e = py_eval(case, gt, case["dets"])
    want = dict(case["report"], ground_truth=e.report["ground_truth"])
    assert same(e.report, want)


def test_per_unit_arrays_give_the_numbers_of_the_table(case):
    d = case["dets"]
    if case["protocol"] == "keyslice":
        names = ["x1", "y1", "x2", "y2", "score"]
    else:
        names = ["z1", "z2", "x1", "y1", "x2", "y2", "score", "track"]
    arrays = {k: g[names].to_numpy(dtype=float) for k, g in d.groupby("key", sort=False)}
    # Grouping by key reorders rows across keys; scores never tie, so the
    # numbers cannot change.
    e = py_eval(case, case["gt"], arrays)
    want = py_eval(case, case["gt"], d)
    assert same(e.report, want.report)


def test_compare_gives_the_numbers_of_uld_eval_compare(case, uld_bin):
    other = case["dets"].assign(score=lambda f: np.sqrt(f["score"]) * (f.index % 2 + 1) / 2)
    other_path = case["out"] / "other.json"
    uld.detections(other).write(other_path)
    out = case["out"] / "compare"
    done = run_uld(uld_bin, "eval", "--protocol", case["protocol"], "--gt", case["gt_path"],
                   "--detections", case["det_path"], "--compare", other_path, "--variant",
                   case["variant"], "--bootstrap", "100", "--out", out, "--no-plots")
    assert done.returncode == 0, done.stderr
    want = uld._non_finite(json.loads((out / "comparison.json").read_text()))
    c = uld.compare(case["protocol"], case["gt_path"], case["det_path"], other, bootstrap=100,
                    variant=case["variant"])
    assert same(c.report, want)
    assert c.summary.difference == want["comparison"]["summary"]["difference"]
    assert c.summary.interval[0] <= c.summary.difference <= c.summary.interval[1]
    assert len(c.sensitivity_clamped) == len(c.a.fp_points)
