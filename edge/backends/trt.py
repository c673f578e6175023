"""TensorRT engine backend: manifest check, then page-locked buffers, an async stream and ``execute_async_v3``.

An engine is only trusted with its manifest (``<engine>.json``, see ``crackseg.edge.artifact.manifest``): the
TensorRT version, GPU and engine hash are checked *before* the bytes reach TensorRT, and the model
spec comes from the manifest. Works with ``tensorrt`` (TensorRT 10+, JetPack or x86 wheels) and with
``tensorrt_rtx`` (TensorRT for RTX), whichever is installed, in that order; the runtime API used here
is the same in both. CUDA memory and streams go through :mod:`crackseg.edge.backends.cuda`.

Engines built by this version also make the mask on the GPU (``threshold`` in, bool ``mask`` out, see
``crackseg.export.engine.add_device_mask``): :meth:`TensorRTRunner.infer_mask` then copies only the
mask to the host, a quarter of the float32 map; :meth:`TensorRTRunner.infer` copies only ``prob``.
Engines without those tensors still run, thresholded on the host.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from crackseg.edge.artifact.hashing import sha256_bytes
from crackseg.edge.artifact.manifest import (
    NO_GPU,
    EngineManifest,
    ManifestMismatch,
    Profile,
    RuntimeInfo,
    check_manifest,
    read_manifest,
    rebuild_command,
)
from crackseg.edge.artifact.spec import INPUT_NAME, MASK_NAME, OUTPUT_NAME, THRESHOLD_NAME, ModelSpec
from crackseg.edge.backends.base import BackendError, Runner
from crackseg.edge.backends.cuda import CudaError, DeviceBuffer, HostBuffer, Stream, cuda_runtime
from crackseg.edge.backends.signature import ModelSignature, check_signature

if TYPE_CHECKING:
    import tensorrt as trt
else:

    class _LazyTensorRT:
        """Imports TensorRT on first attribute access, so this module imports on machines without it."""

        def __getattr__(self, name: str) -> Any:
            return getattr(load_tensorrt(), name)

    trt = _LazyTensorRT()

__all__ = [
    "TENSORRT_MODULES",
    "TensorRTMissing",
    "TensorRTRunner",
    "build_runtime",
    "current_runtime",
    "load_tensorrt",
    "profile_problem",
    "tensorrt_available",
    "trt",
]

TENSORRT_MODULES = ("tensorrt", "tensorrt_rtx", "tensorrt_rtx_bindings")
"""Python modules tried in order: TensorRT (Jetson, data-centre and desktop GPUs), then TensorRT for RTX."""

INSTALL_HINT = (
    "on a Jetson it comes with JetPack (python3-libnvinfer); on an x86 machine with an NVIDIA GPU install "
    "NVIDIA's wheels with pip install 'crackseg[trt]' (or pip install tensorrt-rtx for TensorRT for RTX)"
)


class TensorRTMissing(BackendError):  # noqa: N818  (the name reads as the condition it reports)
    """Neither ``tensorrt`` nor ``tensorrt_rtx`` can be imported."""


def load_tensorrt() -> ModuleType:
    """The TensorRT module (``tensorrt``, else ``tensorrt_rtx``); raises ``TensorRTMissing`` saying how to get one.

    A ``tensorrt`` that imports without a ``Builder`` is the type-stubs package alone, not TensorRT.
    """
    problems = []
    for name in TENSORRT_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            if exc.name != name:  # installed but broken (e.g. libnvinfer missing): worth showing
                problems.append(f"{name}: {exc}")
            continue
        if hasattr(module, "Builder"):
            return module
        problems.append(f"{name}: only type stubs are installed")
    found = f" ({'; '.join(problems)})" if problems else ""
    raise TensorRTMissing(f"TensorRT is not installed{found}: {INSTALL_HINT}")


def tensorrt_available() -> bool:
    try:
        load_tensorrt()
    except TensorRTMissing:
        return False
    return True


def current_runtime() -> RuntimeInfo:
    """This machine's TensorRT module and version, and the current CUDA device, as manifests record them."""
    cuda = cuda_runtime()
    device = cuda.device()
    return RuntimeInfo(
        tensorrt_module=trt.__name__,
        tensorrt_version=trt.__version__,
        gpu_name=cuda.device_name(device),
        compute_capability=cuda.compute_capability(device),
    )


