"""The few CUDA runtime calls the TensorRT backend needs, through ctypes (as Polygraphy's ``cuda.py`` does).

Why not pycuda: pycuda ships no wheels for Jetson (it compiles against the CUDA toolkit on the
vehicle), and it works through its own driver-API context that must be pushed onto every thread
that touches memory, while the edge pipeline runs inference in a worker thread. ``libcudart``
comes with every JetPack and every TensorRT install, and the runtime API uses the device's
primary context on any thread, the context TensorRT itself uses. About a dozen calls suffice:
device queries, a stream, device memory, page-locked host memory and asynchronous copies.

Why not NVIDIA's maintained ``cuda-python`` (``cuda-bindings``, which TensorRT 10's samples use), checked
for issue 16: it does not yet serve Jetson and desktop alike for this project. Its CUDA 12 releases need
Python 3.11 or newer (cuda-bindings 12.9 installation notes), while JetPack 6 ships Ubuntu 22.04's
Python 3.10 and this project supports 3.10; its notes promise "the same platforms as CUDA" (Linux
x86-64 and arm64) with no word on L4T, whose CUDA differs from the server-ARM toolkit that arm64 wheels
are usually built against (not verified on a Jetson here); and it would be one more package on the
vehicle for the dozen calls above, where ``libcudart`` is already there. Revisit when JetPack moves to
Python 3.11+ and a Jetson confirms cuda-bindings works there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from pathlib import Path

import numpy as np

from crackseg.edge.artifact.errors import CracksegError

__all__ = ["CudaError", "CudaRuntime", "DeviceBuffer", "HostBuffer", "Stream", "cuda_runtime"]

_HOST_TO_DEVICE = 1
_DEVICE_TO_HOST = 2
_ATTR_CC_MAJOR = 75  # cudaDevAttrComputeCapabilityMajor
_ATTR_CC_MINOR = 76  # cudaDevAttrComputeCapabilityMinor
_DEVICE_PROP_BYTES = 8192
"""Room for ``cudaDeviceProp`` (about 1 KiB in CUDA 12; the name is its first field in every version)."""


class CudaError(CracksegError, RuntimeError):
    """The CUDA runtime is missing, or a CUDA call failed (the message has CUDA's own error text)."""


def _env_folders(variable: str) -> list[Path]:
    return [Path(entry) for entry in os.environ.get(variable, "").split(os.pathsep) if entry]


def _candidates() -> list[str]:
    """Where ``libcudart`` may be: the loader's idea first, then JetPack, toolkit and pip-wheel locations."""
    if sys.platform.startswith("win"):
        folders = [Path(os.environ.get("CUDA_PATH", ".")) / "bin", *_env_folders("PATH")]
        pattern = "cudart64_*.dll"
        found = []
    else:
        folders = [
            *_env_folders("LD_LIBRARY_PATH"),
            Path("/usr/local/cuda/lib64"),
            Path("/usr/local/cuda/targets/aarch64-linux/lib"),
            Path("/usr/lib/aarch64-linux-gnu"),
            Path("/usr/lib/x86_64-linux-gnu"),
            *(Path(entry) / "nvidia" / "cuda_runtime" / "lib" for entry in sys.path if entry),
        ]
        pattern = "libcudart.so*"
        found = [name for name in (ctypes.util.find_library("cudart"),) if name]
    hits = {str(hit) for folder in folders if folder.is_dir() for hit in folder.glob(pattern)}
    return found + sorted(hits)


class CudaRuntime:
    """A loaded ``libcudart``; get the shared instance with :func:`cuda_runtime`."""

    def __init__(self) -> None:
        errors = []
        for candidate in _candidates():
            try:
                self._lib = ctypes.CDLL(candidate)
                break
            except OSError as exc:
                errors.append(f"{candidate}: {exc}")
        else:
            tried = "; ".join(errors) or "no libcudart found on the loader path, in /usr/local/cuda or in pip wheels"
            raise CudaError(f"the CUDA runtime library (libcudart) cannot be loaded ({tried})")
        self._lib.cudaGetErrorString.restype = ctypes.c_char_p

    def check(self, status: int, call: str) -> None:
        if status != 0:
            message = self._lib.cudaGetErrorString(status).decode(errors="replace")
            raise CudaError(f"{call} failed: CUDA error {status} ({message})")

    def device(self) -> int:
        device = ctypes.c_int()
        self.check(self._lib.cudaGetDevice(ctypes.byref(device)), "cudaGetDevice")
        return device.value

    def device_name(self, device: int) -> str:
        props = ctypes.create_string_buffer(_DEVICE_PROP_BYTES)
        query = getattr(self._lib, "cudaGetDeviceProperties_v2", None) or self._lib.cudaGetDeviceProperties
        self.check(query(props, ctypes.c_int(device)), "cudaGetDeviceProperties")
        return props.raw[:256].split(b"\0", 1)[0].decode(errors="replace")

    def compute_capability(self, device: int) -> tuple[int, int]:
        values = []
        for attribute in (_ATTR_CC_MAJOR, _ATTR_CC_MINOR):
            value = ctypes.c_int()
            status = self._lib.cudaDeviceGetAttribute(
                ctypes.byref(value), ctypes.c_int(attribute), ctypes.c_int(device)
            )
            self.check(status, "cudaDeviceGetAttribute")
            values.append(value.value)
        return values[0], values[1]

    def malloc(self, nbytes: int) -> int:
        pointer = ctypes.c_void_p()
        self.check(self._lib.cudaMalloc(ctypes.byref(pointer), ctypes.c_size_t(nbytes)), f"cudaMalloc({nbytes})")
        return pointer.value or 0

    def free(self, pointer: int) -> None:
        self.check(self._lib.cudaFree(ctypes.c_void_p(pointer)), "cudaFree")

    def malloc_host(self, nbytes: int) -> int:
        pointer = ctypes.c_void_p()
        self.check(
            self._lib.cudaMallocHost(ctypes.byref(pointer), ctypes.c_size_t(nbytes)), f"cudaMallocHost({nbytes})"
        )
        return pointer.value or 0

    def free_host(self, pointer: int) -> None:
        self.check(self._lib.cudaFreeHost(ctypes.c_void_p(pointer)), "cudaFreeHost")

    def stream_create(self) -> int:
        stream = ctypes.c_void_p()
        self.check(self._lib.cudaStreamCreate(ctypes.byref(stream)), "cudaStreamCreate")
        return stream.value or 0

    def stream_synchronize(self, stream: int) -> None:
        self.check(self._lib.cudaStreamSynchronize(ctypes.c_void_p(stream)), "cudaStreamSynchronize")

    def stream_destroy(self, stream: int) -> None:
        self.check(self._lib.cudaStreamDestroy(ctypes.c_void_p(stream)), "cudaStreamDestroy")

    def memcpy_async(self, dst: int, src: int, nbytes: int, kind: int, stream: int) -> None:
        status = self._lib.cudaMemcpyAsync(
            ctypes.c_void_p(dst),
            ctypes.c_void_p(src),
            ctypes.c_size_t(nbytes),
            ctypes.c_int(kind),
            ctypes.c_void_p(stream),
        )
        self.check(status, "cudaMemcpyAsync")


@functools.cache
def cuda_runtime() -> CudaRuntime:
    """The process-wide ``libcudart`` wrapper, loaded on first use (like an import; a failed load is retried)."""
    return CudaRuntime()


class Stream:
    """A CUDA stream; frees itself in :meth:`close`."""

    def __init__(self) -> None:
        self.handle = cuda_runtime().stream_create()

    def synchronize(self) -> None:
        cuda_runtime().stream_synchronize(self.handle)

    def close(self) -> None:
        if self.handle:
            cuda_runtime().stream_destroy(self.handle)
            self.handle = 0


class DeviceBuffer:
    """``nbytes`` of device memory at :attr:`pointer`."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes
        self.pointer = cuda_runtime().malloc(nbytes)

    def close(self) -> None:
        if self.pointer:
            cuda_runtime().free(self.pointer)
            self.pointer = 0


class HostBuffer:
    """Page-locked host memory viewed as a flat numpy array: the only kind a copy can overlap with compute."""

    def __init__(self, size: int, dtype: np.dtype) -> None:
        self.nbytes = size * dtype.itemsize
        self.pointer = cuda_runtime().malloc_host(self.nbytes)
        raw = (ctypes.c_byte * self.nbytes).from_address(self.pointer)
        self.array: np.ndarray = np.frombuffer(memoryview(raw), dtype=dtype, count=size)

    def to_device(self, device: DeviceBuffer, nbytes: int, stream: Stream) -> None:
        cuda_runtime().memcpy_async(device.pointer, self.pointer, nbytes, _HOST_TO_DEVICE, stream.handle)

    def from_device(self, device: DeviceBuffer, nbytes: int, stream: Stream) -> None:
        cuda_runtime().memcpy_async(self.pointer, device.pointer, nbytes, _DEVICE_TO_HOST, stream.handle)

    def close(self) -> None:
        if self.pointer:
            self.array = np.empty(0, dtype=self.array.dtype)  # drop the view before the memory goes
            cuda_runtime().free_host(self.pointer)
            self.pointer = 0
