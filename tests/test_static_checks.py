"""ruff and mypy run as part of the suite, so the one test command checks style and types too."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
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


def _link_stages() -> None:
    """The stage folders are importable only as crackseg.<stage>: mypy reads them through links (see pyproject)."""
    links = ROOT / "build" / "typecheck" / "crackseg"
    links.mkdir(parents=True, exist_ok=True)
    for stage in STAGES:
        link = links / stage
        if not link.is_symlink():
            link.symlink_to(ROOT / stage, target_is_directory=True)


def test_mypy_is_clean() -> None:
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[dev]')")
    _link_stages()
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _repaired_tensorrt_stubs(dest: Path) -> Path:
    """A copy of the ``tensorrt-stubs`` package that Python can parse.

    The published stubs name some parameters ``in`` and put a non-default argument after defaults;
    mypy refuses such files outright, which would leave ``tensorrt`` untyped. Only those lines change.
    """
    distribution = importlib.metadata.distribution("tensorrt-stubs")
    for file in distribution.files or []:
        if file.suffix != ".pyi":
            continue
        text = Path(str(distribution.locate_file(file))).read_text()
        text = re.sub(r"\bin(?=: )", "in_", text).replace(", channel_axis: int)", ", channel_axis: int = ...)")
        ast.parse(text)  # fails loudly if a new stubs release breaks differently
        target = dest / str(file)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return dest


def test_tensorrt_code_type_checks_against_the_tensorrt_stubs(tmp_path: Path) -> None:
    try:
        importlib.metadata.distribution("tensorrt-stubs")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("tensorrt-stubs is not installed (pip install --no-deps tensorrt-stubs)")
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[dev]')")
    _link_stages()
    stubs = _repaired_tensorrt_stubs(tmp_path / "stubs")
    env = {**os.environ, "MYPYPATH": str(stubs)}
    command = [sys.executable, "-m", "mypy", "edge/backends/trt.py", "export/engine.py"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
