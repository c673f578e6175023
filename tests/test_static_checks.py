"""ruff and mypy run as part of the suite, so the one test command checks style and types too."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("edge", "train", "export", "calib")


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    result = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[dev]')")
    # The stage folders are importable only as crackseg.<stage>: mypy reads them through links (see pyproject).
    links = ROOT / "build" / "typecheck" / "crackseg"
    links.mkdir(parents=True, exist_ok=True)
    for stage in STAGES:
        link = links / stage
        if not link.is_symlink():
            link.symlink_to(ROOT / stage, target_is_directory=True)
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
