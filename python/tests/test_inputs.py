"""Bad inputs raise with the command line's messages; readers round-trip;
negative slices and non-finite numbers are honest."""

import json
import math

import numpy as np
import pandas as pd
import pytest

import uld
from conftest import run_uld, uld_json

HEADER = "key,z1,z2,x1,y1,x2,y2,score,track\n"


def test_a_bad_detection_file_raises_the_message_of_uld_eval(shared, uld_bin, tmp_path):
    bad = tmp_path / "dets.csv"
    bad.write_text(HEADER + "a.png,,,0,0,5,5,0.5,\nb.png,,,0,9,5,x,0.5,\n")
    with pytest.raises(uld.DataError) as raised:
        uld.read_detections(bad)
    assert str(raised.value) == f"{bad}, line 3, field `y2`: `x` is not a number"
    done = run_uld(uld_bin, "eval", "--protocol", "keyslice", "--gt",
                   shared / "deeplesion/DL_info_test.csv", "--detections", bad, "--out",
                   tmp_path / "e", "--no-plots")
    assert done.returncode != 0 and str(raised.value) in done.stderr
    # DataError is a ValueError, so generic handlers catch it.
    assert issubclass(uld.DataError, ValueError)


def test_bad_tables_name_the_row_and_field():
    good = {"key": ["a", "b"], "x1": [0, 9], "y1": [0, 0], "x2": [5, 5], "y2": [5, 5],
            "score": [0.5, 0.4]}
    with pytest.raises(uld.DataError, match=r"^detections, row 1, field `x2`: x2 5 is left of x1 9$"):
        uld.detections(good)
    with pytest.raises(uld.DataError, match=r"^detections, field `score`: missing column `score`"):
        uld.detections({k: v for k, v in good.items() if k != "score"})
    with pytest.raises(uld.DataError, match=r"^detections, field `y2`: 1 rows, but column `key` has 2"):
        uld.detections(dict(good, y2=[5]))
    with pytest.raises(uld.DataError, match=r"row 0, field `z1`: 1.5 is not an integer"):
        uld.detections(dict(good, x1=[0, 0], z1=[1.5, 2]))
    with pytest.raises(uld.DataError, match=r"row 0, field `score`: NaN is not a finite number"):
        uld.detections(pd.DataFrame(dict(good, x1=[0, 0], score=[math.nan, 1])))
    with pytest.raises(uld.DataError, match=r"^ground_truth, field `z1`: missing column `z1`"):
        uld.ground_truth("harvester", {"key": ["v_1-9"], "x1": [0], "y1": [0], "x2": [9], "y2": [9]})
    with pytest.raises(TypeError, match="a path, a pandas DataFrame or a mapping"):
        uld.detections([1, 2, 3])


