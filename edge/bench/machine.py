"""The machine a benchmark ran on: what makes two sets of figures comparable, or explains why not.

CPU model and cores, memory, the load average (a shared or busy machine shows here), GPU and driver,
the versions of the libraries in the measured path, and on a Jetson the power mode (``nvpmodel -q``)
and the current clocks from ``/sys``. Every probe is best effort: what cannot be read is ``null`` and
never an error. Versions come from package metadata, so learning torch's version does not import torch.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["LIBRARIES", "library_versions", "machine_facts"]

LIBRARIES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "crackseg": (("crackseg",), None),
    "numpy": (("numpy",), "numpy"),
    "onnxruntime": (("onnxruntime", "onnxruntime-gpu"), "onnxruntime"),
    "onnx": (("onnx",), "onnx"),
    "tensorrt": (("tensorrt", "tensorrt-cu12", "tensorrt-cu13"), "tensorrt"),
    "tensorrt_rtx": (("tensorrt-rtx", "tensorrt-rtx-cu13-bindings", "tensorrt-rtx-cu12-bindings"), "tensorrt_rtx"),
    "torch": (("torch",), "torch"),
    "opencv": (("opencv-python-headless", "opencv-python", "opencv-contrib-python"), "cv2"),
    "pyzmq": (("pyzmq",), "zmq"),
}
"""Library -> (distribution names to ask package metadata, module whose ``__version__`` to read if it is
already imported: a JetPack's TensorRT and OpenCV come from apt, without pip metadata)."""

_PROBE_TIMEOUT_S = 5.0


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip("\x00\n ")
    except OSError:
        return None


def _command(*argv: str) -> str | None:
    """A command's stdout, or ``None`` if it is absent, fails or hangs."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def library_versions() -> dict[str, str | None]:
    """Versions of :data:`LIBRARIES` (``None``: not installed)."""
    versions: dict[str, str | None] = {}
    for name, (distributions, module) in LIBRARIES.items():
        version = None
        for distribution in distributions:
            try:
                version = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
        loaded = sys.modules.get(module) if module else None
        if version is None and loaded is not None:
            version = str(getattr(loaded, "__version__", None) or "") or None
        versions[name] = version
    return versions


def _cpu_model() -> str:
    fields: dict[str, str] = {}
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    board = _read("/proc/device-tree/model")
    return fields.get("model name") or fields.get("hardware") or board or platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def _gpus() -> list[dict[str, str]]:
    """Name, driver and memory of each NVIDIA GPU (``nvidia-smi``; else the CUDA runtime, e.g. on a Jetson)."""
    listing = _command("nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader")
    if listing:
        rows = [[part.strip() for part in line.split(",")] for line in listing.splitlines() if line.strip()]
        return [{"name": row[0], "driver": row[1], "memory": row[2]} for row in rows if len(row) == 3]
    from crackseg.edge.backends.cuda import CudaError, cuda_runtime

    try:
        cuda = cuda_runtime()
        name = cuda.device_name(cuda.device())
    except CudaError:
        return []
    driver = (_read("/proc/driver/nvidia/version") or "").splitlines()
    return [{"name": name, "driver": driver[0] if driver else "unknown", "memory": "shared"}]


def _jetson() -> dict[str, Any] | None:
    """Power mode, L4T release and clocks of a Jetson; ``None`` elsewhere."""
    release = _read("/etc/nv_tegra_release")
    board = _read("/proc/device-tree/model") or ""
    if release is None and "jetson" not in board.lower():
        return None
    clocks: dict[str, int] = {}
    for path in sorted(Path("/sys/class/devfreq").glob("*/cur_freq")):  # the GPU (and NVDLA/...) in Hz
        value = _read(path)
        if value and value.isdigit():
            clocks[f"{path.parent.name}_hz"] = int(value)
    for path in sorted(Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_cur_freq")):
        value = _read(path)
        if value and value.isdigit():
            clocks[f"{path.parent.parent.name}_hz"] = int(value) * 1000
    emc = _read("/sys/kernel/debug/bpmp/debug/clk/emc/rate")  # readable by root only
    if emc and emc.isdigit():
        clocks["emc_hz"] = int(emc)
    return {
        "board": board or None,
        "l4t_release": release.splitlines()[0] if release else None,
        "power_mode": _command("nvpmodel", "-q"),
        "clocks": clocks,
    }


def machine_facts() -> dict[str, Any]:
    """Everything above, as the ``machine`` object of the JSON report."""
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": {
            "model": _cpu_model(),
            "logical_cores": os.cpu_count(),
            "usable_cores": len(affinity(0)) if affinity else os.cpu_count(),
        },
        "memory_bytes": _memory_bytes(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "gpus": _gpus(),
        "jetson": _jetson(),
        "libraries": library_versions(),
    }