def build_runtime(rtx_targets: tuple[str, ...] = ()) -> RuntimeInfo:
    """What a new engine's manifest records: this machine's runtime, or, for a TensorRT-RTX build ahead
    of time for ``rtx_targets`` on a machine without a usable GPU (a CI runner, say), no GPU at all."""
    try:
        return current_runtime()
    except CudaError:
        if not rtx_targets:
            raise
        return RuntimeInfo(trt.__name__, trt.__version__, gpu_name=NO_GPU, compute_capability=(0, 0))


def profile_problem(shape: tuple[int, ...], profile: Profile) -> str | None:
    """Why an input ``shape`` cannot run on an engine with ``profile``, or ``None`` if it can."""
    if len(shape) != len(profile.min):
        return f"expected a {len(profile.min)}-d input, got shape {shape}"
    outside = [
        f"{axis} {size} not in [{low}, {high}]"
        for axis, size, low, high in zip("NCHW", shape, profile.min, profile.max, strict=True)
        if not low <= size <= high
    ]
    if outside:
        return f"input {'x'.join(map(str, shape))} is outside the engine's profile {profile}: {', '.join(outside)}"
    return None


def _declared_shape(dims: trt.Dims) -> tuple[int | None, ...]:
    """An engine tensor's shape as :class:`ModelSignature` holds it: ``None`` for a dynamic axis (``-1``)."""
    return tuple(None if dims[index] < 0 else dims[index] for index in range(len(dims)))


_ENGINE_TENSORS = ({INPUT_NAME, OUTPUT_NAME}, {INPUT_NAME, OUTPUT_NAME, THRESHOLD_NAME, MASK_NAME})
"""The tensor sets of a crackseg engine: without a device-made mask (older builds), and with one."""


