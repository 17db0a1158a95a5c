"""uld from Python: the DeepLesion evaluation protocols and data readers.

The numbers are those of ``uld eval`` (the same Rust code): ``keyslice``
(3DCE / MULAN key-slice FROC), ``harvester`` (Lesion-Harvester per-volume
FROC and AP) and ``lens`` (LENS 3D IoBB FROC), each equal to its reference
implementation.

    >>> import uld
    >>> e = uld.evaluate("harvester", "Revised-Test1071.json", "detections.csv")
    >>> e.summary, e.ap, e.intervals.summary

Ground truth is a path (``DL_info.csv``, a Lesion-Harvester JSON, the LENS
JSON), a :class:`GroundTruth`, or a table (pandas DataFrame or mapping of
columns ``key, x1, y1, x2, y2`` [``z1, z2``] ...). Detections are a path (the
uld detection file, CSV or JSON), a :class:`Detections`, a table with the
detection file's columns ``key, z1, z2, x1, y1, x2, y2, score, track``, or a
mapping ``key -> array`` of rows ``[x1, y1, x2, y2, score]`` (key images) or
``[z1, z2, x1, y1, x2, y2, score(, track)]`` (sub-volumes). Pixels are
0-based, x right, y down; slices are 0-based inside the sub-volume.

Errors in files or tables raise :class:`DataError` (a ``ValueError``) with
the message of the command line: the file or argument, the line or row, and
the field.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Literal, Mapping, Optional, Tuple, Union, overload

import numpy as np

from . import _uld
from ._uld import DataError

if TYPE_CHECKING:
    import pandas

__version__: str = _uld.__version__

__all__ = [
    "DataError",
    "GroundTruth",
    "Detections",
    "Evaluation",
    "Comparison",
    "Curve",
    "Intervals",
    "Breakdown",
    "Difference",
    "Volume",
    "read_ground_truth",
    "ground_truth",
    "read_detections",
    "detections",
    "evaluate",
    "compare",
    "read_dl_info",
    "read_volume",
]

PathLike = Union[str, "os.PathLike[str]"]
Protocol = Literal["keyslice", "harvester", "lens"]
Variant = Literal["mulan", "3dce"]
Noisy = Optional[Literal["keep", "drop"]]
Split = Literal["train", "val", "test", "all"]
LensSplit = Literal["val", "test", "both"]
Table = Union["pandas.DataFrame", Mapping[str, Any]]


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


# ---------------------------------------------------------------- tables

_GT_FLOAT = ("x1", "y1", "x2", "y2", "z1", "z2", "long_diameter_mm", "slice_interval_mm")
_GT_STR = ("key", "file_name", "split")
_GT_OPTIONAL_STR = ("lesion_type",)
_GT_BOOL = ("possibly_noisy",)
_DET_FLOAT = ("x1", "y1", "x2", "y2", "score", "z1", "z2", "track")
_DET_STR = ("key",)


def _floats(column: Any) -> List[float]:
    """A numeric column as floats, NaN where empty (None, NaN, pandas NA)."""
    if hasattr(column, "to_numpy"):
        return column.to_numpy(dtype=float, na_value=np.nan).tolist()
    return np.asarray([np.nan if v is None else v for v in column], dtype=float).tolist()


def _missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(v != v)  # NaN and pandas NA
    except TypeError:
        return True


def _strings(column: Any, optional: bool) -> List[Optional[str]]:
    values = column.tolist() if hasattr(column, "tolist") else list(column)
    if optional:
        return [None if _missing(v) else str(v) for v in values]
    return [v if _missing(v) else str(v) for v in values]


def _bools(column: Any) -> List[bool]:
    values = column.tolist() if hasattr(column, "tolist") else list(column)
    return [bool(v) for v in values]


def _table_items(table: Any, what: str) -> Dict[str, Any]:
    if hasattr(table, "columns") and hasattr(table, "iloc"):  # a pandas DataFrame
        return {str(c): table[c] for c in table.columns}
    if isinstance(table, Mapping):
        return {str(k): v for k, v in table.items()}
    raise TypeError(
        f"{what} must be a path, a pandas DataFrame or a mapping of columns, "
        f"got {type(table).__name__}"
    )


def _columns(items: Mapping[str, Any], floats: Tuple[str, ...], strs: Tuple[str, ...],
             optional_strs: Tuple[str, ...] = (), bools: Tuple[str, ...] = ()) -> Dict[str, list]:
    """The known columns of a table as the lists the compiled module takes."""
    out: Dict[str, list] = {}
    for name, column in items.items():
        if name in floats:
            out[name] = _floats(column)
        elif name in strs:
            out[name] = _strings(column, optional=False)
        elif name in optional_strs:
            out[name] = _strings(column, optional=True)
        elif name in bools:
            out[name] = _bools(column)
    return out


def _frame(columns: Mapping[str, Any]) -> "pandas.DataFrame":
    import pandas

    return pandas.DataFrame(dict(columns))


class GroundTruth:
    """Evaluation units (key images or sub-volumes) and their lesions.

    Make one with :func:`read_ground_truth` or :func:`ground_truth`.
    """

    def __init__(self, inner: "_uld.GroundTruth") -> None:
        self._inner = inner

    @property
    def units(self) -> List[str]:
        """Unit keys in evaluation order, with or without lesions."""
        return self._inner.units

    @property
    def lesion_count(self) -> int:
        return self._inner.lesion_count

    @property
    def source(self) -> str:
        return self._inner.source

    def to_columns(self) -> Dict[str, np.ndarray]:
        """One entry per lesion: ``key, z1, z2, x1, y1, x2, y2,
        long_diameter_mm, lesion_type, slice_interval_mm`` (NaN / None where
        the source has no attribute). ``ground_truth(protocol, columns,
        units=gt.units)`` rebuilds the same set."""
        cols = self._inner.columns()
        return {
            name: np.asarray(v, dtype=object if name in ("key", "lesion_type") else float)
            for name, v in cols.items()
        }

    def to_frame(self) -> "pandas.DataFrame":
        """:meth:`to_columns` as a pandas DataFrame."""
        return _frame(self._inner.columns())

    def __len__(self) -> int:
        return len(self._inner)

    def __repr__(self) -> str:
        return repr(self._inner)


class Detections:
    """Detected boxes of many images or sub-volumes, in the detection file's
    layout. Make one with :func:`read_detections` or :func:`detections`."""

    def __init__(self, inner: "_uld.Detections") -> None:
        self._inner = inner

    def to_columns(self) -> Dict[str, np.ndarray]:
        """The columns ``key, z1, z2, x1, y1, x2, y2, score, track``; ``z1``,
        ``z2`` and ``track`` are floats with NaN where the file is empty."""
        cols = self._inner.columns()
        out: Dict[str, np.ndarray] = {"key": np.asarray(cols["key"], dtype=object)}
        for name in ("z1", "z2", "x1", "y1", "x2", "y2", "score", "track"):
            out[name] = np.asarray(_floats(cols[name]) if name in ("z1", "z2", "track") else cols[name],
                                   dtype=float)
        return out

    def to_frame(self) -> "pandas.DataFrame":
        """The columns as a DataFrame; ``z1``, ``z2``, ``track`` are nullable
        integers (``Int64``)."""
        import pandas

        cols = self._inner.columns()
        frame = pandas.DataFrame({"key": cols["key"]})
        for name in ("z1", "z2", "x1", "y1", "x2", "y2", "score", "track"):
            if name in ("z1", "z2", "track"):
                frame[name] = pandas.array(cols[name], dtype="Int64")
            else:
                frame[name] = np.asarray(cols[name], dtype=np.float32)
        return frame

    def write(self, path: PathLike) -> None:
        """Writes the detection file: CSV, or JSON when ``path`` ends in
        ``.json`` (atomically: a reader never sees half a file)."""
        self._inner.write(os.fspath(path))

    def __len__(self) -> int:
        return len(self._inner)

    def __repr__(self) -> str:
        return repr(self._inner)


def read_ground_truth(protocol: Protocol, path: PathLike, *, variant: Variant = "mulan",
                      noisy: Noisy = None, split: Split = "test",
                      lens_split: LensSplit = "test") -> GroundTruth:
    """Reads ground truth as ``uld eval --protocol P --gt PATH`` does.

    keyslice: ``DL_info.csv``; ``split`` chooses its rows and ``noisy``
    keeps or drops ``Possibly_noisy`` lesions (default: drop, as the MULAN
    and 3DCE test loaders do). harvester: a Lesion-Harvester JSON. lens: the
    LENS JSON (``lens_split`` chooses its part) or a Lesion-Harvester JSON
    such as ``3D-Box.json``.
    """
    return GroundTruth(_uld.read_ground_truth_file(protocol, os.fspath(path), variant, noisy,
                                                   split, lens_split))


def ground_truth(protocol: Protocol, table: Table, *, units: Optional[List[str]] = None,
                 variant: Variant = "mulan", noisy: Noisy = None,
                 split: Split = "test") -> GroundTruth:
    """Ground truth from a table with one row per lesion.

    Columns: ``key`` (or ``file_name``: the key image or sub-volume),
    ``x1, y1, x2, y2`` (0-based pixels), ``z1, z2`` (harvester and lens:
    slices inside the sub-volume, inclusive); optional ``long_diameter_mm``,
    ``lesion_type``, ``slice_interval_mm`` (breakdowns) and, for keyslice,
    ``possibly_noisy`` and ``split``, filtered as in :func:`read_ground_truth`
    (so ``read_dl_info(path, as_frame=True)`` is a valid table). ``units``
    lists units to evaluate first, in order, including units without
    lesions (they still count in the false positives per unit).
    """
    items = _table_items(table, "ground_truth")
    cols = _columns(items, _GT_FLOAT, _GT_STR, _GT_OPTIONAL_STR, _GT_BOOL)
    return GroundTruth(_uld.ground_truth_from_columns(protocol, cols, list(units or []), variant,
                                                      noisy, split))


def read_detections(path: PathLike) -> Detections:
    """Reads a detection file (CSV, or JSON when it ends in ``.json``)."""
    return Detections(_uld.read_detections_file(os.fspath(path)))


def _per_unit_columns(arrays: Mapping[str, Any]) -> Dict[str, list]:
    cols: Dict[str, list] = {n: [] for n in ("key",) + _DET_FLOAT}
    for key, rows in arrays.items():
        a = np.asarray(rows, dtype=float)
        if a.size == 0:
            continue
        if a.ndim != 2 or a.shape[1] not in (5, 7, 8):
            raise DataError(
                f"detections, field `{key}`: expected an array of rows [x1, y1, x2, y2, score] or "
                f"[z1, z2, x1, y1, x2, y2, score(, track)], got shape {a.shape}")
        n = a.shape[0]
        names = (("x1", "y1", "x2", "y2", "score") if a.shape[1] == 5 else
                 ("z1", "z2", "x1", "y1", "x2", "y2", "score", "track")[: a.shape[1]])
        for name in _DET_FLOAT:
            cols[name].extend(a[:, names.index(name)].tolist() if name in names else [math.nan] * n)
        cols["key"].extend([str(key)] * n)
    return cols


def detections(table: Union[Table, Mapping[str, Any]]) -> Detections:
    """Detections from a table with the detection file's columns (``key, x1,
    y1, x2, y2, score`` and optionally ``z1, z2, track``; NaN or None for an
    empty cell), or from a mapping ``key -> array`` with one row per box:
    ``[x1, y1, x2, y2, score]`` for key images, ``[z1, z2, x1, y1, x2, y2,
    score]`` (each row its own 3D box) or ``[..., score, track]`` for
    sub-volumes."""
    items = _table_items(table, "detections")
    if "key" in items:
        cols = _columns(items, _DET_FLOAT, _DET_STR)
    else:
        cols = _per_unit_columns(items)
    return Detections(_uld.detections_from_columns(cols))


# ---------------------------------------------------------------- results

def _non_finite(x: Any) -> Any:
    """report.json's strings "inf", "-inf", "nan" back as floats."""
    if isinstance(x, dict):
        return {k: _non_finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_non_finite(v) for v in x]
    if isinstance(x, str) and x in ("inf", "-inf", "nan"):
        return float(x)
    return x


