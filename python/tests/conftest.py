"""Shared fixtures: the real data beside the checkout and the `uld` binary
whose numbers the package must reproduce."""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def shared() -> Path:
    """`../shared/data` beside the checkout, or `ULD_SHARED_DATA`."""
    path = Path(os.environ.get("ULD_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not (path / "deeplesion" / "DL_info_test.csv").is_file():
        pytest.fail(f"the shared data folder {path} is missing (set ULD_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def uld_bin() -> Path:
    """The `uld` command line (`ULD_BIN`, which scripts/test sets)."""
    path = os.environ.get("ULD_BIN")
    if not path or not Path(path).is_file():
        pytest.fail("set ULD_BIN to the uld binary (scripts/test does) to compare with `uld eval`")
    return Path(path)


def run_uld(uld_bin: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(uld_bin), *map(str, args)], capture_output=True, text=True)


def uld_json(uld_bin: Path, *args: str) -> dict:
    """Runs `uld ARGS` (which must succeed) and returns the stdout JSON."""
    done = run_uld(uld_bin, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