class TensorRTRunner(Runner):
    """Runs a crackseg TensorRT engine (``.engine`` / ``.plan``) built by ``crackseg export engine``.

    Buffers are allocated once, for the largest shape of the engine's profile; each call sets the input
    shape, copies in, runs and copies out the one output it returns (``prob``, or the device-made
    ``mask``) on one CUDA stream, and returns a copy of it.

    Args:
        path: the engine file; its manifest ``<path>.json`` must be beside it.
        onnx: also refuse the engine if this ONNX file is not the one it was built from.
    """

    name = "tensorrt"

    def __init__(self, path: str | Path, onnx: str | Path | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.onnx = onnx
        self.manifest: EngineManifest | None = None
        self._objects: list[Any] = []  # runtime, engine, context: released in reverse order
        self._context: trt.IExecutionContext | None = None
        self._stream: Stream | None = None
        self._buffers: dict[str, tuple[HostBuffer, DeviceBuffer]] = {}
        self._threshold_on_device: float | None = None

    @property
    def spec(self) -> ModelSpec:
        if self.manifest is None:
            raise BackendError("the TensorRT runner is not active")
        return self.manifest.spec

    def activate_impl(self) -> None:
        if not self.path.is_file():
            raise BackendError(f"engine file not found: {self.path}")
        manifest = read_manifest(self.path)
        engine_bytes = self.path.read_bytes()
        differences = check_manifest(
            manifest, runtime=current_runtime(), onnx_path=self.onnx, engine_sha256=sha256_bytes(engine_bytes)
        )
        if differences:
            hint = f"Rebuild it on this machine with: {rebuild_command(manifest, self.path)}"
            raise ManifestMismatch(self.path, differences, hint=hint)
        try:
            self._load(engine_bytes, manifest)
        except BaseException:
            self.close_impl()
            raise
        self.manifest = manifest

    def _load(self, engine_bytes: bytes, manifest: EngineManifest) -> None:
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._objects.append(runtime)
        engine = runtime.deserialize_cuda_engine(engine_bytes)
        if engine is None:
            raise BackendError(f"TensorRT could not deserialize {self.path} (its log above says why)")
        self._objects.append(engine)
        names = {engine.get_tensor_name(index) for index in range(engine.num_io_tensors)}
        if names not in _ENGINE_TENSORS:
            raise BackendError(
                f"{self.path} has tensors {sorted(names)}, expected '{INPUT_NAME}' -> '{OUTPUT_NAME}' "
                f"(and '{THRESHOLD_NAME}' -> '{MASK_NAME}')"
            )
        input_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(INPUT_NAME))).name
        shapes = {name: _declared_shape(engine.get_tensor_shape(name)) for name in (INPUT_NAME, OUTPUT_NAME)}
        self.signature = ModelSignature(str(self.path), shapes[INPUT_NAME], input_dtype, shapes[OUTPUT_NAME])
        check_signature(self.signature, manifest.spec)
        profile = manifest.profile
        context = engine.create_execution_context()
        self._objects.append(context)
        self._context = context
        if not context.set_input_shape(INPUT_NAME, trt.Dims(list(profile.max))):
            raise BackendError(f"{self.path} rejects its own largest input shape {profile.max}")
        self._stream = Stream()
        for name in names:
            dims = context.get_tensor_shape(name)
            shape = [dims[index] for index in range(len(dims))]
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            host = HostBuffer(math.prod(shape), dtype)
            device = DeviceBuffer(host.nbytes)
            self._buffers[name] = (host, device)
            if not context.set_tensor_address(name, device.pointer):
                raise BackendError(f"TensorRT refused the device buffer of '{name}'")
        if THRESHOLD_NAME in names:  # every run reads it, also those that copy only ``prob``
            self._set_threshold(manifest.spec.threshold)

    @property
    def thresholds_on_device(self) -> bool:
        return MASK_NAME in self._buffers

    def infer_impl(self, image: np.ndarray) -> np.ndarray:
        return self._run(image, OUTPUT_NAME).astype(np.float32, copy=True)  # a copy: the buffer is reused next call

    def infer_mask_impl(self, image: np.ndarray, threshold: float) -> np.ndarray:
        if not self.thresholds_on_device:
            return super().infer_mask_impl(image, threshold)
        if threshold != self._threshold_on_device:
            self._set_threshold(threshold)
        return self._run(image, MASK_NAME).copy()

    def _set_threshold(self, threshold: float) -> None:
        """Queues the copy of ``threshold`` to the engine's input, ahead of the next run on the same stream."""
        assert self._stream is not None
        host, device = self._buffers[THRESHOLD_NAME]
        host.array[0] = threshold  # float32, as the host compares a float32 map with it
        host.to_device(device, host.nbytes, self._stream)
        self._threshold_on_device = threshold

    def _run(self, image: np.ndarray, output: str) -> np.ndarray:
        """Runs the engine on ``image`` and copies ``output`` alone to the host; a view of its host buffer."""
        assert self.manifest is not None and self._stream is not None and self._context is not None
        problem = profile_problem(image.shape, self.manifest.profile)
        if problem:
            raise BackendError(f"{self.path}: {problem} (rebuild the engine with a wider --min/--max-shape)")
        context = self._context
        if not context.set_input_shape(INPUT_NAME, trt.Dims(list(image.shape))):
            raise BackendError(f"{self.path}: TensorRT rejected input shape {image.shape}")
        (host_in, device_in), (host_out, device_out) = self._buffers[INPUT_NAME], self._buffers[output]
        staged = host_in.array[: image.size]
        np.copyto(staged.reshape(image.shape), image, casting="same_kind")
        host_in.to_device(device_in, staged.nbytes, self._stream)
        if not context.execute_async_v3(self._stream.handle):
            raise BackendError(f"{self.path}: TensorRT failed to enqueue inference")
        dims = context.get_tensor_shape(output)
        shape = tuple(dims[index] for index in range(len(dims)))
        result = host_out.array[: math.prod(shape)]
        host_out.from_device(device_out, result.nbytes, self._stream)
        self._stream.synchronize()
        return result.reshape(shape)

    def close_impl(self) -> None:
        self._context = None
        while self._objects:
            del self._objects[-1]  # context before engine before runtime
        for host, device in self._buffers.values():
            host.close()
            device.close()
        self._buffers.clear()
        self._threshold_on_device = None
        if self._stream is not None:
            self._stream.close()
            self._stream = None