@dataclass(frozen=True)
class Curve:
    """The FROC and precision-recall curve, one point per detection in score
    order (the references' ``tps`` / ``fps`` after every detection)."""

    score: np.ndarray
    fp_per_unit: np.ndarray
    sensitivity: np.ndarray
    precision: np.ndarray
    hits: np.ndarray
    false_positives: np.ndarray

    @staticmethod
    def _of(d: Mapping[str, list]) -> "Curve":
        return Curve(
            score=np.asarray(d["score"], dtype=np.float32),
            fp_per_unit=np.asarray(d["fp_per_unit"], dtype=float),
            sensitivity=np.asarray(d["sensitivity"], dtype=float),
            precision=np.asarray(d["precision"], dtype=float),
            hits=np.asarray(d["hits"], dtype=np.int64),
            false_positives=np.asarray(d["false_positives"], dtype=np.int64),
        )

    def to_dict(self) -> Dict[str, list]:
        return {k: getattr(self, k).tolist() for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Intervals:
    """Bootstrap percentile intervals: ``(low, high)`` pairs; the
    sensitivity arrays have one row per FP rate."""

    sensitivity: np.ndarray
    sensitivity_clamped: np.ndarray
    summary: Tuple[float, float]
    summary_clamped: Tuple[float, float]
    ap: Tuple[float, float]

    @staticmethod
    def _of(d: Optional[Mapping[str, Any]]) -> Optional["Intervals"]:
        if d is None:
            return None

        def pair(i: Mapping[str, float]) -> Tuple[float, float]:
            return (i["low"], i["high"])

        return Intervals(
            sensitivity=np.asarray([pair(i) for i in d["sens"]], dtype=float).reshape(-1, 2),
            sensitivity_clamped=np.asarray([pair(i) for i in d["sens_clamped"]], dtype=float).reshape(-1, 2),
            summary=pair(d["summary"]),
            summary_clamped=pair(d["summary_clamped"]),
            ap=pair(d["ap"]),
        )


@dataclass(frozen=True)
class Breakdown:
    """The numbers of one lesion group (``by`` is ``size``, ``type`` or
    ``slice interval``); every detection is kept, lesions outside the group
    are dropped."""

    by: str
    group: str
    lesions: int
    sensitivity: np.ndarray
    sensitivity_clamped: np.ndarray
    summary: float
    summary_clamped: float
    ap: float


@dataclass(frozen=True)
class Evaluation:
    """Everything one evaluation found, as ``uld eval`` reports it.

    ``sensitivity[i]`` is the sensitivity at ``fp_points[i]`` false positives
    per unit under the protocol's reference reading (3DCE and
    Lesion-Harvester extrapolate past the curve's end, which can give inf or
    NaN; MULAN and LENS clamp); ``sensitivity_clamped`` is the clamping
    reading. ``summary`` is the headline mean (keyslice: 0.5-4 FP; harvester
    and lens: 0.125-8 FP). ``report`` is ``report.json`` as a dict, with
    floats for its non-finite strings.
    """

    protocol: str
    units: int
    lesions: int
    detections: int
    fp_points: np.ndarray
    sensitivity: np.ndarray
    sensitivity_clamped: np.ndarray
    summary: float
    summary_clamped: float
    ap: float
    intervals: Optional[Intervals]
    threshold: Optional[Dict[str, float]]
    breakdowns: List[Breakdown]
    notes: List[str]
    curve: Curve
    report: Dict[str, Any]

    @staticmethod
    def _of(report: Dict[str, Any], curve: Mapping[str, list]) -> "Evaluation":
        m = report["metrics"]
        return Evaluation(
            protocol=report["protocol"],
            units=report["units"],
            lesions=report["lesions"],
            detections=report["detections"],
            fp_points=np.asarray(report["fp_points"], dtype=float),
            sensitivity=np.asarray(m["sens"], dtype=float),
            sensitivity_clamped=np.asarray(m["sens_clamped"], dtype=float),
            summary=m["summary"],
            summary_clamped=m["summary_clamped"],
            ap=m["ap"],
            intervals=Intervals._of(report["intervals"]),
            threshold=report["threshold"],
            breakdowns=[
                Breakdown(
                    by=b["by"], group=b["group"], lesions=b["lesions"],
                    sensitivity=np.asarray(b["metrics"]["sens"], dtype=float),
                    sensitivity_clamped=np.asarray(b["metrics"]["sens_clamped"], dtype=float),
                    summary=b["metrics"]["summary"],
                    summary_clamped=b["metrics"]["summary_clamped"],
                    ap=b["metrics"]["ap"],
                )
                for b in report["breakdowns"]
            ],
            notes=list(report["notes"]),
            curve=Curve._of(curve),
            report=report,
        )

    def to_dict(self) -> Dict[str, Any]:
        """``report.json``'s content (non-finite numbers as floats) with the
        whole ``curve`` added."""
        d = copy.deepcopy(self.report)
        d["curve"] = self.curve.to_dict()
        return d


@dataclass(frozen=True)
class Difference:
    """A paired difference ``b - a`` with its bootstrap interval and
    two-sided p-value."""

    a: float
    b: float
    difference: float
    interval: Tuple[float, float]
    p_value: float

    @staticmethod
    def _of(d: Mapping[str, Any]) -> "Difference":
        return Difference(a=d["a"], b=d["b"], difference=d["difference"],
                          interval=(d["interval"]["low"], d["interval"]["high"]),
                          p_value=d["p_value"])


@dataclass(frozen=True)
class Comparison:
    """The paired bootstrap of two detection sets on one ground truth, as
    ``uld eval --compare`` reports it."""

    a: Evaluation
    b: Evaluation
    replicates: int
    seed: int
    level: float
    summary: Difference
    summary_clamped: Difference
    ap: Difference
    sensitivity_clamped: List[Difference]
    report: Dict[str, Any]

    def to_dict(self) -> Dict[str, Any]:
        """``comparison.json``'s content (non-finite numbers as floats)."""
        return copy.deepcopy(self.report)


def _options(protocol: Protocol, variant: Variant, bootstrap: int, seed: int, level: float,
             threshold: Optional[float], breakdowns: bool) -> Dict[str, Any]:
    """The evaluation options as the compiled module takes them."""
    return dict(protocol=protocol, variant=variant, bootstrap=int(bootstrap), seed=int(seed),
                level=float(level), threshold=None if threshold is None else float(threshold),
                breakdowns=bool(breakdowns))


def _ground_truth_arg(protocol: Protocol, gt: Any, variant: Variant, noisy: Noisy, split: Split,
                      lens_split: LensSplit) -> "_uld.GroundTruth":
    if isinstance(gt, GroundTruth):
        return gt._inner
    if _is_path(gt):
        return read_ground_truth(protocol, gt, variant=variant, noisy=noisy, split=split,
                                 lens_split=lens_split)._inner
    return ground_truth(protocol, gt, variant=variant, noisy=noisy, split=split)._inner


def _detections_arg(d: Any) -> "_uld.Detections":
    if isinstance(d, Detections):
        return d._inner
    if _is_path(d):
        return read_detections(d)._inner
    return detections(d)._inner


def evaluate(protocol: Protocol, ground_truth: Union[PathLike, GroundTruth, Table],
             detections: Union[PathLike, Detections, Table], *, variant: Variant = "mulan",
             noisy: Noisy = None, split: Split = "test", lens_split: LensSplit = "test",
             bootstrap: int = 1000, seed: int = 0, level: float = 0.95,
             threshold: Optional[float] = None, breakdowns: bool = True) -> Evaluation:
    """Scores detections with a DeepLesion protocol, as ``uld eval`` does.

    The options are those of ``uld eval``: ``variant`` (keyslice: ``mulan``
    clamps past the curve's end, ``3dce`` extrapolates), ``noisy``, ``split``
    and ``lens_split`` (how ground truth is read, see
    :func:`read_ground_truth`), ``bootstrap`` replicates for the intervals
    (0: none) drawn from ``seed`` at coverage ``level``, ``threshold`` (also
    report the operating point of this score) and ``breakdowns`` (by size,
    type and slice interval where the ground truth has them).
    """
    gt = _ground_truth_arg(protocol, ground_truth, variant, noisy, split, lens_split)
    options = _options(protocol, variant, bootstrap, seed, level, threshold, breakdowns)
    text, curve = _uld.evaluate_tables(gt, _detections_arg(detections), options)
    return Evaluation._of(_non_finite(json.loads(text)), curve)


def compare(protocol: Protocol, ground_truth: Union[PathLike, GroundTruth, Table],
            a: Union[PathLike, Detections, Table], b: Union[PathLike, Detections, Table], *,
            variant: Variant = "mulan", noisy: Noisy = None, split: Split = "test",
            lens_split: LensSplit = "test", bootstrap: int = 1000, seed: int = 0,
            level: float = 0.95, threshold: Optional[float] = None,
            breakdowns: bool = True) -> Comparison:
    """The paired bootstrap of detection sets ``a`` and ``b`` on the same
    ground truth (``uld eval --compare``): both evaluations and the
    differences ``b - a`` with intervals and p-values. Options as in
    :func:`evaluate`; ``bootstrap`` must be positive."""
    gt = _ground_truth_arg(protocol, ground_truth, variant, noisy, split, lens_split)
    options = _options(protocol, variant, bootstrap, seed, level, threshold, breakdowns)
    text, curve_a, curve_b = _uld.compare_tables(gt, _detections_arg(a), _detections_arg(b), options)
    report = _non_finite(json.loads(text))
    c = report["comparison"]
    return Comparison(
        a=Evaluation._of(report["a"], curve_a),
        b=Evaluation._of(report["b"], curve_b),
        replicates=c["replicates"], seed=c["seed"], level=c["level"],
        summary=Difference._of(c["summary"]),
        summary_clamped=Difference._of(c["summary_clamped"]),
        ap=Difference._of(c["ap"]),
        sensitivity_clamped=[Difference._of(d) for d in c["sens_clamped"]],
        report=report,
    )


# ---------------------------------------------------------------- readers

@overload
def read_dl_info(path: PathLike, *, as_frame: Literal[False] = ...) -> List[Dict[str, Any]]: ...
@overload
def read_dl_info(path: PathLike, *, as_frame: Literal[True]) -> "pandas.DataFrame": ...
def read_dl_info(path: PathLike, *, as_frame: bool = False) -> Any:
    """Reads ``DL_info.csv``: one record per lesion (or a DataFrame with
    ``as_frame=True``). Boxes ``x1, y1, x2, y2`` and ``recist`` points are in
    uld's 0-based pixels (the file's numbers minus 1), like detection files;
    ``split`` is ``train``, ``val`` or ``test``; ``lesion_type`` its name
    (``lesion_type_code`` the file's number); ``age`` NaN and ``gender``
    None where unknown. The table is valid ground truth for
    :func:`evaluate` with the ``keyslice`` protocol."""
    cols = _uld.read_dl_info_columns(os.fspath(path))
    if as_frame:
        return _frame(cols)
    names = list(cols)
    return [dict(zip(names, row)) for row in zip(*(cols[n] for n in names))]


@dataclass(frozen=True)
class Volume:
    """A CT volume in Hounsfield units.

    ``hu[i, j, k]`` is the voxel at column ``i`` (x), row ``j`` (y) and
    slice ``k``; ``spacing`` is (x, y, slice) in mm; ``voxel_to_world``
    (4 x 4) maps ``(i, j, k, 1)`` to world millimetres in ``frame``
    (``"RAS"`` for NIfTI, ``"LPS"`` for DICOM), or is None where the source
    has no geometry (a DeepLesion folder without ``uld_geometry.json``).
    """

    hu: np.ndarray
    spacing: Tuple[float, float, float]
    voxel_to_world: Optional[np.ndarray]
    frame: Optional[str]
    kind: str
    name: str
    series_uid: Optional[str]
    first_png: Optional[int]


def read_volume(path: PathLike, *, series_uid: Optional[str] = None) -> Volume:
    """Reads a CT scan as ``uld detect`` does: a NIfTI file (``.nii``,
    ``.nii.gz``), a DICOM file or series folder (``series_uid`` picks one of
    several) or a DeepLesion series folder of ``KKK.png`` slices."""
    d = _uld.read_scan(os.fspath(path), series_uid)
    x, y, z = d["dims"]
    hu = np.frombuffer(d["hu"], dtype="<i2").reshape(z, y, x).transpose(2, 1, 0).copy(order="F")
    matrix = None
    if d["matrix"] is not None:
        matrix = np.vstack([np.asarray(d["matrix"], dtype=float), [0.0, 0.0, 0.0, 1.0]])
    return Volume(hu=hu, spacing=tuple(d["spacing"]), voxel_to_world=matrix, frame=d["frame"],
                  kind=d["kind"], name=d["name"], series_uid=d["series_uid"],
                  first_png=d["first_png"])
