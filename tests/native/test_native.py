"""The native client's ctest suite, run from pytest so the README's one test command covers it.

Two builds, each in a cached directory under ``build/`` (gitignored) so a rerun only recompiles what
changed: a plain optimised build with the compiler's warnings as errors, and a clang build with
AddressSanitizer, UndefinedBehaviorSanitizer and short libFuzzer runs of both decoders. System
packages come from ``tests/native/install_deps.sh``; without them these tests skip and say what is
missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JOBS = "2"
"""CI machines have 2 cores, and this one is shared: never build wider."""
PKG_CONFIG_MODULES = ("libzmq", "zlib", "libpng", "nlohmann_json")
INSTALL_HINT = "run tests/native/install_deps.sh as root"

pytestmark = pytest.mark.slow


def _require_tools(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed ({INSTALL_HINT})")
    for module in PKG_CONFIG_MODULES:
        if subprocess.run(["pkg-config", "--exists", module], check=False).returncode != 0:
            pytest.skip(f"development files of {module} are not installed ({INSTALL_HINT})")


def _libfuzzer_links(tmp_path: Path) -> bool:
    """Whether clang can link a libFuzzer target (the runtime is a separate package on Debian)."""
    source = tmp_path / "probe.cpp"
    source.write_text('extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n')
    probe = subprocess.run(
        ["clang++", "-fsanitize=fuzzer,address,undefined", str(source), "-o", str(tmp_path / "probe")],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def _run(args: list[str], cwd: Path, env: Mapping[str, str] | None = None) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(args)} failed ({result.returncode}):\n{output[-8000:]}"
    return output


def _build_and_test(build_dir: Path, options: list[str], env: Mapping[str, str] | None = None) -> str:
    """Configure, build and run ctest in ``build_dir``; return ctest's full log."""
    build_dir.mkdir(parents=True, exist_ok=True)
    configure = [
        "cmake",
        "-S",
        str(ROOT),
        "-B",
        str(build_dir),
        "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
        "-DCRACKSEG_WERROR=ON",
        f"-DPython3_EXECUTABLE={sys.executable}",
        *options,
    ]
    _run(configure, ROOT, env)
    _run(["cmake", "--build", str(build_dir), "-j", JOBS], ROOT, env)
    _run(["ctest", "--output-on-failure", "-j", JOBS], build_dir, env)
    return (build_dir / "Testing" / "Temporary" / "LastTest.log").read_text(errors="replace")


def test_native_build_and_ctest() -> None:
    _require_tools("cmake", "c++", "pkg-config")
    _build_and_test(ROOT / "build" / "native", [])


def test_native_sanitized_and_fuzzed(tmp_path: Path) -> None:
    _require_tools("cmake", "clang++", "pkg-config")
    if not _libfuzzer_links(tmp_path):
        pytest.skip(f"clang cannot link libFuzzer and the sanitizer runtimes ({INSTALL_HINT})")
    env = {**os.environ, "CC": "clang", "CXX": "clang++"}
    log = _build_and_test(ROOT / "build" / "native-asan", ["-DCRACKSEG_SANITIZE=ON", "-DCRACKSEG_FUZZ=ON"], env)
    runs = [int(n) for n in re.findall(r"^Done (\d+) runs", log, re.MULTILINE)]
    assert len(runs) == 2, "both fuzz targets (mask message, serial) must have run"
    assert min(runs) > 0
    print(f"libFuzzer inputs tried: {runs}")