def test_missing_files_and_bad_options_raise_python_errors(shared, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.csv"):
        uld.read_detections(tmp_path / "nothing.csv")
    gt = shared / "deeplesion/DL_info_test.csv"
    with pytest.raises(ValueError, match=r'variant must be one of "mulan", "3dce", got "x"'):
        uld.read_ground_truth("keyslice", gt, variant="x")
    with pytest.raises(ValueError, match=r'protocol must be one of "keyslice", "harvester", "lens"'):
        uld.read_ground_truth("froc", gt)
    with pytest.raises(uld.DataError, match="none of them in the train split"):
        uld.read_ground_truth("keyslice", gt, split="train")
    dets = {"key": ["000001_01_01_010.png"], "x1": [0], "y1": [0], "x2": [5], "y2": [5],
            "score": [0.5]}
    with pytest.raises(ValueError, match="level"):
        uld.evaluate("keyslice", gt, dets, level=1.5)
    with pytest.raises(ValueError, match="bootstrap > 0"):
        uld.compare("keyslice", gt, dets, dets, bootstrap=0)


def test_negative_slices_are_accepted_and_never_hit(shared, uld_bin, tmp_path):
    gt_path = shared / "fully_annotated/lesion_harvester/Revised-Test1071.json"
    gt = uld.read_ground_truth("harvester", gt_path)
    c = gt.to_columns()
    key, z = c["key"][0], int(c["z1"][0])
    box = dict(x1=c["x1"][0], y1=c["y1"][0], x2=c["x2"][0], y2=c["y2"][0])
    # The lesion's own box, but on slices before the sub-volume only.
    dets = pd.DataFrame([dict(key=key, z1=-3, z2=-1, score=0.9, **box)])
    path = tmp_path / "neg.csv"
    uld.detections(dets).write(path)
    assert "-3,-1" in path.read_text()
    e = uld.evaluate("harvester", gt, path, bootstrap=0)
    assert e.curve.hits.tolist() == [0] and e.curve.false_positives.tolist() == [1]
    done = run_uld(uld_bin, "eval", "--protocol", "harvester", "--gt", gt_path, "--detections",
                   path, "--bootstrap", "0", "--out", tmp_path / "e", "--no-plots")
    assert done.returncode == 0, done.stderr
    # Reaching the lesion's slice from before the sub-volume: a hit.
    hit = uld.evaluate("harvester", gt, dets.assign(z2=z), bootstrap=0)
    assert hit.curve.hits.tolist() == [1]


def test_non_finite_numbers_stay_floats_and_distinct(shared, tmp_path, uld_bin):
    # Every lesion found by its own box, no false positive: 3DCE's
    # extrapolation past the curve's end is not finite, MULAN's clamp is 1.
    gt_path = shared / "deeplesion/DL_info_test.csv"
    gt = uld.read_ground_truth("keyslice", gt_path, variant="3dce")
    c = gt.to_columns()
    n = len(c["key"])
    perfect = dict(key=c["key"], x1=c["x1"], y1=c["y1"], x2=c["x2"], y2=c["y2"],
                   score=1.0 - np.arange(n) / (2.0 * n))
    e = uld.evaluate("keyslice", gt, perfect, variant="3dce", bootstrap=0)
    assert not np.all(np.isfinite(e.sensitivity)), e.sensitivity
    assert np.all(e.sensitivity_clamped == 1.0)
    path = tmp_path / "perfect.csv"
    uld.detections(perfect).write(path)
    done = run_uld(uld_bin, "eval", "--protocol", "keyslice", "--variant", "3dce", "--gt", gt_path,
                   "--detections", path, "--bootstrap", "0", "--out", tmp_path / "e", "--no-plots")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert '"inf"' in report["conventions"]
    written = report["metrics"]["sens"]
    assert None not in written
    for w, s in zip(written, e.sensitivity):
        assert isinstance(w, str) == (not math.isfinite(s))
        assert float(w) == s or (math.isnan(float(w)) and math.isnan(s))


def test_detection_files_round_trip(tmp_path):
    d = pd.DataFrame({"key": ["000001_01_01_103-115", "000089_01_01_037.png", "v"],
                      "z1": [5, None, -2], "z2": [6, None, 0], "x1": [224.1, -4.0, 1.0],
                      "y1": [92.5, 0.0, 2.0], "x2": [241.9, 600.5, 3.0], "y2": [113.9, 1e-7, 4.0],
                      "score": [0.93, -2.5, 0.1], "track": [3, None, None]})
    original = uld.detections(d)
    for name in ("d.csv", "d.json"):
        original.write(tmp_path / name)
        back = uld.read_detections(tmp_path / name)
        assert back._inner.columns() == original._inner.columns(), name
    frame = uld.read_detections(tmp_path / "d.csv").to_frame()
    assert frame["z1"].tolist()[0] == 5 and pd.isna(frame["z1"][1]) and frame["z1"][2] == -2
    assert frame["x1"].dtype == np.float32 and frame["x1"][0] == np.float32(224.1)
    assert str(frame["track"].dtype) == "Int64"
    again = uld.detections(frame)
    assert again._inner.columns() == original._inner.columns()


def test_read_dl_info_matches_uld_info(shared, uld_bin):
    path = shared / "deeplesion/DL_info_test.csv"
    records = uld.read_dl_info(path)
    frame = uld.read_dl_info(path, as_frame=True)
    info = uld_json(uld_bin, "info", path, "--json")
    stats = info["tables"][0]["stats"]
    assert len(records) == len(frame) == stats["lesions"] == 4927
    assert int(frame["possibly_noisy"].sum()) == stats["noisy_lesions"] == 15
    assert set(frame["split"]) == {"test"}
    # The first row of the file, its box minus 1 (uld's 0-based pixels).
    first = path.read_text().splitlines()[1]
    assert records[0]["file_name"] == first.split(",")[0]
    box = [float(v) - 1 for v in first.split('"')[3].split(",")]
    assert [records[0][k] for k in ("x1", "y1", "x2", "y2")] == pytest.approx(box, abs=1e-4)
    assert frame["long_diameter_mm"].iloc[0] == pytest.approx(
        frame["long_diameter_px"].iloc[0] * frame["spacing_x_mm"].iloc[0])


@pytest.mark.parametrize("relative", [
    "ct/lung1_image.nii.gz",
    "dicom/CT_small.dcm",
    "dicom/WG04_CT1_RLE",
    "deeplesion/Images_png/000016_02_01",
])
def test_read_volume_matches_uld_info(shared, uld_bin, relative):
    path = shared / relative
    v = uld.read_volume(path)
    info = uld_json(uld_bin, "info", path, "--json")
    assert list(v.hu.shape) == info["dims"]
    assert v.hu.dtype == np.int16
    assert list(v.spacing) == info["spacing_mm"]
    assert [int(v.hu.min()), int(v.hu.max())] == info["hu_range"]
    if info.get("world") is None:
        assert v.voxel_to_world is None
    else:
        assert v.frame == info["world"]["frame"]
        assert v.voxel_to_world[:3].tolist() == info["world"]["matrix"]
        # The matrix maps a voxel index to the world position info reports.
        for corner in info["world"]["corners"]:
            world = v.voxel_to_world @ np.array([*corner["voxel"], 1.0])
            assert world[:3] == pytest.approx(corner["world_mm"], abs=1e-6)
