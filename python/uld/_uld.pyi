"""Type stubs of the compiled module ``uld._uld`` (Rust, PyO3). Use the
``uld`` package's functions; these are what they call."""

from typing import Any, Dict, List, Optional, Tuple, TypedDict

__version__: str

class DataError(ValueError):
    """A file or table that breaks its format; the message names the file
    or argument, the line or row and the field."""

class GroundTruth:
    @property
    def units(self) -> List[str]: ...
    @property
    def lesion_count(self) -> int: ...
    @property
    def source(self) -> str: ...
    def columns(self) -> Dict[str, List[Any]]: ...
    def __len__(self) -> int: ...

class Detections:
    def columns(self) -> Dict[str, List[Any]]: ...
    def write(self, path: str) -> None: ...
    def __len__(self) -> int: ...

def read_ground_truth_file(
    protocol: str, path: str, variant: str, noisy: Optional[str], split: str, lens_split: str
) -> GroundTruth: ...
def ground_truth_from_columns(
    protocol: str,
    columns: Dict[str, List[Any]],
    units: List[str],
    variant: str,
    noisy: Optional[str],
    split: str,
) -> GroundTruth: ...
def read_detections_file(path: str) -> Detections: ...
def detections_from_columns(columns: Dict[str, List[Any]]) -> Detections: ...
class EvalOptions(TypedDict):
    protocol: str
    variant: str
    bootstrap: int
    seed: int
    level: float
    threshold: Optional[float]
    breakdowns: bool

def evaluate_tables(
    ground_truth: GroundTruth, detections: Detections, options: EvalOptions
) -> Tuple[str, Dict[str, List[Any]]]: ...
def compare_tables(
    ground_truth: GroundTruth, a: Detections, b: Detections, options: EvalOptions
) -> Tuple[str, Dict[str, List[Any]], Dict[str, List[Any]]]: ...
def read_dl_info_columns(path: str) -> Dict[str, List[Any]]: ...
def read_scan(path: str, series_uid: Optional[str] = None) -> Dict[str, Any]: ...
